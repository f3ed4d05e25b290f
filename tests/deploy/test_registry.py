"""ModelRegistry / VersionedFiles: verified installs, active and previous versions, rollback."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from testbed.deploy import DeployError, ModelRegistry


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_install_activates_and_rollback_restores_previous(tmp_path: Path) -> None:
    """Each install becomes active; rollback makes the one before active again."""
    registry = ModelRegistry(tmp_path / "models")
    assert registry.active("bearing") is None
    registry.install("bearing", "1.0", b"one", _sha(b"one"))
    second = registry.install("bearing", "1.1", b"two", _sha(b"two"))
    active = registry.active("bearing")
    assert active == second
    assert active.path.read_bytes() == b"two"
    assert active.path == tmp_path / "models" / "bearing" / "1.1" / "model.onnx"
    restored = registry.rollback("bearing")
    assert restored.version == "1.0"
    assert registry.active("bearing") == restored
    assert registry.versions("bearing") == ["1.0", "1.1"]
    with pytest.raises(DeployError, match="no previous version"):
        registry.rollback("bearing")


def test_hash_mismatch_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    """A file whose sha256 differs from the announced one is refused; the active one stays."""
    registry = ModelRegistry(tmp_path)
    registry.install("m", "1", b"good", _sha(b"good"))
    with pytest.raises(DeployError, match="sha256 mismatch"):
        registry.install("m", "2", b"tampered", _sha(b"good"))
    active = registry.active("m")
    assert active is not None
    assert active.version == "1"
    assert registry.versions("m") == ["1"]


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    """Names and versions cannot escape the registry folder."""
    registry = ModelRegistry(tmp_path)
    with pytest.raises(DeployError, match="may only contain"):
        registry.install("../etc", "1", b"x", _sha(b"x"))
    with pytest.raises(DeployError, match="may only contain"):
        registry.install("m", "..", b"x", _sha(b"x"))


def test_state_survives_a_new_registry_object(tmp_path: Path) -> None:
    """The active pointer is on disk: a new registry on the same folder sees it."""
    ModelRegistry(tmp_path).install("m", "2", b"x", _sha(b"x"))
    active = ModelRegistry(tmp_path).active("m")
    assert active is not None
    assert active.sha256 == _sha(b"x")
