"""Bearer tokens (JWT, HS256) and who may call what."""
from __future__ import annotations

import time

import jwt

from services.common.errors import Forbidden, NotAuthenticated

ANY_ROLE = ("admin", "member", "viewer")
ADMIN = ("admin",)
MEMBER_OR_ADMIN = ("admin", "member")

MIN_SECRET_LENGTH = 32  # HS256 wants a key of at least 256 bits


def issue_token(secret: str, account_id: str, roles: list[str], ttl_seconds: int) -> dict:
    now = int(time.time())
    claims = {"sub": account_id, "roles": roles, "iat": now, "exp": now + ttl_seconds}
    return {"access_token": jwt.encode(claims, secret, algorithm="HS256"),
            "token_type": "bearer", "expires_in": ttl_seconds}


def principal_from_token(secret: str, token: str) -> dict:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise NotAuthenticated("The token has expired: ask for a new one at /api/v1/auth/token.")
    except jwt.InvalidTokenError:
        raise NotAuthenticated("The token is not valid.")
    roles = claims.get("roles")
    if not isinstance(roles, list):
        raise NotAuthenticated("The token is not valid.")
    return {"id": claims["sub"], "roles": roles}


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
