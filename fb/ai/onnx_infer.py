"""ONNX_INFER_n_m: run an ONNX model on FB data (SD_1..SD_n in, RD_1..RD_m out).

INIT+ loads the model named by MODEL on the model host's loader thread (never on the
resource task), checks it against the FB (tensor counts, and element kinds and sizes of the
data connected to SD_i / RD_j) and answers INITO; QO/STATUS carry any error, naming the model
file and the tensor. INIT+ again with the FB running hot-swaps: the new model loads beside
the old one, which keeps serving REQs until the switch, made between events.

REQ runs one request: SD_i is a scalar, an ARRAY (list or numpy array) of one sample, or of
N samples (one event per batch of N samples). MODE `inline` runs it in the event, `executor`
on the model's bounded micro-batching executor, `auto` (default) inline when the request is
one sample and the model's measured batch-1 time is below a thread hand-off (DESIGN rule 6).
Executor results re-enter through the resource's external queue and are delivered in
request order, one CNF per REQ (a REQ the full queue rejects gets CNF with QO FALSE).
RD_j are scalars for one-sample results of size 1, else read-only numpy arrays.

One-sample inline REQs take a prepared path (`_OneSamplePlan`, built once per lease): the
SD values are copied into input buffers bound to the session once (onnxruntime I/O binding)
and results copied out of bound output buffers, so an event costs little more than the model
run itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import structlog
from numpy.typing import NDArray

from testbed.ai.errors import ModelError
from testbed.ai.executor import BatchingConfig, Outputs
from testbed.ai.host import ModelLease, ModelOptions, host_for
from testbed.ai.session import ModelSession, OneSampleBinding, TensorSpec
from testbed.fbdef import interface
from testbed.model import ServiceFBType
from testbed.runtime.instance import attr_name
from testbed.runtime.resource import Resource, split_pin
from testbed.runtime.service import ServiceFB
from testbed.types import ElementaryType, Kind
from testbed.types.derived import ArrayType

__all__ = ["onnx_infer_type"]

log = structlog.get_logger(__name__)

_MODES = ("auto", "inline", "executor")
_KIND_OF_ELEMENT = {"float": Kind.REAL, "double": Kind.REAL, "bool": Kind.BOOL}


def _element_kinds(element: str) -> tuple[Kind, ...]:
    if element in _KIND_OF_ELEMENT:
        return (_KIND_OF_ELEMENT[element],)
    return (Kind.SIGNED, Kind.UNSIGNED, Kind.BITS)


def _to_batch(value: object, spec: TensorSpec) -> tuple[NDArray[np.generic], int]:
    """A batch of samples for `spec` from FB data, and how many samples it holds."""
    x = np.asarray(value, dtype=spec.dtype)
    size = spec.sample_size
    if size is not None:
        if size and x.size % size == 0 and x.size > 0:
            n = x.size // size
            return x.reshape((n, *spec.sample_dims)), n
        raise ValueError(f"tensor {spec.name!r} takes samples of {size} values "
                         f"({spec.describe()}), got {x.size}")
    if x.ndim == len(spec.shape):
        return x, int(x.shape[0])
    if x.ndim == len(spec.shape) - 1:
        return x[np.newaxis, ...], 1
    raise ValueError(f"tensor {spec.name!r} is {spec.describe()}, got shape {x.shape}")


def _to_fb(out: NDArray[np.generic], samples: int) -> object:
    if samples == 1:
        one = out[0]
        if one.size == 1:
            return one.reshape(-1)[0].item()
        out = one
    out.flags.writeable = False
    return out


@dataclass(frozen=True, slots=True)
class _OneSamplePlan:
    """A lease's inline path for one-sample REQs: bound buffers and pin names, built once.

    The buffers are filled, run and read within one synchronous inline run, so reusing them
    is safe; executor requests always get arrays of their own.
    """

    session: ModelSession
    """The session the binding belongs to (the plan is used only while it serves)."""
    binding: OneSampleBinding
    inputs: tuple[tuple[str, NDArray[np.generic]], ...]
    """(SD attribute name, flat view of its bound input buffer), in input order."""
    outputs: tuple[tuple[str, NDArray[np.generic], bool], ...]
    """(RD attribute name, its bound output buffer, whether a sample is one value)."""

    @classmethod
    def of(cls, lease: ModelLease) -> _OneSamplePlan | None:
        """The plan for `lease`, or None when one sample does not run inline or a tensor's
        sample shape is dynamic."""
        session = lease.session
        if not lease.runs_inline(1):
            return None
        binding = session.one_sample_binding()
        if binding is None:
            return None
        inputs = tuple((attr_name(f"SD_{i}"), buffer.reshape(-1))
                       for i, buffer in enumerate(binding.inputs, start=1))
        outputs = tuple((attr_name(f"RD_{j}"), buffer, buffer.size == 1)
                        for j, buffer in enumerate(binding.outputs, start=1))
        return cls(session, binding, inputs, outputs)

    def fill(self, fb: object) -> bool:
        """Copy fb's SD values into the bound buffers; False when one is not exactly one
        sample (or cannot be converted here), so the general path handles (or reports) it."""
        for attr, flat in self.inputs:
            value = getattr(fb, attr)
            try:
                if isinstance(value, np.ndarray):
                    if value.size != flat.size:
                        return False
                    flat[...] = value if value.ndim == 1 else value.reshape(-1)
                elif isinstance(value, list):
                    if len(value) != flat.size:
                        return False
                    flat[:] = value
                elif isinstance(value, (int, float)) and flat.size == 1:
                    flat[0] = value
                else:
                    return False
            except (ValueError, TypeError):
                return False
        return True

    def publish(self, fb: object) -> None:
        """Set RD_j from the output buffers: scalars, or read-only copies of one sample."""
        for attr, buffer, scalar in self.outputs:
            if scalar:
                setattr(fb, attr, buffer.item())
            else:
                one = buffer[0].copy()
                one.flags.writeable = False
                setattr(fb, attr, one)


class _OnnxInfer(ServiceFB):
    N = 0
    M = 0
    SD_ATTRS: tuple[str, ...] = ()
    RD_ATTRS: tuple[str, ...] = ()
    """The Python attributes of SD_1..SD_n and RD_1..RD_m (per request: no name building)."""

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self._lease: ModelLease | None = None
        self._plan: _OneSamplePlan | None = None
        self._submitted = 0
        self._next = 0
        self._ready: dict[int, tuple[int, Outputs | ModelError]] = {}
        self._scheduled = False
        self.inline_runs = 0
        self.executor_runs = 0
        self.rejected = 0

    @property
    def lease(self) -> ModelLease | None:
        """The model lease serving REQs now (None before a successful INIT+)."""
        return self._lease

    # --- INIT -------------------------------------------------------------------------

    def on_INIT(self) -> None:
        if not self.QI:
            self._drop_lease()
            self.QO, self.STATUS = False, "OK"
            self.emit_INITO()
            return
        mode = str(self.MODE).strip().lower() or "auto"
        if mode not in _MODES:
            self._init_failed(f"MODE {self.MODE!r} is not one of {', '.join(_MODES)}")
            return
        try:
            batching = BatchingConfig(max_batch=max(1, int(self.MAX_BATCH)),
                                      max_wait_s=max(0, int(self.MAX_WAIT)) / 1e9)
        except ValueError as exc:
            self._init_failed(str(exc))
            return
        options = ModelOptions(mode=mode, batching=batching)  # type: ignore[arg-type]
        res = self._res
        host = host_for(res.device if res.device is not None else res)

        def done(result: ModelLease | ModelError) -> None:
            if not self.post(lambda: self._loaded(result)) and isinstance(result, ModelLease):
                result.release()  # the resource stopped while the model loaded

        host.load(str(self.MODEL), None, options, done)

    def _loaded(self, result: ModelLease | ModelError) -> None:
        if isinstance(result, ModelError):
            self._init_failed(str(result))
            return
        try:
            self._check_declared(result.session)
        except ModelError as exc:
            result.release()
            self._init_failed(str(exc))
            return
        old, self._lease = self._lease, result
        self._plan = _OneSamplePlan.of(result)
        if old is not None:
            old.release()  # its executor finishes what it holds, then closes
        self.QO = True
        self.STATUS = "OK" if old is None else f"OK: swapped to {result.session.sha256[:12]}"
        log.info("model_ready", fb=self.name, model=result.session.origin,
                 inline=result.runs_inline(1), swapped=old is not None)
        self.emit_INITO()

    def _init_failed(self, message: str) -> None:
        log.error("model_rejected", fb=self.name, model=str(self.MODEL), error=message)
        self.QO, self.STATUS = self._lease is not None, message
        self.emit_INITO()

    def _check_declared(self, session: ModelSession) -> None:
        """The model's tensors against this FB's pins and the types connected to them."""
        origin = session.origin
        for role, tensors, count, pin in (("input", session.inputs, self.N, "SD"),
                                          ("output", session.outputs, self.M, "RD")):
            if len(tensors) != count:
                raise ModelError(
                    f"{origin}: the model has {len(tensors)} {role} tensor(s) "
                    f"{[t.name for t in tensors]}, {self.type_name} {self.name} has {count} "
                    f"{pin} pin(s)")
        for i, spec in enumerate(session.inputs, start=1):
            self._check_pin(origin, spec, f"SD_{i}", self._connected_type(f"SD_{i}", True))
        for j, spec in enumerate(session.outputs, start=1):
            self._check_pin(origin, spec, f"RD_{j}", self._connected_type(f"RD_{j}", False))

    def _connected_type(self, pin: str, is_input: bool) -> object:
        here = f"{self.name}.{pin}"
        for conn in self._res.connections:
            if conn.kind != "data" or (conn.destination if is_input else conn.source) != here:
                continue
            other_fb, other_pin = split_pin(conn.source if is_input else conn.destination)
            fb = self._res.fbs.get(other_fb)
            if fb is None:
                return None
            decl = fb.var_decl(other_pin)
            return decl.type if decl is not None else None
        return None

    def _check_pin(self, origin: str, spec: TensorSpec, pin: str, fb_type: object) -> None:
        if fb_type is None:
            return
        where = f"{self.name}.{pin}"
        size = spec.sample_size
        element: object = fb_type
        values = 1
        if isinstance(fb_type, ArrayType):
            element, values = fb_type.element, int(np.prod(fb_type.shape))
        if not isinstance(element, ElementaryType):
            return
        if element.kind not in _element_kinds(spec.element):
            raise ModelError(f"{origin}: tensor {spec.name!r} holds {spec.element}, {where} "
                             f"is connected to {getattr(fb_type, 'name', fb_type)}")
        if size is not None and (values % size if pin.startswith("SD") else values != size):
            raise ModelError(f"{origin}: tensor {spec.name!r} takes {size} value(s) per sample "
                             f"({spec.describe()}), {where} is connected to "
                             f"{getattr(fb_type, 'name', fb_type)} ({values} value(s))")

    def _drop_lease(self) -> None:
        if self._lease is not None:
            self._lease.release(drain=False)  # nobody is left to take the results
            self._lease = None
            self._plan = None

    def on_resource_stop(self) -> None:
        self._drop_lease()

    # --- REQ --------------------------------------------------------------------------

    def on_REQ(self) -> None:
        plan = self._plan
        if (plan is not None and self._next == self._submitted and self.QI
                and self._lease is not None and self._lease.session is plan.session
                and plan.fill(self)):
            self._run_one_sample(plan)
            return
        lease = self._lease
        if not self.QI or lease is None:
            self.QO, self.STATUS = False, "not initialised" if self.QI else "QI is FALSE"
            self.emit_CNF()
            return
        session = lease.session
        feeds: dict[str, NDArray[np.generic]] = {}
        samples = -1
        try:
            for i, spec in enumerate(session.inputs, start=1):
                batch, n = _to_batch(getattr(self, self.SD_ATTRS[i - 1]), spec)
                if samples not in (-1, n):
                    raise ValueError(f"SD_{i} holds {n} samples, SD_1 holds {samples}")
                feeds[spec.name], samples = batch, n
        except (ValueError, TypeError) as exc:
            self.QO, self.STATUS = False, f"{session.origin}: {exc}"
            self.emit_CNF()
            return
        if self._next == self._submitted and lease.runs_inline(samples):
            self.inline_runs += 1
            try:
                outputs = session.run(feeds)
            except ModelError as exc:
                self._publish(samples, exc)
                return
            self._publish(samples, outputs)
            return
        seq = self._submitted
        self._submitted += 1
        post = self.post

        def arrived(result: Outputs | ModelError) -> None:
            post(lambda: self._arrived(seq, samples, result))

        self.executor_runs += 1
        if not lease.executor.submit(feeds, samples, arrived):
            self.rejected += 1
            self._arrived(seq, samples, ModelError(
                f"{session.origin}: inference queue full ({lease.executor.config.queue_capacity}"
                " requests); request dropped"))

    def _run_one_sample(self, plan: _OneSamplePlan) -> None:
        """The prepared inline path: one sample, already in the plan's buffers."""
        self.inline_runs += 1
        try:
            plan.binding.run()
        except ModelError as exc:
            self._publish(1, exc)
            return
        plan.publish(self)
        self.QO, self.STATUS = True, "OK"
        self.emit_CNF()

    def _arrived(self, seq: int, samples: int, result: Outputs | ModelError) -> None:
        self._ready[seq] = (samples, result)
        if not self._scheduled:
            self._schedule_delivery()

    def _schedule_delivery(self) -> None:
        """Deliver through the resource queue, so each CNF's destinations run before the next.

        Posted results all run before queued events; publishing them directly would let a
        later CNF overwrite RD_j before the earlier CNF's destinations sampled it.
        """
        self._scheduled = True
        q = self._q
        q.append(self._deliver_next)
        if len(q) > self._wm:
            self._res._queue_grew(self)

    def _deliver_next(self) -> None:
        """Deliver the next result in request order, then queue the one after it."""
        self._scheduled = False
        item = self._ready.pop(self._next, None)
        if item is None:
            return
        self._next += 1
        self._publish(*item)
        if self._next in self._ready:
            self._schedule_delivery()

    def _publish(self, samples: int, result: Outputs | ModelError) -> None:
        if isinstance(result, ModelError):
            self.QO, self.STATUS = False, str(result)
        else:
            for j, out in enumerate(result, start=1):
                setattr(self, self.RD_ATTRS[j - 1], _to_fb(out, samples))
            self.QO, self.STATUS = True, "OK"
        self.emit_CNF()


def onnx_infer_type(m: re.Match[str]) -> ServiceFBType:
    """The ONNX_INFER_<n>_<m> type (built on first use)."""
    n, k = int(m.group(1)), int(m.group(2))
    if n < 1 or k < 1:
        raise ValueError("ONNX_INFER_n_m needs at least one input and one output")
    sds = [f"SD_{i}" for i in range(1, n + 1)]
    rds = [f"RD_{j}" for j in range(1, k + 1)]
    itf = interface(
        ei=f"INIT(QI,MODEL,MODE,MAX_BATCH,MAX_WAIT) REQ(QI,{','.join(sds)})",
        eo=f"INITO(QO,STATUS) CNF(QO,STATUS,{','.join(rds)})",
        inputs="QI:BOOL MODEL:STRING MODE:STRING='auto' MAX_BATCH:UINT=256 MAX_WAIT:TIME=T#1ms "
               + " ".join(f"{s}:ANY" for s in sds),
        outputs="QO:BOOL STATUS:STRING " + " ".join(f"{r}:ANY" for r in rds),
    )
    cls = type(f"ONNX_INFER_{n}_{k}", (_OnnxInfer,), {
        "INTERFACE": itf, "N": n, "M": k, "__module__": __name__,
        "SD_ATTRS": tuple(attr_name(s) for s in sds), "RD_ATTRS": tuple(attr_name(r) for r in rds),
        "COMMENT": "ONNX model inference (model by parameter, micro-batched executor)"})
    fb_type = getattr(cls, "FB_TYPE", None)
    assert isinstance(fb_type, ServiceFBType)
    return fb_type
