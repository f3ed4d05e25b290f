"""Shared by the end-to-end scenario tests: edit a copied scenario's YAML, run the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def edit_yaml(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Load `path`, let `edit` change the mapping in place, write it back."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(spec)
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")


def run_scenario(folder: Path, out: Path, timeout_s: float = 140) -> str:
    """`testbed run FOLDER --out OUT --no-progress` in a child process; asserts it exited 0
    (showing the tail of its stderr otherwise) and returns what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "testbed.cli", "run", str(folder), "--out", str(out),
         "--no-progress"],
        capture_output=True, text=True, timeout=timeout_s, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout
