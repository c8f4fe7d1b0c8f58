"""Which alert an event makes, and what it says. Standard library only.

Messages are fixed sentences chosen by kind: an alert never quotes a name,
an address or a condition, so it may travel in events and logs."""
from __future__ import annotations

from typing import NamedTuple

CASE_ASSIGNED = "case_assigned"

MESSAGES = {
    CASE_ASSIGNED: "A hardship case has been assigned to you. 您有一个新的帮扶个案。",
}


class AlertSpec(NamedTuple):
    member_id: str
    kind: str
    ref_type: str
    ref_id: str

    @property
    def message(self) -> str:
        return MESSAGES[self.kind]


def alert_for_case_opened(data: dict) -> AlertSpec:
    """The assignee of a new case is alerted: the case is theirs now."""
    return AlertSpec(member_id=data["assignee_id"], kind=CASE_ASSIGNED,
                     ref_type="case", ref_id=data["case_id"])
