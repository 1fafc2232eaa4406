"""Is this face good enough to compare? A quality score in [0, 1] and the gate the product uses.

Four measurements, each mapped to [0, 1] by a linear ramp between a *useless* and a
*good* value, combined by a weighted geometric mean (so one hopeless factor — a
10-px face, a profile — sinks the score, while several middling ones only lower it):

========== ============================================================ ======== ====== ======
factor     measured as                                                  useless  good   weight
========== ============================================================ ======== ====== ======
size       inter-ocular distance in image pixels                        8 px     32 px  0.35
sharpness  variance of the Laplacian of the aligned 112x112 grey crop    20       200    0.2
           (log scale; computed after alignment so it is comparable
           across face sizes, and so it also drops for upscaled faces)
pose       landmark symmetry: nose offset from the eye/mouth mid-line   0.45     0.15   0.3
           as a share of the inter-ocular distance (yaw), and the
           eyes-nose / eyes-mouth height ratio away from frontal
           (pitch); the worse of the two
confidence YuNet's detection score                                      0.5      0.9    0.15
========== ============================================================ ======== ====== ======

Faces below :data:`QUALITY_THRESHOLD` are not embedded: no template is made, so
they can neither match nor false-match (in the evaluation they count as failures to
enrol). The threshold is deliberately low — it removes faces that are near-certain
to fail (on CelebA the 4 % of faces it rejects have a genuine-pair failure rate
several times the rest's; see docs/faces.md for the error-versus-reject numbers) —
because every rejected face is also a missed comparison.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

#: Faces scoring below this are not embedded (see the module notes and docs/faces.md).
QUALITY_THRESHOLD = 0.1

RAMPS = {
    # factor: (useless, good, weight)
    "size": (10.0, 32.0, 0.35),
    "sharpness": (math.log10(30.0), math.log10(400.0), 0.25),
    "pose": (0.6, 0.2, 0.2),
    "confidence": (0.6, 0.9, 0.2),
}


@dataclass(frozen=True, slots=True)
class FaceQuality:
    score: float
    size: float  # the factor scores, each in [0, 1]
    sharpness: float
    pose: float
    confidence: float
    inter_ocular_px: float  # and the raw measurements behind them
    laplacian_var: float
    pose_asymmetry: float

    @property
    def acceptable(self) -> bool:
        return self.score >= QUALITY_THRESHOLD

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def ramp(value: float, useless: float, good: float) -> float:
    """0 at ``useless``, 1 at ``good``, linear between (either direction)."""
    if good == useless:
        return float(value >= good)
    return float(np.clip((value - useless) / (good - useless), 0.0, 1.0))


def pose_asymmetry(landmarks: np.ndarray) -> float:
    """0 for a frontal face; grows with yaw and pitch. Landmarks: 5 x 2 in YuNet order."""
    marks = np.asarray(landmarks, np.float64).reshape(5, 2)
    right_eye, left_eye, nose, right_mouth, left_mouth = marks
    eye_vec = left_eye - right_eye
    iod = float(np.linalg.norm(eye_vec))
    if iod < 1e-6:
        return 1.0
    x_axis = eye_vec / iod
    y_axis = np.array([-x_axis[1], x_axis[0]])  # image "down" for an upright face
    eye_mid, mouth_mid = (right_eye + left_eye) / 2, (right_mouth + left_mouth) / 2
    # yaw: how far the nose sits off the eye/mouth mid-line, in inter-ocular distances
    mid_line_x = (np.dot(eye_mid, x_axis) + np.dot(mouth_mid, x_axis)) / 2
    yaw = abs(float(np.dot(nose, x_axis) - mid_line_x)) / iod
    # pitch: the nose lies about 45-60 % of the way from the eyes down to the mouth when frontal
    depth = float(np.dot(mouth_mid - eye_mid, y_axis))
    if depth <= 1e-6:
        return 1.0
    ratio = float(np.dot(nose - eye_mid, y_axis)) / depth
    pitch = max(0.0, 0.40 - ratio, ratio - 0.70)
    return max(yaw, 1.5 * pitch)


def laplacian_variance(aligned: np.ndarray) -> float:
    """Sharpness of an aligned crop: variance of the Laplacian over its central region."""
    grey = aligned if aligned.ndim == 2 else cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape[:2]
    centre = grey[h // 4 : h - h // 8, w // 6 : w - w // 6]  # eyes to mouth, little hair or background
    return float(cv2.Laplacian(centre, cv2.CV_64F).var())


def assess(landmarks: np.ndarray, confidence: float, aligned: np.ndarray) -> FaceQuality:
    """Quality of one face from its landmarks (image pixels), detector score and aligned crop."""
    marks = np.asarray(landmarks, np.float64).reshape(5, 2)
    iod = float(np.linalg.norm(marks[1] - marks[0]))
    return combine(iod, laplacian_variance(aligned), pose_asymmetry(marks), float(confidence))


def combine(iod: float, lap: float, asym: float, confidence: float) -> FaceQuality:
    """The quality score from the raw measurements (see the module notes)."""
    factors = {
        "size": ramp(iod, *RAMPS["size"][:2]),
        "sharpness": ramp(math.log10(max(lap, 1e-6)), *RAMPS["sharpness"][:2]),
        "pose": ramp(asym, *RAMPS["pose"][:2]),
        "confidence": ramp(float(confidence), *RAMPS["confidence"][:2]),
    }
    # weighted geometric mean; a small floor keeps one zero factor from being -inf
    log_score = sum(RAMPS[k][2] * math.log(max(v, 1e-3)) for k, v in factors.items()) / sum(r[2] for r in RAMPS.values())
    score = math.exp(log_score)
    score = 0.0 if score <= 1e-3 * 1.0001 else score
    return FaceQuality(score=score, inter_ocular_px=iod, laplacian_var=lap, pose_asymmetry=asym, **factors)
