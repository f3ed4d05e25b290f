"""The FORTE management commands (`<Request ID=".." Action="..">`) executed on a device.

Boot files and the management port (port 61499) both end here, so a `.fboot`
replayed through the socket does exactly what `testbed boot` does. Responses use
FORTE's reason texts (NO_SUCH_OBJECT, UNSUPPORTED_TYPE, INVALID_STATE, ...) and
FORTE's long-response shapes (`<Connection .../>` for READ, `<FBList>`, `<NameList>`,
`<DTList>`, `<EndpointList>`, `<FBStatus>` for QUERY, `<Watches>` for monitoring).

Every request that changed the application (not monitoring) is reported to an
optional `on_change` listener as an `AppliedChange`; the gateway persists those.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
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
from testbed.fourdiac.watches import ResourceMonitor
from testbed.runtime.device import RESOURCE_TYPES, Device
from testbed.runtime.instance import FBInstance, attr_name
from testbed.runtime.resource import Resource, split_pin
from testbed.types import ELEMENTARY, format_value

__all__ = ["REASONS", "AppliedChange", "ChangeKind", "CommandExecutor", "MgmtResponse"]

log = structlog.get_logger(__name__)

_STRAY_CLOSE = re.compile(r"^\s*(<Request\b[^<>]*/>)\s*</Request>\s*$")

REASONS = ("RDY", "BAD_PARAMS", "LOCAL_TERMINATION", "SYSTEM_TERMINATION", "NOT_READY",
           "UNSUPPORTED_CMD", "UNSUPPORTED_TYPE", "NO_SUCH_OBJECT", "INVALID_OBJECT",
           "INVALID_OPERATION", "INVALID_STATE", "OVERFLOW", "INVALID_DST")

ChangeKind = Literal["resource", "fb", "connection", "parameter", "state"]


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


@dataclass(frozen=True, slots=True)
class AppliedChange:
    """A request that changed the deployed application, normalised.

    `kind` resource: `name` the resource, `value` its type; fb: `name` the FB, `value`
    its type; connection: `name` the source, `value` the destination; parameter:
    `name` the pin, `value` the literal; state: `name` the resource, `action` START,
    STOP, KILL or RESET.
    """

    destination: str
    action: str
    kind: ChangeKind
    name: str
    value: str = ""


ChangeListener = Callable[[AppliedChange], None]


class CommandExecutor:
    """Executes management requests against one device; holds its monitoring state."""

    def __init__(self, device: Device, on_change: ChangeListener | None = None) -> None:
        self.device = device
        self.on_change = on_change
        self._monitors: dict[str, ResourceMonitor] = {}
        self._t0 = time.monotonic()

    def execute(self, destination: str, request_xml: str) -> MgmtResponse:
        try:
            req = SafeET.fromstring(request_xml)
        except Exception as exc:  # defusedxml raises several types for hostile or bad XML
            # FORTE reads the first element and ignores what follows it; 4diac exports
            # carry `<Request .../></Request>` on START lines, so accept a stray close tag
            m = _STRAY_CLOSE.match(request_xml)
            if m is None:
                return MgmtResponse("", "INVALID_OBJECT",
                                    detail=f"malformed request XML: {exc}")
            req = SafeET.fromstring(m.group(1))
        if req.tag != "Request":
            return MgmtResponse(req.get("ID", ""), "INVALID_OBJECT",
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

    def monitor(self, res: Resource) -> ResourceMonitor:
        """The monitoring state of `res` (created on first use; renewed if res was recreated)."""
        mon = self._monitors.get(res.name)
        if mon is None or mon.resource is not res:
            mon = ResourceMonitor(res)
            self._monitors[res.name] = mon
        return mon

    def _changed(self, change: AppliedChange) -> None:
        if self.on_change is not None:
            self.on_change(change)

    def _time_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    # --- device level -----------------------------------------------------------------

    def _device_command(self, action: str, req: Element) -> str:
        fb = req.find("FB")
        if action == "CREATE":
            if fb is None:
                raise ManagementError("INVALID_OBJECT", "device CREATE needs <FB>")
            name, type_name = _required(fb, "Name"), _required(fb, "Type")
            if type_name not in RESOURCE_TYPES:
                raise ManagementError("UNSUPPORTED_TYPE", f"{type_name} is not a resource type")
            self.device.create_resource(name, type_name)
            self._changed(AppliedChange("", "CREATE", "resource", name, type_name))
            return ""
        if action == "DELETE":
            if fb is None:
                raise ManagementError("INVALID_OBJECT", "device DELETE needs <FB>")
            name = _required(fb, "Name")
            if name not in self.device.resources:
                raise ManagementError("NO_SUCH_OBJECT", f"no resource {name!r}")
            mon = self._monitors.pop(name, None)
            if mon is not None:
                mon.close()
            self.device.delete_resource(name)
            self._changed(AppliedChange("", "DELETE", "resource", name))
            return ""
        if action in ("START", "STOP", "KILL", "RESET"):
            if action == "KILL" and fb is None:
                self.device.shutdown("KILL")  # FORTE: KILL of the device ends it
                return ""
            for r in self._targets(fb):
                self._state_change(r, action)
            return ""
        if action == "READ":
            if req.find("Watches") is None:
                raise ManagementError("UNSUPPORTED_CMD", "device READ needs <Watches/>")
            return self._watches_body(list(self.device.resources.values()))
        if action == "QUERY":
            return self._device_query(req)
        raise ManagementError("UNSUPPORTED_CMD", f"unsupported device action {action!r}")

    def _device_query(self, req: Element) -> str:
        fb = req.find("FB")
        if fb is not None:
            name = fb.get("Name", "*")
            if name == "*":
                items = "".join(f"<FB Name={quoteattr(n)} Type=\"EMB_RES\"/>"
                                for n in self.device.resources)
                return f"<FBList>{items}</FBList>"
            res = self.device.resources.get(name)
            if res is None:
                raise ManagementError("NO_SUCH_OBJECT", f"no resource {name!r}")
            if fb.get("Type", "*") == "*":
                return f"<FB Name={quoteattr(name)} Type=\"EMB_RES\"/>"
            return f"<FBStatus Status={quoteattr(_status(res))}/>"
        return self._type_query(req)

    def _targets(self, fb: Element | None) -> list[Resource]:
        if fb is None:
            return list(self.device.resources.values())
        name = _required(fb, "Name")
        res = self.device.resources.get(name)
        if res is None:
            raise ManagementError("NO_SUCH_OBJECT", f"no resource {name!r}")
        return [res]

    def _state_change(self, res: Resource, action: str) -> None:
        if action == "START":
            res.start()
        elif action == "STOP":
            res.stop()
        elif action == "KILL":
            res.kill()
        else:
            res.reset()
        self._changed(AppliedChange("", action, "state", res.name))

    # --- resource level ---------------------------------------------------------------

    def _resource_command(self, res: Resource, action: str, req: Element) -> str:
        if action == "CREATE":
            return self._create(res, req)
        if action == "DELETE":
            return self._delete(res, req)
        if action == "WRITE":
            return self._write(res, req)
        if action == "READ":
            return self._read(res, req)
        if action in ("START", "STOP", "KILL", "RESET"):
            fb = req.find("FB")
            if fb is not None:
                name = _required(fb, "Name")
                res.fb(name)  # NO_SUCH_OBJECT first, as FORTE
                if name == res.restart_fb:
                    raise ManagementError("INVALID_OPERATION", f"{name} belongs to the resource")
                if action == "START":
                    res.start_fb(name)
                elif action in ("STOP", "KILL"):
                    res.stop_fb(name)
                else:
                    res.reset_fb(name)
                return ""
            self._state_change(res, action)
            return ""
        if action == "QUERY":
            return self._query(res, req)
        raise ManagementError("UNSUPPORTED_CMD", f"unsupported action {action!r}")

    def _create(self, res: Resource, req: Element) -> str:
        fb, conn, watch = req.find("FB"), req.find("Connection"), req.find("Watch")
        if fb is not None:
            name, type_name = _required(fb, "Name"), _required(fb, "Type")
            type_name = type_name.partition("#")[0]  # 4diac IDE may append a type hash
            if type_name not in res.library:
                raise ManagementError("UNSUPPORTED_TYPE", f"unknown FB type {type_name!r}")
            if name in res.fbs:
                raise ManagementError("INVALID_STATE", f"FB {name!r} exists")
            res.create_fb(name, type_name)
            self._changed(AppliedChange(res.name, "CREATE", "fb", name, type_name))
            return ""
        if conn is not None:
            source, dest = _required(conn, "Source"), _required(conn, "Destination")
            self._rewire(res, dest, lambda: res.connect(source, dest))
            self._changed(AppliedChange(res.name, "CREATE", "connection", source, dest))
            return ""
        if watch is not None:
            self.monitor(res).add_watch(_required(watch, "Source"))
            return ""
        raise ManagementError("INVALID_OBJECT", "CREATE needs <FB>, <Connection> or <Watch>")

    def _rewire(self, res: Resource, dest: str, change: Callable[[], object]) -> None:
        """Connect or disconnect into `dest`: a forced input is released for the change
        (the resource rewires its slot) and forced again after it, whatever happened."""
        mon = self._monitors.get(res.name)
        dfb, dpin = split_pin(dest)
        if mon is not None:
            mon.release_input(dfb, dpin)
        try:
            change()
        finally:
            if mon is not None:
                mon.reclaim_input(dfb, dpin)

    def _delete(self, res: Resource, req: Element) -> str:
        fb, conn, watch = req.find("FB"), req.find("Connection"), req.find("Watch")
        if fb is not None:
            name = _required(fb, "Name")
            res.fb(name)
            if name == res.restart_fb:
                raise ManagementError("INVALID_OPERATION", f"{name} belongs to the resource")
            mon = self._monitors.get(res.name)
            if mon is not None:
                mon.forget_fb(name)
            res.delete_fb(name)
            self._changed(AppliedChange(res.name, "DELETE", "fb", name))
            return ""
        if conn is not None:
            source, dest = _required(conn, "Source"), _required(conn, "Destination")
            self._rewire(res, dest, lambda: res.disconnect(source, dest))
            self._changed(AppliedChange(res.name, "DELETE", "connection", source, dest))
            return ""
        if watch is not None:
            self.monitor(res).remove_watch(_required(watch, "Source"))
            return ""
        raise ManagementError("INVALID_OBJECT", "DELETE needs <FB>, <Connection> or <Watch>")

    def _write(self, res: Resource, req: Element) -> str:
        conn = req.find("Connection")
        if conn is None:
            raise ManagementError("INVALID_OBJECT", "WRITE needs <Connection>")
        source = conn.get("Source", "")
        destination = _required(conn, "Destination")
        force = conn.get("force")
        if force is not None:
            if force == "true":
                self.monitor(res).force(destination, source)
            elif force == "false":
                self.monitor(res).clear_force(destination)
            else:
                raise ManagementError("BAD_PARAMS", f"force must be true or false, not {force!r}")
            return ""
        if source.lower() == "$e":
            self._trigger(res, destination)
            return ""
        if source.lower() == "$er":
            self.monitor(res).reset_event_count(destination)
            return ""
        fb_name, pin = split_pin(destination)
        res.write_parameter(destination, source)
        mon = self._monitors.get(res.name)
        if mon is not None and mon.is_forced(fb_name, pin):
            mon.force(destination, source)  # a forced pin takes the newly written value
        self._changed(AppliedChange(res.name, "WRITE", "parameter", destination, source))
        return ""

    def _trigger(self, res: Resource, path: str) -> None:
        """`$e`: deliver an event input, or fire an event output to its destinations."""
        fb, pin = res.resolve(path)
        if pin in fb.EI_HANDLERS:
            res.inject(path)
            return
        if pin not in fb.EO_NAMES:
            raise ManagementError("NO_SUCH_OBJECT", f"{fb.name} has no event pin {pin!r}")
        _publish_with_outputs(fb, pin)
        mon = self._monitors.get(res.name)
        if mon is not None:
            mon.count_event(fb.name, pin)
        for handler in getattr(fb, "_e_" + pin):
            res.post(handler)

    def _read(self, res: Resource, req: Element) -> str:
        if req.find("Watches") is not None:
            return self._watches_body([res])
        conn = req.find("Connection")
        if conn is None:
            raise ManagementError("INVALID_OBJECT", "READ needs <Connection> or <Watches/>")
        source = _required(conn, "Source")
        fb_inst, pin = res.resolve(source)
        decl = fb_inst.var_decl(pin)
        if decl is None:
            raise ManagementError("NO_SUCH_OBJECT", f"no variable {pin!r} on {fb_inst.name}")
        value = format_value(decl.type, fb_inst.get(pin))
        return f"<Connection Source={quoteattr(source)} Destination={quoteattr(value)}/>"

    def _watches_body(self, resources: list[Resource]) -> str:
        now = self._time_ms()
        parts = [self.monitor(r).render(now) for r in resources
                 if r.name in self._monitors]
        return f"<Watches>{''.join(parts)}</Watches>"

    def _query(self, res: Resource, req: Element) -> str:
        fb, conn = req.find("FB"), req.find("Connection")
        if fb is not None:
            name, type_name = fb.get("Name", "*"), fb.get("Type", "*")
            if name == "*":
                items = "".join(f"<FB Name={quoteattr(n)} Type={quoteattr(f.type_name)}/>"
                                for n, f in res.fbs.items() if n != res.restart_fb)
                return f"<FBList>{items}</FBList>"
            inst = res.fb(name)
            if type_name == "*":
                return f"<FB Name={quoteattr(name)} Type={quoteattr(inst.type_name)}/>"
            return f"<FBStatus Status={quoteattr(_status(res))}/>"
        if conn is not None:
            src, dst = conn.get("Source", "*"), conn.get("Destination", "*")
            conns = [c for c in res.connections  # `$` pins are composite internals
                     if src in ("*", c.source) and dst in ("*", c.destination)
                     and ".$" not in c.destination]
            items = "".join(f"<Connection Source={quoteattr(c.source)} "
                            f"Destination={quoteattr(c.destination)}/>" for c in conns)
            if src == "*" and dst == "*":
                return items
            return f"<EndpointList>{items}</EndpointList>"
        return self._type_query(req)

    def _type_query(self, req: Element) -> str:
        if req.find("FBType") is not None:
            names = [n for n in self.device.library.names()]
            return f"<NameList>{_escape_text(','.join(names))}</NameList>"
        if req.find("DataType") is not None:
            return f"<DTList>{','.join(sorted(ELEMENTARY))}</DTList>"
        if req.find("AdapterType") is not None:
            return "<NameList></NameList>"
        raise ManagementError("INVALID_OBJECT",
                              "QUERY needs <FB>, <Connection>, <FBType>, <DataType> or "
                              "<AdapterType>")


def _publish_with_outputs(fb: FBInstance, event: str) -> None:
    """Latch the WITH outputs of `event` onto their connections, as an emit would."""
    for ev in fb.FB_TYPE.interface.event_outputs:
        if ev.name == event:
            for var in ev.with_vars:
                cell = getattr(fb, "_o_" + attr_name(var), None)
                if cell is not None:
                    cell.v = fb.get(var)
            return


def _status(res: Resource) -> str:
    return {"running": "RUNNING", "stopped": "STOPPED", "killed": "KILLED"}.get(
        res.state.value, "IDLE")


def _escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _required(elem: Element, attr: str) -> str:
    value = elem.get(attr)
    if value is None:
        raise ManagementError("BAD_PARAMS", f"<{elem.tag}> lacks attribute {attr}")
    return value
