"""The command line, run as a user runs it: a real process, real clips."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from safecity.sources.video import VideoSource
from tests.support.clips import truncate

REPO = Path(__file__).resolve().parents[1]
SAFECITY = [sys.executable, "-m", "safecity.cli"]


def safecity(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    return subprocess.run([*SAFECITY, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=environment)


@pytest.mark.parametrize(
    "command",
    [
        [], ["run"], ["analyze"], ["audit"], ["audit", "verify"], ["audit", "tail"], ["audit", "checkpoint"], ["audit", "export"], ["config", "check"],
        ["db", "upgrade"], ["eval"], ["eval", "faces"], ["eval", "fairness"], ["eval", "plates"],
        ["eval", "counting"], ["watchlist"], ["watchlist", "create"], ["watchlist", "add"], ["watchlist", "list"],
        ["watchlist", "expire"], ["watchlist", "approve"], ["watchlist", "remove"], ["retention"], ["retention", "run"],
        ["user"], ["user", "add"], ["user", "list"], ["user", "set-role"], ["user", "disable"], ["user", "enable"],
        ["user", "password"], ["user", "permissions"], ["bench"], ["bench", "search"], ["bench", "pipeline"], ["bench", "plates"],
        ["incident"], ["incident", "open"], ["incident", "search"], ["incident", "close"], ["export"], ["report"],
    ],
)
def test_every_command_has_help(command, tmp_path):
    result = safecity(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0 and "Usage" in result.stdout


@pytest.mark.slow
def test_analyze_real_clip_stores_events(people_clip, tmp_path):
    result = safecity("analyze", str(people_clip), "--camera", "hallway", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "events in one-by-one-person-detection.mp4" in result.stdout
    assert "frames analysed: 69" in result.stdout  # 139 s at 5 fps

    store = EventStore(f"sqlite:///{tmp_path / 'var' / 'safecity.db'}")
    rows, total = store.search(EventQuery(limit=500))
    # people walk through one at a time, with empty room between them
    assert 2 <= total <= 40
    assert all(r.camera == "hallway" and r.type == "motion" and r.end_time is not None for r in rows)
    assert all(r.end_time >= r.start_time for r in rows)
    assert all(store.snapshot_path(r).is_file() for r in rows)
    assert f"{total} events in" in result.stdout
    # the room is empty for the clip's first six seconds
    source = VideoSource("x", str(people_clip), 1)
    next(source.frames())
    first = min(r.start_time for r in rows).timestamp()
    assert 4.0 < first - source.info.start_ts < 10.0
    record = AuditLog(store.engine).tail(1)[0].as_dict()
    assert record["action"] == "video.analyze" and record["details"]["stored"] == total
    store.close()

    again = safecity("analyze", str(people_clip), "--camera", "hallway", cwd=tmp_path)
    assert again.returncode == 0 and "newly stored: 0" in again.stdout


@pytest.mark.parametrize("kind", ["garbage", "truncated", "missing"])
def test_broken_video_gives_clear_error_and_exit_code(kind, car_clip, tmp_path):
    video = tmp_path / "broken.mp4"
    if kind == "garbage":
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400)
    elif kind == "truncated":
        truncate(car_clip, video, 0.4)
    result = safecity("analyze", str(video), cwd=tmp_path)
    assert result.returncode == 2
    assert "error:" in result.stderr and "broken.mp4" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bad_config_stops_with_key_and_problem(tmp_path):
    config = tmp_path / "safecity.yaml"
    config.write_text("cameras:\n  - name: a\n    source: x.mp4\n    fps: -3\n")
    result = safecity("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "cameras[0].fps" in result.stderr and "greater than 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_plate_list_commands_require_governance_and_are_audited(tmp_path):
    assert safecity("watchlist", "create", "stolen", "--kind", "plate", "--reason", "feed", cwd=tmp_path).returncode == 0
    fields = ["--label", "van", "--plate", "AB12CDE", "--purpose", "recover", "--authoriser", "Insp. Doe"]
    missing = safecity("watchlist", "add", "stolen", *fields, "--expires", "2099-01-01", "--reason", "r", cwd=tmp_path)
    assert missing.returncode == 2 and "--legal-basis" in missing.stderr
    ok = safecity(
        "watchlist", "add", "stolen", *fields, "--legal-basis", "Act s.1", "--expires", "2099-01-01", "--reason", "r",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    listed = safecity("watchlist", "list", cwd=tmp_path)
    assert "AB12CDE" in listed.stdout and "awaiting approval" in listed.stdout
    self_approval = safecity("watchlist", "approve", "1", "--reason", "ok", cwd=tmp_path)
    assert self_approval.returncode == 2 and "four eyes" in self_approval.stderr
    second = safecity("watchlist", "approve", "1", "--reason", "ok", cwd=tmp_path, env={"SAFECITY_ACTOR": "cli:bob"})
    assert second.returncode == 0, second.stderr
    assert "active" in safecity("watchlist", "list", cwd=tmp_path).stdout
    assert safecity("watchlist", "expire", "1", "--reason", "found", cwd=tmp_path).returncode == 0
    assert "expired" in safecity("watchlist", "list", cwd=tmp_path).stdout
    verify = safecity("audit", "verify", cwd=tmp_path)
    assert verify.returncode == 0 and "4 records" in verify.stdout
