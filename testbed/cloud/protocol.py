"""The edge-cloud command vocabulary on top of Sparkplug B: twin and deployment metrics.

Everything travels as ordinary Sparkplug node metrics, so any Sparkplug host or tool sees
well-formed NBIRTH/NDATA/NCMD messages (no extra topics):

| metric           | type   | direction           | content                                   |
| ---------------- | ------ | ------------------- | ----------------------------------------- |
| `Twin/Desired`   | String | NCMD (cloud->edge)  | JSON `TwinDocument`: whole desired state  |
| `Twin/Reported`  | String | NDATA (edge->cloud) | JSON `TwinDocument`: whole reported state |
| `Deploy/Request` | String | NCMD                | JSON `DeployRequest` (kind, name, ...)    |
| `Deploy/Payload` | Bytes  | NCMD (same message) | the `.fboot` or model file                |
| `Deploy/Result`  | String | NDATA               | JSON `DeployResult` (echoes request id)   |

The edge declares these metrics (`edge_control_metrics()`) so its NBIRTH announces them and
its edge node accepts the writes. Results and reported twins are stored and forwarded like any
telemetry, so they survive outages; the NBIRTH carries the latest reported twin.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from drivers.mqtt.sparkplug import DataType, MetricSpec

__all__ = [
    "DEPLOY_PAYLOAD",
    "DEPLOY_REQUEST",
    "DEPLOY_RESULT",
    "TWIN_DESIRED",
    "TWIN_REPORTED",
    "DeployKind",
    "DeployRequest",
    "DeployResult",
    "TwinDocument",
    "edge_control_metrics",
    "sha256_hex",
]

TWIN_DESIRED: Final = "Twin/Desired"
TWIN_REPORTED: Final = "Twin/Reported"
DEPLOY_REQUEST: Final = "Deploy/Request"
DEPLOY_PAYLOAD: Final = "Deploy/Payload"
DEPLOY_RESULT: Final = "Deploy/Result"

DeployKind = Literal["application", "model"]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TwinDocument(_Wire):
    """One side of a device twin: properties and the version that produced them."""

    version: int = Field(default=0, ge=0)
    properties: dict[str, JsonValue] = Field(default_factory=dict)


class DeployRequest(_Wire):
    """Header of a deployment; the file itself travels in `Deploy/Payload`."""

    request_id: str = Field(min_length=1, max_length=64)
    kind: DeployKind
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.+-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    action: Literal["apply", "rollback"] = "apply"


class DeployResult(_Wire):
    """What the edge did with a `DeployRequest`."""

    request_id: str
    kind: DeployKind
    name: str
    version: str
    """The version active after the request (the old one when it failed)."""
    ok: bool
    error: str | None = None


def sha256_hex(data: bytes) -> str:
    """Lower-case hex sha256 of `data`, as `DeployRequest.sha256` carries it."""
    return hashlib.sha256(data).hexdigest()


def edge_control_metrics() -> tuple[MetricSpec, ...]:
    """Node metrics an edge declares to take part in twins and remote deployment."""
    return (
        MetricSpec(TWIN_DESIRED, DataType.STRING, None),
        MetricSpec(TWIN_REPORTED, DataType.STRING, None),
        MetricSpec(DEPLOY_REQUEST, DataType.STRING, None),
        MetricSpec(DEPLOY_PAYLOAD, DataType.BYTES, None),
        MetricSpec(DEPLOY_RESULT, DataType.STRING, None),
    )
