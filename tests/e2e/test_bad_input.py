"""Bad input and wrong roles get a clear 4xx in the one error shape, and
nothing is written."""
import pytest
import base64
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.e2e.conftest import Client, login, new_key
from tests.e2e.test_donations import campaign_of, donate, donated, new_campaign


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py): what this module checks holds on any running stack."""
    return office_stack


def snapshot(admin):
    return (len(admin.get("/members", params={"limit": 200}).json()["items"]),
            len(admin.get("/cases", params={"limit": 200}).json()["items"]))


def assert_error(answer, status: int, code: str, fields: tuple = ()):
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    for field in fields:
        assert field in error["details"]["fields"], (field, error)


def test_bad_input_is_refused_field_by_field_and_changes_nothing(stack, admin, register):
    member, member_profile = register()
    viewer, _ = register(roles=["viewer"], party_member=False)
    not_party, not_party_profile = register(party_member=False)
    household = admin.post("/households", {"compound": "Xingfu Garden", "address": "Room 1", "people": [
        {"name": "王", "relation": "self", "birth_year": 1950}]}).json()
    before = snapshot(admin)

    assert_error(admin.post("/members", {}), 400, "invalid_input", ("username", "password", "name"))
    assert_error(admin.post("/members", {"username": "ok_name", "password": 12345678, "name": ["x"],
                                         "party_member": "perhaps", "roles": ["king"]}),
                 400, "invalid_input", ("password", "name", "party_member", "roles"))
    assert_error(admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                       "summary": "x", "assignee_id": "no-such-member"}),
                 400, "invalid_input", ("assignee_id",))
    assert_error(admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                       "summary": "x", "assignee_id": not_party_profile["id"]}),
                 400, "invalid_input", ("assignee_id",))
    assert_error(admin.post("/cases", {"household_id": "nope", "categories": ["elderly"],
                                       "summary": "x", "assignee_id": member_profile["id"]}),
                 400, "invalid_input", ("household_id",))
    assert_error(admin.post("/cases", {"household_id": household["id"], "categories": ["rich"],
                                       "summary": "x", "assignee_id": member_profile["id"]}),
                 400, "invalid_input", ("categories",))
    assert_error(admin.post("/households", {"compound": "X", "address": "Y", "people": [
        {"name": "A", "relation": "self", "birth_year": "1950"}]}), 400, "invalid_input", ("people",))

    headers = {**admin.headers, "Content-Type": "application/json"}
    assert_error(requests.post(admin.api + "/cases", data="{not json", headers=headers, timeout=10),
                 400, "invalid_input")
    assert_error(requests.post(admin.api + "/cases", data="[1, 2]", headers=headers, timeout=10),
                 400, "invalid_input")
    assert_error(requests.post(admin.api + "/members", data="x" * 300_000, headers=headers, timeout=10),
                 413, "payload_too_large")

    assert_error(requests.post(stack.url + "/api/v1/auth/token",
                               json={"username": "admin", "password": "wrong"}, timeout=10),
                 401, "not_authenticated")
    assert_error(Client(stack.url).get("/cases"), 401, "not_authenticated")
    assert_error(Client(stack.url, "not.a.token").get("/cases"), 401, "not_authenticated")
    assert_error(member.post("/members", {"username": "sneaky", "password": "password1", "name": "S"}),
                 403, "forbidden")
    assert_error(member.post("/households", {"compound": "X", "address": "Y", "people": [
        {"name": "A", "relation": "self", "birth_year": 1950}]}), 403, "forbidden")
    assert_error(viewer.get("/cases"), 403, "forbidden")
    assert_error(admin.post("/members", {"username": "admin", "password": "a-good-password-1", "name": "A"}),
                 409, "conflict", ("username",))

    assert_error(admin.get("/no/such/route"), 404, "not_found")
    assert_error(requests.delete(admin.api + "/cases", headers=admin.headers, timeout=10),
                 405, "method_not_allowed")
    assert_error(admin.get("/cases", params={"cursor": "garbage!"}), 400, "invalid_input", ("cursor",))
    for limit in ("0", "201", str(10**12), "-1", "ten"):  # a page is 1 to 200 items
        assert_error(admin.get("/cases", params={"limit": limit}), 400, "invalid_input", ("limit",))

    assert snapshot(admin) == before
    assert member.get("/me/alerts").json()["items"] == []
    assert login(stack.url, "admin", "e2e-admin-password").token  # the admin account is unharmed


def test_a_nul_character_anywhere_is_bad_input_and_changes_nothing(admin, register):
    """PostgreSQL cannot store a NUL character in text: it is refused wherever it is sent."""
    _member, member_profile = register()
    household = admin.post("/households", {"compound": "Xingfu Garden", "address": "Room 2", "people": [
        {"name": "王", "relation": "self", "birth_year": 1950}]}).json()
    case_id = admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"], "summary": "x",
                                    "assignee_id": member_profile["id"]}).json()["id"]
    before = snapshot(admin)

    assert_error(admin.post(f"/cases/{case_id}/assign", {"assignee_id": "\u0000"}),
                 400, "invalid_input", ("assignee_id",))
    assert_error(admin.post("/households", {"compound": "X\u0000", "address": "Y", "people": [
        {"name": "A\u0000", "relation": "self", "birth_year": 1950}]}), 400, "invalid_input", ("compound", "people"))
    assert_error(admin.post("/cases/%00/assign", {"assignee_id": member_profile["id"]}), 400, "invalid_input")
    assert_error(admin.get("/cases", params={"cursor": "\u0000"}), 400, "invalid_input", ("cursor",))

    assert snapshot(admin) == before
    assert admin.get(f"/cases/{case_id}").json()["assignee_id"] == member_profile["id"]


# -- input that was a 500, or was taken though it meant two things (issue 13, section 8) -------

def raw_post(client: Client, path: str, data: bytes | str, content_type: str | None = "application/json",
             **headers):
    """A body sent as it is written, not as `requests` would encode it."""
    headers = {**client.headers, **headers}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(client.api + path, data=data, headers=headers, timeout=30)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def gateway_log(stack) -> str:
    return (stack.var_dir / "log" / "gateway-0.log").read_text(errors="replace")


def test_input_that_was_a_500_or_ambiguous_is_a_4xx_naming_the_field_and_changes_nothing(stack, admin, register):
    member, member_profile = register()
    campaign = new_campaign(admin)
    gifts = f"/campaigns/{campaign['id']}/donations"
    donated(member, campaign["id"], {"kind": "cash", "amount_fen": 100})
    before = snapshot(admin), campaign_of(admin, campaign["id"])["totals"]
    log_before = len(gateway_log(stack))
    anonymous = Client(stack.url)

    # JSON nested 900 levels or more (also anonymously, on /auth/token): a RecursionError.
    for depth in (900, 5_000, 100_000):
        body = '{"kind": "cash", "amount_fen": 1, "donor_name": ' + nested(depth) + "}"
        assert_error(raw_post(member, gifts, body, **{"Idempotency-Key": new_key()}), 400, "invalid_input",
                     ("_schema",))
        assert_error(raw_post(anonymous, "/auth/token", '{"username": ' + nested(depth) + ', "password": "x"}'),
                     400, "invalid_input", ("_schema",))
        assert_error(raw_post(admin, "/households", '{"compound": "X", "people": ' + nested(depth) + "}"),
                     400, "invalid_input", ("_schema",))

    # A cursor holding 1,500 nested '['.
    cursor = base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("=")
    assert_error(admin.get("/cases", params={"cursor": cursor}), 400, "invalid_input", ("cursor",))
    assert_error(admin.get(gifts, params={"cursor": cursor}), 400, "invalid_input", ("cursor",))

    # A lone surrogate, as JSON spells it: no database or log file can take it.
    lone = '"\\ud800"'
    assert_error(raw_post(member, gifts, '{"kind": "cash", "amount_fen": 7, "donor_name": %s}' % lone,
                          **{"Idempotency-Key": new_key()}), 400, "invalid_input", ("donor_name",))
    assert_error(raw_post(anonymous, "/auth/token", '{"username": %s, "password": "x"}' % lone),
                 400, "invalid_input", ("username",))
    webhook = requests.put(member.api + "/me/webhook", data='{"url": "https://example.org/%s"}' % lone[1:-1],
                           headers={**member.headers, "Content-Type": "application/json"}, timeout=15)
    assert_error(webhook, 400, "invalid_input", ("url",))
    assert_error(raw_post(admin, "/households", '{"compound": "X", "address": %s, "people": '
                                                '[{"name": "A", "relation": "self", "birth_year": 1950}]}' % lone),
                 400, "invalid_input", ("address",))
    assert_error(raw_post(admin, "/households", '{"compound": "X", %s: 1}' % lone), 400, "invalid_input")

    # A key given twice: the last one must not win silently.
    twice = raw_post(member, gifts, '{"kind": "cash", "amount_fen": 1, "amount_fen": 999999}',
                     **{"Idempotency-Key": new_key()})
    assert_error(twice, 400, "invalid_input", ("amount_fen",))

    # A body that is not sent as JSON is not read as JSON.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        assert_error(raw_post(member, gifts, '{"kind": "cash", "amount_fen": 777}', content_type,
                              **{"Idempotency-Key": new_key()}), 415, "unsupported_media_type", ("Content-Type",))
    assert raw_post(member, gifts, '{"kind": "cash", "amount_fen": 1}', "application/json; charset=utf-8",
                    **{"Idempotency-Key": "charset-ok"}).status_code == 201
    after = campaign_of(admin, campaign["id"])["totals"]
    assert after == {**before[1], "cash_fen": before[1]["cash_fen"] + 1, "donations": before[1]["donations"] + 1}

    assert snapshot(admin) == before[0]
    assert member.get("/me/webhook").status_code == 404
    assert "Traceback" not in gateway_log(stack)[log_before:]  # a client's mistake is not the gateway's


def test_a_donation_or_dispatch_without_an_idempotency_key_is_refused_naming_the_header(admin, register):
    """A keyless donation that timed out was recorded, and its keyless retry recorded again (777 fen twice)."""
    member, _ = register()
    campaign = new_campaign(admin)
    donated(member, campaign["id"], {"kind": "in_kind", "items": [{"category": "water", "quantity": 6}]})
    before = campaign_of(admin, campaign["id"])

    for _ in range(2):  # the first try and the careless retry
        assert_error(donate(member, campaign["id"], {"kind": "cash", "amount_fen": 777}, keyless=True),
                     400, "idempotency_key_required", ("Idempotency-Key",))
    assert_error(admin.post(f"/campaigns/{campaign['id']}/dispatches",
                            {"destination": "Shelter 1", "items": [{"category": "water", "quantity": 1}]}),
                 400, "idempotency_key_required", ("Idempotency-Key",))
    assert campaign_of(admin, campaign["id"]) == before
    assert admin.get(f"/campaigns/{campaign['id']}/dispatches").json()["items"] == []


@pytest.mark.slow  # about 12 s of the largest gifts
def test_no_sequence_of_valid_gifts_overflows_a_counter(stack, admin, register):
    """On PostgreSQL the 43rd gift of 1,000,000 items overflowed a stock counter
    ("integer out of range", a 500). A line is now at most 100,000 items, and
    the counters hold what 430 of the largest gifts add up to: 2.15 x 10^9
    items of one category, past what an INTEGER holds (2^31 - 1)."""
    member, _ = register()
    campaign = new_campaign(admin)
    log_before = len(gateway_log(stack))
    assert_error(donate(member, campaign["id"], {"kind": "in_kind", "items": [
        {"category": "clothing", "quantity": 1_000_000}]}), 400, "invalid_input", ("items",))

    largest = {"kind": "in_kind", "items": [{"category": "clothing", "quantity": 100_000}] * 50}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: donate(member, campaign["id"], largest).status_code, range(430)))
    assert answers == [201] * 430
    totals = campaign_of(admin, campaign["id"])["totals"]
    assert totals == {"cash_fen": 0, "items": {"clothing": 2_150_000_000}, "donations": 430}
    assert 2_150_000_000 > 2**31 - 1
    assert "Traceback" not in gateway_log(stack)[log_before:]
