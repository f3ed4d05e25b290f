"""IP transports for FORTE-style comm layers: UDP unicast/multicast and TCP, loop-callback driven.

No FB or testbed knowledge: endpoints take bytes and hand bytes to callbacks that
run on the asyncio loop's thread. Errors are `drivers.errors` types.
"""

from drivers.ip.tcp import (
    DEFAULT_CONNECT_TIMEOUT_S,
    TcpConnection,
    TcpConnector,
    TcpListener,
    TcpState,
    TcpStatistics,
    connect_tcp,
    listen_tcp,
)
from drivers.ip.udp import (
    DatagramHandler,
    UdpEndpoint,
    UdpState,
    UdpStatistics,
    open_udp_receiver,
    open_udp_sender,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DatagramHandler",
    "TcpConnection",
    "TcpConnector",
    "TcpListener",
    "TcpState",
    "TcpStatistics",
    "UdpEndpoint",
    "UdpState",
    "UdpStatistics",
    "connect_tcp",
    "listen_tcp",
    "open_udp_receiver",
    "open_udp_sender",
]
