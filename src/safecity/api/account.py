"""Signing in and out, shared by the API (bearer tokens) and the console (cookies).

Every sign-in, refused sign-in and sign-out is audited. A refusal never says whether
the name or the password was wrong.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from safecity.api.auth import client_address
from safecity.api.context import AppContext
from safecity.governance.users import SESSION_HOURS, Permission, Principal


class LoginRefused(Exception):
    def __init__(self, status: int, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def sign_in(ctx: AppContext, name: str, password: str, client: str, kind: str) -> tuple[str, Principal]:
    """Check the password under the rate limit; a new session token, or :class:`LoginRefused`."""
    name = name.strip()[:64]
    wait = ctx.auth.limiter.retry_after(name, client)
    if wait > 0:
        raise LoginRefused(429, f"too many failed sign-ins: try again in {math.ceil(wait)} s", math.ceil(wait))
    user = ctx.users.verify(name, password[:1024])
    if user is None:
        ctx.auth.limiter.failed(name, client)
        ctx.audit.append(f"anonymous@{client}", "auth.login_failed", "user", name or "-", "", {"via": kind})
        raise LoginRefused(401, "wrong user name or password")
    ctx.auth.limiter.succeeded(name)
    token = ctx.users.open_session(user, kind, client)
    principal = ctx.users.resolve(token)
    assert principal is not None
    ctx.audit.append(principal.actor, "auth.login", "user", user.name, "", {"via": kind, "client": client})
    return token, principal


def sign_out(ctx: AppContext, principal: Principal) -> None:
    ctx.users.revoke(principal.token_hash)
    ctx.audit.append(principal.actor, "auth.logout", "user", principal.name, "", {"via": principal.kind})


class LoginIn(BaseModel):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class Me(BaseModel):
    name: str
    role: str
    permissions: list[str]


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in: int
    user: Me


def me(principal: Principal) -> Me:
    return Me(name=principal.name, role=principal.role, permissions=[p.value for p in Permission if principal.can(p)])


def account_router(ctx: AppContext) -> APIRouter:
    router = APIRouter(prefix="/api/auth", tags=["auth"])

    @router.post("/login", response_model=TokenOut, responses={401: {}, 429: {}})
    def login(body: LoginIn, request: Request) -> TokenOut:
        """Sign in with name and password; returns a bearer token for ``Authorization: Bearer …``."""
        try:
            token, principal = sign_in(ctx, body.name, body.password, client_address(request), "api")
        except LoginRefused as refused:
            headers = {"Retry-After": str(refused.retry_after)} if refused.retry_after else None
            raise HTTPException(refused.status, refused.message, headers=headers) from None
        return TokenOut(token=token, expires_in=SESSION_HOURS * 3600, user=me(principal))

    @router.post("/logout", status_code=204)
    def logout(principal: Principal = Depends(ctx.auth.require(Permission.ACCOUNT))) -> None:
        """End this token's session."""
        sign_out(ctx, principal)

    @router.get("/me", response_model=Me)
    def whoami(principal: Principal = Depends(ctx.auth.require(Permission.ACCOUNT))) -> Me:
        """The signed-in user, role and permissions."""
        return me(principal)

    return router

