"""The F_* function FBs and conversions: typed results with IEC semantics."""

from __future__ import annotations

import pytest

import testbed


def run(type_name: str, **params: str) -> object:
    net = testbed.load(testbed.Application("A").fb("F", type_name))
    for pin, text in params.items():
        net.write(f"A.F.{pin}", text)
    with net.record() as rec:
        net.inject("A.F.REQ")
    assert rec.paths() == ["A.F.CNF"]
    return net.read("A.F.OUT")


@pytest.mark.parametrize(
    ("type_name", "params", "expected"),
    [
        ("F_ADD", {"IN1": "INT#32767", "IN2": "INT#1"}, -32768),  # wraps in the operand type
        ("F_ADD", {"IN1": "REAL#1.5", "IN2": "REAL#2.25"}, 3.75),
        ("F_SUB", {"IN1": "USINT#0", "IN2": "USINT#1"}, 255),
        ("F_MUL", {"IN1": "DINT#-4", "IN2": "DINT#5"}, -20),
        ("F_DIV", {"IN1": "DINT#7", "IN2": "DINT#-2"}, -3),
        ("F_DIV", {"IN1": "DINT#7", "IN2": "DINT#0"}, 0),
        ("F_MOD", {"IN1": "DINT#-7", "IN2": "DINT#2"}, -1),
        ("F_EQ", {"IN1": "DINT#26", "IN2": "DINT#26"}, True),
        ("F_GT", {"IN1": "REAL#2.0", "IN2": "REAL#3.0"}, False),
        ("F_AND", {"IN1": "BYTE#16#F0", "IN2": "BYTE#16#3C"}, 0x30),
        ("F_OR", {"IN1": "TRUE", "IN2": "FALSE"}, True),
        ("F_XOR", {"IN1": "WORD#16#FF00", "IN2": "WORD#16#0FF0"}, 0xF0F0),
        ("F_NOT", {"IN": "BYTE#16#0F"}, 0xF0),
        ("F_NOT", {"IN": "TRUE"}, False),
        ("F_MAX", {"IN1": "INT#3", "IN2": "INT#9"}, 9),
        ("F_LIMIT", {"MN": "INT#0", "IN": "INT#12", "MX": "INT#10"}, 10),
        ("F_SEL", {"G": "TRUE", "IN0": "INT#1", "IN1": "INT#2"}, 2),
        ("F_SQRT", {"IN": "LREAL#16.0"}, 4.0),
        ("F_SHL", {"IN": "BYTE#16#81", "N": "1"}, 2),
        ("F_ROR", {"IN": "BYTE#16#01", "N": "1"}, 0x80),
        ("F_MID", {"IN": "'abcdef'", "L": "2", "P": "3"}, "cd"),
        ("F_CONCAT", {"IN1": "'ab'", "IN2": "'cd'"}, "abcd"),
        ("F_FIND", {"IN1": "'abcabc'", "IN2": "'ca'"}, 3),
        ("F_LEN", {"IN": "'hello'"}, 5),
        ("F_MUX_4", {"K": "UINT#2", "IN1": "1", "IN2": "2", "IN3": "3", "IN4": "4"}, 3),
        ("F_DINT_TO_INT", {"IN": "70000"}, 4464),
        ("F_REAL_TO_DINT", {"IN": "2.5"}, 3),
        ("F_BOOL_TO_UINT", {"IN": "TRUE"}, 1),
        ("F_TIME_TO_DINT", {"IN": "T#1s500ms"}, 1500),
        ("F_UINT_TO_BCD_WORD", {"IN": "1234"}, 0x1234),
        ("F_WORD_BCD_TO_UINT", {"IN": "16#1234"}, 1234),
        ("INT2INT", {"IN": "-5"}, -5),
    ],
)
def test_function(type_name: str, params: dict[str, str], expected: object) -> None:
    """Each F_* FB computes OUT on REQ and fires CNF."""
    assert run(type_name, **params) == expected


def test_mux_out_of_range_logs_and_keeps_out() -> None:
    """F_MUX_n with K out of range leaves OUT unchanged (FORTE logs an error)."""
    assert run("F_MUX_2", K="UINT#2", IN1="INT#1", IN2="INT#2") is None
