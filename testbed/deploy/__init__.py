"""Edge-side remote deployment: applications (.fboot) and model files, verified and versioned.

`DeployAgent` takes `Deploy/Request` commands from an `EdgeLink` (see
`testbed.cloud.protocol` for the wire format), `ApplicationRunner` swaps 4diac applications
atomically, `ModelRegistry` keeps model files by version for the AI function blocks.
"""

from testbed.deploy.agent import AgentState, DeployAgent, DeployAgentStatistics
from testbed.deploy.application import ApplicationRunner, RunnerState, RunningApplication
from testbed.deploy.registry import DeployError, ModelRegistry, VersionedFile, VersionedFiles

__all__ = [
    "AgentState",
    "ApplicationRunner",
    "DeployAgent",
    "DeployAgentStatistics",
    "DeployError",
    "ModelRegistry",
    "RunnerState",
    "RunningApplication",
    "VersionedFile",
    "VersionedFiles",
]
