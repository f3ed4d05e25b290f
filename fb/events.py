"""IEC 61499 event function blocks (Annex A) with the interfaces of the 4diac library.

The ECC types are compiled by the same code generator as `.fbt` types, from
Python guards and algorithms; the timed ones are in `fb.timers`.
"""

from __future__ import annotations

from testbed.fbdef import basic_fb, interface
from testbed.model import BasicFBType

__all__ = ["event_types"]

_SRC = __name__


def event_types() -> list[BasicFBType]:
    """Every untimed event FB."""
    return [
        basic_fb(
            "E_SWITCH", interface(ei="EI(G)", eo="EO0 EO1", inputs="G:BOOL"),
            states="START G0[/EO0] G1[/EO1]",
            transitions="G0->START: 1; G1->START: 1; START->G0: EI[not G]; START->G1: EI[G]",
            comment="Switching (demultiplexing) of an event based on boolean input G",
            source=_SRC),
        basic_fb(
            "E_PERMIT", interface(ei="EI(PERMIT)", eo="EO", inputs="PERMIT:BOOL"),
            states="START EO[/EO]", transitions="START->EO: EI[PERMIT]; EO->START: 1",
            comment="Permissive propagation of an event", source=_SRC),
        basic_fb(
            "E_MERGE", interface(ei="EI1 EI2", eo="EO"),
            states="START EO[/EO]", transitions="EO->START: 1; START->EO: EI1; START->EO: EI2",
            comment="Merge (OR) of multiple events", source=_SRC),
        basic_fb(
            "E_SPLIT", interface(ei="EI", eo="EO1 EO2"),
            states="START State[/EO1,/EO2]", transitions="START->State: EI; State->START: 1",
            comment="Split an event into two, EO1 first", source=_SRC),
        basic_fb(
            "E_REND", interface(ei="EI1 EI2 R", eo="EO"),
            states="START EI1 EO[/EO] EI2",
            transitions=("START->EI2: EI2; START->EI1: EI1; EI2->START: R; EI1->START: R; "
                         "EI1->EO: EI2; EI2->EO: EI1; EO->START: 1"),
            comment="Rendezvous of two events", source=_SRC),
        basic_fb(
            "E_SELECT", interface(ei="EI0(G) EI1(G)", eo="EO", inputs="G:BOOL"),
            states="START EO[/EO]",
            transitions="EO->START: 1; START->EO: EI0[not G]; START->EO: EI1[G]",
            comment="Selection between two events", source=_SRC),
        basic_fb(
            "E_DEMUX", interface(ei="EI(K)", eo="EO0 EO1 EO2 EO3", inputs="K:UINT"),
            states="START State State_1[/EO0] State_2[/EO1] State_3[/EO2] State_4[/EO3]",
            transitions=("State_1->START: 1; State_2->START: 1; State_3->START: 1; "
                         "State_4->START: 1; START->State: EI; State->State_1: [K == 0]; "
                         "State->State_2: [K == 1]; State->State_3: [K == 2]; "
                         "State->State_4: [K == 3]; State->START: [K > 3]"),
            comment="Event demultiplexer", source=_SRC),
        basic_fb(
            "E_SR", interface(ei="S R", eo="EO(Q)", outputs="Q:BOOL"),
            states="START SET[SET/EO] RESET[RESET/EO]",
            transitions="START->SET: S; SET->RESET: R; RESET->SET: S",
            algorithms={"SET": "Q = True", "RESET": "Q = False"},
            comment="Event-driven bistable (set dominant)", source=_SRC),
        basic_fb(
            "E_RS", interface(ei="R S", eo="EO(Q)", outputs="Q:BOOL"),
            states="START SET[SET/EO] RESET[RESET/EO]",
            transitions="START->SET: S; SET->RESET: R; RESET->SET: S",
            algorithms={"SET": "Q = True", "RESET": "Q = False"},
            comment="Event-driven bistable (reset dominant)", source=_SRC),
        basic_fb(
            "E_D_FF", interface(ei="CLK(D)", eo="EO(Q)", inputs="D:BOOL", outputs="Q:BOOL"),
            states="START SET[LATCH/EO] RESET[LATCH/EO]",
            transitions="START->SET: CLK[D]; SET->RESET: CLK[not D]; RESET->SET: CLK[D]",
            algorithms={"LATCH": "Q = D"},
            comment="Data latch (D) flip-flop", source=_SRC),
        basic_fb(
            "E_T_FF", interface(ei="CLK", eo="EO(Q)", outputs="Q:BOOL"),
            states="START SET[TOGGLE/EO]", transitions="START->SET: CLK; SET->START: 1",
            algorithms={"TOGGLE": "Q = not Q"},
            comment="Toggle (T) flip-flop", source=_SRC),
        basic_fb(
            "E_R_TRIG", interface(ei="EI(QI)", eo="EO", inputs="QI:BOOL"),
            states="START RISE[/EO] HIGH",
            transitions="START->RISE: EI[QI]; RISE->HIGH: 1; HIGH->START: EI[not QI]",
            comment="Boolean rising edge detection", source=_SRC),
        basic_fb(
            "E_F_TRIG", interface(ei="EI(QI)", eo="EO", inputs="QI:BOOL"),
            states="START HIGH FALL[/EO]",
            transitions="START->HIGH: EI[QI]; HIGH->FALL: EI[not QI]; FALL->START: 1",
            comment="Boolean falling edge detection", source=_SRC),
        basic_fb(
            "E_CTU", interface(ei="CU(PV) R", eo="CUO(Q,CV) RO(Q,CV)", inputs="PV:UINT",
                               outputs="Q:BOOL CV:UINT"),
            states="START CU[CU/CUO] R[R/RO]",
            transitions="START->CU: CU[CV < 65535]; CU->START: 1; START->R: R; R->START: 1",
            algorithms={"CU": "CV = CV + 1\nQ = CV >= PV", "R": "CV = 0\nQ = False"},
            comment="Event driven up counter", source=_SRC),
        basic_fb(
            "E_CTD", interface(ei="CD LD(PV)", eo="CDO(Q,CV) LDO(Q,CV)", inputs="PV:UINT",
                               outputs="Q:BOOL CV:UINT"),
            states="START CD[CD/CDO] LD[LD/LDO]",
            transitions="START->CD: CD[CV > 0]; CD->START: 1; START->LD: LD; LD->START: 1",
            algorithms={"CD": "CV = CV - 1\nQ = CV == 0", "LD": "CV = PV\nQ = CV == 0"},
            comment="Event driven down counter", source=_SRC),
        basic_fb(
            "E_CTUD", interface(ei="CU(PV) CD R LD(PV)", eo="CO(QU,CV,QD) RO(QU,CV,QD) "
                                "LDO(QU,QD,CV)", inputs="PV:UINT",
                                outputs="QU:BOOL QD:BOOL CV:UINT"),
            states=("START CU[CountUp/,UpdateQUQD/CO] R[Reset/,UpdateQUQD/RO] "
                    "CD[CountDown/,UpdateQUQD/CO] LD[Load/,UpdateQUQD/LDO]"),
            transitions=("START->CU: CU[CV < 65535]; CU->START: 1; START->R: R; R->START: 1; "
                         "START->CD: CD[CV > 0]; CD->START: 1; START->LD: LD; LD->START: 1"),
            algorithms={"CountUp": "CV = CV + 1", "Reset": "CV = 0", "Load": "CV = PV",
                        "UpdateQUQD": "QU = CV >= PV\nQD = CV == 0",
                        "CountDown": "CV = CV - 1"},
            comment="Event driven up-down counter", source=_SRC),
    ]
