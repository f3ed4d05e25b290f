"""IEC 61131-3 literals: `DINT#26`, `16#AFFE`, `2#1010`, `T#1s500ms`, `REAL#1.0`, `'text'`, `TRUE`.

`parse_literal` reads a literal on its own (the type comes from the prefix or the
form); `parse_value` reads text meant for a variable of a known type, as boot
files and management WRITEs send it (bare STRINGs as FORTE 2.x wrote them, `1`/`0`
and `true`/`false` for BOOL). `format_value` prints a value as FORTE does.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass

from testbed.errors import LiteralError
from testbed.types.elementary import (
    ELEMENTARY,
    DataType,
    ElementaryType,
    GenericType,
    Kind,
    to_real32,
)

__all__ = [
    "TypedValue",
    "format_duration",
    "format_value",
    "parse_duration",
    "parse_literal",
    "parse_value",
    "quote_string",
    "unquote_string",
]

NS_PER = {"d": 86_400_000_000_000, "h": 3_600_000_000_000, "m": 60_000_000_000,
          "s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_UNIT_ORDER = ["d", "h", "m", "s", "ms", "us", "ns"]
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|d|h|m|s)", re.IGNORECASE)
_INT_BODY = re.compile(r"^[+-]?(?:(2|8|16)#([0-9A-Fa-f_]+)|(\d[\d_]*))$")
_REAL_BODY = re.compile(r"^[+-]?\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?$")
_EPOCH = _dt.datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class TypedValue:
    """A literal's value and the type it names (None for an untyped number or bool)."""

    type: ElementaryType | None
    value: object


def _int_text(body: str, type_name: str | None) -> int:
    m = _INT_BODY.match(body)
    if not m:
        raise LiteralError(f"malformed integer literal {body!r}")
    negative = body.startswith("-")
    if m.group(1):
        if negative:
            raise LiteralError(f"based literal cannot be negative: {body!r}")
        value = int(m.group(2).replace("_", ""), int(m.group(1)))
    else:
        value = int(m.group(3).replace("_", ""))
        if negative:
            value = -value
    if type_name is not None:
        t = ELEMENTARY[type_name]
        if t.kind is Kind.BITS and m.group(1) is None and value < 0:
            raise LiteralError(f"{type_name} literal cannot be negative: {body!r}")
        if not t.in_range(value):
            raise LiteralError(f"{value} is out of range for {t.name} [{t.min}..{t.max}]")
    return value


def parse_duration(body: str) -> int:
    """`1s500ms`, `-5ms`, `1.5s`, `1d_2h` -> nanoseconds."""
    text = body.replace("_", "").strip()
    negative = text.startswith("-")
    if negative or text.startswith("+"):
        text = text[1:]
    if not text:
        raise LiteralError("empty duration literal")
    pos = 0
    total = 0.0
    last_rank = -1
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        unit = m.group(2).lower()
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise LiteralError(f"duration units out of order in {body!r}")
        last_rank = rank
        total += float(m.group(1)) * NS_PER[unit] if "." in m.group(1) else (
            int(m.group(1)) * NS_PER[unit])
        pos = m.end()
    if pos != len(text) or last_rank < 0:
        raise LiteralError(f"malformed duration literal {body!r}")
    ns = round(total)
    return -ns if negative else ns


def format_duration(ns: int, prefix: str = "T#") -> str:
    """Nanoseconds -> `T#1s500ms` (FORTE's compact form; `T#0s` for zero)."""
    if ns == 0:
        return f"{prefix}0s"
    sign = "-" if ns < 0 else ""
    rest = abs(ns)
    parts: list[str] = []
    for unit in _UNIT_ORDER:
        q, rest = divmod(rest, NS_PER[unit])
        if q:
            parts.append(f"{q}{unit}")
    return prefix + sign + "".join(parts)


_ESCAPES = {"$": "$", "'": "'", '"': '"', "L": "\n", "N": "\n", "P": "\f", "R": "\r",
            "T": "\t"}


def unquote_string(text: str) -> str:
    """`'a$'b$N'` -> the string it denotes (IEC `$` escapes, `$xx` hex codes)."""
    if len(text) < 2 or text[0] not in "'\"" or text[-1] != text[0]:
        raise LiteralError(f"string literal must be quoted: {text!r}")
    quote = text[0]
    body = text[1:-1]
    width = 2 if quote == "'" else 4
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "$":
            if i + 1 >= len(body):
                raise LiteralError(f"dangling '$' in string literal {text!r}")
            nxt = body[i + 1]
            if nxt.upper() in _ESCAPES:
                out.append(_ESCAPES[nxt.upper()])
                i += 2
                continue
            code = body[i + 1 : i + 1 + width]
            if len(code) == width and all(c in "0123456789abcdefABCDEF" for c in code):
                out.append(chr(int(code, 16)))
                i += 1 + width
                continue
            raise LiteralError(f"bad escape '${nxt}' in string literal {text!r}")
        if ch == quote:
            raise LiteralError(f"unescaped quote inside string literal {text!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def quote_string(value: str, quote: str = "'") -> str:
    """A str -> an IEC string literal with `$` escapes."""
    out = [quote]
    for ch in value:
        if ch == "$":
            out.append("$$")
        elif ch == quote:
            out.append("$" + quote)
        elif ch == "\n":
            out.append("$N")
        elif ch == "\r":
            out.append("$R")
        elif ch == "\t":
            out.append("$T")
        elif ch == "\f":
            out.append("$P")
        elif ord(ch) < 0x20:
            out.append(f"${ord(ch):02X}")
        else:
            out.append(ch)
    out.append(quote)
    return "".join(out)


def _parse_date(body: str) -> int:
    try:
        d = _dt.date.fromisoformat(body.replace("_", ""))
    except ValueError as exc:
        raise LiteralError(f"malformed date literal {body!r}") from exc
    return (d - _EPOCH.date()).days * NS_PER["d"]


def _parse_tod(body: str) -> int:
    m = re.fullmatch(r"(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,9}))?)?", body)
    if not m:
        raise LiteralError(f"malformed time-of-day literal {body!r}")
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    frac = (m.group(4) or "").ljust(9, "0")
    if h > 23 or mi > 59 or s > 59:
        raise LiteralError(f"time of day out of range {body!r}")
    return ((h * 60 + mi) * 60 + s) * NS_PER["s"] + int(frac or 0)


def _parse_dt(body: str) -> int:
    m = re.fullmatch(r"(\d{4}-\d{1,2}-\d{1,2})-(.+)", body)
    if not m:
        raise LiteralError(f"malformed date-and-time literal {body!r}")
    return _parse_date(m.group(1)) + _parse_tod(m.group(2))


def _parse_real(body: str) -> float:
    if not _REAL_BODY.match(body):
        raise LiteralError(f"malformed real literal {body!r}")
    return float(body.replace("_", ""))


def _typed(t: ElementaryType, body: str) -> object:
    kind = t.kind
    if kind is Kind.BOOL:
        upper = body.upper()
        if upper in ("TRUE", "1"):
            return True
        if upper in ("FALSE", "0"):
            return False
        raise LiteralError(f"malformed BOOL literal {body!r}")
    if kind in (Kind.SIGNED, Kind.UNSIGNED, Kind.BITS):
        return _int_text(body, t.name)
    if kind is Kind.REAL:
        if _INT_BODY.match(body) and "#" not in body:
            value = float(int(body.replace("_", "")))
        else:
            value = _parse_real(body)
        if t.name == "REAL":
            if math.isfinite(value) and abs(value) > 3.4028234663852886e38:
                raise LiteralError(f"{body} is out of range for REAL")
            return to_real32(value)
        return value
    if kind in (Kind.STRING, Kind.CHAR):
        quoted = len(body) >= 2 and body[0] in "'\"" and body[-1] == body[0]
        text = unquote_string(body) if quoted else body  # FORTE 2.x wrote STRING#bare
        if kind is Kind.CHAR and len(text) != 1:
            raise LiteralError(f"{t.name} literal must hold one character: {body!r}")
        return text
    if kind is Kind.DURATION:
        return parse_duration(body)
    if kind is Kind.DATE:
        return _parse_date(body)
    if kind is Kind.TIME_OF_DAY:
        return _parse_tod(body)
    return _parse_dt(body)


def parse_literal(text: str) -> TypedValue:
    """Read one IEC literal on its own; raises LiteralError naming the problem."""
    s = text.strip()
    if not s:
        raise LiteralError("empty literal")
    head, sep, body = s.partition("#")
    if sep:
        upper = head.upper()
        if upper in ("2", "8", "16"):
            return TypedValue(None, _int_text(s, None))
        t = ELEMENTARY.get(upper)
        if t is None:
            raise LiteralError(f"unknown type prefix {head!r} in literal {text!r}")
        return TypedValue(t, _typed(t, body))
    upper = s.upper()
    if upper == "TRUE":
        return TypedValue(ELEMENTARY["BOOL"], True)
    if upper == "FALSE":
        return TypedValue(ELEMENTARY["BOOL"], False)
    if s[0] == "'":
        return TypedValue(ELEMENTARY["STRING"], unquote_string(s))
    if s[0] == '"':
        return TypedValue(ELEMENTARY["WSTRING"], unquote_string(s))
    if _INT_BODY.match(s):
        return TypedValue(None, _int_text(s, None))
    if _REAL_BODY.match(s):
        return TypedValue(ELEMENTARY["LREAL"], _parse_real(s))
    raise LiteralError(f"not an IEC literal: {text!r}")


def _fit(value: TypedValue, target: ElementaryType, text: str) -> object:
    """Check a parsed literal against the variable's type (range-checked, no wrap)."""
    v = value.value
    if target.kind is Kind.BOOL:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
    elif target.is_integer:
        if isinstance(v, int) and not isinstance(v, bool):
            if not target.in_range(v):
                raise LiteralError(
                    f"{v} is out of range for {target.name} [{target.min}..{target.max}]")
            return v
        if isinstance(v, bool):
            return int(v)
    elif target.kind is Kind.REAL:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return target.coerce(v)
    elif target.kind in (Kind.DURATION, Kind.DATE, Kind.TIME_OF_DAY, Kind.DATE_AND_TIME):
        if value.type is not None and value.type.kind is target.kind:
            return v
    elif target.kind in (Kind.STRING, Kind.CHAR) and isinstance(v, str):
        return target.coerce(v)
    raise LiteralError(f"literal {text!r} does not fit type {target.name}")


def parse_value(text: str, expected: DataType | None) -> TypedValue:
    """Read text meant for a variable of type `expected` (None or generic: any literal)."""
    s = text.strip()
    if isinstance(expected, ElementaryType):
        if expected.kind in (Kind.STRING, Kind.CHAR):
            if len(s) >= 2 and s[0] in "'\"" and s[-1] == s[0]:
                return TypedValue(expected, expected.coerce(unquote_string(s)))
            head = s.partition("#")[0].upper()
            if head in ("STRING", "WSTRING", "CHAR", "WCHAR"):
                return TypedValue(expected, expected.coerce(parse_literal(s).value))
            return TypedValue(expected, expected.coerce(text))  # bare, as FORTE 2.x wrote it
        if expected.kind is Kind.BOOL and s.upper() in ("TRUE", "FALSE", "1", "0"):
            return TypedValue(expected, s.upper() in ("TRUE", "1"))
        if "#" not in s and expected.kind in (Kind.DURATION,):
            raise LiteralError(f"a {expected.name} value needs a T# literal, got {text!r}")
        if "#" not in s and expected.kind is Kind.REAL and _INT_BODY.match(s):
            return TypedValue(expected, expected.coerce(int(s.replace("_", ""))))
        parsed = parse_literal(s)
        return TypedValue(expected, _fit(parsed, expected, text))
    parsed = parse_literal(s)
    if (isinstance(expected, GenericType) and parsed.type is not None
            and not expected.accepts(parsed.type)):
        raise LiteralError(f"literal {text!r} ({parsed.type.name}) is not {expected.name}")
    return parsed


def _format_real(value: float, single: bool) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if single:
        for digits in range(6, 10):
            text = f"{value:.{digits}g}"
            if to_real32(float(text)) == value:
                break
    else:
        text = repr(value)
    if "e" not in text and "." not in text and "inf" not in text:
        text += ".0"
    return text


def format_value(t: DataType | None, value: object) -> str:
    """A value as FORTE prints it (CSV_WRITER, watches, READ): `TRUE`, `1.5`, `'abc'`."""
    if isinstance(t, GenericType) or t is None:
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, str):
            return quote_string(value)
        return str(value)
    kind = t.kind
    if kind is Kind.BOOL:
        return "TRUE" if value else "FALSE"
    if kind is Kind.REAL:
        return _format_real(float(value), t.name == "REAL")  # type: ignore[arg-type]
    if kind is Kind.STRING:
        return quote_string(str(value), "'" if t.name == "STRING" else '"')
    if kind is Kind.CHAR:
        return quote_string(str(value), "'" if t.name == "CHAR" else '"')
    if kind is Kind.DURATION:
        return format_duration(int(value), "T#" if t.name == "TIME" else "LT#")  # type: ignore[call-overload]
    if kind is Kind.DATE:
        d = _EPOCH + _dt.timedelta(microseconds=int(value) // 1000)  # type: ignore[call-overload]
        return f"D#{d.date().isoformat()}"
    if kind is Kind.TIME_OF_DAY:
        ns = int(value)  # type: ignore[call-overload]
        s, frac = divmod(ns, NS_PER["s"])
        h, rem = divmod(s, 3600)
        mi, sec = divmod(rem, 60)
        tail = f".{frac:09d}".rstrip("0") if frac else ""
        return f"TOD#{h:02d}:{mi:02d}:{sec:02d}{tail}"
    if kind is Kind.DATE_AND_TIME:
        ns = int(value)  # type: ignore[call-overload]
        d = _EPOCH + _dt.timedelta(microseconds=ns // 1000)
        frac = ns % NS_PER["s"]
        tail = f".{frac:09d}".rstrip("0") if frac else ""
        return f"DT#{d.date().isoformat()}-{d.strftime('%H:%M:%S')}{tail}"
    return str(value)
