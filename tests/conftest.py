"""Shared fixtures: the real data beside the clone, stores on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SAFECITY_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    data = SHARED / "data"
    if not data.is_dir():
        pytest.fail(f"the shared evaluation data is missing: expected {data} (set SAFECITY_SHARED)")
    return data


@pytest.fixture(scope="session")
def car_clip(shared_data: Path) -> Path:
    return shared_data / "video" / "car-detection.mp4"


@pytest.fixture(scope="session")
def people_clip(shared_data: Path) -> Path:
    return shared_data / "video" / "one-by-one-person-detection.mp4"


@pytest.fixture(scope="session")
def short_clip(car_clip: Path, tmp_path_factory) -> Path:
    """The first 4 s of the parking-lot clip: a car drives in."""
    from tests.support.clips import cut_clip

    return cut_clip(car_clip, tmp_path_factory.mktemp("clips") / "car-4s.mp4", 4.0)


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 16 (with pgvector) from the pgserver package, for the session."""
    import pgserver

    root = Path(tempfile.mkdtemp(prefix="safecity-pg-"))
    server = pgserver.get_server(root, cleanup_mode="stop")
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.psql(f"CREATE DATABASE {name};")
    return pg_server.get_uri(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path: Path) -> str:
    """Run a test once on the embedded SQLite store and once on real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'safecity.db'}"
    return request.getfixturevalue("pg_url")
