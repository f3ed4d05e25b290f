"""The `.fbt` interface files shipped for the field-I/O FBs (`fb/io/_generated/`).

The families are open-ended (`OPCUA_READ_n` for any n); the files cover the sizes people
place most, n = 1..4 (and METHOD with up to 2 inputs and outputs). Regenerate with
`python -m fb.io.fbt` after changing an interface; a test fails while they differ.
"""

from __future__ import annotations

from pathlib import Path

from testbed.fourdiac.fbt_export import fbt_text, write_fbt_files
from testbed.library import TypeLibrary
from testbed.model import FBType

__all__ = ["GENERATED_DIR", "SHIPPED_TYPES", "expected_files", "regenerate"]

GENERATED_DIR = Path(__file__).resolve().parent / "_generated"
SHIPPED_TYPES: tuple[str, ...] = (
    *(f"{family}_{n}" for family in ("OPCUA_READ", "OPCUA_WRITE", "OPCUA_SUBSCRIBE",
                                     "MODBUS_READ", "MODBUS_WRITE", "MODBUS_POLL")
      for n in range(1, 5)),
    *(f"OPCUA_METHOD_{n}_{m}" for n in range(3) for m in range(3)),
)
_SOURCE = "fb.io (Python definitions)"


def _types(library: TypeLibrary) -> list[FBType]:
    return [library.get(name) for name in SHIPPED_TYPES]


def expected_files(library: TypeLibrary | None = None) -> dict[str, str]:
    """File name -> the text the generator writes for it now."""
    lib = library or TypeLibrary.with_native_types()
    note = f"Generated from {_SOURCE} by testbed.fourdiac.fbt_export; do not edit."
    return {f"{t.name}.fbt": fbt_text(t, generator_note=note) for t in _types(lib)}


def regenerate(folder: Path = GENERATED_DIR) -> list[Path]:
    """Rewrite every shipped `.fbt` file."""
    return write_fbt_files(_types(TypeLibrary.with_native_types()), folder, source=_SOURCE)


if __name__ == "__main__":
    for path in regenerate():
        print(path)
