"""The one import boundary of the generated protobuf module.

Everything else in the package goes through these names, so a regenerated `_generated/`
module (or a different protobuf runtime) touches one file only.
"""

from __future__ import annotations

from drivers.mqtt.sparkplug._generated import sparkplug_b_pb2 as pb

ProtoPayload = pb.Payload
ProtoMetric = pb.Payload.Metric
ProtoPropertySet = pb.Payload.PropertySet
ProtoPropertyValue = pb.Payload.PropertyValue

__all__ = ["ProtoMetric", "ProtoPayload", "ProtoPropertySet", "ProtoPropertyValue", "pb"]
