"""The rules of a hardship case, without a database or a broker."""
import pytest

from services.welfare.domain import (
    AssigneeUnfit, CaseStatus, RuleBroken, cases_limited_to, check_assignee, next_status, normalise_categories,
)


@pytest.mark.parametrize("status, action, expected", [
    (CaseStatus.OPEN, "visit", CaseStatus.IN_PROGRESS),
    (CaseStatus.OPEN, "refer", CaseStatus.IN_PROGRESS),
    (CaseStatus.OPEN, "close", CaseStatus.CLOSED),
    (CaseStatus.IN_PROGRESS, "visit", CaseStatus.IN_PROGRESS),
    (CaseStatus.IN_PROGRESS, "refer", CaseStatus.IN_PROGRESS),
    (CaseStatus.IN_PROGRESS, "close", CaseStatus.CLOSED),
])
def test_legal_moves_lead_to_the_next_status(status, action, expected):
    assert next_status(status, action) == expected


@pytest.mark.parametrize("status, action", [
    (CaseStatus.CLOSED, "close"),     # closing a closed case is a conflict
    (CaseStatus.CLOSED, "visit"),
    (CaseStatus.CLOSED, "refer"),
    (CaseStatus.OPEN, "reopen"),      # an action the case does not know
    ("archived", "visit"),            # a status the case does not know
])
def test_illegal_moves_break_a_rule(status, action):
    with pytest.raises(RuleBroken) as raised:
        next_status(status, action)
    # The message tells the caller what was refused.
    assert status in str(raised.value) and action in str(raised.value)


LISTED = ["low_income", "disability", "elderly", "illness", "other", "illegal_structure"]


def test_categories_come_back_in_the_order_they_are_listed():
    assert normalise_categories(["illegal_structure", "other", "elderly", "low_income", "disability"], LISTED) == [
        "low_income", "disability", "elderly", "other", "illegal_structure"]


def test_duplicate_categories_are_kept_once():
    assert normalise_categories(["illness", "elderly", "illness", "elderly"], LISTED) == ["elderly", "illness"]


def test_unknown_categories_are_rejected_by_name():
    with pytest.raises(ValueError, match="homeless"):
        normalise_categories(["elderly", "homeless"], LISTED)


def test_no_category_is_rejected():
    with pytest.raises(ValueError, match="at least one"):
        normalise_categories([], LISTED)


@pytest.mark.parametrize("actor_id, is_admin, expected", [
    ("m1", False, "m1"),   # a member: only the cases assigned to them
    ("a1", True, None),    # the community office: every case
])
def test_whose_cases_an_actor_sees(actor_id, is_admin, expected):
    assert cases_limited_to(actor_id, is_admin) == expected


# -- who a case is paired with ------------------------------------------------------------

def account(member_id="m1", party_member=True, active=True):
    return {"id": member_id, "party_member": party_member, "active": active}


def test_an_active_party_member_may_be_paired_with_a_case():
    check_assignee("m1", account())


@pytest.mark.parametrize("held, message", [
    (None, "No registered party member has this id."),                      # no account has the id
    (account(party_member=False), "No registered party member has this id."),
    (account("m2"), "No registered party member has this id."),             # facts about someone else
    (account(active=False), "No active party member has this id: the account is disabled."),
])
def test_anyone_else_is_refused(held, message):
    with pytest.raises(AssigneeUnfit) as refused:
        check_assignee("m1", held)
    assert str(refused.value) == message and not isinstance(refused.value, RuleBroken)
