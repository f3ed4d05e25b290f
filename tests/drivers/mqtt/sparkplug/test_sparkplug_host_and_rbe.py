"""Host decoder seq/bdSeq/dedupe tracking, deadbands and stored data messages (no broker)."""

from __future__ import annotations

import pytest

from drivers.mqtt.sparkplug import (
    DataMessage,
    DataType,
    Deadband,
    DeadbandKind,
    HostDecoder,
    Metric,
    MetricChange,
    MetricSpec,
    MetricValueError,
    Payload,
    SeqStatus,
    UnknownAliasError,
    encode_payload,
    message_id_uuid,
)
from drivers.mqtt.sparkplug._proto import ProtoPayload

NBIRTH = "spBv1.0/g/NBIRTH/n"
NDATA = "spBv1.0/g/NDATA/n"
NDEATH = "spBv1.0/g/NDEATH/n"


def birth(bd_seq: int) -> bytes:
    """An NBIRTH declaring metric `x` (Int32) with alias 1."""
    return encode_payload(
        Payload(
            1,
            (Metric("bdSeq", DataType.INT64, bd_seq), Metric("x", DataType.INT32, 0, alias=1)),
            seq=0,
        )
    )


def data(seq: int, value: int = 1, message_id: int | None = None) -> bytes:
    """An NDATA sending `x` by alias only, without datatype, as 3.0 allows."""
    uuid = None if message_id is None else message_id_uuid(message_id)
    payload = Payload(1, (Metric(None, DataType.INT32, value, alias=1),), seq=seq, uuid=uuid)
    raw = encode_payload(payload)
    proto = ProtoPayload.FromString(raw)
    proto.metrics[0].ClearField("datatype")
    return proto.SerializeToString()


def test_host_resolves_aliases_and_datatypes_from_the_birth() -> None:
    """DATA metrics with alias only and no datatype get name and datatype from NBIRTH."""
    host = HostDecoder()
    host.decode(NBIRTH, birth(0))
    msg = host.decode(NDATA, data(1, value=-9))
    assert msg.payload is not None
    assert msg.payload.metrics[0].name == "x"
    assert msg.payload.metrics[0].datatype is DataType.INT32
    assert msg.values() == {"x": -9}
    assert msg.seq_status is SeqStatus.IN_ORDER


def test_host_detects_gaps_and_duplicates() -> None:
    """A skipped seq is a GAP with the missing count (rebirth needed); a repeat a DUPLICATE."""
    host = HostDecoder()
    host.decode(NBIRTH, birth(0))
    assert host.decode(NDATA, data(1)).seq_status is SeqStatus.IN_ORDER
    assert host.decode(NDATA, data(1)).seq_status is SeqStatus.DUPLICATE
    gap = host.decode(NDATA, data(5))
    assert (gap.seq_status, gap.missing, gap.rebirth_needed) == (SeqStatus.GAP, 3, True)
    assert host.decode(NDATA, data(6)).seq_status is SeqStatus.IN_ORDER
    stats = host.statistics()
    assert (stats.gaps, stats.missing_messages, stats.seq_duplicates) == (1, 3, 1)


def test_data_before_any_birth_is_flagged() -> None:
    """Alias-only data before NBIRTH is an unknown alias (counted); named data is UNKNOWN_NODE."""
    host = HostDecoder()
    with pytest.raises(UnknownAliasError):
        host.decode(NDATA, data(3))
    assert host.statistics().errors == (("unknown_alias", 1),)
    named = encode_payload(Payload(1, (Metric("x", DataType.INT32, 5),), seq=4))
    msg = host.decode(NDATA, named)
    assert (msg.seq_status, msg.rebirth_needed) == (SeqStatus.UNKNOWN_NODE, True)


def test_repeated_message_id_is_flagged_for_dedupe() -> None:
    """A store message id seen before from the same node is marked duplicate_message_id."""
    host = HostDecoder()
    host.decode(NBIRTH, birth(0))
    assert not host.decode(NDATA, data(1, message_id=77)).duplicate_message_id
    assert host.decode(NDATA, data(2, message_id=77)).duplicate_message_id
    assert host.statistics().message_id_duplicates == 1


def test_stale_ndeath_from_an_old_session_is_ignored() -> None:
    """An NDEATH whose bdSeq is not the current session's does not mark the node offline."""
    host = HostDecoder()
    host.decode(NBIRTH, birth(4))
    old = encode_payload(Payload(1, (Metric("bdSeq", DataType.INT64, 3),)))
    assert host.decode(NDEATH, old).stale_death
    assert host.is_online("g", "n")
    current = encode_payload(Payload(1, (Metric("bdSeq", DataType.INT64, 4),)))
    assert not host.decode(NDEATH, current).stale_death
    assert not host.is_online("g", "n")


@pytest.mark.parametrize(
    ("band", "last", "new", "reported"),
    [
        (Deadband(DeadbandKind.ABSOLUTE, 0.5), 10.0, 10.5, False),
        (Deadband(DeadbandKind.ABSOLUTE, 0.5), 10.0, 9.4, True),
        (Deadband(DeadbandKind.PERCENT, 10), 200.0, 219.0, False),
        (Deadband(DeadbandKind.PERCENT, 10), 200.0, 221.0, True),
        (Deadband(DeadbandKind.PERCENT, 10), 0.0, 0.001, True),
    ],
)
def test_deadbands(band: Deadband, last: float, new: float, reported: bool) -> None:
    """Absolute bands compare the change in units, percent bands to |last reported|."""
    assert band.exceeded(last, new) is reported


def test_deadband_needs_a_numeric_metric() -> None:
    """A deadband on a String metric is refused at declaration."""
    with pytest.raises(MetricValueError, match="numeric"):
        MetricSpec("s", DataType.STRING, "", deadband=Deadband(DeadbandKind.ABSOLUTE, 1))


def test_data_message_survives_the_store_round_trip() -> None:
    """A collected message written with to_bytes reads back identical (for the store)."""
    message = DataMessage(
        "tank",
        (MetricChange("Level", 1.25, 100), MetricChange("Pump", None, 101)),
        (DataType.DOUBLE, DataType.BOOLEAN),
    )
    assert DataMessage.from_bytes(message.to_bytes()) == message
