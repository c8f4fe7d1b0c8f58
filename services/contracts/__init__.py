"""The event contract: names, payload schemas and who subscribes to what.

One module per producing service holds its event names and `data` schemas.
SUBSCRIPTIONS lists every durable consumer, so that each queue (and its
dead-letter queue) can be declared before anything is published: nameko
drops an event that no queue is bound for yet.
"""
from __future__ import annotations

from typing import NamedTuple

from marshmallow import Schema, ValidationError

from services.common.envelope import EnvelopeSchema
from services.contracts import donations, gateway, notifications, patrol, welfare

PRODUCERS = {
    "donations": donations,
    "gateway": gateway,
    "notifications": notifications,
    "patrol": patrol,
    "welfare": welfare,
}


class Subscription(NamedTuple):
    source: str        # producing service
    event_type: str
    consumer: str      # consuming service
    handler: str       # method name of the consumer's handler


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("welfare", welfare.CASE_OPENED, "notifications", "on_case_opened"),
    Subscription("welfare", welfare.CASE_ASSIGNED, "notifications", "on_case_assigned"),
    Subscription("welfare", welfare.FOLLOWUP_OVERDUE, "notifications", "on_followup_overdue"),
    Subscription("welfare", welfare.REFERRAL_OVERDUE, "notifications", "on_referral_overdue"),
    Subscription("welfare", welfare.CASE_DRAFTED, "notifications", "on_case_drafted"),
    Subscription("patrol", patrol.INCIDENT_REPORTED, "welfare", "on_incident_reported"),
    Subscription("gateway", gateway.MEMBER_REGISTERED, "notifications", "on_member_registered"),
    Subscription("patrol", patrol.INCIDENT_REPORTED, "notifications", "on_incident_reported"),
    Subscription("patrol", patrol.INCIDENT_ESCALATED, "notifications", "on_incident_escalated"),
    Subscription("patrol", patrol.ZONE_UNCOVERED, "notifications", "on_zone_uncovered"),
    Subscription("donations", donations.GOAL_REACHED, "notifications", "on_goal_reached"),
    Subscription("donations", donations.ITEMS_DISPATCHED, "welfare", "on_items_dispatched"),
)


def data_schema(source: str, event_type: str) -> Schema:
    try:
        return PRODUCERS[source].SCHEMAS[event_type]()
    except KeyError:
        raise ValidationError({"type": [f"Unknown event {source}.{event_type}."]})


def validate(envelope: dict) -> dict:
    """Check an envelope and its data against the contract; return the envelope
    with its data as loaded. Raises marshmallow.ValidationError."""
    loaded = EnvelopeSchema().load(envelope)
    loaded["data"] = data_schema(loaded["source"], loaded["type"]).load(loaded["data"])
    return loaded
