"""Helpers for the AI FB tests: model files built from code and a wait-for-events loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from testbed.ai.graphs import IR_VERSION, OPSET, reference_autoencoder, serialize
from testbed.runtime.resource import Resource


def pump(res: Resource, until: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Run the resource until `until()` holds (results arrive from executor threads)."""
    deadline = time.monotonic() + timeout_s
    while True:
        res.run_until_idle()
        if until():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached within the deadline")
        time.sleep(0.0005)


def scale_model(factor: float, n: int = 4, slow_loops: int = 0) -> bytes:
    """y = factor * x over float[N, n]; `slow_loops` adds big matmuls to make it slow."""
    nodes = [helper.make_node("Mul", ["x", "k"], ["y"])]
    inits = [numpy_helper.from_array(np.array([factor], np.float32), "k")]
    if slow_loops:  # work that depends on x, so onnxruntime cannot fold it away
        inits.append(numpy_helper.from_array(np.full((n, 1000), 1e-3, np.float32), "w_in"))
        inits.append(numpy_helper.from_array(np.full((1000, 1000), 1e-4, np.float32), "big"))
        inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
        nodes = [helper.make_node("Mul", ["x", "k"], ["y0"]),
                 helper.make_node("MatMul", ["x", "w_in"], ["m_in"])]
        prev = "m_in"
        for i in range(slow_loops):
            nodes.append(helper.make_node("MatMul", [prev, "big"], [f"m{i}"]))
            prev = f"m{i}"
        nodes += [helper.make_node("ReduceSum", [prev], ["s"], keepdims=0),
                  helper.make_node("Mul", ["s", "zero"], ["z"]),
                  helper.make_node("Add", ["y0", "z"], ["y"])]
    graph = helper.make_graph(
        nodes, "scale", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return serialize(model)


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    """Model files: the reference autoencoder, x2 and x3 scalers, and a slow x2 scaler."""
    files = {
        "ref": serialize(reference_autoencoder(0)),
        "x2": scale_model(2.0),
        "x3": scale_model(3.0),
        "slow": scale_model(2.0, slow_loops=200),
    }
    out = {}
    for name, data in files.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        out[name] = path
    return out
