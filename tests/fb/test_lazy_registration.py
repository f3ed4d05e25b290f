"""Lazy registration of the native FB library: heavy modules load only on first use."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import fb
from fb.ai import AI_TYPE_PATTERN
from fb.io import IO_FAMILIES
from testbed.errors import TypeLibraryError
from testbed.library import TypeLibrary
from testbed.model import FBType

_HEAVY = ("asyncua", "pymodbus", "paho", "onnxruntime", "drivers.sim", "drivers.mqtt",
          "fb.io", "fb.cloud", "fb.ai.onnx_infer", "fb.net.commfb")


def _modules_loaded_after(code: str) -> set[str]:
    script = (f"import sys\n{code}\n"
              f"print(','.join(m for m in {_HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=60).stdout.strip()
    return set(filter(None, out.split(",")))


def test_registering_the_native_library_imports_no_io_cloud_ai_or_comm_stack() -> None:
    """`fb.register` leaves asyncua, pymodbus, paho, onnxruntime and the FB modules unloaded."""
    loaded = _modules_loaded_after(
        "from testbed.library import TypeLibrary\nTypeLibrary.with_native_types()")
    assert loaded == set()


def test_first_use_of_a_lazy_family_imports_its_module() -> None:
    """Naming MODBUS_POLL_2 loads the Modbus FB module (and its stack), nothing of the cloud."""
    loaded = _modules_loaded_after(
        "from testbed.library import TypeLibrary\n"
        "TypeLibrary.with_native_types().get('MODBUS_POLL_2')")
    assert {"pymodbus", "fb.io"} <= loaded
    assert "fb.cloud" not in loaded
    assert "onnxruntime" not in loaded


def test_lazy_family_table_matches_the_packages_own_patterns() -> None:
    """Every family fb.io and fb.ai register themselves is in fb.LAZY_FAMILIES, same pattern."""
    lazy = {pattern for pattern, _module, _maker in fb.LAZY_FAMILIES}
    assert {pattern for pattern, _maker in IO_FAMILIES} <= lazy
    assert AI_TYPE_PATTERN in lazy


def test_cloud_families_resolve_to_the_same_types_as_fb_cloud_registers() -> None:
    """The lazy cloud entries give the types `fb.cloud.register` adds eagerly."""
    from fb.cloud import register as register_cloud

    eager = TypeLibrary()
    register_cloud(eager)
    lazy = TypeLibrary.with_native_types()
    for name in ("CLOUD_TWIN", "CLOUD_TELEMETRY_2", "CLOUD_COMMAND_3"):
        assert lazy.get(name).interface == eager.get(name).interface


def test_lazy_name_is_listed_and_built_once() -> None:
    """A lazily added name is listed, built by its loader on first lookup only."""
    calls: list[str] = []
    source = TypeLibrary.with_native_types().get("E_SR")

    def load(name: str) -> FBType:
        calls.append(name)
        return source

    lib = TypeLibrary()
    lib.add_lazy(["E_SR"], load, "test")
    assert list(lib.names()) == ["E_SR"]
    assert calls == []
    assert lib.get("E_SR") is source
    assert lib.get("E_SR") is source
    assert lib.origin("E_SR") == "test"
    assert calls == ["E_SR"]


def test_lazy_name_clashing_with_a_type_is_refused() -> None:
    """Adding a type under a lazily registered name (or the reverse) names both origins."""
    source = TypeLibrary.with_native_types().get("E_SR")
    lib = TypeLibrary()
    lib.add_lazy(["E_SR"], lambda _name: source, "lazy origin")
    with pytest.raises(TypeLibraryError, match=re.escape("in lazy origin and in other")):
        lib.add(source, "other")
    lib.add(source, "override", override=True)
    assert lib.origin("E_SR") == "override"
    with pytest.raises(TypeLibraryError, match="in override and in again"):
        lib.add_lazy(["E_SR"], lambda _name: source, "again")


def test_failing_loader_leaves_the_name_registered() -> None:
    """A loader that raises does not drop the lazy name; the next lookup tries again."""
    source = TypeLibrary.with_native_types().get("E_SR")
    attempts: list[int] = []

    def load(_name: str) -> FBType:
        attempts.append(1)
        if len(attempts) == 1:
            raise TypeLibraryError("first load fails")
        return source

    lib = TypeLibrary()
    lib.add_lazy(["E_SR"], load, "test")
    with pytest.raises(TypeLibraryError, match="first load fails"):
        lib.get("E_SR")
    assert lib.get("E_SR") is source
