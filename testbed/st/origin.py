"""Where a piece of Structured Text comes from, and errors that point into it."""

from __future__ import annotations

from dataclasses import dataclass

from testbed.errors import SourceLocation, STCompileError

__all__ = ["STOrigin", "compile_error"]


@dataclass(frozen=True, slots=True)
class STOrigin:
    """The file, FB type and algorithm an ST text belongs to (None algorithm: an ECC guard).

    `line_offset` is added to line numbers inside the text, so errors point at the
    line of the enclosing file when the caller knows where the text starts.
    """

    file: str | None
    fb_type: str
    algorithm: str | None
    line_offset: int = 0


def compile_error(origin: STOrigin, message: str, line: int | None = None,
                  column: int | None = None) -> STCompileError:
    """An STCompileError naming file, FB type, algorithm (or guard) and line/column."""
    where = f"algorithm {origin.algorithm}" if origin.algorithm is not None else "ECC guard"
    location = SourceLocation(
        file=origin.file or f"<{origin.fb_type}>",
        line=None if line is None else line + origin.line_offset,
        column=column,
        field=f"{origin.fb_type}, {where}",
    )
    return STCompileError(message, location)
