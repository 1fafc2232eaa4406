"""The head-turn challenge: what it measures (nose parallax) and how it judges a sequence.

Geometry checks use exact synthetic landmarks (a flat picture under any perspective, a
3-D head turning); the real-frame checks are in test_verify.py.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from safecity.terminal.liveness import (
    ChallengeRules,
    Observation,
    judge,
    naive_yaw,
    parallax,
    random_challenge,
)

# a head in inter-ocular units: right eye, left eye, nose tip (towards the camera), mouth corners
HEAD = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.55, -0.45], [-0.4, 1.1, -0.1], [0.4, 1.1, -0.1]])


def project(points: np.ndarray, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, distance: float = 8.0) -> np.ndarray:
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    world = (points - points.mean(0)) @ (rz @ rx @ ry).T + [0, 0, distance]
    return 600 * world[:, :2] / world[:, 2:3] + [320, 240]


def test_a_flat_picture_gives_the_same_parallax_under_any_perspective():
    flat = HEAD.copy()
    flat[:, 2] = 0.0  # a photo: every point on one plane
    reference = parallax(project(flat))
    rng = np.random.default_rng(0)
    for _ in range(50):
        pose = dict(yaw=rng.uniform(-40, 40), pitch=rng.uniform(-30, 30), roll=rng.uniform(-30, 30), distance=rng.uniform(4, 12))
        assert np.allclose(parallax(project(flat, **pose)), reference, atol=1e-6)
    # ... while the eye/nose ratio many tools call "yaw" moves when the photo is only rolled or turned
    assert abs(naive_yaw(project(flat, roll=25)) - naive_yaw(project(flat))) > 0.1


def test_a_real_head_turn_moves_the_nose_off_the_plane_in_the_turns_direction():
    frontal = parallax(project(HEAD))
    towards_left_eye = parallax(project(HEAD, yaw=-25)) - frontal  # the nose swings towards the subject's left
    towards_right_eye = parallax(project(HEAD, yaw=25)) - frontal
    assert towards_left_eye[0] > 0.15 and towards_right_eye[0] < -0.15
    # a nod moves it along the other axis
    down = parallax(project(HEAD, pitch=-20)) - frontal
    assert abs(down[1]) > 0.1 and abs(down[1]) > abs(down[0])
    # degenerate points (a folded quadrilateral) give no measurement rather than a wrong one
    folded = project(HEAD)
    folded[[0, 1]] = folded[[1, 0]]
    assert parallax(folded) is None


def sequence(moves, step: float = 0.4):
    """Observations from nose moves (x, y) relative to the baseline."""
    return [Observation(i * step, np.array(m, float)) for i, m in enumerate(moves)]


BASE = [(0, 0), (0.01, -0.01)]
LEFT, RIGHT = (0.15, 0.01), (-0.15, 0.0)
BACK = (0.01, 0.0)


def test_the_challenge_passes_only_for_the_asked_movements_in_order():
    rules = ChallengeRules(steps=2)
    good = judge(sequence([*BASE, LEFT, LEFT, BACK, RIGHT, RIGHT, BACK]), ["turn_left", "turn_right"], rules)
    assert good.passed and good.completed == ("turn_left", "turn_right")
    wrong = judge(sequence([*BASE, RIGHT, RIGHT, BACK, LEFT, LEFT]), ["turn_left", "turn_right"], rules)
    assert not wrong.passed and wrong.code == "wrong_movement"
    # one turn cannot count twice: the head must come back first
    held = judge(sequence([*BASE, LEFT, LEFT, LEFT, LEFT, LEFT]), ["turn_left", "turn_left"], rules)
    assert not held.passed and held.code == "incomplete" and held.completed == ("turn_left",)
    # a single frame past the threshold is noise, not a turn (hold_frames = 2)
    flicker = judge(sequence([*BASE, LEFT, BACK, LEFT, BACK, RIGHT, BACK]), ["turn_left", "turn_right"], rules)
    assert not flicker.passed


def test_the_challenge_has_a_time_limit_and_needs_enough_frames():
    rules = ChallengeRules(steps=1, time_limit=2.0)
    slow = judge(sequence([*BASE, BACK, BACK, BACK, BACK, BACK, LEFT, LEFT]), ["turn_left"], rules)
    assert not slow.passed and slow.code == "timeout"
    few = judge(sequence([LEFT]), ["turn_left"], rules)
    assert few.code == "too_few_frames"
    nothing = judge([Observation(0.0, None), Observation(0.4, None)], ["turn_left"], rules)
    assert nothing.code == "too_few_frames" and nothing.frames_with_face == 0


def test_a_mirrored_camera_swaps_left_and_right():
    moves = sequence([*BASE, LEFT, LEFT, BACK])
    assert judge(moves, ["turn_left"], ChallengeRules(steps=1)).passed
    assert judge(moves, ["turn_right"], ChallengeRules(steps=1, mirrored=True)).passed
    assert not judge(moves, ["turn_left"], ChallengeRules(steps=1, mirrored=True)).passed


def test_the_passive_screen_check_refuses_only_when_switched_on():
    moves = [Observation(o.ts, o.pose, 0.9) for o in sequence([*BASE, LEFT, LEFT, BACK])]
    assert judge(moves, ["turn_left"], ChallengeRules(steps=1)).passed
    refused = judge(moves, ["turn_left"], ChallengeRules(steps=1, screen_threshold=0.75))
    assert not refused.passed and refused.code == "screen"


def test_challenges_are_random_over_the_pool():
    rng = np.random.default_rng(1)
    seen = {random_challenge(3, ("turn_left", "turn_right"), rng) for _ in range(400)}
    assert len(seen) == 8  # every sequence of 3 turns occurs
    assert {len(random_challenge()) for _ in range(20)} == {3}
    with pytest.raises(ValueError):
        random_challenge(2, ("blink",))


def test_screen_pattern_sees_a_pixel_grid_and_not_a_smooth_face(orl):
    from safecity.terminal.liveness import screen_pattern

    face = cv2.resize(cv2.imread(str(orl / "images" / "s10_1.png")), None, fx=2.4, fy=2.4, interpolation=cv2.INTER_CUBIC)
    box = (40, 40, face.shape[1] - 40, face.shape[0] - 40)
    grid = face.astype(np.float32)
    grid[::3, :] *= 0.5  # dark rows every 3 pixels: a screen's grid resolved by the camera
    grid[:, ::3] *= 0.5
    jpeg = cv2.imdecode(cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_COLOR)
    assert screen_pattern(grid.astype(np.uint8), box) > screen_pattern(jpeg, box) + 0.3
