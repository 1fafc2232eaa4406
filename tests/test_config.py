from pathlib import Path

import pytest

from safecity.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "safecity.yaml"
    path.write_text(text)
    return path


def test_demo_config_is_valid():
    config = load_config(REPO / "demo" / "safecity.yaml")
    assert [c.name for c in config.cameras] == ["parking-lot", "hallway"]
    assert all(c.loop and (REPO / c.source).is_file() for c in config.cameras)


def test_defaults_fill_in():
    config = parse_config({"cameras": [{"name": "gate", "source": "rtsp://cam/1"}]})
    camera = config.cameras[0]
    assert camera.fps == 5.0 and camera.analysers == ["motion"] and not camera.is_file
    assert config.store.url.startswith("sqlite:///")
    assert config.thresholds_for(camera) is config.thresholds


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ("cameras:\n  - name: a\n    source: x.mp4\n    fps: 0\n", "cameras[0].fps", "greater than 0"),
        ("cameras:\n  - name: a\n    source: x.mp4\n    fsp: 5\n", "cameras[0].fsp", "unknown key"),
        ("cameras:\n  - name: a\n", "cameras[0].source", "Field required"),
        ("cameras:\n  - {name: a, source: x}\n  - {name: a, source: y}\n", "cameras", "used twice"),
        ("cameras:\n  - {name: a, source: x, analysers: [ethnicity]}\n", "cameras[0].analysers", "unknown analyser"),
        ("store:\n  url: mysql://x\n", "store.url", "sqlite:// or postgresql://"),
        (
            "cameras:\n  - name: a\n    source: x\n    zones: [{name: z, polygon: [[0, 0], [1, 1]]}]\n",
            "cameras[0].zones[0].polygon",
            "at least 3",
        ),
        ("cameras:\n  - {name: a, source: x, lines: [{name: l, start: [0, 2], end: [1, 1]}]}\n", "cameras[0].lines[0].start[1]", "less than or equal to 1"),
        ("retention:\n  media_days: -1\n", "retention.media_days", "greater than or equal to 1"),
    ],
)
def test_wrong_config_names_key_and_problem(tmp_path, text, key, problem):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert key in message and problem in message, message


def test_broken_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"invalid YAML .* line 3, column 3"):
        load_config(write(tmp_path, "cameras:\n  - name: a\n  source: x\n"))


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_digest_changes_with_settings():
    a = parse_config({"cameras": [{"name": "a", "source": "x"}]})
    b = parse_config({"cameras": [{"name": "a", "source": "x", "fps": 2}]})
    assert a.digest() == parse_config({"cameras": [{"name": "a", "source": "x"}]}).digest()
    assert a.digest() != b.digest()
