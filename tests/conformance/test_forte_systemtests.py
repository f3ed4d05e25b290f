"""FORTE's single-device system tests, with the outcome their CMakeLists.txt prescribes.

Each boot file runs as `testbed boot` in a subprocess, as CTest runs `forte -f`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared_material import shared_path

pytestmark = pytest.mark.conformance


def boot(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "testbed.cli", "boot", "--timeout", "30", *args],
        capture_output=True, text=True, cwd=cwd, env=full_env, timeout=120, check=False)


def systest(name: str) -> str:
    return str(shared_path("4diac", "forte-systemtests", name))


@pytest.mark.parametrize(
    ("ctest_name", "boot_file", "soft", "should_pass"),
    [
        ("Test_Hard_Pass", "hard_pass_example.fboot", False, True),
        ("Test_Soft_Pass_Clean", "hard_pass_example.fboot", True, True),
        ("Test_Soft_Pass_Dirty", "soft_pass_example.fboot", True, True),
        ("Test_Soft_Example_As_Hard_Inverted", "soft_pass_example.fboot", False, False),
        ("Test_Hard_Fail_Alaways_Inverted", "fail_example.fboot", False, False),
        ("Test_Soft_Fail_Alaways_Inverted", "fail_example.fboot", True, False),
    ],
)
def test_systemtest_outcome(ctest_name: str, boot_file: str, soft: bool,
                            should_pass: bool) -> None:
    """Hard runs fail on any logged error, soft runs only on a failed TEST_CONDITION."""
    result = boot(*(["--soft"] if soft else []), "-f", systest(boot_file))
    out = result.stdout + result.stderr
    assert (result.returncode == 0) == should_pass, f"{ctest_name}: {out}"
    assert "tests executed" in result.stdout


def test_fail_example_counts_like_forte() -> None:
    """fail_example: three checks, two fail, printed with FORTE's texts."""
    result = boot(systest("fail_example.fboot"))
    assert result.stdout.count("[TEST_CONDITION_FAILED]") == 2
    assert result.stdout.count("[TEST_CONDITION_PASSED]") == 1
    assert "3 tests executed, 2 failed" in result.stdout


def test_boot_file_from_environment() -> None:
    """Test_Hard_Pass_ENV: with no file argument FORTE_BOOT_FILE is used."""
    result = subprocess.run(
        [sys.executable, "-m", "testbed.cli", "boot", "--timeout", "30"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "FORTE_BOOT_FILE": systest("hard_pass_example.fboot")})
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stdout


def test_missing_semicolon_message() -> None:
    """Test_missing_semicolon: FORTE's text, with file and line."""
    result = boot(systest("missing_semicolon.fboot"))
    assert "Boot file line does not contain separating ';'" in result.stderr
    assert "line=12" in result.stderr
    assert result.returncode != 0


def test_unknown_fb_message() -> None:
    """Test_missing_unknown_FB: FORTE's text and the UNSUPPORTED_TYPE reason."""
    result = boot(systest("unknown_FB.fboot"))
    assert "Boot file command could not be executed" in result.stderr
    assert "UNSUPPORTED_TYPE" in result.stderr
    assert result.returncode != 0


def test_missing_boot_file_with_fail_missing(tmp_path: Path) -> None:
    """Test_wrong_bootfile_w_FAIL: FORTE's message when FORTE_BOOT_FILE_FAIL_MISSING is set."""
    missing = str(tmp_path / "non_existing.fboot")
    result = subprocess.run(
        [sys.executable, "-m", "testbed.cli", "boot"], capture_output=True, text=True,
        timeout=120, check=False,
        env={**os.environ, "FORTE_BOOT_FILE": missing, "FORTE_BOOT_FILE_FAIL_MISSING": "1"})
    assert (f"Boot file {missing} could not be opened and FORTE_BOOT_FILE_FAIL_MISSING is set"
            in result.stderr)
    assert result.returncode != 0


CSV = "csvWriteTest.csv"


@pytest.mark.parametrize(
    ("boot_file", "csv_name", "should_exist", "content", "hard"),
    [
        ("normalExecution.fboot", CSV, True, "'csvFirstValue'; \n", True),
        ("openAndNoClose.fboot", CSV, True, "", True),
        ("doubleInit.fboot", CSV, True, "", False),
        ("initDeinitNoWrite.fboot", CSV, True, "", True),
        ("closeNotOpened.fboot", CSV, False, "", False),
        ("writeQIFalse.fboot", CSV, True, "", False),
        ("writeWithoutInit.fboot", CSV, False, "", False),
        ("normalExecutionMultiple.fboot", CSV, True,
         "'csvFirstValue'; TRUE; 1; \n'csvFirstValue'; FALSE; 2; \n", True),
        ("writeWithoutInit.fboot", "noNameFile.csv", False, "", False),
    ],
)
def test_csv_writer(tmp_path: Path, boot_file: str, csv_name: str, should_exist: bool,
                    content: str, hard: bool) -> None:
    """csvWriter/*: the run's verdict and the file FORTE's CMake script expects."""
    path = str(shared_path("4diac", "forte-systemtests", "src", "modules", "utils",
                           "csvWriter", boot_file))
    result = boot(*([] if hard else ["--soft"]), path, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    csv = tmp_path / csv_name
    assert csv.exists() == should_exist
    if should_exist:
        assert csv.read_text(encoding="utf-8") == content


def test_publish_types_boot_file_loads_with_its_stray_close_tag(tmp_path: Path) -> None:
    """FORTE's own publish_types.fboot ends with `<Request .../></Request>`: accepted."""
    from testbed.fourdiac.bootfile import load_boot_file
    from testbed.runtime.clock import VirtualClock
    from testbed.runtime.device import Device

    device = Device("t", clock=VirtualClock())
    result = load_boot_file(device, shared_path("4diac", "fbdk-asn1", "publish_types.fboot"))
    assert result.ok, result.error
    device.kill()
