"""ApplicationRunner: atomic swap of boot-file applications, untouched on failure, rollback."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from deploy_testkit import broken_app, counter_app

from testbed.deploy import ApplicationRunner, DeployError
from testbed.library import TypeLibrary


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _counts_up(runner: ApplicationRunner, name: str, resource: str = "App") -> None:
    app = runner.running(name)
    assert app is not None
    start = int(str(app.device.resource(resource).read("CTR.CV")))
    for _ in range(250):
        if int(str(app.device.resource(resource).read("CTR.CV"))) > start:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{name} is not running")


async def test_apply_bad_boot_file_rollback(tmp_path: Path, library: TypeLibrary) -> None:
    """A good version runs; a broken one is refused with the old one untouched; rollback works."""
    v1, v2 = counter_app(), counter_app(period="T#5ms")
    async with ApplicationRunner(tmp_path / "apps", library) as runner:
        first = await runner.apply("line", "1.0", v1, _sha(v1))
        await _counts_up(runner, "line")
        second = await runner.apply("line", "2.0", v2, _sha(v2))
        assert runner.running("line") == second
        assert second.device is not first.device
        await _counts_up(runner, "line")
        bad = broken_app()
        with pytest.raises(DeployError, match=r"did not load"):
            await runner.apply("line", "3.0", bad, _sha(bad))
        assert runner.running("line") == second  # untouched, still counting
        await _counts_up(runner, "line")
        active = runner.files.active("line")
        assert active is not None
        assert active.version == "2.0"
        with pytest.raises(DeployError, match="sha256 mismatch"):
            await runner.apply("line", "4.0", v1, _sha(v2))
        restored = await runner.rollback("line")
        assert restored.version == "1.0"
        await _counts_up(runner, "line")
    assert restored.device.state.value == "stopped"
