"""The interface every detector implements, whatever model is behind it."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from safecity.records import Detections


class Detector(Protocol):
    """Finds objects in one BGR image and returns them as :class:`Detections`.

    Boxes are in the image's own pixels; ``class_name`` uses safecity's labels
    (``person``, ``car``, ``face``, ``plate``…), never a model's numeric ids.
    """

    name: str

    def detect(self, image: np.ndarray) -> Detections: ...
