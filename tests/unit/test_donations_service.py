"""The donations service as nameko workers (worker_factory) over a real
in-memory database: campaigns and their live totals, donations with their
receipts and Idempotency-Key replays, stock and dispatches, the public receipt
lookup, and what each change announces in the outbox; and corrections: a gift
voided (totals and stock down at once, nothing deleted, twice a 409, goods
already sent a 409 that changes nothing), a drive edited, goal_reached once
per drive ever, and the ledger export, which is audited."""
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from services.common import idempotency
from services.common.errors import Conflict, Forbidden, IdempotencyKeyReused, InvalidInput, NotFound
from services.donations.domain import (
    CODE_ALPHABET, MAX_CAMPAIGN_TOTAL, MAX_ITEM_LINES, MAX_ITEM_QUANTITY, VERIFICATION_CODE_LENGTH,
)
from services.donations.models import AuditEntry, Campaign, Dispatch, Donation, DonationItem, Stock

ADMIN = {"id": "admin-1", "roles": ["admin"]}
VOLUNTEER = {"id": "volunteer-1", "roles": ["member"]}
DONOR = "张伟"
CASE_ID = "case-7f3a9c"
SHELTER = "Jiangyou No. 2 Middle School shelter"
CASE_DESTINATION = "a household in need (hardship case)"


def today():
    """The community's calendar day, as the service reckons it."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def campaign_payload(goal_fen=1_600_000, starts=-1, ends=30, name="Earthquake relief 地震救灾"):
    return {"name": name, "goal_fen": goal_fen,
            "starts_on": (today() + timedelta(days=starts)).isoformat(),
            "ends_on": (today() + timedelta(days=ends)).isoformat()}


@pytest.fixture
def campaign(donations):
    return donations().create_campaign(campaign_payload(), ADMIN)


def cash(amount_fen, donor_name=DONOR, **extra):
    return {"kind": "cash", "amount_fen": amount_fen, "donor_name": donor_name, **extra}


def goods(*items, donor_name=DONOR, **extra):
    """goods(("clothing", 3), ("bedding", 2, "two quilts"))"""
    return {"kind": "in_kind", "donor_name": donor_name, **extra,
            "items": [{"category": c, "quantity": q, **({"description": d[0]} if d else {})}
                      for c, q, *d in items]}


def donation_rows(db):
    with Session(db.engine) as session:
        return session.scalars(select(Donation).order_by(Donation.seq)).all()


def assert_nothing_counted(donations, donations_db, campaign_id):
    totals = donations().get_campaign(campaign_id)
    assert totals["totals"] == {"cash_fen": 0, "items": {}, "donations": 0}
    assert totals["stock"] == {}
    assert totals["progress_percent"] == 0
    assert donations_db.count(Donation) == 0
    assert donations_db.count(DonationItem) == 0
    assert donations_db.outbox("donation_received") == []


# -- campaigns -------------------------------------------------------------------

def test_an_admin_opens_a_campaign_with_empty_totals_and_announces_it(donations, donations_db):
    payload = campaign_payload(goal_fen=1_600_000)
    campaign = donations().create_campaign(payload, ADMIN)

    assert campaign["name"] == "Earthquake relief 地震救灾"
    assert campaign["goal_fen"] == 1_600_000
    assert (campaign["starts_on"], campaign["ends_on"]) == (payload["starts_on"], payload["ends_on"])
    assert campaign["status"] == "open" and campaign["created_by"] == "admin-1"
    assert campaign["goal_reached_at"] is None
    assert campaign["totals"] == {"cash_fen": 0, "items": {}, "donations": 0}
    assert campaign["progress_percent"] == 0 and campaign["stock"] == {}
    assert len(campaign["code"]) == 6 and set(campaign["code"]) <= set(CODE_ALPHABET)

    assert donations().get_campaign(campaign["id"]) == campaign
    rows = donations_db.outbox("campaign_created")
    assert len(rows) == 1
    assert rows[0]["envelope"]["source"] == "donations"
    assert rows[0]["envelope"]["data"] == {
        "campaign_id": campaign["id"], "name": "Earthquake relief 地震救灾", "goal_fen": 1_600_000,
        "starts_on": payload["starts_on"], "ends_on": payload["ends_on"]}


def test_only_an_admin_opens_a_campaign(donations, donations_db):
    with pytest.raises(Forbidden):
        donations().create_campaign(campaign_payload(), VOLUNTEER)
    assert donations_db.count(Campaign) == 0
    assert donations_db.outbox() == []


def test_a_campaign_that_ends_before_it_starts_is_invalid_input_naming_ends_on(donations, donations_db):
    with pytest.raises(InvalidInput) as raised:
        donations().create_campaign(campaign_payload(starts=3, ends=2), ADMIN)
    assert "ends_on" in raised.value.details["fields"]
    assert donations_db.count(Campaign) == 0
    assert donations_db.outbox() == []


@pytest.mark.parametrize("goal_fen", [0, -100, 1.5, 100.0, "100", None, True],
                         ids=["zero", "negative", "float", "whole float", "string", "null", "boolean"])
def test_a_goal_that_is_not_a_positive_integer_of_fen_is_invalid_input(donations, donations_db, goal_fen):
    with pytest.raises(InvalidInput) as raised:
        donations().create_campaign(campaign_payload(goal_fen=goal_fen), ADMIN)
    assert "goal_fen" in raised.value.details["fields"]
    assert donations_db.count(Campaign) == 0


def test_an_unknown_campaign_is_not_found(donations):
    with pytest.raises(NotFound):
        donations().get_campaign("no-such-campaign")
    with pytest.raises(NotFound):
        donations().record_donation("no-such-campaign", cash(100), VOLUNTEER)


# -- donations and totals -----------------------------------------------------------

def test_cash_and_goods_add_up_in_the_campaign_totals(donations, donations_db):
    campaign = donations().create_campaign(campaign_payload(goal_fen=100_000), ADMIN)
    donations().record_donation(campaign["id"], cash(5_000), VOLUNTEER)
    donations().record_donation(campaign["id"], cash(2_500, donor_name=None), VOLUNTEER)
    # The same category twice in one gift is summed.
    donations().record_donation(campaign["id"], goods(("clothing", 3, "winter coats"), ("bedding", 2),
                                                      ("clothing", 4)), VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("bedding", 1)), VOLUNTEER)

    seen = donations().get_campaign(campaign["id"])
    assert seen["totals"] == {"cash_fen": 7_500, "items": {"clothing": 7, "bedding": 3}, "donations": 4}
    assert seen["progress_percent"] == 7.5  # 7,500 of 100,000 fen
    assert seen["stock"] == {"clothing": 7, "bedding": 3}
    assert isinstance(seen["totals"]["cash_fen"], int)

    listed = donations().list_campaigns()["items"]
    assert [c["totals"] for c in listed] == [seen["totals"]]

    events = [row["envelope"]["data"] for row in donations_db.outbox("donation_received")]
    assert sorted((e["cash_fen_total"], e["donations_total"]) for e in events) == [
        (5_000, 1), (7_500, 2), (7_500, 3), (7_500, 4)]
    in_kind = [e for e in events if e["kind"] == "in_kind"]
    assert sorted(tuple(sorted((i["category"], i["quantity"]) for i in e["items"])) for e in in_kind) == [
        (("bedding", 1),), (("bedding", 2), ("clothing", 7))]


def test_a_donation_answers_with_its_receipt(donations, campaign):
    donation = donations().record_donation(campaign["id"], goods(("bedding", 2, "two quilts")), VOLUNTEER)
    assert donation["receipt_no"] == f"{campaign['code']}-000001"
    assert len(donation["verification_code"]) == VERIFICATION_CODE_LENGTH
    assert set(donation["verification_code"]) <= set(CODE_ALPHABET)
    assert donation["kind"] == "in_kind" and donation["amount_fen"] is None
    assert donation["items"] == [{"category": "bedding", "quantity": 2, "description": "two quilts"}]
    assert donation["donor_name"] == DONOR and donation["anonymous"] is False
    assert donation["recorded_by"] == "volunteer-1" and donation["created_at"].endswith("Z")
    # Reprinted by its number, as it was.
    assert donations().get_donation(campaign["id"], donation["receipt_no"]) == donation
    with pytest.raises(NotFound):
        donations().get_donation(campaign["id"], f"{campaign['code']}-000002")


def test_receipt_numbers_are_gap_free_and_unique_within_each_campaign(donations, donations_db, campaign):
    other = donations().create_campaign(campaign_payload(name="Winter coats"), ADMIN)
    numbers = [donations().record_donation(campaign["id"], cash(100), VOLUNTEER)["receipt_no"] for _ in range(2)]
    # Refused donations take no number.
    with pytest.raises(InvalidInput):
        donations().record_donation(campaign["id"], cash(0), VOLUNTEER)
    with pytest.raises(InvalidInput):
        donations().record_donation(campaign["id"], goods(), VOLUNTEER)
    numbers.append(donations().record_donation(campaign["id"], goods(("water", 24)), VOLUNTEER)["receipt_no"])
    numbers.append(donations().record_donation(campaign["id"], cash(100), VOLUNTEER)["receipt_no"])
    first_of_other = donations().record_donation(other["id"], cash(100), VOLUNTEER)["receipt_no"]

    code = campaign["code"]
    assert numbers == [f"{code}-000001", f"{code}-000002", f"{code}-000003", f"{code}-000004"]
    assert first_of_other == f"{other['code']}-000001" and other["code"] != code
    rows = donation_rows(donations_db)
    assert len({row.receipt_no for row in rows}) == len(rows) == 5
    assert len({row.verification_code for row in rows}) == 5


@pytest.mark.parametrize("amount_fen", [12.5, 100.0, 0, -500, "100", "1e3", True, None],
                         ids=["float", "whole float", "zero", "negative", "string", "exponent string",
                              "boolean", "missing"])
def test_a_cash_amount_that_is_not_a_positive_integer_of_fen_counts_nothing(
        donations, donations_db, campaign, amount_fen):
    with pytest.raises(InvalidInput) as raised:
        donations().record_donation(campaign["id"], cash(amount_fen), VOLUNTEER, idempotency_key="key-1")
    assert "amount_fen" in raised.value.details["fields"]
    assert_nothing_counted(donations, donations_db, campaign["id"])


def test_an_amount_beyond_the_ceiling_is_invalid_input(donations, donations_db, campaign):
    with pytest.raises(InvalidInput) as raised:
        donations().record_donation(campaign["id"], cash(10_000_000_001), VOLUNTEER)
    assert "amount_fen" in raised.value.details["fields"]
    assert_nothing_counted(donations, donations_db, campaign["id"])


@pytest.mark.parametrize("payload, field", [
    ({**cash(1_000), "items": [{"category": "clothing", "quantity": 1}]}, "items"),
    ({"kind": "in_kind", "donor_name": DONOR}, "items"),
    ({"kind": "in_kind", "items": []}, "items"),
    ({**goods(("clothing", 1)), "amount_fen": 1_000}, "amount_fen"),
    (goods(("clothing", 0)), "items"),
    (goods(("clothing", 1.5)), "items"),
    (goods(("jewellery", 1)), "items"),
    ({"kind": "cheque", "amount_fen": 1_000}, "kind"),
], ids=["cash with items", "goods without items", "goods with no items", "goods with an amount",
        "zero quantity", "float quantity", "unknown category", "unknown kind"])
def test_a_donation_that_mixes_up_cash_and_goods_is_invalid_input(donations, donations_db, campaign,
                                                                  payload, field):
    with pytest.raises(InvalidInput) as raised:
        donations().record_donation(campaign["id"], payload, VOLUNTEER)
    assert field in raised.value.details["fields"]
    assert_nothing_counted(donations, donations_db, campaign["id"])


def test_a_donation_to_a_closed_campaign_is_a_conflict(donations, donations_db, campaign):
    closed = donations().close_campaign(campaign["id"], ADMIN)
    assert closed["status"] == "closed"
    with pytest.raises(Conflict) as raised:
        donations().record_donation(campaign["id"], cash(1_000), VOLUNTEER)
    assert "closed" in str(raised.value)
    assert_nothing_counted(donations, donations_db, campaign["id"])
    assert donations().get_campaign(campaign["id"])["status"] == "closed"
    with pytest.raises(Conflict):
        donations().close_campaign(campaign["id"], ADMIN)
    assert len(donations_db.outbox("campaign_closed")) == 1


@pytest.mark.parametrize("starts, ends", [(-10, -2), (2, 10)], ids=["ended", "not begun"])
def test_a_donation_outside_the_campaign_dates_is_a_conflict(donations, donations_db, starts, ends):
    campaign = donations().create_campaign(campaign_payload(starts=starts, ends=ends), ADMIN)
    with pytest.raises(Conflict) as raised:
        donations().record_donation(campaign["id"], goods(("tents", 1)), VOLUNTEER)
    assert campaign["starts_on"] in str(raised.value)
    assert_nothing_counted(donations, donations_db, campaign["id"])


@pytest.mark.parametrize("starts, ends", [(0, 5), (-5, 0), (0, 0)], ids=["first day", "last day", "one day"])
def test_a_campaign_takes_donations_on_its_first_and_last_day(donations, starts, ends):
    campaign = donations().create_campaign(campaign_payload(starts=starts, ends=ends), ADMIN)
    donations().record_donation(campaign["id"], cash(1_000), VOLUNTEER)
    assert donations().get_campaign(campaign["id"])["totals"]["cash_fen"] == 1_000


def test_only_an_admin_closes_a_campaign(donations, campaign):
    with pytest.raises(Forbidden):
        donations().close_campaign(campaign["id"], VOLUNTEER)
    assert donations().get_campaign(campaign["id"])["status"] == "open"


# -- Idempotency-Key -------------------------------------------------------------

def test_the_same_key_and_body_again_returns_the_first_donation_and_counts_it_once(
        donations, donations_db, campaign):
    body = cash(20_000)
    first = donations().record_donation(campaign["id"], body, VOLUNTEER, idempotency_key="key-1")
    # A retry: the same body, its keys in another order, on another worker.
    again = donations().record_donation(campaign["id"], dict(reversed(list(body.items()))), VOLUNTEER,
                                        idempotency_key="key-1")

    assert again == first
    seen = donations().get_campaign(campaign["id"])
    assert seen["totals"] == {"cash_fen": 20_000, "items": {}, "donations": 1}
    assert donations_db.count(Donation) == 1
    assert len(donations_db.outbox("donation_received")) == 1
    # No receipt number was used up by the replay.
    following = donations().record_donation(campaign["id"], cash(100), VOLUNTEER, idempotency_key="key-2")
    assert following["receipt_no"] == f"{campaign['code']}-000002"


def test_a_replayed_in_kind_donation_counts_its_goods_once(donations, donations_db, campaign):
    body = goods(("clothing", 3, "coats"), ("bedding", 2))
    first = donations().record_donation(campaign["id"], body, VOLUNTEER, idempotency_key="key-1")
    assert donations().record_donation(campaign["id"], body, VOLUNTEER, idempotency_key="key-1") == first
    assert donations().get_campaign(campaign["id"])["stock"] == {"clothing": 3, "bedding": 2}
    assert donations_db.count(DonationItem) == 2


def test_the_same_key_with_another_body_is_refused(donations, donations_db, campaign):
    first = donations().record_donation(campaign["id"], cash(20_000), VOLUNTEER, idempotency_key="key-1")
    with pytest.raises(IdempotencyKeyReused) as raised:
        donations().record_donation(campaign["id"], cash(2_000), VOLUNTEER, idempotency_key="key-1")
    assert first["receipt_no"] not in str(raised.value.details)  # the first request's answer is not told
    assert donations().get_campaign(campaign["id"])["totals"]["cash_fen"] == 20_000
    assert donations_db.count(Donation) == 1
    assert len(donations_db.outbox("donation_received")) == 1


def test_a_replay_is_answered_even_after_the_campaign_closed(donations, campaign):
    first = donations().record_donation(campaign["id"], cash(500), VOLUNTEER, idempotency_key="key-1")
    donations().close_campaign(campaign["id"], ADMIN)
    assert donations().record_donation(campaign["id"], cash(500), VOLUNTEER, idempotency_key="key-1") == first


def test_the_same_key_arriving_twice_at_once_counts_once(donations, donations_db, campaign, monkeypatch):
    """Two workers pass the replay check before either commits: the loser's
    write loses the key at commit and is rolled back (its receipt number with
    it), and it answers as the winner did."""
    body, winner = cash(30_000), {}
    look_up = idempotency._earlier_answer

    def look_up_while_the_other_commits(db, request):
        found = look_up(db, request)
        if "started" not in winner:
            winner["started"] = True
            winner["donation"] = donations().record_donation(campaign["id"], body, VOLUNTEER,
                                                             idempotency_key="key-1")
        return found

    monkeypatch.setattr(idempotency, "_earlier_answer", look_up_while_the_other_commits)
    answer = donations().record_donation(campaign["id"], body, VOLUNTEER, idempotency_key="key-1")

    assert answer == winner["donation"]
    assert donations().get_campaign(campaign["id"])["totals"] == {"cash_fen": 30_000, "items": {}, "donations": 1}
    assert donations_db.count(Donation) == 1
    assert len(donations_db.outbox("donation_received")) == 1
    following = donations().record_donation(campaign["id"], cash(100), VOLUNTEER)
    assert following["receipt_no"] == f"{campaign['code']}-000002"


def test_a_malformed_idempotency_key_is_invalid_input(donations, donations_db, campaign):
    for key in ("", "k" * 101, 12):
        with pytest.raises(InvalidInput):
            donations().record_donation(campaign["id"], cash(100), VOLUNTEER, idempotency_key=key)
    assert donations_db.count(Donation) == 0


# -- donors' names -------------------------------------------------------------------

def test_an_anonymous_donors_name_is_not_kept_at_all(donations, donations_db, campaign):
    anonymous = donations().record_donation(campaign["id"], cash(8_800, donor_name=DONOR, anonymous=True),
                                            VOLUNTEER)
    named = donations().record_donation(campaign["id"], cash(100, donor_name="李华"), VOLUNTEER)
    assert anonymous["donor_name"] is None and anonymous["anonymous"] is True

    rows = {row.receipt_no: row for row in donation_rows(donations_db)}
    assert rows[anonymous["receipt_no"]].donor_name is None
    assert rows[anonymous["receipt_no"]].anonymous is True
    assert rows[named["receipt_no"]].donor_name == "李华"

    listed = {d["receipt_no"]: d for d in donations().list_donations(campaign["id"])["items"]}
    assert listed[anonymous["receipt_no"]]["donor_name"] is None
    assert listed[named["receipt_no"]]["donor_name"] == "李华"
    assert DONOR not in json.dumps(donations().list_donations(campaign["id"]), ensure_ascii=False)
    assert donations().get_donation(campaign["id"], anonymous["receipt_no"])["donor_name"] is None


def test_list_donations_is_newest_first_paginated_and_hides_verification_codes(donations, campaign):
    receipts = [donations().record_donation(campaign["id"], cash(100 * i), VOLUNTEER)["receipt_no"]
                for i in range(1, 4)]
    first = donations().list_donations(campaign["id"], {"limit": 2})
    assert first["next_cursor"]
    second = donations().list_donations(campaign["id"], {"limit": 2, "cursor": first["next_cursor"]})
    assert second["next_cursor"] is None
    listed = first["items"] + second["items"]
    assert [d["receipt_no"] for d in listed] == list(reversed(receipts))
    for donation in listed:
        assert "verification_code" not in donation
        assert donation["amount_fen"] and donation["kind"] == "cash"
    with pytest.raises(NotFound):
        donations().list_donations("no-such-campaign")


def test_donation_received_carries_no_donor_name_nor_description(donations, donations_db, campaign):
    donations().record_donation(campaign["id"], cash(1_000, donor_name="王秀英"), VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("clothing", 2, "coats from Wang Xiuying"),
                                                      donor_name="王秀英"), VOLUNTEER)
    rows = donations_db.outbox("donation_received")
    assert len(rows) == 2
    for row in rows:
        text = json.dumps(row["envelope"], ensure_ascii=False)
        assert "王秀英" not in text and "Wang Xiuying" not in text and "donor" not in text


# -- the goal ------------------------------------------------------------------------

def test_goal_reached_is_announced_once_when_cash_first_reaches_the_goal(donations, donations_db):
    campaign = donations().create_campaign(campaign_payload(goal_fen=10_000), ADMIN)
    donations().record_donation(campaign["id"], cash(6_000), VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("food", 100)), VOLUNTEER)
    assert donations_db.outbox("goal_reached") == []
    assert donations().get_campaign(campaign["id"])["goal_reached_at"] is None

    donations().record_donation(campaign["id"], cash(4_000), VOLUNTEER)  # lands exactly on the goal
    reached = donations().get_campaign(campaign["id"])
    assert reached["goal_reached_at"] is not None and reached["goal_reached_at"].endswith("Z")
    assert reached["progress_percent"] == 100.0

    donations().record_donation(campaign["id"], cash(5_000), VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("water", 10)), VOLUNTEER)
    after = donations().get_campaign(campaign["id"])
    assert after["goal_reached_at"] == reached["goal_reached_at"]
    assert after["progress_percent"] == 150.0

    rows = donations_db.outbox("goal_reached")
    assert len(rows) == 1
    assert rows[0]["envelope"]["data"] == {"campaign_id": campaign["id"], "goal_fen": 10_000,
                                           "cash_fen": 10_000, "created_by": "admin-1"}


def test_one_donation_past_the_goal_announces_it_with_the_cash_total(donations, donations_db):
    campaign = donations().create_campaign(campaign_payload(goal_fen=10_000), ADMIN)
    donations().record_donation(campaign["id"], cash(25_000), VOLUNTEER)
    rows = donations_db.outbox("goal_reached")
    assert [row["envelope"]["data"]["cash_fen"] for row in rows] == [25_000]


# -- stock and dispatches -------------------------------------------------------------

@pytest.fixture
def stocked(donations, campaign):
    """10 clothing and 5 bedding in stock."""
    donations().record_donation(campaign["id"], goods(("clothing", 6), ("bedding", 5)), VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("clothing", 4)), VOLUNTEER)
    return campaign


def test_a_dispatch_takes_goods_out_of_stock_and_announces_no_destination_text(
        donations, donations_db, stocked):
    sent = donations().dispatch(stocked["id"], {"destination": SHELTER, "items": [
        {"category": "clothing", "quantity": 3}, {"category": "clothing", "quantity": 1}]}, ADMIN)
    assert sent["destination"] == SHELTER and sent["case_id"] is None
    assert sent["items"] == [{"category": "clothing", "quantity": 4}]
    assert sent["created_by"] == "admin-1"

    seen = donations().get_campaign(stocked["id"])
    assert seen["stock"] == {"clothing": 6, "bedding": 5}
    assert seen["totals"]["items"] == {"clothing": 10, "bedding": 5}  # received stays received

    rows = donations_db.outbox("items_dispatched")
    assert len(rows) == 1
    assert rows[0]["envelope"]["data"] == {"campaign_id": stocked["id"], "dispatch_id": sent["id"],
                                           "to": "place", "case_id": None,
                                           "items": [{"category": "clothing", "quantity": 4}]}
    assert "Jiangyou" not in json.dumps(rows[0]["envelope"]) and "destination" not in rows[0]["envelope"]["data"]
    assert [d["id"] for d in donations().list_dispatches(stocked["id"])["items"]] == [sent["id"]]


def test_a_dispatch_to_a_case_names_the_case_and_no_destination(donations, donations_db, stocked):
    sent = donations().dispatch(stocked["id"], {"case_id": CASE_ID, "items": [
        {"category": "bedding", "quantity": 2}, {"category": "clothing", "quantity": 1}]}, ADMIN)
    assert sent["case_id"] == CASE_ID and sent["destination"] is None
    data = donations_db.outbox("items_dispatched")[0]["envelope"]["data"]
    assert data["to"] == "case" and data["case_id"] == CASE_ID and data["dispatch_id"] == sent["id"]
    assert sorted((i["category"], i["quantity"]) for i in data["items"]) == [("bedding", 2), ("clothing", 1)]
    assert "destination" not in data
    assert donations().get_campaign(stocked["id"])["stock"] == {"clothing": 9, "bedding": 3}


def test_the_last_items_can_be_dispatched_but_no_more(donations, donations_db, stocked):
    donations().dispatch(stocked["id"], {"destination": SHELTER, "items": [{"category": "bedding", "quantity": 5}]},
                         ADMIN)
    assert donations().get_campaign(stocked["id"])["stock"] == {"clothing": 10, "bedding": 0}
    with pytest.raises(Conflict) as raised:
        donations().dispatch(stocked["id"], {"destination": SHELTER,
                                             "items": [{"category": "bedding", "quantity": 1}]}, ADMIN)
    assert raised.value.details == {"stock": {"bedding": "1 asked, 0 in stock"}}
    assert donations_db.count(Dispatch) == 1
    assert len(donations_db.outbox("items_dispatched")) == 1


@pytest.mark.parametrize("items, short", [
    ([{"category": "clothing", "quantity": 11}], {"clothing": "11 asked, 10 in stock"}),
    ([{"category": "clothing", "quantity": 4}, {"category": "bedding", "quantity": 6}],
     {"bedding": "6 asked, 5 in stock"}),
    ([{"category": "clothing", "quantity": 6}, {"category": "clothing", "quantity": 5}],
     {"clothing": "11 asked, 10 in stock"}),
    ([{"category": "bedding", "quantity": 1}, {"category": "tents", "quantity": 1}],
     {"tents": "1 asked, 0 in stock"}),
], ids=["one category", "second category short", "a category twice", "never donated"])
def test_a_dispatch_beyond_stock_is_a_conflict_and_dispatches_nothing(donations, donations_db, stocked,
                                                                     items, short):
    with pytest.raises(Conflict) as raised:
        donations().dispatch(stocked["id"], {"destination": SHELTER, "items": items}, ADMIN)
    assert raised.value.details == {"stock": short}
    assert donations().get_campaign(stocked["id"])["stock"] == {"clothing": 10, "bedding": 5}
    assert donations_db.count(Dispatch) == 0
    assert donations_db.outbox("items_dispatched") == []
    assert donations().list_dispatches(stocked["id"])["items"] == []


@pytest.mark.parametrize("where", [{"destination": SHELTER, "case_id": CASE_ID}, {}],
                         ids=["both a place and a case", "neither"])
def test_a_dispatch_goes_to_a_place_or_a_case(donations, donations_db, stocked, where):
    with pytest.raises(InvalidInput) as raised:
        donations().dispatch(stocked["id"], {**where, "items": [{"category": "clothing", "quantity": 1}]}, ADMIN)
    assert "destination" in raised.value.details["fields"]
    assert donations().get_campaign(stocked["id"])["stock"] == {"clothing": 10, "bedding": 5}
    assert donations_db.count(Dispatch) == 0


def test_only_an_admin_dispatches(donations, donations_db, stocked):
    with pytest.raises(Forbidden):
        donations().dispatch(stocked["id"], {"destination": SHELTER,
                                             "items": [{"category": "clothing", "quantity": 1}]}, VOLUNTEER)
    assert donations().get_campaign(stocked["id"])["stock"] == {"clothing": 10, "bedding": 5}
    assert donations_db.count(Dispatch) == 0


# -- public receipts ---------------------------------------------------------------------

def test_a_receipt_shows_the_goods_and_where_they_went_never_a_name_or_a_case(donations, campaign):
    gift = donations().record_donation(campaign["id"], goods(("bedding", 3, "quilts"), ("clothing", 2)),
                                       VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("bedding", 4), ("water", 12), donor_name="李华"), VOLUNTEER)
    for where, items in [({"destination": SHELTER}, [("bedding", 2), ("water", 12)]),
                         ({"case_id": CASE_ID}, [("bedding", 1), ("clothing", 2)]),
                         ({"case_id": "case-other"}, [("bedding", 1)])]:
        donations().dispatch(campaign["id"], {**where, "items": [{"category": c, "quantity": q}
                                                                 for c, q in items]}, ADMIN)

    receipt = donations().get_receipt(gift["receipt_no"], {"code": f"  {gift['verification_code'].lower()} "})
    assert receipt["receipt_no"] == gift["receipt_no"]
    assert receipt["campaign"] == {"id": campaign["id"], "name": campaign["name"]}
    assert receipt["kind"] == "in_kind" and receipt["amount_fen"] is None
    assert sorted((i["category"], i["quantity"]) for i in receipt["items"]) == [("bedding", 3), ("clothing", 2)]
    assert receipt["received_at"] == gift["created_at"]
    # Goods are pooled: where the campaign sent the donor's kinds of goods (not water).
    assert sorted((g["category"], g["to"], g["quantity"]) for g in receipt["goods_sent"]) == sorted([
        ("bedding", CASE_DESTINATION, 2), ("bedding", SHELTER, 2), ("clothing", CASE_DESTINATION, 2)])

    text = json.dumps(receipt, ensure_ascii=False)
    for secret in (CASE_ID, "case-other", DONOR, "李华", "quilts", gift["verification_code"]):
        assert secret not in text, f"{secret!r} shown on a receipt"


def test_a_receipt_never_shows_goods_sent_before_the_gift_was_recorded(donations, campaign):
    """Goods are pooled, but what left before a gift existed cannot have been it."""
    first = donations().record_donation(campaign["id"], goods(("bedding", 5)), VOLUNTEER)
    donations().dispatch(campaign["id"], {"destination": "Shelter 1", "items": [
        {"category": "bedding", "quantity": 2}]}, ADMIN)
    later = donations().record_donation(campaign["id"], goods(("bedding", 1), ("water", 3)), VOLUNTEER)
    donations().dispatch(campaign["id"], {"case_id": CASE_ID, "items": [
        {"category": "bedding", "quantity": 1}, {"category": "water", "quantity": 3}]}, ADMIN)

    before = donations().get_receipt(first["receipt_no"], {"code": first["verification_code"]})
    assert [(d["to"], d["items"]) for d in before["dispatches"]] == [
        (CASE_DESTINATION, [{"category": "bedding", "quantity": 1}]),  # newest first; not its water
        ("Shelter 1", [{"category": "bedding", "quantity": 2}])]
    after = donations().get_receipt(later["receipt_no"], {"code": later["verification_code"]})
    assert after["goods_sent"] == [{"category": "bedding", "to": CASE_DESTINATION, "quantity": 1},
                                   {"category": "water", "to": CASE_DESTINATION, "quantity": 3}]
    assert len(after["dispatches"]) == 1
    sent = after["dispatches"][0]
    assert sent["sent_at"] > after["received_at"] and sent["sent_on"] == after["received_on"] == str(today())
    # The public summary lists every dispatch with its date, newest first.
    shown = next(c for c in donations().summary()["campaigns"] if c["id"] == campaign["id"])
    assert [d["to"] for d in shown["dispatches"]] == [CASE_DESTINATION, "Shelter 1"]
    assert all(d["sent_on"] == str(today()) for d in shown["dispatches"])
    assert CASE_ID not in json.dumps(shown) + json.dumps(after)


def test_a_cash_receipt_shows_the_amount_and_no_name(donations, campaign):
    gift = donations().record_donation(campaign["id"], cash(16_000_00), VOLUNTEER)
    receipt = donations().get_receipt(gift["receipt_no"], {"code": gift["verification_code"]})
    assert receipt["amount_fen"] == 1_600_000 and receipt["kind"] == "cash"
    assert receipt["items"] == [] and receipt["goods_sent"] == []
    assert DONOR not in json.dumps(receipt, ensure_ascii=False)


def test_a_wrong_code_looks_exactly_like_an_unknown_receipt(donations, campaign):
    gift = donations().record_donation(campaign["id"], cash(1_000), VOLUNTEER)
    other = donations().record_donation(campaign["id"], cash(2_000), VOLUNTEER)
    wrong = "".join("2" if ch != "2" else "3" for ch in gift["verification_code"])

    with pytest.raises(NotFound) as unknown:
        donations().get_receipt(f"{campaign['code']}-000099", {"code": gift["verification_code"]})
    for code in (wrong, other["verification_code"], gift["verification_code"][:-1]):
        with pytest.raises(NotFound) as refused:
            donations().get_receipt(gift["receipt_no"], {"code": code})
        assert str(refused.value) == str(unknown.value)
        assert refused.value.details == unknown.value.details
    with pytest.raises(InvalidInput):
        donations().get_receipt(gift["receipt_no"], {})


# -- counters that cannot overflow ---------------------------------------------------

def test_a_gift_line_is_bounded_in_quantity_and_lines(donations, donations_db, campaign):
    """On PostgreSQL the 43rd gift of 1,000,000 items overflowed an INTEGER counter: quantities are bounded."""
    for items in ([("clothing", MAX_ITEM_QUANTITY + 1)], [("clothing", 1)] * (MAX_ITEM_LINES + 1)):
        with pytest.raises(InvalidInput) as refused:
            donations().record_donation(campaign["id"], goods(*items), VOLUNTEER)
        assert "items" in refused.value.details["fields"]
        with pytest.raises(InvalidInput):
            donations().dispatch(campaign["id"], {"destination": SHELTER, "items": [
                {"category": c, "quantity": q} for c, q in items]}, ADMIN)
    assert_nothing_counted(donations, donations_db, campaign["id"])


def test_the_largest_gifts_carry_a_stock_counter_past_what_an_integer_holds(donations, campaign):
    """430 of the largest gifts (50 lines of 100,000) are 2.15 x 10^9 items of one
    category: past 2^31 - 1, counted exactly (BIGINT)."""
    largest = goods(*[("clothing", MAX_ITEM_QUANTITY)] * MAX_ITEM_LINES)
    for _ in range(430):
        donations().record_donation(campaign["id"], largest, VOLUNTEER)
    view = donations().get_campaign(campaign["id"])
    assert view["totals"]["items"] == {"clothing": 2_150_000_000} and 2_150_000_000 > 2**31 - 1
    assert view["totals"]["donations"] == 430
    sent = donations().dispatch(campaign["id"], {"destination": SHELTER, "items": largest["items"]}, ADMIN)
    assert sum(item["quantity"] for item in sent["items"]) == MAX_ITEM_LINES * MAX_ITEM_QUANTITY
    assert donations().get_campaign(campaign["id"])["stock"] == {"clothing": 2_145_000_000}


@pytest.mark.parametrize("gift, counter", [
    (cash(10_000), "cash"),
    (goods(("water", 10_000)), "water"),
])
def test_a_gift_past_the_campaign_ceiling_is_refused_and_counts_nothing(donations, donations_db, campaign,
                                                                       gift, counter):
    """No sequence of valid gifts overflows a counter: a campaign's totals stop at MAX_CAMPAIGN_TOTAL."""
    with donations_db.engine.begin() as connection:  # as if 2 x 10^8 of the largest gifts had come before
        if counter == "cash":
            connection.execute(update(Campaign).values(cash_fen=MAX_CAMPAIGN_TOTAL - 5_000))
        else:
            connection.execute(insert(Stock).values(campaign_id=campaign["id"], category=counter,
                                                    received=MAX_CAMPAIGN_TOTAL - 5_000, dispatched=0))
    before = donations().get_campaign(campaign["id"])
    with pytest.raises(Conflict):
        donations().record_donation(campaign["id"], gift, VOLUNTEER)
    assert donations().get_campaign(campaign["id"]) == before
    assert donations_db.count(Donation) == 0 and donations_db.outbox("donation_received") == []
    # Up to the ceiling itself is taken.
    exact = cash(5_000) if counter == "cash" else goods((counter, 5_000))
    donations().record_donation(campaign["id"], exact, VOLUNTEER)


REASON = "Entered 1,000 yuan instead of 100 (打错金额)"


def void(donations, campaign_id, receipt_no, reason=REASON, actor=ADMIN, **kwargs):
    return donations().void_donation(campaign_id, receipt_no, {"reason": reason}, actor, **kwargs)


# -- corrections: voiding a gift -----------------------------------------------------------------------

def test_a_voided_gift_leaves_the_totals_and_keeps_its_receipt(donations, donations_db, campaign):
    first = donations().record_donation(campaign["id"], cash(100_000), VOLUNTEER)
    donations().record_donation(campaign["id"], cash(10_000), VOLUNTEER)
    gift = donations().record_donation(campaign["id"], goods(("clothing", 3), ("bedding", 2)), VOLUNTEER)

    voided = void(donations, campaign["id"], first["receipt_no"])

    assert voided["receipt_no"] == first["receipt_no"] and voided["voided"] is True
    assert voided["void_reason"] == REASON and voided["voided_at"].endswith("Z")
    assert voided["amount_fen"] == 100_000  # what it was, still on the record
    after = donations().get_campaign(campaign["id"])
    assert after["totals"] == {"cash_fen": 10_000, "items": {"clothing": 3, "bedding": 2}, "donations": 2}

    void(donations, campaign["id"], gift["receipt_no"], reason="Counted twice")
    after = donations().get_campaign(campaign["id"])
    assert after["totals"] == {"cash_fen": 10_000, "items": {}, "donations": 1}
    assert after["stock"] == {}
    assert donations_db.count(Donation) == 3 and donations_db.count(DonationItem) == 2  # nothing deleted
    assert [row.seq for row in donation_rows(donations_db)] == [1, 2, 3]


def test_a_voided_gift_shows_as_voided_everywhere_it_is_read(donations, campaign):
    gift = donations().record_donation(campaign["id"], cash(5_000), VOLUNTEER)
    assert gift["voided"] is False and gift["voided_at"] is None and gift["void_reason"] is None
    void(donations, campaign["id"], gift["receipt_no"])

    again = donations().get_donation(campaign["id"], gift["receipt_no"])
    assert again["voided"] is True and again["void_reason"] == REASON
    (listed,) = donations().list_donations(campaign["id"])["items"]
    assert listed["voided"] is True and listed["void_reason"] == REASON
    public = donations().get_receipt(gift["receipt_no"], {"code": gift["verification_code"]})
    assert public["voided"] is True and public["voided_at"] == again["voided_at"]
    assert REASON not in str(public)


def test_voiding_twice_is_a_conflict_that_changes_nothing(donations, donations_db, campaign):
    gift = donations().record_donation(campaign["id"], cash(5_000), VOLUNTEER)
    donations().record_donation(campaign["id"], cash(7_000), VOLUNTEER)
    first = void(donations, campaign["id"], gift["receipt_no"])
    with pytest.raises(Conflict, match="already voided"):
        void(donations, campaign["id"], gift["receipt_no"], reason="again")
    assert donations().get_campaign(campaign["id"])["totals"]["cash_fen"] == 7_000
    assert donations().get_donation(campaign["id"], gift["receipt_no"])["voided_at"] == first["voided_at"]
    assert len(donations_db.outbox("donation_voided")) == 1


def test_the_same_void_retried_with_its_key_answers_the_first_answer(donations, donations_db, campaign):
    gift = donations().record_donation(campaign["id"], cash(5_000), VOLUNTEER)
    first = void(donations, campaign["id"], gift["receipt_no"], idempotency_key="void-1")
    assert void(donations, campaign["id"], gift["receipt_no"], idempotency_key="void-1") == first
    assert len(donations_db.outbox("donation_voided")) == 1


def test_goods_already_dispatched_cannot_be_voided_and_nothing_changes(donations, donations_db, campaign):
    gift = donations().record_donation(campaign["id"], goods(("bedding", 2), ("clothing", 10)), VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("clothing", 4)), VOLUNTEER)
    donations().dispatch(campaign["id"], {"destination": "Shelter", "items": [{"category": "clothing",
                                                                              "quantity": 8}]}, ADMIN)
    before = donations().get_campaign(campaign["id"])

    with pytest.raises(Conflict) as refused:
        void(donations, campaign["id"], gift["receipt_no"])

    assert "10 clothing" in refused.value.message and "only 6 clothing are left" in refused.value.message
    assert refused.value.details == {"stock": {"clothing": "10 in this gift, 6 in stock"}}
    assert donations().get_campaign(campaign["id"]) == before  # bedding not taken out either
    assert donations().get_donation(campaign["id"], gift["receipt_no"])["voided"] is False
    assert donations_db.outbox("donation_voided") == []


def test_donation_voided_carries_amounts_and_totals_but_no_name_nor_reason(donations, donations_db, campaign):
    donations().record_donation(campaign["id"], cash(3_000), VOLUNTEER)
    gift = donations().record_donation(campaign["id"], cash(5_000), VOLUNTEER)
    void(donations, campaign["id"], gift["receipt_no"])
    (row,) = donations_db.outbox("donation_voided")
    assert row["envelope"]["data"] == {
        "campaign_id": campaign["id"], "donation_id": gift["id"], "receipt_no": gift["receipt_no"],
        "kind": "cash", "amount_fen": 5_000, "items": [], "cash_fen_total": 3_000, "donations_total": 1}
    assert DONOR not in str(row["envelope"]) and REASON not in str(row["envelope"])


def test_only_an_admin_voids_with_a_reason_a_gift_of_this_campaign(donations, donations_db, campaign):
    gift = donations().record_donation(campaign["id"], cash(5_000), VOLUNTEER)
    other = donations().create_campaign(campaign_payload(), ADMIN)
    with pytest.raises(Forbidden):
        void(donations, campaign["id"], gift["receipt_no"], actor=VOLUNTEER)
    for reason in ("", "   ", "x" * 501):
        with pytest.raises(InvalidInput) as refused:
            void(donations, campaign["id"], gift["receipt_no"], reason=reason)
        assert "reason" in refused.value.details["fields"]
    with pytest.raises(NotFound):
        void(donations, other["id"], gift["receipt_no"])
    assert donations().get_campaign(campaign["id"])["totals"]["cash_fen"] == 5_000


# -- the goal, once per drive ---------------------------------------------------------------

def test_a_void_below_the_goal_shows_true_progress_and_reaching_it_again_alerts_no_one(
        donations, donations_db):
    drive = donations().create_campaign(campaign_payload(goal_fen=10_000), ADMIN)
    big = donations().record_donation(drive["id"], cash(12_000), VOLUNTEER)
    reached_at = donations().get_campaign(drive["id"])["goal_reached_at"]
    assert reached_at is not None

    void(donations, drive["id"], big["receipt_no"])
    below = donations().get_campaign(drive["id"])
    assert below["progress_percent"] == 0 and below["totals"]["cash_fen"] == 0
    assert below["goal_reached_at"] == reached_at

    donations().record_donation(drive["id"], cash(10_000), VOLUNTEER)
    assert donations().get_campaign(drive["id"])["goal_reached_at"] == reached_at
    assert len(donations_db.outbox("goal_reached")) == 1


# -- editing a drive ------------------------------------------------------------------------

def test_an_admin_edits_a_drive_and_it_is_announced(donations, donations_db, campaign):
    changed = donations().update_campaign(campaign["id"], {"name": "Flood relief 洪水救灾", "goal_fen": 2_000_000},
                                          ADMIN)
    assert changed["name"] == "Flood relief 洪水救灾" and changed["goal_fen"] == 2_000_000
    assert changed["starts_on"] == campaign["starts_on"] and changed["ends_on"] == campaign["ends_on"]
    assert donations().get_campaign(campaign["id"]) == changed
    (row,) = donations_db.outbox("campaign_updated")
    assert row["envelope"]["data"] == {"campaign_id": campaign["id"], "name": "Flood relief 洪水救灾",
                                       "goal_fen": 2_000_000, "starts_on": campaign["starts_on"],
                                       "ends_on": campaign["ends_on"]}


@pytest.mark.parametrize("change, field", [
    ({}, "_schema"),
    ({"goal_fen": 0}, "goal_fen"),
    ({"goal_fen": 1.5}, "goal_fen"),
    ({"name": ""}, "name"),
    ({"ends_on": "2000-01-01"}, "ends_on"),  # before the stored start
    ({"starts_on": "2999-01-01"}, "starts_on"),  # after the stored end
    ({"starts_on": "2030-01-02", "ends_on": "2030-01-01"}, "ends_on"),
])
def test_an_edit_by_the_rules_of_opening_a_drive(donations, donations_db, campaign, change, field):
    with pytest.raises(InvalidInput) as refused:
        donations().update_campaign(campaign["id"], change, ADMIN)
    assert field in refused.value.details["fields"]
    assert donations().get_campaign(campaign["id"]) == campaign
    assert donations_db.outbox("campaign_updated") == []


def test_a_closed_drive_can_be_renamed_but_not_otherwise_changed(donations, campaign):
    donations().close_campaign(campaign["id"], ADMIN)
    assert donations().update_campaign(campaign["id"], {"name": "Renamed"}, ADMIN)["name"] == "Renamed"
    with pytest.raises(Conflict, match="only its name"):
        donations().update_campaign(campaign["id"], {"goal_fen": 5}, ADMIN)
    with pytest.raises(Forbidden):
        donations().update_campaign(campaign["id"], {"name": "x"}, VOLUNTEER)
    with pytest.raises(NotFound):
        donations().update_campaign("0" * 32, {"name": "x"}, ADMIN)


def test_a_goal_lowered_to_what_was_raised_announces_it_once(donations, donations_db):
    drive = donations().create_campaign(campaign_payload(goal_fen=100_000), ADMIN)
    donations().record_donation(drive["id"], cash(60_000), VOLUNTEER)
    assert donations_db.outbox("goal_reached") == []

    lowered = donations().update_campaign(drive["id"], {"goal_fen": 50_000}, ADMIN)
    assert lowered["goal_reached_at"] is not None and lowered["progress_percent"] == 120.0
    donations().update_campaign(drive["id"], {"goal_fen": 200_000}, ADMIN)
    donations().update_campaign(drive["id"], {"goal_fen": 40_000}, ADMIN)
    rows = donations_db.outbox("goal_reached")
    assert [row["envelope"]["data"] for row in rows] == [
        {"campaign_id": drive["id"], "goal_fen": 50_000, "cash_fen": 60_000, "created_by": "admin-1"}]


def test_a_gift_that_reaches_a_lowered_goal_announces_it_with_the_new_goal(donations, donations_db):
    drive = donations().create_campaign(campaign_payload(goal_fen=100_000), ADMIN)
    donations().record_donation(drive["id"], cash(40_000), VOLUNTEER)
    donations().update_campaign(drive["id"], {"goal_fen": 50_000}, ADMIN)
    assert donations_db.outbox("goal_reached") == []
    donations().record_donation(drive["id"], cash(20_000), VOLUNTEER)
    assert [row["envelope"]["data"]["goal_fen"] for row in donations_db.outbox("goal_reached")] == [50_000]


# -- the ledger and its audit -----------------------------------------------------------------

def test_the_ledger_has_every_gift_oldest_first_with_names_and_voids(donations, donations_db, campaign):
    first = donations().record_donation(campaign["id"], cash(12_345), VOLUNTEER)
    donations().record_donation(campaign["id"], goods(("clothing", 3), ("bedding", 2), ("clothing", 1),
                                                      donor_name=None, anonymous=True), VOLUNTEER)
    void(donations, campaign["id"], first["receipt_no"])

    ledger = donations().ledger(campaign["id"], ADMIN)

    assert ledger["campaign"] == {"id": campaign["id"], "code": campaign["code"], "name": campaign["name"]}
    assert [row["receipt_no"] for row in ledger["rows"]] == [f"{campaign['code']}-000001",
                                                             f"{campaign['code']}-000002"]
    cash_row, goods_row = ledger["rows"]
    assert cash_row | {"recorded_on": None} == {
        "receipt_no": first["receipt_no"], "recorded_on": None, "kind": "cash", "amount_fen": 12_345,
        "items": [], "donor_name": DONOR, "anonymous": False, "voided": True, "void_reason": REASON}
    assert len(cash_row["recorded_on"]) == 16  # local YYYY-MM-DD HH:MM
    assert goods_row["items"] == [{"category": "clothing", "quantity": 4}, {"category": "bedding", "quantity": 2}]
    assert goods_row["donor_name"] is None and goods_row["anonymous"] is True and goods_row["voided"] is False


def test_a_ledger_read_is_audited_and_only_an_admin_reads_it(donations, donations_db, campaign):
    donations().record_donation(campaign["id"], cash(1_000), VOLUNTEER)
    with pytest.raises(Forbidden):
        donations().ledger(campaign["id"], VOLUNTEER)
    assert donations_db.count(AuditEntry) == 0
    donations().ledger(campaign["id"], ADMIN)

    (entry,) = donations().list_audit(ADMIN, {"campaign_id": campaign["id"]})["items"]
    assert entry["actor_id"] == "admin-1" and entry["action"] == "export_ledger"
    assert entry["campaign_id"] == campaign["id"] and entry["rows"] == 1
    assert donations().list_audit(ADMIN, {"campaign_id": "another"})["items"] == []
    with pytest.raises(Forbidden):
        donations().list_audit(VOLUNTEER)
    with pytest.raises(NotFound):
        donations().ledger("0" * 32, ADMIN)


def test_the_receipt_for_printing_has_its_public_lookup_path_and_the_list_does_not(donations, campaign):
    gift = donations().record_donation(campaign["id"], cash(1_000), VOLUNTEER)
    assert gift["lookup_path"] == f"/public?receipt={gift['receipt_no']}&code={gift['verification_code']}"
    assert donations().get_donation(campaign["id"], gift["receipt_no"])["lookup_path"] == gift["lookup_path"]
    (listed,) = donations().list_donations(campaign["id"])["items"]
    assert "lookup_path" not in listed and "verification_code" not in listed
