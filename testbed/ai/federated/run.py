"""FedAvg: sites train locally from the global weights, the aggregator averages by sample count.

Round 0 agrees on a standardization without moving data: each site sends its feature mean
and mean of squares, the aggregator averages them by sample count (pooled moments), draws the
initial layers from the seed and sends the initial model. Rounds 1..R: each site trains
`local_epochs` full-batch Adam epochs on its own blocks from the global weights and sends its
layers; the aggregator averages them weighted by sample count (in site-name order, so the
arrival order cannot change a bit) and sends the new global model. Every message is
`WeightPayload` bytes through the transport, in-process or MQTT alike, so both give the same
numbers. Training runs in a one-thread executor owned by the run; the event loop only moves
messages.

The baselines (each site alone, and all data pooled) train from the same initial layers for
the same epochs per round; everything is scored on the common held-out set after each round.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import structlog
from numpy.typing import NDArray

from testbed.ai.dataset import FaultClass, FeatureSet
from testbed.ai.errors import FederatedError
from testbed.ai.federated.config import FederatedConfig
from testbed.ai.federated.data import (
    FederatedData,
    SiteData,
    build_data,
    initial_rng,
    waveform_bytes_per_block,
)
from testbed.ai.federated.report import (
    FederatedReport,
    ModelFile,
    RoundReport,
    Score,
    SiteScore,
    SiteSummary,
)
from testbed.ai.federated.transport import FederatedTransport, InProcessTransport
from testbed.ai.federated.wire import PayloadKind, WeightPayload
from testbed.ai.graphs import mlp_classifier, serialize
from testbed.ai.learn import MlpWeights, init_mlp, mlp_predict, train_mlp
from testbed.ai.train import run_onnx

__all__ = [
    "MODEL_FILE",
    "FederatedResult",
    "aggregate_then_score",
    "fedavg",
    "run_federated",
    "run_site",
    "score",
    "write_outputs",
]

_log = structlog.get_logger(__name__)

MODEL_FILE = "federated_classifier.onnx"
REPORT_JSON = "federated_report.json"
REPORT_MARKDOWN = "federated_report.md"
_F32 = np.float32


@dataclass(frozen=True, slots=True)
class FederatedResult:
    """The report and the final global model as ONNX bytes."""

    report: FederatedReport
    model_onnx: bytes


@dataclass(slots=True)
class _Federation:
    """What the aggregator saw: the global model after each round, times and bytes."""

    initial: MlpWeights | None = None
    globals: list[MlpWeights] = field(default_factory=list)
    round_times_s: list[float] = field(default_factory=list)
    upload_bytes: list[int] = field(default_factory=list)
    download_bytes: list[int] = field(default_factory=list)
    setup_bytes: int = 0
    update_payload_bytes: int = 0
    global_payload_bytes: int = 0


def score(weights: MlpWeights, test: FeatureSet) -> Score:
    """Accuracy and macro F1 (over all classes) of a numpy MLP on a feature set."""
    predicted = mlp_predict(weights, test.features).argmax(axis=1)
    return _score(predicted, test.labels)


def _score(predicted: NDArray[np.int64], labels: NDArray[np.int64]) -> Score:
    f1s = []
    for c in FaultClass:
        tp = int(np.sum((predicted == c) & (labels == c)))
        fp = int(np.sum((predicted == c) & (labels != c)))
        fn = int(np.sum((predicted != c) & (labels == c)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return Score(accuracy=float(np.mean(predicted == labels)), macro_f1=float(np.mean(f1s)))


def _decode(data: bytes, kind: PayloadKind, round_index: int, source: str) -> WeightPayload:
    payload = WeightPayload.decode(data, source=source)
    if payload.kind is not kind or payload.round_index != round_index:
        raise FederatedError(f"{source}: expected {kind.name} of round {round_index}, got "
                             f"{payload.kind.name} of round {payload.round_index}")
    return payload


def _as_weights(mean: NDArray[np.float64], scale: NDArray[np.float64],
                arrays: Sequence[NDArray[np.float32]]) -> MlpWeights:
    layers = [a.astype(np.float64) for a in arrays]
    return MlpWeights(mean, scale, tuple(zip(layers[::2], layers[1::2], strict=True)))


def fedavg(payloads: Sequence[WeightPayload]) -> list[NDArray[np.float32]]:
    """Sample-weighted mean of every array, summed in site-name order."""
    ordered = sorted(payloads, key=lambda p: p.site)
    total = sum(p.sample_count for p in ordered)
    if total <= 0:
        raise FederatedError("no samples behind any site update")
    averaged = []
    for i in range(len(ordered[0].arrays)):
        acc = np.zeros(ordered[0].arrays[i].shape, dtype=np.float64)
        for p in ordered:
            acc += p.arrays[i].astype(np.float64) * (p.sample_count / total)
        averaged.append(acc.astype(_F32))
    return averaged


async def _gather(transport: FederatedTransport, kind: PayloadKind, round_index: int,
                  sites: Sequence[str]) -> tuple[list[WeightPayload], int]:
    payloads: list[WeightPayload] = []
    size = 0
    for _ in sites:
        data = await transport.next_update(round_index)
        payload = _decode(data, kind, round_index, f"update of round {round_index}")
        if payload.site not in sites or any(p.site == payload.site for p in payloads):
            raise FederatedError(f"round {round_index}: unexpected or repeated update from "
                                 f"{payload.site!r} (sites {list(sites)})")
        expected = payloads[0].arrays if payloads else None
        if expected is not None and [a.shape for a in expected] != [
                a.shape for a in payload.arrays]:
            raise FederatedError(f"round {round_index}: {payload.site!r} sent shapes "
                                 f"{[a.shape for a in payload.arrays]}, others "
                                 f"{[a.shape for a in expected]}")
        payloads.append(payload)
        size += len(data)
    return payloads, size


async def _aggregate(config: FederatedConfig, transport: FederatedTransport,
                     sites: Sequence[str]) -> _Federation:
    fed = _Federation()
    stats, up = await _gather(transport, PayloadKind.STATISTICS, 0, sites)
    mean32, mean_sq32 = fedavg(stats)
    mean = mean32.astype(np.float64)
    scale = np.sqrt(np.maximum(mean_sq32.astype(np.float64) - mean * mean, 0.0)) + 1e-6
    sizes = (int(mean.shape[0]), config.hidden_units, len(FaultClass))
    layers = init_mlp(initial_rng(config), sizes, mean, scale).flat()
    total = sum(p.sample_count for p in stats)
    init = WeightPayload(PayloadKind.GLOBAL_INIT, 0, "", total,
                         (mean.astype(_F32), scale.astype(_F32),
                          *(a.astype(_F32) for a in layers))).encode()
    await transport.send_global(0, init)
    decoded = WeightPayload.decode(init).arrays
    mean, scale = decoded[0].astype(np.float64), decoded[1].astype(np.float64)
    fed.initial = _as_weights(mean, scale, decoded[2:])
    fed.setup_bytes = up + len(init) * len(sites)
    started = time.perf_counter()
    for round_index in range(1, config.rounds + 1):
        updates, up = await _gather(transport, PayloadKind.UPDATE, round_index, sites)
        averaged = fedavg(updates)
        data = WeightPayload(PayloadKind.GLOBAL, round_index, "", total, tuple(averaged)
                             ).encode()
        await transport.send_global(round_index, data)
        now = time.perf_counter()
        fed.round_times_s.append(now - started)
        started = now
        fed.upload_bytes.append(up)
        fed.download_bytes.append(len(data) * len(sites))
        fed.update_payload_bytes = up // len(sites)
        fed.global_payload_bytes = len(data)
        fed.globals.append(_as_weights(mean, scale, WeightPayload.decode(data).arrays))
        _log.info("federated_round_completed", round=round_index, sites=len(sites),
                  bytes=up + len(data) * len(sites),
                  round_time_s=round(fed.round_times_s[-1], 4))
    return fed


async def _site(site: SiteData, config: FederatedConfig, transport: FederatedTransport,
                executor: ThreadPoolExecutor) -> None:
    loop = asyncio.get_running_loop()
    name, x, y = site.spec.name, site.blocks.features, site.blocks.labels
    n = len(site.blocks)
    stats = WeightPayload(PayloadKind.STATISTICS, 0, name, n,
                          (x.mean(axis=0).astype(_F32), (x * x).mean(axis=0).astype(_F32)))
    await transport.send_update(0, name, stats.encode())
    init = _decode(await transport.next_global(name, 0), PayloadKind.GLOBAL_INIT, 0,
                   f"initial model at {name}")
    mean, scale = init.arrays[0].astype(np.float64), init.arrays[1].astype(np.float64)
    weights = _as_weights(mean, scale, init.arrays[2:])
    for round_index in range(1, config.rounds + 1):
        local = await loop.run_in_executor(executor, functools.partial(
            train_mlp, weights, x, y, epochs=config.local_epochs,
            learning_rate=config.learning_rate, l2=config.l2))
        update = WeightPayload(PayloadKind.UPDATE, round_index, name, n,
                               tuple(a.astype(_F32) for a in local.flat()))
        await transport.send_update(round_index, name, update.encode())
        received = _decode(await transport.next_global(name, round_index), PayloadKind.GLOBAL,
                           round_index, f"global model at {name}")
        weights = _as_weights(mean, scale, received.arrays)


async def _federate(config: FederatedConfig, data: FederatedData,
                    transport: FederatedTransport, executor: ThreadPoolExecutor) -> _Federation:
    names = [s.spec.name for s in data.sites]
    try:
        async with asyncio.TaskGroup() as group:
            for site in data.sites:
                group.create_task(_site(site, config, transport, executor),
                                  name=f"fl-site-{site.spec.name}")
            aggregator = group.create_task(_aggregate(config, transport, names),
                                           name="fl-aggregator")
    except ExceptionGroup as errors:
        first = errors.exceptions[0]
        if isinstance(first, FederatedError):
            raise first from errors
        raise
    return aggregator.result()


def _baseline(start: MlpWeights, blocks: FeatureSet, config: FederatedConfig,
              test: FeatureSet) -> list[Score]:
    x = blocks.features
    weights = MlpWeights(x.mean(axis=0), x.std(axis=0) + 1e-6, start.layers)
    scores = []
    for _ in range(config.rounds):
        weights = train_mlp(weights, x, blocks.labels, epochs=config.local_epochs,
                            learning_rate=config.learning_rate, l2=config.l2)
        scores.append(score(weights, test))
    return scores


def _finish(config: FederatedConfig, data: FederatedData, fed: _Federation,
            transport_kind: str) -> FederatedResult:
    assert fed.initial is not None  # _aggregate always sets it
    local = {s.spec.name: _baseline(fed.initial, s.blocks, config, data.test)
             for s in data.sites}
    central = _baseline(fed.initial, data.pooled, config, data.test)
    rounds = []
    for i, global_weights in enumerate(fed.globals):
        rounds.append(RoundReport(
            round=i + 1,
            local=tuple(SiteScore(site=name, **scores[i].model_dump())
                        for name, scores in local.items()),
            federated=score(global_weights, data.test), centralized=central[i],
            fl_round_time_s=fed.round_times_s[i],
            fl_bytes_per_round=fed.upload_bytes[i] + fed.download_bytes[i],
            upload_bytes=fed.upload_bytes[i], download_bytes=fed.download_bytes[i]))
    final = fed.globals[-1]
    model = serialize(mlp_classifier(
        final.mean, final.scale, final.layers,
        doc=f"federated bearing fault classifier (FedAvg, {len(data.sites)} sites, "
            f"{config.rounds} rounds), seed {config.seed}"))
    predicted = np.asarray(run_onnx(model, "features", data.test.features)[1],
                           dtype=np.int64).reshape(-1)
    pooled = data.pooled
    n_features = pooled.features.shape[1]
    report = FederatedReport(
        config=config, transport=transport_kind,
        sites=tuple(SiteSummary(
            name=s.spec.name, speed_rpm=s.spec.speed_rpm, valve_opening=s.spec.valve_opening,
            runs=s.runs,
            blocks_per_class=tuple(int(np.sum(s.blocks.labels == c)) for c in FaultClass))
            for s in data.sites),
        test_blocks_per_class=tuple(int(np.sum(data.test.labels == c)) for c in FaultClass),
        update_payload_bytes=fed.update_payload_bytes,
        global_payload_bytes=fed.global_payload_bytes,
        setup_bytes=fed.setup_bytes, rounds=tuple(rounds),
        centralise_feature_bytes=len(pooled) * (4 * n_features + 1),
        centralise_waveform_bytes=len(pooled) * waveform_bytes_per_block(),
        model=ModelFile(file=MODEL_FILE, sha256=hashlib.sha256(model).hexdigest(),
                        onnx_accuracy=_score(predicted, data.test.labels).accuracy))
    return FederatedResult(report, model)


async def run_federated(config: FederatedConfig,
                        transport: FederatedTransport | None = None) -> FederatedResult:
    """Simulate the sites' data, run the rounds through `transport`, score, export ONNX.

    Without a transport the payloads go through in-process mailboxes.
    """
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fl-train")
    try:
        data = await loop.run_in_executor(executor, build_data, config)
        if transport is None:
            transport = InProcessTransport([s.name for s in config.sites], config.timeout_s)
        fed = await _federate(config, data, transport, executor)
        return await loop.run_in_executor(executor, _finish, config, data, fed, transport.kind)
    finally:
        await loop.run_in_executor(None, functools.partial(executor.shutdown, wait=True))


async def run_site(config: FederatedConfig, site_name: str,
                   transport: FederatedTransport) -> int:
    """One site's side of the federation, in its own process: simulate its own data, then
    train locally each round and send only weights. Returns the site's sample count."""
    from testbed.ai.federated.data import site_data

    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fl-site")
    try:
        data = await loop.run_in_executor(executor, site_data, config, site_name)
        await _site(data, config, transport, executor)
        return len(data.blocks)
    finally:
        await loop.run_in_executor(None, functools.partial(executor.shutdown, wait=True))


async def aggregate_then_score(config: FederatedConfig,
                               transport: FederatedTransport) -> FederatedResult:
    """The aggregator's side alone (the sites train elsewhere), then the evaluation: the
    baselines and the held-out set are simulated here, for scoring only."""
    fed = await _aggregate(config, transport, [s.name for s in config.sites])
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fl-score")
    try:
        data = await loop.run_in_executor(executor, build_data, config)
        return await loop.run_in_executor(executor, _finish, config, data, fed, transport.kind)
    finally:
        await loop.run_in_executor(None, functools.partial(executor.shutdown, wait=True))


def write_outputs(result: FederatedResult, out_dir: Path) -> list[Path]:
    """Write the model file and the report (`federated_report.json`, `federated_report.md`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        MODEL_FILE: result.model_onnx,
        REPORT_JSON: (result.report.model_dump_json(indent=2) + "\n").encode(),
        REPORT_MARKDOWN: result.report.markdown().encode(),
    }
    written = []
    for name, data in files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    return written
