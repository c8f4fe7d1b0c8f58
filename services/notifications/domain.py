"""Which alert an event makes, and what it says. Standard library only.

An alert names what happened and where, in words, Chinese first then
English: an incident its compound, category and severity; a case its
compound and categories; a referral its agency, benefit and deadline; a
follow-up its compound and how long since the last visit. The one home of
that wording. The message stays inside Linli (the inbox, the member's own
stream): it is never logged, never on the live feed, and never in a webhook
body (see webhook_body)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
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

# What happened, by kind: the end of every message.
HEADLINES = {
    CASE_ASSIGNED: "新的帮扶个案交给您 A hardship case is now yours",
    CASE_UNASSIGNED: "您的帮扶个案已转交他人 A case of yours went to another party member",
    FOLLOWUP_OVERDUE: "需要回访 Due a visit",
    CASE_DRAFTED: "巡逻发现困难户，待确认 Hardship found on patrol: a draft case waits",
    REFERRAL_OVERDUE: "转介已逾期 Referral past its deadline",
    INCIDENT_REPORTED: "片区有新上报 New incident in your zone",
    INCIDENT_HIGH_SEVERITY: "紧急问题上报 High-severity incident",
    INCIDENT_ESCALATED: "未及时确认，已升级 Not acknowledged in time: escalated",
    ZONE_UNCOVERED: "您负责的片区已多日未巡逻 Your zone has not been patrolled for a while",
    GOAL_REACHED: "您发起的募捐已达到目标 Your donation drive has reached its goal",
}
KINDS = tuple(sorted(HEADLINES))
# An incident in a zone without a leader goes to every admin at once, saying so.
NO_LEADER_HEADLINES = {
    INCIDENT_REPORTED: "片区无负责人，有新上报 New incident in a zone without a leader",
    INCIDENT_HIGH_SEVERITY: "紧急问题上报，片区无负责人 High-severity incident in a zone without a leader",
}
SEVERITY_WORDS = {"low": "轻微 Low", "medium": "一般 Medium", "high": "严重 High"}
MAX_MESSAGE = 1000  # the alerts.message column


class AlertSpec(NamedTuple):
    member_id: str
    kind: str
    ref_type: str
    ref_id: str
    message: str
    compound: str | None = None


def compose(compound: str | None, details: list[str], headline: str) -> str:
    """"幸福花园：违章建筑 Illegal structure · 严重 High — 片区有新上报 New incident in your zone".
    What does not fit MAX_MESSAGE is cut from the details, never the headline."""
    place = "：".join(part for part in (compound, " · ".join(d for d in details if d)) if part)
    if not place:
        return headline[:MAX_MESSAGE]
    room = MAX_MESSAGE - len(headline) - len(" — ")
    if len(place) > room:
        place = place[:max(room - 1, 0)] + "…"
    return f"{place} — {headline}"


def _labels(codes: list[str] | None, labels: list[str] | None) -> str:
    """A case's categories in words ("高龄独居 Elderly、重病 Illness"); a code where a label is missing."""
    codes, labels = codes or [], labels or []
    return "、".join(labels[i] if i < len(labels) and labels[i] else code for i, code in enumerate(codes))


def _incident_details(data: dict) -> list[str]:
    return [data.get("category_label") or data["category"],
            SEVERITY_WORDS.get(data["severity"], data["severity"])]


def since_last_visit(last_visit_on: str | None, today: date) -> str:
    """"上次走访 23 天前 last visit 23 days ago", or "从未走访 never visited"."""
    if not last_visit_on:
        return "从未走访 never visited"
    try:
        days = (today - date.fromisoformat(last_visit_on)).days
    except ValueError:
        return f"上次走访 {last_visit_on} last visit {last_visit_on}"
    if days <= 0:
        return "上次走访 今天 last visit today"
    return f"上次走访 {days} 天前 last visit {days} day{'' if days == 1 else 's'} ago"


def _spec(member_id: str, kind: str, ref_type: str, ref_id: str, compound: str | None, details: list[str],
          headline: str | None = None) -> AlertSpec:
    return AlertSpec(member_id, kind, ref_type, ref_id,
                     compose(compound, details, headline or HEADLINES[kind]), compound)


def _case_spec(member_id: str, kind: str, data: dict) -> AlertSpec:
    """A case's alert: its compound and its categories in words."""
    return _spec(member_id, kind, "case", data["case_id"], data.get("compound"),
                 [_labels(data.get("categories"), data.get("category_labels"))])


def alert_for_case_opened(data: dict) -> AlertSpec:
    """The assignee of a new case is alerted: the case is theirs now."""
    return _case_spec(data["assignee_id"], CASE_ASSIGNED, data)


def alerts_for_incident_reported(data: dict, admin_ids: list[str]) -> list[AlertSpec]:
    """The zone's leader, at once; every admin too when it is high-severity.
    A zone without a leader has no one to hear it: every admin is alerted at
    once instead, one alert each (the high-severity one when it is high)."""
    def spec(member_id, kind, headline=None):
        return _spec(member_id, kind, "incident", data["incident_id"], data["compound"],
                     _incident_details(data), headline)

    high = data["severity"] == "high"
    if not data["leader_id"]:
        kind = INCIDENT_HIGH_SEVERITY if high else INCIDENT_REPORTED
        return [spec(admin_id, kind, NO_LEADER_HEADLINES[kind]) for admin_id in admin_ids]
    alerts = [spec(data["leader_id"], INCIDENT_REPORTED)]
    if high:
        alerts += [spec(admin_id, INCIDENT_HIGH_SEVERITY) for admin_id in admin_ids]
    return alerts


def alerts_for_incident_escalated(data: dict, admin_ids: list[str]) -> list[AlertSpec]:
    minutes = round(data.get("minutes_unacknowledged") or 0)
    headline = (f"{minutes} 分钟未确认，已升级 Not acknowledged for {minutes} minutes: escalated"
                if minutes else None)
    return [_spec(admin_id, INCIDENT_ESCALATED, "incident", data["incident_id"], data["compound"],
                  _incident_details(data), headline) for admin_id in admin_ids]


def alerts_for_zone_uncovered(data: dict) -> list[AlertSpec]:
    if not data["leader_id"]:
        return []
    days = round(data.get("days") or 0)
    headline = (f"您负责的片区已 {days} 天未巡逻 Your zone has not been patrolled for {days} days"
                if days else None)
    return [_spec(data["leader_id"], ZONE_UNCOVERED, "zone", data["zone_id"], None, [], headline)]


def alerts_for_goal_reached(data: dict) -> list[AlertSpec]:
    """The admin who opened the campaign hears it reached its goal."""
    return [_spec(data["created_by"], GOAL_REACHED, "campaign", data["campaign_id"], None, [])]


def alerts_for_case_assigned(data: dict) -> list[AlertSpec]:
    """A reassigned case: the new assignee has it now, the previous one no longer."""
    return [_case_spec(data["assignee_id"], CASE_ASSIGNED, data),
            _case_spec(data["previous_assignee_id"], CASE_UNASSIGNED, data)]


def alerts_for_case_drafted(data: dict, admin_ids: list[str]) -> list[AlertSpec]:
    """The office confirms or dismisses what patrols found."""
    return [_spec(admin_id, CASE_DRAFTED, "case", data["case_id"], data["compound"], [])
            for admin_id in admin_ids]


def alerts_for_referral_overdue(data: dict) -> list[AlertSpec]:
    """Which referral: its agency, its benefit and the deadline it missed."""
    details = [data.get("agency"), data.get("benefit"), f"截止 {data['deadline']} deadline"]
    return [_spec(data["assignee_id"], REFERRAL_OVERDUE, "case", data["case_id"], data.get("compound"), details)]


def alerts_for_followup_overdue(data: dict, today: date) -> list[AlertSpec]:
    """How long since the last visit, counted to `today` (the office's calendar)."""
    return [_spec(data["assignee_id"], FOLLOWUP_OVERDUE, "case", data["case_id"], data["compound"],
                  [since_last_visit(data.get("last_visit_on"), today)])]


def webhook_body(kind: str, compound: str | None, link: str) -> dict:
    """All that an alert carries out of Linli (to an SMS or chat gateway):
    its kind, the compound and a link back. No message, no name, no category."""
    return {"kind": kind, "compound": compound, "link": link}


def alert_link(public_url: str, alert_id: str) -> str:
    """The alert in the workspace: <public URL>/app/#/alerts/<id>."""
    return f"{public_url.rstrip('/')}/app/#/alerts/{alert_id}"

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
