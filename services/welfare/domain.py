"""Rules of a hardship case. Standard library only."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from services.common.rules import RuleBroken


# A case's categories: each at most once, and a case needs no more than this many.
MAX_CASE_CATEGORIES = 20


class CaseStatus:
    DRAFT = "draft"            # found on patrol; the office confirms or dismisses it
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"
    DISMISSED = "dismissed"

    ACTIVE = (OPEN, IN_PROGRESS)  # confirmed and not closed: worked on, and may receive goods


CASE_STATUSES = (CaseStatus.DRAFT, CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.CLOSED, CaseStatus.DISMISSED)


class ReferralStatus:
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


# The stages an agency takes a referral through, in order (the decision is the status).
REFERRAL_STAGES = ("application_submitted", "documents_checked", "agency_home_visit", "decision_made")


class StageDateInvalid(ValueError):
    """A stage's date is impossible (in the future, or before the stage before it); a 400 on `on`."""


def next_stage(recorded: list[str]) -> str | None:
    """The one stage a referral may take next: the first not yet recorded, in
    REFERRAL_STAGES order (stages are never skipped); None once all are."""
    return REFERRAL_STAGES[len(recorded)] if len(recorded) < len(REFERRAL_STAGES) else None


def check_stage(status: str, recorded: list[tuple[str, date]], stage: str, on: date, today: date):
    """A stage is recorded on an undecided referral, only the next one in
    order, on a day not before the previous stage's and not after today (the
    community's calendar). RuleBroken (a 409) for the order, StageDateInvalid
    (a 400) for the date. A refusal names the stage that may come next."""
    done = [name for name, _ in recorded]
    expected = next_stage(done)
    if status != ReferralStatus.SUBMITTED:
        raise RuleBroken(f"The referral is {status} already: no more stages.", {"next_stage": expected})
    if stage in done:
        raise RuleBroken(f"The stage {stage} is recorded already.", {"next_stage": expected})
    if stage != expected:
        if expected is None:
            raise RuleBroken("Every stage is recorded already: the referral waits for its decision.",
                             {"next_stage": expected})
        raise RuleBroken(f"The next stage is {expected}: stages are recorded in order, none skipped.",
                         {"next_stage": expected})
    if on > today:
        raise StageDateInvalid(f"The date {on.isoformat()} is in the future (today is {today.isoformat()}).")
    if recorded and on < recorded[-1][1]:
        raise StageDateInvalid(f"The date {on.isoformat()} is before the previous stage's "
                               f"({recorded[-1][0]}, {recorded[-1][1].isoformat()}).")


# (status, action) -> next status. What is not here is an illegal move.
CASE_TRANSITIONS = {
    (CaseStatus.DRAFT, "confirm"): CaseStatus.OPEN,
    (CaseStatus.DRAFT, "dismiss"): CaseStatus.DISMISSED,
    (CaseStatus.OPEN, "assign"): CaseStatus.OPEN,
    (CaseStatus.IN_PROGRESS, "assign"): CaseStatus.IN_PROGRESS,
    (CaseStatus.OPEN, "visit"): CaseStatus.IN_PROGRESS,
    (CaseStatus.OPEN, "refer"): CaseStatus.IN_PROGRESS,
    (CaseStatus.OPEN, "close"): CaseStatus.CLOSED,
    (CaseStatus.IN_PROGRESS, "visit"): CaseStatus.IN_PROGRESS,
    (CaseStatus.IN_PROGRESS, "refer"): CaseStatus.IN_PROGRESS,
    (CaseStatus.IN_PROGRESS, "close"): CaseStatus.CLOSED,
    (CaseStatus.CLOSED, "reopen"): CaseStatus.OPEN,  # the office's: need came back, or closed by mistake
}


def next_status(status: str, action: str) -> str:
    try:
        return CASE_TRANSITIONS[(status, action)]
    except KeyError:
        raise RuleBroken(f"A case that is {status} cannot take '{action}'.")


class AssigneeUnfit(ValueError):
    """The member may not be paired with a case; a 400 on `assignee_id`."""


def check_assignee(assignee_id: str, account: dict | None) -> None:
    """A case is paired with a registered party member whose account is
    active: they visit the household and are alerted. `account`: the one the
    gateway holds under that id, vouched for within the same call
    ({"id", "party_member", "active"}; None: no account has the id), so an
    account change still on its way as an event cannot be missed."""
    if account is None or account["id"] != assignee_id or not account["party_member"]:
        raise AssigneeUnfit("No registered party member has this id.")
    if not account["active"]:
        raise AssigneeUnfit("No active party member has this id: the account is disabled.")


def decide_referral(status: str, decision: str) -> str:
    """A submitted referral is approved or rejected, once."""
    if status != ReferralStatus.SUBMITTED:
        raise RuleBroken(f"The referral is {status} already.")
    if decision not in (ReferralStatus.APPROVED, ReferralStatus.REJECTED):
        raise ValueError("A referral is decided as approved or rejected.")
    return decision


def lapse_start(last_visit_on: date | None, opened_at: datetime) -> datetime:
    """Since when a case has gone unvisited: its last visit's day, or its opening."""
    return datetime.combine(last_visit_on, time()) if last_visit_on else opened_at


def followup_due_at(lapse_started: datetime, after_days: float) -> datetime:
    """When a case's next visit falls due: `after_days` after its lapse began.
    The one home of the follow-up arithmetic: the sweep's alert, its query and
    the case view's next_visit_due all come from here."""
    return lapse_started + timedelta(days=after_days)


def latest_due_lapse(now: datetime, after_days: float) -> datetime:
    """The latest lapse start whose follow-up is due by `now` (the sweep's query bound)."""
    return now - (followup_due_at(now, after_days) - now)


def due_followup(status: str, lapse_started: datetime, alerted_for: datetime | None,
                 now: datetime, after_days: float) -> bool:
    """A case not visited for `after_days` is overdue, once per lapse (a lapse
    is known by its start; the next visit starts a new one)."""
    return (status != CaseStatus.CLOSED and now >= followup_due_at(lapse_started, after_days)
            and alerted_for != lapse_started)


def normalise_categories(categories: list[str], listed: list[str]) -> list[str]:
    """A case's categories each once, in the order the community lists them
    (`listed`: its category codes in order; the service checks that each is known)."""
    unknown = sorted(set(categories) - set(listed))
    if unknown:
        raise ValueError(f"Unknown categories: {', '.join(unknown)}.")
    if not categories:
        raise ValueError("A case needs at least one category.")
    return [c for c in listed if c in categories]


def cases_limited_to(actor_id: str, actor_is_admin: bool) -> str | None:
    """A member sees only their own cases: whose cases an actor sees and works
    on (reads, visits, referrals, closing). The office every case (None: no
    limit); a member only the cases assigned to them (their id), so a draft,
    which has no assignee yet, is the office's alone."""
    return None if actor_is_admin else actor_id


# -- how a case ended (counted in the monthly report; the free-text outcome says the rest) ------------------

OUTCOME_KINDS = ("helped", "referred", "moved_away", "deceased", "declined", "other")
OUTCOME_KIND_LABELS = {
    "helped": ("已解决", "Helped"),
    "referred": ("已转介", "Referred"),
    "moved_away": ("已搬走", "Moved away"),
    "deceased": ("已去世", "Deceased"),
    "declined": ("本人谢绝", "Declined help"),
    "other": ("其他", "Other"),
}
UNSPECIFIED_OUTCOME = "unspecified"  # a case closed before kinds existed, or closed without one


def outcome_counts(kinds: list[str | None]) -> dict[str, int]:
    """Closed cases by outcome kind, every kind named (0 if none), no kind as "unspecified"."""
    counts = {kind: 0 for kind in (*OUTCOME_KINDS, UNSPECIFIED_OUTCOME)}
    for kind in kinds:
        counts[kind if kind in OUTCOME_KINDS else UNSPECIFIED_OUTCOME] += 1
    return counts


# -- consent (China's Personal Information Protection Law) -------------------------------------------------

# What a person of a household may consent to, in the community's words.
CONSENT_PURPOSES = {
    "case_records": ("建立帮扶档案", "Keeping case records"),
    "health_information": ("记录健康状况", "Recording health conditions"),
    "financial_information": ("记录收入与救助", "Recording income and benefits"),
    "sharing_with_agencies": ("向民政等机构转介", "Sharing with agencies for referrals"),
}


def current_consents(history: list[tuple[int, str, bool]]) -> dict[tuple[int, str], bool]:
    """Each person's (by place in the household) latest answer per purpose:
    `history` oldest first as (position, purpose, given); a withdrawal is a
    later row, so the last word counts."""
    latest: dict[tuple[int, str], bool] = {}
    for position, purpose, given in history:
        latest[(position, purpose)] = given
    return latest


# -- erasure after the retention period ----------------------------------------------------------------------

RETENTION_DAYS_DEFAULT = 1095  # three years after a case is closed; the office sets RETENTION_DAYS
ERASED = "[已删除 erased]"      # what stands where personal details were

ERASABLE_STATUSES = (CaseStatus.CLOSED, CaseStatus.DISMISSED)

# What erasing a case wipes (table -> free-text columns); ids, categories,
# compound, statuses, dates, outcome kinds and goods received stay, so counts stay.
CASE_TEXTS = {
    "cases": ("summary", "outcome"),
    "visits": ("notes",),
    "referrals": ("agency", "benefit"),
    "case_reopenings": ("reason", "previous_outcome"),
}
# And of its household, once none of its cases is left unerased: the address
# and each person's name become the marker, the phone and conditions go; the
# compound, relations and birth years stay (the counts of a report by age).
HOUSEHOLD_TEXTS = ("address",)
HOUSEHOLD_CLEARED = {"phone": None}
PERSON_TEXTS = ("name",)
PERSON_CLEARED = {"conditions": list}
CONSENT_TEXTS = ("person_name",)


def erasable_from(closed_at: datetime, retention_days: float) -> datetime:
    """When a closed or dismissed case's personal details may be erased."""
    return closed_at + timedelta(days=retention_days)


def latest_erasable_closing(now: datetime, retention_days: float) -> datetime:
    """The latest closing that is erasable by `now` (the erasable list's query bound)."""
    return now - (erasable_from(now, retention_days) - now)


def check_erasable(status: str, closed_at: datetime | None, erased_at: datetime | None,
                   retention_days: float, now: datetime, erasable_on: date | None = None) -> None:
    """Only a closed or dismissed case, once, and only when its closing is
    older than the retention period; else RuleBroken (a 409) saying why, and
    from which day (`erasable_on`: erasable_from on the community's calendar,
    which the service knows) when only time stands in the way."""
    if erased_at is not None:
        raise RuleBroken("This case's personal details are erased already.")
    if status not in ERASABLE_STATUSES or closed_at is None:
        raise RuleBroken(f"A case that is {status} cannot be erased: only a closed or dismissed one.")
    if now < erasable_from(closed_at, retention_days):
        if erasable_on is None:
            raise RuleBroken("The retention period has not passed.")
        day = erasable_on.isoformat()
        raise RuleBroken(f"The retention period has not passed. It may be erased from {day}.", {"erasable_from": day})


def erased_text(value):
    """The marker where there was text; nothing stays nothing."""
    return ERASED if value is not None else None


def household_erasable(unerased_other_cases: int) -> bool:
    """A household's details go with its last unerased case."""
    return unerased_other_cases == 0
