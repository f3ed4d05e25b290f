"""MQTT for the edge: a supervised asyncio client, a durable store-and-forward publisher, brokers.

The Sparkplug B codec lives in `drivers.mqtt.sparkplug` and builds on these names.
"""

from drivers.mqtt.backoff import backoff_delay_s
from drivers.mqtt.client import ClientState, Delivery, MqttClient, MqttClientStatistics
from drivers.mqtt.config import (
    MqttClientConfig,
    MqttProtocol,
    ReconnectConfig,
    TlsConfig,
    WillConfig,
)
from drivers.mqtt.embedded_broker import BrokerState, EmbeddedBroker, EmbeddedBrokerConfig
from drivers.mqtt.forwarder import (
    ForwarderConfig,
    ForwarderState,
    ForwarderStatistics,
    MessageEncoder,
    OutgoingMessage,
    StampedPayload,
    StoreForwardPublisher,
    parse_stamped,
    raw_payload,
    stamp_store_id,
)
from drivers.mqtt.mosquitto import MosquittoBroker, MosquittoConfig, MosquittoState, find_mosquitto
from drivers.mqtt.pki import TestPki, generate_test_pki
from drivers.mqtt.store import (
    MessageStore,
    StoreConfig,
    StoredMessage,
    StoreError,
    StoreFullError,
    StoreOverflow,
    StoreState,
    StoreStatistics,
)
from drivers.mqtt.subscription import (
    ReceivedMessage,
    Subscription,
    SubscriptionOverflow,
    SubscriptionStatistics,
)

__all__ = [
    "BrokerState",
    "ClientState",
    "Delivery",
    "EmbeddedBroker",
    "EmbeddedBrokerConfig",
    "ForwarderConfig",
    "ForwarderState",
    "ForwarderStatistics",
    "MessageEncoder",
    "MessageStore",
    "MosquittoBroker",
    "MosquittoConfig",
    "MosquittoState",
    "MqttClient",
    "MqttClientConfig",
    "MqttClientStatistics",
    "MqttProtocol",
    "OutgoingMessage",
    "ReceivedMessage",
    "ReconnectConfig",
    "StampedPayload",
    "StoreConfig",
    "StoreError",
    "StoreForwardPublisher",
    "StoreFullError",
    "StoreOverflow",
    "StoreState",
    "StoreStatistics",
    "StoredMessage",
    "Subscription",
    "SubscriptionOverflow",
    "SubscriptionStatistics",
    "TestPki",
    "TlsConfig",
    "WillConfig",
    "backoff_delay_s",
    "find_mosquitto",
    "generate_test_pki",
    "parse_stamped",
    "raw_payload",
    "stamp_store_id",
]
