"""Load a 4diac system (`.sys`) as a scripting-API network."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from testbed.errors import ConfigError

if TYPE_CHECKING:
    from testbed.api import Network
    from testbed.runtime.device import Device

__all__ = ["network_from_system"]


def network_from_system(device: Device, path: Path) -> Network:
    """Build every application of the system file on `device` (see `testbed.api.load`)."""
    raise ConfigError(f"{path}: .sys loading arrives with the 4diac system reader")
