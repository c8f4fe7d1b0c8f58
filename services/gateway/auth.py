"""Bearer tokens (JWT, HS256) and who may call what. A token names the
account and its session_version; what the caller may do comes from the
account as it is now (AccountStates), so disabling an account, ending its
sessions or changing its roles holds within a second on every gateway."""
from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jwt
from nameko.extensions import SharedExtension
from sqlalchemy import select

from services.common.db import make_engine
from services.common.errors import Forbidden, NotAuthenticated
from services.gateway.models import Account

ANY_ROLE = ("admin", "member", "viewer")
ADMIN = ("admin",)
MEMBER_OR_ADMIN = ("admin", "member")
# A wall screen's device token (services/gateway/devices.py) carries this role alone: it reads the
# dashboard and the live feed (WALL), nothing else, not even what a viewer's login may read.
DEVICE = "device"
WALL = (*ANY_ROLE, DEVICE)

MIN_SECRET_LENGTH = 32  # HS256 wants a key of at least 256 bits
# Tokens whose signature this process has checked, kept with their claims.
VERIFIED_TOKENS_KEPT = 4096


def issue_token(secret: str, account_id: str, roles: list[str], ttl_seconds: int,
                session_version: int = 0) -> dict:
    now = int(time.time())
    # `roles` is for the client to read; the gateway authorizes from the account's current roles.
    claims = {"sub": account_id, "roles": roles, "sv": session_version, "iat": now, "exp": now + ttl_seconds}
    return {"access_token": jwt.encode(claims, secret, algorithm="HS256"),
            "token_type": "bearer", "expires_in": ttl_seconds}


@functools.lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def _signed_claims(secret: str, token: str) -> dict:
    """The claims of a token we signed, its expiry not checked here (the
    caller checks it each time); jwt.InvalidTokenError otherwise. Kept per
    token: its signature checks the same every time, and checking it (PyJWT
    parsing and an HMAC) was ~7 % of the gateway's CPU per request under load.
    A refusal is not kept (lru_cache keeps returns only). Read-only: shared."""
    claims = jwt.decode(token, secret, algorithms=["HS256"],
                        options={"require": ["exp", "sub"], "verify_exp": False})
    if not isinstance(claims["exp"], (int, float)) or isinstance(claims["exp"], bool):
        raise jwt.InvalidTokenError("exp is not a time")
    return claims


def principal_from_token(secret: str, token: str, now: float | None = None) -> dict:
    """The token's claims as a principal to check (AccountStates or, for a
    device's token, DeviceStates); a 401 if it is not one of ours or expired."""
    try:
        claims = _signed_claims(secret, token)
    except jwt.InvalidTokenError:
        raise NotAuthenticated("The token is not valid.")
    if claims["exp"] <= (time.time() if now is None else now):  # as PyJWT judges it: expired at exp
        if claims.get("kind") == DEVICE:
            raise NotAuthenticated("This screen's token has expired: ask the office for a new one.",
                                   {"reason": "expired"})
        raise NotAuthenticated("The token has expired: ask for a new one at /api/v1/auth/token.")
    if claims.get("kind") == DEVICE:
        if not isinstance(claims["sub"], str):
            raise NotAuthenticated("The token is not valid.")
        return {"id": claims["sub"], "device": True}
    roles = claims.get("roles")
    session_version = claims.get("sv", 0)  # tokens from before sessions could end: the first session
    if not isinstance(roles, list) or not isinstance(session_version, int) or isinstance(session_version, bool):
        raise NotAuthenticated("The token is not valid.")
    return {"id": claims["sub"], "roles": list(roles), "session_version": session_version}


class AccountState(NamedTuple):
    roles: list[str]
    active: bool
    session_version: int


MAX_STATE_AGE = 0.5  # seconds an account's state may be reused before it is read again


class AccountStates(SharedExtension):
    """Each account's roles, whether it is active, and its session_version, as
    the gateway's database has them, read at most once per MAX_STATE_AGE
    seconds per process (so never older than that on any instance)."""

    def __init__(self, max_age: float = MAX_STATE_AGE):
        self.max_age = max_age
        self.engine = None
        self._seen: dict[str, tuple[float, AccountState | None]] = {}

    def setup(self):
        self.engine = make_engine(self.container.config["DB_URL"], pool_size=4)

    def stop(self):
        if self.engine is not None:
            self.engine.dispose()

    kill = stop

    def state(self, account_id: str, fresh: bool = False) -> AccountState | None:
        now = time.monotonic()
        seen = self._seen.get(account_id)
        if seen is not None and now - seen[0] < self.max_age and not fresh:
            return seen[1]
        with self.engine.connect() as connection:
            row = connection.execute(select(Account.roles, Account.active, Account.session_version)
                                     .where(Account.id == account_id)).first()
        state = AccountState(list(row.roles), bool(row.active), row.session_version) if row else None
        if len(self._seen) > 10_000:  # many accounts, or made-up ids: start afresh
            self._seen.clear()
        self._seen[account_id] = (now, state)
        return state

    def principal(self, claims: dict) -> dict:
        """The token's principal with the account's current roles; a 401 if
        the account is gone or disabled, or the token's session has ended."""
        state = self.state(claims["id"])
        if state is None or not state.active or state.session_version != claims["session_version"]:
            state = self.state(claims["id"], fresh=True)  # what was seen may be older than a new token
        if state is None:
            raise NotAuthenticated("The token is not valid.")
        if not state.active:
            raise NotAuthenticated("This account is disabled: ask the office.")
        if state.session_version != claims["session_version"]:
            raise NotAuthenticated("This session has ended: log in again.")
        return {"id": claims["id"], "roles": state.roles}


def bearer_token(request, query_allowed: bool = False) -> str | None:
    """The token from `Authorization: Bearer`, or, where `query_allowed` (event
    streams: a browser's EventSource cannot send headers), from `?access_token=`."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return (request.args.get("access_token") or None) if query_allowed else None


def authorize(principal: dict, roles: tuple[str, ...]):
    if not set(principal["roles"]) & set(roles):
        raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.")
