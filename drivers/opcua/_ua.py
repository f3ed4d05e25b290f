"""Typed constructors for the few asyncua value types we build.

asyncua annotates fields with marker subclasses (``ua.UInt32``, ``ua.DateTime``...)
that plain ints and datetimes do not satisfy under ``mypy --strict``; the casts
live here, once, instead of at every call site.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

from asyncua import ua
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes

__all__ = [
    "AttributeIds",
    "ObjectIds",
    "StatusCodes",
    "data_value",
    "node_id",
    "path_element",
    "status_code",
    "variant",
]


def node_id(identifier: int | str, namespace_index: int = 0) -> ua.NodeId:
    """A NodeId from a plain identifier and namespace index."""
    return ua.NodeId(cast(Any, identifier), cast(Any, namespace_index))


def status_code(code: int) -> ua.StatusCode:
    """A StatusCode from its integer value."""
    return ua.StatusCode(cast(Any, code))


def data_value(
    variant: ua.Variant,
    *,
    code: int = 0,
    source_timestamp: datetime.datetime | None = None,
    server_timestamp: datetime.datetime | None = None,
) -> ua.DataValue:
    """A DataValue with status and timestamps."""
    return ua.DataValue(
        variant,
        StatusCode=status_code(code),
        SourceTimestamp=cast(Any, source_timestamp),
        ServerTimestamp=cast(Any, server_timestamp),
    )


def variant(value: object, variant_type: ua.VariantType | None) -> ua.Variant:
    """A Variant of the given type, or with asyncua's type inference when None."""
    if variant_type is None:
        return ua.Variant(value)
    return ua.Variant(value, variant_type)


def path_element(reference_type: int, name: str, namespace_index: int) -> ua.RelativePathElement:
    """One forward hop of a RelativePath, subtypes of ``reference_type`` included."""
    hop = ua.RelativePathElement()
    hop.ReferenceTypeId = node_id(reference_type)
    hop.IsInverse = cast(Any, False)
    hop.IncludeSubtypes = cast(Any, True)
    hop.TargetName = ua.QualifiedName(name, namespace_index)
    return hop
