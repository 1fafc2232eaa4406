"""Licence plates: find (YOLOv8n from fastanpr, converted without torch), read (PP-OCRv6
from rapidocr, own CTC decoding), check against per-country grammars, and vote across a
vehicle's track. Models come from the packages' own files; nothing is downloaded.

    from safecity.plates import PlateRecognizer
    plates = PlateRecognizer()            # Detector protocol, class "plate"
    detections = plates.detect(frame)     # detections.data["text"], ["text_confidence"]
"""

from safecity.plates.grammar import GRAMMARS, RegionPrior, normalise_text
from safecity.plates.vote import PlateVote, TrackVotes, vote

__all__ = [
    "GRAMMARS",
    "PlateDetector",
    "PlateRead",
    "PlateReader",
    "PlateRecognizer",
    "PlateVote",
    "RegionPrior",
    "TrackVotes",
    "normalise_text",
    "vote",
]


def __getattr__(name: str):
    # the model-backed classes load onnx/openvino: import them only when asked for
    if name == "PlateDetector":
        from safecity.plates.detect import PlateDetector

        return PlateDetector
    if name in ("PlateRead", "PlateReader", "PlateRecognizer"):
        from safecity.plates import read

        return getattr(read, name)
    raise AttributeError(name)
