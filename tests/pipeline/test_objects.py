"""People and vehicles on the two real clips: tracked once each, counted once per crossing."""

from collections import Counter

import pytest

from safecity.config import parse_config
from safecity.engines.offline import analyze_file


@pytest.mark.slow
def test_every_car_crossing_the_parking_lot_is_counted_once(car_clip):
    # checked by eye: four cars pass the middle of the lot, two upwards, two downwards
    config = parse_config(
        {
            "thresholds": {"count_interval_seconds": 60},
            "cameras": [
                {"name": "lot", "source": str(car_clip), "analysers": ["objects"],
                 "lines": [{"name": "mid", "start": [0.0, 0.5], "end": [1.0, 0.5]}]}
            ],
        }
    )
    result = analyze_file(config.cameras[0], config, store=None)
    objects = [e for e in result.events if e.type == "object"]
    crossings = [e for e in result.events if e.type == "line_crossing"]
    assert len(objects) == 4 and all(e.attributes["family"] == "vehicle" and e.end_ts for e in objects)
    assert Counter(e.attributes["direction"] for e in crossings) == {"in": 2, "out": 2}
    assert len({e.attributes["track_id"] for e in crossings}) == 4  # one crossing per car
    (count,) = [e for e in result.events if e.type == "count"]
    assert count.attributes["lines"]["mid"] == {"in": {"vehicle": 2}, "out": {"vehicle": 2}}


@pytest.mark.slow
def test_people_walking_through_one_by_one_keep_one_track_each(people_clip):
    config = parse_config(
        {
            "cameras": [
                {"name": "hall", "source": str(people_clip), "analysers": ["objects"],
                 "zones": [{"name": "floor", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}]}
            ]
        }
    )
    result = analyze_file(config.cameras[0], config, store=None)
    people = [e for e in result.events if e.type == "object"]
    assert 5 <= len(people) <= 7 and all(e.label == "person" for e in people)
    assert all(e.snapshot is not None and e.end_ts - e.start_ts > 5 for e in people)
    dwells = [e for e in result.events if e.type == "zone_dwell"]
    assert dwells and all(e.attributes["zone"] == "floor" and e.attributes["seconds"] > 0 for e in dwells)
