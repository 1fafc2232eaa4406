"""Authentication and authorisation for every route, API and console alike.

A request is signed in by an ``Authorization: Bearer`` token (API clients) or by the
console's session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS). Each route
declares the one :class:`~safecity.governance.users.Permission` it needs with
``Depends(auth.require(...))``; the test suite walks the route table and fails for any
route that declares none, so a new route cannot be left open by mistake.

Cookies are sent by the browser on its own, so a cookie-authenticated POST must also
come from our own origin (the ``Origin`` header), which stops cross-site form posts
even in browsers that ignore SameSite. Failed sign-ins are rate-limited per name and
per client address: after the limit, even the right password is refused until the
window passes, so guessing cannot go on in the background.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable
from urllib.parse import urlparse

from fastapi import Request

from safecity.governance.users import Permission, Principal, UserService

COOKIE = "safecity_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotSignedIn(Exception):
    """No valid session or token: answered 401 (API) or with the sign-in page (browser)."""


class Forbidden(Exception):
    """Signed in, but the role lacks the permission: answered 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LoginLimiter:
    """Counts failed sign-ins in a sliding window, per user name and per client address."""

    def __init__(
        self,
        per_name: int = 5,
        per_client: int = 20,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_name = per_name
        self.per_client = per_client
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, name: str, client: str) -> float:
        """Seconds until a sign-in may be tried again; 0 when it may be tried now."""
        now = self.clock()
        waits = [0.0]
        with self._lock:
            for key, limit in ((f"name:{name}", self.per_name), (f"client:{client}", self.per_client)):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(times[0] + self.window - now)
        return max(waits)

    def failed(self, name: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (f"name:{name}", f"client:{client}"):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # a flood of made-up names must not exhaust memory
                self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"name:{name}", None)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class Requirement:
    """A route dependency that admits only principals whose role has ``permission``.

    It is a class rather than a closure so that tests can read ``permission`` off the
    route table and check every route with every role.
    """

    def __init__(self, auth: "Auth", permission: Permission) -> None:
        self.auth = auth
        self.permission = permission

    def __call__(self, request: Request) -> Principal:
        principal = self.auth.principal(request)
        if principal is None:
            raise NotSignedIn()
        if not principal.can(self.permission):
            raise Forbidden(f"the {principal.role} role may not do this ({self.permission})")
        request.state.principal = principal
        return principal


class Auth:
    def __init__(self, users: UserService, cookie_secure: bool | None = None) -> None:
        self.users = users
        self.cookie_secure = cookie_secure
        self.limiter = LoginLimiter()

    def principal(self, request: Request) -> Principal | None:
        """Who sent ``request``, from a bearer token or the session cookie; None if nobody valid."""
        header = request.headers.get("authorization", "")
        if header[:7].lower() == "bearer ":
            return self.users.resolve(header[7:].strip())
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        principal = self.users.resolve(cookie)
        if principal is not None and request.method in UNSAFE_METHODS and not same_origin(request):
            raise Forbidden("cross-site request refused: the Origin header does not match this site")
        return principal

    def require(self, permission: Permission) -> Requirement:
        return Requirement(self, permission)

    def secure(self, request: Request) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else request.url.scheme == "https"


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return False
    return urlparse(origin).netloc == request.headers.get("host", "")
