"""Load directories of 4diac type files (`.fbt .adp .dtp .sub`) into a `TypeLibrary`.

Data types are read first (structured types may refer to each other across
files), then adapters, then FB and subapp types. An `.fbt` with a service body
or no body binds to the native implementation of the same name when the
library has one; otherwise it is kept as interface-only (instantiating it fails
with a clear message). Basic, simple and composite types compile at load time
(`compile=True`), so a bad algorithm fails here with file:line, never at the
first event.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import structlog

from testbed.errors import SourceLocation, TypeLibraryError
from testbed.fourdiac.dtp import DataTypeSpec, read_dtp, resolve_data_types
from testbed.fourdiac.fbt import read_adp_element, read_fbt_element
from testbed.fourdiac.sysfile import read_sub_element
from testbed.fourdiac.xml_common import parse_xml_file
from testbed.library import TypeLibrary
from testbed.model import (
    AdapterType,
    BasicFBType,
    CompositeFBType,
    FBType,
    ServiceFBType,
    SimpleFBType,
    STAlgorithm,
    SubAppType,
)
from testbed.st import STOrigin, compile_algorithm
from testbed.types.derived import VarType

__all__ = ["Exclusion", "LoadReport", "library_with", "load_type_dirs"]

log = structlog.get_logger(__name__)

TYPE_SUFFIXES = (".dtp", ".adp", ".fbt", ".sub")

_FailFn = Callable[[str, str, TypeLibraryError], None]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A type file that was not loaded, and why."""

    name: str
    file: str
    reason: str


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What `load_type_dirs` did: type names per kind, exclusions, and the data types read."""

    basic: tuple[str, ...] = ()
    simple: tuple[str, ...] = ()
    composite: tuple[str, ...] = ()
    service: tuple[str, ...] = ()  # bound to the library's native implementation
    interface_only: tuple[str, ...] = ()  # no implementation anywhere
    adapter: tuple[str, ...] = ()
    subapp: tuple[str, ...] = ()
    datatype: tuple[str, ...] = ()
    compiled: tuple[str, ...] = ()
    excluded: tuple[Exclusion, ...] = ()
    data_types: Mapping[str, VarType] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in (
            "basic", "simple", "composite", "service", "interface_only", "adapter", "subapp",
            "datatype", "compiled", "excluded")}

    def summary(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in self.counts().items() if n)


@dataclass(slots=True)
class _Candidate:
    fb_type: FBType
    file: str
    line: int


def _scan(dirs: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_file() and p.suffix in TYPE_SUFFIXES:
            files.append(p)
            continue
        if not p.is_dir():
            raise TypeLibraryError("type directory not found", SourceLocation(str(p)))
        files.extend(sorted(f for f in p.rglob("*") if f.suffix in TYPE_SUFFIXES and f.is_file()))
    return files


def _known(library: TypeLibrary, name: str) -> bool:
    """Whether the library resolves `name` (a family maker refusing the name counts as no)."""
    try:
        return name in library
    except TypeLibraryError:
        return False


def _compile_error(exc: TypeLibraryError, cand: _Candidate) -> TypeLibraryError:
    """The error with the type's file and line when it does not carry a location already."""
    if exc.location is not None and exc.location.line is not None:
        return exc
    return TypeLibraryError(exc.message, SourceLocation(cand.file, cand.line,
                                                        field=f"FB type {cand.fb_type.name}"))


def _check_unused_algorithms(t: FBType) -> None:
    """Compile the ST algorithms no ECC state (or simple-FB event) uses; code generation skips them.

    FORTE's exporter emits every algorithm, so a broken unused one is still a broken type.
    """
    if not isinstance(t, (BasicFBType, SimpleFBType)):
        return
    if isinstance(t, BasicFBType):
        used = {a.algorithm for s in t.ecc.states for a in s.actions if a.algorithm}
    else:
        used = {e.name for e in t.interface.event_inputs}
    variables = {v.name: v.type for v in (*t.interface.input_vars, *t.interface.output_vars,
                                          *t.internal_vars)}
    for alg in t.algorithms.values():
        if alg.name in used or not isinstance(alg, STAlgorithm):
            continue
        origin = STOrigin(file=t.source, fb_type=t.name, algorithm=alg.name,
                          line_offset=alg.line)
        compile_algorithm(alg.text, variables, origin=origin)


def _check_compiles(cand: _Candidate, library: TypeLibrary, staged: Mapping[str, FBType]) -> None:
    """Compile a candidate without adding it to `library` (exclude mode).

    Basic and simple types compile in a scratch library holding just them and the
    adapter types they use, so the check runs the same code path the library does.
    """
    t = cand.fb_type
    if isinstance(t, (BasicFBType, SimpleFBType)):
        scratch = TypeLibrary()
        for decl in (*t.interface.plugs, *t.interface.sockets):
            adapter = staged.get(decl.type_name)
            if adapter is None and _known(library, decl.type_name):
                adapter = library.get(decl.type_name)
            if adapter is not None and decl.type_name not in scratch:
                scratch.add(adapter, "staged")
        scratch.add(t, cand.file)
        scratch.instance_factory(t.name)
        _check_unused_algorithms(t)
    elif isinstance(t, CompositeFBType):
        for inst in t.network.instances:
            if inst.type_name not in staged and not _known(library, inst.type_name):
                raise TypeLibraryError(f"composite {t.name}: inner FB {inst.name} has unknown "
                                       f"type {inst.type_name!r}")


def load_type_dirs(
    library: TypeLibrary,
    dirs: Iterable[str | Path],
    *,
    only: Collection[str] | None = None,
    override: bool = False,
    compile: bool = True,
    on_error: Literal["raise", "exclude"] = "raise",
    data_types: Mapping[str, VarType] | None = None,
) -> LoadReport:
    """Add every type found under `dirs` (recursively) to `library`.

    `only`: load just these FB/adapter/subapp type names (data types are always
    read). `override`: a loaded type replaces a library type of the same name
    (without it a clash raises, naming both origins); an interface-only `.fbt`
    never clashes with a native type, it binds to it. `on_error="exclude"` records
    types that fail to read or compile in `LoadReport.excluded` instead of raising.
    """
    dir_list = list(dirs)
    files = _scan(dir_list)
    excluded: list[Exclusion] = []

    def fail(name: str, file: str, exc: TypeLibraryError) -> None:
        if on_error == "raise":
            raise exc
        excluded.append(Exclusion(name, file, str(exc)))
        log.warning("type_excluded", type=name, file=file, reason=str(exc))

    # 1. data types, resolved across all files
    specs: list[DataTypeSpec] = []
    for f in (f for f in files if f.suffix == ".dtp"):
        try:
            spec = read_dtp(f)
            if spec.name != f.stem:
                log.warning("type_name_mismatch", file=str(f), declared=spec.name, used=f.stem)
                spec = replace(spec, name=f.stem)
            specs.append(spec)
        except TypeLibraryError as exc:
            fail(f.stem, str(f), exc)
    table: dict[str, VarType] = dict(data_types or {})
    structs = resolve_data_types(specs, table)
    table.update(structs)

    # 2. adapters, then FB and subapp types
    adapters: dict[str, AdapterType] = {}
    candidates: dict[str, _Candidate] = {}
    for suffix in (".adp", ".fbt", ".sub"):
        for f in (f for f in files if f.suffix == suffix):
            if only is not None and f.stem not in only:
                continue
            try:
                root = parse_xml_file(f)
                if suffix == ".adp":
                    t: FBType = read_adp_element(root, table)
                    adapters[t.name] = t  # type: ignore[assignment]
                elif suffix == ".fbt":
                    t = read_fbt_element(root, table, adapters)
                else:
                    t = read_sub_element(root, table)
            except TypeLibraryError as exc:
                fail(f.stem, str(f), exc)
                continue
            if t.name != f.stem:  # 4diac IDE names a type after its file
                log.warning("type_name_mismatch", file=str(f), declared=t.name, used=f.stem)
                t = replace(t, name=f.stem)
            if only is not None and t.name not in only:
                continue
            previous = candidates.get(t.name)
            if previous is not None:
                if not override:
                    raise TypeLibraryError(
                        f"type {t.name} defined twice: in {previous.file} and in {f}",
                        SourceLocation(str(f), root.line, field="Name"))
                log.info("type_overridden", type=t.name, old=previous.file, new=str(f))
            candidates[t.name] = _Candidate(t, str(f), root.line)

    # 3. add to the library: interface-only types bind to native ones
    kinds: dict[str, list[str]] = {k: [] for k in (
        "basic", "simple", "composite", "service", "interface_only", "adapter", "subapp")}
    to_add: list[_Candidate] = []
    for cand in candidates.values():
        t = cand.fb_type
        if isinstance(t, ServiceFBType) and t.implementation is None:
            if _known(library, t.name):
                kinds["service"].append(t.name)
                continue
            kinds["interface_only"].append(t.name)
        to_add.append(cand)

    if on_error == "exclude" and compile:
        to_add = _drop_failing(to_add, library, fail)

    compilable: list[_Candidate] = []
    for cand in to_add:
        t = cand.fb_type
        existing = _known(library, t.name)
        if existing and not override:
            raise TypeLibraryError(
                f"type {t.name} defined twice: in {library.origin(t.name)} and in {cand.file} "
                "(load with override=True to replace it)",
                SourceLocation(cand.file, cand.line, field="Name"))
        library.add(t, cand.file, override=override)
        if isinstance(t, AdapterType):
            kinds["adapter"].append(t.name)
        elif isinstance(t, SubAppType):
            kinds["subapp"].append(t.name)
        elif not isinstance(t, ServiceFBType):
            kinds[t.kind].append(t.name)
            compilable.append(cand)

    # 4. compile now, so errors surface at load
    compiled: list[str] = []
    if compile:
        for cand in compilable:
            try:
                library.instance_factory(cand.fb_type.name)
                _check_unused_algorithms(cand.fb_type)
            except TypeLibraryError as exc:
                raise _compile_error(exc, cand) from exc
            compiled.append(cand.fb_type.name)

    report = LoadReport(
        basic=tuple(kinds["basic"]), simple=tuple(kinds["simple"]),
        composite=tuple(kinds["composite"]), service=tuple(kinds["service"]),
        interface_only=tuple(kinds["interface_only"]), adapter=tuple(kinds["adapter"]),
        subapp=tuple(kinds["subapp"]), datatype=tuple(structs), compiled=tuple(compiled),
        excluded=tuple(excluded), data_types=table)
    log.info("types_loaded", dirs=[str(d) for d in dir_list],
             summary=report.summary())
    return report


def _drop_failing(cands: list[_Candidate], library: TypeLibrary, fail: _FailFn) -> list[_Candidate]:
    """Candidates that compile; the others are reported through `fail` (exclude mode)."""
    staged = {c.fb_type.name: c.fb_type for c in cands}
    ok: list[_Candidate] = []
    failed: set[str] = set()
    for cand in cands:
        if not isinstance(cand.fb_type, CompositeFBType):
            try:
                _check_compiles(cand, library, staged)
            except TypeLibraryError as exc:
                fail(cand.fb_type.name, cand.file, _compile_error(exc, cand))
                failed.add(cand.fb_type.name)
                continue
        ok.append(cand)
    # composites last, to a fixpoint: one whose inner type was dropped is dropped too
    changed = True
    while changed:
        changed = False
        staged = {c.fb_type.name: c.fb_type for c in ok}
        for cand in list(ok):
            if isinstance(cand.fb_type, CompositeFBType):
                try:
                    _check_compiles(cand, library, staged)
                except TypeLibraryError as exc:
                    fail(cand.fb_type.name, cand.file, _compile_error(exc, cand))
                    ok.remove(cand)
                    changed = True
    return ok


def library_with(dirs: Iterable[str | Path], *, override: bool = True,
                 only: Collection[str] | None = None) -> TypeLibrary:
    """A library of the native types plus every type under `dirs` (loaded types win)."""
    library = TypeLibrary.with_native_types()
    load_type_dirs(library, dirs, override=override, only=only)
    return library
