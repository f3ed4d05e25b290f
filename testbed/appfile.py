"""YAML applications: an FB network written by hand, without 4diac IDE.

    name: Blinky
    fbs:
      Clock: {type: E_CYCLE, parameters: {DT: T#100ms}}
      Counter: E_CTU
    connections:
      - START.COLD -> Clock.START
      - Clock.EO -> Counter.CU

Parameters are IEC literal text (or plain YAML numbers/booleans). Errors name the
file, line and field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.yamllines import YamlError, load_model
from testbed.api import Application
from testbed.errors import ConfigError

__all__ = ["ApplicationFile", "FBEntry", "load_application_yaml"]


class FBEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)


class ApplicationFile(BaseModel):
    """The schema of a YAML application file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "App"
    fbs: dict[str, FBEntry | str]
    connections: list[str | tuple[str, str]] = Field(default_factory=list)

    @field_validator("connections")
    @classmethod
    def _arrows(cls, value: list[str | tuple[str, str]]) -> list[str | tuple[str, str]]:
        for item in value:
            if isinstance(item, str) and "->" not in item:
                raise ValueError(f"connection {item!r} must read 'FB.OUT -> FB.IN'")
        return value


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def load_application_yaml(path: str | Path) -> Application:
    """Read a YAML application into an `Application`; ConfigError names file:line: field."""
    try:
        spec = load_model(ApplicationFile, path)
    except YamlError as exc:  # its message already reads file:line: field: problem
        raise ConfigError(str(exc)) from exc
    app = Application(spec.name)
    for name, entry in spec.fbs.items():
        if isinstance(entry, str):
            app.fb(name, entry)
        else:
            app.fb(name, entry.type)
            for pin, value in entry.parameters.items():
                app.literals[f"{name}.{pin}"] = _literal(value)
    for conn in spec.connections:
        if isinstance(conn, str):
            source, _, destination = conn.partition("->")
        else:
            source, destination = conn
        app.connect(source.strip(), destination.strip())
    return app
