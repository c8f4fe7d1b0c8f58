"""Accounts: registration, password checks and the lock after repeated failed
logins, shared by the HTTP routes and `linli admin create`. Passwords are
stored only as werkzeug scrypt hashes."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from services.common.clock import naive_utcnow
from services.common.db import UnitOfWork, make_engine
from services.common.errors import Conflict
from services.common.outbox import Relay
from services.contracts import gateway as events
from services.gateway.models import Account, FailedLogins, kernel

# Checked against when the username is unknown, so both failures take as long.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def register(uow: UnitOfWork, data: dict) -> Account:
    """Add an account and announce it; the caller commits. A taken username is a 409."""
    taken = uow.session.scalar(select(Account.id).where(Account.username == data["username"]))
    if taken is not None:
        raise Conflict("That username is taken.", {"fields": {"username": ["That username is taken."]}})
    account = Account(
        username=data["username"], password_hash=generate_password_hash(data["password"]),
        name=data["name"], phone=data.get("phone"), roles=sorted(set(data["roles"])),
        party_member=data.get("party_member", False), compound=data.get("compound"),
        created_at=naive_utcnow(),
    )
    uow.session.add(account)
    try:
        uow.session.flush()
    except IntegrityError:  # two registrations raced for one username
        uow.session.rollback()
        raise Conflict("That username is taken.", {"fields": {"username": ["That username is taken."]}})
    uow.emit(events.MEMBER_REGISTERED, {
        "member_id": account.id, "roles": account.roles,
        "party_member": account.party_member, "compound": account.compound,
    })
    return account


def authenticate(session, username: str, password: str) -> Account | None:
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return account if check_password_hash(account.password_hash, password) else None


def seconds_locked(session, username: str, now: datetime) -> int:
    """How long `username` must wait before its next login attempt (0: none)."""
    row = session.get(FailedLogins, username)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return 0
    return math.ceil((row.locked_until - now).total_seconds())


def record_failed_login(session, username: str, now: datetime, max_failures: int, lock_seconds: int):
    """Count a failed login and commit. Failures less than `lock_seconds`
    apart add up, and the `max_failures`-th locks the name for `lock_seconds`:
    a guesser gets `max_failures` tries, then one per `lock_seconds`. The count
    is one UPDATE, so that parallel guesses cannot slip past it."""
    session.execute(delete(FailedLogins).where(  # a quiet spell of lock_seconds forgets them
        FailedLogins.last_failed_at <= now - timedelta(seconds=lock_seconds),
        or_(FailedLogins.locked_until.is_(None), FailedLogins.locked_until < now)))
    count = update(FailedLogins).where(FailedLogins.username == username).values(
        failures=FailedLogins.failures + 1, last_failed_at=now)
    if session.execute(count).rowcount == 0:
        session.add(FailedLogins(username=username, failures=1, last_failed_at=now))
        try:
            session.flush()
        except IntegrityError:  # a parallel failure added the row first
            session.rollback()
            session.execute(count)
    session.execute(update(FailedLogins).where(
        FailedLogins.username == username, FailedLogins.failures >= max_failures,
    ).values(failures=0, locked_until=now + timedelta(seconds=lock_seconds)))
    session.commit()


def forget_failed_logins(session, username: str):
    session.execute(delete(FailedLogins).where(FailedLogins.username == username))
    session.commit()


def create_admin(db_url: str, username: str, password: str, name: str, amqp_uri: str | dict | None = None) -> bool:
    """`linli admin create`: add an admin straight to the gateway's database
    (the first account cannot come through the API). False if the name is taken.
    Its member_registered event is published at once when `amqp_uri` is given
    and the broker answers, else by the gateway's outbox relay."""
    engine = make_engine(db_url, pool_size=1)
    broker = {"AMQP_URI": amqp_uri} if isinstance(amqp_uri, str) else amqp_uri  # a URI, or AMQP_URI and AMQP_SSL
    relay = Relay(engine, kernel, "gateway", broker) if broker else None
    try:
        with Session(engine) as session, UnitOfWork(session, kernel, "gateway", relay) as uow:
            try:
                register(uow, {"username": username, "password": password, "name": name,
                               "roles": ["admin"], "party_member": False})
            except Conflict:
                return False
            uow.commit()
        return True
    finally:
        engine.dispose()
