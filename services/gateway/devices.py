"""Wall screens' device tokens: the office issues one per screen (POST
/devices), lists them (GET /devices) and revokes one (DELETE /devices/{id}).

A device token is a signed token (the gateway's JWT secret) naming a row of
`devices`; the token is shown once and never stored. It carries the role
`device` alone, which only the dashboard's summary and the live feed admit. As
with an account's tokens, what counts is the row as it is now (DeviceStates,
read at most every MAX_STATE_AGE seconds): a revoked or expired screen is
refused (401) within a second on every gateway, and its open feed is closed."""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import NamedTuple

import jwt
from nameko.extensions import SharedExtension
from sqlalchemy import select, update

from services.common.clock import naive_utcnow
from services.common.db import make_engine
from services.common.errors import NotAuthenticated, NotFound
from services.common.pagination import paginate
from services.gateway.auth import DEVICE, MAX_STATE_AGE
from services.gateway.models import AuditEntry, Device

DEFAULT_DAYS = 365  # a screen set up once a year, not every 12 hours
MAX_DAYS = 730
SEEN_EVERY = 60  # seconds: how often a device's last_seen_at is written at most, per process


def status(device: Device, now: datetime | None = None) -> str:
    if device.revoked_at is not None:
        return "revoked"
    return "expired" if device.expires_at <= (now or naive_utcnow()) else "active"


def view(device: Device) -> dict:
    """What the office sees of a device (never its token)."""
    return {"id": device.id, "name": device.name, "created_by": device.created_by,
            "created_at": device.created_at, "expires_at": device.expires_at,
            "revoked_at": device.revoked_at, "last_seen_at": device.last_seen_at, "status": status(device)}


def issue(session, secret: str, actor_id: str, name: str, days: int) -> dict:
    """A new device and its token (the only time the token is shown), audited
    as `device_issued`; commits."""
    now = naive_utcnow().replace(microsecond=0)
    device = Device(name=name, created_by=actor_id, created_at=now, expires_at=now + timedelta(days=days))
    session.add(device)
    session.flush()
    session.add(AuditEntry(actor_id=actor_id, action="device_issued",
                           filters={"device_id": device.id, "name": name, "days": days}, at=now))
    session.commit()
    claims = {"sub": device.id, "kind": DEVICE, "iat": int(now.timestamp()),
              "exp": int((device.expires_at - datetime(1970, 1, 1)).total_seconds())}
    return {**view(device), "token": jwt.encode(claims, secret, algorithm="HS256")}


def page(session, paging: dict) -> dict:
    """The devices, newest first."""
    result = paginate(session, select(Device), paging, Device.created_at, Device.id)
    return {"items": [view(d) for d in result["items"]], "next_cursor": result["next_cursor"]}


def revoke(session, actor_id: str, device_id: str) -> dict:
    """Revoke a device's token: refused from now on (within a second on every
    gateway). Revoking it again changes nothing and is not audited again; commits."""
    device = session.get(Device, device_id, with_for_update=True, populate_existing=True)
    if device is None:
        raise NotFound("No such device.")
    if device.revoked_at is None:
        now = naive_utcnow()
        device.revoked_at, device.revoked_by = now, actor_id
        session.add(AuditEntry(actor_id=actor_id, action="device_revoked",
                               filters={"device_id": device.id, "name": device.name}, at=now))
        session.commit()
    return view(device)


class DeviceState(NamedTuple):
    revoked: bool
    expires_at: datetime


class DeviceStates(SharedExtension):
    """Each device's row as the gateway's database has it, read at most once
    per MAX_STATE_AGE seconds per process (AccountStates' rule for accounts)."""

    def __init__(self, max_age: float = MAX_STATE_AGE):
        self.max_age = max_age
        self.engine = None
        self._seen: dict[str, tuple[float, DeviceState | None]] = {}
        self._written: dict[str, float] = {}  # when this process last wrote a device's last_seen_at

    def setup(self):
        self.engine = make_engine(self.container.config["DB_URL"], pool_size=2)

    def stop(self):
        if self.engine is not None:
            self.engine.dispose()

    kill = stop

    def state(self, device_id: str) -> DeviceState | None:
        now = time.monotonic()
        seen = self._seen.get(device_id)
        if seen is not None and now - seen[0] < self.max_age:
            return seen[1]
        with self.engine.begin() as connection:
            row = connection.execute(select(Device.revoked_at, Device.expires_at)
                                     .where(Device.id == device_id)).first()
            if row is not None and now - self._written.get(device_id, -SEEN_EVERY) >= SEEN_EVERY:
                connection.execute(update(Device).where(Device.id == device_id).values(last_seen_at=naive_utcnow()))
                self._written[device_id] = now
        state = DeviceState(row.revoked_at is not None, row.expires_at) if row else None
        if len(self._seen) > 1_000:  # made-up ids: start afresh
            self._seen.clear()
            self._written.clear()
        self._seen[device_id] = (now, state)
        return state

    def principal(self, claims: dict) -> dict:
        """The device's principal (role `device` alone); a 401 saying why if
        it is unknown, revoked or expired (`details.reason`, for the wall to say so)."""
        state = self.state(claims["id"])
        if state is None:
            raise NotAuthenticated("The token is not valid.")
        if state.revoked:
            raise NotAuthenticated("This screen's token was revoked: ask the office for a new one.",
                                   {"reason": "revoked"})
        if state.expires_at <= naive_utcnow():
            raise NotAuthenticated("This screen's token has expired: ask the office for a new one.",
                                   {"reason": "expired"})
        return {"id": claims["id"], "roles": [DEVICE], "device": True}
