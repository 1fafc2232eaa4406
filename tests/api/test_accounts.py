"""Sign-in, sessions, rate limiting and user administration, with their audit trail."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from safecity.api.auth import COOKIE, LoginLimiter
from safecity.governance.audit import AuditLog
from safecity.governance.users import User, UserService
from tests.api.conftest import PASSWORD, bearer


def login(client, name, password=PASSWORD):
    return client.post("/api/auth/login", json={"name": name, "password": password})


def test_passwords_are_stored_as_argon2id_hashes_and_tokens_only_as_sha256(store, users, client):
    with Session(store.engine) as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "operator"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    token = login(client, "operator").json()["token"]
    with store.engine.connect() as connection:
        hashes = connection.execute(text("SELECT token_hash FROM user_sessions")).scalars().all()
    assert token not in hashes and all(len(h) == 64 for h in hashes)


def test_api_sign_in_gives_a_bearer_token_and_sign_out_ends_it(client, store):
    body = login(client, "operator").json()
    assert body["token_type"] == "bearer" and body["user"] == {
        "name": "operator", "role": "operator", "permissions": body["user"]["permissions"],
    }
    assert "events.search" in body["user"]["permissions"] and "audit.read" not in body["user"]["permissions"]
    auth = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/auth/me", headers=auth).json()["name"] == "operator"
    assert client.post("/api/auth/logout", headers=auth).status_code == 204
    assert client.get("/api/auth/me", headers=auth).status_code == 401
    actions = [r.action for r in AuditLog(store.engine).tail(2)]
    assert actions == ["auth.login", "auth.logout"]


def test_wrong_password_and_unknown_user_are_refused_alike_and_audited(client, store):
    wrong = login(client, "operator", "not the password")
    unknown = login(client, "mallory", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong user name or password"}
    records = [r.as_dict() for r in AuditLog(store.engine).tail(2)]
    assert [r["action"] for r in records] == ["auth.login_failed"] * 2
    assert [r["object_id"] for r in records] == ["operator", "mallory"]


def test_failed_sign_ins_are_rate_limited_even_for_the_right_password(client):
    for _ in range(5):
        assert login(client, "operator", "guess guess guess").status_code == 401
    refused = login(client, "operator")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert login(client, "viewer").status_code == 200  # other users are not locked out


def test_limiter_window_passes_and_per_client_limit_holds():
    now = [1000.0]
    limiter = LoginLimiter(per_name=2, per_client=3, window_seconds=60, clock=lambda: now[0])
    limiter.failed("a", "1.2.3.4")
    limiter.failed("a", "1.2.3.4")
    assert limiter.retry_after("a", "5.6.7.8") == 60
    now[0] += 61
    assert limiter.retry_after("a", "1.2.3.4") == 0
    for name in ("b", "c", "d"):
        limiter.failed(name, "9.9.9.9")
    assert limiter.retry_after("e", "9.9.9.9") > 0  # one address trying many names
    assert limiter.retry_after("e", "1.1.1.1") == 0


def test_console_cookie_is_httponly_strict_and_secure_over_https(client):
    response = client.post("/login", data={"name": "viewer", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/live"
    cookie = response.headers["set-cookie"].lower()
    assert f"{COOKIE}=sc_" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain http on a test host
    from fastapi.testclient import TestClient

    secure_client = TestClient(client.app, base_url="https://console.example")
    response = secure_client.post("/login", data={"name": "viewer", "password": PASSWORD}, follow_redirects=False)
    assert "secure" in response.headers["set-cookie"].lower()


def test_cookie_posts_from_another_site_are_refused(client, store):
    client.post("/login", data={"name": "admin", "password": PASSWORD})
    form = {"name": "eve", "role": "admin", "password": "long enough password", "reason": "csrf attempt"}
    cross = client.post("/users", data=form, headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert cross.status_code == 403
    missing = client.post("/users", data=form, follow_redirects=False)
    assert missing.status_code == 403
    assert UserService(store.engine).get("eve") is None
    ours = client.post("/users", data=form, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert ours.status_code == 303 and UserService(store.engine).get("eve").role == "admin"


def test_user_changes_are_audited_and_end_the_users_sessions(client, users, store):
    admin = bearer(users, "admin")
    created = client.post(
        "/api/users", headers=admin, json={"name": "carol", "role": "viewer", "password": "long enough pw", "reason": "new hire"}
    )
    assert created.status_code == 201
    carol = {"Authorization": f"Bearer {login(client, 'carol', 'long enough pw').json()['token']}"}
    assert client.get("/api/auth/me", headers=carol).json()["role"] == "viewer"

    assert client.patch("/api/users/carol", headers=admin, json={"role": "operator", "reason": "promotion"}).status_code == 204
    assert client.get("/api/auth/me", headers=carol).status_code == 401  # role changed: signed out
    carol = {"Authorization": f"Bearer {login(client, 'carol', 'long enough pw').json()['token']}"}
    assert client.get("/api/auth/me", headers=carol).json()["role"] == "operator"

    assert client.patch("/api/users/carol", headers=admin, json={"active": False, "reason": "left"}).status_code == 204
    assert client.get("/api/auth/me", headers=carol).status_code == 401
    assert login(client, "carol", "long enough pw").status_code == 401

    records = [r.as_dict() for r in AuditLog(store.engine).records() if r.object_type == "user" and r.object_id == "carol"]
    changes = [(r["action"], r["actor"], r["reason"]) for r in records if r["action"].startswith("user.")]
    assert changes == [
        ("user.create", "user:admin", "new hire"),
        ("user.role", "user:admin", "promotion"),
        ("user.disable", "user:admin", "left"),
    ]
    role_change = next(r for r in records if r["action"] == "user.role")
    assert role_change["details"] == {"role": "operator", "was": "viewer"}


def test_user_rules(client, users):
    admin = bearer(users, "admin")

    def add(**body):
        return client.post("/api/users", headers=admin, json={"reason": "test", "password": "long enough pw", **body})

    assert add(name="x y", role="viewer").status_code == 400
    assert add(name="dave", role="god").status_code == 400
    assert add(name="dave", role="viewer", password="short").status_code == 400
    assert add(name="operator", role="viewer").status_code == 400  # exists
    assert add(name="dave", role="viewer", reason="").status_code == 400
    assert client.patch("/api/users/nobody", headers=admin, json={"role": "viewer", "reason": "x y z"}).status_code == 404
    own = client.patch("/api/users/admin", headers=admin, json={"active": False, "reason": "oops"})
    assert own.status_code == 400 and "your own" in own.json()["detail"]
    listed = client.get("/api/users", headers=bearer(users, "auditor")).json()
    assert {u["name"] for u in listed} >= {"viewer", "operator", "supervisor", "auditor", "admin"}
    assert all("password" not in str(u) for u in listed)


def test_audit_log_is_read_by_auditors_and_the_reading_is_recorded(client, users, store):
    auditor = bearer(users, "auditor")
    page = client.get("/api/audit", params={"action": "user."}, headers=auditor).json()
    assert page["items"] and all(r["action"].startswith("user.") for r in page["items"])
    assert AuditLog(store.engine).tail(1)[0].action == "audit.read"
    assert client.get("/api/audit/verify", headers=auditor).json()["ok"] is True
    assert client.get("/api/audit", headers=bearer(users, "admin")).status_code == 403
