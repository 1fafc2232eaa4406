"""Snapshots: JPEG files in a folder beside the database, named by event key.

Files are written to a temporary name and renamed, so a crash never leaves a half
file, and a replayed event overwrites its own snapshot instead of adding a second.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save_snapshot(self, camera: str, key: str, ts: float, image: np.ndarray) -> str:
        day = datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")
        relative = Path(camera) / day / f"{key}.jpg"
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise ValueError("snapshot could not be encoded as JPEG")
        partial = target.with_suffix(".part")
        partial.write_bytes(data.tobytes())
        os.replace(partial, target)
        return relative.as_posix()

    def path(self, relative: str) -> Path:
        """Resolve a stored relative path, refusing anything that escapes the media root."""
        root = self.root.resolve()
        candidate = (root / relative).resolve()
        if not candidate.is_relative_to(root):
            raise ValueError(f"media path escapes the media folder: {relative}")
        return candidate
