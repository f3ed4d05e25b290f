"""IEC 61131-3 data types, literals and conversions."""

from testbed.types.convert import bcd_to_int, convert, convert_by_name, int_to_bcd
from testbed.types.derived import ArrayType, StructType, StructValue, VarType, copy_value
from testbed.types.elementary import (
    ELEMENTARY,
    GENERIC,
    DataType,
    ElementaryType,
    GenericType,
    Kind,
    elementary,
    to_real32,
)
from testbed.types.literals import (
    TypedValue,
    format_duration,
    format_value,
    parse_duration,
    parse_literal,
    parse_value,
    quote_string,
    unquote_string,
)

__all__ = [
    "ELEMENTARY",
    "GENERIC",
    "ArrayType",
    "DataType",
    "ElementaryType",
    "GenericType",
    "Kind",
    "StructType",
    "StructValue",
    "TypedValue",
    "VarType",
    "bcd_to_int",
    "convert",
    "convert_by_name",
    "copy_value",
    "elementary",
    "format_duration",
    "format_value",
    "int_to_bcd",
    "parse_duration",
    "parse_literal",
    "parse_value",
    "quote_string",
    "to_real32",
    "unquote_string",
]
