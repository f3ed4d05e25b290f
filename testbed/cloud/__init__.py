"""The cloud side: a Sparkplug B primary host with telemetry storage, twins and deployments.

`CloudService` is the host (`testbed cloud` runs it alone); `TelemetryDb` the per-stream
SQLite store it ingests into; `testbed.cloud.protocol` the twin/deploy metric vocabulary
shared with the edge (`testbed.deploy`, `fb.cloud`).
"""

from testbed.cloud.protocol import (
    DEPLOY_PAYLOAD,
    DEPLOY_REQUEST,
    DEPLOY_RESULT,
    TWIN_DESIRED,
    TWIN_REPORTED,
    DeployKind,
    DeployRequest,
    DeployResult,
    TwinDocument,
    edge_control_metrics,
    sha256_hex,
)
from testbed.cloud.service import CloudConfig, CloudService, CloudState, CloudStatistics, Twin
from testbed.cloud.telemetry import (
    CloudStoreError,
    IngestOutcome,
    IngestRecord,
    IngestValue,
    Sample,
    StreamInfo,
    TelemetryDb,
)

__all__ = [
    "DEPLOY_PAYLOAD",
    "DEPLOY_REQUEST",
    "DEPLOY_RESULT",
    "TWIN_DESIRED",
    "TWIN_REPORTED",
    "CloudConfig",
    "CloudService",
    "CloudState",
    "CloudStatistics",
    "CloudStoreError",
    "DeployKind",
    "DeployRequest",
    "DeployResult",
    "IngestOutcome",
    "IngestRecord",
    "IngestValue",
    "Sample",
    "StreamInfo",
    "TelemetryDb",
    "Twin",
    "TwinDocument",
    "edge_control_metrics",
    "sha256_hex",
]
