"""Rules of a hardship case. Standard library only."""
from __future__ import annotations

from services.contracts.welfare import CATEGORIES


class RuleBroken(Exception):
    """A domain rule refused the change; the service maps it to a 409."""


class CaseStatus:
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


# (status, action) -> next status. What is not here is an illegal move.
CASE_TRANSITIONS = {
    (CaseStatus.OPEN, "visit"): CaseStatus.IN_PROGRESS,
    (CaseStatus.OPEN, "refer"): CaseStatus.IN_PROGRESS,
    (CaseStatus.OPEN, "close"): CaseStatus.CLOSED,
    (CaseStatus.IN_PROGRESS, "visit"): CaseStatus.IN_PROGRESS,
    (CaseStatus.IN_PROGRESS, "refer"): CaseStatus.IN_PROGRESS,
    (CaseStatus.IN_PROGRESS, "close"): CaseStatus.CLOSED,
}


def next_status(status: str, action: str) -> str:
    try:
        return CASE_TRANSITIONS[(status, action)]
    except KeyError:
        raise RuleBroken(f"A case that is {status} cannot take '{action}'.")


def normalise_categories(categories: list[str]) -> list[str]:
    """Known categories, each once, in the canonical order."""
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"Unknown categories: {', '.join(unknown)}.")
    if not categories:
        raise ValueError("A case needs at least one category.")
    return [c for c in CATEGORIES if c in categories]


def may_see_case(actor_id: str, actor_is_admin: bool, assignee_id: str) -> bool:
    """An admin sees every case; a member only the cases assigned to them."""
    return actor_is_admin or actor_id == assignee_id
