"""Site processes and cross-site figures: site files, child lifecycle, trace joins."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from testbed.errors import ConfigError
from testbed.scenario.cross_site_spec import FederatedSpec, SiteProcessSpec
from testbed.scenario.metrics import MetricsRecorder
from testbed.scenario.sites import SitesPart, resolve_site_file
from testbed.scenario.spec import load_scenario
from testbed.scenario.wan import CrossSiteFlow, flow_figures

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "testbed50-cross-site"


def test_a_site_file_gets_the_parents_endpoints_and_keeps_its_own_placeholders() -> None:
    """broker/wan placeholders are filled, the site's own stay, paths become absolute."""
    values = {"broker.port": "1234", "wan.to.site_b": "127.0.0.1:7001",
              "wan.listen.site_a": "127.0.0.1:7002", "run_dir": "/parent"}
    fed = FederatedSpec(seed=9)
    data = resolve_site_file(SCENARIO / "sites" / "site_a.yaml", values, duration_s=12.0,
                             federated=fed, site="site_a")
    params = data["edges"][0]["parameters"]
    assert params["Site.XPub.ID"] == "fbdk[].ip[127.0.0.1:7001]"
    assert params["Site.XSub.ID"] == "fbdk[].ip[127.0.0.1:7002]"
    assert params["Site.Tele.ID"].startswith("mqtt://127.0.0.1:1234/testbed/site_a?")
    assert "${run_dir}" in params["Site.Tele.ID"]  # the child's own
    assert params["Site.Proc.ENDPOINT"] == "${pump1.opcua}"
    assert data["broker"]["url"] == "mqtt://127.0.0.1:1234"
    assert Path(data["edges"][0]["application"]).is_absolute()
    assert Path(data["edges"][0]["application"]).is_file()
    assert data["duration_s"] == 12.0
    assert data["federated"]["role"] == "site"
    assert data["federated"]["site"] == "site_a"
    assert data["federated"]["seed"] == 9


def test_an_unknown_parent_placeholder_names_the_site_file(tmp_path: Path) -> None:
    """`${wan.to.nowhere}` is an error naming the file and the known endpoints."""
    site = tmp_path / "site.yaml"
    site.write_text("name: s\nduration_s: 5\nedges: []\ndescription: ${wan.to.nowhere}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"site\.yaml: unknown placeholder \$\{wan.to.nowhere"):
        resolve_site_file(site, {"wan.to.site_a": "x"}, duration_s=5, federated=None,
                          site="s")


def test_the_scenario_validates_its_site_files(tmp_path: Path) -> None:
    """The shipped scenario is valid; a missing site file is an error naming it."""
    spec, _ = load_scenario(SCENARIO)
    assert [s.name for s in spec.sites] == ["site_a", "site_b"]
    assert spec.wan is not None
    assert spec.wan.latency_ms > 0
    assert spec.wan.loss > 0
    broken = tmp_path / "scenario.yaml"
    broken.write_text("name: x\nduration_s: 5\nsites:\n"
                      "  - {name: site_a, scenario: sites/none.yaml, edge_node: a}\n",
                      encoding="utf-8")
    with pytest.raises(ConfigError, match=r"none\.yaml"):
        load_scenario(broken)


def _trace(path: Path, pins: list[str], rows: list[tuple[int, int, bool]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["t_ns", *pins])
        writer.writerows(rows)
    return path


def test_flow_figures_join_sender_and_receiver_by_sequence_number(tmp_path: Path) -> None:
    """Latency per matched number; lost counts only inside the received range; dups apart."""
    sent = _trace(tmp_path / "a.csv", ["SD_1", "QO"],
                  [(1_000_000 * i, i, True) for i in range(1, 11)] + [(99, 11, False)])
    received = _trace(tmp_path / "b.csv", ["RD_1", "QO"], [
        (1_000_000 * 3 + 40_000_000, 3, True), (1_000_000 * 4 + 45_000_000, 4, True),
        (1_000_000 * 4 + 46_000_000, 4, True),  # duplicate
        (1_000_000 * 7 + 50_000_000, 7, True), (1, 8, False)])
    figures = flow_figures(CrossSiteFlow("a->b", sent, received))
    assert figures.latencies_ms == [40.0, 45.0, 50.0]
    assert figures.sent == 10  # QO FALSE is not a send
    assert figures.received == 3
    assert figures.lost == 2  # 5 and 6; 1, 2 (before the peer listened) and 8-10 are not
    assert figures.duplicated == 1
    cut = flow_figures(CrossSiteFlow("a->b", sent, received),
                       lambda t_ns: 5_000_000 <= t_ns < 6_500_000)
    assert cut.lost_in_partition == 2  # 5 and 6 were sent while the WAN was cut
    assert cut.sent_in_partition == 2
    assert figures.lost_in_partition == 0  # no partition given
    empty = flow_figures(CrossSiteFlow("x", tmp_path / "none.csv", tmp_path / "none2.csv"))
    assert (empty.sent, empty.received, empty.lost) == (0, 0, 0)


@pytest.mark.timeout(60)
async def test_a_site_process_that_dies_is_reported_and_does_not_hang(tmp_path: Path) -> None:
    """A child that exits at once (its application is missing) is reaped and counted failed."""
    folder = tmp_path / "scenario"
    (folder / "sites").mkdir(parents=True)
    (folder / "sites" / "bad.yaml").write_text(
        "name: bad\nduration_s: 30\nedges:\n  - {name: e, application: missing.yaml}\n",
        encoding="utf-8")
    metrics = MetricsRecorder()
    spec = SiteProcessSpec(name="site_a", scenario="sites/bad.yaml", edge_node="a",
                           start_timeout_s=30)
    started = time.monotonic()
    async with SitesPart([spec], folder=folder, run_dir=tmp_path / "run", values={},
                         duration_s=30, cloud=None, federated=None, group="g") as part:
        assert time.monotonic() - started < 25  # did not wait out the start timeout
        part.sample(1.0, metrics)
        await part.finish(metrics)
    assert metrics.gauge_value("site_processes_failed") == 1
    (site,) = part.report_section()["sites"]
    assert site["returncode"] == 2
    assert site["died_early"] is True
    assert site["healthy_after_s"] is None
    assert site["pid"] != os.getpid()
    log = (tmp_path / "run" / "sites" / "site_a" / "process.log").read_text(encoding="utf-8")
    assert "missing.yaml" in log
    resolved = yaml.safe_load((tmp_path / "run" / "sites" / "site_a" / "scenario.yaml")
                              .read_text(encoding="utf-8"))
    assert Path(resolved["edges"][0]["application"]).is_absolute()


@pytest.mark.timeout(60)
async def test_a_site_still_running_at_the_end_gets_sigterm_and_is_reaped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the exit timeout the child is stopped with SIGTERM (it still writes its folder)."""
    import testbed.scenario.sites as sites

    monkeypatch.setattr(sites, "EXIT_TIMEOUT_S", 0.5)
    folder = tmp_path / "scenario"
    (folder / "sites").mkdir(parents=True)
    (folder / "sites" / "idle.yaml").write_text(
        "name: idle\nduration_s: 60\nbroker: {kind: none}\ncloud: {enabled: false}\n",
        encoding="utf-8")
    metrics = MetricsRecorder()
    spec = SiteProcessSpec(name="site_a", scenario="sites/idle.yaml", edge_node="a",
                           start_timeout_s=3)
    async with SitesPart([spec], folder=folder, run_dir=tmp_path / "run", values={},
                         duration_s=60, cloud=None, federated=None, group="g") as part:
        part.sample(1.0, metrics)
        assert metrics.gauge_value("site_processes_running") == 1
        await part.finish(metrics)
    (site,) = part.report_section()["sites"]
    assert site["stopped_by"] == "SIGTERM"
    # `testbed run` interrupted (130, its folder written), or killed by the signal if it
    # was still starting on a slow host
    assert site["returncode"] in (130, -signal.SIGTERM)
    assert site["report_present"] is (site["returncode"] == 130)
    assert metrics.gauge_value("site_processes_running") == 0


@pytest.mark.timeout(60)
async def test_an_interrupted_run_stops_its_sites_at_once(tmp_path: Path) -> None:
    """After Ctrl-C/SIGTERM of the run, the sites get SIGTERM without the exit timeout."""
    folder = tmp_path / "scenario"
    (folder / "sites").mkdir(parents=True)
    (folder / "sites" / "idle.yaml").write_text(
        "name: idle\nduration_s: 60\nbroker: {kind: none}\ncloud: {enabled: false}\n",
        encoding="utf-8")
    metrics = MetricsRecorder()
    spec = SiteProcessSpec(name="site_a", scenario="sites/idle.yaml", edge_node="a",
                           start_timeout_s=3)
    async with SitesPart([spec], folder=folder, run_dir=tmp_path / "run", values={},
                         duration_s=60, cloud=None, federated=None, group="g",
                         interrupted=lambda: True) as part:
        started = time.monotonic()
        await part.finish(metrics)
        assert time.monotonic() - started < 20  # well inside EXIT_TIMEOUT_S (45 s)
    (site,) = part.report_section()["sites"]
    assert site["stopped_by"] == "SIGTERM"
    assert site["returncode"] in (130, -signal.SIGTERM)
