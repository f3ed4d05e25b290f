"""OPC UA driver on asyncua: supervised client sessions and a simulated-PLC server.

Addresses are NodeIds (``ns=2;s=Foo``) or browse paths (``/Objects/2:Plant/2:Speed``),
also inside FORTE ``opc_ua[...]`` IDs. Values come back with their OPC UA quality.
Errors are those of ``drivers.errors``.
"""

from drivers.opcua.address_space import (
    AddressSpaceSpec,
    ArgumentSpec,
    EngineeringUnitsSpec,
    MethodSpec,
    ObjectSpec,
    VariableSpec,
)
from drivers.opcua.addressing import (
    BrowsePath,
    BrowsePathElement,
    NodeAddress,
    NodeIdAddress,
    NodeIdKind,
    parse_address,
    parse_browse_path,
    parse_node_id,
)
from drivers.opcua.certificates import (
    ApplicationCertificate,
    CertificateFiles,
    generate_application_certificate,
)
from drivers.opcua.client import OpcUaClientSession, OpcUaSessionState, OpcUaSessionStatistics
from drivers.opcua.config import (
    OpcUaClientConfig,
    OpcUaReconnectConfig,
    OpcUaSecurityConfig,
    OpcUaServerConfig,
    OpcUaServerSecurityConfig,
    OpcUaSubscriptionConfig,
    OverflowPolicy,
    SecurityMode,
    SecurityPolicy,
)
from drivers.opcua.errors import OpcUaSecurityError, OpcUaStatusError
from drivers.opcua.forte_id import (
    ForteNodePair,
    ForteOpcUaAction,
    ForteOpcUaId,
    parse_forte_opcua_id,
)
from drivers.opcua.quality import DataValueResult, Quality
from drivers.opcua.server import (
    MethodHandler,
    OpcUaServer,
    OpcUaServerState,
    OpcUaServerStatistics,
)
from drivers.opcua.subscription import (
    OpcUaSubscription,
    OpcUaSubscriptionStatistics,
    SubscriptionClosed,
)

__all__ = [
    "AddressSpaceSpec",
    "ApplicationCertificate",
    "ArgumentSpec",
    "BrowsePath",
    "BrowsePathElement",
    "CertificateFiles",
    "DataValueResult",
    "EngineeringUnitsSpec",
    "ForteNodePair",
    "ForteOpcUaAction",
    "ForteOpcUaId",
    "MethodHandler",
    "MethodSpec",
    "NodeAddress",
    "NodeIdAddress",
    "NodeIdKind",
    "ObjectSpec",
    "OpcUaClientConfig",
    "OpcUaClientSession",
    "OpcUaReconnectConfig",
    "OpcUaSecurityConfig",
    "OpcUaSecurityError",
    "OpcUaServer",
    "OpcUaServerConfig",
    "OpcUaServerSecurityConfig",
    "OpcUaServerState",
    "OpcUaServerStatistics",
    "OpcUaSessionState",
    "OpcUaSessionStatistics",
    "OpcUaStatusError",
    "OpcUaSubscription",
    "OpcUaSubscriptionConfig",
    "OpcUaSubscriptionStatistics",
    "OverflowPolicy",
    "Quality",
    "SecurityMode",
    "SecurityPolicy",
    "SubscriptionClosed",
    "VariableSpec",
    "generate_application_certificate",
    "parse_address",
    "parse_browse_path",
    "parse_forte_opcua_id",
    "parse_node_id",
]
