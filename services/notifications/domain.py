"""Which alert an event makes, and what it says. Standard library only.

Messages are fixed sentences chosen by kind: an alert never quotes a name,
an address or a condition, so it may travel in events and logs."""
from __future__ import annotations

from typing import NamedTuple

CASE_ASSIGNED = "case_assigned"
CASE_UNASSIGNED = "case_unassigned"
FOLLOWUP_OVERDUE = "followup_overdue"
INCIDENT_REPORTED = "incident_reported"
INCIDENT_HIGH_SEVERITY = "incident_high_severity"
INCIDENT_ESCALATED = "incident_escalated"
ZONE_UNCOVERED = "zone_uncovered"
GOAL_REACHED = "goal_reached"

MESSAGES = {
    CASE_ASSIGNED: "A hardship case has been assigned to you. 您有一个新的帮扶个案。",
    CASE_UNASSIGNED: "A hardship case you had has been given to another party member. 您的一个帮扶个案已转交他人。",
    FOLLOWUP_OVERDUE: "A case of yours is due a visit. 您的帮扶个案需要回访。",
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


def alerts_for_followup_overdue(data: dict) -> list[AlertSpec]:
    return [AlertSpec(data["assignee_id"], FOLLOWUP_OVERDUE, "case", data["case_id"])]
