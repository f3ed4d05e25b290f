"""`testbed train --federated`: report and model files, in-process and over an embedded broker."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from amqtt_quirks import AMQTT_LEAKS_SERVER_SOCKETS

from drivers.mqtt import EmbeddedBroker
from testbed.ai.federated import FederatedReport
from testbed.cli import main

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`main` points logging at the captured stdout; put the previous setup back after."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def _report(folder: Path) -> FederatedReport:
    return FederatedReport.model_validate_json((folder / "federated_report.json").read_text())


def test_federated_cli_writes_report_and_model(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The command writes the JSON and Markdown reports and the ONNX model they describe."""
    code = main(["train", "--federated", "--small", "--sites", "2", "--rounds", "3",
                 "--seed", "2", "--out", str(tmp_path)])
    assert code == 0
    report = _report(tmp_path)
    assert report.transport == "in-process"
    assert [r.round for r in report.rounds] == [1, 2, 3]
    assert report.config.seed == 2
    model = (tmp_path / "federated_classifier.onnx").read_bytes()
    assert hashlib.sha256(model).hexdigest() == report.model.sha256
    markdown = (tmp_path / "federated_report.md").read_text()
    assert "| round | local site_a | local site_b | federated | centralized |" in markdown
    assert "fl_bytes_per_round" in capsys.readouterr().out


@AMQTT_LEAKS_SERVER_SOCKETS
async def test_federated_cli_over_a_broker_matches_in_process(tmp_path: Path) -> None:
    """With --broker the weights travel over MQTT and the numbers equal the in-process run."""
    args = ["train", "--federated", "--small", "--rounds", "2", "--seed", "1"]
    local_dir, mqtt_dir = tmp_path / "local", tmp_path / "mqtt"
    assert await asyncio.to_thread(main, [*args, "--out", str(local_dir)]) == 0
    async with EmbeddedBroker() as broker:
        url = f"mqtt://127.0.0.1:{broker.port}"
        code = await asyncio.to_thread(main, [*args, "--broker", url, "--out", str(mqtt_dir)])
    gc.collect()  # surface amqtt's leaked server streams inside this (filtered) test
    assert code == 0
    local, remote = _report(local_dir), _report(mqtt_dir)
    assert remote.transport == "mqtt"
    assert remote.without_timings().model_copy(update={"transport": "in-process"}) == (
        local.without_timings())
    assert (mqtt_dir / "federated_classifier.onnx").read_bytes() == (
        local_dir / "federated_classifier.onnx").read_bytes()


def test_one_site_is_refused_with_a_clear_message(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`--sites 1` exits with status 2 and says federated learning needs two sites."""
    code = main(["train", "--federated", "--sites", "1", "--out", str(tmp_path)])
    assert code == 2
    assert "at least 2 sites" in capsys.readouterr().out
    assert not (tmp_path / "federated_report.json").exists()


def test_bad_broker_url_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broker URL that is not mqtt://host[:port] exits with an error naming it."""
    code = main(["train", "--federated", "--small", "--rounds", "1", "--broker",
                 "http://example", "--out", str(tmp_path)])
    assert code == 1
    assert "http://example" in capsys.readouterr().out
