"""ONNX_INFER_n_m on a virtual-clock resource: validation, inline/executor, batching, hot swap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import pump  # type: ignore[import-not-found]

from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource, Tracer


class CnfLog(Tracer):
    """Every CNF fired, with its FB name and a copy of RD_1."""

    def __init__(self) -> None:
        self.cnf: list[tuple[str, bool, object]] = []

    def on_emit(self, fb: FBInstance, event: str) -> None:
        if event == "CNF" and fb.type_name.startswith("ONNX_INFER"):
            rd = fb.get("RD_1")
            self.cnf.append((fb.name, bool(fb.get("QO")),
                             np.array(rd, copy=True) if rd is not None else None))


def make_fb(res: Resource, name: str, model: Path, mode: str = "auto",
            type_name: str = "ONNX_INFER_1_1", **params: str) -> FBInstance:
    fb = res.create_fb(name, type_name)
    res.write_parameter(f"{name}.QI", "TRUE")
    res.write_parameter(f"{name}.MODEL", str(model))
    res.write_parameter(f"{name}.MODE", mode)
    for pin, text in params.items():
        res.write_parameter(f"{name}.{pin}", text)
    return fb


def init(res: Resource, fb: FBInstance) -> None:
    fb.set("STATUS", "")
    res.inject(f"{fb.name}.INIT")
    pump(res, lambda: fb.get("STATUS") != "")


@pytest.fixture
def running(res: Resource) -> Resource:
    res.start()
    res.run_until_idle()
    return res


def test_inline_request_computes_outputs(running: Resource, models: dict[str, Path]) -> None:
    """A one-sample REQ on a fast model runs inline and CNF carries the model's output."""
    fb = make_fb(running, "AI", models["x2"])
    init(running, fb)
    assert fb.get("QO") is True
    assert fb.get("STATUS") == "OK"
    fb.set("SD_1", [1.0, 2.0, 3.0, 4.0])
    running.inject("AI.REQ")
    running.run_until_idle()
    assert list(fb.get("RD_1")) == [2.0, 4.0, 6.0, 8.0]
    assert fb.inline_runs == 1
    assert fb.executor_runs == 0
    running.stop()


def test_missing_model_file_is_reported_in_status(running: Resource, tmp_path: Path) -> None:
    """INIT with a model file that does not exist answers INITO with QO FALSE naming the file."""
    fb = make_fb(running, "AI", tmp_path / "nope.onnx")
    init(running, fb)
    assert fb.get("QO") is False
    assert "nope.onnx" in fb.get("STATUS")
    assert "cannot read" in fb.get("STATUS")


def test_not_an_onnx_file(running: Resource, tmp_path: Path) -> None:
    """A file that is not ONNX is rejected with the file named in STATUS."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    fb = make_fb(running, "AI", bad)
    init(running, fb)
    assert fb.get("QO") is False
    assert "bad.onnx" in fb.get("STATUS")


def test_tensor_count_mismatch(running: Resource, models: dict[str, Path]) -> None:
    """A model with one output on an FB with two RD pins is rejected, naming the tensors."""
    fb = make_fb(running, "AI", models["x2"], type_name="ONNX_INFER_1_2")
    init(running, fb)
    assert fb.get("QO") is False
    assert "x2.onnx" in fb.get("STATUS")
    assert "['y']" in fb.get("STATUS")


def test_connected_array_size_mismatch(running: Resource, models: dict[str, Path]) -> None:
    """SD_1 connected to an ARRAY of 3 REAL cannot feed a 4-value tensor: named error."""
    running.create_fb("SRC", "VIB_FEATURES")  # FEATURES is ANY: no check from it
    fb = make_fb(running, "AI", models["x2"])
    from testbed.fbdef import interface
    from testbed.runtime.service import ServiceFB

    class THREE_REALS(ServiceFB):
        INTERFACE = interface(ei="REQ", eo="CNF(OUT)", outputs="OUT:REAL[3]")

    running.library.add(THREE_REALS.FB_TYPE, "test")
    running.create_fb("ARR", "THREE_REALS")
    running.connect("ARR.OUT", "AI.SD_1")
    init(running, fb)
    status = fb.get("STATUS")
    assert fb.get("QO") is False
    assert "x2.onnx" in status
    assert "'x'" in status
    assert "AI.SD_1" in status


def test_connected_element_kind_mismatch(running: Resource, models: dict[str, Path]) -> None:
    """RD_1 (a float tensor) connected to a BOOL input is rejected naming tensor and pin."""
    fb = make_fb(running, "AI", models["x2"])
    running.create_fb("SW", "E_SWITCH")
    running.connect("AI.RD_1", "SW.G")
    init(running, fb)
    assert fb.get("QO") is False
    assert "'y'" in fb.get("STATUS")
    assert "AI.RD_1" in fb.get("STATUS")


def test_wrong_input_size_at_req(running: Resource, models: dict[str, Path]) -> None:
    """A REQ whose data does not fit the tensor answers CNF with QO FALSE, no exception."""
    fb = make_fb(running, "AI", models["x2"])
    init(running, fb)
    fb.set("SD_1", [1.0, 2.0, 3.0])
    running.inject("AI.REQ")
    running.run_until_idle()
    assert fb.get("QO") is False
    assert "4 values" in fb.get("STATUS")
    assert running.statistics().faults == 0


def test_slow_model_does_not_block_other_fbs(running: Resource, models: dict[str, Path]
                                             ) -> None:
    """While a slow model runs on its executor, another FB's events are processed at once."""
    slow = make_fb(running, "SLOW", models["slow"])
    fast = make_fb(running, "FAST", models["x2"])
    init(running, slow)
    init(running, fast)
    assert slow.lease is not None
    assert not slow.lease.runs_inline(1)
    log = CnfLog()
    running.add_tracer(log)
    slow.set("SD_1", [1.0, 1.0, 1.0, 1.0])
    fast.set("SD_1", [5.0, 5.0, 5.0, 5.0])
    running.inject("SLOW.REQ")
    running.inject("FAST.REQ")
    running.run_until_idle()
    assert [name for name, _, _ in log.cnf] == ["FAST"]
    pump(running, lambda: len(log.cnf) == 2)
    assert log.cnf[1][0] == "SLOW"
    assert log.cnf[1][1] is True
    assert list(log.cnf[1][2]) == [2.0, 2.0, 2.0, 2.0]  # type: ignore[arg-type]


def test_micro_batch_split_back_to_each_fb(running: Resource, models: dict[str, Path]) -> None:
    """Many FBs on one model are batched together and each gets its own row back."""
    fbs = [make_fb(running, f"AI{i}", models["x3"], mode="executor", MAX_WAIT="T#50ms")
           for i in range(32)]
    for fb in fbs:
        init(running, fb)
    log = CnfLog()
    running.add_tracer(log)
    for i, fb in enumerate(fbs):
        fb.set("SD_1", [float(i), float(i) + 0.5, -float(i), 1.0])
        running.inject(f"{fb.name}.REQ")
    running.run_until_idle()
    pump(running, lambda: len(log.cnf) == 32)
    got = {name: rd for name, ok, rd in log.cnf if ok}
    for i in range(32):
        np.testing.assert_allclose(got[f"AI{i}"], 3.0 * np.array([i, i + 0.5, -i, 1.0]))
    lease = fbs[0].lease
    assert lease is not None
    stats = lease.executor.statistics()
    assert stats.samples == 32
    assert stats.batches < 32


def test_array_of_samples_in_one_event(running: Resource, models: dict[str, Path]) -> None:
    """One REQ with an N x 4 array runs N samples and returns an N x 4 array."""
    fb = make_fb(running, "AI", models["x2"])
    init(running, fb)
    batch = np.arange(40, dtype=np.float64).reshape(10, 4)
    fb.set("SD_1", batch)
    log = CnfLog()
    running.add_tracer(log)
    running.inject("AI.REQ")
    pump(running, lambda: len(log.cnf) == 1)
    np.testing.assert_allclose(log.cnf[0][2], 2.0 * batch)  # type: ignore[arg-type]


def test_results_in_request_order_one_cnf_each(running: Resource, models: dict[str, Path]
                                               ) -> None:
    """A burst of REQs from one FB gets one CNF per REQ, in order, each with its own values."""
    fb = make_fb(running, "AI", models["x2"], mode="executor")
    init(running, fb)
    running.create_fb("SINK", "WINDOW_STATS")  # downstream: samples RD_1 at each CNF
    seen: list[float] = []

    class Sink(Tracer):
        def on_emit(self, f: FBInstance, event: str) -> None:
            if f.name == "SINK":
                seen.append(float(f.get("MEAN")))

    running.connect("AI.CNF", "SINK.REQ")
    running.connect("AI.RD_1", "SINK.IN")
    running.add_tracer(Sink())
    n = 50
    for i in range(n):
        fb.set("SD_1", [float(i)] * 4)
        running.inject("AI.REQ")
        running.run_until_idle()
    pump(running, lambda: len(seen) == n)
    running.run_until_idle()
    assert sorted(seen) == seen
    assert seen == [2.0 * i for i in range(n)]


def test_hot_swap_loses_no_event(running: Resource, models: dict[str, Path]) -> None:
    """INIT+ with a new model while REQs flow: every REQ gets a CNF, old results then new."""
    fb = make_fb(running, "AI", models["x2"], mode="executor")
    init(running, fb)
    log = CnfLog()
    running.add_tracer(log)
    running.write_parameter("AI.MODEL", str(models["x3"]))
    fb.set("STATUS", "")
    sent = 0
    swapped_at = None
    running.inject("AI.INIT")
    while swapped_at is None or sent < swapped_at + 20:
        fb.set("SD_1", [1.0, 1.0, 1.0, 1.0])
        running.inject("AI.REQ")
        sent += 1
        running.run_until_idle()
        lease = fb.lease
        if swapped_at is None and lease is not None and lease.session.origin.endswith("x3.onnx"):
            swapped_at = sent
        assert sent < 100_000, fb.get("STATUS")
    pump(running, lambda: len(log.cnf) == sent)
    factors = [float(rd[0]) for _, ok, rd in log.cnf if ok]  # type: ignore[index]
    assert len(factors) == sent
    first3 = factors.index(3.0)
    assert set(factors[:first3]) <= {2.0}
    assert set(factors[first3:]) == {3.0}


def test_queue_overflow_is_counted_and_answered(running: Resource, models: dict[str, Path]
                                                ) -> None:
    """Past the executor queue's capacity a REQ is rejected (counted) with CNF QO FALSE."""
    fb = make_fb(running, "AI", models["slow"], mode="executor", MAX_BATCH="1")
    init(running, fb)
    lease = fb.lease
    assert lease is not None
    cap = lease.executor.config.queue_capacity
    log = CnfLog()
    running.add_tracer(log)
    fb.set("SD_1", [1.0] * 4)
    # far more than the executor can run meanwhile, however slowly the REQs are handed over
    extra = cap // 2
    for _ in range(cap + extra):
        running.inject("AI.REQ")
    running.run_until_idle(max_events=cap + extra)
    assert fb.rejected > 0
    assert lease.executor.statistics().rejected == fb.rejected
    running.stop()  # cancels what is still queued
    pump(running, lambda: lease.executor.statistics().cancelled > 0)
