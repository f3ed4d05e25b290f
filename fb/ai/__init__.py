"""Edge-AI function blocks: ONNX inference (ONNX_INFER_n_m) and vibration/process features.

`ai_type` builds them on first use, so a library that never names them never imports
numpy-heavy modules or onnxruntime.
"""

from __future__ import annotations

import re

from testbed.model import ServiceFBType

__all__ = ["AI_TYPE_PATTERN", "ai_type"]

AI_TYPE_PATTERN = r"ONNX_INFER_(\d+)_(\d+)|VIB_FEATURES|SLIDING_WINDOW|WINDOW_STATS"
"""Type names `ai_type` builds (register as one family)."""


def ai_type(m: re.Match[str]) -> ServiceFBType:
    """The AI FB type a name matched by `AI_TYPE_PATTERN` stands for."""
    if m.group(1) is not None:
        from fb.ai.onnx_infer import onnx_infer_type

        return onnx_infer_type(m)
    from fb.ai import features

    fb_type = getattr(features, m.group(0)).FB_TYPE
    assert isinstance(fb_type, ServiceFBType)
    return fb_type
