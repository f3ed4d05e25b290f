"""IEC 61131-3 functions as FBs (`F_*`) and the typed copy FBs (`BOOL2BOOL`, `INT2INT`, ...).

Generic inputs (ANY_NUM, ANY_BIT, ...) take the concrete type of their connected
source or typed parameter; integer results wrap to that type, as FORTE computes
in the operand type. The semantics of each function live in one place,
`testbed.st.functions` (shared with compiled Structured Text); conversions
`F_X_TO_Y` use `testbed.types.convert`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

import structlog

from testbed.errors import TypeLibraryError
from testbed.fbdef import interface, simple_fb
from testbed.model import FBType, PythonAlgorithm, ServiceFBType, SimpleFBType
from testbed.runtime.service import ServiceFB
from testbed.st import functions as iecf
from testbed.types import ELEMENTARY, ElementaryType, Kind, bcd_to_int, convert, int_to_bcd

__all__ = ["conversion_type", "copy_types", "function_types"]

log = structlog.get_logger(__name__)

_COPY_TYPES = ["BOOL", "BYTE", "WORD", "DWORD", "LWORD", "SINT", "INT", "DINT", "LINT",
               "USINT", "UINT", "UDINT", "ULINT", "REAL", "LREAL", "STRING", "WSTRING", "TIME",
               "LTIME", "DATE", "TIME_OF_DAY", "DATE_AND_TIME", "CHAR", "WCHAR"]


def copy_types() -> list[SimpleFBType]:
    """`T2T` for every elementary type: REQ copies IN to OUT and fires CNF."""
    return [
        simple_fb(f"{t}2{t}", interface(ei="REQ(IN)", eo="CNF(OUT)", inputs=f"IN:{t}",
                                        outputs=f"OUT:{t}"),
                  {"REQ": "OUT = IN"}, comment=f"Copy a {t} value", source=__name__)
        for t in _COPY_TYPES
    ]


def _convert_alg(src: ElementaryType, dst: ElementaryType) -> Callable[[Any], None]:
    def run(fb: Any) -> None:
        fb.OUT = convert(fb.IN, src, dst)

    return run


def _bcd_alg(to_bcd: bool, bits: int) -> Callable[[Any], None]:
    def run(fb: Any) -> None:
        fb.OUT = int_to_bcd(fb.IN, bits) if to_bcd else bcd_to_int(fb.IN)

    return run


_CONV = re.compile(r"F_([A-Z]+(?:_[A-Z]+)*?)(_BCD)?_TO_(BCD_)?([A-Z]+(?:_[A-Z]+)*)")


def conversion_type(m: re.Match[str]) -> FBType:
    """`F_X_TO_Y` (and the BCD variants) for elementary X and Y, built on first use."""
    src_name, from_bcd, to_bcd, dst_name = m.group(1), m.group(2), m.group(3), m.group(4)
    src = ELEMENTARY.get(src_name)
    dst = ELEMENTARY.get(dst_name)
    if src is None or dst is None:
        raise TypeLibraryError(f"unknown conversion F_{m.group(0)[2:]}")
    itf = interface(ei="REQ(IN)", eo="CNF(OUT)", inputs=f"IN:{src.name}",
                    outputs=f"OUT:{dst.name}")
    alg = _bcd_alg(bool(to_bcd), dst.bits) if (from_bcd or to_bcd) else _convert_alg(src, dst)
    return SimpleFBType(name=m.group(0), interface=itf,
                        algorithms={"REQ": PythonAlgorithm("REQ", alg)}, source=__name__)


# --- generic functions --------------------------------------------------------------


def _result_type(fb: ServiceFB, pins: tuple[str, ...]) -> ElementaryType | None:
    for pin in pins:
        name = fb.input_type_name(pin)
        if name:
            return ELEMENTARY[name]
    return None


def _fit(value: object, t: ElementaryType | None) -> object:
    if t is None:
        return value
    if isinstance(value, bool) and t.kind is not Kind.BOOL:
        value = int(value)
    return t.coerce(value)


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, float) or isinstance(b, float):
        return math.fmod(a, b) if b else 0.0
    return iecf.mod_int(a, b)


def _bitwise(op: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    def run(a: Any, b: Any) -> Any:
        if isinstance(a, bool) and isinstance(b, bool):
            return bool(op(a, b))
        return op(int(a), int(b))

    return run


def _not(a: Any, t: ElementaryType | None) -> Any:
    if isinstance(a, bool):
        return not a
    bits = t.bits if t is not None else 64
    return ~int(a) & ((1 << bits) - 1)


_BINARY: dict[str, tuple[str, str, Callable[..., Any], bool]] = {
    # name: (input generic type, output type or "" for the inputs' type, fn, wraps)
    "F_ADD": ("ANY_MAGNITUDE", "", operator.add, True),
    "F_SUB": ("ANY_MAGNITUDE", "", operator.sub, True),
    "F_MUL": ("ANY_NUM", "", operator.mul, True),
    "F_DIV": ("ANY_NUM", "", iecf.div, True),
    "F_MOD": ("ANY_INT", "", _mod, True),
    "F_EXPT": ("ANY_REAL", "", iecf.expt, False),
    "F_AND": ("ANY_BIT", "", _bitwise(operator.and_), True),
    "F_OR": ("ANY_BIT", "", _bitwise(operator.or_), True),
    "F_XOR": ("ANY_BIT", "", _bitwise(operator.xor), True),
    "F_MAX": ("ANY_ELEMENTARY", "", max, False),
    "F_MIN": ("ANY_ELEMENTARY", "", min, False),
    "F_EQ": ("ANY_ELEMENTARY", "BOOL", operator.eq, False),
    "F_NE": ("ANY_ELEMENTARY", "BOOL", operator.ne, False),
    "F_GT": ("ANY_ELEMENTARY", "BOOL", operator.gt, False),
    "F_GE": ("ANY_ELEMENTARY", "BOOL", operator.ge, False),
    "F_LT": ("ANY_ELEMENTARY", "BOOL", operator.lt, False),
    "F_LE": ("ANY_ELEMENTARY", "BOOL", operator.le, False),
}

_UNARY: dict[str, tuple[str, str, Callable[[Any], Any]]] = {
    "F_MOVE": ("ANY", "ANY", lambda a: a),
    "F_ABS": ("ANY_NUM", "ANY_NUM", abs),
    "F_SQRT": ("ANY_REAL", "ANY_REAL", iecf.sqrt),
    "F_LN": ("ANY_REAL", "ANY_REAL", iecf.ln),
    "F_LOG": ("ANY_REAL", "ANY_REAL", iecf.log),
    "F_EXP": ("ANY_REAL", "ANY_REAL", iecf.exp),
    "F_SIN": ("ANY_REAL", "ANY_REAL", iecf.sin),
    "F_COS": ("ANY_REAL", "ANY_REAL", iecf.cos),
    "F_TAN": ("ANY_REAL", "ANY_REAL", iecf.tan),
    "F_ASIN": ("ANY_REAL", "ANY_REAL", iecf.asin),
    "F_ACOS": ("ANY_REAL", "ANY_REAL", iecf.acos),
    "F_ATAN": ("ANY_REAL", "ANY_REAL", iecf.atan),
    "F_TRUNC": ("ANY_REAL", "ANY_INT", iecf.trunc),
    "F_LEN": ("ANY_STRING", "ANY_INT", len),
}


def _make(name: str, itf_kwargs: dict[str, str], on_req: Callable[[Any], None],
          comment: str) -> ServiceFBType:
    cls = type(name, (ServiceFB,), {"INTERFACE": interface(**itf_kwargs), "on_REQ": on_req,
                                    "COMMENT": comment, "__module__": __name__})
    fb_type = getattr(cls, "FB_TYPE", None)
    assert isinstance(fb_type, ServiceFBType)
    return fb_type


def _binary_type(name: str, in_type: str, out_type: str, fn: Callable[..., Any],
                 wraps: bool) -> ServiceFBType:
    def on_req(self: Any) -> None:
        t = _result_type(self, ("IN1", "IN2"))
        try:
            result = fn(self.IN1, self.IN2)
        except (TypeError, ValueError, OverflowError) as exc:
            log.error("function_failed", fb=self.name, type=name, error=str(exc))
        else:
            self.OUT = _fit(result, t) if (wraps and out_type == "") else result
        self.emit_CNF()

    return _make(name, {"ei": "REQ(IN1,IN2)", "eo": "CNF(OUT)",
                        "inputs": f"IN1:{in_type} IN2:{in_type}",
                        "outputs": f"OUT:{out_type or in_type}"}, on_req, name[2:])


def _unary_type(name: str, in_type: str, out_type: str,
                fn: Callable[[Any], Any]) -> ServiceFBType:
    def on_req(self: Any) -> None:
        try:
            self.OUT = fn(self.IN)
        except (TypeError, ValueError, OverflowError) as exc:
            log.error("function_failed", fb=self.name, type=name, error=str(exc))
        self.emit_CNF()

    return _make(name, {"ei": "REQ(IN)", "eo": "CNF(OUT)", "inputs": f"IN:{in_type}",
                        "outputs": f"OUT:{out_type}"}, on_req, name[2:])


def _f_not() -> ServiceFBType:
    def on_req(self: Any) -> None:
        self.OUT = _not(self.IN, _result_type(self, ("IN",)))
        self.emit_CNF()

    return _make("F_NOT", {"ei": "REQ(IN)", "eo": "CNF(OUT)", "inputs": "IN:ANY_BIT",
                           "outputs": "OUT:ANY_BIT"}, on_req, "Bitwise/logical NOT")


def _f_sel() -> ServiceFBType:
    def on_req(self: Any) -> None:
        self.OUT = iecf.sel(self.G, self.IN0, self.IN1)
        self.emit_CNF()

    return _make("F_SEL", {"ei": "REQ(G,IN0,IN1)", "eo": "CNF(OUT)",
                           "inputs": "G:BOOL IN0:ANY IN1:ANY", "outputs": "OUT:ANY"},
                 on_req, "Binary selection")


def _f_limit() -> ServiceFBType:
    def on_req(self: Any) -> None:
        self.OUT = iecf.limit(self.MN, self.IN, self.MX)
        self.emit_CNF()

    return _make("F_LIMIT", {"ei": "REQ(MN,IN,MX)", "eo": "CNF(OUT)",
                             "inputs": "MN:ANY_ELEMENTARY IN:ANY_ELEMENTARY MX:ANY_ELEMENTARY",
                             "outputs": "OUT:ANY_ELEMENTARY"}, on_req, "Limitation")


_MUX = re.compile(r"F_MUX_(\d+)")


def mux_type(m: re.Match[str]) -> ServiceFBType:
    """F_MUX_<n>: OUT := IN<K+1>; K out of range logs an error and leaves OUT unchanged."""
    n = int(m.group(1))
    ins = [f"IN{i}" for i in range(1, n + 1)]

    def on_req(self: Any) -> None:
        k = int(self.K)
        if 0 <= k < n:
            self.OUT = self.get(ins[k])
        else:
            log.error("function_failed", fb=self.name, type=f"F_MUX_{n}",
                      error=f"K={k} is out of range 0..{n - 1}")
        self.emit_CNF()

    return _make(f"F_MUX_{n}", {"ei": f"REQ({','.join(['K', *ins])})", "eo": "CNF(OUT)",
                                "inputs": "K:ANY_INT " + " ".join(f"{i}:ANY" for i in ins),
                                "outputs": "OUT:ANY"}, on_req, "Multiplexer")


def _shift_type(name: str, fn: Callable[[int, int, int], int]) -> ServiceFBType:
    """F_SHL/F_SHR/F_ROL/F_ROR: IN shifted or rotated by N within IN's bit width."""

    def on_req(self: Any) -> None:
        t = _result_type(self, ("IN",))
        bits = t.bits if t is not None else 64
        self.OUT = fn(int(self.IN), int(self.N), bits)
        self.emit_CNF()

    return _make(name, {"ei": "REQ(IN,N)", "eo": "CNF(OUT)", "inputs": "IN:ANY_BIT N:ANY_INT",
                        "outputs": "OUT:ANY_BIT"}, on_req, name[2:])


_STRINGS: dict[str, tuple[str, str, Callable[..., Any]]] = {
    # name: (inputs, output, function over the inputs in order)
    "F_LEFT": ("IN:ANY_STRING L:ANY_INT", "OUT:ANY_STRING", iecf.left),
    "F_RIGHT": ("IN:ANY_STRING L:ANY_INT", "OUT:ANY_STRING", iecf.right),
    "F_MID": ("IN:ANY_STRING L:ANY_INT P:ANY_INT", "OUT:ANY_STRING", iecf.mid),
    "F_CONCAT": ("IN1:ANY_STRING IN2:ANY_STRING", "OUT:ANY_STRING", iecf.concat),
    "F_INSERT": ("IN1:ANY_STRING IN2:ANY_STRING P:ANY_INT", "OUT:ANY_STRING", iecf.insert),
    "F_DELETE": ("IN:ANY_STRING L:ANY_INT P:ANY_INT", "OUT:ANY_STRING", iecf.delete),
    "F_REPLACE": ("IN1:ANY_STRING IN2:ANY_STRING L:ANY_INT P:ANY_INT", "OUT:ANY_STRING",
                  iecf.replace),
    "F_FIND": ("IN1:ANY_STRING IN2:ANY_STRING", "OUT:ANY_INT", iecf.find),
}


def _string_type(name: str, inputs: str, output: str, fn: Callable[..., Any]) -> ServiceFBType:
    pins = [token.split(":")[0] for token in inputs.split()]

    def on_req(self: Any) -> None:
        self.OUT = fn(*(self.get(p) for p in pins))
        self.emit_CNF()

    return _make(name, {"ei": f"REQ({','.join(pins)})", "eo": "CNF(OUT)", "inputs": inputs,
                        "outputs": output}, on_req, name[2:])


def function_types() -> list[FBType]:
    """The generic IEC 61131-3 functions as FBs (REQ -> CNF), semantics from st.functions."""
    types: list[FBType] = [_binary_type(n, *spec) for n, spec in _BINARY.items()]
    types += [_unary_type(n, *spec) for n, spec in _UNARY.items()]
    types += [_f_not(), _f_sel(), _f_limit()]
    types += [_shift_type(n, fn) for n, fn in (("F_SHL", iecf.shl), ("F_SHR", iecf.shr),
                                              ("F_ROL", iecf.rol), ("F_ROR", iecf.ror))]
    types += [_string_type(n, *spec) for n, spec in _STRINGS.items()]
    return types


