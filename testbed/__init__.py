"""testbed: an IT/OT convergence runtime for the industrial edge (IEC 61499 on asyncio).

The scripting API (`load`, `Network`, `Application`, `FiredEvent`) is the public
contract for scripts and tests; see `testbed.api`.
"""

from testbed.api import Application, FiredEvent, Network, Recording, load
from testbed.errors import PathError, TestbedError

__version__ = "0.1.0"

__all__ = ["Application", "FiredEvent", "Network", "PathError", "Recording", "TestbedError",
           "load"]
