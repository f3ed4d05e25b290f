"""ONNX graphs built from numpy weights with `onnx.helper` (no training framework needed).

Every builder is deterministic: the same weights give the same serialized bytes (no
timestamps, fixed opset, IR version and producer), which `testbed train` relies on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "IR_VERSION",
    "OPSET",
    "mahalanobis_detector",
    "mlp_classifier",
    "reference_autoencoder",
    "serialize",
]

OPSET = 17
IR_VERSION = 8
_PRODUCER = "testbed.ai"

Layer = tuple[NDArray[np.float64], NDArray[np.float64]]


def _const(name: str, value: NDArray[np.generic]) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def _model(graph: onnx.GraphProto, doc: str) -> onnx.ModelProto:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=_PRODUCER,
        producer_version="1", doc_string=doc)
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def serialize(model: onnx.ModelProto) -> bytes:
    """The model's bytes (protobuf serialization is deterministic for a given model)."""
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def _dense_nodes(prefix: str, source: str, layers: Sequence[Layer], relu_last: bool
                 ) -> tuple[list[onnx.NodeProto], list[TensorProto], str]:
    nodes: list[onnx.NodeProto] = []
    inits: list[TensorProto] = []
    x = source
    for i, (w, b) in enumerate(layers):
        wn, bn = f"{prefix}W{i}", f"{prefix}B{i}"
        inits += [_const(wn, w.astype(np.float32)), _const(bn, b.astype(np.float32))]
        out = f"{prefix}h{i}"
        nodes.append(helper.make_node("Gemm", [x, wn, bn], [out], name=f"{prefix}gemm{i}"))
        x = out
        if i < len(layers) - 1 or relu_last:
            act = f"{prefix}a{i}"
            nodes.append(helper.make_node("Relu", [x], [act], name=f"{prefix}relu{i}"))
            x = act
    return nodes, inits, x


def mlp_classifier(
    mean: NDArray[np.float64], scale: NDArray[np.float64], layers: Sequence[Layer],
    *, input_name: str = "features", doc: str = ""
) -> onnx.ModelProto:
    """Standardize, dense layers with ReLU between, softmax: `probabilities` and `label`."""
    n_in = int(mean.shape[0])
    n_out = int(layers[-1][1].shape[0])
    nodes = [
        helper.make_node("Sub", [input_name, "mean"], ["centred"], name="centre"),
        helper.make_node("Div", ["centred", "scale"], ["z"], name="scale"),
    ]
    inits = [_const("mean", mean.astype(np.float32)), _const("scale", scale.astype(np.float32))]
    dense, dense_inits, logits = _dense_nodes("", "z", layers, relu_last=False)
    nodes += dense
    inits += dense_inits
    nodes += [
        helper.make_node("Softmax", [logits], ["probabilities"], axis=1, name="softmax"),
        helper.make_node("ArgMax", [logits], ["label"], axis=1, keepdims=1, name="argmax"),
    ]
    graph = helper.make_graph(
        nodes, "fault_classifier",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", n_in])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_out]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["N", 1])],
        inits)
    return _model(graph, doc)


def mahalanobis_detector(
    mean: NDArray[np.float64], whitening: NDArray[np.float64], threshold: float,
    *, input_name: str = "features", doc: str = ""
) -> onnx.ModelProto:
    """Squared Mahalanobis distance to the healthy mean: `score` and `anomaly` (> threshold).

    `whitening` is W with W Wᵀ = Σ⁻¹, so the score is ||(x − μ) W||².
    """
    n_in = int(mean.shape[0])
    nodes = [
        helper.make_node("Sub", [input_name, "mean"], ["centred"], name="centre"),
        helper.make_node("MatMul", ["centred", "whitening"], ["white"], name="whiten"),
        helper.make_node("Mul", ["white", "white"], ["squared"], name="square"),
        helper.make_node("ReduceSum", ["squared", "axes"], ["score"], keepdims=1, name="sum"),
        helper.make_node("Greater", ["score", "threshold"], ["anomaly"], name="compare"),
    ]
    inits = [
        _const("mean", mean.astype(np.float32)),
        _const("whitening", whitening.astype(np.float32)),
        _const("axes", np.array([1], dtype=np.int64)),
        _const("threshold", np.array([threshold], dtype=np.float32)),
    ]
    graph = helper.make_graph(
        nodes, "anomaly_detector",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", n_in])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("anomaly", TensorProto.BOOL, ["N", 1])],
        inits)
    return _model(graph, doc)


def reference_autoencoder(seed: int = 0, sizes: Sequence[int] = (64, 32, 8, 32, 64)
                          ) -> onnx.ModelProto:
    """The benchmark's reference model: a 64-32-8-32-64 MLP (input `x`, output `y`)."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers.append((rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_in, n_out)), np.zeros(n_out)))
    nodes, inits, out = _dense_nodes("", "x", layers, relu_last=False)
    nodes.append(helper.make_node("Identity", [out], ["y"], name="output"))
    graph = helper.make_graph(
        nodes, "reference_autoencoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", sizes[-1]])],
        inits)
    return _model(graph, "64-32-8-32-64 MLP with seeded random weights (benchmark reference)")
