"""Link emulation: latency, jitter, loss, bandwidth and 802.1Qbv-style gate schedules.

`LinkModel` is a deterministic model of one link (computed, not slept);
`EmulatedLink` forwards real UDP datagrams on loopback through it, for the
scenarios' controller-to-I/O links and cross-site WAN links.
"""

from drivers.net.gate import GateEntry, GateSchedule
from drivers.net.link import Delivery, LinkModel, LinkProfile, LinkStatistics
from drivers.net.proxy import EmulatedLink, LinkPort

__all__ = ["Delivery", "EmulatedLink", "GateEntry", "GateSchedule", "LinkModel", "LinkPort",
           "LinkProfile", "LinkStatistics"]
