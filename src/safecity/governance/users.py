"""Who may sign in, with which role, and what each role may do.

The permission table :data:`PERMISSIONS` is the single source of truth: the API and the
console check it on every request, ``docs/permissions.md`` is rendered from it (and a
test fails when the two differ), and ``safecity user permissions`` prints it. Roles are
split so that no one person watches, searches, governs and audits: an admin manages
accounts but sees no footage; only an auditor reads the audit log; nobody edits it.

Passwords are stored as argon2id hashes. Sign-ins open a session whose token is given
to the client once and stored only as its SHA-256, so a copy of the database holds no
usable credential. Every change to a user is written to the audit log.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, Engine, ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from safecity.db import Base, UTCDateTime
from safecity.governance.audit import AuditLog

ROLES = ("viewer", "operator", "supervisor", "auditor", "admin", "terminal")  # terminal: an access-terminal device
MIN_PASSWORD = 10
SESSION_HOURS = 12


class Permission(StrEnum):
    ACCOUNT = "account"
    LIVE_VIEW = "live.view"
    EVENTS_VIEW = "events.view"
    EVENTS_SEARCH = "events.search"
    MEDIA_UNREDACTED = "media.unredacted"
    ALERTS_REVIEW = "alerts.review"
    WATCHLISTS_READ = "watchlists.read"
    WATCHLISTS_PROPOSE = "watchlists.propose"
    WATCHLISTS_EXPIRE = "watchlists.expire"
    WATCHLISTS_APPROVE = "watchlists.approve"
    WATCHLISTS_MANAGE = "watchlists.manage"
    AUDIT_READ = "audit.read"
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"
    SYSTEM_READ = "system.read"
    TERMINAL_READ = "terminal.read"
    TERMINAL_ENROL = "terminal.enrol"
    TERMINAL_MANAGE = "terminal.manage"
    TERMINAL_DEVICE = "terminal.device"


_ALL = frozenset(ROLES)
PERMISSIONS: dict[Permission, frozenset[str]] = {
    Permission.ACCOUNT: _ALL,
    Permission.SYSTEM_READ: _ALL,
    Permission.LIVE_VIEW: frozenset({"viewer", "operator", "supervisor"}),
    Permission.EVENTS_VIEW: frozenset({"viewer", "operator", "supervisor", "auditor"}),
    Permission.EVENTS_SEARCH: frozenset({"operator", "supervisor", "auditor"}),
    Permission.MEDIA_UNREDACTED: frozenset({"supervisor", "auditor"}),
    Permission.ALERTS_REVIEW: frozenset({"operator", "supervisor"}),
    Permission.WATCHLISTS_READ: frozenset({"operator", "supervisor", "auditor"}),
    Permission.WATCHLISTS_PROPOSE: frozenset({"operator", "supervisor"}),
    Permission.WATCHLISTS_EXPIRE: frozenset({"operator", "supervisor"}),
    Permission.WATCHLISTS_APPROVE: frozenset({"supervisor"}),
    Permission.WATCHLISTS_MANAGE: frozenset({"supervisor"}),
    Permission.AUDIT_READ: frozenset({"auditor"}),
    Permission.USERS_READ: frozenset({"admin", "auditor"}),
    Permission.USERS_MANAGE: frozenset({"admin"}),
    Permission.TERMINAL_READ: frozenset({"operator", "supervisor", "auditor"}),
    Permission.TERMINAL_ENROL: frozenset({"operator", "supervisor"}),
    Permission.TERMINAL_MANAGE: frozenset({"supervisor"}),
    Permission.TERMINAL_DEVICE: frozenset({"terminal"}),
}

MEANING: dict[Permission, str] = {
    Permission.ACCOUNT: "sign out, see one's own account, read the API docs",
    Permission.SYSTEM_READ: "camera list and per-camera health (fps, lag, errors)",
    Permission.LIVE_VIEW: "camera wall and the live alert stream",
    Permission.EVENTS_VIEW: "open one event and its snapshot, faces blurred; events-per-hour chart",
    Permission.EVENTS_SEARCH: "search stored events (a reason is required and audited)",
    Permission.MEDIA_UNREDACTED: "see a snapshot without blurring (a reason is required and audited)",
    Permission.ALERTS_REVIEW: "confirm or reject a face or plate alert, with a note of what was checked",
    Permission.WATCHLISTS_READ: "see watchlists and plate lists with their governance fields",
    Permission.WATCHLISTS_PROPOSE: "add a face or plate entry (legal basis, purpose, authoriser, expiry)",
    Permission.WATCHLISTS_EXPIRE: "end an entry now (it stops matching at once)",
    Permission.WATCHLISTS_APPROVE: "approve an entry proposed by someone else (four-eyes rule)",
    Permission.WATCHLISTS_MANAGE: "create lists, delete entries",
    Permission.AUDIT_READ: "read and verify the audit log (nobody can edit it)",
    Permission.USERS_READ: "list users and their roles",
    Permission.USERS_MANAGE: "create users, change roles, disable users, reset passwords",
    Permission.TERMINAL_READ: "see access-terminal sites, their settings and who is enrolled with which consent record (never templates); audited",
    Permission.TERMINAL_ENROL: "enrol a consenting person at a terminal site (consent record required) or withdraw an enrolment",
    Permission.TERMINAL_MANAGE: "create terminal sites, change their thresholds, challenge and lockout settings, lift lockouts",
    Permission.TERMINAL_DEVICE: "an access terminal: get a challenge, submit a verification, fetch its site's templates for offline use, upload door decisions",
}


def can(role: str, permission: Permission) -> bool:
    return role in PERMISSIONS[permission]


def permissions_markdown() -> str:
    """The permission table as Markdown: the text of docs/permissions.md."""
    lines = [
        "# Roles and permissions",
        "",
        "Generated from `safecity.governance.users.PERMISSIONS` by `safecity user permissions`;",
        "a test fails when this file and the code differ. Every API route and console page",
        "except `/api/health`, `/api/auth/login`, `/login` and static files requires one of these",
        "permissions; a test generated from the route table checks each route with every role.",
        "",
        "| permission | " + " | ".join(ROLES) + " | what it allows |",
        "|---|" + "---|" * len(ROLES) + "---|",
    ]
    for permission, roles in PERMISSIONS.items():
        marks = " | ".join("yes" if role in roles else "" for role in ROLES)
        lines.append(f"| `{permission}` | {marks} | {MEANING[permission]} |")
    lines += [
        "",
        "Nobody, admin included, may edit or delete audit records: there is no route for it",
        "and the database refuses UPDATE and DELETE on the audit table.",
        "",
    ]
    return "\n".join(lines)


class UserError(ValueError):
    """A user change the rules refuse; the message says which rule."""


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UserSession(Base):
    """One signed-in client: a console cookie or an API bearer token (stored hashed)."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # console | api
    client: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class Principal:
    """The signed-in user behind a request."""

    user_id: int
    name: str
    role: str
    token_hash: str
    kind: str

    @property
    def actor(self) -> str:
        """How the audit log names this user."""
        return f"user:{self.name}"

    def can(self, permission: Permission) -> bool:
        return can(self.role, permission)


@dataclass(frozen=True)
class UserView:
    id: int
    name: str
    role: str
    active: bool
    created_by: str
    created_at: datetime


def _now() -> datetime:
    return datetime.now(timezone.utc)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


_hasher = PasswordHasher()
# verified when the name is unknown, so that a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise UserError("a password may have at most 1024 characters")


class UserService:
    """Users, passwords and sessions; ``actor`` is who makes the changes (for the audit log)."""

    def __init__(self, engine: Engine, actor: str = "system") -> None:
        self.engine = engine
        self.actor = actor
        self.audit = AuditLog(engine)

    def as_actor(self, actor: str) -> "UserService":
        return UserService(self.engine, actor)

    # --- users -------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, reason: str = "") -> int:
        if not re.fullmatch(r"[A-Za-z0-9_.@-]{2,64}", name):
            raise UserError("a user name has 2 to 64 letters, digits, '_', '.', '@' or '-'")
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        check_password(password)
        now = _now()
        with Session(self.engine) as session, session.begin():
            if session.scalar(select(User.id).where(User.name == name)) is not None:
                raise UserError(f"a user named {name!r} exists already")
            user = User(
                name=name, role=role, password_hash=_hasher.hash(password), active=True, created_by=self.actor,
                created_at=now, updated_at=now,
            )
            session.add(user)
            session.flush()
            user_id = user.id
        self.audit.append(self.actor, "user.create", "user", name, reason, {"role": role})
        return user_id

    def users(self) -> list[UserView]:
        with Session(self.engine) as session:
            rows = session.scalars(select(User).order_by(User.name)).all()
        return [UserView(u.id, u.name, u.role, u.active, u.created_by, u.created_at) for u in rows]

    def get(self, name: str) -> UserView | None:
        return next((u for u in self.users() if u.name == name), None)

    def _change(self, name: str, action: str, reason: str, details: dict, **values) -> None:
        with Session(self.engine) as session, session.begin():
            user = session.scalar(select(User).where(User.name == name))
            if user is None:
                raise UserError(f"no user named {name!r}")
            for key, value in values.items():
                setattr(user, key, value)
            user.updated_at = _now()
            # a changed role, password or state takes effect at once: existing sessions end
            session.execute(
                update(UserSession)
                .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        self.audit.append(self.actor, action, "user", name, reason, details)

    def set_role(self, name: str, role: str, reason: str = "") -> None:
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}")
        before = self.get(name)
        self._change(name, "user.role", reason, {"role": role, "was": before.role if before else None}, role=role)

    def set_active(self, name: str, active: bool, reason: str = "") -> None:
        if not active and self.actor == f"user:{name}":
            raise UserError("you cannot disable your own account")
        self._change(name, "user.enable" if active else "user.disable", reason, {}, active=active)

    def set_password(self, name: str, password: str, reason: str = "") -> None:
        check_password(password)
        self._change(name, "user.password", reason, {}, password_hash=_hasher.hash(password))

    # --- sign-in and sessions ----------------------------------------------------

    def verify(self, name: str, password: str) -> User | None:
        """The active user with this name and password, or None (in constant-ish time)."""
        with Session(self.engine, expire_on_commit=False) as session:
            user = session.scalar(select(User).where(User.name == name))
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None or not user.active:
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            with Session(self.engine) as session, session.begin():
                session.execute(update(User).where(User.id == user.id).values(password_hash=_hasher.hash(password)))
        return user

    def open_session(self, user: User, kind: str, client: str, hours: float = SESSION_HOURS) -> str:
        """A new random token for ``user``; only its hash is stored."""
        token = "sc_" + secrets.token_urlsafe(32)
        now = _now()
        with Session(self.engine) as session, session.begin():
            session.add(
                UserSession(
                    token_hash=token_hash(token), user_id=user.id, kind=kind, client=client[:128], created_at=now,
                    expires_at=now + timedelta(hours=hours),
                )
            )
        return token

    def resolve(self, token: str) -> Principal | None:
        """The principal of a live session token, or None if unknown, expired, revoked or disabled."""
        if not token or len(token) > 200:
            return None
        digest = token_hash(token)
        with Session(self.engine) as session:
            row = session.execute(
                select(UserSession, User)
                .join(User, UserSession.user_id == User.id)
                .where(UserSession.token_hash == digest)
            ).first()
        if row is None:
            return None
        sess, user = row
        if sess.revoked_at is not None or sess.expires_at <= _now() or not user.active:
            return None
        return Principal(user.id, user.name, user.role, digest, sess.kind)

    def revoke(self, digest: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(UserSession)
                .where(UserSession.token_hash == digest, UserSession.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
