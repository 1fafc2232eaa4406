import cv2
import numpy as np

from safecity.governance.redaction import FaceRedactor


def street_with_face(shared_data):
    face = cv2.imread(str(shared_data / "faces" / "celeba" / "images" / "006155.jpg"))
    frame = np.full((432, 768, 3), 120, np.uint8)
    frame[100 : 100 + face.shape[0], 300 : 300 + face.shape[1]] = face
    return frame


def test_real_face_is_found_and_blurred(shared_data):
    redactor = FaceRedactor()
    frame = street_with_face(shared_data)
    (box,) = redactor.faces(frame)
    x1, y1, x2, y2 = box.astype(int)
    assert 300 <= x1 < x2 <= 300 + 203 and 100 <= y1 < y2 <= 100 + 249

    redacted, count = redactor.redact(frame)
    assert count == 1
    assert len(redactor.faces(redacted)) == 0  # no longer recognisable as a face
    face_before, face_after = frame[y1:y2, x1:x2], redacted[y1:y2, x1:x2]
    assert np.abs(face_before.astype(int) - face_after.astype(int)).mean() > 5
    assert face_after.std() < face_before.std()  # detail removed
    assert np.array_equal(frame[:60], redacted[:60])  # background untouched
    assert not np.array_equal(frame, redacted) and frame is not redacted


def test_image_without_faces_is_unchanged():
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    redacted, count = FaceRedactor().redact(image)
    assert count == 0 and np.array_equal(image, redacted)


def test_small_distant_faces_are_hidden_too(shared_data):
    """A face too small for YuNet (as in a crowd far from the camera) is found by CenterFace."""
    face = cv2.imread(str(shared_data / "faces" / "celeba" / "images" / "006155.jpg"))
    small = cv2.resize(face, (face.shape[1] // 6, face.shape[0] // 6))  # ~14 px between the eyes
    frame = np.full((432, 768, 3), 120, np.uint8)
    frame[300 : 300 + small.shape[0], 600 : 600 + small.shape[1]] = small
    only_yunet = FaceRedactor(small_faces=False, plates=False)
    both = FaceRedactor(plates=False)
    assert len(only_yunet.faces(frame)) == 0
    assert len(both.faces(frame)) >= 1
    redacted, count = both.redact(frame)
    assert count >= 1 and not np.array_equal(redacted[300:340, 600:634], frame[300:340, 600:634])


def test_plates_are_hidden_and_the_matched_subject_is_kept(shared_data):
    import csv

    root = shared_data / "plates" / "openalpr-eu"
    with open(root / "labels.csv") as handle:
        row = next(csv.DictReader(handle))
    image = cv2.imread(str(root / row["image"]))
    x, y, w, h = (int(float(row[k])) for k in ("x", "y", "w", "h"))
    redactor = FaceRedactor(small_faces=False)
    redacted, count = redactor.redact(image)
    assert count >= 1 and not np.array_equal(redacted[y : y + h, x : x + w], image[y : y + h, x : x + w])
    plate = redactor.plates(image)[0]
    kept, _ = redactor.redact(image, keep=plate.tolist())  # a plate_match alert shows its plate
    assert np.array_equal(kept[y : y + h, x : x + w], image[y : y + h, x : x + w])
