"""Bearer tokens, roles, and accounts: who may call, and how they prove it."""
import time
from datetime import datetime, timedelta

import jwt
import pytest
from sqlalchemy import select
from werkzeug.security import check_password_hash
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services import contracts
from services.common.errors import Conflict, Forbidden, NotAuthenticated
from services.gateway import accounts, auth
from services.gateway.models import Account

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
OTHER_SECRET = "another-secret-also-long-enough-for-hs256!"


# -- tokens -----------------------------------------------------------------------

def test_a_token_round_trips_to_its_principal():
    issued = auth.issue_token(SECRET, "acc-1", ["member", "viewer"], ttl_seconds=600)
    assert issued["token_type"] == "bearer"
    assert issued["expires_in"] == 600
    assert auth.principal_from_token(SECRET, issued["access_token"]) == {
        "id": "acc-1", "roles": ["member", "viewer"]}


def test_a_token_expires_after_its_ttl():
    issued = auth.issue_token(SECRET, "acc-1", ["member"], ttl_seconds=600)
    claims = jwt.decode(issued["access_token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 5


def test_an_expired_token_is_not_accepted():
    issued = auth.issue_token(SECRET, "acc-1", ["member"], ttl_seconds=-5)
    with pytest.raises(NotAuthenticated, match="expired"):
        auth.principal_from_token(SECRET, issued["access_token"])


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


# -- failed logins ----------------------------------------------------------------

def fail(gateway_db, username, at, times=1):
    for _ in range(times):
        accounts.record_failed_login(gateway_db.worker().session, username, at, max_failures=3, lock_seconds=60)


def locked(gateway_db, username, at) -> int:
    return accounts.seconds_locked(gateway_db.worker().session, username, at)


def test_a_few_failed_logins_lock_nothing(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    fail(gateway_db, "zhang.wei", now, times=2)
    assert locked(gateway_db, "zhang.wei", now) == 0


def test_the_last_allowed_failure_locks_the_username_for_a_while(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    fail(gateway_db, "zhang.wei", now, times=3)
    assert locked(gateway_db, "zhang.wei", now) == 60
    assert locked(gateway_db, "zhang.wei", now + timedelta(seconds=45)) == 15
    assert locked(gateway_db, "zhang.wei", now + timedelta(seconds=60)) == 0
    assert locked(gateway_db, "li.na", now) == 0  # only that name


def test_failures_a_lock_period_apart_never_lock(gateway_db):
    start = datetime(2026, 11, 25, 8, 0, 0)
    for minute in range(6):
        fail(gateway_db, "zhang.wei", start + timedelta(minutes=minute))
        assert locked(gateway_db, "zhang.wei", start + timedelta(minutes=minute)) == 0
    fail(gateway_db, "zhang.wei", start + timedelta(minutes=5, seconds=59), times=2)
    assert locked(gateway_db, "zhang.wei", start + timedelta(minutes=6)) == 59


def test_a_success_forgets_the_failures(gateway_db):
    now = datetime(2026, 11, 25, 8, 0, 0)
    fail(gateway_db, "zhang.wei", now, times=2)
    accounts.forget_failed_logins(gateway_db.worker().session, "zhang.wei")
    fail(gateway_db, "zhang.wei", now, times=2)
    assert locked(gateway_db, "zhang.wei", now) == 0
