"""CSV_WRITER_n: append one line per REQ with the values of SD_1..SD_n, as FORTE writes them.

Each value is printed as its IEC literal followed by `; ` (STRING values quoted),
one line per REQ. INIT+ creates/truncates the file, INIT- closes it. Writes go to
a buffered file (page cache, no fsync), which is fast enough to stay inline.
"""

from __future__ import annotations

import re
from typing import IO

import structlog

from testbed.fbdef import interface
from testbed.model import ServiceFBType
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB
from testbed.types import ELEMENTARY, format_value

__all__ = ["csv_writer_type"]

log = structlog.get_logger(__name__)


class _CsvWriter(ServiceFB):
    N = 0

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self._file: IO[str] | None = None

    def on_INIT(self) -> None:
        if self.QI:
            if self._file is not None:
                self.QO, self.STATUS = False, "File already opened"
                log.error("csv_writer_failed", fb=self.name, status=self.STATUS)
            else:
                try:
                    self._file = open(self.FILE_NAME, "w", encoding="utf-8")  # noqa: SIM115 - lives until INIT-
                    self.QO, self.STATUS = True, "OK"
                except OSError as exc:
                    self.QO, self.STATUS = False, f"Could not open file: {exc.strerror}"
                    log.error("csv_writer_failed", fb=self.name, status=self.STATUS)
        elif self._file is not None:
            self._close()
            self.QO, self.STATUS = False, "OK"
        else:
            self.QO, self.STATUS = False, "File was not opened"
            log.error("csv_writer_failed", fb=self.name, status=self.STATUS)
        self.emit_INITO()

    def on_REQ(self) -> None:
        if not self.QI:
            self.QO, self.STATUS = False, "QI is FALSE"
        elif self._file is None:
            self.QO, self.STATUS = False, "File not opened"
            log.error("csv_writer_failed", fb=self.name, status=self.STATUS)
        else:
            parts = []
            for i in range(1, self.N + 1):
                pin = f"SD_{i}"
                tname = self.input_type_name(pin)
                parts.append(format_value(ELEMENTARY.get(tname or ""), self.get(pin)) + "; ")
            self._file.write("".join(parts) + "\n")
            self.QO, self.STATUS = True, "OK"
        self.emit_CNF()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def on_resource_stop(self) -> None:
        self._close()


def csv_writer_type(m: re.Match[str]) -> ServiceFBType:
    """The CSV_WRITER_<n> type (built on first use)."""
    n = int(m.group(1))
    sds = " ".join(f"SD_{i}" for i in range(1, n + 1))
    itf = interface(
        ei=f"INIT(QI,FILE_NAME) REQ(QI,{','.join(sds.split())})",
        eo="INITO(QO,STATUS) CNF(QO,STATUS)",
        inputs="QI:BOOL FILE_NAME:STRING " + " ".join(f"{s}:ANY" for s in sds.split()),
        outputs="QO:BOOL STATUS:STRING",
    )
    cls = type(f"CSV_WRITER_{n}", (_CsvWriter,), {"INTERFACE": itf, "N": n,
                                                   "__module__": __name__})
    fb_type = getattr(cls, "FB_TYPE", None)
    assert isinstance(fb_type, ServiceFBType)
    return fb_type
