"""ONNX_INFER's prepared one-sample inline path (bound buffers): same results as a plain run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import pump, scale_model  # type: ignore[import-not-found]

from testbed.ai.session import ModelSession
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource


def _ready(res: Resource, model: Path, mode: str = "inline") -> FBInstance:
    fb = res.create_fb("AI", "ONNX_INFER_1_1")
    res.write_parameter("AI.QI", "TRUE")
    res.write_parameter("AI.MODEL", str(model))
    res.write_parameter("AI.MODE", mode)
    fb.set("STATUS", "")
    res.inject("AI.INIT")
    pump(res, lambda: fb.get("STATUS") != "")
    assert fb.get("QO") is True, fb.get("STATUS")
    return fb


def _req(res: Resource, fb: FBInstance, value: object) -> object:
    fb.set("SD_1", value)
    res.inject("AI.REQ")
    res.run_until_idle()
    assert fb.get("QO") is True, fb.get("STATUS")
    return fb.get("RD_1")


@pytest.fixture
def running(res: Resource) -> Resource:
    res.start()
    res.run_until_idle()
    return res


@pytest.mark.parametrize("form", ["float32", "float64 1x64", "list"])
def test_one_sample_matches_a_plain_session_run(running: Resource, models: dict[str, Path],
                                                form: str) -> None:
    """A one-sample REQ (array, 1 x n array of another dtype, or list) gives run()'s output."""
    fb = _ready(running, models["ref"])
    x = np.random.default_rng(1).normal(size=64).astype(np.float32)
    value: object = {"float32": x, "float64 1x64": x.astype(np.float64).reshape(1, 64),
                     "list": [float(v) for v in x]}[form]
    rd = _req(running, fb, value)
    expected = ModelSession(models["ref"]).run({"x": x.reshape(1, 64)})[0][0]
    assert isinstance(rd, np.ndarray)
    np.testing.assert_allclose(rd, expected, rtol=1e-6)
    assert not rd.flags.writeable
    assert fb.inline_runs == 1


def test_earlier_results_are_not_overwritten_by_later_events(
        running: Resource, models: dict[str, Path]) -> None:
    """RD_1 of one CNF keeps its values after the next REQ reuses the bound buffers."""
    fb = _ready(running, models["x2"])
    first = _req(running, fb, np.ones(4, np.float32))
    second = _req(running, fb, np.full(4, 5.0, np.float32))
    assert list(first) == [2.0] * 4  # type: ignore[call-overload]
    assert list(second) == [10.0] * 4  # type: ignore[call-overload]


def test_scalar_sample_gives_a_scalar(running: Resource, tmp_path: Path) -> None:
    """A model with one value per sample takes a bare number and answers with a float."""
    model = tmp_path / "one.onnx"
    model.write_bytes(scale_model(2.0, n=1))
    fb = _ready(running, model)
    assert _req(running, fb, 3) == 6.0
    assert _req(running, fb, 1.5) == 3.0


def test_batches_and_bad_data_still_take_the_general_path(
        running: Resource, models: dict[str, Path]) -> None:
    """Two samples come back as a 2 x n array; text data is reported in STATUS."""
    fb = _ready(running, models["x2"])
    rd = _req(running, fb, np.arange(8, dtype=np.float32))
    np.testing.assert_allclose(rd, 2.0 * np.arange(8).reshape(2, 4))  # type: ignore[arg-type]
    fb.set("SD_1", ["a", "b", "c", "d"])
    running.inject("AI.REQ")
    running.run_until_idle()
    assert fb.get("QO") is False
    assert "x2.onnx" in fb.get("STATUS")
    assert _req(running, fb, [1.0, 2.0, 3.0, 4.0]) is not None  # the path recovers


def test_model_swap_rebinds_the_buffers(running: Resource, models: dict[str, Path]) -> None:
    """After INIT+ with another model, one-sample REQs run the new model."""
    fb = _ready(running, models["x2"])
    assert list(_req(running, fb, [1.0] * 4)) == [2.0] * 4  # type: ignore[call-overload]
    running.write_parameter("AI.MODEL", str(models["x3"]))
    fb.set("STATUS", "")
    running.inject("AI.INIT")
    pump(running, lambda: fb.get("STATUS") != "")
    assert list(_req(running, fb, [1.0] * 4)) == [3.0] * 4  # type: ignore[call-overload]
