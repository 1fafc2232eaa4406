"""1:1 verification with a liveness challenge: from a burst of frames and a claimed identity to a decision.

One path for the terminal device, the central API and the attack evaluation, so what
docs/terminal.md measures is what a door runs:

1. every frame goes through :class:`~safecity.faces.pipeline.FacePipeline` (YuNet,
   landmark refinement, quality gate, SFace); the subject is the largest face, and a
   second face nearly as large refuses the attempt (someone else in the frame);
2. the nose parallax of each frame (measured on a frontal re-projection of the face,
   :func:`~safecity.terminal.liveness.rectified_parallax`) goes to
   :func:`~safecity.terminal.liveness.judge` (the challenge);
3. the best frame's template must reach the site's threshold against the claimed
   person's templates (1:1, cosine), and every frame that has a template must stay
   above a lower *continuity* threshold, so the face cannot be swapped mid-challenge.

Templates made here are compared and dropped: nothing from the frames is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from safecity.faces.calibration import OPERATING_THRESHOLD
from safecity.terminal.liveness import (
    ChallengeRules,
    LivenessResult,
    Observation,
    judge,
    parallax,
    rectified_parallax,
    screen_pattern,
)

#: Every frame that has a template must score at least this against the claimed person.
CONTINUITY_THRESHOLD = 0.30
#: A second face with at least this share of the subject's box area refuses the attempt.
SECOND_FACE_SHARE = 0.5
MAX_FRAMES = 60


@dataclass(slots=True)
class Seen:
    """What one frame showed: the subject's landmarks, quality and (maybe) template."""

    ts: float
    box: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    pose: np.ndarray | None = None  # nose parallax used by the judge (rectified unless turned off)
    plain_pose: np.ndarray | None = None  # parallax of the pipeline's landmarks, for comparison
    template: np.ndarray | None = None
    quality: float = 0.0
    faces: int = 0
    second_face: bool = False
    screen: float | None = None


@dataclass(slots=True)
class Verdict:
    granted: bool
    code: str  # "granted" or the reason code of a denial
    reason: str
    score: float | None = None  # best 1:1 similarity over the frames
    threshold: float = OPERATING_THRESHOLD
    liveness: LivenessResult | None = None
    scores: list[float] = field(default_factory=list)  # per frame with a template

    def as_dict(self) -> dict:
        return {
            "granted": self.granted, "code": self.code, "reason": self.reason,
            "score": None if self.score is None else round(self.score, 4), "threshold": self.threshold,
            "liveness": self.liveness.as_dict() if self.liveness else None,
            "frame_scores": [round(s, 3) for s in self.scores],
        }


class Verifier:
    """Builds observations from frames and decides. Build once: it loads the face models."""

    def __init__(self, pipeline=None, measure_screen: bool = True, rectify: int = 2) -> None:
        if pipeline is None:
            from safecity.faces.pipeline import FacePipeline

            pipeline = FacePipeline()
        self.pipeline = pipeline
        self.measure_screen = measure_screen
        self.rectify = rectify  # re-detection passes on the frontal view; 0 = the pipeline's landmarks

    def see(self, ts: float, image: np.ndarray) -> Seen:
        faces = self.pipeline.faces(image)  # largest first
        if not faces:
            return Seen(ts)
        subject = faces[0]
        area = lambda f: float(max(0.0, f.box[2] - f.box[0]) * max(0.0, f.box[3] - f.box[1]))  # noqa: E731
        second = len(faces) > 1 and area(faces[1]) >= SECOND_FACE_SHARE * max(area(subject), 1e-6)
        screen = screen_pattern(image, subject.box) if self.measure_screen else None
        plain = parallax(subject.landmarks)
        pose = rectified_parallax(image, subject.landmarks, self.pipeline.detector, self.rectify) if self.rectify else plain
        return Seen(
            ts, subject.box.copy(), subject.landmarks.copy(), pose, plain, subject.template, subject.quality.score,
            len(faces), second, screen,
        )

    def observe(self, frames: Sequence[tuple[float, np.ndarray]]) -> list[Seen]:
        if len(frames) > MAX_FRAMES:
            raise ValueError(f"at most {MAX_FRAMES} frames per attempt")
        return [self.see(ts, image) for ts, image in frames]


def decide(
    seen: Sequence[Seen],
    templates: np.ndarray,
    required: Sequence[str],
    rules: ChallengeRules = ChallengeRules(),
    threshold: float = OPERATING_THRESHOLD,
    continuity: float = CONTINUITY_THRESHOLD,
) -> Verdict:
    """The decision for one attempt; ``templates`` are the claimed person's (k x 128, unit length)."""
    templates = np.atleast_2d(np.asarray(templates, np.float32))
    if not len(seen) or not any(s.landmarks is not None for s in seen):
        return Verdict(False, "no_face", "no face was seen", threshold=threshold)
    if any(s.second_face for s in seen):
        return Verdict(False, "several_faces", "more than one face in front of the terminal", threshold=threshold)
    scores = [float(np.max(templates @ s.template)) for s in seen if s.template is not None]
    if not scores:
        return Verdict(False, "poor_quality", "no frame was good enough to compare", threshold=threshold)
    best = max(scores)
    liveness = judge([Observation(s.ts, s.pose, s.screen) for s in seen], required, rules)
    verdict = Verdict(False, "", "", best, threshold, liveness, scores)
    if best < threshold:
        verdict.code, verdict.reason = "no_match", f"face does not match the badge's holder ({best:.2f} < {threshold:.2f})"
    elif min(scores) < continuity:
        verdict.code = "face_changed"
        verdict.reason = f"the face changed during the challenge (a frame scored {min(scores):.2f} < {continuity:.2f})"
    elif not liveness.passed:
        verdict.code, verdict.reason = f"liveness_{liveness.code}", f"liveness: {liveness.reason}"
    else:
        verdict.granted, verdict.code = True, "granted"
        verdict.reason = f"face matches ({best:.2f}) and {liveness.reason}"
    return verdict
