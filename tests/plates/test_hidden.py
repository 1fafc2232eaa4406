"""Anonymising boxes: found in the image alone, on anonymised crops only."""

import csv

import cv2
import numpy as np

import safecity.plates.hidden as hidden_module
from safecity.plates.hidden import hidden_boxes


def rows(shared_data, name, n, step=1):
    root = shared_data / "plates" / name
    return root, list(csv.DictReader(open(root / "labels.csv", encoding="utf-8")))[::step][:n]


def test_hidden_boxes_are_found_on_anonymised_crops_only(shared_data):
    root, labels = rows(shared_data, "uc3m-es", 40, 17)
    found = [len(hidden_boxes(cv2.imread(str(root / r["image"])))) for r in labels]
    assert sum(n == 2 for n in found) >= 28  # two boxes on every plate of this set
    root, labels = rows(shared_data, "cn-crops", 40, 11)
    assert sum(bool(hidden_boxes(cv2.imread(str(root / r["image"])))) for r in labels) <= 2


def test_a_lone_box_is_looked_for_again(shared_data, monkeypatch):
    root, labels = rows(shared_data, "uc3m-es", 717)
    images = [cv2.imread(str(root / r["image"])) for r in labels]
    wanted = [r["plate"].count("?") for r in labels]

    def counts():
        return [len(hidden_boxes(image)) for image in images]

    with_search = counts()
    monkeypatch.setattr(hidden_module, "_boxes_like", lambda crop, box: [])
    without = counts()
    right = lambda found: sum(n == k for n, k in zip(found, wanted))  # noqa: E731
    too_many = lambda found: sum(n > k for n, k in zip(found, wanted))  # noqa: E731
    assert right(with_search) >= right(without) + 8
    assert too_many(with_search) <= too_many(without)


def test_boxes_on_dark_crops_are_found_by_brightness(shared_data, monkeypatch):
    """On dark night crops a box and the plate around it merge at the colour levels;
    brightness alone parts them, and only pairs of alike boxes count."""
    root, labels = rows(shared_data, "uc3m-es", 717)
    names = ("0110.jpg", "0118.jpg", "0142.jpg")
    dark = [cv2.imread(str(root / r["image"])) for r in labels if r["image"].endswith(names)]
    assert [len(hidden_boxes(c)) for c in dark] == [2, 2, 2]
    monkeypatch.setattr(hidden_module, "LUMA_FLATNESS", ())
    assert [len(hidden_boxes(c)) for c in dark] == [0, 0, 0]


def test_a_box_blurred_by_jpeg_noise_is_found_when_it_matches_the_clean_ones():
    rng = np.random.default_rng(0)
    crop = np.clip(rng.normal(200, 12, (40, 160, 3)), 0, 255).astype(np.uint8)  # textured: never flat
    crop[6:34, 40:56] = 128  # a clean box
    crop[6:34, 100:116] = (128 + rng.integers(-4, 5, (28, 16, 1))).astype(np.uint8)  # the same box, noisier
    crop[20:34, 130:140] = (90 + rng.integers(-4, 5, (14, 10, 1))).astype(np.uint8)  # smaller: not a box
    assert [b[0] for b in hidden_boxes(crop)] == [40, 100]
    crop[6:34, 40:56] = crop[6:34, 100:116]  # two noisy boxes alike: both
    assert [b[0] for b in hidden_boxes(crop)] == [40, 100]
    crop[6:34, 40:56] = np.clip(rng.normal(200, 12, (28, 16, 3)), 0, 255)  # one noisy box alone: nothing guessed
    assert hidden_boxes(crop) == []


def test_a_lone_box_finds_its_noisier_twin_and_nothing_else():
    rng = np.random.default_rng(1)
    crop = np.clip(rng.normal(200, 12, (48, 160, 3)), 0, 255).astype(np.uint8)  # textured: never flat
    crop[6:34, 40:56] = 128  # a clean box
    crop[12:40, 100:116] = (140 + rng.integers(-4, 5, (28, 16, 1))).astype(np.uint8)  # lower (a tilted plate), noisier
    crop[28:44, 130:146] = 128  # the same grey, too small and off the row: not a box of this plate
    found = hidden_boxes(crop, flatness=(6,))
    # (placed to within the inside's border, a fifth of the box)
    assert found[0][0] == 40 and abs(found[1][0] - 100) <= 3 and abs(found[1][1] - 12) <= 5
    crop[6:34, 60:76] = (128 + rng.integers(-6, 7, (28, 16, 1))).astype(np.uint8)  # a noisier candidate still
    twin = hidden_module._boxes_like(crop, (40, 6, 16, 28))
    assert len(twin) == 1 and abs(twin[0][0] - 100) <= 3  # only the flattest window is taken
    two_line = np.clip(rng.normal(200, 12, (80, 100, 3)), 0, 255).astype(np.uint8)
    two_line[6:34, 40:56] = 128
    two_line[44:72, 42:58] = (150 + rng.integers(-4, 5, (28, 16, 1))).astype(np.uint8)  # right below: the other row
    twin = hidden_module._boxes_like(two_line, (40, 6, 16, 28))
    assert len(twin) == 1 and abs(twin[0][0] - 42) <= 3 and abs(twin[0][1] - 44) <= 5
    crop[12:40, 100:116] = 60  # a flat patch of a far other colour is no twin
    crop[6:34, 60:76] = np.clip(rng.normal(200, 12, (28, 16, 3)), 0, 255)
    assert hidden_module._boxes_like(crop, (40, 6, 16, 28)) == []


def test_among_three_boxes_or_more_one_unlike_the_others_is_dropped():
    rng = np.random.default_rng(2)
    crop = np.clip(rng.normal(200, 12, (40, 200, 3)), 0, 255).astype(np.uint8)  # textured: never flat
    for x in (20, 60, 100):
        crop[6:34, x : x + 16] = 128  # the anonymising boxes, one grey
    crop[6:34, 150:166] = 245  # a flat white patch of the plate, box-sized
    assert [b[0] for b in hidden_boxes(crop)] == [20, 60, 100]
    crop[6:34, 150:166] = 130  # a fourth box of the same grey stays
    assert [b[0] for b in hidden_boxes(crop)] == [20, 60, 100, 150]


def test_boxes_unlike_the_others_are_dropped_on_real_crops(shared_data, monkeypatch):
    root, labels = rows(shared_data, "uc3m-es", 717)
    images = [cv2.imread(str(root / r["image"])) for r in labels]
    wanted = [r["plate"].count("?") for r in labels]
    pruned = [len(hidden_boxes(image)) for image in images]
    monkeypatch.setattr(hidden_module, "_drawn_alike", lambda crop, boxes: boxes)
    kept = [len(hidden_boxes(image)) for image in images]
    assert sum(n > k for n, k in zip(pruned, wanted)) <= sum(n > k for n, k in zip(kept, wanted)) - 5
    assert sum(n == k for n, k in zip(pruned, wanted)) > sum(n == k for n, k in zip(kept, wanted))


def test_a_lone_box_finds_a_twin_much_noisier_than_itself():
    """A box drawn over a character in a noisy part of the image carries more JPEG noise
    than its clean twin: the twin's spread may exceed the clean box's by LIKE_FLOOR."""
    rng = np.random.default_rng(4)
    crop = np.clip(rng.normal(200, 20, (40, 160, 3)), 0, 255).astype(np.uint8)  # textured: never flat
    crop[6:34, 40:56] = 128  # a clean box
    crop[6:34, 100:116] = (128 + rng.integers(-14, 15, (28, 16, 1))).astype(np.uint8)  # its twin, noisy
    found = hidden_boxes(crop)
    assert len(found) == 2 and found[0][0] == 40 and abs(found[1][0] - 100) <= 3


def test_a_box_left_alone_among_patches_unlike_it_is_looked_for_again():
    """Three flat patches, two of them far from the median colour: the odd-box test
    leaves one, which then gets the twin search a box found alone gets."""
    rng = np.random.default_rng(5)
    crop = np.clip(rng.normal(200, 12, (40, 200, 3)), 0, 255).astype(np.uint8)  # textured: never flat
    crop[6:34, 20:36] = 140  # a box over a dark character
    crop[6:34, 100:116] = 175  # a box over a light one
    crop[6:34, 150:166] = (230 + rng.integers(-2, 3, (28, 16, 1))).astype(np.uint8)  # the plate's white, flat
    found = hidden_boxes(crop)
    # (the twin placed to within the inside's border, a fifth of the box)
    assert len(found) == 2 and abs(found[0][0] - 20) <= 3 and abs(found[0][1] - 6) <= 5 and found[1][0] == 100
