"""From an image to comparable face templates: detect, refine landmarks, check quality, embed.

One path for the product and the evaluation alike, so that what ``safecity eval
faces`` measures is what a camera or a terminal runs:

1. YuNet finds faces (boxes, 5 landmarks, confidence);
2. the faces to be compared, when smaller than 224 px, are re-detected on a crop
   scaled to 224 px for better landmarks (:meth:`FaceDetector.refine`);
3. each is aligned to the ArcFace 112 x 112 template and scored for quality;
4. only faces at or above :data:`QUALITY_THRESHOLD` are embedded with SFace
   (128-d, L2-normalised); the others get no template at all.

Templates are compared with a dot product (cosine similarity); a pair matches when
the score is at least :data:`safecity.faces.calibration.OPERATING_THRESHOLD`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from safecity.faces.models import FaceDetector, FaceEmbedder, align, largest
from safecity.faces.quality import QUALITY_THRESHOLD, FaceQuality, assess
from safecity.records import Detections


@dataclass(slots=True)
class Face:
    """One face found in an image; ``template`` is None when its quality is too low."""

    box: np.ndarray  # x1, y1, x2, y2 pixels
    confidence: float
    landmarks: np.ndarray  # 5 x 2 pixels
    quality: FaceQuality
    template: np.ndarray | None  # 128 float32, unit length

    @property
    def comparable(self) -> bool:
        return self.template is not None


class FacePipeline:
    """Detector + quality gate + embedder. Cheap to call; build it once (it loads two models).

    Safe to call from several threads at once. ``streams`` is how many threads are
    expected to (default: the process's setting, see
    :func:`safecity.vision.runtime.set_default_streams`); with ``streams=2`` two images
    are processed side by side, one core each, which roughly halves the wall time per
    image on two idle cores while each image takes longer (see docs/faces.md, Speed).
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        embedder: FaceEmbedder | None = None,
        quality_threshold: float = QUALITY_THRESHOLD,
        refine: bool = True,
        backend: str = "auto",
        streams: int | None = None,
    ) -> None:
        self.detector = detector or FaceDetector(backend=backend)
        self.embedder = embedder or FaceEmbedder(backend=backend, streams=streams)
        self.quality_threshold = quality_threshold
        self.refine = refine

    def _faces(self, image: np.ndarray, found: Detections) -> list[Face]:
        if not len(found):
            return []
        if self.refine:
            found = self.detector.refine(image, found)
        faces: list[Face] = []
        crops, wanted = [], []
        for i in range(len(found)):
            marks = found.data["landmarks"][i]
            crop = align(image, marks)
            quality = assess(marks, float(found.confidence[i]), crop)
            faces.append(Face(found.xyxy[i].copy(), float(found.confidence[i]), marks.copy(), quality, None))
            if quality.score >= self.quality_threshold:
                crops.append(crop)
                wanted.append(i)
        if crops:
            templates = self.embedder.embed_aligned(np.stack(crops))
            for i, template in zip(wanted, templates):
                faces[i].template = template
        return faces

    def faces(self, image: np.ndarray) -> list[Face]:
        """Every face in the image, largest first."""
        found = self.detector.detect(image)
        order = np.argsort(-found.area, kind="stable")
        return self._faces(image, found[order])

    def subject(self, image: np.ndarray) -> Face | None:
        """The image's subject — its largest face — or None when there is no face."""
        found = self.detector.detect(image)
        faces = self._faces(image, largest(found))
        return faces[0] if faces else None
