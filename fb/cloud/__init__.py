"""Cloud FBs: Sparkplug telemetry, commands and the device twin over a shared edge link.

Families `CLOUD_TELEMETRY_n`, `CLOUD_COMMAND_n` and the type `CLOUD_TWIN` (see `fb.cloud.fbs`);
the link they share per device is described in `fb.cloud.link`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fb.cloud.fbs import CLOUD_TWIN, cloud_command_type, cloud_telemetry_type
from fb.cloud.link import CloudLinkId, edge_link, parse_link_id, sparkplug_type_of

if TYPE_CHECKING:
    from testbed.library import TypeLibrary

__all__ = [
    "CLOUD_TWIN",
    "CloudLinkId",
    "cloud_command_type",
    "cloud_telemetry_type",
    "edge_link",
    "parse_link_id",
    "register",
    "sparkplug_type_of",
]


def register(library: TypeLibrary, origin: str = "fb (native)") -> None:
    """Add the cloud FB types to `library`."""
    library.add(CLOUD_TWIN.FB_TYPE, origin)
    library.add_family(r"CLOUD_TELEMETRY_(\d+)", cloud_telemetry_type, origin)
    library.add_family(r"CLOUD_COMMAND_(\d+)", cloud_command_type, origin)
