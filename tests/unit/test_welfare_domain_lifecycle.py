"""The rules of a case's whole life, without a database or a broker: every
(status, action) move, deciding a referral, and when a follow-up falls due
(once per lapse). Who may see and work on a case: test_welfare_domain."""
from datetime import date, datetime, timedelta

import pytest

from services.welfare.domain import (
    CaseStatus, ReferralStatus, RuleBroken, decide_referral, due_followup, lapse_start, next_status,
)

OPEN, IN_PROGRESS, CLOSED = CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.CLOSED
ACTIONS = ("assign", "visit", "refer", "close", "reopen")

# Every (status, action) pair; None marks an illegal move.
EXPECTED = {
    (OPEN, "assign"): OPEN,
    (OPEN, "visit"): IN_PROGRESS,         # the first visit starts the work
    (OPEN, "refer"): IN_PROGRESS,         # so does the first referral
    (OPEN, "close"): CLOSED,
    (OPEN, "reopen"): None,               # only a closed case is reopened
    (IN_PROGRESS, "assign"): IN_PROGRESS,
    (IN_PROGRESS, "visit"): IN_PROGRESS,
    (IN_PROGRESS, "refer"): IN_PROGRESS,
    (IN_PROGRESS, "close"): CLOSED,
    (IN_PROGRESS, "reopen"): None,
    (CLOSED, "assign"): None,
    (CLOSED, "visit"): None,
    (CLOSED, "refer"): None,
    (CLOSED, "close"): None,
    (CLOSED, "reopen"): OPEN,             # need came back, or closed by mistake: the office takes it up again
}


def test_the_table_covers_every_status_and_action():
    assert set(EXPECTED) == {(s, a) for s in (OPEN, IN_PROGRESS, CLOSED) for a in ACTIONS}


@pytest.mark.parametrize("status, action", sorted(k for k, v in EXPECTED.items() if v is not None))
def test_a_legal_move_leads_to_its_next_status(status, action):
    assert next_status(status, action) == EXPECTED[(status, action)]


@pytest.mark.parametrize("status, action", sorted(k for k, v in EXPECTED.items() if v is None))
def test_nothing_is_done_to_a_closed_case(status, action):
    with pytest.raises(RuleBroken) as raised:
        next_status(status, action)
    assert status in str(raised.value) and action in str(raised.value)


@pytest.mark.parametrize("status, action", [
    (OPEN, "reopen"), (IN_PROGRESS, "delete"), (CLOSED, "delete"), ("draft", "visit"), ("", "close"),
])
def test_an_unknown_status_or_action_is_illegal(status, action):
    with pytest.raises(RuleBroken):
        next_status(status, action)


# -- referrals ----------------------------------------------------------------------

@pytest.mark.parametrize("decision", [ReferralStatus.APPROVED, ReferralStatus.REJECTED])
def test_a_submitted_referral_is_approved_or_rejected(decision):
    assert decide_referral(ReferralStatus.SUBMITTED, decision) == decision


@pytest.mark.parametrize("status", [ReferralStatus.APPROVED, ReferralStatus.REJECTED])
@pytest.mark.parametrize("decision", [ReferralStatus.APPROVED, ReferralStatus.REJECTED])
def test_a_decided_referral_is_not_decided_again(status, decision):
    with pytest.raises(RuleBroken, match=status):
        decide_referral(status, decision)


@pytest.mark.parametrize("decision", ["submitted", "maybe", "", "APPROVED"])
def test_a_decision_other_than_approved_or_rejected_is_a_value_error(decision):
    with pytest.raises(ValueError) as raised:
        decide_referral(ReferralStatus.SUBMITTED, decision)
    assert not isinstance(raised.value, RuleBroken)


# -- follow-ups ---------------------------------------------------------------------------

OPENED = datetime(2026, 1, 10, 9, 30, 15, 123456)


def test_a_lapse_starts_at_the_opening_when_never_visited():
    assert lapse_start(None, OPENED) == OPENED


def test_a_lapse_starts_on_the_day_of_the_last_visit():
    assert lapse_start(date(2026, 2, 3), OPENED) == datetime(2026, 2, 3, 0, 0)


@pytest.mark.parametrize("elapsed, due", [
    (timedelta(days=29, hours=23), False),
    (timedelta(days=30), True),
    (timedelta(days=45), True),
])
def test_a_case_falls_due_after_the_limit(elapsed, due):
    assert due_followup(OPEN, OPENED, None, OPENED + elapsed, 30) is due
    assert due_followup(IN_PROGRESS, OPENED, None, OPENED + elapsed, 30) is due


def test_the_limit_is_the_one_given():
    assert due_followup(OPEN, OPENED, None, OPENED + timedelta(days=8), 7) is True
    assert due_followup(OPEN, OPENED, None, OPENED + timedelta(days=8), 10) is False


def test_a_closed_case_never_falls_due():
    assert due_followup(CLOSED, OPENED, None, OPENED + timedelta(days=400), 30) is False


def test_a_lapse_already_alerted_is_not_due_again():
    assert due_followup(IN_PROGRESS, OPENED, OPENED, OPENED + timedelta(days=90), 30) is False


def test_a_visit_starts_a_new_lapse_due_once_it_ages():
    alerted_for = OPENED  # the first lapse was alerted
    new_lapse = lapse_start(date(2026, 3, 1), OPENED)
    assert due_followup(IN_PROGRESS, new_lapse, alerted_for, datetime(2026, 3, 20), 30) is False
    assert due_followup(IN_PROGRESS, new_lapse, alerted_for, datetime(2026, 3, 31), 30) is True
    # ...and once alerted, that lapse is quiet too.
    assert due_followup(IN_PROGRESS, new_lapse, new_lapse, datetime(2026, 5, 1), 30) is False
