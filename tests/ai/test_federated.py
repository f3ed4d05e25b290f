"""FedAvg across non-IID pump sites: the split, the gain over local-only models, bytes, seeds."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import onnxruntime as ort
import pytest

from testbed.ai.dataset import FaultClass
from testbed.ai.features import VIBRATION_FEATURE_NAMES
from testbed.ai.federated import (
    FederatedConfig,
    FederatedData,
    FederatedResult,
    build_data,
    default_sites,
    payload_size,
    run_federated,
)


@pytest.fixture(scope="module")
def config() -> FederatedConfig:
    return FederatedConfig.small(seed=3)


@pytest.fixture(scope="module")
def result(config: FederatedConfig) -> FederatedResult:
    return asyncio.run(run_federated(config))


@pytest.fixture(scope="module")
def data(config: FederatedConfig) -> FederatedData:
    return build_data(config)


def test_sites_differ_in_operating_point_and_fault_mix(data: FederatedData) -> None:
    """Site A runs slow with an open valve and mostly outer-race faults, B the opposite."""
    site_a, site_b = data.sites
    assert site_a.spec.speed_rpm[1] < site_b.spec.speed_rpm[0]
    assert site_a.spec.valve_opening[0] > site_b.spec.valve_opening[1]
    a = np.bincount(site_a.blocks.labels, minlength=4)
    b = np.bincount(site_b.blocks.labels, minlength=4)
    outer, inner = FaultClass.OUTER_RACE, FaultClass.INNER_RACE
    assert a[outer] >= 4 * a[inner] > 0
    assert b[inner] >= 4 * b[outer] > 0
    # the features themselves differ: the sites' mean feature vectors are far apart
    gap = np.abs(site_a.blocks.features.mean(0) - site_b.blocks.features.mean(0))
    spread = data.pooled.features.std(0)
    assert np.max(gap / spread) > 0.5


def test_held_out_set_covers_every_class_at_both_sites(data: FederatedData) -> None:
    """The common held-out set has every class, in equal numbers (it is balanced)."""
    counts = np.bincount(data.test.labels, minlength=4)
    assert np.all(counts > 0)
    assert len(set(counts.tolist())) == 1


def test_federated_beats_every_local_only_model(result: FederatedResult) -> None:
    """At the final round the federated model is more accurate than each site alone."""
    final = result.report.final
    for local in final.local:
        assert final.federated.accuracy > local.accuracy + 0.03, local.site
        assert final.federated.macro_f1 > local.macro_f1
    assert final.federated.accuracy >= 0.9
    assert len(result.report.rounds) == result.report.config.rounds


def test_bytes_per_round_are_the_weight_payloads(result: FederatedResult,
                                                 config: FederatedConfig) -> None:
    """Each round moves one update per site up and the global model once per site down."""
    report = result.report
    n_features = len(VIBRATION_FEATURE_NAMES)
    shapes = [(n_features, config.hidden_units), (config.hidden_units,),
              (config.hidden_units, 4), (4,)]
    update = payload_size("site_a", shapes)
    assert report.update_payload_bytes == update
    params = sum(int(np.prod(s)) for s in shapes)
    assert update == 22 + len("site_a") + sum(1 + 4 * len(s) for s in shapes) + 4 * params
    assert report.global_payload_bytes == payload_size("", shapes)
    sites = len(config.sites)
    for r in report.rounds:
        assert r.upload_bytes == sites * update
        assert r.download_bytes == sites * report.global_payload_bytes
        assert r.fl_bytes_per_round == r.upload_bytes + r.download_bytes
        assert r.fl_round_time_s > 0
    assert report.centralise_waveform_bytes > report.centralise_feature_bytes > update


def test_same_seed_same_report_and_model(result: FederatedResult,
                                         config: FederatedConfig) -> None:
    """Running again with the same seed gives the same numbers and the same ONNX bytes."""
    again = asyncio.run(run_federated(config))
    assert again.report.without_timings() == result.report.without_timings()
    assert again.model_onnx == result.model_onnx


def test_other_seed_other_numbers(result: FederatedResult) -> None:
    """Another seed draws other runs, so the scores or the model differ."""
    other = asyncio.run(run_federated(FederatedConfig.small(seed=4)))
    assert other.model_onnx != result.model_onnx


def test_exported_model_runs_and_matches_numpy(result: FederatedResult,
                                               data: FederatedData) -> None:
    """The ONNX file classifies the held-out set as well as the federated weights did."""
    session = ort.InferenceSession(result.model_onnx, providers=["CPUExecutionProvider"])
    label = session.run(["label"], {"features": data.test.features.astype(np.float32)})[0]
    accuracy = float(np.mean(label.reshape(-1) == data.test.labels))
    assert accuracy == pytest.approx(result.report.final.federated.accuracy, abs=0.01)
    assert result.report.model.onnx_accuracy == pytest.approx(accuracy)


def test_three_sites_alternate_majority_faults() -> None:
    """With three sites the speed bands do not overlap and majority faults alternate."""
    sites = default_sites(3)
    assert [s.faults[0].fault for s in sites] == ["outer_race", "inner_race", "outer_race"]
    for left, right in itertools.pairwise(sites):
        assert left.speed_rpm[1] < right.speed_rpm[0]
        assert left.valve_opening[0] > right.valve_opening[1]
    with pytest.raises(ValueError, match="at least 2 sites"):
        default_sites(1)
