"""`testbed bench ai`: inference FB overhead and micro-batched throughput vs raw onnxruntime.

Model: the 64-32-8-32-64 reference MLP (bench/README.md), single-threaded sessions on both
sides. `event_latency_p50_us`: post REQ into an ONNX_INFER_1_1 (inline, DESIGN rule 6) as an
external event and run to quiescence, its CNF counted by a connected E_CTU (checked at the
end), vs one raw batch-1 `InferenceSession.run`. `batched_samples_per_s`: one FB event per
256 samples delivered as an array, vs raw batch-256 runs; `batched_samples_per_s_256_fbs`:
256 FB instances firing at once through the micro-batching executor on a running device
(resource task on the loop, results posted from the worker thread), vs the same baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from testbed.ai.graphs import reference_autoencoder, serialize
from testbed.ai.session import ModelSession
from testbed.bench.figures import Figure
from testbed.errors import BenchmarkError
from testbed.fbdef import interface
from testbed.library import TypeLibrary
from testbed.runtime.clock import VirtualClock
from testbed.runtime.device import Device
from testbed.runtime.instance import FBInstance
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB

__all__ = ["run_ai_bench"]


def _wait(res: Resource, done: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        res.run_until_idle()
        if callable(done) and done():
            return
        if time.monotonic() > deadline:
            raise BenchmarkError("inference results did not arrive within 30 s")
        time.sleep(0)


def _fb(res: Resource, name: str, model: Path, mode: str) -> FBInstance:
    fb = res.create_fb(name, "ONNX_INFER_1_1")
    res.write_parameter(f"{name}.QI", "TRUE")
    res.write_parameter(f"{name}.MODEL", str(model))
    res.write_parameter(f"{name}.MODE", mode)
    fb.set("STATUS", "")
    res.inject(f"{name}.INIT")
    _wait(res, lambda: fb.get("STATUS") != "")
    if fb.get("QO") is not True:
        raise BenchmarkError(f"{name}: {fb.get('STATUS')}")
    return fb


class _CnfCount(ServiceFB):
    """BENCH_CNF_COUNT: counts REQs (the inference FBs' CNFs); sets an event at the target."""

    TYPE_NAME = "BENCH_CNF_COUNT"
    INTERFACE = interface(ei="REQ")

    def arm(self, target: int) -> asyncio.Event:
        self._left = target
        self._done = asyncio.Event()
        return self._done

    def on_REQ(self) -> None:
        self._left -= 1
        if self._left == 0:
            self._done.set()


async def _fan_out(model: Path, x256: NDArray[np.float32], rounds: int) -> float:
    """Seconds for `rounds` rounds of 256 executor-mode FBs firing at once on a running device.

    The device runs as a user's does (its resource task on the loop, the executor's
    results posted back from the worker thread); each round posts the 256 REQs and
    waits for the 256th CNF, counted by an E_CTU.
    """
    library = TypeLibrary.with_native_types()
    library.add(_CnfCount.FB_TYPE, __name__)
    device = Device("fan", library=library)
    device.console = lambda _t: None
    async with asyncio.TaskGroup() as tg:
        tg.create_task(device.run(), name="bench:ai-fan")
        try:
            await asyncio.sleep(0)
            res = device.create_resource("RES")
            res.start()
            counter = res.create_fb("CNF_COUNT", "BENCH_CNF_COUNT")
            assert isinstance(counter, _CnfCount)
            loaded = counter.arm(256)
            fbs = []
            for i in range(256):
                fb = res.create_fb(f"B{i}", "ONNX_INFER_1_1")
                for pin, value in (("QI", "TRUE"), ("MODEL", str(model)), ("MODE", "executor")):
                    res.write_parameter(f"B{i}.{pin}", value)
                fb.set("SD_1", x256[i])
                res.connect(f"B{i}.INITO", "CNF_COUNT.REQ")
                res.connect(f"B{i}.CNF", "CNF_COUNT.REQ")
                res.inject(f"B{i}.INIT")
                fbs.append(fb)
            async with asyncio.timeout(30):
                await loaded.wait()
            failed = [fb.name for fb in fbs if fb.get("QO") is not True]
            if failed:
                raise BenchmarkError(f"{failed[0]}: {res.fb(failed[0]).get('STATUS')}")
            requests = [res.resolve_handler(f"{fb.name}.REQ") for fb in fbs]
            t0 = time.perf_counter()
            async with asyncio.timeout(60):
                for _ in range(rounds):
                    done = counter.arm(256)
                    for req in requests:
                        res.post(req)
                    await done.wait()
            return time.perf_counter() - t0
        finally:
            device.shutdown("bench over")


def run_ai_bench(iterations: int = 5000, rounds: int = 200) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "ref.onnx"
        model.write_bytes(serialize(reference_autoencoder(0)))
        raw = ModelSession(model)
        rng = np.random.default_rng(0)
        x1 = rng.normal(size=(1, 64)).astype(np.float32)
        x256 = rng.normal(size=(256, 64)).astype(np.float32)
        device = Device("bench", library=TypeLibrary.with_native_types(), clock=VirtualClock())
        device.console = lambda _t: None
        res = device.create_resource("RES")
        res.start()
        res.run_until_idle()
        single = _fb(res, "AI", model, "inline")
        single.set("SD_1", x1[0])
        counter = res.create_fb("CNF_COUNT", "E_CTU")
        res.write_parameter("CNF_COUNT.PV", "65535")
        res.connect("AI.CNF", "CNF_COUNT.CU")
        run, feeds = raw.run, {"x": x1}
        req, post, run_until_idle = res.resolve_handler("AI.REQ"), res.post, res.run_until_idle
        fb_s, raw_s = [], []
        for _ in range(iterations // 10):  # warm-up
            post(req)
            run_until_idle()
            run(feeds)
        for _ in range(iterations):
            t0 = time.perf_counter()
            post(req)
            run_until_idle()
            t1 = time.perf_counter()
            run(feeds)
            t2 = time.perf_counter()
            fb_s.append(t1 - t0)
            raw_s.append(t2 - t1)
        bound = raw.one_sample_binding()  # what the FB's one-sample path calls, for the note
        assert bound is not None
        bound.inputs[0][...] = x1
        bound_s = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            bound.run()
            bound_s.append(time.perf_counter() - t0)
        p50 = statistics.median(fb_s) * 1e6
        raw_p50 = statistics.median(raw_s) * 1e6
        cnf_count = counter.get("CV")
        if cnf_count != iterations + iterations // 10 or single.get("QO") is not True:
            raise BenchmarkError(f"AI: {cnf_count} CNF for {iterations + iterations // 10} "
                                 f"REQ ({single.get('STATUS')})")
        res.disconnect("AI.CNF", "CNF_COUNT.CU")

        # one event per 256 samples (array) vs raw batch 256
        single.set("SD_1", x256)
        feeds256 = {"x": x256}
        t0 = time.perf_counter()
        for _ in range(rounds):
            res.inject("AI.REQ")
            res.run_until_idle()
        array_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(rounds):
            run(feeds256)
        raw256_s = time.perf_counter() - t0

        res.stop()
        device.kill()
        fan_rounds = max(1, rounds // 4)
        fan_s = asyncio.run(_fan_out(model, x256, fan_rounds))
    raw_rate = 256 * rounds / raw256_s
    return [
        Figure("ai", "event_latency_p50_us", p50, "us", "raw onnxruntime batch-1 run (p50)",
               raw_p50,
               note="inverse ratio target: value/baseline <= 1.5; inline (rule 6); REQ posted, "
                    "CNF counted; the FB's one-sample path runs on onnxruntime I/O binding "
                    f"(raw bound run p50 {statistics.median(bound_s) * 1e6:.1f} us)"),
        Figure("ai", "batched_samples_per_s", 256 * rounds / array_s, "1/s",
               "raw onnxruntime batch-256", raw_rate,
               note="one FB event per 256 samples delivered as an array"),
        Figure("ai", "batched_samples_per_s_256_fbs", 256 * fan_rounds / fan_s, "1/s",
               "raw onnxruntime batch-256", raw_rate,
               note="256 FB instances firing at once on a running device, micro-batched executor"),
    ]
