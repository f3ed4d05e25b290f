"""One ONNX model, loaded once, validated against what its user declares, run on arrays.

onnxruntime sessions are created with bounded thread counts (one intra-op and one inter-op
thread by default: the edge box is shared with the FB runtime). Validation compares input and
output names, element types and shapes and names the model file and the tensor in every error.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from testbed.ai.errors import ModelError

__all__ = [
    "INLINE_THRESHOLD_S",
    "ModelSession",
    "ModelSignature",
    "OneSampleBinding",
    "TensorSpec",
]

INLINE_THRESHOLD_S = 50e-6
"""Work shorter than a thread hand-off may run inline in the resource (DESIGN rule 6)."""

Dim = int | None
"""A tensor dimension: a size, or None for a dynamic (named or unknown) dimension."""

_NUMPY_OF_ONNX: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A named tensor: element type (`float`, `double`, `int64`, `bool`, ...) and shape."""

    name: str
    element: str
    shape: tuple[Dim, ...]
    sample_shape: tuple[Dim, ...] = field(init=False, repr=False, compare=False)
    """The shape of one sample (the leading batch dimension removed)."""
    sample_size: int | None = field(init=False, repr=False, compare=False)
    """Values per sample, or None when a per-sample dimension is dynamic."""
    sample_dims: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """The fixed per-sample dimensions (a reshape target)."""

    def __post_init__(self) -> None:
        # worked out once: every executor request reads them
        dims = self.shape[1:]
        fixed = tuple(d for d in dims if d is not None)
        object.__setattr__(self, "sample_shape", dims)
        object.__setattr__(self, "sample_dims", fixed)
        object.__setattr__(self, "sample_size",
                           None if len(fixed) != len(dims) else math.prod(fixed))

    @property
    def dtype(self) -> type[np.generic]:
        return _NUMPY_OF_ONNX[f"tensor({self.element})"]

    def describe(self) -> str:
        dims = ",".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.element}[{dims}]"


@dataclass(frozen=True, slots=True)
class ModelSignature:
    """What a user of a model expects; `None` fields are not checked."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def _spec(arg: object) -> TensorSpec:
    name = str(getattr(arg, "name", ""))
    onnx_type = str(getattr(arg, "type", ""))
    element = onnx_type.removeprefix("tensor(").removesuffix(")")
    shape = tuple(d if isinstance(d, int) and d >= 0 else None
                  for d in (getattr(arg, "shape", None) or ()))
    return TensorSpec(name, element, shape)


def _one_sample_buffer(spec: TensorSpec) -> NDArray[np.generic] | None:
    """A zeroed (1, *sample shape) array for `spec`, or None when a sample dim is dynamic."""
    if spec.sample_size is None:
        return None
    dims = tuple(d for d in spec.sample_shape if d is not None)
    return np.zeros((1, *dims), dtype=spec.dtype)


class OneSampleBinding:
    """Batch-1 runs through onnxruntime I/O binding: input and output buffers bound once.

    Callers write one sample into `inputs` and read results from `outputs` after `run()`;
    nothing is converted or allocated per run. The buffers are reused by the next run, so
    copy out what must outlive it, and use one binding from one thread at a time.
    """

    def __init__(self, session: ort.InferenceSession, origin: str,
                 inputs: Sequence[tuple[TensorSpec, NDArray[np.generic]]],
                 outputs: Sequence[tuple[TensorSpec, NDArray[np.generic]]]) -> None:
        self.origin = origin
        self.inputs = tuple(buffer for _spec, buffer in inputs)
        self.outputs = tuple(buffer for _spec, buffer in outputs)
        binding = session.io_binding()
        for spec, buffer in inputs:
            binding.bind_ortvalue_input(spec.name, ort.OrtValue.ortvalue_from_numpy(buffer))
        for spec, buffer in outputs:
            binding.bind_ortvalue_output(spec.name, ort.OrtValue.ortvalue_from_numpy(buffer))
        self._binding = binding
        self._run = session.run_with_iobinding

    def run(self) -> None:
        """Run once on the bound buffers; maps onnxruntime failures to ModelError."""
        try:
            self._run(self._binding)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{self.origin}: inference failed: {exc}") from exc


class ModelSession:
    """An onnxruntime session with its tensor specs, its origin and its file's sha256."""

    def __init__(self, source: Path | str | bytes, *, threads: int = 1,
                 label: str | None = None) -> None:
        if isinstance(source, bytes):
            data = source
            self.origin = label or "<bytes>"
        else:
            path = Path(source)
            self.origin = label or str(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ModelError(f"{self.origin}: cannot read model file: {exc.strerror}"
                                 ) from exc
        self.sha256 = hashlib.sha256(data).hexdigest()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(data, options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{self.origin}: not a loadable ONNX model: {exc}") from exc
        self.inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self.outputs = tuple(_spec(a) for a in self._session.get_outputs())
        for spec in (*self.inputs, *self.outputs):
            if f"tensor({spec.element})" not in _NUMPY_OF_ONNX:
                raise ModelError(f"{self.origin}: tensor {spec.name!r} has element type "
                                 f"{spec.element}, which FB data cannot carry")
        self._output_names = [o.name for o in self.outputs]
        self._run = self._session.run

    def validate(self, expected: ModelSignature) -> None:
        """Raise ModelError unless the model's tensors match `expected` (names, types, shapes)."""
        self._check("input", self.inputs, expected.inputs)
        self._check("output", self.outputs, expected.outputs)

    def _check(self, role: str, actual: Sequence[TensorSpec],
               expected: Sequence[TensorSpec]) -> None:
        by_name = {t.name: t for t in actual}
        for want in expected:
            have = by_name.get(want.name)
            if have is None:
                raise ModelError(f"{self.origin}: no {role} tensor {want.name!r}; the model's "
                                 f"{role}s are {[t.name for t in actual]}")
            if have.element != want.element:
                raise ModelError(f"{self.origin}: {role} tensor {want.name!r} holds "
                                 f"{have.element}, expected {want.element}")
            if len(have.shape) != len(want.shape) or any(
                    h is not None and w is not None and h != w
                    for h, w in zip(have.shape, want.shape, strict=True)):
                raise ModelError(f"{self.origin}: {role} tensor {want.name!r} has shape "
                                 f"{have.describe()}, expected {want.describe()}")
        if role == "input":
            missing = [t.name for t in actual if t.name not in {w.name for w in expected}]
            if missing:
                raise ModelError(f"{self.origin}: the model also needs input tensor(s) "
                                 f"{missing}, which are not provided")

    def run(self, feeds: Mapping[str, NDArray[np.generic]]) -> list[NDArray[np.generic]]:
        """Run once on whole batches; maps onnxruntime failures to ModelError."""
        try:
            out: list[NDArray[np.generic]] = self._run(self._output_names, feeds)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise ModelError(f"{self.origin}: inference failed: {exc}") from exc
        return out

    def one_sample_binding(self) -> OneSampleBinding | None:
        """Bound buffers for batch-1 runs, or None when a tensor's sample shape is dynamic."""
        bound: list[list[tuple[TensorSpec, NDArray[np.generic]]]] = [[], []]
        for side, specs in enumerate((self.inputs, self.outputs)):
            for spec in specs:
                buffer = _one_sample_buffer(spec)
                if buffer is None:
                    return None
                bound[side].append((spec, buffer))
        return OneSampleBinding(self._session, self.origin, bound[0], bound[1])

    def zeros(self, batch: int = 1) -> dict[str, NDArray[np.generic]]:
        """A feed of zeros with dynamic dimensions set to `batch` (first) or 1."""
        feeds: dict[str, NDArray[np.generic]] = {}
        for spec in self.inputs:
            shape = [batch if i == 0 and d is None else (d if d is not None else 1)
                     for i, d in enumerate(spec.shape)]
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
        return feeds

    def measure_batch1_s(self, repeats: int = 25, budget_s: float = 0.02) -> float:
        """Median wall time of one batch-1 run (decides inline vs executor in `auto` mode).

        Stops early once `budget_s` is spent, so a slow model loads quickly.
        """
        feeds = self.zeros(1)
        self.run(feeds)  # first run allocates
        samples: list[float] = []
        end = time.perf_counter() + budget_s
        while len(samples) < repeats and (len(samples) < 3 or time.perf_counter() < end):
            start = time.perf_counter()
            self.run(feeds)
            samples.append(time.perf_counter() - start)
        return float(statistics.median(samples))
