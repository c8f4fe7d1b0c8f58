"""The notifications service: turns events into alerts in a member's inbox,
exactly once each, and announces every alert it writes."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import and_, or_, select, update

from services import contracts
from services.common.clock import community_zone, isoformat, naive_utcnow
from services.common.db import Database, UnitOfWork, get_by_id
from services.common.errors import NotFound
from services.common.pagination import PageSchema, paginate
from services.common.schemas import is_id, load_or_raise, require_id
from services.common.service import KernelEntrypoints, rpc
from services.contracts import notifications as events
from services.contracts import donations as donation_events
from services.contracts import gateway as gateway_events
from services.contracts import patrol as patrol_events
from services.contracts import welfare as welfare_events
from services.notifications import domain, outbound
from services.notifications.deliveries import WebhookDeliveries
from services.notifications.models import Alert, Member, Webhook, WebhookDelivery, kernel
from services.notifications.schemas import AlertSchema, WebhookSchema, WebhookSetSchema

log = logging.getLogger(__name__)

WEBHOOK_INTERVAL_SECONDS = 1


# A stream that was away longer than this many alerts reads the rest from the inbox.
MAX_REPLAY = 200


class NotificationsService(KernelEntrypoints):
    name = "notifications"
    config = Config()
    db = Database(kernel)
    webhooks = WebhookDeliveries()

    @contracts.subscribed("welfare", welfare_events.CASE_OPENED)
    def on_case_opened(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_case_opened", lambda _uow: [domain.alert_for_case_opened(event["data"])])

    @contracts.subscribed("welfare", welfare_events.CASE_ASSIGNED)
    def on_case_assigned(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_case_assigned", lambda _uow: domain.alerts_for_case_assigned(event["data"]))

    @contracts.subscribed("welfare", welfare_events.FOLLOWUP_OVERDUE)
    def on_followup_overdue(self, envelope: dict):
        event = contracts.validate(envelope)
        # Days since the last visit are counted to the day the sweep raised it, on the office's calendar.
        try:
            raised_on = datetime.fromisoformat(event["occurred_at"]).astimezone(self._timezone()).date()
        except ValueError:
            raised_on = self._local_now().date()
        self._alert_once(event, "on_followup_overdue",
                         lambda _uow: domain.alerts_for_followup_overdue(event["data"], raised_on))

    @contracts.subscribed("welfare", welfare_events.CASE_DRAFTED)
    def on_case_drafted(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_case_drafted",
                         lambda uow: domain.alerts_for_case_drafted(event["data"], self._admin_ids(uow)))

    @contracts.subscribed("welfare", welfare_events.REFERRAL_OVERDUE)
    def on_referral_overdue(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_referral_overdue",
                         lambda _uow: domain.alerts_for_referral_overdue(event["data"]))

    @contracts.subscribed("patrol", patrol_events.INCIDENT_REPORTED)
    def on_incident_reported(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_incident_reported",
                         lambda uow: domain.alerts_for_incident_reported(event["data"], self._admin_ids(uow)))

    @contracts.subscribed("patrol", patrol_events.INCIDENT_ESCALATED)
    def on_incident_escalated(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_incident_escalated",
                         lambda uow: domain.alerts_for_incident_escalated(event["data"], self._admin_ids(uow)))

    @contracts.subscribed("patrol", patrol_events.ZONE_UNCOVERED)
    def on_zone_uncovered(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_zone_uncovered", lambda _uow: domain.alerts_for_zone_uncovered(event["data"]))

    @contracts.subscribed("donations", donation_events.GOAL_REACHED)
    def on_goal_reached(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_goal_reached", lambda _uow: domain.alerts_for_goal_reached(event["data"]))

    @contracts.subscribed("gateway", gateway_events.MEMBER_REGISTERED)
    def on_member_registered(self, envelope: dict):
        """Remember who the admins are. A member_updated handled first (a
        redelivered registration) is newer: the registration then changes nothing."""
        event = contracts.validate(envelope)
        data = event["data"]
        with self.db.unit_of_work() as uow:
            if not uow.first_delivery(event["id"], f"{self.name}.on_member_registered"):
                return
            if uow.session.get(Member, data["member_id"]) is None:
                uow.session.add(Member(id=data["member_id"], is_admin="admin" in data["roles"]))
            uow.commit()

    @contracts.subscribed("gateway", gateway_events.MEMBER_UPDATED)
    def on_member_updated(self, envelope: dict):
        """A disabled or de-admined admin gets no more admin alerts."""
        event = contracts.validate(envelope)
        data = event["data"]
        with self.db.unit_of_work() as uow:
            if not uow.first_delivery(event["id"], f"{self.name}.on_member_updated"):
                return
            uow.session.merge(Member(id=data["member_id"], is_admin=data["active"] and "admin" in data["roles"]))
            uow.commit()

    @staticmethod
    def _admin_ids(uow: UnitOfWork) -> list[str]:
        return list(uow.session.scalars(select(Member.id).where(Member.is_admin.is_(True)).order_by(Member.id)))

    def _alert_once(self, event: dict, handler: str, specs_for):
        """Write the alerts `specs_for(uow)` names, once per event whatever the
        deliveries, each announced as alert_created."""
        with self.db.unit_of_work() as uow:
            if not uow.first_delivery(event["id"], f"{self.name}.{handler}"):
                return  # a redelivery: the alerts exist already
            for spec in specs_for(uow):
                alert = Alert(member_id=spec.member_id, kind=spec.kind, message=spec.message,
                              compound=spec.compound, ref_type=spec.ref_type, ref_id=spec.ref_id,
                              created_at=naive_utcnow())
                uow.session.add(alert)
                uow.session.flush()
                self._announce(uow, alert)
                self._queue_webhook(uow, alert)
            uow.commit()

    # -- webhooks: alerts that leave the app --------------------------------------------

    def _timezone(self) -> ZoneInfo:
        return community_zone(self.config)

    def _local_now(self) -> datetime:
        return datetime.now(self._timezone())

    def _queue_webhook(self, uow: UnitOfWork, alert: Alert):
        """In the alert's own transaction: a delivery for the member's webhook,
        due now or when their quiet hours end."""
        webhook = uow.session.get(Webhook, alert.member_id)
        if webhook is None or not domain.goes_to_webhook(alert.kind, webhook.kinds or {}):
            return
        due_local = domain.first_attempt_at(alert.kind, self._local_now(), webhook.quiet_start, webhook.quiet_end)
        # Only the kind, the compound and a link back: the message, names and categories stay inside.
        body = domain.webhook_body(alert.kind, alert.compound, domain.alert_link(self._public_url(), alert.id))
        uow.session.add(WebhookDelivery(
            alert_id=alert.id, member_id=alert.member_id, body=json.dumps(body, ensure_ascii=False),
            status="pending", attempts=0, created_at=naive_utcnow(),
            next_attempt_at=due_local.astimezone(timezone.utc).replace(tzinfo=None)))

    def _public_url(self) -> str:
        """Where members open Linli (PUBLIC_URL): webhook bodies link back to it."""
        return self.config["PUBLIC_URL"]

    @rpc
    def set_webhook(self, member_id: str, payload: dict) -> dict:
        """Set where the member's alerts also go; the secret that signs them is
        made the first time (or on rotate_secret) and shown only then."""
        require_id(member_id, "member_id")
        data = load_or_raise(WebhookSetSchema(), payload)
        self.webhooks.check_url(data["url"])  # public addresses only; checked again at each delivery
        quiet = data["quiet_hours"] or {}
        with self.db.unit_of_work() as uow:
            webhook = uow.session.get(Webhook, member_id)
            new_secret = webhook is None or data["rotate_secret"]
            if webhook is None:
                webhook = Webhook(member_id=member_id)
                uow.session.add(webhook)
            if new_secret:
                webhook.secret = outbound.new_secret()
            webhook.url, webhook.kinds = data["url"], data["kinds"]
            webhook.quiet_start, webhook.quiet_end = quiet.get("start"), quiet.get("end")
            webhook.updated_at = naive_utcnow()
            uow.commit()
        return self._webhook_view(webhook, with_secret=new_secret)

    @rpc
    def get_webhook(self, member_id: str) -> dict:
        webhook = self.db.session.get(Webhook, require_id(member_id, "member_id"))
        if webhook is None:
            raise NotFound("No webhook is set.")
        return self._webhook_view(webhook, with_secret=False)

    @rpc
    def delete_webhook(self, member_id: str) -> dict:
        """Stop sending alerts out; deliveries not yet made are dropped with it."""
        with self.db.unit_of_work() as uow:
            webhook = uow.session.get(Webhook, require_id(member_id, "member_id"))
            if webhook is None:
                raise NotFound("No webhook is set.")
            uow.session.delete(webhook)
            uow.session.execute(update(WebhookDelivery).where(
                WebhookDelivery.member_id == member_id, WebhookDelivery.status == "pending",
            ).values(status="cancelled"))
            uow.commit()
        return {"deleted": True}

    @staticmethod
    def _webhook_view(webhook: Webhook, with_secret: bool) -> dict:
        quiet = {"start": webhook.quiet_start, "end": webhook.quiet_end} if webhook.quiet_start else None
        return WebhookSchema().dump({"url": webhook.url, "kinds": webhook.kinds or {}, "quiet_hours": quiet,
                                     "secret": webhook.secret if with_secret else None})

    @timer(interval=WEBHOOK_INTERVAL_SECONDS)
    def deliver_webhooks(self):
        """Claim the deliveries that are due, as many as there is room for, and
        send them outside this worker (services/notifications/deliveries.py):
        a slow receiver delays only its own. Receivers may see a delivery twice
        (after a crash mid-send): its webhook-id says which it is."""
        with self.db.unit_of_work() as uow:
            jobs = self.webhooks.claim(uow.session)
            uow.commit()
        self.webhooks.start(jobs)

    @staticmethod
    def _announce(uow: UnitOfWork, alert: Alert):
        uow.emit(events.ALERT_CREATED, {
            "alert_id": alert.id, "member_id": alert.member_id, "kind": alert.kind,
            "message": alert.message, "compound": alert.compound, "ref": alert.ref,
            "created_at": isoformat(alert.created_at),
        })

    @rpc
    def list_alerts(self, member_id: str, paging: dict | None = None) -> dict:
        require_id(member_id, "member_id")
        paging = load_or_raise(PageSchema(), paging)
        query = select(Alert).where(Alert.member_id == member_id)
        result = paginate(self.db.session, query, paging, Alert.created_at, Alert.id)
        return {"items": AlertSchema(many=True).dump(result["items"]),
                "next_cursor": result["next_cursor"]}

    @rpc
    def alerts_after(self, member_id: str, alert_id: str) -> list[dict]:
        """The member's alerts newer than one of theirs, oldest first: what a
        live stream missed while it was away. Unknown or another's id, or
        not an id at all (it comes from a client's Last-Event-ID): none."""
        require_id(member_id, "member_id")
        if not is_id(alert_id):
            return []
        last = self.db.session.get(Alert, alert_id)
        if last is None or last.member_id != member_id:
            return []
        newer = or_(Alert.created_at > last.created_at,
                    and_(Alert.created_at == last.created_at, Alert.id > last.id))
        query = (select(Alert).where(Alert.member_id == member_id, newer)
                 .order_by(Alert.created_at, Alert.id).limit(MAX_REPLAY))
        return AlertSchema(many=True).dump(self.db.session.scalars(query).all())

    @rpc
    def ack_alert(self, member_id: str, alert_id: str) -> dict:
        """Mark one's own alert read. Acking twice keeps the first time."""
        require_id(member_id, "member_id")
        with self.db.unit_of_work() as uow:
            alert = get_by_id(uow.session, Alert, alert_id)
            if alert is None or alert.member_id != member_id:
                raise NotFound("No such alert.")
            if alert.acked_at is None:
                alert.acked_at = naive_utcnow()
            uow.commit()
        return AlertSchema().dump(alert)
