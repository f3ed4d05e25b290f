"""Feature FBs for vibration and process data (numpy on whole blocks, no per-sample loops).

- VIB_FEATURES: one vibration block (or a stack of blocks) in, RMS, peak, crest factor,
  kurtosis, the envelope band energies at BPFO/BPFI/2xBSF and the full feature vector that
  the trained bearing models take (`testbed.ai.features`, the code training uses).
- SLIDING_WINDOW: samples (scalars or arrays) in, a window of LENGTH samples out (IND) every
  HOP new samples once full.
- WINDOW_STATS: a window in, mean, standard deviation, min, max and slope out.

Array outputs are read-only numpy arrays (they index like IEC arrays and travel through
connections without copies). The work is a few FFTs per block: it runs in the event.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from drivers.sim import SKF_6205
from testbed.ai.features import vibration_features, window_stats
from testbed.fbdef import interface
from testbed.runtime.resource import Resource
from testbed.runtime.service import ServiceFB

__all__ = ["SLIDING_WINDOW", "VIB_FEATURES", "WINDOW_STATS"]


def _readonly(x: NDArray[np.float64]) -> NDArray[np.float64]:
    x.flags.writeable = False
    return x


class VIB_FEATURES(ServiceFB):
    """Bearing vibration features of one block (or N blocks) of acceleration samples."""

    INTERFACE = interface(
        ei="INIT(QI) REQ(QI,BLOCK,FS,SPEED)",
        eo="INITO(QO,STATUS) CNF(QO,STATUS,RMS,PEAK,CREST,KURT,BPFO,BPFI,BSF,FEATURES)",
        inputs="QI:BOOL BLOCK:ANY FS:LREAL=12000.0 SPEED:LREAL",
        outputs="QO:BOOL STATUS:STRING RMS:LREAL PEAK:LREAL CREST:LREAL KURT:LREAL "
                "BPFO:LREAL BPFI:LREAL BSF:LREAL FEATURES:ANY",
    )

    def on_INIT(self) -> None:
        self.QO, self.STATUS = bool(self.QI), "OK"
        self.emit_INITO()

    def on_REQ(self) -> None:
        if not self.QI:
            self.QO, self.STATUS = False, "QI is FALSE"
            self.emit_CNF()
            return
        try:
            block = np.asarray(self.BLOCK, dtype=np.float64)
            if block.ndim not in (1, 2) or block.shape[-1] < 16:
                raise ValueError(f"BLOCK needs at least 16 samples per block, got {block.shape}")
            if float(self.FS) <= 0.0:
                raise ValueError(f"FS must be positive, got {self.FS}")
            feats = vibration_features(block, float(self.FS), float(self.SPEED), SKF_6205)
        except (ValueError, TypeError) as exc:
            self.QO, self.STATUS = False, str(exc)
            self.emit_CNF()
            return
        last = feats[-1]
        self.RMS = float(np.exp(last[0]))
        self.PEAK = float(np.exp(last[1]))
        self.CREST = float(last[2])
        self.KURT = float(np.exp(last[3]))
        self.BPFO, self.BPFI, self.BSF = (float(v) for v in last[4:7])
        self.FEATURES = _readonly(feats[0] if block.ndim == 1 else feats)
        self.QO, self.STATUS = True, "OK"
        self.emit_CNF()


class SLIDING_WINDOW(ServiceFB):
    """Collects samples; IND delivers the last LENGTH samples every HOP new ones once full."""

    INTERFACE = interface(
        ei="INIT(QI,LENGTH,HOP) REQ(QI,IN)",
        eo="INITO(QO,STATUS) CNF(QO,STATUS,FILLED) IND(WINDOW)",
        inputs="QI:BOOL LENGTH:UDINT=256 HOP:UDINT=1 IN:ANY",
        outputs="QO:BOOL STATUS:STRING FILLED:UDINT WINDOW:ANY",
    )

    def __init__(self, name: str, resource: Resource) -> None:
        super().__init__(name, resource)
        self._buffer = np.zeros(0)
        self._since = 0

    def on_INIT(self) -> None:
        self._buffer = np.zeros(0)
        self._since = 0
        self.FILLED = 0
        if self.QI and (int(self.LENGTH) < 1 or int(self.HOP) < 1):
            self.QO, self.STATUS = False, "LENGTH and HOP must be at least 1"
        else:
            self.QO, self.STATUS = bool(self.QI), "OK"
        self.emit_INITO()

    def on_REQ(self) -> None:
        if not self.QI:
            self.QO, self.STATUS = False, "QI is FALSE"
            self.emit_CNF()
            return
        try:
            fresh = np.asarray(self.IN, dtype=np.float64).reshape(-1)
        except (ValueError, TypeError) as exc:
            self.QO, self.STATUS = False, f"IN: {exc}"
            self.emit_CNF()
            return
        length = int(self.LENGTH)
        self._buffer = np.concatenate((self._buffer, fresh))[-length:]
        self._since += fresh.size
        self.FILLED = int(self._buffer.size)
        self.QO, self.STATUS = True, "OK"
        self.emit_CNF()
        if self._buffer.size == length and self._since >= int(self.HOP):
            self._since = 0
            self.WINDOW = _readonly(self._buffer.copy())
            self.emit_IND()


class WINDOW_STATS(ServiceFB):
    """Mean, standard deviation, min, max and least-squares slope (per sample) of a window."""

    INTERFACE = interface(
        ei="REQ(IN)",
        eo="CNF(QO,STATUS,MEAN,STD,MIN,MAX,SLOPE)",
        inputs="IN:ANY",
        outputs="QO:BOOL STATUS:STRING MEAN:LREAL STD:LREAL MIN:LREAL MAX:LREAL SLOPE:LREAL",
    )

    def on_REQ(self) -> None:
        try:
            window = np.asarray(self.IN, dtype=np.float64).reshape(-1)
            if window.size == 0:
                raise ValueError("IN is empty")
        except (ValueError, TypeError) as exc:
            self.QO, self.STATUS = False, f"IN: {exc}"
            self.emit_CNF()
            return
        stats = window_stats(window)[0]
        self.MEAN, self.STD, self.MIN, self.MAX, self.SLOPE = (float(v) for v in stats)
        self.QO, self.STATUS = True, "OK"
        self.emit_CNF()
