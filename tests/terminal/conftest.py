"""Fixtures for the terminal tests: the face models once per session, real ORL people, API apps."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest

# the API fixtures (a seeded store with one user per role, the app, a client), shared with tests/api
from tests.api.conftest import app, client, seeded_var, store, users  # noqa: F401


@pytest.fixture(scope="session")
def orl(shared_data: Path) -> Path:
    return shared_data / "faces" / "orl"


@pytest.fixture(scope="session")
def verifier():
    from safecity.terminal.verify import Verifier

    return Verifier()


class Person:
    """One ORL person, measured as the evaluation does: enrolment photo, baseline, other poses."""

    def __init__(self, name: str, enrol, baseline, others) -> None:
        self.name, self.enrol, self.baseline, self.others = name, enrol, baseline, others

    def sequence(self, required, seed: int = 0):
        from safecity.terminal.attacks import compliant_sequence

        frames, _ = compliant_sequence(self.baseline, self.others, required, np.random.default_rng(seed))
        return frames

    def enrolment_jpeg(self) -> bytes:
        return cv2.imencode(".jpg", cv2.resize(self.enrol.image, None, fx=2.4, fy=2.4, interpolation=cv2.INTER_CUBIC))[1].tobytes()


@pytest.fixture(scope="session")
def people(orl, verifier):
    from safecity.terminal.attacks import PosedImage, genuine_frame, load_people, read

    everyone = load_people(orl)

    @lru_cache(maxsize=None)
    def get(name: str) -> Person:
        posed = []
        for path in everyone[name]:
            image = read(path)
            seen = verifier.see(0.0, genuine_frame(image, np.random.default_rng(7)))
            if seen.pose is not None and seen.template is not None:
                posed.append(PosedImage(path, image, seen.pose, seen.template))
        by_frontal = sorted(posed, key=lambda p: float(np.linalg.norm(p.pose)))
        return Person(name, by_frontal[0], by_frontal[1], [p for p in posed if p is not by_frontal[0]])

    return get


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def blank_frames(n: int = 6) -> list[tuple[float, np.ndarray]]:
    """Frames with nobody in front of the camera."""
    return [(i * 0.4, np.full((480, 640, 3), 120, np.uint8)) for i in range(n)]
