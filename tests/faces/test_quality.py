"""The quality gate on real faces made worse in known ways: smaller, blurred, turned."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from safecity.faces.models import ARCFACE_112, FaceDetector, align, largest
from safecity.faces.pipeline import FacePipeline
from safecity.faces.quality import QUALITY_THRESHOLD, assess, combine, pose_asymmetry, ramp


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def portrait(shared_data, detector):
    """A large, sharp, frontal face (CelebA 060800: ~155 px wide) with its refined landmarks."""
    image = cv2.imread(str(shared_data / "faces" / "celeba" / "images" / "060800.jpg"))
    face = detector.refine(image, largest(detector.detect(image)))
    return image, face.data["landmarks"][0], float(face.confidence[0])


def test_good_portrait_passes_with_a_high_score(portrait):
    image, marks, confidence = portrait
    quality = assess(marks, confidence, align(image, marks))
    assert quality.acceptable and quality.score > 0.8
    assert quality.inter_ocular_px > 50
    assert quality.size == 1.0 and quality.pose > 0.8


def test_tiny_face_is_rejected(portrait):
    image, marks, confidence = portrait
    factor = 8.0  # ~70 px eye distance -> ~9 px: too few pixels to recognise anyone
    small = cv2.resize(image, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    quality = assess(marks / factor, confidence, align(small, marks / factor))
    assert quality.size == 0.0
    assert not quality.acceptable
    assert quality.laplacian_var < assess(marks, confidence, align(image, marks)).laplacian_var


def test_blur_lowers_sharpness_and_score(portrait):
    image, marks, confidence = portrait
    sharp = assess(marks, confidence, align(image, marks))
    blurred_image = cv2.GaussianBlur(image, (0, 0), 4)
    blurred = assess(marks, confidence, align(blurred_image, marks))
    assert blurred.laplacian_var < 0.2 * sharp.laplacian_var
    assert blurred.sharpness < sharp.sharpness and blurred.score < sharp.score


def test_turned_head_scores_low_on_pose():
    frontal = ARCFACE_112.copy()
    assert pose_asymmetry(frontal) < 0.05
    turned = frontal.copy()
    iod = np.linalg.norm(frontal[1] - frontal[0])
    turned[2, 0] += 0.7 * iod  # nose well outside the eyes: a profile view
    assert pose_asymmetry(turned) > 0.6
    assert combine(40.0, 500.0, pose_asymmetry(turned), 0.9).pose == 0.0
    nodding = frontal.copy()
    nodding[2, 1] = frontal[:2, 1].mean() + 2  # nose tip up at eye level: head tilted back
    assert pose_asymmetry(nodding) > pose_asymmetry(frontal) + 0.4


def test_score_is_monotonic_in_each_factor():
    base = dict(iod=20.0, lap=100.0, asym=0.3, confidence=0.75)
    score = combine(**base).score
    assert combine(**{**base, "iod": 40.0}).score > score
    assert combine(**{**base, "lap": 400.0}).score > score
    assert combine(**{**base, "asym": 0.1}).score > score
    assert combine(**{**base, "confidence": 0.95}).score > score
    assert ramp(5, 10, 32) == 0.0 and ramp(50, 10, 32) == 1.0 and ramp(21, 10, 32) == pytest.approx(0.5)
    assert ramp(0.4, 0.6, 0.2) == pytest.approx(0.5)  # falling ramps work too


def test_pipeline_embeds_only_faces_above_the_gate(portrait):
    image, _, _ = portrait
    assert FacePipeline(quality_threshold=QUALITY_THRESHOLD).subject(image).template is not None
    strict = FacePipeline(quality_threshold=1.01).subject(image)
    assert strict is not None and strict.template is None and not strict.comparable
