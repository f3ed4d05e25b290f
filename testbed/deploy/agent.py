"""`DeployAgent`: the edge side of remote deployment (ECC edge-cloud collaboration).

It listens on an `EdgeLink` for NCMD writes of `Deploy/Request` (JSON header: kind, name,
version, sha256, request id, action) with `Deploy/Payload` (the file), and

* for `kind="application"` builds the `.fboot` on a fresh device and swaps it in
  (`ApplicationRunner`: a failed load leaves the running application untouched);
* for `kind="model"` installs the file into the `ModelRegistry` (verified, versioned);
* for `action="rollback"` goes back to the previous version;

then reports a `Deploy/Result` (stored and forwarded, so it survives outages). Requests are
handled one at a time, in arrival order, from a bounded inbox (overflow dropped and counted).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import enum
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog
from pydantic import ValidationError

from drivers.errors import DriverError
from drivers.mqtt.edge_link import EdgeLink
from drivers.mqtt.sparkplug import CommandWrite
from testbed.cloud.protocol import (
    DEPLOY_PAYLOAD,
    DEPLOY_REQUEST,
    DEPLOY_RESULT,
    DeployRequest,
    DeployResult,
)
from testbed.deploy.application import ApplicationRunner
from testbed.deploy.registry import DeployError, ModelRegistry

__all__ = ["AgentState", "DeployAgent", "DeployAgentStatistics"]

_log = structlog.get_logger(__name__)


class AgentState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class DeployAgentStatistics:
    state: AgentState
    requests: int
    applied: int
    rolled_back: int
    failed: int
    malformed: int
    dropped: int


class DeployAgent:
    """Applies deployments received over an edge link (see module docstring)."""

    def __init__(
        self,
        link: EdgeLink,
        runner: ApplicationRunner,
        models: ModelRegistry,
        *,
        inbox_size: int = 16,
    ) -> None:
        self._link = link
        self._runner = runner
        self._models = models
        self._inbox: collections.deque[CommandWrite] = collections.deque()
        self._inbox_size = inbox_size
        self._ready = asyncio.Event()
        self._state = AgentState.NEW
        self._counts = collections.Counter[str]()
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._results: list[DeployResult] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Self:
        if self._state is not AgentState.NEW:
            raise RuntimeError("DeployAgent is one-shot")
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="deploy")
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._task = self._group.create_task(self._work(), name="deploy-agent")
        self._link.add_command_listener(self._on_command)
        self._state = AgentState.RUNNING
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop handling requests (a request in progress is cancelled). Idempotent."""
        if self._state is not AgentState.RUNNING:
            self._state = AgentState.CLOSED
            return
        self._state = AgentState.CLOSED
        if self._task is not None:
            self._task.cancel()
        if self._group is not None:
            await self._group.__aexit__(None, None, None)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    @property
    def results(self) -> tuple[DeployResult, ...]:
        """Results of the requests handled so far, oldest first."""
        return tuple(self._results)

    def _on_command(self, command: CommandWrite) -> None:
        if command.device_id is not None:
            return
        if not any(m.name == DEPLOY_REQUEST for m in command.metrics):
            return
        if len(self._inbox) >= self._inbox_size:
            self._counts["dropped"] += 1
            _log.warning("deploy_request_dropped", dropped=self._counts["dropped"])
            return
        self._inbox.append(command)
        self._ready.set()

    async def _work(self) -> None:
        while True:
            while not self._inbox:
                self._ready.clear()
                await self._ready.wait()
            result = await self._handle(self._inbox.popleft())
            if result is None:
                continue
            self._results.append(result)
            try:
                await self._link.report(None, {DEPLOY_RESULT: result.model_dump_json()})
            except DriverError as exc:
                _log.error("deploy_result_not_stored", request_id=result.request_id, error=str(exc))

    async def _handle(self, command: CommandWrite) -> DeployResult | None:
        values = {m.name: m.value for m in command.metrics}
        header, payload = values.get(DEPLOY_REQUEST), values.get(DEPLOY_PAYLOAD)
        try:
            if not isinstance(header, str):
                raise ValueError(f"{DEPLOY_REQUEST} must be a JSON string")
            request = DeployRequest.model_validate_json(header)
        except (ValueError, ValidationError) as exc:
            self._counts["malformed"] += 1
            _log.warning("deploy_request_malformed", error=str(exc))
            return None
        self._counts["requests"] += 1
        data = payload if isinstance(payload, bytes) else b""
        try:
            version = await self._execute(request, data)
        except DeployError as exc:
            self._counts["failed"] += 1
            _log.warning(
                "deploy_failed", name=request.name, version=request.version, error=str(exc)
            )
            return DeployResult(
                request_id=request.request_id,
                kind=request.kind,
                name=request.name,
                version=self._active_version(request) or "",
                ok=False,
                error=str(exc),
            )
        self._counts["rolled_back" if request.action == "rollback" else "applied"] += 1
        _log.info("deploy_done", kind=request.kind, name=request.name, version=version)
        return DeployResult(
            request_id=request.request_id,
            kind=request.kind,
            name=request.name,
            version=version,
            ok=True,
        )

    async def _execute(self, request: DeployRequest, data: bytes) -> str:
        loop = asyncio.get_running_loop()
        if request.kind == "model":
            models = self._models
            if request.action == "rollback":
                restored = await loop.run_in_executor(self._executor, models.rollback, request.name)
                return restored.version
            installed = await loop.run_in_executor(
                self._executor, models.install, request.name, request.version, data, request.sha256
            )
            return installed.version
        if request.action == "rollback":
            return (await self._runner.rollback(request.name)).version
        app = await self._runner.apply(request.name, request.version, data, request.sha256)
        return app.version

    def _active_version(self, request: DeployRequest) -> str | None:
        files = self._models if request.kind == "model" else self._runner.files
        try:
            active = files.active(request.name)
        except DeployError:
            return None
        return active.version if active is not None else None

    def statistics(self) -> DeployAgentStatistics:
        c = self._counts
        return DeployAgentStatistics(
            state=self._state,
            requests=c["requests"],
            applied=c["applied"],
            rolled_back=c["rolled_back"],
            failed=c["failed"],
            malformed=c["malformed"],
            dropped=c["dropped"],
        )
