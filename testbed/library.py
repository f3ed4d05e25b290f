"""The type library: resolves FB type names to types and compiled instance classes.

It is an object you build and pass (no global registry). Native types come from
`fb/`; readers of `.fbt` directories add or override types. Families such as
`PUBLISH_n` or `CSV_WRITER_n` are resolved by pattern on first use, and fixed names can
be registered lazily too (`add_lazy`), so a type's module is imported only when a network
names it. Each type is compiled once; later instances reuse the class.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from testbed.errors import TypeLibraryError
from testbed.model import (
    AdapterType,
    BasicFBType,
    CompositeFBType,
    FBType,
    ServiceFBType,
    SimpleFBType,
)

if TYPE_CHECKING:
    from testbed.runtime.instance import FBInstance
    from testbed.runtime.resource import Resource

__all__ = ["Factory", "FamilyMaker", "NameLoader", "TypeEntry", "TypeLibrary"]

Factory = Callable[[str, "Resource"], "FBInstance"]
FamilyMaker = Callable[[re.Match[str]], FBType]
NameLoader = Callable[[str], FBType]
"""Builds the type of one lazily registered name (see `TypeLibrary.add_lazy`)."""


@dataclass(frozen=True, slots=True)
class TypeEntry:
    fb_type: FBType
    origin: str


class TypeLibrary:
    """FB types by name, with where each came from; compiled classes cached per type."""

    def __init__(self) -> None:
        self._entries: dict[str, TypeEntry] = {}
        self._families: list[tuple[re.Pattern[str], FamilyMaker, str]] = []
        self._factories: dict[str, Factory] = {}
        self._lazy: dict[str, tuple[NameLoader, str]] = {}

    @classmethod
    def with_native_types(cls) -> TypeLibrary:
        """A library holding every type of the `fb` package."""
        import fb  # fb depends on testbed, not the other way round

        lib = cls()
        fb.register(lib)
        return lib

    # --- adding -----------------------------------------------------------------------

    def add(self, fb_type: FBType, origin: str, *, override: bool = False) -> None:
        if not override:
            self._refuse_known(fb_type.name, origin)
        self._lazy.pop(fb_type.name, None)
        self._entries[fb_type.name] = TypeEntry(fb_type, origin)
        self._factories.pop(fb_type.name, None)

    def add_family(self, pattern: str, maker: FamilyMaker, origin: str) -> None:
        """Types named by `pattern` (a full-match regex) are built by `maker` on first use."""
        self._families.append((re.compile(pattern), maker, origin))

    def add_lazy(self, names: Iterable[str], loader: NameLoader, origin: str) -> None:
        """Types called one of `names` are built by `loader(name)` on first use."""
        for name in names:
            self._refuse_known(name, origin)
            self._lazy[name] = (loader, origin)

    def _refuse_known(self, name: str, origin: str) -> None:
        entry = self._entries.get(name)
        lazy = self._lazy.get(name)
        first = entry.origin if entry is not None else lazy[1] if lazy is not None else None
        if first is not None:
            raise TypeLibraryError(f"type {name} defined twice: in {first} and in {origin}")

    # --- lookup -----------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lookup(name) is not None

    def _lookup(self, name: str) -> TypeEntry | None:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        lazy = self._lazy.get(name)
        if lazy is not None:
            loader, origin = lazy
            entry = self._entries[name] = TypeEntry(loader(name), origin)
            del self._lazy[name]
            return entry
        for pattern, maker, origin in self._families:
            m = pattern.fullmatch(name)
            if m:
                entry = TypeEntry(maker(m), origin)
                self._entries[name] = entry
                return entry
        return None

    def get(self, name: str) -> FBType:
        entry = self._lookup(name)
        if entry is None:
            raise TypeLibraryError(f"unknown FB type {name!r}")
        return entry.fb_type

    def origin(self, name: str) -> str:
        entry = self._lookup(name)
        if entry is None:
            raise TypeLibraryError(f"unknown FB type {name!r}")
        return entry.origin

    def adapter_type(self, name: str) -> AdapterType:
        """The adapter type called `name` (adapters live in the same table as FB types)."""
        fb_type = self.get(name)
        if not isinstance(fb_type, AdapterType):
            raise TypeLibraryError(f"{name!r} is a {fb_type.kind} type, not an adapter")
        return fb_type

    def names(self) -> Iterator[str]:
        """Every type name known so far (lazily registered ones included, families not)."""
        return iter(sorted({*self._entries, *self._lazy}))

    def instance_factory(self, name: str) -> Factory:
        """A callable `(instance_name, resource) -> FBInstance` for type `name`."""
        factory = self._factories.get(name)
        if factory is None:
            factory = self._make_factory(self.get(name))
            self._factories[name] = factory
        return factory

    def _make_factory(self, fb_type: FBType) -> Factory:
        if isinstance(fb_type, ServiceFBType):
            impl = fb_type.implementation
            if impl is None:
                raise TypeLibraryError(
                    f"service FB type {fb_type.name} has no Python implementation")
            return impl
        if isinstance(fb_type, (BasicFBType, SimpleFBType)):
            from testbed.runtime.codegen import build_fb_class

            return build_fb_class(fb_type, self.adapter_type)
        if isinstance(fb_type, CompositeFBType):
            from testbed.runtime.composite import composite_factory

            return composite_factory(fb_type, self)
        raise TypeLibraryError(f"type {fb_type.name}: unsupported kind {fb_type.kind}")
