"""Per-camera analytics over tracked boxes: line crossings, zone occupancy, dwell time.

Everything here works on the tracker's output and the camera's configured
:class:`~safecity.config.Line` and :class:`~safecity.config.Zone` (normalised 0..1
coordinates, scaled to the frame's pixels on each update, so a camera may change
resolution). An object's position is the bottom-centre of its box: the point where
a person stands or a vehicle touches the ground, which is what a line painted
across a road or a zone drawn on a floor refers to; the box centre would count a
tall person "inside" a zone their head merely overlaps.

Trackers and detectors jitter, so both checks carry hysteresis: a track only
changes side of a line once its point is clearly past it (a margin proportional to
its box height, since jitter grows with apparent size), and only leaves a zone
after being outside or unseen for ``exit_grace`` seconds. Without it a person
standing on a line would be counted every frame.

The classes return small frozen records; an analyser turns them into
:class:`~safecity.records.Event` objects. They keep per-track state, so feed them
every analysed frame of one camera in time order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from safecity.config import Camera, Line, Zone
from safecity.records import Detections

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class LineCrossing:
    """A track crossed ``line``; "in" is from its left to its right (see :class:`LineCounter`)."""

    line: str
    track_id: int
    class_name: str
    direction: Direction
    ts: float


@dataclass(frozen=True, slots=True)
class ZoneDwell:
    """A track's stay in ``zone``; ``exit_ts`` is None while it is still there.

    ``enter_ts`` is the first and ``exit_ts`` the last frame time the track was seen
    inside, so ``seconds`` is observed time in the zone, whatever the grace period.
    """

    zone: str
    track_id: int
    class_name: str
    enter_ts: float
    exit_ts: float | None = None

    def seconds(self, now: float | None = None) -> float:
        end = self.exit_ts if self.exit_ts is not None else now
        if end is None:
            raise ValueError("an open dwell needs the current time")
        return end - self.enter_ts


@dataclass(frozen=True, slots=True)
class ZoneOccupancy:
    """How many tracked objects of each class are inside ``zone`` on this frame."""

    zone: str
    ts: float
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def ground_points(detections: Detections) -> np.ndarray:
    """Bottom-centre of each box (N x 2 pixels)."""
    xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
    return np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, xyxy[:, 3]], axis=1)


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule for N points against one polygon (M x 2 vertices), vectorised."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    x, y = points[:, :1], points[:, 1:]
    x1, y1 = poly[:, 0][None, :], poly[:, 1][None, :]
    x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return ((straddles & (x < x_cross)).sum(axis=1) % 2) == 1


def _tracked(detections: Detections) -> Detections:
    return detections[np.asarray(detections.tracker_id) >= 1]


@dataclass(slots=True)
class _Side:
    side: int  # -1 left, +1 right of the directed line
    anchor: np.ndarray  # last point clearly on that side
    last_ts: float


class LineCounter:
    """Counts tracks crossing counting lines, once per crossing, with direction.

    Side convention, in image coordinates (y grows downwards): standing at ``start``
    and facing ``end``, the image to your right is the line's right side. Moving
    from left to right is "in", from right to left "out"; so for a line drawn left
    to right across the image, walking down the picture is "in". Swap ``start`` and
    ``end`` in the config to swap them.

    A crossing is counted when a track's point, last seen clearly on one side, is
    now clearly on the other, and the path between the two passes through the
    segment itself (walking round the end of a line is not crossing it). "Clearly"
    means farther than ``hysteresis`` x box height (at least ``min_margin_px``) from
    the line. State of tracks unseen for ``forget_after`` seconds is dropped.
    """

    def __init__(
        self,
        lines: Sequence[Line],
        hysteresis: float = 0.1,
        min_margin_px: float = 2.0,
        forget_after: float = 30.0,
    ) -> None:
        self.lines = list(lines)
        self.hysteresis = hysteresis
        self.min_margin_px = min_margin_px
        self.forget_after = forget_after
        self._sides: dict[tuple[str, int], _Side] = {}
        self.totals: Counter[tuple[str, str, Direction]] = Counter()  # (line, class, dir)

    def count(self, line: str, direction: Direction, class_name: str | None = None) -> int:
        return sum(
            n
            for (name, cls, d), n in self.totals.items()
            if name == line and d == direction and (class_name is None or cls == class_name)
        )

    def update(self, detections: Detections, ts: float, width: int, height: int) -> list[LineCrossing]:
        tracked = _tracked(detections)
        points = ground_points(tracked)
        heights = tracked.xyxy[:, 3] - tracked.xyxy[:, 1]
        margins = np.maximum(self.min_margin_px, self.hysteresis * np.asarray(heights, np.float64))
        scale = np.array([width, height], dtype=np.float64)
        crossings: list[LineCrossing] = []
        for line in self.lines:
            start = np.asarray(line.start, np.float64) * scale
            direction = np.asarray(line.end, np.float64) * scale - start
            length = float(np.hypot(*direction))
            rel = points - start
            distance = (direction[0] * rel[:, 1] - direction[1] * rel[:, 0]) / length
            for k in range(len(tracked)):
                side = 1 if distance[k] > margins[k] else -1 if distance[k] < -margins[k] else 0
                crossing = self._step(line, start, direction, k, tracked, points[k], side, ts)
                if crossing is not None:
                    crossings.append(crossing)
                    self.totals[(crossing.line, crossing.class_name, crossing.direction)] += 1
        self._forget(ts)
        return crossings

    def _step(
        self,
        line: Line,
        start: np.ndarray,
        direction: np.ndarray,
        k: int,
        tracked: Detections,
        point: np.ndarray,
        side: int,
        ts: float,
    ) -> LineCrossing | None:
        key = (line.name, int(tracked.tracker_id[k]))
        state = self._sides.get(key)
        if state is not None:
            state.last_ts = ts
        if side == 0:  # inside the hysteresis band: no decision yet
            return None
        if state is None:
            self._sides[key] = _Side(side, point.copy(), ts)
            return None
        previous, anchor = state.side, state.anchor
        state.side, state.anchor = side, point.copy()
        if previous == side or not _through_segment(anchor, point, start, direction):
            return None
        return LineCrossing(
            line=line.name,
            track_id=key[1],
            class_name=str(tracked.class_name[k]),
            direction="in" if previous < 0 else "out",
            ts=ts,
        )

    def _forget(self, ts: float) -> None:
        stale = [key for key, s in self._sides.items() if ts - s.last_ts > self.forget_after]
        for key in stale:
            del self._sides[key]


def _through_segment(a: np.ndarray, b: np.ndarray, start: np.ndarray, direction: np.ndarray) -> bool:
    """Does the path a -> b (on opposite sides of the line) meet the segment itself?"""

    def cross(u: np.ndarray, v: np.ndarray) -> float:
        return float(u[0] * v[1] - u[1] * v[0])

    da, db = cross(direction, a - start), cross(direction, b - start)
    if da == db:
        return False
    hit = a + (b - a) * (da / (da - db))  # where the path meets the infinite line
    t = float(np.dot(hit - start, direction) / np.dot(direction, direction))
    return 0.0 <= t <= 1.0


@dataclass(slots=True)
class _Stay:
    class_name: str
    enter_ts: float
    last_inside: float


@dataclass(frozen=True, slots=True)
class ZoneUpdate:
    """One frame's zone results: occupancy of every zone, and the stays that ended."""

    occupancy: tuple[ZoneOccupancy, ...]
    exits: tuple[ZoneDwell, ...]


class ZoneMonitor:
    """Occupancy of each zone now, and how long each track stays in it.

    Occupancy counts the tracks visible inside on this frame. A stay begins the
    first frame a track is seen inside and ends once it has been outside or unseen
    for more than ``exit_grace`` seconds, which absorbs jitter on the border and
    short occlusions; the finished :class:`ZoneDwell` is reported then.
    """

    def __init__(self, zones: Sequence[Zone], exit_grace: float = 1.0) -> None:
        self.zones = list(zones)
        self.exit_grace = exit_grace
        self._stays: dict[tuple[str, int], _Stay] = {}

    def update(self, detections: Detections, ts: float, width: int, height: int) -> ZoneUpdate:
        tracked = _tracked(detections)
        points = ground_points(tracked)
        scale = np.array([width, height], dtype=np.float64)
        occupancy = []
        for zone in self.zones:
            inside = points_in_polygon(points, np.asarray(zone.polygon, np.float64) * scale)
            counts: Counter[str] = Counter()
            for k in np.flatnonzero(inside):
                tid, cls = int(tracked.tracker_id[k]), str(tracked.class_name[k])
                counts[cls] += 1
                stay = self._stays.setdefault((zone.name, tid), _Stay(cls, ts, ts))
                stay.last_inside = ts
            occupancy.append(ZoneOccupancy(zone.name, ts, dict(counts)))
        exits = self._close(lambda stay: ts - stay.last_inside > self.exit_grace)
        return ZoneUpdate(tuple(occupancy), tuple(exits))

    def dwelling(self) -> list[ZoneDwell]:
        """Stays still open; ``seconds(now)`` gives how long each has lasted."""
        return [ZoneDwell(z, tid, s.class_name, s.enter_ts) for (z, tid), s in self._stays.items()]

    def flush(self) -> list[ZoneDwell]:
        """The stream ended: close every open stay at its last time inside."""
        return self._close(lambda stay: True)

    def _close(self, ended: Callable[[_Stay], bool]) -> list[ZoneDwell]:
        done = [(key, s) for key, s in self._stays.items() if ended(s)]
        for key, _ in done:
            del self._stays[key]
        return [ZoneDwell(z, tid, s.class_name, s.enter_ts, s.last_inside) for (z, tid), s in done]


@dataclass(frozen=True, slots=True)
class AnalyticsUpdate:
    crossings: tuple[LineCrossing, ...]
    occupancy: tuple[ZoneOccupancy, ...]
    exits: tuple[ZoneDwell, ...]


class CameraAnalytics:
    """Line counting and zone monitoring for one camera's configured lines and zones."""

    def __init__(self, camera: Camera, **options: float) -> None:
        line_opts = {k: v for k, v in options.items() if k in {"hysteresis", "min_margin_px", "forget_after"}}
        zone_opts = {k: v for k, v in options.items() if k in {"exit_grace"}}
        unknown = set(options) - set(line_opts) - set(zone_opts)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        self.lines = LineCounter(camera.lines, **line_opts)
        self.zones = ZoneMonitor(camera.zones, **zone_opts)

    def update(self, detections: Detections, ts: float, width: int, height: int) -> AnalyticsUpdate:
        crossings = self.lines.update(detections, ts, width, height)
        zones = self.zones.update(detections, ts, width, height)
        return AnalyticsUpdate(tuple(crossings), zones.occupancy, zones.exits)

    def flush(self) -> list[ZoneDwell]:
        return self.zones.flush()
