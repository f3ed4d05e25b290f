"""Errors of the edge-AI runtime (a branch of the `testbed.errors` tree).

    TestbedError
    └── ModelError            a model that cannot be loaded, does not match what the FB
        │                     declares, or fails to run (names the model file and tensor)
        ├── RegistryError     a model registry operation that cannot be done
        └── FederatedError    a federated round that cannot complete (bad payload,
                              missing or late site update, transport failure)
"""

from __future__ import annotations

from testbed.errors import TestbedError

__all__ = ["FederatedError", "ModelError", "RegistryError"]


class ModelError(TestbedError):
    """A model that cannot be loaded, validated against its FB, or run."""


class RegistryError(ModelError):
    """A registry install, activation or rollback that cannot be done."""


class FederatedError(ModelError):
    """A federated round that cannot complete: bad payload, missing site, transport failure."""
