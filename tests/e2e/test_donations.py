"""Donation drives through the gateway, every service a real process: 200
concurrent donations (50 retried at once with the same Idempotency-Key) add up
to exactly 16,000 yuan with gap-free receipts; racing dispatches never
oversell; goods reach a hardship case; public receipts name no one;
goal_reached alerts once; bad input and wrong roles count nothing."""
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.conftest import nothing_more_arrives, wait_for
from tests.e2e.conftest import HOUSEHOLD, new_key, open_case


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py): this module counts only what it makes."""
    return office_stack

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def local_today():
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def new_campaign(admin, goal_fen: int = 2_000_000, name: str | None = None, starts_in: int = -1,
                 ends_in: int = 1) -> dict:
    today = local_today()
    answer = admin.post("/campaigns", {
        "name": name or f"Earthquake relief {uuid.uuid4().hex[:6]}", "goal_fen": goal_fen,
        "starts_on": (today + timedelta(days=starts_in)).isoformat(),
        "ends_on": (today + timedelta(days=ends_in)).isoformat()})
    assert answer.status_code == 201, answer.text
    campaign = answer.json()
    assert campaign["status"] == "open"
    assert campaign["totals"] == {"cash_fen": 0, "items": {}, "donations": 0}
    return campaign


def donate(client, campaign_id: str, body: dict, key: str | None = None, *, keyless: bool = False):
    """A donation with `key` (a new one if none is given), or without any (`keyless`)."""
    headers = dict(client.headers)
    if not keyless:
        headers["Idempotency-Key"] = key or new_key()
    return requests.post(f"{client.api}/campaigns/{campaign_id}/donations", json=body, headers=headers,
                         timeout=30)


def donated(client, campaign_id: str, body: dict, key: str | None = None) -> dict:
    answer = donate(client, campaign_id, body, key)
    assert answer.status_code == 201, answer.text
    return answer.json()


def campaign_of(client, campaign_id: str) -> dict:
    answer = client.get(f"/campaigns/{campaign_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def dispatch(client, campaign_id: str, body: dict, key: str | None = None):
    return client.post(f"/campaigns/{campaign_id}/dispatches", body, key=key or new_key())


def public_receipt(stack, receipt_no: str, code: str):
    """No Authorization header: anyone holding the paper receipt."""
    return requests.get(f"{stack.url}/api/v1/receipts/{receipt_no}", params={"code": code}, timeout=15)


def assert_error(answer, status: int, code: str, fields: tuple = ()):
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"], error
    for field in fields:
        assert field in error["details"].get("fields", {}), (field, error)


def receipt_seq(receipt_no: str) -> int:
    prefix, _, number = receipt_no.rpartition("-")
    assert prefix and number.isdigit(), receipt_no
    return int(number)


# -- 1. 200 concurrent donations, 50 retried at the same moment ----------------------------------


def test_200_concurrent_donations_with_50_retries_count_exactly_16000_yuan_with_gap_free_receipts(admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin, goal_fen=5_000_000)
    # Amounts in pairs around 80 yuan (7999 + 8001, 7998 + 8002, ...): all different, exactly 1,600,000 fen.
    amounts = [8_000 + (k + 1) * sign for k in range(100) for sign in (-1, 1)]
    assert len(amounts) == 200 and len(set(amounts)) == 200 and sum(amounts) == 1_600_000
    donations = []
    for i, amount in enumerate(amounts):
        body = {"kind": "cash", "amount_fen": amount}
        if i % 3 == 0:
            body["anonymous"] = True
        else:
            body["donor_name"] = f"居民{i}"
        donations.append((f"table-1-{uuid.uuid4().hex}", body))
    rng = random.Random(4)
    retried = rng.sample(range(200), 50)
    # Each retry goes right beside its first sending, from the same desk, so the two race;
    # half the desks are the admin's.
    jobs = [(volunteer if i % 2 else admin, *donations[i]) for i in range(200)]
    for i in sorted(retried, reverse=True):
        jobs.insert(i + 1, jobs[i])
    assert len(jobs) == 250

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda job: donate(job[0], campaign["id"], job[2], job[1]), jobs))

    assert [a.status_code for a in answers if a.status_code != 201] == [], \
        [a.text for a in answers if a.status_code != 201][:3]
    by_key: dict[str, list[dict]] = {}
    for (_client, key, _body), answer in zip(jobs, answers, strict=True):
        by_key.setdefault(key, []).append(answer.json())
    assert len(by_key) == 200
    for key, body in donations:
        firsts = by_key[key]
        assert len(firsts) == (2 if donations.index((key, body)) in retried else 1)
        # A retry gets the first answer: the same receipt, code and donation.
        assert all(other == firsts[0] for other in firsts[1:]), (key, firsts)
        assert firsts[0]["amount_fen"] == body["amount_fen"] and firsts[0]["kind"] == "cash"

    receipt_nos = [answer.json()["receipt_no"] for answer in answers]
    distinct = set(receipt_nos)
    assert len(distinct) == 200
    assert {no.rpartition("-")[0] for no in distinct} == {campaign["code"]}
    assert sorted(receipt_seq(no) for no in distinct) == list(range(1, 201))
    assert len({answer.json()["id"] for answer in answers}) == 200
    assert len({answer.json()["verification_code"] for answer in answers}) > 190  # random, not per number

    view = campaign_of(admin, campaign["id"])
    assert view["totals"] == {"cash_fen": 1_600_000, "items": {}, "donations": 200}
    assert view["progress_percent"] == 32.0
    # The listing agrees: 200 donations, 1,600,000 fen, each receipt once.
    listed = admin.get(f"/campaigns/{campaign['id']}/donations", params={"limit": 200}).json()
    assert listed["next_cursor"] is None
    assert len(listed["items"]) == 200
    assert sum(d["amount_fen"] for d in listed["items"]) == 1_600_000
    assert {d["receipt_no"] for d in listed["items"]} == distinct

    # The same key again later, same body: the first answer, nothing counted.
    key, body = donations[retried[0]]
    desk, other_desk = (volunteer, admin) if retried[0] % 2 else (admin, volunteer)
    again = donate(desk, campaign["id"], body, key)
    assert again.status_code == 201 and again.json() == by_key[key][0]
    # The same key with a different amount is refused and counts nothing; so is
    # the same key from another account, which is not told the first answer.
    changed = donate(desk, campaign["id"], {**body, "amount_fen": body["amount_fen"] + 1}, key)
    assert_error(changed, 422, "idempotency_key_reused")
    assert_error(donate(other_desk, campaign["id"], body, key), 422, "idempotency_key_reused")
    assert campaign_of(admin, campaign["id"])["totals"] == {"cash_fen": 1_600_000, "items": {}, "donations": 200}
    # A donation after all that takes the next number: no number was burnt by the retries.
    after = donated(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 100, "donor_name": "后来者"})
    assert receipt_seq(after["receipt_no"]) == 201


# -- 2. racing dispatches -------------------------------------------------------------------------


def test_racing_dispatches_never_oversell(admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin)
    donated(volunteer, campaign["id"], {"kind": "in_kind", "donor_name": "孙丽", "items": [
        {"category": "bedding", "quantity": 10, "description": "cotton quilts"}]})
    assert campaign_of(admin, campaign["id"])["stock"] == {"bedding": 10}

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda i: dispatch(admin, campaign["id"], {
            "destination": f"Shelter {i}", "items": [{"category": "bedding", "quantity": 3}]}), range(8)))

    assert sorted(a.status_code for a in answers) == [201] * 3 + [409] * 5, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert_error(refused, 409, "conflict")
        assert "bedding" in refused.json()["error"]["details"]["stock"]
    view = campaign_of(admin, campaign["id"])
    assert view["stock"] == {"bedding": 1}
    assert view["totals"]["items"] == {"bedding": 10}
    listed = admin.get(f"/campaigns/{campaign['id']}/dispatches").json()["items"]
    assert len(listed) == 3
    assert sorted(d["id"] for d in listed) == sorted(a.json()["id"] for a in answers if a.status_code == 201)
    assert all(d["items"] == [{"category": "bedding", "quantity": 3}] for d in listed)

    # A dispatch short in one category sends nothing of the others either.
    short = dispatch(admin, campaign["id"], {"destination": "Shelter 9", "items": [
        {"category": "bedding", "quantity": 1}, {"category": "clothing", "quantity": 1}]})
    assert_error(short, 409, "conflict")
    assert set(short.json()["error"]["details"]["stock"]) == {"clothing"}
    assert campaign_of(admin, campaign["id"])["stock"] == {"bedding": 1}
    assert len(admin.get(f"/campaigns/{campaign['id']}/dispatches").json()["items"]) == 3
    # The last blanket can still go.
    last = dispatch(admin, campaign["id"], {"destination": "Shelter 9", "items": [
        {"category": "bedding", "quantity": 1}]})
    assert last.status_code == 201, last.text
    assert campaign_of(admin, campaign["id"])["stock"] == {"bedding": 0}


# -- 3. goods to a hardship case ------------------------------------------------------------------


def test_goods_dispatched_to_a_case_show_on_it_as_assistance(stack, admin, register):
    volunteer, _ = register()
    _, assignee = register()
    case = open_case(admin, assignee["id"])
    campaign = new_campaign(admin)
    gift = donated(volunteer, campaign["id"], {"kind": "in_kind", "donor_name": "周杰", "items": [
        {"category": "clothing", "quantity": 5, "description": "winter coats"}]})

    sent = dispatch(admin, campaign["id"], {"case_id": case["id"], "items": [{"category": "clothing", "quantity": 2}]})
    assert sent.status_code == 201, sent.text
    assert sent.json()["case_id"] == case["id"] and sent.json()["destination"] is None

    def assistance():
        answer = admin.get(f"/cases/{case['id']}")
        assert answer.status_code == 200, answer.text
        return answer.json()["assistance"]

    received = wait_for(assistance, timeout=15, what="the assistance on the case")
    assert [(a["category"], a["quantity"], a["campaign_id"], a["dispatch_id"]) for a in received] == [
        ("clothing", 2, campaign["id"], sent.json()["id"])]
    assert campaign_of(admin, campaign["id"])["stock"] == {"clothing": 3}

    # The donor can follow the gift to "a household", never to which one.
    receipt = public_receipt(stack, gift["receipt_no"], gift["verification_code"])
    assert receipt.status_code == 200, receipt.text
    assert [(g["category"], g["quantity"]) for g in receipt.json()["goods_sent"]] == [("clothing", 2)]
    text = receipt.text
    for private in [case["id"], case["household_id"], HOUSEHOLD["address"],
                    *(p["name"] for p in HOUSEHOLD["people"]), "周杰"]:
        assert private not in text, private

    # An unknown case is a 400 naming case_id, and nothing leaves the stock.
    unknown = dispatch(admin, campaign["id"], {"case_id": uuid.uuid4().hex, "items": [
        {"category": "clothing", "quantity": 1}]})
    assert_error(unknown, 400, "invalid_input", ("case_id",))
    assert campaign_of(admin, campaign["id"])["stock"] == {"clothing": 3}
    assert len(admin.get(f"/campaigns/{campaign['id']}/dispatches").json()["items"]) == 1


# -- 4. public receipts and anonymous donors ------------------------------------------------------


def test_a_public_receipt_shows_the_gift_and_where_it_went_but_no_name(stack, admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin, name="Earthquake relief, Wenchuan street")
    cash = donated(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 5_000, "donor_name": "王芳"})
    goods = donated(volunteer, campaign["id"], {"kind": "in_kind", "donor_name": "赵磊", "items": [
        {"category": "clothing", "quantity": 4, "description": "children's jackets"},
        {"category": "bedding", "quantity": 2}]})
    hidden = donated(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 300, "donor_name": "钱多多",
                                                 "anonymous": True})
    assert hidden["donor_name"] is None and hidden["anonymous"] is True
    for receipt in (cash, goods, hidden):
        assert len(receipt["verification_code"]) >= 6
        assert set(receipt["verification_code"]) <= set(CODE_ALPHABET)
        assert receipt["verification_code"] not in receipt["receipt_no"]
    sent = dispatch(admin, campaign["id"], {"destination": "Shelter 3", "items": [
        {"category": "clothing", "quantity": 3}]})
    assert sent.status_code == 201, sent.text

    answer = public_receipt(stack, cash["receipt_no"], cash["verification_code"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["receipt_no"] == cash["receipt_no"]
    assert body["kind"] == "cash" and body["amount_fen"] == 5_000 and body["items"] == []
    assert body["campaign"] == {"id": campaign["id"], "name": "Earthquake relief, Wenchuan street"}
    assert body["received_at"] and body["goods_sent"] == []
    assert "王芳" not in answer.text and "donor_name" not in body and "verification_code" not in body

    answer = public_receipt(stack, goods["receipt_no"], goods["verification_code"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "in_kind" and body["amount_fen"] is None
    assert sorted((i["category"], i["quantity"]) for i in body["items"]) == [("bedding", 2), ("clothing", 4)]
    assert body["campaign"]["name"] == "Earthquake relief, Wenchuan street"
    assert body["goods_sent"] == [{"category": "clothing", "to": "Shelter 3", "quantity": 3}]
    for name in ("赵磊", "王芳", "钱多多"):
        assert name not in answer.text

    # A wrong code looks exactly like an unknown number.
    code = goods["verification_code"]
    wrong_code = code[:-1] + next(c for c in CODE_ALPHABET if c != code[-1])
    wrong = public_receipt(stack, goods["receipt_no"], wrong_code)
    unknown = public_receipt(stack, campaign["code"] + "-999999", code)
    other_code = public_receipt(stack, goods["receipt_no"], cash["verification_code"])
    assert wrong.status_code == unknown.status_code == other_code.status_code == 404
    # The same answer but for each request's own id.
    alike = [{**a.json()["error"], "request_id": None} for a in (wrong, unknown, other_code)]
    assert alike[0] == alike[1] == alike[2]
    assert wrong.json()["error"]["code"] == "not_found"
    assert_error(requests.get(f"{stack.url}/api/v1/receipts/{goods['receipt_no']}", timeout=15),
                 400, "invalid_input", ("code",))

    # The listing never carries a code, nor an anonymous donor's name.
    listed = admin.get(f"/campaigns/{campaign['id']}/donations")
    assert listed.status_code == 200, listed.text
    items = {d["receipt_no"]: d for d in listed.json()["items"]}
    assert set(items) == {cash["receipt_no"], goods["receipt_no"], hidden["receipt_no"]}
    assert items[hidden["receipt_no"]]["donor_name"] is None and items[hidden["receipt_no"]]["anonymous"] is True
    assert items[cash["receipt_no"]]["donor_name"] == "王芳"
    assert all("verification_code" not in d for d in items.values())
    assert "钱多多" not in listed.text
    # A volunteer reprints a receipt by number, with its code; still no anonymous name.
    again = volunteer.get(f"/campaigns/{campaign['id']}/donations/{hidden['receipt_no']}")
    assert again.status_code == 200, again.text
    assert again.json()["verification_code"] == hidden["verification_code"]
    assert again.json()["donor_name"] is None and "钱多多" not in again.text


# -- 5. goal_reached, once --------------------------------------------------------------------------


def goal_alerts(client, campaign_id: str) -> list[dict]:
    answer = client.get("/me/alerts", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    return [a for a in answer.json()["items"] if a["ref"] == {"type": "campaign", "id": campaign_id}]


def test_reaching_the_goal_alerts_the_campaigns_creator_exactly_once(admin, register):
    creator, creator_profile = register(roles=["admin"], party_member=False)
    volunteer, _ = register()
    campaign = new_campaign(creator, goal_fen=10_000)
    assert campaign["created_by"] == creator_profile["id"]

    donated(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 6_000, "donor_name": "刘洋"})
    assert campaign_of(admin, campaign["id"])["goal_reached_at"] is None
    donated(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 5_000, "donor_name": "陈静"})
    alerts = wait_for(lambda: goal_alerts(creator, campaign["id"]), timeout=15, what="the goal_reached alert")
    assert [(a["kind"], a["ref"]) for a in alerts] == [("goal_reached", {"type": "campaign", "id": campaign["id"]})]
    view = campaign_of(admin, campaign["id"])
    assert view["goal_reached_at"] is not None and view["progress_percent"] == 110.0
    reached_at = view["goal_reached_at"]

    donated(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 3_000})
    # Let a second campaign reach its goal: once its alert is in, any second alert for the first would be too.
    marker = new_campaign(creator, goal_fen=100)
    donated(volunteer, marker["id"], {"kind": "cash", "amount_fen": 100})
    wait_for(lambda: goal_alerts(creator, marker["id"]), timeout=15, what="the second campaign's alert")
    assert nothing_more_arrives(lambda: len(goal_alerts(creator, campaign["id"])), what="the goal alerts") == 1
    assert campaign_of(admin, campaign["id"])["goal_reached_at"] == reached_at
    # Only the creator hears it.
    assert goal_alerts(admin, campaign["id"]) == []


def test_donations_racing_past_the_goal_alert_once(admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin, goal_fen=10_000)
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda i: donate(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 1_000},
                                                 f"race-{campaign['id']}-{i}"), range(24)))
    assert [a.status_code for a in answers] == [201] * 24
    assert campaign_of(admin, campaign["id"])["totals"]["cash_fen"] == 24_000
    wait_for(lambda: goal_alerts(admin, campaign["id"]), timeout=15, what="the goal_reached alert")
    marker = new_campaign(admin, goal_fen=100)
    donated(volunteer, marker["id"], {"kind": "cash", "amount_fen": 100})
    wait_for(lambda: goal_alerts(admin, marker["id"]), timeout=15, what="the second campaign's alert")
    assert nothing_more_arrives(lambda: [a["kind"] for a in goal_alerts(admin, campaign["id"])],
                                what="the goal alerts") == ["goal_reached"]


# -- 6. bad input and wrong roles count nothing -----------------------------------------------------


def test_bad_donations_and_wrong_roles_are_refused_and_count_nothing(stack, admin, register):
    volunteer, _ = register()
    viewer, _ = register(roles=["viewer"], party_member=False)
    campaign = new_campaign(admin)
    cid = campaign["id"]
    first = donated(volunteer, cid, {"kind": "cash", "amount_fen": 500, "donor_name": "吴敏"}, key="before-close")
    donated(volunteer, cid, {"kind": "in_kind", "items": [{"category": "water", "quantity": 6}]})
    before = campaign_of(admin, cid)
    assert before["totals"] == {"cash_fen": 500, "items": {"water": 6}, "donations": 2}

    for amount in (1.5, 1.0, "100", 0, -100, True, None, 10**12):
        assert_error(donate(volunteer, cid, {"kind": "cash", "amount_fen": amount}, uuid.uuid4().hex),
                     400, "invalid_input", ("amount_fen",))
    assert_error(donate(volunteer, cid, {"kind": "cash"}), 400, "invalid_input", ("amount_fen",))
    assert_error(donate(volunteer, cid, {"kind": "in_kind"}), 400, "invalid_input", ("items",))
    assert_error(donate(volunteer, cid, {"kind": "in_kind", "items": []}), 400, "invalid_input", ("items",))
    assert_error(donate(volunteer, cid, {"kind": "in_kind", "items": [{"category": "furniture", "quantity": 1}]}),
                 400, "invalid_input", ("items",))
    assert_error(donate(volunteer, cid, {"kind": "in_kind", "items": [{"category": "food", "quantity": 0}]}),
                 400, "invalid_input", ("items",))
    assert_error(donate(volunteer, cid, {"kind": "in_kind", "items": [{"category": "food", "quantity": 2.5}]}),
                 400, "invalid_input", ("items",))
    assert_error(donate(volunteer, cid, {"kind": "in_kind", "amount_fen": 100,
                                         "items": [{"category": "food", "quantity": 1}]}),
                 400, "invalid_input", ("amount_fen",))
    assert_error(donate(volunteer, cid, {"kind": "cash", "amount_fen": 100,
                                         "items": [{"category": "food", "quantity": 1}]}),
                 400, "invalid_input", ("items",))
    assert_error(donate(volunteer, cid, {"kind": "cheque", "amount_fen": 100}), 400, "invalid_input", ("kind",))
    assert_error(donate(volunteer, cid, {"kind": "cash", "amount_fen": 100}, "k" * 101), 400, "invalid_input")
    assert_error(donate(volunteer, uuid.uuid4().hex, {"kind": "cash", "amount_fen": 100}), 404, "not_found")

    # Wrong roles.
    today = local_today()
    assert_error(volunteer.post("/campaigns", {"name": "Mine", "goal_fen": 100, "starts_on": today.isoformat(),
                                               "ends_on": today.isoformat()}), 403, "forbidden")
    assert_error(donate(viewer, cid, {"kind": "cash", "amount_fen": 100}), 403, "forbidden")
    assert viewer.get(f"/campaigns/{cid}").status_code == 200
    one_water = {"destination": "Shelter 1", "items": [{"category": "water", "quantity": 1}]}
    assert_error(dispatch(volunteer, cid, one_water), 403, "forbidden")
    assert_error(dispatch(viewer, cid, one_water), 403, "forbidden")
    assert_error(volunteer.post(f"/campaigns/{cid}/close"), 403, "forbidden")
    assert_error(donate(type(volunteer)(stack.url), cid, {"kind": "cash", "amount_fen": 100}), 401, "not_authenticated")

    # Dispatches that make no sense.
    assert_error(dispatch(admin, cid, {"items": [{"category": "water", "quantity": 1}]}), 400, "invalid_input")
    assert_error(dispatch(admin, cid, {"destination": "Shelter 1", "case_id": "x",
                                       "items": [{"category": "water", "quantity": 1}]}), 400, "invalid_input")
    assert_error(dispatch(admin, cid, {"destination": "Shelter 1", "items": [{"category": "water", "quantity": 0}]}),
                 400, "invalid_input", ("items",))
    assert_error(dispatch(admin, cid, {"destination": "Shelter 1", "items": [{"category": "water", "quantity": 7}]}),
                 409, "conflict")

    # Outside its dates a campaign takes nothing.
    for starts_in, ends_in in ((3, 10), (-10, -3)):
        other = new_campaign(admin, starts_in=starts_in, ends_in=ends_in)
        assert_error(donate(volunteer, other["id"], {"kind": "cash", "amount_fen": 100}, uuid.uuid4().hex),
                     409, "conflict")
        assert campaign_of(admin, other["id"])["totals"]["donations"] == 0
    assert_error(admin.post("/campaigns", {"name": "Backwards", "goal_fen": 100, "starts_on": today.isoformat(),
                                           "ends_on": (today - timedelta(days=1)).isoformat()}),
                 400, "invalid_input", ("ends_on",))
    for goal in (0, -1, 1.5, "100"):
        assert_error(admin.post("/campaigns", {"name": "Bad goal", "goal_fen": goal, "starts_on": today.isoformat(),
                                               "ends_on": today.isoformat()}), 400, "invalid_input", ("goal_fen",))

    # Closed: no more donations, closing twice is a conflict; a retry of an earlier donation still answers as before.
    closed = admin.post(f"/campaigns/{cid}/close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert_error(donate(volunteer, cid, {"kind": "cash", "amount_fen": 100}, uuid.uuid4().hex), 409, "conflict")
    assert_error(donate(volunteer, cid, {"kind": "in_kind", "items": [{"category": "food", "quantity": 1}]}),
                 409, "conflict")
    assert_error(admin.post(f"/campaigns/{cid}/close"), 409, "conflict")
    retry = donate(volunteer, cid, {"kind": "cash", "amount_fen": 500, "donor_name": "吴敏"}, "before-close")
    assert retry.status_code == 201 and retry.json() == first

    after = campaign_of(admin, cid)
    assert after["totals"] == before["totals"]
    assert after["stock"] == before["stock"] == {"water": 6}
    assert after["status"] == "closed"
    listed = admin.get(f"/campaigns/{cid}/donations").json()["items"]
    assert sorted(receipt_seq(d["receipt_no"]) for d in listed) == [1, 2]
    assert admin.get(f"/campaigns/{cid}/dispatches").json()["items"] == []
    # Goods already given can still go out after the drive closes.
    late = dispatch(admin, cid, {"destination": "Shelter 2", "items": [{"category": "water", "quantity": 6}]})
    assert late.status_code == 201, late.text
    assert campaign_of(admin, cid)["stock"] == {"water": 0}
