"""Bearer tokens, roles, and accounts: who may call, and how they prove it."""
import os
import threading
import time
from datetime import datetime, timedelta

import jwt
import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from marshmallow import ValidationError
from werkzeug.security import generate_password_hash

from services import contracts
from services.common.errors import Conflict, Forbidden, NotAuthenticated, Unavailable
from services.gateway import accounts, auth, passwords
from services.gateway.models import Account
from services.gateway.http import client_address, trusted_proxies
from services.gateway.schemas import MemberCreateSchema
from tests.unit.conftest import served_in_turn

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
OTHER_SECRET = "another-secret-also-long-enough-for-hs256!"


# -- tokens -----------------------------------------------------------------------

def test_a_token_round_trips_to_its_principal():
    issued = auth.issue_token(SECRET, "acc-1", ["member", "viewer"], ttl_seconds=600)
    assert issued["token_type"] == "bearer"
    assert issued["expires_in"] == 600
    assert auth.principal_from_token(SECRET, issued["access_token"]) == {
        "id": "acc-1", "roles": ["member", "viewer"], "session_version": 0}
    later = auth.issue_token(SECRET, "acc-1", ["member"], ttl_seconds=600, session_version=3)
    assert auth.principal_from_token(SECRET, later["access_token"])["session_version"] == 3


def test_a_token_expires_after_its_ttl():
    issued = auth.issue_token(SECRET, "acc-1", ["member"], ttl_seconds=600)
    claims = jwt.decode(issued["access_token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 5


def test_an_expired_token_is_not_accepted():
    issued = auth.issue_token(SECRET, "acc-1", ["member"], ttl_seconds=-5)
    with pytest.raises(NotAuthenticated, match="expired"):
        auth.principal_from_token(SECRET, issued["access_token"])


def test_a_token_accepted_before_is_refused_once_it_expires():
    """The gateway keeps the tokens it has checked (auth._signed_claims): not their expiry."""
    token = auth.issue_token(SECRET, "acc-1", ["member"], ttl_seconds=60)["access_token"]
    assert auth.principal_from_token(SECRET, token)["id"] == "acc-1"
    expires = jwt.decode(token, SECRET, algorithms=["HS256"])["exp"]
    assert auth.principal_from_token(SECRET, token, now=expires - 1)["id"] == "acc-1"
    with pytest.raises(NotAuthenticated, match="The token has expired"):
        auth.principal_from_token(SECRET, token, now=expires)
    # Kept under its secret: with another, it is not one of ours.
    with pytest.raises(NotAuthenticated, match="not valid"):
        auth.principal_from_token(OTHER_SECRET, token)
    # What a caller does with the principal does not change what is kept.
    auth.principal_from_token(SECRET, token)["roles"].append("admin")
    assert auth.principal_from_token(SECRET, token)["roles"] == ["member"]


def test_a_token_signed_with_another_secret_is_not_accepted():
    issued = auth.issue_token(OTHER_SECRET, "acc-1", ["admin"], ttl_seconds=600)
    with pytest.raises(NotAuthenticated):
        auth.principal_from_token(SECRET, issued["access_token"])


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_is_not_a_token(token):
    with pytest.raises(NotAuthenticated):
        auth.principal_from_token(SECRET, token)


def test_an_unsigned_token_is_not_accepted():
    forged = jwt.encode({"sub": "acc-1", "roles": ["admin"], "exp": int(time.time()) + 600},
                        key=None, algorithm="none")
    with pytest.raises(NotAuthenticated):
        auth.principal_from_token(SECRET, forged)


@pytest.mark.parametrize("claims", [
    {"sub": "acc-1", "roles": ["admin"]},                      # no expiry
    {"roles": ["admin"], "exp": 4102444800},                   # nobody
    {"sub": "acc-1", "roles": "admin", "exp": 4102444800},     # roles not a list
])
def test_a_token_missing_what_we_rely_on_is_not_accepted(claims):
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(NotAuthenticated):
        auth.principal_from_token(SECRET, token)


# -- roles ------------------------------------------------------------------------

def test_a_wrong_role_is_forbidden():
    with pytest.raises(Forbidden):
        auth.authorize({"id": "v1", "roles": ["viewer"]}, auth.MEMBER_OR_ADMIN)


def test_no_role_is_forbidden():
    with pytest.raises(Forbidden):
        auth.authorize({"id": "v1", "roles": []}, auth.ANY_ROLE)


@pytest.mark.parametrize("roles, needed", [
    (["admin"], auth.ADMIN),
    (["viewer", "member"], auth.MEMBER_OR_ADMIN),
    (["viewer"], auth.ANY_ROLE),
])
def test_one_matching_role_is_enough(roles, needed):
    assert auth.authorize({"id": "x", "roles": roles}, needed) is None


# -- where the token travels -------------------------------------------------------

def request(**kwargs) -> Request:
    return Request(EnvironBuilder(**kwargs).get_environ())


def test_the_token_is_read_from_the_authorization_header():
    assert auth.bearer_token(request(headers={"Authorization": "Bearer abc.def.ghi"})) == "abc.def.ghi"


def test_the_bearer_scheme_is_case_insensitive():
    assert auth.bearer_token(request(headers={"Authorization": "bearer abc"})) == "abc"


def test_a_stream_reads_the_token_from_the_access_token_query_param():
    assert auth.bearer_token(request(query_string={"access_token": "from-query"}), query_allowed=True) == "from-query"


def test_other_routes_ignore_a_token_in_the_query():
    """A token in a URL ends up in browser histories and proxy logs: only
    streams, which cannot send headers, take it there."""
    assert auth.bearer_token(request(query_string={"access_token": "from-query"})) is None


def test_the_header_wins_over_the_query():
    req = request(headers={"Authorization": "Bearer from-header"},
                  query_string={"access_token": "from-query"})
    assert auth.bearer_token(req, query_allowed=True) == "from-header"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer    "},
])
def test_no_bearer_token_is_none(headers):
    assert auth.bearer_token(request(headers=headers)) is None


def test_an_empty_access_token_param_is_none():
    assert auth.bearer_token(request(query_string={"access_token": ""}), query_allowed=True) is None


# -- accounts ---------------------------------------------------------------------

def new_member(**overrides):
    data = {"username": "zhang.wei", "password": "correct horse battery", "name": "Zhang Wei",
            "phone": "13800000000", "roles": ["member"], "party_member": True,
            "compound": "Lotus Garden"}
    data.update(overrides)
    return data


def test_register_stores_only_a_hash_of_the_password(gateway_db):
    with gateway_db.unit_of_work() as uow:
        accounts.register(uow, new_member())
        uow.commit()
    stored = gateway_db.worker().session.scalar(select(Account).where(Account.username == "zhang.wei"))
    assert stored is not None
    assert stored.password_hash != "correct horse battery"
    assert "correct horse battery" not in stored.password_hash
    assert check_password_hash(stored.password_hash, "correct horse battery")
    assert not check_password_hash(stored.password_hash, "wrong horse battery")


def test_register_keeps_each_role_once(gateway_db):
    with gateway_db.unit_of_work() as uow:
        account = accounts.register(uow, new_member(roles=["member", "admin", "member"]))
        uow.commit()
    assert account.roles == ["admin", "member"]


def test_a_taken_username_is_a_conflict(gateway_db):
    with gateway_db.unit_of_work() as uow:
        accounts.register(uow, new_member())
        uow.commit()
    with gateway_db.unit_of_work() as uow:
        with pytest.raises(Conflict) as raised:
            accounts.register(uow, new_member(name="Another Zhang", phone="13900000000"))
    assert "username" in raised.value.details["fields"]
    assert gateway_db.count(Account) == 1
    assert len(gateway_db.outbox("member_registered")) == 1


def test_authenticate_returns_the_account_for_the_right_password(gateway_db):
    with gateway_db.unit_of_work() as uow:
        account_id = accounts.register(uow, new_member()).id
        uow.commit()
    found = accounts.authenticate(gateway_db.worker().session, "zhang.wei", "correct horse battery")
    assert found is not None and found.id == account_id


def test_authenticate_refuses_a_wrong_password(gateway_db):
    with gateway_db.unit_of_work() as uow:
        accounts.register(uow, new_member())
        uow.commit()
    assert accounts.authenticate(gateway_db.session, "zhang.wei", "correct horse batterY") is None


def test_authenticate_refuses_an_unknown_user(gateway_db):
    assert accounts.authenticate(gateway_db.session, "nobody", "correct horse battery") is None


def test_register_announces_the_member_without_name_or_phone(gateway_db):
    with gateway_db.unit_of_work() as uow:
        account = accounts.register(uow, new_member())
        uow.commit()
    rows = gateway_db.outbox()
    assert [row["event_type"] for row in rows] == ["member_registered"]
    envelope = rows[0]["envelope"]
    assert envelope["source"] == "gateway"
    assert envelope["data"] == {"member_id": account.id, "roles": ["member"],
                                "party_member": True, "compound": "Lotus Garden"}
    contracts.validate(envelope)
    body = repr(envelope)
    for personal in ("Zhang Wei", "13800000000", "correct horse battery", "zhang.wei"):
        assert personal not in body


def test_a_registration_not_committed_leaves_nothing(gateway_db):
    with gateway_db.unit_of_work() as uow:
        accounts.register(uow, new_member())
    assert gateway_db.count(Account) == 0
    assert gateway_db.outbox() == []


# -- the office changes accounts ----------------------------------------------------

def registered(gateway_db, **overrides) -> Account:
    with gateway_db.unit_of_work() as uow:
        account = accounts.register(uow, new_member(**overrides))
        uow.commit()
    return account


def change(gateway_db, member_id, **changes) -> Account:
    with gateway_db.unit_of_work() as uow:
        account = accounts.update_member(uow, member_id, changes)
        uow.commit()
    return account


def test_disabling_a_member_ends_its_sessions_and_announces_it_without_personal_data(gateway_db):
    account = registered(gateway_db)
    changed = change(gateway_db, account.id, active=False, phone="13911112222")
    assert changed.active is False and changed.session_version == 1
    updated = gateway_db.outbox("member_updated")
    assert len(updated) == 1
    envelope = updated[0]["envelope"]
    assert envelope["data"] == {"member_id": account.id, "roles": ["member"], "active": False,
                                "party_member": True, "compound": "Lotus Garden"}
    contracts.validate(envelope)
    assert "13911112222" not in repr(envelope) and "Zhang Wei" not in repr(envelope)
    # A disabled account cannot log in, even with the right password.
    assert accounts.authenticate(gateway_db.worker().session, "zhang.wei", "correct horse battery") is None


def test_a_name_or_phone_change_is_not_announced(gateway_db):
    account = registered(gateway_db)
    change(gateway_db, account.id, name="Zhang Wei-ming", phone=None)
    assert gateway_db.outbox("member_updated") == []


@pytest.mark.parametrize("changes, field", [({"active": False}, "active"), ({"roles": ["member"]}, "roles")])
def test_the_last_active_admin_cannot_be_disabled_or_de_admined(gateway_db, changes, field):
    office = registered(gateway_db, username="office", roles=["admin"])
    with gateway_db.unit_of_work() as uow, pytest.raises(Conflict) as refused:
        accounts.update_member(uow, office.id, changes)
    assert field in refused.value.details["fields"]
    # With a second active admin it may.
    registered(gateway_db, username="office2", roles=["admin"])
    assert change(gateway_db, office.id, **changes) is not None


def test_a_disabled_admin_does_not_count_as_the_other_admin(gateway_db):
    office = registered(gateway_db, username="office", roles=["admin"])
    other = registered(gateway_db, username="office2", roles=["admin"])
    change(gateway_db, other.id, active=False)
    with gateway_db.unit_of_work() as uow, pytest.raises(Conflict):
        accounts.update_member(uow, office.id, {"active": False})


def test_a_new_password_ends_every_session(gateway_db):
    account = registered(gateway_db)
    session = gateway_db.worker().session
    stored = session.get(Account, account.id)
    accounts.set_password(session, stored, generate_password_hash("a-brand-new-password"))
    session.commit()
    assert stored.session_version == 1
    session = gateway_db.worker().session
    assert accounts.authenticate(session, "zhang.wei", "correct horse battery") is None
    assert accounts.authenticate(session, "zhang.wei", "a-brand-new-password") is not None


@pytest.mark.parametrize("password, problem", [
    ("short-one", "At least 10"), ("1234567890", "too common"), ("Password123", "too common"),
    ("qwertyuiop", "too common"), ("x" * 201, "At most"),
])
def test_a_weak_or_common_password_is_refused(password, problem):
    assert problem in passwords.problem(password)
    with pytest.raises(ValidationError) as refused:
        MemberCreateSchema().load(new_member(password=password))
    assert list(refused.value.messages) == ["password"]


def test_a_long_uncommon_password_is_taken():
    assert passwords.problem("correct horse battery") is None


def test_a_login_waiting_for_a_hashing_slot_gets_it_before_a_newcomer_and_one_past_the_wait_is_refused():
    hasher = passwords.Hasher(max_hashes=1, wait=0.2)
    assert served_in_turn(hasher.slot) == ["waited", "newcomer"]

    with hasher.slot():
        started = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            hasher.slot()
        assert 0.15 < time.monotonic() - started < 1.0
        assert refused.value.details["retry_after"] == passwords.RETRY_AFTER_SECONDS


def test_a_password_is_hashed_at_a_lower_cpu_priority_than_the_requests_beside_it(monkeypatch):
    seen = []

    def scrypt_check(password_hash, password):  # stands in for werkzeug's, to see which thread runs it
        thread = threading.get_native_id()
        seen.append((thread, os.getpriority(os.PRIO_PROCESS, thread)))
        return password == "right"

    monkeypatch.setattr(passwords, "check_password_hash", scrypt_check)
    hasher = passwords.Hasher(max_hashes=1, wait=0.2)
    with hasher.slot():
        assert hasher.check("a-hash", "right") and not hasher.check("a-hash", "wrong")
    assert [nice for _, nice in seen] == [passwords.HASH_NICE] * 2
    assert threading.get_native_id() not in {thread for thread, _ in seen}  # never on the hub's thread
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0

# -- the token and the account as it is now ------------------------------------------

def states_of(gateway_db) -> auth.AccountStates:
    states = auth.AccountStates(max_age=0.2)
    states.engine = gateway_db.engine
    return states


def test_a_token_is_authorized_from_the_accounts_current_roles(gateway_db):
    account = registered(gateway_db, roles=["member"])
    states = states_of(gateway_db)
    claims = {"id": account.id, "roles": ["admin"], "session_version": 0}  # what an old token said
    assert states.principal(claims) == {"id": account.id, "roles": ["member"]}
    registered(gateway_db, username="office", roles=["admin"])
    change(gateway_db, account.id, roles=["admin", "member"])
    time.sleep(0.25)
    assert states.principal(claims)["roles"] == ["admin", "member"]


def test_a_disabled_account_or_an_ended_session_is_refused(gateway_db):
    account = registered(gateway_db)
    states = states_of(gateway_db)
    claims = {"id": account.id, "roles": ["member"], "session_version": 0}
    assert states.principal(claims)
    change(gateway_db, account.id, active=False)
    time.sleep(0.25)
    with pytest.raises(NotAuthenticated, match="disabled"):
        states.principal(claims)
    change(gateway_db, account.id, active=True)
    time.sleep(0.25)
    with pytest.raises(NotAuthenticated, match="ended"):  # re-enabled, its old tokens stay dead
        states.principal(claims)
    assert states.principal({**claims, "session_version": 1})
    with pytest.raises(NotAuthenticated):
        states.principal({**claims, "id": "no-such-account"})


# -- a wall screen's device token --------------------------------------------------------

def test_a_device_token_names_its_device_with_the_device_role_alone_until_revoked(gateway_db):
    from services.gateway import devices
    issued = devices.issue(gateway_db.session, SECRET, "office-1", "大厅大屏 Hall screen", days=365)
    assert issued["expires_at"] - issued["created_at"] == timedelta(days=365)
    claims = auth.principal_from_token(SECRET, issued["token"])
    assert claims == {"id": issued["id"], "device": True}
    states = devices.DeviceStates(max_age=0.2)
    states.engine = gateway_db.engine
    principal = states.principal(claims)
    assert principal["roles"] == [auth.DEVICE]
    with pytest.raises(Forbidden):
        auth.authorize(principal, auth.ANY_ROLE)  # not even what a viewer's login may read
    auth.authorize(principal, auth.WALL)
    assert devices.revoke(gateway_db.session, "office-1", issued["id"])["status"] == "revoked"
    time.sleep(0.25)
    with pytest.raises(NotAuthenticated) as refused:
        states.principal(claims)
    assert refused.value.details == {"reason": "revoked"}
    with pytest.raises(NotAuthenticated):
        states.principal({"id": "no-such-device", "device": True})


def test_an_expired_device_token_says_so():
    now = int(time.time())
    stale = jwt.encode({"sub": "dev-1", "kind": "device", "exp": now - 60}, SECRET, algorithm="HS256")
    with pytest.raises(NotAuthenticated) as refused:
        auth.principal_from_token(SECRET, stale)
    assert refused.value.details == {"reason": "expired"}
    # A person's expired login keeps its own message.
    with pytest.raises(NotAuthenticated, match="/api/v1/auth/token"):
        auth.principal_from_token(SECRET, jwt.encode({"sub": "acc-1", "roles": [], "exp": now - 60}, SECRET,
                                                     algorithm="HS256"))


# -- delays after failed logins ------------------------------------------------------

LIMITS = accounts.LoginLimits(free_failures=3, max_delay=60, forget_after=900, address_failures=10,
                              address_window=60)
HOME, OFFICE = "203.0.113.5", "198.51.100.7"


def attempt(gateway_db, address, username, at, succeed=False) -> int:
    session = gateway_db.worker().session
    wait = accounts.claim_login(session, address, username, at, LIMITS)
    if not wait and succeed:
        accounts.login_succeeded(session, address, username)
    return wait


def test_a_few_failures_delay_nothing(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    assert [attempt(gateway_db, OFFICE, "zhang.wei", now) for _ in range(3)] == [0, 0, 0]


def test_after_a_few_failures_the_pair_waits_longer_each_time_up_to_a_cap(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    for _ in range(3):
        attempt(gateway_db, OFFICE, "zhang.wei", now)
    assert attempt(gateway_db, OFFICE, "zhang.wei", now) == 1  # the 3rd failure: wait 1 s
    waits, at = [], now
    for _ in range(8):
        at += timedelta(seconds=waits[-1] if waits else 1)
        assert attempt(gateway_db, OFFICE, "zhang.wei", at) == 0   # allowed once the wait is over ...
        waits.append(attempt(gateway_db, OFFICE, "zhang.wei", at))  # ... then a longer wait
    assert waits == [2, 4, 8, 16, 32, 60, 60, 60]


def test_a_guesser_does_not_slow_the_owner_elsewhere_nor_a_colleague(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    for _ in range(5):
        attempt(gateway_db, HOME, "admin", now)
    assert attempt(gateway_db, HOME, "admin", now) > 0
    assert attempt(gateway_db, OFFICE, "admin", now, succeed=True) == 0  # the owner, from the office
    assert attempt(gateway_db, HOME, "li.na", now, succeed=True) == 0    # another name from that address


def test_a_success_forgets_the_pairs_failures(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    for _ in range(2):
        attempt(gateway_db, OFFICE, "zhang.wei", now)
    assert attempt(gateway_db, OFFICE, "zhang.wei", now, succeed=True) == 0
    assert [attempt(gateway_db, OFFICE, "zhang.wei", now) for _ in range(3)] == [0, 0, 0]


def test_an_attempt_not_tried_is_not_counted(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    for _ in range(5):
        assert attempt(gateway_db, OFFICE, "zhang.wei", now) == 0
        accounts.login_not_tried(gateway_db.worker().session, OFFICE, "zhang.wei")


def test_one_address_failing_for_many_names_is_stopped_for_the_rest_of_its_window(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    assert [attempt(gateway_db, HOME, f"name{n}", now) for n in range(10)] == [0] * 10
    assert attempt(gateway_db, HOME, "name10", now + timedelta(seconds=15)) == 45
    assert attempt(gateway_db, OFFICE, "name10", now) == 0
    assert attempt(gateway_db, HOME, "name11", now + timedelta(seconds=60)) == 0  # a new window


def test_successful_logins_do_not_use_up_the_addresses_allowance(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    for n in range(30):  # a whole office logging in at nine
        assert attempt(gateway_db, OFFICE, f"member{n}", now, succeed=True) == 0


def test_failures_a_quiet_spell_apart_are_forgotten(gateway_db):
    start = datetime(2026, 11, 25, 8, 0, 0)
    for n in range(6):
        assert attempt(gateway_db, OFFICE, "zhang.wei", start + timedelta(minutes=16 * n)) == 0


# -- who the client is ----------------------------------------------------------------

def request_from(peer: str, forwarded: str | None = None) -> Request:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return Request(EnvironBuilder(path="/", headers=headers, environ_base={"REMOTE_ADDR": peer}).get_environ())


PROXIES = trusted_proxies({"TRUSTED_PROXIES": "10.0.0.2, 172.16.0.0/12"})


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says():
    assert client_address(request_from("203.0.113.5", "198.51.100.7"), []) == "203.0.113.5"
    assert trusted_proxies({"TRUSTED_PROXIES": None}) == [] == trusted_proxies({})


def test_behind_a_trusted_proxy_the_nearest_untrusted_hop_is_the_client():
    assert client_address(request_from("10.0.0.2", "198.51.100.7"), PROXIES) == "198.51.100.7"
    # What the client wrote itself, left of what the proxies added, is not believed.
    assert client_address(request_from("10.0.0.2", "1.2.3.4, 198.51.100.7, 172.16.5.5"), PROXIES) == "198.51.100.7"
    assert client_address(request_from("10.0.0.2", "not-an-address"), PROXIES) == "10.0.0.2"
    assert client_address(request_from("10.0.0.2"), PROXIES) == "10.0.0.2"


def test_a_header_from_an_untrusted_peer_is_ignored():
    assert client_address(request_from("203.0.113.9", "198.51.100.7"), PROXIES) == "203.0.113.9"
