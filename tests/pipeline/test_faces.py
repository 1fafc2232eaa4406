"""Faces on a camera that also runs objects: faces are looked for only where people are."""

import csv

import pytest

from safecity.config import parse_config
from safecity.events.store import EventStore
from tests.support.clips import slideshow


@pytest.mark.slow
def test_with_objects_faces_are_searched_only_when_someone_is_there(shared_data, tmp_path):
    from safecity.pipeline.camera import CameraPipeline
    from safecity.sources.video import VideoSource

    plates = shared_data / "plates" / "openalpr-eu"
    with open(plates / "labels.csv") as handle:
        road = [plates / r["image"] for r in list(csv.DictReader(handle))[:2]]
    people = sorted((shared_data / "faces" / "celeba").glob("**/*.jpg"))[:2]
    clip = slideshow(road + people, tmp_path / "mixed.mp4", size=(1280, 720), fill=0.9, seconds_each=2.0)
    store_url = f"sqlite:///{tmp_path / 'safecity.db'}"
    EventStore(store_url).close()
    config = parse_config({"store": {"url": store_url},
                           "cameras": [{"name": "mixed", "source": str(clip), "fps": 5,
                                        "analysers": ["faces", "objects"]}]})
    pipeline = CameraPipeline(config.cameras[0], config)
    faces = pipeline.analysers[1]
    assert faces.name == "faces" and faces.on_people
    road_frames, searched_on_road = 0, 0
    for frame in VideoSource("mixed", str(clip), 5).frames():
        pipeline.process(frame)
        if frame.pts < 2.0 * len(road) - 0.3:
            road_frames += 1
            searched_on_road = faces.frames_searched
    pipeline.flush()
    assert road_frames >= 15
    assert searched_on_road <= road_frames // 3, "faces were looked for on frames without people"
    assert faces.frames_searched - searched_on_road >= 10 and faces.embedded >= 2, "the people were not looked at"
