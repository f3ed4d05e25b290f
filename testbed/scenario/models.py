"""Model versions a scenario trains at start: `testbed.ai.train` (small config), cached by seed.

Training is deterministic (same seed, same bytes), so the files are cached under
`$XDG_CACHE_HOME/testbed/models/small-seed-N/` (or `~/.cache/...`) and repeated runs
reuse them; the run folder gets a copy of each model card.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import structlog

from testbed.scenario.spec import ModelSpec

__all__ = ["TrainedModel", "cache_dir", "trained_model"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """One model version ready to deploy: its ONNX bytes and where the cached file lives."""

    spec: ModelSpec
    path: Path
    data: bytes


def cache_dir() -> Path:
    """Where trained models are cached (XDG cache, `TESTBED_CACHE_DIR` overrides)."""
    override = os.environ.get("TESTBED_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "testbed" / "models"


def trained_model(spec: ModelSpec, run_dir: Path | None = None) -> TrainedModel:
    """Train (or take from the cache) the model `spec` names; blocking, run it in a thread."""
    from testbed.ai.train import CLASSIFIER_FILE, DETECTOR_FILE, TrainConfig, train, write_outputs

    folder = cache_dir() / f"small-seed-{spec.seed}"
    file = folder / (DETECTOR_FILE if spec.output == "detector" else CLASSIFIER_FILE)
    if not file.is_file():
        result = train(TrainConfig.small(seed=spec.seed))
        staging = folder.with_name(folder.name + f".tmp{os.getpid()}")
        write_outputs(result, staging)
        if folder.exists():  # another run finished first: same bytes, keep theirs
            shutil.rmtree(staging)
        else:
            staging.rename(folder)
        log.info("scenario_model_trained", name=spec.name, version=spec.version, seed=spec.seed)
    if run_dir is not None:
        cards = run_dir / "models"
        cards.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / "model_card.md", cards / f"{spec.name}-{spec.version}.md")
    return TrainedModel(spec, file, file.read_bytes())
