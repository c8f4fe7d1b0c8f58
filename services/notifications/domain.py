"""Which alert an event makes, and what it says. Standard library only.

Messages are fixed sentences chosen by kind: an alert never quotes a name,
an address or a condition, so it may travel in events and logs."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import NamedTuple

CASE_ASSIGNED = "case_assigned"
CASE_UNASSIGNED = "case_unassigned"
FOLLOWUP_OVERDUE = "followup_overdue"
REFERRAL_OVERDUE = "referral_overdue"
CASE_DRAFTED = "case_drafted"
INCIDENT_REPORTED = "incident_reported"
INCIDENT_HIGH_SEVERITY = "incident_high_severity"
INCIDENT_ESCALATED = "incident_escalated"
ZONE_UNCOVERED = "zone_uncovered"
GOAL_REACHED = "goal_reached"

MESSAGES = {
    CASE_ASSIGNED: "A hardship case has been assigned to you. 您有一个新的帮扶个案。",
    CASE_UNASSIGNED: "A hardship case you had has been given to another party member. 您的一个帮扶个案已转交他人。",
    FOLLOWUP_OVERDUE: "A case of yours is due a visit. 您的帮扶个案需要回访。",
    CASE_DRAFTED: "A hardship was found on patrol: a draft case waits for you. 巡逻发现困难户，待确认。",
    REFERRAL_OVERDUE: "A referral of a case of yours is past its deadline. 您的帮扶个案有一项转介已逾期。",
    INCIDENT_REPORTED: "An incident was reported in your zone. 您负责的片区上报了一个问题。",
    INCIDENT_HIGH_SEVERITY: "A high-severity incident was reported. 有紧急问题上报。",
    INCIDENT_ESCALATED: "An incident has not been acknowledged by its zone leader in time. 有问题未及时确认，已升级。",
    ZONE_UNCOVERED: "Your zone has not been patrolled for a while. 您负责的片区已多日未巡逻。",
    GOAL_REACHED: "Your donation drive has reached its goal. 您发起的募捐已达到目标。",
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


def alerts_for_incident_reported(data: dict, admin_ids: list[str]) -> list[AlertSpec]:
    """The zone's leader, at once; every admin too when it is high-severity."""
    alerts = []
    if data["leader_id"]:
        alerts.append(AlertSpec(data["leader_id"], INCIDENT_REPORTED, "incident", data["incident_id"]))
    if data["severity"] == "high":
        alerts += [AlertSpec(admin_id, INCIDENT_HIGH_SEVERITY, "incident", data["incident_id"])
                   for admin_id in admin_ids]
    return alerts


def alerts_for_incident_escalated(data: dict, admin_ids: list[str]) -> list[AlertSpec]:
    return [AlertSpec(admin_id, INCIDENT_ESCALATED, "incident", data["incident_id"]) for admin_id in admin_ids]


def alerts_for_zone_uncovered(data: dict) -> list[AlertSpec]:
    if not data["leader_id"]:
        return []
    return [AlertSpec(data["leader_id"], ZONE_UNCOVERED, "zone", data["zone_id"])]


def alerts_for_goal_reached(data: dict) -> list[AlertSpec]:
    """The admin who opened the campaign hears it reached its goal."""
    return [AlertSpec(data["created_by"], GOAL_REACHED, "campaign", data["campaign_id"])]


def alerts_for_case_assigned(data: dict) -> list[AlertSpec]:
    """A reassigned case: the new assignee has it now, the previous one no longer."""
    return [AlertSpec(data["assignee_id"], CASE_ASSIGNED, "case", data["case_id"]),
            AlertSpec(data["previous_assignee_id"], CASE_UNASSIGNED, "case", data["case_id"])]


def alerts_for_case_drafted(data: dict, admin_ids: list[str]) -> list[AlertSpec]:
    """The office confirms or dismisses what patrols found."""
    return [AlertSpec(admin_id, CASE_DRAFTED, "case", data["case_id"]) for admin_id in admin_ids]


def alerts_for_referral_overdue(data: dict) -> list[AlertSpec]:
    return [AlertSpec(data["assignee_id"], REFERRAL_OVERDUE, "case", data["case_id"])]


def alerts_for_followup_overdue(data: dict) -> list[AlertSpec]:
    return [AlertSpec(data["assignee_id"], FOLLOWUP_OVERDUE, "case", data["case_id"])]


# Never held back by quiet hours.
URGENT_KINDS = frozenset({INCIDENT_HIGH_SEVERITY, INCIDENT_ESCALATED})
MAX_WEBHOOK_ATTEMPTS = 8


def goes_to_webhook(kind: str, kinds: dict) -> bool:
    """A member with a webhook gets every kind there unless they turned it off."""
    return kinds.get(kind, True)


def quiet_until(local_now: datetime, start: str | None, end: str | None) -> datetime | None:
    """The end of the quiet period `local_now` falls in, or None. Hours are
    local "HH:MM"; a period may run past midnight (22:00 to 07:00)."""
    if not start or not end or start == end:
        return None
    begin, finish = time.fromisoformat(start), time.fromisoformat(end)
    now = local_now.time()
    if begin < finish:
        inside = begin <= now < finish
    else:
        inside = now >= begin or now < finish
    if not inside:
        return None
    until = local_now.replace(hour=finish.hour, minute=finish.minute, second=0, microsecond=0)
    return until if until > local_now else until + timedelta(days=1)


def first_attempt_at(kind: str, local_now: datetime, start: str | None, end: str | None) -> datetime:
    """When a webhook delivery may first be tried: now, or when quiet hours end
    (an urgent alert never waits). In the member's local time."""
    if kind in URGENT_KINDS:
        return local_now
    return quiet_until(local_now, start, end) or local_now


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the n-th failed attempt: 2, 4, 8 ... seconds, at most 10 minutes."""
    return timedelta(seconds=min(2 ** attempts, 600))


def after_attempt(attempts: int, error: str | None, now: datetime) -> tuple[str, datetime]:
    """A delivery after its n-th attempt: ("delivered", now); ("failed", now)
    once MAX_WEBHOOK_ATTEMPTS have failed; else ("pending", when to try again)."""
    if error is None:
        return "delivered", now
    if attempts >= MAX_WEBHOOK_ATTEMPTS:
        return "failed", now
    return "pending", now + retry_delay(attempts)
