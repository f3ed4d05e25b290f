"""What was deployed, kept as a FORTE boot file and restored on restart.

The `DeploymentJournal` listens to the management commands that changed the
application (`AppliedChange`) and compacts them to the shortest boot file that
rebuilds the same application: a deleted FB takes its creation, its parameters
and its connections with it; a parameter written twice keeps the last value; a
resource that was started gets one START at the end, which STOP, KILL or RESET
take back. Monitoring (watches, forcing, `$e`) is not part of the application.

The file is written atomically (temporary file, then rename) from a thread, so
the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.sax.saxutils import quoteattr

import structlog

from testbed.fourdiac.bootfile import read_boot_file
from testbed.fourdiac.commands import AppliedChange, CommandExecutor
from testbed.runtime.resource import split_pin

__all__ = ["DeploymentJournal", "RestoreResult", "flush", "persist_loop", "restore_boot_file",
           "write_atomically"]

log = structlog.get_logger(__name__)

_Key = tuple[str, ...]
_Predicate = Callable[[_Key, AppliedChange], bool]


class DeploymentJournal:
    """The deployed application as compacted management commands, in creation order."""

    def __init__(self) -> None:
        self._entries: dict[_Key, AppliedChange] = {}
        self._started: dict[str, None] = {}  # resources to START, in start order
        self.version = 0
        """Bumped on every change; the writer compares it to what it last wrote."""

    def record(self, change: AppliedChange) -> None:
        """Fold one applied change into the journal (the executor's `on_change`)."""
        self.version += 1
        res = change.destination
        if change.kind == "resource":
            if change.action == "CREATE":
                self._entries[("resource", change.name)] = change
            else:
                gone = change.name

                def in_resource(k: _Key, _c: AppliedChange) -> bool:
                    return k[1] == gone

                self._drop(in_resource)
                self._started.pop(change.name, None)
        elif change.kind == "fb":
            if change.action == "CREATE":
                self._entries[("fb", res, change.name)] = change
            else:
                fb = change.name

                def of_fb(k: _Key, c: AppliedChange) -> bool:
                    return k[1] == res and (
                        k == ("fb", res, fb)
                        or (k[0] == "param" and split_pin(c.name)[0] == fb)
                        or (k[0] == "connection" and fb in (split_pin(c.name)[0],
                                                            split_pin(c.value)[0])))

                self._drop(of_fb)
        elif change.kind == "connection":
            key = ("connection", res, change.name, change.value)
            if change.action == "CREATE":
                self._entries[key] = change
            else:
                self._entries.pop(key, None)
        elif change.kind == "parameter":
            self._entries[("param", res, change.name)] = change
        elif change.kind == "state":
            if change.action == "START":
                self._started.pop(change.name, None)
                self._started[change.name] = None
            else:
                self._started.pop(change.name, None)

    def _drop(self, doomed: _Predicate) -> None:
        for key in [k for k, c in self._entries.items() if doomed(k, c)]:
            del self._entries[key]

    def commands(self) -> Iterator[tuple[str, str]]:
        """The journal as `(destination, request XML)` boot-file lines, IDs from 1."""
        n = 0
        for change in self._entries.values():
            n += 1
            yield change.destination, _request_xml(n, change)
        for res in self._started:
            n += 1
            yield res, f'<Request ID="{n}" Action="START"/>'

    def text(self) -> str:
        return "".join(f"{dest};{xml}\n" for dest, xml in self.commands())

    def __len__(self) -> int:
        return len(self._entries) + len(self._started)


def _request_xml(n: int, change: AppliedChange) -> str:
    if change.kind in ("resource", "fb"):
        return (f'<Request ID="{n}" Action="CREATE"><FB Name={quoteattr(change.name)} '
                f"Type={quoteattr(change.value)}/></Request>")
    if change.kind == "connection":
        return (f'<Request ID="{n}" Action="CREATE"><Connection '
                f"Source={quoteattr(change.name)} Destination={quoteattr(change.value)}/>"
                "</Request>")
    # parameter
    return (f'<Request ID="{n}" Action="WRITE"><Connection Source={quoteattr(change.value)} '
            f"Destination={quoteattr(change.name)}/></Request>")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves the old or the new file, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RestoreResult:
    """How a restore went: lines executed and the first failure, if any."""

    __slots__ = ("error", "executed")

    def __init__(self, executed: int, error: str | None) -> None:
        self.executed = executed
        self.error = error


def restore_boot_file(path: Path, executor: CommandExecutor) -> RestoreResult:
    """Execute a persisted boot file through `executor` (so its journal refills).

    Like FORTE's loader, stops at the first failing line; what ran before stays.
    """
    if not path.exists():
        return RestoreResult(0, None)
    try:
        commands = read_boot_file(path)
    except Exception as exc:  # BootFileError or worse: report and start empty
        log.error("deployment_restore_failed", file=str(path), error=str(exc))
        return RestoreResult(0, str(exc))
    for i, cmd in enumerate(commands):
        response = executor.execute(cmd.destination, cmd.request)
        if not response.ok:
            message = f"{path}:{cmd.line}: {response.reason}: {response.detail}"
            log.error("deployment_restore_failed", file=str(path), line=cmd.line,
                      reason=response.reason, detail=response.detail)
            return RestoreResult(i, message)
    log.info("deployment_restored", file=str(path), commands=len(commands))
    return RestoreResult(len(commands), None)


async def persist_loop(journal: DeploymentJournal, path: Path, delay_s: float,
                       changed: asyncio.Event) -> None:
    """Write the journal after each burst of changes (`delay_s` of quiet); runs until cancelled.

    The final write on shutdown is the owner's job (`flush`), after this is cancelled.
    """
    written = -1
    while True:
        await changed.wait()
        changed.clear()
        await asyncio.sleep(delay_s)
        if changed.is_set():
            continue  # still changing: wait for quiet
        if journal.version != written:
            written = journal.version
            await flush(journal, path)


async def flush(journal: DeploymentJournal, path: Path) -> None:
    """Write the journal now (in a worker thread)."""
    text = journal.text()
    try:
        await asyncio.to_thread(write_atomically, path, text)
    except OSError as exc:
        log.error("deployment_persist_failed", file=str(path), error=str(exc))
        return
    log.info("deployment_persisted", file=str(path), commands=len(journal))
