"""Reading plates: PP-OCRv6 recognition through InferenceModel, own CTC decoding."""

import csv

import cv2
import numpy as np
import pytest

from safecity.plates.hidden import hidden_boxes
from safecity.plates.read import (
    PlateReader,
    PlateRecognizer,
    TextRecogniser,
    charset,
    decode_ctc,
    rapidocr_model,
)
from safecity.vision.runtime import available_backends


def rows(shared_data, name, n, step=1):
    root = shared_data / "plates" / name
    return root, list(csv.DictReader(open(root / "labels.csv", encoding="utf-8")))[::step][:n]


def exact(label, text):
    return len(label) == len(text) and all(a in ("?", b) for a, b in zip(label, text))


@pytest.fixture(scope="module")
def reader():
    return PlateReader()


def test_ctc_decoding_gives_characters_confidences_and_alternatives():
    classes = ("", "A", "B", "1", "0", "O", "-", " ")
    T = 10
    probs = np.full((T, len(classes)), 0.001)
    path = [0, 1, 1, 0, 1, 6, 3, 0, 5, 0]  # A A _ A - 1 _ O _
    for t, k in enumerate(path):
        probs[t, k] = 0.9
    probs[8, 4] = 0.08  # the model half-saw a 0 where it read O
    probs /= probs.sum(1, keepdims=True)
    line = decode_ctc(probs, classes)
    assert line.text == "AA1O"  # repeats collapse, blanks split them, '-' is no plate character
    assert [c.start for c in line.chars] == [1, 4, 6, 8]
    assert all(0.85 < c.confidence <= 1.0 for c in line.chars)
    assert line.chars[3].alternatives["0"] == pytest.approx(probs[8, 4])


def test_the_model_carries_its_character_list():
    classes = charset(rapidocr_model("rec"))
    assert classes[0] == "" and classes[-1] == " "
    assert {"A", "Z", "0", "9", "皖", "京"} <= set(classes)


@pytest.mark.skipif(len(available_backends()) < 2, reason="needs OpenVINO and onnxruntime")
def test_openvino_and_onnxruntime_agree_on_real_crops(shared_data):
    root, labels = rows(shared_data, "uc3m-es", 6, 50)
    images = [cv2.imread(str(root / r["image"])) for r in labels]
    ov = TextRecogniser(backend="openvino", precision="auto")
    ov_f32 = TextRecogniser(backend="openvino")  # the reader's own precision: full float
    assert ov_f32.model._config["INFERENCE_PRECISION_HINT"] == "f32"
    ort = TextRecogniser(backend="onnxruntime")
    for image in images:
        (p1, n1), = ov.probabilities([image])
        (p2, n2), = ort.probabilities([image])
        (p3, n3), = ov_f32.probabilities([image])
        assert n1 == n2 == n3 and p1.shape == p2.shape == p3.shape
        # in full float the two runtimes compute the same function
        assert np.abs(p3 - p2).max() < 1e-3
        assert ov_f32.read([image])[0].text == ort.read([image])[0].text
        # OpenVINO's own default is bf16 where the CPU has it: a frame between two classes may flip
        assert np.abs(p1 - p2).mean() < 1e-3
        assert (p1.argmax(1) == p2.argmax(1)).mean() >= 0.8


def test_padding_inputs_to_a_width_step_keeps_the_reading(shared_data, monkeypatch):
    """Recogniser inputs are padded to a multiple of REC_WIDTH_STEP (few distinct shapes
    for OpenVINO); the characters read stay the same."""
    import safecity.plates.read as read_module

    root, labels = rows(shared_data, "cn-crops", 8, 29)
    images = [cv2.imread(str(root / r["image"])) for r in labels]
    rec = TextRecogniser()
    padded = [line.text for line in rec.read(images[:1])] + [line.text for im in images[1:] for line in rec.read([im])]
    monkeypatch.setattr(read_module, "REC_WIDTH_STEP", 1)
    exact_width = [line.text for im in images for line in rec.read([im])]
    assert sum(a == b for a, b in zip(padded, exact_width)) >= len(images) - 1


def test_reads_spanish_crops(shared_data):
    """Every plate in this set has two characters hidden by grey boxes: told that its
    crops are anonymised (``find_hidden``), the reader must find the boxes (or see
    where characters are missing) and mark them '?'."""
    root, labels = rows(shared_data, "uc3m-es", 30, 23)
    images = [cv2.imread(str(root / r["image"])) for r in labels]
    spain = PlateReader(grammars=["es", "es-old"], find_hidden=True).read_many(images)
    right = sum(exact(r["plate"], p.text) for r, p in zip(labels, spain))
    assert right >= 20, [(r["plate"], p.text) for r, p in zip(labels, spain)]
    assert all(p.readable for p in spain)
    assert sum(p.text.count("?") == 2 for p in spain) >= 22


def test_no_unknown_characters_unless_asked_for(reader, shared_data):
    """On real plates a gap is a logo, a bolt or a group space far more often than a
    hidden character: by default a reading never holds '?'."""
    root, labels = rows(shared_data, "uc3m-es", 10, 37)
    reads = reader.read_many([cv2.imread(str(root / r["image"])) for r in labels])
    assert not any("?" in p.text for p in reads)
    assert any("?" in p.text for p in PlateReader(unknowns=3).read_many(
        [cv2.imread(str(root / r["image"])) for r in labels]))


def test_reads_chinese_crops(reader, shared_data):
    root, labels = rows(shared_data, "cn-crops", 30, 15)
    reads = reader.read_many([cv2.imread(str(root / r["image"])) for r in labels])
    right = sum(p.text == r["plate"] for r, p in zip(labels, reads))
    assert right >= 16, [(r["plate"], p.text) for r, p in zip(labels, reads)]
    # the letters and digits after the province character are read far better
    tails = sum(p.text[-6:] == r["plate"][-6:] for r, p in zip(labels, reads))
    assert tails >= 22


def test_per_character_confidences(reader, shared_data):
    root, labels = rows(shared_data, "cn-crops", 5)
    for r in labels:
        p = reader.read(cv2.imread(str(root / r["image"])))
        assert len(p.char_confidences) == len(p.text)
        assert all(0.0 <= c <= 1.0 for c in p.char_confidences)
        assert 0.0 < p.confidence <= 1.0


def test_two_line_plate_is_split_and_joined(reader, shared_data):
    """A two-row plate built from a real crop: its first two characters above, the
    rest below (as on Chinese rear plates). It must read as the single-row crop does."""
    root, labels = rows(shared_data, "cn-crops", 40)
    done = 0
    for r in labels:
        crop = cv2.imread(str(root / r["image"]))
        if reader.read(crop).text != r["plate"]:
            continue
        h, w = crop.shape[:2]
        up = cv2.resize(crop[:, 2 : int(w * 0.30)], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        down = cv2.resize(crop[:, int(w * 0.30) : w - 1], None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        canvas = np.full((up.shape[0] + down.shape[0] + 12, down.shape[1] + 16, 3), 0, np.uint8)
        canvas[:] = crop[h // 2, 1]  # the plate's own colour
        x0 = (canvas.shape[1] - up.shape[1]) // 2
        canvas[4 : 4 + up.shape[0], x0 : x0 + up.shape[1]] = up
        canvas[8 + up.shape[0] : 8 + up.shape[0] + down.shape[0], 8 : 8 + down.shape[1]] = down
        layouts = [layout for layout, _ in reader.views(canvas)]
        assert "two-row" in layouts
        result = reader.read(canvas)
        assert result.text == r["plate"], (result.text, result.layout)
        assert result.layout == "two-row"
        done += 1
        if done == 2:
            break
    assert done == 2


def test_an_anonymised_two_line_plate_is_read_in_two_bands(shared_data, monkeypatch):
    """Read whole, a two-line plate mixes its rows into one line; cut into two bands
    between the rows the line finder sees, each band keeps the crop's x axis, so its
    boxes still mark where its characters are hidden."""
    import safecity.plates.read as read_module

    root, labels = rows(shared_data, "uc3m-es", 717)
    labels = [r for r in labels if r["image"].endswith(("0304.jpg", "0346.jpg", "0061.jpg", "0216.jpg", "0423.jpg"))]
    images = [cv2.imread(str(root / r["image"])) for r in labels]
    spain = PlateReader(find_hidden=True)
    layouts = {r["image"][-8:-4]: [v for v, _ in spain.hidden_views(im, spain.lettering(im), hidden_boxes(im))[0]]
               for r, im in zip(labels, images)}
    # 0304 and 0346 are two-line plates; 0061 and 0216 one line seen at an angle; 0423 one
    # line above a smaller dealer's line
    assert layouts["0304"] == layouts["0346"] == ["two-row"]
    assert all(layouts[n][0] == "crop" and "two-row" not in layouts[n] for n in ("0061", "0216", "0423"))
    two_line = [im for r, im in zip(labels, images) if r["image"].endswith(("0304.jpg", "0346.jpg"))]
    assert [p.text for p in spain.read_many(two_line)] == ["7?58?ZX", "99?8?PX"]
    monkeypatch.setattr(read_module, "HIDDEN_TWO_ROW", 2.0)  # never split
    assert not any(p.text in ("7?58?ZX", "99?8?PX") for p in spain.read_many(two_line))


def test_anonymising_boxes_are_placed_along_a_tilted_row():
    """A text row seen at an angle is read set upright; its boxes must land where their
    characters do along the upright image, and a box off the row on none."""
    from safecity.plates.read import TextLine, _boxes_along, line_transform

    level = TextLine((80.0, 20.0), (120.0, 30.0), 0.0, 1.0)  # x 20..140, y 5..35
    assert _boxes_along(level, [(50, 8, 16, 24), (150, 8, 16, 24), (60, 60, 10, 10)]) == [(30.0, 46.0)]
    tilted = TextLine((80.0, 40.0), (120.0, 30.0), 20.0, 1.0)
    matrix, w, h = line_transform(tilted)
    # a box drawn on the tilted row 30 px along it from its left end
    angle = np.deg2rad(20.0)
    along, across = np.array([np.cos(angle), np.sin(angle)]), np.array([-np.sin(angle), np.cos(angle)])
    left_end = np.array([80.0, 40.0]) - 60.0 * along
    centre = left_end + 38.0 * along
    box = (int(centre[0] - 8), int(centre[1] - 12), 16, 24)
    (a, b), = _boxes_along(tilted, [box])
    assert abs((a + b) / 2 - 38.0) <= 3.0 and w == 120
    off = centre + 40 * across  # the same box, off the row
    assert _boxes_along(tilted, [(int(off[0] - 8), int(off[1] - 12), 16, 24)]) == []


def test_a_sure_reading_needs_no_other_view(reader, shared_data):
    """Views are read cheapest first: the text row, then the whole crop only when the
    row's reading is not sure (a country format, every character >= SURE_CHAR)."""
    from safecity.plates.read import SURE_CHAR

    root, labels = rows(shared_data, "openalpr-eu", 6)
    plates = PlateRecognizer(reader=reader)
    seen = 0
    for r in labels:
        image = cv2.imread(str(root / r["image"]))
        found = plates.detector.detect(image)
        for crop in plates.crops(image, found.xyxy):
            result = reader.read(crop)
            layouts = [layout for layout, _ in result.views]
            full = reader.rescore(result.views)
            assert full.text == result.text
            sure = result.grammar not in (None, "generic") and min(result.char_confidences, default=0) >= SURE_CHAR
            if sure and "row" in layouts:
                assert "crop" not in layouts
                seen += 1
            elif "row" in layouts:
                assert "crop" in layouts  # not sure: the other views were read too
    assert seen >= 2


def test_blank_crop_is_unreadable_not_an_error(reader):
    blank = np.full((40, 160, 3), 200, np.uint8)
    result = reader.read(blank)
    assert not result.readable and result.text == "" and result.confidence == 0.0
    assert reader.read_many([]) == []


def test_find_and_read_a_real_scene(shared_data):
    root, labels = rows(shared_data, "openalpr-eu", 3, 5)
    plates = PlateRecognizer()
    for r in labels:
        image = cv2.imread(str(root / r["image"]))
        detections = plates.detect(image)
        assert set(detections.class_name) == {"plate"}
        assert len(detections.data["text"]) == len(detections) == len(detections.data["text_confidence"])
    # the labelled plate is found and read in most scenes
    hits = 0
    for r in labels:
        image = cv2.imread(str(root / r["image"]))
        hits += r["plate"] in list(plates.detect(image).data["text"])
    assert hits >= 2


def test_a_plate_found_on_a_second_look_stays_only_if_it_reads_in_a_country_format(monkeypatch):
    from safecity.plates.read import PlateRead, PlateRecognizer
    from safecity.records import Detections

    recognizer = PlateRecognizer()
    assert recognizer.second_look  # on by default with the packaged detector
    found = Detections.from_boxes(np.array([[0, 0, 40, 10], [50, 0, 90, 10], [0, 20, 40, 30]]),
                                  np.array([0.9, 0.6, 0.5]), "plate", second_look=np.array([False, True, True]))
    reads = [PlateRead("", 0.0, []), PlateRead("C0LLINS", 0.9, [0.9] * 7, grammar="generic"),
             PlateRead("2DA044", 0.9, [0.9] * 6, grammar="us")]
    monkeypatch.setattr(recognizer, "read_boxes", lambda image, xyxy, priors=None: reads)
    kept, kept_reads = recognizer.read_found(np.zeros((40, 100, 3), np.uint8), found)
    # a sure plate stays even unread (unreadable plates are counted, never dropped)
    assert [r.text for r in kept_reads] == ["", "2DA044"]
    assert kept.xyxy.tolist() == [[0, 0, 40, 10], [0, 20, 40, 30]]


def test_a_box_is_tightened_to_the_lettering_it_holds():
    from safecity.plates.read import LETTER_BORDER, PlateRead, TextLine

    recognizer = PlateRecognizer()
    lettering = [TextLine((100.0, 50.0), (120.0, 30.0), 0.0, 0.9)]  # crop pixels: x 40-160, y 35-65
    reads = [PlateRead("AB123CD", 0.9, [0.9] * 7, lettering=lettering), PlateRead("", 0.0, [])]
    boxes = np.array([[100, 100, 300, 200], [100, 100, 300, 200]], np.float32)
    tight = recognizer.plate_boxes((720, 1280, 3), boxes, reads)
    border = LETTER_BORDER * 30
    assert np.allclose(tight[0], [140 - border, 135 - border, 260 + border, 165 + border], atol=1.5)
    assert np.array_equal(tight[1], boxes[1])  # nothing read: the detector's box stands
    # a box already inside the lettering's border is left as it is
    inside = np.array([[138, 133, 262, 167]], np.float32)
    filled = [PlateRead("AB123CD", 0.9, [0.9] * 7, lettering=[TextLine((62.0, 17.0), (124.0, 34.0), 0.0, 0.9)])]
    assert np.array_equal(recognizer.plate_boxes((720, 1280, 3), inside, filled), inside)


def test_a_plate_boxed_with_its_surroundings_is_reported_at_the_plate(shared_data):
    """A real plate (its labelled box, tight around the characters) read from a box three
    times its size: the box returned fits the plate far better than the box given."""
    from safecity.evaluation.plates import iou

    root, labels = rows(shared_data, "openalpr-eu", 4, 7)
    recognizer = PlateRecognizer()
    better = 0
    for r in labels:
        image = cv2.imread(str(root / r["image"]))
        x, y, w, h = (int(r[k]) for k in "xywh")
        plate = np.array([x, y, x + w, y + h], np.float32)
        loose = np.array([[x - w, y - h, x + 2 * w, y + 2 * h]], np.float32)
        reads = recognizer.read_boxes(image, loose)
        tight = recognizer.plate_boxes(image.shape, loose, reads)[0]
        assert iou(plate, tight) >= iou(plate, loose[0])
        better += iou(plate, tight) >= 0.3 and iou(plate, loose[0]) < 0.2
    assert better >= 3


def test_readings_of_a_plate_vote_for_their_text():
    """Each view's reading votes for its text with its score: two views that read one
    text outweigh a third that read another a little more surely."""
    from safecity.plates.grammar import Reading

    def reading(text, score):
        return Reading(text, score, score, [score] * len(text), "es", "NNNNCCC", text)

    views = [("crop", reading("1234BCD", 0.5)), ("row", reading("1234BCO", 0.7)), ("crop@1.3", reading("1234BCD", 0.4))]
    chosen = PlateReader._choose(views, "es")
    assert chosen.text == "1234BCD" and chosen.layout == "crop"  # the surer of its two readings speaks for it
    assert PlateReader._choose(views[:2], "es").text == "1234BCO"  # one vote each: the surer wins
    # votes are counted on the text as the country writes it (US: O is 0)
    us = [("crop", Reading("AB0123", 0.5, 0.5, [0.5] * 6, "us", "LLNNNN", "AB0123")),
          ("row", Reading("ABO123", 0.4, 0.4, [0.4] * 6, "us", "LLNNNN", "ABO123")),
          ("crop", Reading("AB8123", 0.8, 0.8, [0.8] * 6, "us", "LLNNNN", "AB8123"))]
    assert PlateReader._choose(us, "us").text == "AB0123"


def test_an_anonymised_crop_is_read_at_more_stretches_with_its_boxes_along(shared_data):
    import safecity.plates.read as read_module

    root, labels = rows(shared_data, "uc3m-es", 717)
    image = cv2.imread(str(root / next(r["image"] for r in labels if r["image"].endswith("0216.jpg"))))
    reader = PlateReader(find_hidden=True)
    boxes = hidden_boxes(image)
    views, placed = reader.hidden_views(image, reader.lettering(image), boxes)
    names = [layout for layout, _ in views]
    stretches = read_module.HIDDEN_STRETCHES
    assert names[:2] == ["crop", "row"] and len(names) == 2 * (1 + len(stretches))
    assert names[2:4] == [f"crop@{stretches[0]}", f"row@{stretches[0]}"]
    wide = dict(zip(names, zip(views, placed)))[f"crop@{stretches[-1]}"]
    scale = wide[0][1][0].shape[1] / image.shape[1]
    assert abs(scale - stretches[-1] / reader.recogniser.stretch) < 0.02
    assert wide[1][0] == [(x * scale, (x + w) * scale) for x, _, w, _ in boxes]
