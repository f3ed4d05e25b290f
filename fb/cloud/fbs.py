"""Cloud service FBs: Sparkplug telemetry, cloud commands and the device twin.

* `CLOUD_TELEMETRY_n`: INIT declares device DEVICE with the metrics named in NAMES
  (comma-separated, one per SD_i, datatypes from the SD_i connections) and a DEADBAND
  (absolute, numeric metrics); each REQ batches SD_1..SD_n into one DDATA, report by
  exception, stored before it is sent (CNF with QO once it is durable).
* `CLOUD_COMMAND_n`: DCMD writes of the metrics named in NAMES on device DEVICE become IND
  events carrying the written values in RD_1..RD_n (metrics not written keep their value).
  The device is declared with those metrics, typed from the inputs RD_i feed (Double when
  RD_i is unconnected at INIT). A device already declared by another FB of the same link is
  shared as it was declared.
* `CLOUD_TWIN`: IND with the desired properties (JSON) and version whenever the cloud changes
  them; REQ reports REPORTED (a JSON object) as the twin's reported properties.

They share one `EdgeLink` per ID through the device's I/O pool (see `fb.cloud.link`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from typing import ClassVar

import structlog
from pydantic import ValidationError

from drivers.errors import DriverConfigError, DriverError
from drivers.mqtt.edge_link import EdgeLink
from drivers.mqtt.sparkplug import (
    CommandWrite,
    DataType,
    Deadband,
    DeadbandKind,
    MetricSpec,
    MetricValue,
)
from fb.cloud.link import CloudLinkId, edge_link, parse_link_id, sparkplug_type_of
from fb.family import family_type, pin_count
from fb.io.base import STATUS_INVALID_ID, STATUS_OK, IoFB
from fb.io.pool import IoLease
from testbed.cloud.protocol import TWIN_DESIRED, TWIN_REPORTED, TwinDocument
from testbed.fbdef import interface
from testbed.model import ServiceFBType

__all__ = ["CLOUD_TWIN", "cloud_command_type", "cloud_telemetry_type"]

log = structlog.get_logger(__name__)

_MAX_PINS = 256
_count = functools.partial(pin_count, limit=_MAX_PINS)
_make = functools.partial(family_type, module=__name__)
_NUMERIC = frozenset({
    DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8,
    DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.FLOAT, DataType.DOUBLE,
})


def _status(exc: DriverError) -> str:
    return f"{type(exc).__name__.upper()}: {exc}"


class _CloudFB(IoFB):
    """INIT: parse ID, lease the pool, open (or share) the edge link, declare, subscribe."""

    def on_INIT(self) -> None:
        if not self.QI:
            self._deinit()
            return
        try:
            self._link_id: CloudLinkId = parse_link_id(str(self.ID or ""))
            self._prepare()
        except DriverConfigError as exc:
            log.warning("cloud_fb_invalid_config", fb=self.label, error=str(exc))
            self._init_done(False, f"{STATUS_INVALID_ID}: {exc}")
            return
        self._open_lease()
        self._spawn(self._init_job, "init")

    def _prepare(self) -> None:
        """Read the configuration inputs (in the resource task)."""

    async def _declare(self, link: EdgeLink) -> None:
        """Declare what the FB needs on the link (in the I/O pool)."""

    def _on_command(self, command: CommandWrite, generation: int) -> None:
        """A command arrived (on the I/O loop): post what matters to the resource."""

    async def _init_job(self, lease: IoLease, generation: int) -> None:
        try:
            link = await edge_link(lease, self._link_id)
            await self._declare(link)
        except DriverError as exc:
            log.warning("cloud_fb_init_failed", fb=self.label, error=str(exc))
            status = _status(exc)
            self._post_current(generation, lambda: self._init_done(False, status))
            return
        self._post_current(generation, lambda: self._init_done(True, STATUS_OK))

        def listener(command: CommandWrite) -> None:
            self._on_command(command, generation)

        link.add_command_listener(listener)
        try:
            await asyncio.Event().wait()  # until INIT-, stop or deletion cancels the lease
        finally:
            link.remove_command_listener(listener)

    async def _add_device(self, link: EdgeLink, device: str, specs: list[MetricSpec]) -> None:
        try:
            await link.add_device(device, specs)
        except DriverConfigError as exc:
            if "already declared" not in str(exc):
                raise
            # shared with another FB (or a re-INIT): its declaration stands


def _names(text: str, count: int, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) != count:
        raise DriverConfigError(f"{what}: NAMES lists {len(names)} metric(s), expected {count}")
    if len(set(names)) != count:
        raise DriverConfigError(f"{what}: NAMES repeats a metric name")
    return names


def _device(text: str, what: str) -> str:
    device = text.strip()
    if not device or re.search(r"[/+#]", device):
        raise DriverConfigError(f"{what}: DEVICE {device!r} must be non-empty, without / + #")
    return device


def _metric_value(datatype: DataType, value: object) -> MetricValue:
    if datatype in (DataType.FLOAT, DataType.DOUBLE) and isinstance(value, int | float):
        return float(value)
    if datatype is DataType.BOOLEAN:
        return bool(value)
    if isinstance(value, bool | int | float | str | bytes):
        return value
    return str(value)


class _TelemetryFB(_CloudFB):
    def _prepare(self) -> None:
        self._device_id = _device(str(self.DEVICE or ""), self.label)
        self._metric_names = _names(str(self.NAMES or ""), self.N_SD, self.label)
        deadband = float(self.DEADBAND or 0.0)
        if deadband < 0:
            raise DriverConfigError(f"{self.label}: DEADBAND must be >= 0, got {deadband}")
        self._types = [
            sparkplug_type_of(self.input_type_name(f"SD_{i}")) for i in range(1, self.N_SD + 1)
        ]
        self._specs = [
            MetricSpec(
                name,
                datatype,
                None,
                deadband=Deadband(DeadbandKind.ABSOLUTE, deadband)
                if deadband > 0 and datatype in _NUMERIC
                else None,
            )
            for name, datatype in zip(self._metric_names, self._types, strict=True)
        ]

    async def _declare(self, link: EdgeLink) -> None:
        await self._add_device(link, self._device_id, self._specs)

    def on_REQ(self) -> None:
        if not self._begin_request():
            return
        values = {
            name: _metric_value(datatype, self.get(f"SD_{i}"))
            for i, (name, datatype) in enumerate(
                zip(self._metric_names, self._types, strict=True), start=1
            )
        }
        self._spawn(lambda lease, gen: self._report_job(lease, gen, values), "report")

    async def _report_job(
        self, lease: IoLease, generation: int, values: dict[str, MetricValue]
    ) -> None:
        try:
            link = await edge_link(lease, self._link_id)
            await link.report(self._device_id, values)
        except DriverError as exc:
            status = _status(exc)
            self._post_current(generation, lambda: self._finish(False, status))
            return
        self._post_current(generation, lambda: self._finish(True, STATUS_OK))

    def _finish(self, ok: bool, status: str) -> None:
        self._end_request()
        self._answer(ok, status)


class _CommandFB(_CloudFB):
    def _prepare(self) -> None:
        self._device_id = _device(str(self.DEVICE or ""), self.label)
        self._metric_names = _names(str(self.NAMES or ""), self.N_RD, self.label)
        self._specs = [
            MetricSpec(name, sparkplug_type_of(self.input_type_name(f"RD_{i}")), None)
            for i, name in enumerate(self._metric_names, start=1)
        ]

    async def _declare(self, link: EdgeLink) -> None:
        await self._add_device(link, self._device_id, self._specs)

    def _on_command(self, command: CommandWrite, generation: int) -> None:
        if command.device_id != self._device_id:
            return
        written = {m.name: m.value for m in command.metrics if m.name in self._metric_names}
        if not written:
            return
        values = tuple(written.get(name) for name in self._metric_names)
        self._post_current(generation, lambda: self._indicate(values))

    def _indicate(self, values: tuple[object, ...]) -> None:
        self._answer(True, STATUS_OK, values)

    def _fire_data_event(self) -> None:
        self.emit_IND()


class CLOUD_TWIN(_CloudFB):
    """Twin of the edge node: desired properties in (IND), reported properties out (REQ)."""

    INTERFACE = interface(
        ei="INIT(QI,ID) REQ(QI,REPORTED)",
        eo="INITO(QO,STATUS) CNF(QO,STATUS) IND(QO,STATUS,DESIRED,VERSION)",
        inputs="QI:BOOL ID:WSTRING REPORTED:WSTRING",
        outputs="QO:BOOL STATUS:WSTRING DESIRED:WSTRING VERSION:DINT",
    )
    N_SD: ClassVar[int] = 0

    def _prepare(self) -> None:
        self._desired_version = 0

    def _on_command(self, command: CommandWrite, generation: int) -> None:
        if command.device_id is not None:
            return
        for metric in command.metrics:
            if metric.name != TWIN_DESIRED or not isinstance(metric.value, str):
                continue
            try:
                desired = TwinDocument.model_validate_json(metric.value)
            except ValidationError as exc:
                log.warning("cloud_twin_desired_invalid", fb=self.label, error=str(exc))
                continue
            self._post_current(generation, functools.partial(self._desired, desired))

    def _desired(self, desired: TwinDocument) -> None:
        self._desired_version = desired.version
        self.DESIRED = json.dumps(desired.properties, sort_keys=True)
        self.VERSION = desired.version
        self.QO = True
        self.STATUS = STATUS_OK
        self.emit_IND()

    def on_REQ(self) -> None:
        if not self._begin_request():
            return
        try:
            properties = json.loads(str(self.REPORTED or "{}"))
            if not isinstance(properties, dict):
                raise ValueError("REPORTED must be a JSON object")
            document = TwinDocument(version=self._desired_version, properties=properties)
        except (ValueError, ValidationError) as exc:
            self._end_request()
            self._answer(False, f"INVALID_JSON: {exc}")
            return
        text = document.model_dump_json()
        self._spawn(lambda lease, gen: self._report_job(lease, gen, text), "report")

    async def _report_job(self, lease: IoLease, generation: int, text: str) -> None:
        try:
            link = await edge_link(lease, self._link_id)
            await link.report(None, {TWIN_REPORTED: text})
        except DriverError as exc:
            status = _status(exc)
            self._post_current(generation, lambda: self._finish(False, status))
            return
        self._post_current(generation, lambda: self._finish(True, STATUS_OK))

    def _finish(self, ok: bool, status: str) -> None:
        self._end_request()
        self._answer(ok, status)


def cloud_telemetry_type(m: re.Match[str]) -> ServiceFBType:
    """CLOUD_TELEMETRY_<n>: n metrics of one device, one DDATA per REQ, report by exception."""
    n = _count(m.group(1), "CLOUD_TELEMETRY")
    sds = [f"SD_{i}" for i in range(1, n + 1)]
    return _make(
        f"CLOUD_TELEMETRY_{n}", _TelemetryFB,
        "INIT(QI,ID,DEVICE,NAMES,DEADBAND) " + f"REQ(QI,{','.join(sds)})",
        "INITO(QO,STATUS) CNF(QO,STATUS)",
        " ".join(["QI:BOOL", "ID:WSTRING", "DEVICE:WSTRING", "NAMES:WSTRING", "DEADBAND:LREAL",
                  *(f"{x}:ANY" for x in sds)]),
        "QO:BOOL STATUS:WSTRING", n, 0, f"Publish {n} metric(s) of a device as Sparkplug DDATA")


def cloud_command_type(m: re.Match[str]) -> ServiceFBType:
    """CLOUD_COMMAND_<n>: DCMD writes of n metrics of one device as IND with RD_1..RD_n."""
    n = _count(m.group(1), "CLOUD_COMMAND")
    rds = [f"RD_{i}" for i in range(1, n + 1)]
    return _make(
        f"CLOUD_COMMAND_{n}", _CommandFB, "INIT(QI,ID,DEVICE,NAMES)",
        f"INITO(QO,STATUS) IND(QO,STATUS,{','.join(rds)})",
        "QI:BOOL ID:WSTRING DEVICE:WSTRING NAMES:WSTRING",
        " ".join(["QO:BOOL", "STATUS:WSTRING", *(f"{x}:ANY" for x in rds)]),
        0, n, f"Receive cloud writes (DCMD) of {n} metric(s) as IND")

