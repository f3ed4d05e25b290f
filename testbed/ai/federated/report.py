"""The federated run's report: per-round scores of local-only, federated and centralized models.

JSON (`federated_report.json`) for scripts, Markdown (`federated_report.md`) for people.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from testbed.ai.dataset import CLASS_NAMES
from testbed.ai.federated.config import FederatedConfig

__all__ = ["FederatedReport", "ModelFile", "RoundReport", "Score", "SiteScore", "SiteSummary"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Score(_Frozen):
    """Classifier quality on the common held-out set."""

    accuracy: float
    macro_f1: float


class SiteScore(Score):
    """A local-only model's score, trained on one site's data alone."""

    site: str


class RoundReport(_Frozen):
    """One round: scores after it, its duration and the bytes it moved."""

    round: int
    local: tuple[SiteScore, ...]
    federated: Score
    centralized: Score
    fl_round_time_s: float
    """From the aggregator sending the previous global model to sending this round's."""
    fl_bytes_per_round: int
    """`upload_bytes + download_bytes`."""
    upload_bytes: int
    """Every site's update payload."""
    download_bytes: int
    """The global payload, once per site."""


class SiteSummary(_Frozen):
    """Where a site runs and what its training data holds."""

    name: str
    speed_rpm: tuple[float, float]
    valve_opening: tuple[float, float]
    runs: int
    blocks_per_class: tuple[int, ...]


class ModelFile(_Frozen):
    """The exported federated model, checked through onnxruntime on the held-out set."""

    file: str
    sha256: str
    onnx_accuracy: float


class FederatedReport(_Frozen):
    """Everything `testbed train --federated` measured."""

    config: FederatedConfig
    transport: str
    classes: tuple[str, ...] = CLASS_NAMES
    sites: tuple[SiteSummary, ...]
    test_blocks_per_class: tuple[int, ...]
    update_payload_bytes: int
    global_payload_bytes: int
    setup_bytes: int
    """Round 0: feature statistics up, the initial model down."""
    rounds: tuple[RoundReport, ...]
    centralise_feature_bytes: int
    """Every training block's features (float32) and label (1 byte), sent once."""
    centralise_waveform_bytes: int
    """Every training block's raw vibration samples (float32), sent once."""
    model: ModelFile

    @property
    def final(self) -> RoundReport:
        return self.rounds[-1]

    def without_timings(self) -> FederatedReport:
        """The same report with round times zeroed (for comparing runs)."""
        rounds = tuple(r.model_copy(update={"fl_round_time_s": 0.0}) for r in self.rounds)
        return self.model_copy(update={"rounds": rounds})

    def markdown(self) -> str:
        c = self.config
        lines = [
            "# Federated learning report", "",
            f"FedAvg over {len(self.sites)} sites, {c.rounds} rounds of {c.local_epochs} local "
            f"epochs (seed {c.seed}, transport {self.transport}). Local-only and centralized "
            f"models train {c.local_epochs} epochs per round too ({c.total_epochs} in total); "
            "all are scored on one held-out set drawn from every site's operating points.", "",
            "## Sites (non-IID split)", "",
            "| site | speed (rpm) | valve opening | fault runs (x runs at severities in) | "
            f"runs | blocks per class ({', '.join(self.classes)}) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for s, spec in zip(self.sites, c.sites, strict=True):
            faults = "; ".join(
                f"{f.fault} x{f.runs_per_severity} at "
                + "/".join(f"{v:.3f}" for v in f.severities_in) for f in spec.faults)
            lines.append(f"| {s.name} | {s.speed_rpm[0]:.0f}-{s.speed_rpm[1]:.0f} | "
                         f"{s.valve_opening[0]:.2f}-{s.valve_opening[1]:.2f} | {faults} | "
                         f"{s.runs} | {list(s.blocks_per_class)} |")
        lines += ["", f"Held-out blocks per class: {list(self.test_blocks_per_class)}", "",
                  "## Accuracy (macro F1) per round", ""]
        header = ["round", *(f"local {s.name}" for s in self.sites), "federated", "centralized",
                  "fl_round_time_s", "fl_bytes_per_round"]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for r in self.rounds:
            cells = [str(r.round), *(f"{s.accuracy:.3f} ({s.macro_f1:.3f})" for s in r.local),
                     f"{r.federated.accuracy:.3f} ({r.federated.macro_f1:.3f})",
                     f"{r.centralized.accuracy:.3f} ({r.centralized.macro_f1:.3f})",
                     f"{r.fl_round_time_s:.3f}", str(r.fl_bytes_per_round)]
            lines.append("| " + " | ".join(cells) + " |")
        total = sum(r.fl_bytes_per_round for r in self.rounds) + self.setup_bytes
        lines += [
            "", "## Bytes", "",
            f"- one site update: {self.update_payload_bytes} B; one global model: "
            f"{self.global_payload_bytes} B; round 0 (statistics and initial model): "
            f"{self.setup_bytes} B",
            f"- all rounds including round 0: {total} B",
            f"- centralising the training features instead: {self.centralise_feature_bytes} B; "
            f"the raw vibration blocks: {self.centralise_waveform_bytes} B", "",
            "## Model", "",
            f"`{self.model.file}` (sha256 `{self.model.sha256}`): the final global model; "
            f"accuracy through onnxruntime on the held-out set {self.model.onnx_accuracy:.3f}.",
            "",
        ]
        return "\n".join(lines)
