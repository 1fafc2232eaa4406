"""Enrolment: one reference image in, one template out, or a refusal that says why."""

from __future__ import annotations

import numpy as np

from safecity.faces.pipeline import FacePipeline
from safecity.governance.watchlists import EnrolmentError
from safecity.vision.shared import shared

# A second face at least this share of the main face's size makes the photo ambiguous.
RIVAL_FACE_SIZE = 0.35


class FaceEnroller:
    """Checks a reference image holds exactly one usable face, and embeds it."""

    def __init__(self, pipeline: FacePipeline | None = None) -> None:
        self.pipeline = pipeline or shared("face-pipeline", FacePipeline)

    def template(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        faces = self.pipeline.faces(image)
        if not faces:
            raise EnrolmentError("no face found")
        main = faces[0]
        width = float(main.box[2] - main.box[0])
        rivals = [f for f in faces[1:] if float(f.box[2] - f.box[0]) >= RIVAL_FACE_SIZE * width]
        if rivals:
            raise EnrolmentError(f"{1 + len(rivals)} faces found: a reference image must show exactly one person")
        if main.template is None:
            weak = ", ".join(f"{k} {v:.2f}" for k, v in main.quality.as_dict().items() if k != "score")
            raise EnrolmentError(f"the face is not good enough to compare (quality {main.quality.score:.2f}: {weak})")
        return main.template, float(main.quality.score)
