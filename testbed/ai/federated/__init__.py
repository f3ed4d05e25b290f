"""Federated learning (FedAvg) across edge sites with non-IID data; only weights travel.

`run_federated(config, transport)` simulates every site's pump data, runs the rounds through
an in-process or MQTT transport (`WeightPayload` bytes on topics `testbed/fl/<round>/<site>`
and `testbed/fl/<round>/global`), and reports per-round scores of local-only, federated and
centralized models with round times and bytes; the final model is exported to ONNX.
"""

from testbed.ai.federated.config import FaultRuns, FederatedConfig, SiteSpec, default_sites
from testbed.ai.federated.data import FederatedData, SiteData, build_data
from testbed.ai.federated.mqtt_transport import MqttTransport
from testbed.ai.federated.report import (
    FederatedReport,
    ModelFile,
    RoundReport,
    Score,
    SiteScore,
    SiteSummary,
)
from testbed.ai.federated.run import (
    MODEL_FILE,
    FederatedResult,
    fedavg,
    run_federated,
    score,
    write_outputs,
)
from testbed.ai.federated.transport import (
    FederatedTransport,
    InProcessTransport,
    TransportStatistics,
)
from testbed.ai.federated.wire import PayloadKind, WeightPayload, payload_size

__all__ = [
    "MODEL_FILE",
    "FaultRuns",
    "FederatedConfig",
    "FederatedData",
    "FederatedReport",
    "FederatedResult",
    "FederatedTransport",
    "InProcessTransport",
    "ModelFile",
    "MqttTransport",
    "PayloadKind",
    "RoundReport",
    "Score",
    "SiteData",
    "SiteScore",
    "SiteSpec",
    "SiteSummary",
    "TransportStatistics",
    "WeightPayload",
    "build_data",
    "default_sites",
    "fedavg",
    "payload_size",
    "run_federated",
    "score",
    "write_outputs",
]
