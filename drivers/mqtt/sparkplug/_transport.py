"""What the Sparkplug roles need from an MQTT client, as a small Protocol.

The project's MQTT client (drivers/mqtt) or a test adapter over paho implements it; the
Sparkplug code never imports an MQTT library, so it runs against any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One MQTT message to publish (also the form of the NDEATH will)."""

    topic: str
    payload: bytes = field(repr=False)
    qos: int
    retain: bool


class SparkplugTransport(Protocol):
    """An MQTT client as the Sparkplug roles use it.

    `publish` must put messages on the wire in call order; it may return once the message is
    queued (QoS 0) or acknowledged (QoS 1), as the client decides. The Sparkplug roles wrap
    every call in their own deadline and expect `drivers.errors` exceptions
    (ConnectionLost, DriverTimeout) on failure.
    """

    def set_will(self, will: OutgoingMessage | None) -> None:
        """Use `will` as the MQTT Last Will of the next CONNECT (None: no will)."""

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Publish one message."""

    async def subscribe(self, topic: str, qos: int) -> None:
        """Subscribe to a topic filter; messages arrive through the role's handle_message."""
