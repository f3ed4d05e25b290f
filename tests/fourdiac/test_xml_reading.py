"""Safe XML parsing with line numbers, and .fbt/.adp reading into the type model."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.errors import TypeLibraryError
from testbed.fourdiac.fbt import read_adp, read_fbt, split_condition
from testbed.fourdiac.xml_common import parse_xml_file, parse_xml_text
from testbed.model import BasicFBType, CompositeFBType, ServiceFBType, SimpleFBType, STGuard
from testbed.types import ELEMENTARY, ArrayType

HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'

E_CNT = HEADER + """<!DOCTYPE FBType SYSTEM "http://www.holobloc.com/xml/LibraryElement.dtd">
<FBType Name="E_CNT" Comment="counter">
  <Identification Standard="61499-2"/>
  <VersionInfo Author="t" Date="2024-01-01" Version="1.0"/>
  <CompilerInfo packageName="my::pkg"/>
  <InterfaceList>
    <EventInputs>
      <Event Name="CU" Type="Event" Comment="count"><With Var="PV"/></Event>
      <Event Name="R" Type="Event"/>
    </EventInputs>
    <EventOutputs>
      <Event Name="CUO" Type="Event"><With Var="CV"/><With Var="Q"/></Event>
      <Event Name="RO" Type="Event"><With Var="CV"/></Event>
    </EventOutputs>
    <InputVars>
      <VarDeclaration Name="PV" Type="UINT" InitialValue="3" Comment="preset"/>
      <VarDeclaration Name="A" Type="INT" ArraySize="4"/>
      <VarDeclaration Name="B" Type="INT" ArraySize="1..3" InitialValue="[7, 8]"/>
      <VarDeclaration Name="C" Type="REAL" ArraySize="[0..1]"/>
    </InputVars>
    <OutputVars>
      <VarDeclaration Name="Q" Type="BOOL"/>
      <VarDeclaration Name="CV" Type="UINT"/>
    </OutputVars>
  </InterfaceList>
  <BasicFB>
    <InternalVars><VarDeclaration Name="N" Type="DINT" InitialValue="DINT#-5"/></InternalVars>
    <ECC>
      <ECState Name="START" x="1" y="2"/>
      <ECState Name="COUNT"><ECAction Algorithm="CU" Output="CUO"/></ECState>
      <ECState Name="RESET"><ECAction Algorithm="R" Output="RO"/></ECState>
      <ECTransition Source="START" Destination="COUNT" Condition="CU[CV &lt; 65535]"/>
      <ECTransition Source="START" Destination="RESET" Condition="R"/>
      <ECTransition Source="COUNT" Destination="START" Condition="1"/>
      <ECTransition Source="RESET" Destination="START" Condition="1"/>
    </ECC>
    <Algorithm Name="CU" Comment="up">
      <ST><![CDATA[CV := CV + 1;
Q := CV >= PV;]]></ST>
    </Algorithm>
    <Algorithm Name="R"><ST Text="CV := 0;&#13;&#10;Q := FALSE;"/></Algorithm>
  </BasicFB>
  <Attribute Name="TypeHash" Value="abc"/>
</FBType>
"""


def _line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of `needle` in `text`."""
    return text[:text.index(needle)].count("\n") + 1


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_elements_carry_file_and_line(tmp_path: Path) -> None:
    """Every element records the line it starts on; CDATA text is kept verbatim."""
    root = parse_xml_file(_write(tmp_path, "E_CNT.fbt", E_CNT))
    assert root.tag == "FBType"
    assert root.line == 3
    alg = next(root.iter("Algorithm"))
    assert alg.line == _line_of(E_CNT, '<Algorithm Name="CU"')
    st = alg.find("ST")
    assert st is not None
    assert st.text.startswith("CV := CV + 1;\nQ")
    assert root.file.endswith("E_CNT.fbt")


def test_external_doctype_is_neither_fetched_nor_an_error() -> None:
    """A DOCTYPE naming an http:// DTD parses offline (nothing is fetched)."""
    root = parse_xml_text(HEADER + '<!DOCTYPE X SYSTEM "http://192.0.2.1/none.dtd">\n<X a="1"/>',
                          "x.fbt")
    assert root.get("a") == "1"


def test_entity_declarations_are_refused_with_file_and_line() -> None:
    """An entity declaration (billion laughs, XXE) is rejected, naming file and line."""
    text = HEADER + '<!DOCTYPE X [\n<!ENTITY a "aaaa">\n]>\n<X>&a;</X>'
    with pytest.raises(TypeLibraryError, match=r"evil\.fbt:\d+.*forbidden XML"):
        parse_xml_text(text, "evil.fbt")
    xxe = HEADER + '<!DOCTYPE X [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<X>&e;</X>'
    with pytest.raises(TypeLibraryError, match="forbidden XML"):
        parse_xml_text(xxe, "xxe.fbt")


def test_malformed_xml_names_file_and_line() -> None:
    """Broken XML is a TypeLibraryError at file:line."""
    with pytest.raises(TypeLibraryError, match=r"bad\.fbt:4: malformed XML"):
        parse_xml_text(HEADER + "<A>\n<B>\n</A>", "bad.fbt")


def test_basic_fb_reads_interface_ecc_and_algorithms(tmp_path: Path) -> None:
    """Interface, internal vars, ECC order and ST algorithms come through as the model."""
    t = read_fbt(_write(tmp_path, "E_CNT.fbt", E_CNT))
    assert isinstance(t, BasicFBType)
    itf = t.interface
    assert [e.name for e in itf.event_inputs] == ["CU", "R"]
    assert itf.event_output("CUO").with_vars == ("CV", "Q")  # type: ignore[union-attr]
    pv = itf.input_var("PV")
    assert pv is not None
    assert pv.type is ELEMENTARY["UINT"]
    assert pv.initial == 3
    assert pv.comment == "preset"
    a, b, c = (itf.input_var(n) for n in "ABC")
    assert isinstance(a.type, ArrayType)
    assert a.type.dims == ((0, 3),)
    assert b.type.dims == ((1, 3),)
    assert b.initial == [7, 8, 0]
    assert c.type.dims == ((0, 1),)  # type: ignore[union-attr]
    assert t.internal_vars[0].initial == -5
    assert [s.name for s in t.ecc.states] == ["START", "COUNT", "RESET"]
    first = t.ecc.transitions[0]
    assert (first.event, first.guard) == ("CU", STGuard("CV < 65535"))
    assert t.ecc.transitions[2].event is None
    assert t.ecc.transitions[2].guard is None
    assert t.algorithms["CU"].text.startswith("CV := CV + 1;")  # type: ignore[union-attr]
    # the ST text starts on the <ST> line: its line 1 maps to that file line
    assert t.algorithms["CU"].line == _line_of(E_CNT, "<ST><![CDATA[") - 1  # type: ignore[union-attr]


def test_condition_forms() -> None:
    """EV, EV[g], EV&g (IDE 1.x), [g], a bare guard, 1, and adapter events Plug.EV split right."""
    events = {"EI", "CLK", "TO.TimeOut"}
    assert split_condition("EI", events) == ("EI", None)
    assert split_condition("EI[NOT G]", events) == ("EI", STGuard("NOT G"))
    assert split_condition("CLK&(NOT D)", events) == ("CLK", STGuard("(NOT D)"))
    assert split_condition("[K = 3]", events) == (None, STGuard("K = 3"))
    assert split_condition("NOT G", events) == (None, STGuard("NOT G"))
    assert split_condition("1", events) == (None, None)
    assert split_condition("TO.TimeOut", events) == ("TO.TimeOut", None)
    assert split_condition("TO.TimeOut[X > 1]", events) == ("TO.TimeOut", STGuard("X > 1"))


@pytest.mark.parametrize(("replace", "with_", "match"), [
    ('Type="UINT" InitialValue="3"', 'Type="UINT" InitialValue="-3"',
     r"E_CNT\.fbt:{line} \(<VarDeclaration> InitialValue of 'PV'\): bad initial value"),
    ('ArraySize="4"', 'ArraySize="0..x"', r":{line} \(<VarDeclaration> ArraySize of 'A'\)"),
    ('Name="Q" Type="BOOL"', 'Name="Q" Type="NO_SUCH_TYPE"',
     r":{line} \(<VarDeclaration> Type of 'Q'\): unknown data type 'NO_SUCH_TYPE'"),
    ('Destination="COUNT" Condition', 'Destination="NOWHERE" Condition',
     r":{line} \(<ECTransition> Destination\): transition refers to unknown state 'NOWHERE'"),
    ('<ST Text="CV := 0;', '<Other Language="C" Text="CV := 0;',
     r":{line} \(<Algorithm> Name\): algorithm R of E_CNT is written in C"),
    ('<With Var="PV"/>', '<With Var="PX"/>', r"E_CNT\.fbt:{line} \(<InterfaceList>\).*'PX'"),
])
def test_bad_input_names_file_line_and_field(tmp_path: Path, replace: str, with_: str,
                                              match: str) -> None:
    """Each malformed declaration is a TypeLibraryError naming file:line and the element/field."""
    assert replace in E_CNT
    text = E_CNT.replace(replace, with_, 1)
    line = _line_of(text, "<InterfaceList>") if "InterfaceList" in match else _line_of(text, with_)
    path = _write(tmp_path, "E_CNT.fbt", text)
    with pytest.raises(TypeLibraryError, match=match.format(line=line)):
        read_fbt(path)


def test_simple_composite_and_service_bodies(tmp_path: Path) -> None:
    """SimpleFB, FBNetwork (with parameters and bare interface pins) and Service bodies."""
    itf = """<InterfaceList><EventInputs><Event Name="REQ"><With Var="IN"/></Event></EventInputs>
<EventOutputs><Event Name="CNF"><With Var="OUT"/></Event></EventOutputs>
<InputVars><VarDeclaration Name="IN" Type="INT"/></InputVars>
<OutputVars><VarDeclaration Name="OUT" Type="INT"/></OutputVars></InterfaceList>"""
    simple = read_fbt(_write(tmp_path, "S.fbt", HEADER + f"""<FBType Name="S">{itf}
<SimpleFB><Algorithm Name="REQ"><ST Text="OUT := IN * 2;"/></Algorithm></SimpleFB></FBType>"""))
    assert isinstance(simple, SimpleFBType)
    assert set(simple.algorithms) == {"REQ"}
    comp = read_fbt(_write(tmp_path, "C.fbt", HEADER + f"""<FBType Name="C">{itf}
<FBNetwork><FB Name="D" Type="E_DELAY" x="1" y="2"><Parameter Name="DT" Value="T#1s"/></FB>
<EventConnections><Connection Source="REQ" Destination="D.START"/>
<Connection Source="D.EO" Destination="CNF"/></EventConnections>
<DataConnections><Connection Source="IN" Destination="OUT"/></DataConnections>
</FBNetwork></FBType>"""))
    assert isinstance(comp, CompositeFBType)
    assert comp.network.instances[0].parameters == {"DT": "T#1s"}
    assert [(c.source, c.destination) for c in comp.network.event_connections] == [
        ("REQ", "D.START"), ("D.EO", "CNF")]
    svc = read_fbt(_write(tmp_path, "V.fbt", HEADER + f"""<FBType Name="V">{itf}
<Service LeftInterface="APPLICATION" RightInterface="RESOURCE"/></FBType>"""))
    assert isinstance(svc, ServiceFBType)
    assert svc.implementation is None


def test_adapter_type_and_plug_declarations(tmp_path: Path) -> None:
    """An .adp becomes an AdapterType; Plugs/Sockets become AdapterDecls."""
    adp = read_adp(_write(tmp_path, "ATO.adp", HEADER + """<AdapterType Name="ATO">
<InterfaceList><EventInputs><Event Name="TimeOut"/></EventInputs>
<EventOutputs><Event Name="START"><With Var="DT"/></Event></EventOutputs>
<InputVars/><OutputVars><VarDeclaration Name="DT" Type="TIME" InitialValue=""/></OutputVars>
</InterfaceList></AdapterType>"""))
    assert adp.kind == "adapter"
    assert adp.interface.output_var("DT") is not None
    fbt = read_fbt(_write(tmp_path, "P.fbt", HEADER + """<FBType Name="P"><InterfaceList>
<Plugs><AdapterDeclaration Name="TO" Type="ATO"/></Plugs>
<Sockets><AdapterDeclaration Name="S" Type="ATO" Comment="c"/></Sockets></InterfaceList>
</FBType>"""))
    assert [(a.name, a.type_name) for a in fbt.interface.plugs] == [("TO", "ATO")]
    assert fbt.interface.sockets[0].comment == "c"
