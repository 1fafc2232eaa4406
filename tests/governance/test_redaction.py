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
