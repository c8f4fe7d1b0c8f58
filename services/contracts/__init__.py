"""The event contract: names, payload schemas and who subscribes to what.

One module per producing service holds its event names and `data` schemas.
SUBSCRIPTIONS lists every durable consumer, so that each queue (and its
dead-letter queue) can be declared before anything is published: nameko
drops an event that no queue is bound for yet.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError

from services.common.envelope import EnvelopeSchema
from services.common.events import EventContract, Subscription, reliable_event_handler
from services.common.schemas import shared
from services.contracts import donations, gateway, notifications, patrol, volunteers, welfare

PRODUCERS = {
    "donations": donations,
    "gateway": gateway,
    "notifications": notifications,
    "patrol": patrol,
    "volunteers": volunteers,
    "welfare": welfare,
}


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("welfare", welfare.CASE_OPENED, "notifications", "on_case_opened"),
    Subscription("welfare", welfare.CASE_ASSIGNED, "notifications", "on_case_assigned"),
    Subscription("welfare", welfare.FOLLOWUP_OVERDUE, "notifications", "on_followup_overdue"),
    Subscription("welfare", welfare.REFERRAL_OVERDUE, "notifications", "on_referral_overdue"),
    Subscription("welfare", welfare.CASE_DRAFTED, "notifications", "on_case_drafted"),
    Subscription("patrol", patrol.INCIDENT_REPORTED, "welfare", "on_incident_reported"),
    Subscription("gateway", gateway.MEMBER_REGISTERED, "notifications", "on_member_registered"),
    Subscription("gateway", gateway.MEMBER_UPDATED, "notifications", "on_member_updated"),
    Subscription("patrol", patrol.INCIDENT_REPORTED, "notifications", "on_incident_reported"),
    Subscription("patrol", patrol.INCIDENT_ESCALATED, "notifications", "on_incident_escalated"),
    Subscription("patrol", patrol.ZONE_UNCOVERED, "notifications", "on_zone_uncovered"),
    Subscription("donations", donations.GOAL_REACHED, "notifications", "on_goal_reached"),
    Subscription("donations", donations.ITEMS_DISPATCHED, "welfare", "on_items_dispatched"),
    Subscription("patrol", patrol.PATROL_FINISHED, "volunteers", "on_patrol_finished"),
    Subscription("patrol", patrol.PATROL_CORRECTED, "volunteers", "on_patrol_corrected"),
)


def data_schema(source: str, event_type: str) -> Schema:
    try:
        return shared(PRODUCERS[source].SCHEMAS[event_type])
    except (KeyError, TypeError):  # TypeError: not hashable, so not a name
        raise ValidationError({"type": [f"Unknown event {source}.{event_type}."]})


def validate(envelope: dict, *, strict: bool = False) -> dict:
    """Check an envelope and its data against the contract; return the envelope
    with its data as loaded. Raises marshmallow.ValidationError.

    A consumer reads an event as a tolerant reader: a field it does not know
    (one a newer producer added, while instances of two versions run side by
    side) is left out, not refused. A producer checks what it emits with
    `strict`: a field the contract does not name is a mistake there."""
    unknown = RAISE if strict else EXCLUDE
    loaded = shared(EnvelopeSchema).load(envelope, unknown=unknown)
    loaded["data"] = data_schema(loaded["source"], loaded["type"]).load(loaded["data"], unknown=unknown)
    return loaded


def subscribed(source_service: str, event_type: str, **kwargs):
    """The handler of one of the SUBSCRIPTIONS above: the kernel's
    reliable_event_handler, handed this list (the kernel knows none)."""
    return reliable_event_handler(source_service, event_type, subscriptions=SUBSCRIPTIONS, **kwargs)


# What the kernel is handed: each service's KernelTables, `linli` and the tests give it this.
EVENTS = EventContract(validate=validate, subscriptions=SUBSCRIPTIONS, producers=tuple(PRODUCERS))


# What an event may show on a dashboard or an operator's terminal: ids,
# categories, compound and zone, status, amounts, counts and dates. Every other
# field stays home, whatever a producer puts in its payload (an allow-list, so a
# new field, a new id included, is hidden until it is named here). Never the id
# of a household: next to a case's categories it tells anyone with the
# dashboard's login which household lives with which hardship.
FEED_IDS = frozenset({
    "alert_id", "assignee_id", "campaign_id", "case_id", "dispatch_id", "donation_id", "group_id", "helper_ids",
    "incident_id", "leader_id", "member_id", "member_ids", "patrol_id", "previous_assignee_id", "record_id",
    "referral_id", "session_id", "visit_id", "zone_id",
})
FEED_FIELDS = FEED_IDS | frozenset({
    "compound", "compounds", "category", "categories", "severity", "status", "kind", "referral_status", "to",
    "code",  # a category's code (category_added, category_retired): the only events with a `code`
    "roles", "party_member", "ref", "items",
    "amount_fen", "goal_fen", "cash_fen", "cash_fen_total", "donations_total", "days", "minutes_unacknowledged",
    "duration_minutes", "closed_automatically", "minutes", "participants", "source", "held_on", "served_on",
    "started_at", "finished_at", "last_patrol_at", "starts_on", "ends_on", "visited_on", "last_visit_on",
    "deadline", "created_at",
})
_FEED_NESTED = {"items": ("category", "quantity"), "ref": ("type", "id")}


def for_feed(envelope: dict) -> dict:
    """The envelope as a live feed may show it: personal data removed."""
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    shown = {}
    for key, value in data.items():
        if key not in FEED_FIELDS:
            continue
        if key in _FEED_NESTED:
            keep = _FEED_NESTED[key]
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k in keep}
            elif isinstance(value, list):
                value = [{k: v for k, v in item.items() if k in keep} for item in value if isinstance(item, dict)]
            else:
                continue
        shown[key] = value
    return {**{k: envelope.get(k) for k in ("id", "type", "source", "occurred_at", "version")}, "data": shown}
