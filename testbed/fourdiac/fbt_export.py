"""Write the interface of an FB type as a 4diac `.fbt` file (so 4diac IDE can place it).

Our own FBs are defined in Python (`fb/`); 4diac IDE needs a type file to put them in an
application. The file holds the interface only (events with WITH, typed variables, the
comment) and an empty `<Service>` body, which the type library reads back as an
interface-only service type and binds to the native implementation by name.
`write_fbt_files` regenerates a `_generated/` folder with a do-not-edit header.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree as ET  # writing only; reading goes through defusedxml

from testbed.model import EventDecl, FBType, VarDecl

__all__ = ["fbt_text", "write_fbt_files"]


def _type_name(decl: VarDecl) -> tuple[str, str | None]:
    """(IEC type name, ArraySize or None) of a variable."""
    t = decl.type
    dims = getattr(t, "dims", None)
    if dims is not None:
        element = getattr(t, "element", None)
        size = ",".join(f"{lo}..{hi}" if lo != 0 else str(hi + 1) for lo, hi in dims)
        return str(getattr(element, "name", element)), size
    return str(getattr(t, "name", t)), None


def _initial(decl: VarDecl) -> str | None:
    value = decl.initial
    if value is None or isinstance(value, list | tuple | dict):
        return None
    name, size = _type_name(decl)
    if size is not None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if name in ("TIME", "LTIME") and isinstance(value, int):
        return f"T#{value // 1_000_000}ms" if value % 1_000_000 == 0 else f"T#{value}ns"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        quote = '"' if name == "WSTRING" else "'"
        return quote + value + quote
    return None


def _events(parent: ET.Element, tag: str, events: Iterable[EventDecl]) -> None:
    section = ET.SubElement(parent, tag)
    for event in events:
        elem = ET.SubElement(section, "Event", Name=event.name, Type=event.type or "Event",
                             Comment=event.comment)
        for var in event.with_vars:
            ET.SubElement(elem, "With", Var=var)


def _vars(parent: ET.Element, tag: str, variables: Iterable[VarDecl]) -> None:
    section = ET.SubElement(parent, tag)
    for decl in variables:
        name, size = _type_name(decl)
        attrs = {"Name": decl.name, "Type": name, "Comment": decl.comment}
        if size is not None:
            attrs["ArraySize"] = size
        initial = _initial(decl)
        if initial is not None:
            attrs["InitialValue"] = initial
        ET.SubElement(section, "VarDeclaration", attrs)


def fbt_text(fb_type: FBType, *, generator_note: str = "") -> str:
    """The `.fbt` XML of `fb_type`'s interface (with an optional leading XML comment)."""
    itf = fb_type.interface
    root = ET.Element("FBType", Name=fb_type.name, Comment=fb_type.comment)
    ET.SubElement(root, "Identification", Standard="61499-2")
    ET.SubElement(root, "VersionInfo", Organization="testbed", Version="1.0",
                  Author="testbed.fourdiac.fbt_export")
    interface = ET.SubElement(root, "InterfaceList")
    _events(interface, "EventInputs", itf.event_inputs)
    _events(interface, "EventOutputs", itf.event_outputs)
    _vars(interface, "InputVars", itf.input_vars)
    _vars(interface, "OutputVars", itf.output_vars)
    ET.SubElement(root, "Service", RightInterface="RESOURCE", LeftInterface="APPLICATION",
                  Comment=f"implemented in Python ({fb_type.source or 'testbed'})")
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    note = f"<!-- {generator_note} -->\n" if generator_note else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{note}{body}\n'


def write_fbt_files(types: Iterable[FBType], folder: Path, *, source: str) -> list[Path]:
    """Write one `<Name>.fbt` per type into `folder` with a do-not-edit note naming `source`."""
    folder.mkdir(parents=True, exist_ok=True)
    note = f"Generated from {source} by testbed.fourdiac.fbt_export; do not edit."
    written = []
    for fb_type in types:
        path = folder / f"{fb_type.name}.fbt"
        path.write_text(fbt_text(fb_type, generator_note=note), encoding="utf-8")
        written.append(path)
    return written
