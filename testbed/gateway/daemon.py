"""The gateway daemon: configured devices, their management ports, their persisted deployments.

Each device runs as a `DeviceHost`: its resources, a FORTE-compatible management
server and (when configured) a boot file that keeps what 4diac IDE deployed, so a
restart comes back with the same application running. SIGTERM/SIGINT stop every
resource cleanly (E_RESTART fires STOP and it is processed; service and comm FBs
get `on_resource_stop`) before the process exits; SIGHUP re-reads the config and
applies what can change live (logging), naming what needs a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import structlog
from defusedxml import ElementTree as SafeET

from testbed.errors import ConfigError, ManagementError
from testbed.fourdiac.bootfile import read_boot_file
from testbed.fourdiac.commands import AppliedChange, CommandExecutor
from testbed.fourdiac.mgmt_server import ManagementServer, ServerSettings
from testbed.gateway.config import DeviceConfig, GatewayConfig, load_gateway_config
from testbed.gateway.persistence import DeploymentJournal, flush, persist_loop
from testbed.library import TypeLibrary
from testbed.logconfig import configure_logging
from testbed.runtime.device import Device

__all__ = ["DeviceHost", "GatewayDaemon", "build_library"]

log = structlog.get_logger(__name__)

ANNOUNCE = "testbed: device {device} management server listening on {host}:{port}"


def build_library(types: tuple[Path, ...]) -> TypeLibrary:
    """Native types plus every type under the configured directories (blocking: run in a thread)."""
    library = TypeLibrary.with_native_types()
    if types:
        from testbed.fourdiac.typelib import load_type_dirs

        report = load_type_dirs(library, types, override=True, on_error="exclude")
        for item in report.excluded:
            log.warning("type_excluded", type=item.name, file=item.file, reason=item.reason)
        log.info("types_loaded", dirs=[str(t) for t in types], summary=report.summary())
    return library


def server_settings(config: DeviceConfig) -> ServerSettings:
    m = config.management
    return ServerSettings(host=m.host, port=m.port, allow=m.allow,
                          max_request_bytes=m.max_request_bytes,
                          request_deadline_s=m.request_deadline_s,
                          idle_timeout_s=m.idle_timeout_s, max_connections=m.max_connections)


def _attach_opcua_clients(device: Device, path: Path) -> None:
    """Give the device's OPC UA FBs the profiles of `path`; a bad file is a ConfigError."""
    from drivers.yamllines import YamlError
    from fb.io.opcua_clients import load_opcua_clients, use_opcua_clients

    try:
        use_opcua_clients(device, load_opcua_clients(path))
    except YamlError as exc:  # the message already reads file:line: field: problem
        raise ConfigError(str(exc)) from exc


class DeviceHost:
    """One configured device: runtime, management server, deployment persistence."""

    def __init__(self, config: DeviceConfig, library: TypeLibrary) -> None:
        self.config = config
        self.device = Device(config.name, library=library,
                             queue_capacity=config.queue_capacity,
                             external_capacity=config.external_capacity)
        if config.opcua_clients is not None:
            _attach_opcua_clients(self.device, config.opcua_clients)
        self.journal = DeploymentJournal()
        self.executor = CommandExecutor(self.device, on_change=self._on_change)
        self._changed = asyncio.Event()
        self.server: ManagementServer | None = None

    def _on_change(self, change: AppliedChange) -> None:
        self.journal.record(change)
        self._changed.set()

    async def _restore(self) -> None:
        """Replay the persisted boot file; stops at the first failing line, as FORTE does.

        A resource the config already created is not an error: its CREATE line is
        kept in the journal (the deployment still owns it) and the replay goes on.
        """
        path = self.config.persistence.boot_file
        if path is None or not path.exists():
            return
        try:
            commands = await asyncio.to_thread(read_boot_file, path)
        except Exception as exc:  # BootFileError, OSError: start empty, say why
            log.error("deployment_restore_failed", device=self.config.name, file=str(path),
                      error=str(exc))
            return
        for cmd in commands:
            response = self.executor.execute(cmd.destination, cmd.request)
            if response.ok:
                continue
            configured = _configured_resource_create(cmd.destination, cmd.request,
                                                     self.device)
            if configured is not None:
                self._on_change(configured)
                continue
            log.error("deployment_restore_failed", device=self.config.name,
                      file=str(path), line=cmd.line, reason=response.reason,
                      detail=response.detail)
            return
        log.info("deployment_restored", device=self.config.name, file=str(path),
                 commands=len(commands))

    def _create_configured_resources(self) -> None:
        for r in self.config.resources:
            if r.name not in self.device.resources:
                self.device.create_resource(r.name, r.type)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set or the device is KILLed; then stop it cleanly."""
        self._create_configured_resources()
        await self._restore()
        path = self.config.persistence.boot_file
        reason = "signal"
        async with asyncio.TaskGroup() as tg:
            run_task = tg.create_task(self.device.run(), name=f"device:{self.config.name}")
            persist = (tg.create_task(persist_loop(self.journal, path,
                                                   self.config.persistence.write_delay_s,
                                                   self._changed), name="persist")
                       if path is not None else None)
            try:
                async with ManagementServer(self.device, server_settings(self.config),
                                            self.executor) as server:
                    self.server = server
                    print(ANNOUNCE.format(device=self.config.name, host=server.host,
                                          port=server.port), file=sys.stderr, flush=True)
                    stop_wait = tg.create_task(stop.wait(), name="stop-wait")
                    await asyncio.wait({run_task, stop_wait},
                                       return_when=asyncio.FIRST_COMPLETED)
                    stop_wait.cancel()
                    if run_task.done():
                        reason = self.device.shutdown_reason or "device ended"
            finally:
                if not run_task.done():
                    self.device.stop()  # E_RESTART.STOP processed, FBs get on_resource_stop
                    self.device.shutdown("stopped by " + reason)
                if persist is not None:
                    persist.cancel()
        if path is not None:
            await flush(self.journal, path)
        log.info("device_stopped", device=self.config.name, reason=reason)


class GatewayDaemon:
    """All configured devices in one process, with signal handling."""

    def __init__(self, config: GatewayConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.hosts: list[DeviceHost] = []
        self._stop: asyncio.Event | None = None
        self._tg: asyncio.TaskGroup | None = None
        self.stop_reason: str | None = None

    def request_stop(self, reason: str = "requested") -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        log.info("gateway_stop_requested", reason=reason)
        if self._stop is not None:
            self._stop.set()

    def request_reload(self) -> None:
        if self._tg is None:
            return
        self._tg.create_task(self._reload(), name="reload")

    async def _reload(self) -> None:
        if self.config_path is None:
            log.warning("config_reload_unsupported", reason="no config file to re-read")
            return
        try:
            new = await asyncio.to_thread(load_gateway_config, self.config_path)
        except ConfigError as exc:
            log.error("config_reload_failed", file=str(self.config_path), error=str(exc))
            return
        configure_logging(new.logging.format, new.logging.level)
        pending = [name for name in ("devices", "types")
                   if getattr(new, name) != getattr(self.config, name)]
        if pending:
            log.warning("config_reload_needs_restart", sections=pending,
                        reason="devices, ports and type directories change only on restart")
        self.config = self.config.model_copy(update={"logging": new.logging})
        log.info("config_reloaded", file=str(self.config_path), applied=["logging"])

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT (or every device is KILLed); returns the exit status."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGTERM: lambda: self.request_stop("SIGTERM"),
                    signal.SIGINT: lambda: self.request_stop("SIGINT"),
                    signal.SIGHUP: self.request_reload}
        for sig, handler in handlers.items():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, handler)
        failed = False
        try:
            library = await asyncio.to_thread(build_library, self.config.types)
            self.hosts = [DeviceHost(d, library) for d in self.config.devices]
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for host in self.hosts:
                    tg.create_task(host.run(self._stop), name=f"host:{host.config.name}")
        except* ManagementError as group:
            for exc in _leaves(group):
                log.error("gateway_start_failed", error=str(exc))
            self.request_stop("start failed")
            failed = True
        finally:
            self._tg = None
            for sig in handlers:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        return 1 if failed else 0


def _configured_resource_create(destination: str, request: str,
                                device: Device) -> AppliedChange | None:
    """The change a device-level CREATE of an already existing resource stands for, if it is one."""
    if destination:
        return None
    try:
        root = SafeET.fromstring(request)
    except Exception:  # defusedxml raises several types; not a resource CREATE then
        return None
    fb = root.find("FB")
    if root.get("Action") != "CREATE" or fb is None:
        return None
    name, type_name = fb.get("Name", ""), fb.get("Type", "")
    if name not in device.resources:
        return None
    return AppliedChange("", "CREATE", "resource", name, type_name)


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
