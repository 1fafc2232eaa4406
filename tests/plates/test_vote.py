"""Voting over the reads of one tracked vehicle."""

import csv

import cv2
import pytest

from safecity.plates.vote import PlateVote, Read, TrackVotes, vote


def test_more_reads_win():
    v = vote([("1234BCD", 0.9), ("1234BCD", 0.85), ("1234BCO", 0.95)])
    assert v.text == "1234BCD" and v.support == 2 and v.reads == 3
    assert 0 < v.confidence < 1


def test_higher_confidence_wins_a_tie():
    assert vote([("1234BCD", 0.6), ("1234BCB", 0.9)]).text == "1234BCB"


def test_votes_position_by_position():
    v = vote([("1234BCD", 0.8), ("1Z34BCD", 0.8), ("1234BED", 0.8)])
    assert v.text == "1234BCD"


def test_per_character_confidences_count():
    a = Read("1234BCD", 0.8, (0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.2))
    b = Read("1234BCB", 0.7, (0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.95))
    assert vote([a, b]).text == "1234BCB"


def test_unknown_characters_are_filled_by_other_reads():
    v = vote([("12?4BCD", 0.7), ("1234BC?", 0.6), ("12?4BCD", 0.5)])
    assert v.text == "1234BCD"


def test_the_most_supported_length_wins():
    v = vote([("1234BCD", 0.9), ("234BCD", 0.95), ("1234BCD", 0.8)])
    assert v.text == "1234BCD"


def test_best_index_is_the_most_confident_agreeing_read():
    v = vote([("1234BCD", 0.7), ("9999ZZZ", 0.99), ("1234BCD", 0.95), ("1234BCD", 0.8)])
    assert v.text == "1234BCD" and v.best_index == 2


def test_unreadable_track_is_kept_and_counted():
    v = vote([("", 0.0), ("", 0.0), ("", 0.0)], qualities=[0.2, 0.9, 0.5])
    assert isinstance(v, PlateVote) and not v.readable and v.text == ""
    assert v.reads == 3 and v.unreadable_reads == 3 and v.best_index == 1
    votes = TrackVotes()
    votes.add(1, ("", 0.0), 0.5)
    votes.add(2, ("1234BCD", 0.9))
    votes.add(2, ("", 0.0))
    results = votes.finish_all()
    assert not results[1].readable and results[2].text == "1234BCD"
    assert results[2].unreadable_reads == 1
    assert votes.unreadable_tracks == 1 and votes.readable_tracks == 1


def test_no_reads():
    v = vote([])
    assert v.reads == 0 and v.best_index == -1 and not v.readable


def test_normalises_texts():
    assert vote([("1234 bcd", 0.9), ("1234-BCD", 0.8)]).support == 2


@pytest.fixture(scope="module")
def reader():
    from safecity.plates.read import PlateReader

    return PlateReader()


def test_vote_over_degraded_reads_of_real_plates(reader, shared_data):
    """Simulate a track: the same real plate seen sharp, blurred, small and dark.
    The vote must be right at least as often as the single worst view."""
    root = shared_data / "plates" / "openalpr-eu"
    rows = list(csv.DictReader(open(root / "labels.csv")))[4:14]
    right_vote = right_worst = 0
    for r in rows:
        image = cv2.imread(str(root / r["image"]))
        x, y, w, h = (int(r[k]) for k in "xywh")
        crop = image[max(0, y - h // 3) : y + h + h // 3, max(0, x - w // 8) : x + w + w // 8]
        views = [
            crop,
            cv2.GaussianBlur(crop, (0, 0), 1.2),
            cv2.resize(cv2.resize(crop, None, fx=0.6, fy=0.6), (crop.shape[1], crop.shape[0])),
            cv2.convertScaleAbs(crop, alpha=0.6, beta=-20),
        ]
        reads = reader.read_many(views)
        v = vote(reads)
        right_vote += v.text == r["plate"]
        right_worst += min(rd.text == r["plate"] for rd in reads)
        assert v.reads == 4 and 0 <= v.best_index < 4
    assert right_vote >= right_worst
    assert right_vote >= 6
