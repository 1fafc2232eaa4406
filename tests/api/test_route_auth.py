"""Authentication and roles, checked on every route of the route table.

The cases are generated from the app's routes, so a route added later is checked
too: it must either be one of the few public routes listed here or declare exactly
one permission, and then an anonymous caller gets 401, every role outside the
permission's row of the table gets 403 and every role inside it gets through.
"""

from __future__ import annotations

import re

import pytest

from safecity.api.app import create_app, route_table
from safecity.events.store import EventStore
from safecity.governance.users import PERMISSIONS, ROLES
from tests.api.conftest import bearer

PUBLIC = {("/api/health", "GET"), ("/api/auth/login", "POST"), ("/login", "GET"), ("/login", "POST")}
STATIC_MOUNT = "/static"


def _routes():
    app = create_app(EventStore("sqlite://", media_dir="unused", migrate=False))
    return [(info.path, method, info.permissions) for info in route_table(app) for method in sorted(info.methods)]


ROUTES = _routes()
GUARDED = [(path, method, perms[0]) for path, method, perms in ROUTES if (path, method) not in PUBLIC]


def concrete(path: str) -> str:
    """A real URL for a route pattern: ids of things that exist, so allowed roles reach real code."""
    path = path.replace("{event_id}", "1").replace("{entry_id}", "1")
    return re.sub(r"\{[^}]+\}", "gate", path)


def call(client, method: str, path: str, headers: dict[str, str] | None = None):
    return client.request(method, concrete(path), headers=headers or {})


def test_the_route_table_is_complete_and_every_route_is_guarded_or_listed_public():
    assert len(ROUTES) > 30
    for path, method, perms in ROUTES:
        if (path, method) in PUBLIC:
            assert perms == (), f"{method} {path} is public and should need nothing"
        else:
            assert len(perms) == 1, f"{method} {path} must declare exactly one permission, has {perms}"
    public_seen = {(path, method) for path, method, _ in ROUTES} & PUBLIC
    assert public_seen == PUBLIC
    # the only routes without methods (so without a permission) are the static files mounts:
    # the console's assets and Swagger UI's (public: no data in them)
    assert sorted(_mount_paths()) == sorted([STATIC_MOUNT, "/docs-assets"])


def _mount_paths():
    app = create_app(EventStore("sqlite://", media_dir="unused", migrate=False))
    return [info.path for info in route_table(app) if not info.methods]


@pytest.fixture
def guarded_client(client, app):
    app.state.ctx.bus.closed = True  # the live stream then ends at once instead of streaming forever
    return client


@pytest.mark.parametrize("path, method, permission", GUARDED, ids=[f"{m} {p}" for p, m, _ in GUARDED])
def test_anonymous_gets_401(guarded_client, path, method, permission):
    response = call(guarded_client, method, path)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    bad = call(guarded_client, method, path, {"Authorization": "Bearer sc_not-a-real-token"})
    assert bad.status_code == 401


@pytest.mark.parametrize("path, method, permission", GUARDED, ids=[f"{m} {p}" for p, m, _ in GUARDED])
def test_each_role_gets_403_or_through_exactly_as_the_table_says(guarded_client, users, path, method, permission):
    for role in ROLES:
        response = call(guarded_client, method, path, bearer(users, role))
        if role in PERMISSIONS[permission]:
            assert response.status_code not in (401, 403), f"{role} refused: {response.status_code} {response.text[:200]}"
        else:
            assert response.status_code == 403, f"{role} let through: {response.status_code}"


def test_public_routes_answer_without_sign_in(client):
    assert client.get("/api/health").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/static/console.css").status_code == 200
    assert client.post("/api/auth/login", json={"name": "nobody", "password": "x" * 12}).status_code == 401


def test_nobody_can_change_the_audit_log():
    audit_routes = {(p, m) for p, m, _ in ROUTES if "audit" in p}
    assert audit_routes and all(m == "GET" for _, m in audit_routes)


def test_a_browser_without_a_session_is_sent_to_sign_in(client):
    response = client.get("/search?camera=gate", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/search"
