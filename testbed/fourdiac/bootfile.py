"""FORTE boot files (`.fboot`): one management command per line, `destination;<Request/>`.

`load_boot_file` executes each line on a device, as FORTE's boot-file loader does,
and stops at the first line that fails, with FORTE's messages ("Boot file line
does not contain separating ';'", "Boot file command could not be executed") plus
the file and line. `write_boot_file` produces the same format from commands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import structlog

from testbed.errors import BootFileError, SourceLocation
from testbed.fourdiac.commands import CommandExecutor, MgmtResponse
from testbed.runtime.device import Device

__all__ = ["BootCommand", "BootResult", "load_boot_file", "read_boot_file", "write_boot_file"]

log = structlog.get_logger(__name__)

MISSING_SEPARATOR = "Boot file line does not contain separating ';'"
COMMAND_FAILED = "Boot file command could not be executed"


@dataclass(frozen=True, slots=True)
class BootCommand:
    line: int
    destination: str
    request: str


@dataclass(frozen=True, slots=True)
class BootResult:
    commands: int
    error: BootFileError | None = None
    response: MgmtResponse | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_boot_file(path: str | Path) -> list[BootCommand]:
    """Parse a boot file; raises BootFileError (FORTE's text, file:line) on a bad line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BootFileError(f"Boot file {p} could not be opened: {exc.strerror}",
                            SourceLocation(str(p))) from exc
    commands: list[BootCommand] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        dest, sep, request = line.partition(";")
        if not sep or not request.lstrip().startswith("<"):
            raise BootFileError(MISSING_SEPARATOR, SourceLocation(str(p), lineno))
        commands.append(BootCommand(lineno, dest, request))
    return commands


def load_boot_file(device: Device, path: str | Path) -> BootResult:
    """Execute a boot file on `device` up to the first failing line (FORTE's behaviour)."""
    p = Path(path)
    executor = CommandExecutor(device)
    count = 0
    try:
        text_lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        err = BootFileError(f"Boot file {p} could not be opened: {exc.strerror}",
                            SourceLocation(str(p)))
        log.error("boot_file_failed", file=str(p), error=err.message)
        return BootResult(0, err)
    for lineno, raw in enumerate(text_lines, start=1):
        line = raw.strip()
        if not line:
            continue
        dest, sep, request = line.partition(";")
        if not sep or not request.lstrip().startswith("<"):
            err = BootFileError(MISSING_SEPARATOR, SourceLocation(str(p), lineno))
            log.error("boot_file_failed", file=str(p), line=lineno, error=MISSING_SEPARATOR)
            return BootResult(count, err)
        response = executor.execute(dest, request)
        count += 1
        if not response.ok:
            err = BootFileError(f"{COMMAND_FAILED}: {response.reason}: {response.detail}",
                                SourceLocation(str(p), lineno))
            log.error("boot_file_failed", file=str(p), line=lineno, error=COMMAND_FAILED,
                      reason=response.reason, detail=response.detail)
            return BootResult(count, err, response)
    return BootResult(count)


def write_boot_file(path: str | Path, commands: Iterable[tuple[str, str]]) -> None:
    """Write `(destination, request_xml)` pairs as a boot file."""
    lines = [f"{dest};{request}" for dest, request in commands]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
