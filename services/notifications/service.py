"""The notifications service: turns events into alerts in a member's inbox,
exactly once each, and announces every alert it writes."""
from __future__ import annotations

from sqlalchemy import and_, or_, select

from services import contracts
from services.common.clock import isoformat, naive_utcnow
from services.common.db import Database, UnitOfWork
from services.common.errors import InvalidInput, NotFound
from services.common.events import reliable_event_handler
from services.common.pagination import PageSchema, paginate
from services.common.schemas import load_or_raise
from services.common.service import KernelEntrypoints, rpc
from services.contracts import notifications as events
from services.contracts import donations as donation_events
from services.contracts import gateway as gateway_events
from services.contracts import patrol as patrol_events
from services.contracts import welfare as welfare_events
from services.notifications import domain
from services.notifications.models import Alert, Member, kernel
from services.notifications.schemas import AlertSchema


# A stream that was away longer than this many alerts reads the rest from the inbox.
MAX_REPLAY = 200


class NotificationsService(KernelEntrypoints):
    name = "notifications"
    db = Database(kernel)

    @reliable_event_handler("welfare", welfare_events.CASE_OPENED)
    def on_case_opened(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_case_opened", lambda _uow: [domain.alert_for_case_opened(event["data"])])

    @reliable_event_handler("welfare", welfare_events.CASE_ASSIGNED)
    def on_case_assigned(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_case_assigned", lambda _uow: domain.alerts_for_case_assigned(event["data"]))

    @reliable_event_handler("welfare", welfare_events.FOLLOWUP_OVERDUE)
    def on_followup_overdue(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_followup_overdue",
                         lambda _uow: domain.alerts_for_followup_overdue(event["data"]))

    @reliable_event_handler("patrol", patrol_events.INCIDENT_REPORTED)
    def on_incident_reported(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_incident_reported",
                         lambda uow: domain.alerts_for_incident_reported(event["data"], self._admin_ids(uow)))

    @reliable_event_handler("patrol", patrol_events.INCIDENT_ESCALATED)
    def on_incident_escalated(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_incident_escalated",
                         lambda uow: domain.alerts_for_incident_escalated(event["data"], self._admin_ids(uow)))

    @reliable_event_handler("patrol", patrol_events.ZONE_UNCOVERED)
    def on_zone_uncovered(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_zone_uncovered", lambda _uow: domain.alerts_for_zone_uncovered(event["data"]))

    @reliable_event_handler("donations", donation_events.GOAL_REACHED)
    def on_goal_reached(self, envelope: dict):
        event = contracts.validate(envelope)
        self._alert_once(event, "on_goal_reached", lambda _uow: domain.alerts_for_goal_reached(event["data"]))

    @reliable_event_handler("gateway", gateway_events.MEMBER_REGISTERED)
    def on_member_registered(self, envelope: dict):
        """Remember who the admins are."""
        event = contracts.validate(envelope)
        data = event["data"]
        with self.db.unit_of_work() as uow:
            if not uow.first_delivery(event["id"], f"{self.name}.on_member_registered"):
                return
            uow.session.merge(Member(id=data["member_id"], is_admin="admin" in data["roles"]))
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
                              ref_type=spec.ref_type, ref_id=spec.ref_id, created_at=naive_utcnow())
                uow.session.add(alert)
                uow.session.flush()
                self._announce(uow, alert)
            uow.commit()

    @staticmethod
    def _announce(uow: UnitOfWork, alert: Alert):
        uow.emit(events.ALERT_CREATED, {
            "alert_id": alert.id, "member_id": alert.member_id, "kind": alert.kind,
            "message": alert.message, "ref": alert.ref,
            "created_at": isoformat(alert.created_at),
        })

    @rpc
    def list_alerts(self, member_id: str, paging: dict | None = None) -> dict:
        if not isinstance(member_id, str) or not member_id:
            raise InvalidInput("member_id must be a non-empty string.")
        paging = load_or_raise(PageSchema(), paging)
        query = select(Alert).where(Alert.member_id == member_id)
        result = paginate(self.db.session, query, paging, Alert.created_at, Alert.id)
        return {"items": AlertSchema(many=True).dump(result["items"]),
                "next_cursor": result["next_cursor"]}

    @rpc
    def alerts_after(self, member_id: str, alert_id: str) -> list[dict]:
        """The member's alerts newer than one of theirs, oldest first: what a
        live stream missed while it was away. Unknown or another's id: none."""
        last = self.db.session.get(Alert, alert_id) if isinstance(alert_id, str) else None
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
        with self.db.unit_of_work() as uow:
            alert = uow.session.get(Alert, alert_id) if isinstance(alert_id, str) else None
            if alert is None or alert.member_id != member_id:
                raise NotFound("No such alert.")
            if alert.acked_at is None:
                alert.acked_at = naive_utcnow()
            uow.commit()
        return AlertSchema().dump(alert)
