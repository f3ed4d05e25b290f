"""Readers for 4diac systems (`.sys`) and subapplication types (`.sub`).

A `.sys` holds applications (networks of FB instances and nested subapps),
devices with their resources (each resource's `<FBNetwork>` holds copies of the
FBs and subapps mapped to it, with their parameters and the resource-local
connections), segments and links (recorded, not used) and the mapping of
application elements to resources. `read_system` turns it into a frozen
`SystemSpec`; `testbed.fourdiac.fboot_writer` deploys one resource of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testbed.fourdiac.fbt import (
    DataTypeTable,
    read_connections,
    read_interface,
    read_network,
    read_parameters,
)
from testbed.fourdiac.xml_common import XmlElement, parse_xml_file
from testbed.model import ConnectionSpec, FBInstanceSpec, Interface, SubAppType

__all__ = [
    "ApplicationSpec",
    "DeviceSpec",
    "LinkSpec",
    "MappingSpec",
    "NetworkSpec",
    "ResourceSpec",
    "SegmentSpec",
    "SubAppSpec",
    "SystemSpec",
    "read_sub",
    "read_sub_element",
    "read_system",
]


@dataclass(frozen=True, slots=True)
class SubAppSpec:
    """A subapp instance: untyped (its network inline) or typed (`type_name`, a `.sub`).

    In a resource's network 4diac stores only the interface of a mapped subapp;
    `network` is then None and the contents come from the application (`Mapping`).
    """

    name: str
    type_name: str | None = None
    interface: Interface = field(default_factory=Interface)
    network: NetworkSpec | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """FB instances and subapps in document order, and the connections among them."""

    elements: tuple[FBInstanceSpec | SubAppSpec, ...] = ()
    event_connections: tuple[ConnectionSpec, ...] = ()
    data_connections: tuple[ConnectionSpec, ...] = ()
    adapter_connections: tuple[ConnectionSpec, ...] = ()

    @property
    def fbs(self) -> tuple[FBInstanceSpec, ...]:
        return tuple(e for e in self.elements if isinstance(e, FBInstanceSpec))

    @property
    def subapps(self) -> tuple[SubAppSpec, ...]:
        return tuple(e for e in self.elements if isinstance(e, SubAppSpec))

    def element(self, name: str) -> FBInstanceSpec | SubAppSpec | None:
        return next((e for e in self.elements if e.name == name), None)

    def find(self, path: str) -> FBInstanceSpec | SubAppSpec | None:
        """An element by dotted path through nested (inline) subapps: `Sub.Inner.FB`."""
        head, _, rest = path.partition(".")
        elem = self.element(head)
        if not rest:
            return elem
        if isinstance(elem, SubAppSpec) and elem.network is not None:
            return elem.network.find(rest)
        return None


@dataclass(frozen=True, slots=True)
class ApplicationSpec:
    name: str
    network: NetworkSpec
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    name: str
    type_name: str
    network: NetworkSpec
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    name: str
    type_name: str
    resources: tuple[ResourceSpec, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)

    def resource(self, name: str) -> ResourceSpec | None:
        return next((r for r in self.resources if r.name == name), None)


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    name: str
    type_name: str


@dataclass(frozen=True, slots=True)
class LinkSpec:
    segment: str
    comm_resource: str


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """`<Mapping From="App.Sub.FB" To="Device.Resource.Sub.FB"/>`."""

    source: str
    destination: str


@dataclass(frozen=True, slots=True)
class SystemSpec:
    """A whole 4diac system as read from a `.sys` file."""

    name: str
    applications: tuple[ApplicationSpec, ...] = ()
    devices: tuple[DeviceSpec, ...] = ()
    segments: tuple[SegmentSpec, ...] = ()
    links: tuple[LinkSpec, ...] = ()
    mappings: tuple[MappingSpec, ...] = ()
    comment: str = ""
    source: str | None = None

    def application(self, name: str) -> ApplicationSpec | None:
        return next((a for a in self.applications if a.name == name), None)

    def device(self, name: str) -> DeviceSpec | None:
        return next((d for d in self.devices if d.name == name), None)

    def mapped_from(self, destination: str) -> str | None:
        """The application path mapped to `Device.Resource.Element`, if any."""
        return next((m.source for m in self.mappings if m.destination == destination), None)

    def find_in_application(self, path: str) -> FBInstanceSpec | SubAppSpec | None:
        """An element by `App.Sub.FB` path."""
        app_name, _, rest = path.partition(".")
        app = self.application(app_name)
        return app.network.find(rest) if app is not None and rest else None


# --- reading ---------------------------------------------------------------------------


def _subapp(elem: XmlElement, data_types: DataTypeTable) -> SubAppSpec:
    itf_elem = elem.find("SubAppInterfaceList")
    interface = read_interface(itf_elem, data_types, lenient=True) if itf_elem is not None \
        else Interface()
    net_elem = elem.find("SubAppNetwork") or elem.find("FBNetwork")
    network = _network(net_elem, data_types) if net_elem is not None else None
    return SubAppSpec(elem.require("Name"), elem.get("Type") or None, interface, network,
                      read_parameters(elem), elem.line)


def _network(elem: XmlElement, data_types: DataTypeTable) -> NetworkSpec:
    elements: list[FBInstanceSpec | SubAppSpec] = []
    names: set[str] = set()
    for child in elem.children:
        if child.tag not in ("FB", "SubApp"):
            continue
        name = child.require("Name")
        if name in names:
            raise child.error(f"element {name!r} declared twice in this network", "Name")
        names.add(name)
        if child.tag == "FB":
            elements.append(FBInstanceSpec(name, child.require("Type"), read_parameters(child)))
        else:
            elements.append(_subapp(child, data_types))
    return NetworkSpec(tuple(elements), read_connections(elem, "EventConnections"),
                       read_connections(elem, "DataConnections"),
                       read_connections(elem, "AdapterConnections"))


def _resource(elem: XmlElement, data_types: DataTypeTable) -> ResourceSpec:
    net = elem.find("FBNetwork")
    return ResourceSpec(elem.require("Name"), elem.require("Type"),
                        _network(net, data_types) if net is not None else NetworkSpec(),
                        read_parameters(elem))


def read_system_element(root: XmlElement, data_types: DataTypeTable | None = None) -> SystemSpec:
    """The system a `<System>` element describes."""
    if root.tag != "System":
        raise root.error(f"expected <System>, got <{root.tag}>")
    dts: DataTypeTable = data_types or {}
    apps: list[ApplicationSpec] = []
    devices: list[DeviceSpec] = []
    for child in root.children:
        if child.tag == "Application":
            net = child.find("SubAppNetwork") or child.find("FBNetwork")
            apps.append(ApplicationSpec(child.require("Name"),
                                        _network(net, dts) if net is not None else NetworkSpec(),
                                        child.get("Comment") or ""))
        elif child.tag == "Device":
            devices.append(DeviceSpec(
                child.require("Name"), child.require("Type"),
                tuple(_resource(r, dts) for r in child.findall("Resource")),
                read_parameters(child)))
    for kind, items in (("application", [a.name for a in apps]),
                        ("device", [d.name for d in devices])):
        dup = next((n for i, n in enumerate(items) if n in items[:i]), None)
        if dup is not None:
            raise root.error(f"{kind} {dup!r} declared twice")
    return SystemSpec(
        name=root.require("Name"),
        applications=tuple(apps),
        devices=tuple(devices),
        segments=tuple(SegmentSpec(s.require("Name"), s.get("Type") or "")
                       for s in root.findall("Segment")),
        links=tuple(LinkSpec(lk.require("SegmentName"), lk.require("CommResource"))
                    for lk in root.findall("Link")),
        mappings=tuple(MappingSpec(m.require("From"), m.require("To"))
                       for m in root.findall("Mapping")),
        comment=root.get("Comment") or "",
        source=root.file,
    )


def read_system(path: str | Path, data_types: DataTypeTable | None = None) -> SystemSpec:
    """Read a `.sys` file into a frozen `SystemSpec`."""
    return read_system_element(parse_xml_file(path), data_types)


def read_sub_element(root: XmlElement, data_types: DataTypeTable | None = None) -> SubAppType:
    """The subapplication type a `<SubAppType>` element describes."""
    if root.tag != "SubAppType":
        raise root.error(f"expected <SubAppType>, got <{root.tag}>")
    name = root.require("Name")
    itf_elem = root.find("SubAppInterfaceList") or root.find("InterfaceList")
    interface = read_interface(itf_elem, data_types or {}) if itf_elem is not None \
        else Interface()
    net_elem = root.find("SubAppNetwork") or root.find("FBNetwork")
    network = read_network(net_elem) if net_elem is not None else None
    if network is None:
        raise root.error(f"subapp type {name} has no <SubAppNetwork>")
    return SubAppType(name, interface, root.get("Comment") or "", root.file, network)


def read_sub(path: str | Path, data_types: DataTypeTable | None = None) -> SubAppType:
    """Read a `.sub` file (subapplication type: interface and network)."""
    return read_sub_element(parse_xml_file(path), data_types)
