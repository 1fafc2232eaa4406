"""The small vocabulary of typed records that flows through every stage.

A camera yields :class:`Frame` objects; models turn them into :class:`Detections`
(one columnar type for any number of boxes, as in supervision); trackers give those
boxes identities (``tracker_id``); analysers turn what they see into :class:`Event`
records, which the store persists. Keeping the vocabulary this small is what lets a
model, a tracker or a store be swapped without touching its neighbours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

import numpy as np


ALERT_TYPES = frozenset({"face_match", "plate_match"})
"""Event types that are alerts: a person must confirm them before anyone acts on them."""


@dataclass(slots=True)
class Frame:
    """One decoded, sampled picture from a camera.

    ``ts`` is wall-clock time (UTC epoch seconds) for live cameras and
    ``start + pts`` for files, so events from a file carry reproducible times.
    ``pts`` is the position in the stream in seconds; ``index`` counts sampled frames.
    ``found`` is what analysers earlier in the chain saw in this frame, by analyser name
    (as DeepStream attaches object metadata to a frame), so a later one can look only
    where it matters: plates only on moving vehicles.
    """

    camera: str
    image: np.ndarray  # H x W x 3, uint8, BGR (OpenCV order)
    ts: float
    pts: float
    index: int
    found: dict[str, "Detections"] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.ts, tz=timezone.utc)


@dataclass(slots=True)
class Detections:
    """Boxes found in one frame, stored column-wise so filters are array operations.

    ``xyxy`` is N x 4 float pixels; ``confidence`` N floats; ``class_name`` N labels;
    ``tracker_id`` N ints (-1 until a tracker assigns one). ``data`` holds extra
    per-box columns (landmarks, embeddings, plate text) keyed by name.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_name: np.ndarray
    tracker_id: np.ndarray
    data: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(
            xyxy=np.zeros((0, 4), dtype=np.float32),
            confidence=np.zeros((0,), dtype=np.float32),
            class_name=np.zeros((0,), dtype=object),
            tracker_id=np.zeros((0,), dtype=np.int64),
        )

    @classmethod
    def from_boxes(
        cls,
        xyxy: Any,
        confidence: Any | None = None,
        class_name: Any | str = "object",
        **data: Any,
    ) -> "Detections":
        boxes = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(boxes)
        conf = np.ones(n, np.float32) if confidence is None else np.asarray(confidence, np.float32)
        if isinstance(class_name, str):
            names = np.array([class_name] * n, dtype=object)
        else:
            names = np.asarray(class_name, dtype=object)
        columns = {k: np.asarray(v) for k, v in data.items()}
        for name, column in [("confidence", conf), ("class_name", names), *columns.items()]:
            if len(column) != n:
                raise ValueError(f"column {name!r} has {len(column)} rows, expected {n}")
        return cls(boxes, conf, names, np.full(n, -1, np.int64), columns)

    @classmethod
    def merge(cls, parts: Sequence["Detections"]) -> "Detections":
        """Rows of several Detections stacked into one (their ``data`` columns must agree)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set(parts[0].data)
        if any(set(p.data) != keys for p in parts):
            raise ValueError("Detections with different data columns cannot be merged")
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_name for p in parts]),
            np.concatenate([p.tracker_id for p in parts]),
            {k: np.concatenate([p.data[k] for p in parts]) for k in keys},
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Any) -> "Detections":
        """Select rows by mask, index array or slice; always returns Detections."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_name[index],
            self.tracker_id[index],
            {k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self) -> Iterator["Detections"]:
        for i in range(len(self)):
            yield self[i]

    @property
    def area(self) -> np.ndarray:
        w = np.clip(self.xyxy[:, 2] - self.xyxy[:, 0], 0, None)
        h = np.clip(self.xyxy[:, 3] - self.xyxy[:, 1], 0, None)
        return w * h


@dataclass(slots=True)
class Track:
    """A detection followed over time: the unit that events are emitted per."""

    camera: str
    track_id: int
    class_name: str
    first_ts: float
    last_ts: float
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)


@dataclass(slots=True)
class Event:
    """Something worth keeping: the one record every analyser emits and the store saves.

    ``key`` is idempotent: the same observation processed twice (a restarted worker,
    a replayed segment) yields the same key, so the store can drop the duplicate.
    ``snapshot`` is an optional BGR image the store writes beside the database.
    """

    camera: str
    type: str
    start_ts: float
    end_ts: float | None = None
    label: str | None = None
    score: float | None = None
    box: tuple[float, float, float, float] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    snapshot: np.ndarray | None = field(default=None, repr=False)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = event_key(self.camera, self.type, self.start_ts, self.label)


def normalise_plate(text: str) -> str:
    """A plate as stored and compared: upper case letters and digits only (and the
    Chinese characters of Chinese plates)."""
    return "".join(c for c in text.upper() if c.isalnum() and (c.isascii() or "\u4e00" <= c <= "\u9fff"))


# Characters that many plates print with one glyph (O and 0 everywhere; I and 1 in
# several countries): a list entry must not miss a vehicle because the reader, or whoever
# typed the entry, chose the other one. Hotlist checks in ALPR systems do the same.
_PLATE_KEY_FOLD = str.maketrans({"O": "0", "I": "1"})


def plate_key(text: str) -> str:
    """What a plate-list entry and a reading are matched by: the normalised plate with
    O/0 and I/1 taken as one character."""
    return normalise_plate(text).translate(_PLATE_KEY_FOLD)


def event_key(camera: str, type_: str, start_ts: float, label: str | None = None) -> str:
    """A stable identifier derived from what the event is, not from when it was stored."""
    raw = f"{camera}|{type_}|{start_ts:.3f}|{label or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
