"""The volunteers service: activity groups (a leader who is a party member,
helpers), the sessions they hold, and every member's volunteer service:
patrols counted from patrol's events, sessions led or helped at, and other
service the office records. Every change commits with its events in the outbox."""
from __future__ import annotations

from datetime import date

from nameko.dependency_providers import Config
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services import contracts
from services.common.clock import community_zone, local_today, month_days, month_of, naive_utcnow
from services.common.db import Database, UnitOfWork, get_by_id
from services.common.errors import Conflict, InvalidInput, NotFound, enforce
from services.common.idempotency import idempotent
from services.common.pagination import paginate
from services.common.schemas import load_or_raise, shared
from services.common.service import KernelEntrypoints, rpc
from services.contracts.principal import is_admin, load_actor, require_admin
from services.contracts import patrol as patrol_events
from services.contracts import volunteers as events
from services.volunteers import domain
from services.volunteers.domain import Role, Source
from services.volunteers.models import Group, GroupSession, ServiceRecord, kernel
from services.volunteers.schemas import (
    GroupCreateSchema, GroupQuerySchema, GroupSchema, GroupUpdateSchema, MyServiceQuerySchema, PersonAccountSchema,
    ServiceCreateSchema, ServiceQuerySchema, ServiceRecordSchema, SessionCreateSchema, SessionQuerySchema,
    SessionSchema, TotalsQuerySchema,
)

MY_LATEST_RECORDS = 50


def _by_source() -> dict[str, int]:
    return {source: 0 for source in events.SOURCES}


class VolunteersService(KernelEntrypoints):
    name = "volunteers"
    config = Config()
    db = Database(kernel)

    # -- activity groups -------------------------------------------------------------

    @rpc
    @idempotent
    def create_group(self, payload: dict, actor: dict, accounts: list[dict]) -> dict:
        """A group, its leader and helpers (`accounts`: theirs, as the gateway
        vouches; see _require_group_people)."""
        require_admin(load_actor(actor))
        data = load_or_raise(GroupCreateSchema(), payload)
        self._require_group_people(data, accounts)
        name = self._name(data["name"])
        with self.db.unit_of_work() as uow:
            self._check_name_free(uow, name)
            group = Group(name=name, kind=data["kind"], leader_id=data["leader_id"],
                          helper_ids=domain.helpers_of(data["leader_id"], data["helper_ids"]),
                          active=True, created_at=naive_utcnow())
            uow.session.add(group)
            try:
                uow.session.flush()
            except IntegrityError:  # another request took the name meanwhile
                raise Conflict("A group has this name already.", {"fields": {"name": ["Taken."]}})
            uow.emit(events.GROUP_CREATED, {"group_id": group.id, "kind": group.kind,
                                            "leader_id": group.leader_id, "helper_ids": list(group.helper_ids)})
            uow.commit()
        return GroupSchema().dump(group)

    @staticmethod
    def _require_group_people(data: dict, accounts: list[dict]):
        """Where volunteers enforces domain.check_group_people, on the leader
        and helpers sent. The accounts live in the gateway, which hands over
        theirs within the call it vouches for: facts as of this request, with
        no race against an account event not yet arrived. A 400 naming the
        field, before anything is read."""
        held = {account["id"]: account for account in load_or_raise(shared(PersonAccountSchema, many=True), accounts)}
        try:
            domain.check_group_people(data.get("leader_id"), data.get("helper_ids") or [], held)
        except domain.BadPeople as exc:
            raise InvalidInput(str(exc), {"fields": {exc.field: exc.messages}})

    @staticmethod
    def _name(name: str) -> str:
        name = name.strip()
        if not name:
            raise InvalidInput("A group needs a name.", {"fields": {"name": ["Not blank."]}})
        return name

    @staticmethod
    def _check_name_free(uow: UnitOfWork, name: str, group_id: str | None = None):
        other = uow.session.scalar(select(Group.id).where(Group.name == name))
        if other is not None and other != group_id:
            raise Conflict("A group has this name already.", {"fields": {"name": ["Taken."]}})

    @rpc
    def update_group(self, group_id: str, payload: dict, actor: dict, accounts: list[dict]) -> dict:
        """Any of name, leader (null: none), helpers, active; only the fields
        sent (`accounts`: those of the leader and helpers sent, see _require_group_people)."""
        require_admin(load_actor(actor))
        data = load_or_raise(GroupUpdateSchema(), payload)
        self._require_group_people(data, accounts)
        with self.db.unit_of_work() as uow:
            group = self._group(group_id, uow.session)
            if "name" in data:
                group.name = self._name(data["name"])
                self._check_name_free(uow, group.name, group.id)
            if "leader_id" in data:
                group.leader_id = data["leader_id"]
            if "active" in data:
                group.active = data["active"]
            group.helper_ids = domain.helpers_of(group.leader_id, data.get("helper_ids", group.helper_ids))
            try:
                uow.session.flush()
            except IntegrityError:
                raise Conflict("A group has this name already.", {"fields": {"name": ["Taken."]}})
            shown = GroupSchema().dump(group)
            uow.commit()
        return shown

    @rpc
    def list_groups(self, query: dict | None = None) -> dict:
        query = load_or_raise(GroupQuerySchema(), query)
        statement = select(Group)
        if query["active"] is not None:
            statement = statement.where(Group.active.is_(query["active"]))
        result = paginate(self.db.session, statement, query, Group.created_at, Group.id)
        return {"items": GroupSchema(many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}

    @rpc
    def get_group(self, group_id: str) -> dict:
        return GroupSchema().dump(self._group(group_id))

    def _group(self, group_id: str, session=None) -> Group:
        group = get_by_id(session or self.db.session, Group, group_id)
        if group is None:
            raise NotFound("No such group.")
        return group

    # -- sessions --------------------------------------------------------------------

    @rpc
    @idempotent
    def record_session(self, group_id: str, payload: dict, actor: dict) -> dict:
        """A session held, by the office or the group's leader: its row, and the
        leader's and each helper's service record (its duration), in one
        transaction, with session_held and service_recorded."""
        actor = load_actor(actor)
        data = load_or_raise(SessionCreateSchema(), payload)
        self._check_past("held_on", data["held_on"])
        blank = [field for field in ("place", "what") if not data[field].strip()]
        if blank:
            raise InvalidInput("Say where, and what was done.", {"fields": {field: ["Not blank."] for field in blank}})
        with self.db.unit_of_work() as uow:
            group = self._group(group_id, uow.session)
            enforce(domain.check_may_record_session, actor["id"], is_admin(actor), group.leader_id)
            present = domain.helpers_of(group.leader_id, data["helper_ids"])
            try:
                enforce(domain.check_session, group.active, group.leader_id, present, list(group.helper_ids or []))
            except domain.BadHelpers as exc:
                raise InvalidInput(str(exc), {"fields": {"helper_ids": [
                    f"{helper} is not one of the group's helpers." for helper in exc.unknown]}})
            session = GroupSession(group_id=group.id, held_on=data["held_on"], starts_at=data["starts_at"],
                                   duration_minutes=data["duration_minutes"], place=data["place"].strip(),
                                   what=data["what"].strip(), kind=data["kind"], participants=data["participants"],
                                   leader_id=group.leader_id, helper_ids=present, recorded_by=actor["id"],
                                   created_at=naive_utcnow())
            uow.session.add(session)
            uow.session.flush()
            uow.emit(events.SESSION_HELD, {
                "session_id": session.id, "group_id": group.id, "kind": session.kind,
                "held_on": session.held_on.isoformat(), "duration_minutes": session.duration_minutes,
                "participants": session.participants, "leader_id": session.leader_id,
                "helper_ids": list(present)})
            for member_id, role in [(group.leader_id, Role.LEADER), *((h, Role.HELPER) for h in present)]:
                self._add_record(uow, member_id=member_id, served_on=session.held_on,
                                 minutes=session.duration_minutes, source=Source.SESSION, source_id=session.id,
                                 role=role, what=group.name, recorded_by=actor["id"])
            shown = SessionSchema().dump(session)
            uow.commit()
        return shown

    @staticmethod
    def _add_record(uow: UnitOfWork, **columns) -> ServiceRecord:
        record = ServiceRecord(recorded_at=naive_utcnow(), **columns)
        uow.session.add(record)
        uow.session.flush()
        uow.emit(events.SERVICE_RECORDED, _record_event(record))
        return record

    @rpc
    def list_sessions(self, query: dict | None = None) -> dict:
        """Sessions, newest recorded first; by group and the month they were held in."""
        query = load_or_raise(SessionQuerySchema(), query)
        statement = select(GroupSession)
        if query["group_id"]:
            statement = statement.where(GroupSession.group_id == query["group_id"])
        if query["month"]:
            first, after = month_days(query["month"])
            statement = statement.where(GroupSession.held_on >= first, GroupSession.held_on < after)
        result = paginate(self.db.session, statement, query, GroupSession.created_at, GroupSession.id)
        return {"items": SessionSchema(many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}

    # -- service records -----------------------------------------------------------

    @rpc
    @idempotent
    def record_service(self, payload: dict, actor: dict) -> dict:
        """Other service, recorded by the office (tutoring, the blackboard
        bulletin); the gateway has checked the member exists."""
        actor = require_admin_actor(actor)
        data = load_or_raise(ServiceCreateSchema(), payload)
        self._check_past("served_on", data["served_on"])
        what = data["what"].strip()
        if not what:
            raise InvalidInput("Say what was done.", {"fields": {"what": ["Not blank."]}})
        with self.db.unit_of_work() as uow:
            record = self._add_record(uow, member_id=data["member_id"], served_on=data["served_on"],
                                      minutes=data["minutes"], source=Source.OTHER, source_id=None, role=None,
                                      what=what, recorded_by=actor["id"])
            shown = ServiceRecordSchema().dump(record)
            uow.commit()
        return shown

    @rpc
    def list_service(self, actor: dict, query: dict | None = None) -> dict:
        """Every member's records, newest first (the office)."""
        require_admin_actor(actor)
        query = load_or_raise(ServiceQuerySchema(), query)
        statement = select(ServiceRecord)
        if query["member_id"]:
            statement = statement.where(ServiceRecord.member_id == query["member_id"])
        if query["source"]:
            statement = statement.where(ServiceRecord.source == query["source"])
        if query["month"]:
            first, after = month_days(query["month"])
            statement = statement.where(ServiceRecord.served_on >= first, ServiceRecord.served_on < after)
        result = paginate(self.db.session, statement, query, ServiceRecord.recorded_at, ServiceRecord.id)
        return {"items": ServiceRecordSchema(many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}

    @rpc
    def service_totals(self, query: dict | None = None) -> dict:
        """Each member's minutes in a month (this month by default), by source, most first."""
        month = load_or_raise(TotalsQuerySchema(), query)["month"] or month_of(local_today(self.config))
        first, after = month_days(month)
        rows = self.db.session.execute(
            select(ServiceRecord.member_id, ServiceRecord.source, func.sum(ServiceRecord.minutes))
            .where(ServiceRecord.served_on >= first, ServiceRecord.served_on < after)
            .group_by(ServiceRecord.member_id, ServiceRecord.source)).all()
        members: dict[str, dict] = {}
        for member_id, source, minutes in rows:
            totals = members.setdefault(member_id, {"member_id": member_id, "minutes": 0, **_by_source()})
            totals[source] += int(minutes or 0)
            totals["minutes"] += int(minutes or 0)
        return {"month": month, "members": sorted(members.values(), key=lambda m: (-m["minutes"], m["member_id"]))}

    @rpc
    def my_service(self, actor: dict, query: dict | None = None) -> dict:
        """One's own service in a year (this year by default): the total, each
        month's by source, and the latest records."""
        actor = load_actor(actor)
        year = load_or_raise(MyServiceQuerySchema(), query)["year"] or local_today(self.config).year
        mine = (ServiceRecord.member_id == actor["id"], ServiceRecord.served_on >= date(year, 1, 1),
                ServiceRecord.served_on < date(year + 1, 1, 1))
        session = self.db.session
        months = {month: {"month": month, "minutes": 0, **_by_source()} for month in domain.months_of_year(year)}
        for served_on, source, minutes in session.execute(
                select(ServiceRecord.served_on, ServiceRecord.source, ServiceRecord.minutes).where(*mine)).all():
            totals = months[month_of(served_on)]
            totals[source] += minutes
            totals["minutes"] += minutes
        latest = session.scalars(select(ServiceRecord).where(*mine).order_by(
            ServiceRecord.served_on.desc(), ServiceRecord.recorded_at.desc(), ServiceRecord.id.desc())
            .limit(MY_LATEST_RECORDS)).all()
        return {"year": year, "total_minutes": sum(m["minutes"] for m in months.values()),
                "months": list(months.values()), "records": ServiceRecordSchema(many=True).dump(latest)}

    # -- hours from patrols --------------------------------------------------------

    @contracts.subscribed("patrol", patrol_events.PATROL_FINISHED)
    def on_patrol_finished(self, envelope: dict):
        """A finished patrol counts its duration for its member, once: a
        redelivered event, or the same patrol's event at two instances at once,
        finds the record there (the unique constraint) and changes nothing."""
        data = contracts.validate(envelope)["data"]
        self._count_patrol(data, domain.patrol_minutes(data["started_at"], data["finished_at"],
                                                       data["duration_minutes"]), correction=False)

    @contracts.subscribed("patrol", patrol_events.PATROL_CORRECTED)
    def on_patrol_corrected(self, envelope: dict):
        """The office set a patrol's times right: its record takes the new
        minutes (and is made, if the patrol's finish has not arrived yet)."""
        data = contracts.validate(envelope)["data"]
        self._count_patrol(data, domain.patrol_minutes(data["started_at"], data["finished_at"],
                                                       data["duration_minutes"]), correction=True)

    def _count_patrol(self, data: dict, minutes: int, correction: bool):
        """The rule "a patrol counts once for its member", enforced: one
        service record per source, patrol and member (the unique constraint
        ux_service_once). The record found is kept (a redelivery) or takes a
        correction's minutes and day; none: one is made, and an instance that
        made it meanwhile makes this insert fail, changing nothing."""
        served_on = domain.local_date(data["started_at"], community_zone(self.config))
        with self.db.unit_of_work() as uow:
            record = uow.session.scalar(select(ServiceRecord).where(
                ServiceRecord.source == Source.PATROL, ServiceRecord.source_id == data["patrol_id"],
                ServiceRecord.member_id == data["member_id"]))
            if record is not None:
                if not correction or (record.minutes, record.served_on) == (minutes, served_on):
                    return
                record.minutes, record.served_on = minutes, served_on
                uow.emit(events.SERVICE_RECORDED, _record_event(record))
                uow.commit()
                return
            try:
                self._add_record(uow, member_id=data["member_id"], served_on=served_on, minutes=minutes,
                                 source=Source.PATROL, source_id=data["patrol_id"], role=Role.PATROL, what=None,
                                 recorded_by=None)
            except IntegrityError:
                # Another instance counted this patrol at this very moment; a
                # correction then fails here and is retried, finding the record.
                if correction:
                    raise
                return
            uow.commit()

    # -- summaries -------------------------------------------------------------------

    @rpc
    def monthly_summary(self, month: str) -> dict:
        """A month's groups, sessions and service: counts and minutes only.
        `groups_active`: the groups that held a session in the month; `groups`:
        every active group, and any other that held one, with its month's counts."""
        month = load_or_raise(TotalsQuerySchema(), {"month": month})["month"]
        if month is None:
            raise InvalidInput("A month as YYYY-MM.", {"fields": {"month": ["A month as YYYY-MM (2026-05)."]}})
        first, after = month_days(month)
        session = self.db.session
        held = (GroupSession.held_on >= first, GroupSession.held_on < after)
        by_kind = {kind: 0 for kind in events.SESSION_KINDS}
        per_group: dict[str, dict] = {}
        for group_id, kind, count, participants in session.execute(
                select(GroupSession.group_id, GroupSession.kind, func.count(), func.sum(GroupSession.participants))
                .where(*held).group_by(GroupSession.group_id, GroupSession.kind)).all():
            by_kind[kind] += count
            totals = per_group.setdefault(group_id, {"sessions": 0, "participants": 0})
            totals["sessions"] += count
            totals["participants"] += int(participants or 0)
        groups = session.scalars(select(Group).where(Group.active.is_(True) | Group.id.in_(list(per_group)))
                                 .order_by(Group.created_at, Group.id)).all()
        service = self._minutes(first, after)
        return {
            "month": month,
            "groups_active": len(per_group),
            "sessions": sum(by_kind.values()),
            "sessions_by_kind": by_kind,
            "participants": sum(totals["participants"] for totals in per_group.values()),
            **service,
            "groups": [{"group_id": group.id, "name": group.name, "kind": group.kind,
                        **per_group.get(group.id, {"sessions": 0, "participants": 0})} for group in groups],
        }

    def _minutes(self, first: date, after: date) -> dict:
        served = (ServiceRecord.served_on >= first, ServiceRecord.served_on < after)
        by_source = _by_source()
        for source, minutes in self.db.session.execute(
                select(ServiceRecord.source, func.sum(ServiceRecord.minutes)).where(*served)
                .group_by(ServiceRecord.source)).all():
            by_source[source] = int(minutes or 0)
        serving = self.db.session.scalar(select(func.count(func.distinct(ServiceRecord.member_id))).where(*served))
        return {"minutes": sum(by_source.values()), "minutes_by_source": by_source, "members_serving": serving or 0}

    @rpc
    def summary(self) -> dict:
        """For the wall: this month's sessions, participants and minutes served."""
        month = month_of(local_today(self.config))
        first, after = month_days(month)
        sessions, participants = self.db.session.execute(
            select(func.count(), func.sum(GroupSession.participants))
            .where(GroupSession.held_on >= first, GroupSession.held_on < after)).one()
        service = self._minutes(first, after)
        return {"month": month, "sessions": sessions, "participants": int(participants or 0),
                "minutes": service["minutes"], "minutes_by_source": service["minutes_by_source"]}

    # -- helpers ----------------------------------------------------------------------

    def _check_past(self, field: str, day: date):
        try:
            domain.check_not_after_today(day, local_today(self.config))
        except ValueError as exc:
            raise InvalidInput(str(exc), {"fields": {field: [str(exc)]}})


def require_admin_actor(actor: dict) -> dict:
    actor = load_actor(actor)
    require_admin(actor)
    return actor


def _record_event(record: ServiceRecord) -> dict:
    return {"record_id": record.id, "member_id": record.member_id, "source": record.source,
            "served_on": record.served_on.isoformat(), "minutes": record.minutes}
