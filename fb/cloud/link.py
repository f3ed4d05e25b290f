"""The edge link the cloud FBs share: parsed from their ID, owned by the device's I/O pool.

Ownership: the first cloud FB of a device that INITs with a given ID opens an `EdgeLink` as a
shared session of the device's `IoPool` (`fb.io.pool`): one MQTT session, one store, one
Sparkplug edge node per (broker, group, edge node, store), reference counted by the FBs'
leases. When the last FB using it gives its lease back (INIT-, resource stop, deletion), the
pool closes the link (NDEATH, store closed). No FB owns a task of its own.

ID: `mqtt://[user:password@]host[:port]/GROUP/EDGE_NODE?host=PRIMARY_HOST&store=PATH`
(`mqtts://` for TLS with `ca=PATH`; `host` optional; `store` defaults to
`edge-GROUP-EDGE_NODE.db` in the working directory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import SecretStr, ValidationError

from drivers.errors import DriverConfigError
from drivers.mqtt import MqttClientConfig, StoreConfig, TlsConfig
from drivers.mqtt.edge_link import EdgeLink, EdgeLinkConfig
from drivers.mqtt.sparkplug import DataType, EdgeNodeConfig
from fb.io.pool import IoLease
from testbed.cloud.protocol import edge_control_metrics

__all__ = ["CloudLinkId", "edge_link", "parse_link_id", "sparkplug_type_of"]


@dataclass(frozen=True, slots=True)
class CloudLinkId:
    """A parsed cloud FB ID: what identifies (and configures) one shared edge link."""

    config: EdgeLinkConfig
    key: tuple[str, ...]


def parse_link_id(text: str) -> CloudLinkId:
    """Parse an ID string (see the module docstring); DriverConfigError names the problem."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise DriverConfigError(
            f"ID {text!r}: expected mqtt://host[:port]/GROUP/EDGE_NODE[?host=..&store=..]"
        )
    path = [p for p in parts.path.split("/") if p]
    if len(path) != 2:
        raise DriverConfigError(f"ID {text!r}: the path must be /GROUP/EDGE_NODE")
    group_id, edge_node_id = (unquote(p) for p in path)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"host", "store", "ca"}
    if unknown:
        raise DriverConfigError(f"ID {text!r}: unknown option(s) {sorted(unknown)}")
    store = Path(query.get("store") or f"edge-{group_id}-{edge_node_id}.db")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        tls = None
        if parts.scheme == "mqtts":
            ca = query.get("ca")
            tls = TlsConfig(ca_file=Path(ca) if ca else None)
        config = EdgeLinkConfig(
            mqtt=MqttClientConfig(
                host=parts.hostname,
                port=port,
                tls=tls,
                username=parts.username,
                password=SecretStr(parts.password) if parts.password else None,
            ),
            node=EdgeNodeConfig(
                group_id=group_id,
                edge_node_id=edge_node_id,
                primary_host_id=query.get("host") or None,
                data_qos=1,
            ),
            store=StoreConfig(path=store),
        )
    except (ValueError, ValidationError) as exc:
        raise DriverConfigError(f"ID {text!r}: {exc}") from exc
    key = ("cloud-link", parts.scheme, parts.hostname, str(port), group_id, edge_node_id,
           str(store.resolve()))
    return CloudLinkId(config, key)


async def edge_link(lease: IoLease, link_id: CloudLinkId) -> EdgeLink:
    """The shared link for `link_id` in the lease's pool (opened on first use)."""
    link: EdgeLink = await lease.session(
        link_id.key, lambda: EdgeLink(link_id.config, node_metrics=edge_control_metrics())
    )
    return link


_IEC_TO_SPARKPLUG = {
    "BOOL": DataType.BOOLEAN,
    "SINT": DataType.INT8,
    "INT": DataType.INT16,
    "DINT": DataType.INT32,
    "LINT": DataType.INT64,
    "USINT": DataType.UINT8,
    "UINT": DataType.UINT16,
    "UDINT": DataType.UINT32,
    "ULINT": DataType.UINT64,
    "BYTE": DataType.UINT8,
    "WORD": DataType.UINT16,
    "DWORD": DataType.UINT32,
    "LWORD": DataType.UINT64,
    "REAL": DataType.FLOAT,
    "LREAL": DataType.DOUBLE,
    "STRING": DataType.STRING,
    "WSTRING": DataType.STRING,
}


def sparkplug_type_of(iec_type: str | None) -> DataType:
    """The Sparkplug datatype for an IEC elementary type (unknown or unset: Double)."""
    return _IEC_TO_SPARKPLUG.get(iec_type or "", DataType.DOUBLE)
