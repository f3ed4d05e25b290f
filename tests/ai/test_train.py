"""Training from the pump model: reproducible bytes and the detection targets on held-out runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.ai.train import TrainConfig, TrainResult, train, write_outputs


@pytest.fixture(scope="module")
def small() -> TrainResult:
    return train(TrainConfig.small(seed=7))


def test_same_seed_same_model_bytes(small: TrainResult) -> None:
    """Training twice with the same seed gives byte-identical ONNX files and card."""
    again = train(TrainConfig.small(seed=7))
    assert again.detector_onnx == small.detector_onnx
    assert again.classifier_onnx == small.classifier_onnx
    assert again.card == small.card


def test_other_seed_other_model(small: TrainResult) -> None:
    """A different seed draws other runs and gives a different classifier."""
    other = train(TrainConfig.small(seed=8))
    assert other.classifier_onnx != small.classifier_onnx


def test_f1_targets_on_held_out_runs(small: TrainResult) -> None:
    """Detection F1 >= 0.9 for moderate (0.014 in) and severe (0.021 in) wear, held out."""
    card = small.card
    assert card.detection_for(0.014).f1 >= 0.9
    assert card.detection_for(0.021).f1 >= 0.9
    assert card.detection_for(0.014).positives > 0
    for delay in card.delay:
        if delay.severity_in >= 0.014:
            assert delay.detected == delay.runs
            assert delay.max_delay_s is not None
            assert delay.max_delay_s < 2.0


def test_outputs_written_with_card(small: TrainResult, tmp_path: Path) -> None:
    """The model files, JSON card and Markdown card land in the output folder."""
    paths = write_outputs(small, tmp_path)
    assert {p.name for p in paths} == {"bearing_detector.onnx", "bearing_classifier.onnx",
                                       "model_card.json", "model_card.md"}
    assert (tmp_path / "bearing_detector.onnx").read_bytes() == small.detector_onnx
    assert "F1" in (tmp_path / "model_card.md").read_text()
