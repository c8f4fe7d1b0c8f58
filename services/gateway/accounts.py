"""Accounts: registration, changes by the office, passwords, and the delays
after failed logins, shared by the HTTP routes and `linli admin create`.
Passwords are stored only as werkzeug scrypt hashes."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from services.common import config as linli_config
from services.common.clock import naive_utcnow
from services.common.db import CommitNow, UnitOfWork, contains_text, json_list_has, make_engine
from services.common.errors import Conflict, NotFound
from services.common.outbox import Relay
from services.common.pagination import paginate
from services.contracts import gateway as events
from services.gateway.models import Account, AddressWindow, AuditEntry, LoginAttempts, kernel

# Checked against when the username is unknown, so both failures take as long.
_DUMMY_HASH = generate_password_hash("not-a-real-password")

ANNOUNCED = ("roles", "active", "party_member", "compound")  # what other services keep of an account


def register(uow: UnitOfWork, data: dict, password_hash: str | None = None) -> Account:
    """Add an account and announce it; the caller commits. A taken username is
    a 409. `password_hash`: the password hashed already (off the hub)."""
    taken = uow.session.scalar(select(Account.id).where(Account.username == data["username"]))
    if taken is not None:
        raise Conflict("That username is taken.", {"fields": {"username": ["That username is taken."]}})
    account = Account(
        username=data["username"], password_hash=password_hash or generate_password_hash(data["password"]),
        name=data["name"], phone=data.get("phone"), roles=sorted(set(data["roles"])),
        party_member=data.get("party_member", False), compound=data.get("compound"),
        created_at=naive_utcnow(), active=True, session_version=0,
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


def update_member(uow: UnitOfWork, member_id: str, changes: dict) -> Account:
    """The office changes an account; the caller commits. Disabling ends its
    sessions. The last active admin cannot be disabled or lose the role (409):
    the office would be locked out for good."""
    if "roles" in changes:
        changes = {**changes, "roles": sorted(set(changes["roles"]))}
    if changes.get("active") is False or ("roles" in changes and "admin" not in changes["roles"]):
        # Lock every active account in one order, so two admins removing each
        # other at once wait in turn (the second sees the first's change)
        # rather than deadlock or both succeed.
        locked = {a.id: a for a in uow.session.scalars(
            select(Account).where(or_(Account.active.is_(True), Account.id == member_id)).order_by(Account.id)
            .with_for_update().execution_options(populate_existing=True))}
        account = locked.get(member_id)
    else:
        locked = {}
        account = uow.session.get(Account, member_id, with_for_update=True, populate_existing=True)
    if account is None:
        raise NotFound("No such member.")
    stays_admin = changes.get("active", account.active) and "admin" in changes.get("roles", account.roles)
    if account.active and "admin" in account.roles and not stays_admin:
        if not any(other.active and "admin" in other.roles for other in locked.values() if other.id != account.id):
            field = "active" if changes.get("active") is False else "roles"
            message = "This is the last active admin: make another admin first."
            raise Conflict(message, {"fields": {field: [message]}})
    if account.active and changes.get("active") is False:
        account.session_version += 1  # re-enabled later, its old tokens stay dead
    for field, value in changes.items():
        setattr(account, field, value)
    uow.session.flush()
    if set(changes) & set(ANNOUNCED):
        uow.emit(events.MEMBER_UPDATED, {
            "member_id": account.id, "roles": account.roles, "active": account.active,
            "party_member": account.party_member, "compound": account.compound,
        })
    return account


# What people put between a phone number's digits, and may or may not type when searching.
_PHONE_SEPARATORS = re.compile(r"[ -]")


def search(filters: dict):
    """The accounts a member search finds, as a query to page through. `q`:
    part of the name or username in any case, or part of the phone with
    spaces and dashes ignored on both sides ("13912345678" finds
    "139 1234-5678"); `role`, `compound`, `party_member`, `active`: equal."""
    statement = select(Account)
    q = filters.get("q")
    if q:
        matches = [contains_text(column, q) for column in (Account.name, Account.username)]
        digits = _PHONE_SEPARATORS.sub("", q)
        if digits:
            bare_phone = func.replace(func.replace(Account.phone, " ", ""), "-", "")
            matches.append(bare_phone.contains(digits, autoescape=True))
        statement = statement.where(or_(*matches))
    if filters.get("role"):
        statement = statement.where(json_list_has(Account.roles, filters["role"]))
    for name in ("compound", "party_member", "active"):
        if filters.get(name) is not None:
            statement = statement.where(getattr(Account, name) == filters[name])
    return statement


def audit_search(session, actor_id: str, filters: dict):
    """A search that returned names and phones in bulk: who, when, with which
    filters (the caller commits, before the answer leaves)."""
    session.add(AuditEntry(actor_id=actor_id, action="member_search", filters=filters, at=naive_utcnow()))


def audit_page(session, paging: dict) -> dict:
    """One page of the searches audited, newest first."""
    return paginate(session, select(AuditEntry), paging, AuditEntry.at, AuditEntry.id)


def set_password(session, account: Account, password_hash: str):
    """A new password ends every session of the account (their tokens carry
    the old session_version); the caller commits."""
    account.password_hash = password_hash
    account.session_version += 1


def authenticate(session, username: str, password: str, check=check_password_hash) -> Account | None:
    """The active account with this username and password, or None. `check`:
    how to check a hash (off the hub in the gateway)."""
    account = session.scalar(select(Account).where(Account.username == username))
    if account is None:
        check(_DUMMY_HASH, password)
        return None
    return account if check(account.password_hash, password) and account.active else None


# -- delays after failed logins ------------------------------------------------------

@dataclass(frozen=True)
class LoginLimits:
    """After `free_failures` failed logins of one username from one address,
    that pair waits 1, 2, 4 ... seconds (up to `max_delay`) before each next
    try; a quiet `forget_after` seconds forgets its failures. Another address
    (the owner of the name at home) is not slowed. One address may fail at
    most `address_failures` logins (all names) per `address_window` seconds:
    a rate no office behind one router produces."""
    free_failures: int
    max_delay: int
    address_failures: int
    address_window: int
    forget_after: int = 900

    @classmethod
    def from_config(cls, config: dict) -> LoginLimits:
        """The limits deploy/config/gateway.yml sets (its LOGIN_* settings)."""
        return cls(**{name: int(config[key]) for name, key in (
            ("free_failures", "LOGIN_FREE_FAILURES"), ("max_delay", "LOGIN_MAX_DELAY_SECONDS"),
            ("address_failures", "LOGIN_ADDRESS_MAX_FAILURES"),
            ("address_window", "LOGIN_ADDRESS_WINDOW_SECONDS"))})

    def delay(self, failures: int) -> int:
        """Seconds the pair waits after its `failures`-th failure in a row."""
        over = failures - self.free_failures
        return 0 if over < 0 else min(self.max_delay, 2 ** min(over, 30))


def claim_login(session, address: str, username: str, now: datetime, limits: LoginLimits) -> int:
    """Before a password is checked: the seconds this pair or address must
    still wait (refuse at once), or 0, and then the attempt is counted as a
    failure until `login_succeeded` or `login_not_tried` says otherwise.
    Counting first, in one conditional UPDATE, means parallel guesses cannot
    slip past the delay. Commits."""
    key = (LoginAttempts.address == address, LoginAttempts.username == username)
    session.execute(delete(LoginAttempts).where(  # a quiet spell forgets
        LoginAttempts.last_failed_at <= now - timedelta(seconds=limits.forget_after),
        or_(LoginAttempts.wait_until.is_(None), LoginAttempts.wait_until <= now)),
        execution_options={"synchronize_session": False})
    count = update(LoginAttempts).where(*key, or_(LoginAttempts.wait_until.is_(None),
                                                  LoginAttempts.wait_until <= now)).values(
        failures=LoginAttempts.failures + 1, last_failed_at=now)
    if session.execute(count, execution_options={"synchronize_session": False}).rowcount == 0:
        waiting = session.scalar(select(LoginAttempts.wait_until).where(*key))
        if waiting is not None:
            session.commit()
            return _seconds_until(waiting, now)
        session.add(LoginAttempts(address=address, username=username, failures=1, last_failed_at=now))
        try:
            session.flush()
        except IntegrityError:  # a parallel attempt added the row first
            session.rollback()
            if session.execute(count, execution_options={"synchronize_session": False}).rowcount == 0:
                session.commit()
                return 1
    failures = session.scalar(select(LoginAttempts.failures).where(*key))
    delay = limits.delay(failures)
    if delay:
        session.execute(update(LoginAttempts).where(*key).values(wait_until=now + timedelta(seconds=delay)),
                        execution_options={"synchronize_session": False})
    wait = count_in_window(session, "login", address, now, limits.address_failures, limits.address_window)
    session.commit()
    return wait


def login_succeeded(session, address: str, username: str):
    """The right password: forget the pair's failures. Commits."""
    session.execute(delete(LoginAttempts).where(LoginAttempts.address == address,
                                                LoginAttempts.username == username),
                    execution_options={"synchronize_session": False})
    _uncount(session, "login", address)
    session.commit()


def login_not_tried(session, address: str, username: str):
    """The attempt claimed was not tried (no hashing slot free): uncount it. Commits."""
    session.execute(update(LoginAttempts).where(
        LoginAttempts.address == address, LoginAttempts.username == username, LoginAttempts.failures > 0,
    ).values(failures=LoginAttempts.failures - 1, wait_until=None),
        execution_options={"synchronize_session": False})
    _uncount(session, "login", address)
    session.commit()


def count_in_window(session, scope: str, address: str, now: datetime, limit: int, window: int) -> int:
    """Count one `scope` event of `address` in its current window of `window`
    seconds: 0 while at most `limit`, past it the seconds until the window
    ends. The caller commits."""
    key = (AddressWindow.scope == scope, AddressWindow.address == address)
    old = now - timedelta(seconds=window)
    options = {"synchronize_session": False}
    session.execute(delete(AddressWindow).where(AddressWindow.scope == scope, AddressWindow.started_at <= old,
                                                AddressWindow.address != address), execution_options=options)
    renewed = update(AddressWindow).where(*key, AddressWindow.started_at <= old).values(started_at=now, hits=1)
    bumped = update(AddressWindow).where(*key).values(hits=AddressWindow.hits + 1)
    if (session.execute(renewed, execution_options=options).rowcount == 0
            and session.execute(bumped, execution_options=options).rowcount == 0):
        session.add(AddressWindow(scope=scope, address=address, started_at=now, hits=1))
        try:
            session.flush()
        except IntegrityError:  # a parallel one added it first
            session.rollback()
            session.execute(bumped, execution_options=options)
    hits, started_at = session.execute(select(AddressWindow.hits, AddressWindow.started_at).where(*key)).one()
    if hits <= limit:
        return 0
    return _seconds_until(started_at + timedelta(seconds=window), now)


def _uncount(session, scope: str, address: str):
    session.execute(update(AddressWindow).where(
        AddressWindow.scope == scope, AddressWindow.address == address, AddressWindow.hits > 0,
    ).values(hits=AddressWindow.hits - 1), execution_options={"synchronize_session": False})


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def create_admin(db_url: str, username: str, password: str, name: str, amqp_uri: str | dict | None = None) -> bool:
    """`linli admin create`: add an admin straight to the gateway's database
    (the first account cannot come through the API). False if the name is taken.
    Its member_registered event is published at once when `amqp_uri` is given
    and the broker answers, else by the gateway's outbox relay."""
    engine = make_engine(db_url, pool_size=1)
    broker = {"AMQP_URI": amqp_uri} if isinstance(amqp_uri, str) else amqp_uri  # a URI, or AMQP_URI and AMQP_SSL
    # The relay's other settings are the gateway's own (deploy/config/gateway.yml).
    relay = Relay(engine, kernel, "gateway", {**linli_config.load("gateway"), **broker}) if broker else None
    try:
        with Session(engine) as session, UnitOfWork(session, kernel, "gateway", CommitNow(relay)) as uow:
            try:
                register(uow, {"username": username, "password": password, "name": name,
                               "roles": ["admin"], "party_member": False})
            except Conflict:
                return False
            uow.commit()
        return True
    finally:
        engine.dispose()
