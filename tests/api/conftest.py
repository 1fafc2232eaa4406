"""An app over a real temporary store, with one signed-up user per role."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.api.app import create_app
from safecity.events.store import EventStore
from safecity.governance.users import ROLES, User, UserService
from tests.events.test_store import make_events

PASSWORD = "correct horse battery staple"


def camera_health():
    return [
        {
            "name": "gate", "state": "running", "frames": 10, "fps": 5.0, "lag_seconds": 0.1, "errors": 0,
            "reconnects": 0, "events": 3, "last_error": None, "last_frame_at": 1.0,
        }
    ]


@pytest.fixture(scope="session")
def seeded_var(tmp_path_factory) -> Path:
    """A migrated store with the test events and one user per role, named after it.

    Built once: migrations and argon2 hashing take seconds, so each test gets a copy.
    """
    var = tmp_path_factory.mktemp("seed") / "var"
    store = EventStore(f"sqlite:///{var / 'safecity.db'}")
    store.add_events(make_events())
    service = UserService(store.engine, "test:setup")
    for role in ROLES:
        service.add(role, role, PASSWORD, "test set-up")
    with store.engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return var


@pytest.fixture
def store(seeded_var, tmp_path):
    shutil.copytree(seeded_var, tmp_path / "var")
    store = EventStore(f"sqlite:///{tmp_path / 'var' / 'safecity.db'}")
    yield store
    store.close()


@pytest.fixture
def users(store) -> UserService:
    """The users of the seeded store: ``viewer``, ``operator``, … (password :data:`PASSWORD`)."""
    return UserService(store.engine, "test:setup")


def token_for(users: UserService, name: str) -> str:
    """A fresh session token without a password check (fast: no argon2 per request)."""
    with Session(users.engine, expire_on_commit=False) as session:
        user = session.scalar(select(User).where(User.name == name))
    return users.open_session(user, "api", "test")


def bearer(users: UserService, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(users, name)}"}


@pytest.fixture
def app(store, users):
    return create_app(store, camera_health)


@pytest.fixture
def client(app):
    return TestClient(app)
