"""The FORTE management commands (`<Request ID=".." Action="..">`) executed on a device.

Boot files and the management port (port 61499) both end here, so a `.fboot`
replayed through the socket does exactly what `testbed boot` does. Responses use
FORTE's reason texts (NO_SUCH_OBJECT, UNSUPPORTED_TYPE, INVALID_STATE, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element
from xml.sax.saxutils import quoteattr

import structlog
from defusedxml import ElementTree as SafeET

from testbed.errors import (
    LiteralError,
    ManagementError,
    NetworkError,
    PathError,
    TestbedError,
    TypeLibraryError,
)
from testbed.runtime.device import RESOURCE_TYPES, Device
from testbed.runtime.resource import Resource

__all__ = ["REASONS", "CommandExecutor", "MgmtResponse"]

log = structlog.get_logger(__name__)

REASONS = ("RDY", "BAD_PARAMS", "LOCAL_TERMINATION", "SYSTEM_TERMINATION", "NOT_READY",
           "UNSUPPORTED_CMD", "UNSUPPORTED_TYPE", "NO_SUCH_OBJECT", "INVALID_OBJECT",
           "INVALID_OPERATION", "INVALID_STATE", "OVERFLOW", "INVALID_DST")


@dataclass(frozen=True, slots=True)
class MgmtResponse:
    """A response: `reason` None means success (FORTE's RDY)."""

    request_id: str
    reason: str | None = None
    body: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None

    def to_xml(self) -> str:
        attrs = f"ID={quoteattr(self.request_id)}"
        if self.reason:
            attrs += f" Reason={quoteattr(self.reason)}"
        if self.body:
            return f"<Response {attrs}>{self.body}</Response>"
        return f"<Response {attrs}/>"


class CommandExecutor:
    """Executes management requests against one device."""

    def __init__(self, device: Device) -> None:
        self.device = device

    def execute(self, destination: str, request_xml: str) -> MgmtResponse:
        try:
            req = SafeET.fromstring(request_xml)
        except Exception as exc:  # defusedxml raises several types for hostile or bad XML
            return MgmtResponse("", "BAD_PARAMS", detail=f"malformed request XML: {exc}")
        if req.tag != "Request":
            return MgmtResponse(req.get("ID", ""), "UNSUPPORTED_CMD",
                                detail=f"expected <Request>, got <{req.tag}>")
        rid = req.get("ID", "")
        action = (req.get("Action") or "").upper()
        try:
            if destination:
                res = self.device.resources.get(destination)
                if res is None:
                    raise ManagementError("INVALID_DST", f"no resource {destination!r}")
                body = self._resource_command(res, action, req)
            else:
                body = self._device_command(action, req)
        except ManagementError as exc:
            return MgmtResponse(rid, exc.reason, detail=str(exc))
        except PathError as exc:
            return MgmtResponse(rid, "NO_SUCH_OBJECT", detail=str(exc))
        except TypeLibraryError as exc:
            return MgmtResponse(rid, "UNSUPPORTED_TYPE", detail=str(exc))
        except LiteralError as exc:
            return MgmtResponse(rid, "BAD_PARAMS", detail=str(exc))
        except NetworkError as exc:
            return MgmtResponse(rid, "INVALID_STATE", detail=str(exc))
        except TestbedError as exc:
            return MgmtResponse(rid, "INVALID_OPERATION", detail=str(exc))
        return MgmtResponse(rid, None, body=body)

    # --- device level -----------------------------------------------------------------

    def _device_command(self, action: str, req: Element) -> str:
        fb = req.find("FB")
        if action == "CREATE":
            if fb is None:
                raise ManagementError("UNSUPPORTED_CMD", "device CREATE needs <FB>")
            name, type_name = _required(fb, "Name"), _required(fb, "Type")
            if type_name not in RESOURCE_TYPES:
                raise ManagementError("UNSUPPORTED_TYPE", f"{type_name} is not a resource type")
            self.device.create_resource(name, type_name)
            return ""
        if action == "DELETE":
            if fb is None:
                raise ManagementError("UNSUPPORTED_CMD", "device DELETE needs <FB>")
            name = _required(fb, "Name")
            if name not in self.device.resources:
                raise ManagementError("NO_SUCH_OBJECT", f"no resource {name!r}")
            self.device.delete_resource(name)
            return ""
        targets = self._targets(fb)
        if action == "START":
            for r in targets:
                r.start()
        elif action == "STOP":
            for r in targets:
                r.stop()
        elif action == "KILL":
            if fb is None:
                self.device.shutdown("KILL")
            for r in targets:
                r.kill()
        elif action == "RESET":
            for r in targets:
                r.reset()
        elif action == "QUERY":
            return "".join(f'<FB Name={quoteattr(n)} Type="EMB_RES"/>'
                           for n in self.device.resources)
        else:
            raise ManagementError("UNSUPPORTED_CMD", f"unsupported device action {action!r}")
        return ""

    def _targets(self, fb: Element | None) -> list[Resource]:
        if fb is None:
            return list(self.device.resources.values())
        name = _required(fb, "Name")
        res = self.device.resources.get(name)
        if res is None:
            raise ManagementError("NO_SUCH_OBJECT", f"no resource {name!r}")
        return [res]

    # --- resource level ---------------------------------------------------------------

    def _resource_command(self, res: Resource, action: str, req: Element) -> str:
        fb = req.find("FB")
        conn = req.find("Connection")
        if action == "CREATE":
            if fb is not None:
                name, type_name = _required(fb, "Name"), _required(fb, "Type")
                if type_name not in res.library:
                    raise ManagementError("UNSUPPORTED_TYPE", f"unknown FB type {type_name!r}")
                if name in res.fbs:
                    raise ManagementError("INVALID_STATE", f"FB {name!r} exists")
                res.create_fb(name, type_name)
                return ""
            if conn is not None:
                res.connect(_required(conn, "Source"), _required(conn, "Destination"))
                return ""
            raise ManagementError("UNSUPPORTED_CMD", "CREATE needs <FB> or <Connection>")
        if action == "DELETE":
            if fb is not None:
                res.delete_fb(_required(fb, "Name"))
                return ""
            if conn is not None:
                res.disconnect(_required(conn, "Source"), _required(conn, "Destination"))
                return ""
            raise ManagementError("UNSUPPORTED_CMD", "DELETE needs <FB> or <Connection>")
        if action == "WRITE":
            if conn is None:
                raise ManagementError("UNSUPPORTED_CMD", "WRITE needs <Connection>")
            source = conn.get("Source", "")
            destination = _required(conn, "Destination")
            if source == "$e":
                res.inject(destination)
            else:
                res.write_parameter(destination, source)
            return ""
        if action == "READ":
            if conn is None:
                raise ManagementError("UNSUPPORTED_CMD", "READ needs <Connection>")
            from testbed.types import format_value

            fb_inst, pin = res.resolve(_required(conn, "Source"))
            decl = fb_inst.var_decl(pin)
            if decl is None:
                raise ManagementError("NO_SUCH_OBJECT", f"no variable {pin!r}")
            value = format_value(decl.type, fb_inst.get(pin))
            return f"<Connection Source={quoteattr(conn.get('Source', ''))} " \
                   f"Destination={quoteattr(value)}/>"
        if action in ("START", "STOP", "KILL", "RESET"):
            getattr(res, action.lower())()
            return ""
        if action == "QUERY":
            if fb is not None:
                return "".join(f"<FB Name={quoteattr(n)} Type={quoteattr(f.type_name)}/>"
                               for n, f in res.fbs.items() if n != res.restart_fb)
            if conn is not None:
                return "".join(f"<Connection Source={quoteattr(c.source)} "
                               f"Destination={quoteattr(c.destination)}/>"
                               for c in res.connections)
            raise ManagementError("UNSUPPORTED_CMD", "QUERY needs <FB> or <Connection>")
        raise ManagementError("UNSUPPORTED_CMD", f"unsupported action {action!r}")


def _required(elem: Element, attr: str) -> str:
    value = elem.get(attr)
    if value is None:
        raise ManagementError("BAD_PARAMS", f"<{elem.tag}> lacks attribute {attr}")
    return value
