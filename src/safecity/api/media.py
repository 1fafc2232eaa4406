"""Images served to people: snapshots, thumbnails and live tiles, faces blurred by default.

Every image leaves through :func:`redacted_jpeg` unless a route with the
``media.unredacted`` permission and a stated reason asks for the original. Live tiles
are polled by every open camera wall, so the redacted JPEG of each camera is cached
for a moment rather than re-running face detection for every viewer.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from safecity.governance.redaction import redact
from safecity.records import ALERT_TYPES

Overlay = tuple[tuple[float, float, float, float], str]
LatestFrame = Callable[[str], Any]
"""``camera name -> picture``: a BGR image, or ``(frame, overlays)`` as the engine's
``latest_frame`` returns (``frame.image`` and boxes with captions, in pixels), or None."""
THUMB_WIDTH = 320


def read_image(path: Path | None) -> np.ndarray | None:
    if path is None or not path.is_file():
        return None
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the image as JPEG")
    return data.tobytes()


def shrink(image: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= width:
        return image
    return cv2.resize(image, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def redacted_jpeg(image: np.ndarray, width: int | None = None, keep=None) -> tuple[bytes, int]:
    """Faces and plates pixelated (found at full resolution), but for ``keep``, then optionally shrunk."""
    redacted, faces = redact(image, keep)
    if width is not None:
        redacted = shrink(redacted, width)
    return encode_jpeg(redacted, 80 if width else 85), faces


def split_picture(picture: Any) -> tuple[np.ndarray | None, Sequence[Overlay]]:
    """The image and overlays of whatever a ``latest_frame`` callable returned."""
    if picture is None:
        return None, ()
    if isinstance(picture, tuple):
        frame, overlays = picture
        return getattr(frame, "image", frame), overlays or ()
    return picture, ()


OVERLAY_BGR = (87, 166, 255)  # orange: stands out on both grey streets and white walls


def draw_overlays(image: np.ndarray, overlays: Sequence[Overlay]) -> np.ndarray:
    """Boxes and captions, drawn after redaction so that captions never hide a face from it."""
    scale = max(image.shape[1] / 960, 0.6)
    for (x1, y1, x2, y2), caption in overlays:
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(image, p1, p2, OVERLAY_BGR, max(1, round(2 * scale)))
        if caption:
            (w, h), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
            top = max(0, p1[1] - h - base - 4)
            cv2.rectangle(image, (p1[0], top), (p1[0] + w + 6, top + h + base + 4), OVERLAY_BGR, -1)
            cv2.putText(image, caption, (p1[0] + 3, top + h + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (13, 17, 23), 1, cv2.LINE_AA)
    return image


class TileCache:
    """The latest redacted JPEG per camera, rebuilt at most every ``max_age`` seconds."""

    def __init__(self, max_age: float = 1.0, width: int = 960) -> None:
        self.max_age = max_age
        self.width = width
        self._tiles: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, camera: str, source: Callable[[], Any]) -> bytes | None:
        """The cached tile, or a new one from ``source()`` (an image, ``(frame, overlays)`` or None)."""
        now = time.monotonic()
        with self._lock:
            cached = self._tiles.get(camera)
        if cached is not None and now - cached[0] < self.max_age:
            return cached[1]
        image, overlays = split_picture(source())
        if image is None:
            return None
        redacted, _ = redact(image)
        data = encode_jpeg(shrink(draw_overlays(redacted, overlays), self.width), 80)
        with self._lock:
            self._tiles[camera] = (now, data)
        return data


def matched_subject(row) -> list[float] | None:
    """The box left visible on an alert's snapshot: the face or plate that matched."""
    return row.box if row.type in ALERT_TYPES and row.box else None
