"""Versioned file registries on disk: what was deployed, what is active, what came before.

Layout under the registry directory (one folder per name, one per version):

    <root>/<name>/<version>/<file>      the file, written once (tmp file + rename)
    <root>/<name>/<version>/sha256      its hex sha256
    <root>/<name>/state.json            {"history": ["1.0", "1.1"]}: activated versions, active last

`rollback` pops the active version off the history, so the one before is active again; the
files stay on disk. Every write goes through a temporary file and `os.replace`, so a crash
leaves either the old or the new state, never half of one.

`ModelRegistry` is the small API the AI worker reads:

```python
registry = ModelRegistry(Path("models"))
registry.install("bearing", "1.2", data, sha256)   # verifies the hash, activates 1.2
registry.active("bearing").path                    # models/bearing/1.2/model.onnx
registry.rollback("bearing")                       # 1.1 is active again
```
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import TestbedError

__all__ = ["DeployError", "ModelRegistry", "VersionedFile", "VersionedFiles"]

_SAFE = re.compile(r"^[A-Za-z0-9_.+-]+$")


class DeployError(TestbedError):
    """A deployment that was refused or failed (hash mismatch, bad file, nothing to roll back)."""


@dataclass(frozen=True, slots=True)
class VersionedFile:
    """One stored version."""

    name: str
    version: str
    path: Path
    sha256: str


def _safe(kind: str, value: str) -> str:
    if not _SAFE.match(value) or value in (".", ".."):
        raise DeployError(f"{kind} {value!r} may only contain letters, digits and _ . + -")
    return value


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class VersionedFiles:
    """Versions of named files with an active pointer and a rollback history (sync, small)."""

    def __init__(self, root: Path, file_name: str) -> None:
        self._root = root
        self._file_name = file_name

    @property
    def root(self) -> Path:
        return self._root

    def stage(self, name: str, version: str, data: bytes, sha256: str) -> VersionedFile:
        """Verify `data` against `sha256` and store it as `name`/`version` (not yet active)."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise DeployError(
                f"{name} {version}: sha256 mismatch (expected {sha256}, got {actual})"
            )
        folder = self._root / _safe("name", name) / _safe("version", version)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self._file_name
        _write_atomically(path, data)
        _write_atomically(folder / "sha256", actual.encode())
        return VersionedFile(name, version, path, actual)

    def activate(self, name: str, version: str) -> VersionedFile:
        """Make a staged version the active one (it goes on top of the history)."""
        stored = self.get(name, version)
        history = [v for v in self._history(name) if v != version]
        self._save_history(name, [*history, version])
        return stored

    def install(self, name: str, version: str, data: bytes, sha256: str) -> VersionedFile:
        """`stage` then `activate`."""
        self.stage(name, version, data, sha256)
        return self.activate(name, version)

    def active(self, name: str) -> VersionedFile | None:
        """The active version, or None if nothing was installed."""
        history = self._history(name)
        return self.get(name, history[-1]) if history else None

    def previous(self, name: str) -> VersionedFile | None:
        """The version `rollback` would make active, if any."""
        history = self._history(name)
        return self.get(name, history[-2]) if len(history) >= 2 else None

    def rollback(self, name: str) -> VersionedFile:
        """Deactivate the active version; the previous one is active again."""
        history = self._history(name)
        if len(history) < 2:
            raise DeployError(f"{name}: no previous version to roll back to")
        self._save_history(name, history[:-1])
        return self.get(name, history[-2])

    def versions(self, name: str) -> list[str]:
        """Every stored version of `name` (sorted by name)."""
        folder = self._root / _safe("name", name)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / self._file_name).is_file())

    def get(self, name: str, version: str) -> VersionedFile:
        folder = self._root / _safe("name", name) / _safe("version", version)
        path = folder / self._file_name
        try:
            sha = (folder / "sha256").read_text().strip()
        except OSError as exc:
            raise DeployError(f"{name} {version} is not stored in {self._root}") from exc
        return VersionedFile(name, version, path, sha)

    def _history(self, name: str) -> list[str]:
        state = self._root / _safe("name", name) / "state.json"
        if not state.is_file():
            return []
        try:
            history = json.loads(state.read_text())["history"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DeployError(f"{state}: unreadable registry state: {exc}") from exc
        if not isinstance(history, list) or not all(isinstance(v, str) for v in history):
            raise DeployError(f"{state}: 'history' must be a list of version strings")
        return history

    def _save_history(self, name: str, history: list[str]) -> None:
        folder = self._root / _safe("name", name)
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(folder / "state.json", json.dumps({"history": history}).encode())


class ModelRegistry(VersionedFiles):
    """Model files (ONNX) by name and version; the AI worker reads `active(name).path`."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, "model.onnx")
