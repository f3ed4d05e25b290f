"""YAML with line numbers, and pydantic validation errors that name file, line and field.

Every configuration file of the project (device profiles, gateway configs, scenarios,
YAML applications) is read through here, so an error always reads
`file:line: field: message`. Loading composes the YAML node tree first, which keeps
the line of every key and list item; a pydantic error location such as
`('points', 3, 'address')` then maps to the line of that key (or of its nearest
existing parent when the key is missing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from drivers.errors import DriverConfigError

__all__ = ["Loc", "YamlError", "YamlIssue", "compose", "format_loc", "line_of", "load_model",
           "validate_model"]

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class YamlIssue:
    """One problem, located at a field and (when known) a line."""

    loc: Loc
    message: str
    line: int | None = None

    @property
    def field(self) -> str:
        """The location as `modbus.points[3].address`."""
        return format_loc(self.loc)


class YamlError(DriverConfigError):
    """A YAML file that does not parse or validate; lists every issue as file:line: field."""

    def __init__(self, file: str, issues: Sequence[YamlIssue]) -> None:
        self.file = file
        self.issues = tuple(issues)
        lines = [
            f"{file}:{issue.line if issue.line is not None else '?'}: "
            f"{issue.field or '<document>'}: {issue.message}"
            for issue in self.issues
        ]
        super().__init__("\n".join(lines))


def compose(text: str, source: str) -> tuple[object, dict[Loc, int]]:
    """Parse YAML, returning the data and the 1-based line of every key and item."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlError(source, [YamlIssue((), f"invalid YAML: {exc.problem}", line)]) from exc
    except yaml.YAMLError as exc:
        raise YamlError(source, [YamlIssue((), f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return data, lines


def _record_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            lines.setdefault((*loc, key), key_node.start_mark.line + 1)
            _record_lines(value_node, (*loc, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*loc, index), lines)


def line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest existing prefix of `loc` (a missing key points at its parent)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(loc[:end])
        if line is not None:
            return line
    return None


def format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validate_model(model: type[M], text: str, source: str) -> tuple[M, dict[Loc, int]]:
    """Parse and validate YAML text as `model`; YamlError lists every issue with its line."""
    data, lines = compose(text, source)
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        issues = [YamlIssue(tuple(err["loc"]), err["msg"], line_of(lines, tuple(err["loc"])))
                  for err in exc.errors()]
        raise YamlError(source, issues) from exc


def load_model(model: type[M], path: str | Path) -> M:
    """Read a YAML file and validate it as `model`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise YamlError(str(file), [YamlIssue((), f"cannot read: {exc.strerror}")]) from exc
    return validate_model(model, text, str(file))[0]
