"""Corrections in the donations service (worker_factory over a real in-memory
database): a gift recorded in error is voided (totals and stock down at once,
nothing deleted, twice a 409, goods already sent a 409 that changes nothing),
a drive is edited, goal_reached alerts once per drive ever, and the ledger
export gives every gift and is audited."""
import pytest

from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.donations.models import AuditEntry, Donation, DonationItem
from tests.unit.test_donations_service import (  # noqa: F401 (fixtures)
    ADMIN, DONOR, VOLUNTEER, campaign, campaign_payload, cash, donation_rows, donations, goods,
)

REASON = "Entered 1,000 yuan instead of 100 (打错金额)"


def void(donations, campaign_id, receipt_no, reason=REASON, actor=ADMIN, **kwargs):
    return donations().void_donation(campaign_id, receipt_no, {"reason": reason}, actor, **kwargs)


# -- voiding a gift -----------------------------------------------------------------------

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
