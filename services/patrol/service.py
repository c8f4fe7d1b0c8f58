"""The patrol service: zones and their teams, patrol shifts, incidents found
on patrol; a timer escalates unacknowledged incidents and flags zones that
went unpatrolled. Every change commits with its event in the outbox."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.categories import CategoryEntrypoints, labelled, labels, require_categories
from services.common.clock import community_zone, isoformat, month_bounds, naive_utcnow
from services.common.db import Database, UnitOfWork, get_by_id
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound, enforce
from services.common.groupcommit import grouped
from services.common.idempotency import idempotent
from services.common.pagination import PageSchema, paginate
from services.common.schemas import load_or_raise, shared
from services.common.service import KernelEntrypoints, rpc
from services.contracts.principal import is_admin, load_actor, require_admin
from services.contracts import patrol as events
from services.patrol import domain
from services.patrol.models import AuditEntry, Category, Incident, Patrol, Zone, ZoneCompound, kernel
from services.patrol.schemas import (
    AuditEntrySchema, AuditQuerySchema, CoverageQuerySchema, IncidentQuerySchema, IncidentReportSchema,
    IncidentResolveSchema, IncidentSchema, PatrolCorrectSchema, PatrolFinishSchema, PatrolQuerySchema, PatrolSchema,
    PatrolStartSchema, TeamSchema, ZoneCreateSchema, ZoneSchema,
)
SWEEP_INTERVAL_SECONDS = 2


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)


def _teams(session, zone_ids: set[str]) -> dict[str, tuple[str | None, list[str]]]:
    """Each zone's (leader_id, member_ids) now, in one query."""
    if not zone_ids:
        return {}
    rows = session.execute(select(Zone.id, Zone.leader_id, Zone.member_ids).where(Zone.id.in_(zone_ids))).all()
    return {zone_id: (leader_id, list(member_ids or [])) for zone_id, leader_id, member_ids in rows}


def _audit(uow: UnitOfWork, action: str, actor: dict, key: str, ids: list[str]):
    """Full reads of free text, one row per record (`key`: incident_id or
    patrol_id): who, which, when. Never the text. One statement for a page."""
    if ids:
        now = naive_utcnow()
        uow.session.execute(insert(AuditEntry), [
            {"actor_id": actor["id"], "action": action, key: record_id, "at": now} for record_id in ids])


def end_patrol(session, patrol_id: str, finished_at: datetime, minutes: int, **columns) -> bool:
    """The rule "a patrol ends once", enforced: its member's finish and the
    sweep closing it as forgotten race; one conditional UPDATE, only while it
    is unfinished, lets exactly one of them win whole. False: the other won
    (the loser changes nothing and announces nothing)."""
    ended = session.execute(update(Patrol).where(Patrol.id == patrol_id, Patrol.finished_at.is_(None)).values(
        finished_at=finished_at, duration_minutes=minutes, **columns))
    return ended.rowcount == 1


def begin_patrol(session, zone_id: str, member_id: str) -> Patrol:
    """The rule "a member is on one patrol at a time", enforced: a running
    patrol of theirs is refused in its words (domain.check_no_active_patrol),
    and a second start racing this one is refused by the partial unique index
    `ux_patrols_one_active` (one unfinished patrol per member), whichever
    commits second."""
    active = session.scalar(select(Patrol.id).where(Patrol.member_id == member_id, Patrol.finished_at.is_(None)))
    enforce(domain.check_no_active_patrol, active)
    patrol = Patrol(zone_id=zone_id, member_id=member_id, started_at=naive_utcnow())
    session.add(patrol)
    try:
        session.flush()
    except IntegrityError:  # a second start raced this one
        raise Conflict("You are on patrol already: finish it first.")
    return patrol


def resolve_once(session, incident_id: str, resolved_by: str, resolution: str) -> bool:
    """The rule "an incident is resolved once" (domain.check_open states it),
    enforced: a conditional UPDATE, only while it is open, so two resolutions
    racing cannot both succeed. False: the other one did."""
    resolved = session.execute(
        update(Incident).where(Incident.id == incident_id, Incident.status == domain.IncidentStatus.OPEN)
        .values(status=domain.IncidentStatus.RESOLVED, resolved_at=naive_utcnow(),
                resolved_by=resolved_by, resolution=resolution))
    return resolved.rowcount == 1


class PatrolService(CategoryEntrypoints, KernelEntrypoints):
    name = "patrol"
    config = Config()
    db = Database(kernel)
    category_kind = "incident"
    category_model = Category
    kept_categories = {"hardship": "it makes draft hardship cases in welfare"}

    # -- zones and teams ----------------------------------------------------------

    @rpc
    def create_zone(self, payload: dict, actor: dict) -> dict:
        require_admin(load_actor(actor))
        data = load_or_raise(ZoneCreateSchema(), payload)
        data["name"] = data["name"].strip()
        if not data["name"]:
            raise InvalidInput("A zone needs a name.", {"fields": {"name": ["Not blank."]}})
        compounds = domain.normalise_names(data["compounds"])
        if not compounds:
            raise InvalidInput("A zone needs at least one compound.",
                               {"fields": {"compounds": ["At least one compound name, not blank."]}})
        with self.db.unit_of_work() as uow:
            self._check_compounds_free(uow, compounds)
            if uow.session.scalar(select(Zone.id).where(Zone.name == data["name"])) is not None:
                raise Conflict("A zone has this name already.", {"fields": {"name": ["Taken."]}})
            zone = Zone(name=data["name"], member_ids=[], created_at=naive_utcnow(), compound_rows=[
                ZoneCompound(compound=c, position=i) for i, c in enumerate(compounds)])
            uow.session.add(zone)
            try:
                uow.session.flush()
            except IntegrityError:  # another request claimed a compound or the name meanwhile
                raise Conflict("A compound or the name was claimed by another zone just now.")
            uow.emit(events.ZONE_CREATED, {"zone_id": zone.id, "name": zone.name, "compounds": compounds})
            uow.commit()
        return ZoneSchema().dump(zone)

    @staticmethod
    def _check_compounds_free(uow: UnitOfWork, compounds: list[str]):
        claimed = uow.session.execute(
            select(ZoneCompound.compound, Zone.name).join(Zone, Zone.id == ZoneCompound.zone_id)
            .where(ZoneCompound.compound.in_(compounds))).all()
        if claimed:
            taken = {compound: zone for compound, zone in claimed}
            raise Conflict("A compound belongs to one zone at most.",
                           {"fields": {"compounds": [f"{c} is in zone {z}." for c, z in taken.items()]}})

    @rpc
    def list_zones(self, paging: dict | None = None) -> dict:
        paging = load_or_raise(PageSchema(), paging)
        result = paginate(self.db.session, select(Zone), paging, Zone.created_at, Zone.id)
        return {"items": ZoneSchema(many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}

    @rpc
    def get_zone(self, zone_id: str) -> dict:
        return ZoneSchema().dump(self._zone(zone_id))

    def _zone(self, zone_id: str, session=None) -> Zone:
        zone = get_by_id(session or self.db.session, Zone, zone_id)
        if zone is None:
            raise NotFound("No such zone.")
        return zone

    @rpc
    def assign_team(self, zone_id: str, payload: dict, actor: dict) -> dict:
        """Set a zone's leader and members. The gateway has checked that each is
        a registered member."""
        require_admin(load_actor(actor))
        data = load_or_raise(TeamSchema(), payload)
        with self.db.unit_of_work() as uow:
            zone = self._zone(zone_id, uow.session)
            zone.leader_id = data["leader_id"]
            zone.member_ids = [m for m in domain.normalise_names(data["member_ids"]) if m != data["leader_id"]]
            uow.emit(events.TEAM_ASSIGNED, {"zone_id": zone.id, **zone.team})
            uow.commit()
        return ZoneSchema().dump(zone)

    @rpc
    def coverage(self, query: dict | None = None) -> dict:
        """The last patrol of every zone, and whether it is within `days`."""
        days = load_or_raise(CoverageQuerySchema(), query)["days"] or self._uncovered_after_days()
        now = naive_utcnow()
        zones = self.db.session.scalars(select(Zone).order_by(Zone.name)).all()
        return {"days": days, "zones": [{
            "zone_id": zone.id, "name": zone.name, "leader_id": zone.leader_id,
            "last_patrol_at": _iso(zone.last_patrol_at),
            "covered": domain.is_covered(zone.last_patrol_at, now, days),
        } for zone in zones]}

    @rpc
    def summary(self) -> dict:
        """For the dashboard: patrols today (the community's day) in all and per
        zone, coverage, open incidents by severity. Counts and ids only."""
        local_midnight = datetime.now(community_zone(self.config)).replace(hour=0, minute=0, second=0, microsecond=0)
        day_started = local_midnight.astimezone(timezone.utc).replace(tzinfo=None)
        session = self.db.session
        per_zone = dict(session.execute(select(Patrol.zone_id, func.count()).where(
            Patrol.started_at >= day_started).group_by(Patrol.zone_id)).all())
        by_severity = dict(session.execute(select(Incident.severity, func.count()).where(
            Incident.status == domain.IncidentStatus.OPEN).group_by(Incident.severity)).all())
        coverage = self.coverage()
        return {
            "patrols_today": sum(per_zone.values()),
            "patrols_today_by_zone": {z["zone_id"]: per_zone.get(z["zone_id"], 0) for z in coverage["zones"]},
            "zones": coverage["zones"],
            "zones_uncovered": sum(not z["covered"] for z in coverage["zones"]),
            "open_incidents_by_severity": {s: by_severity.get(s, 0) for s in events.SEVERITIES},
        }

    @rpc
    def monthly_summary(self, month) -> dict:
        """For the street office's monthly report: patrols and the zones they
        covered, incidents reported and resolved by category, in the
        community's month ("2026-11"). Counts only."""
        start, end = month_bounds(month, community_zone(self.config))
        session = self.db.session
        cap = self._cap_hours()
        patrols = session.execute(select(
            Patrol.zone_id, Patrol.started_at, Patrol.finished_at, Patrol.duration_minutes,
            Patrol.closed_automatically).where(Patrol.started_at >= start, Patrol.started_at < end)).all()
        per_zone: dict[str, int] = {}
        for zone_id, *_ in patrols:
            per_zone[zone_id] = per_zone.get(zone_id, 0) + 1
        zones = session.execute(select(Zone.id, Zone.name).where(Zone.created_at < end).order_by(Zone.name)).all()

        def by_category(moment):
            return dict(session.execute(select(Incident.category, func.count()).where(
                moment >= start, moment < end).group_by(Incident.category)).all())
        reported, resolved = by_category(Incident.reported_at), by_category(Incident.resolved_at)
        open_at_end = session.scalar(select(func.count()).select_from(Incident).where(
            Incident.reported_at >= start, Incident.reported_at < end,
            Incident.resolved_at.is_(None) | (Incident.resolved_at >= end)))
        return {
            "month": month,
            "patrols": len(patrols),
            # A patrol finished before minutes were stored counts from its times, capped.
            "patrol_minutes": sum(minutes if minutes is not None else domain.minutes_counted(started, finished, cap)
                                  for _, started, finished, minutes, _ in patrols if finished is not None),
            "patrols_closed_automatically": sum(1 for *_, closed in patrols if closed),
            "zones_total": len(zones),
            "zones_covered": sum(1 for zone_id, _ in zones if per_zone.get(zone_id)),
            "zones": [{"zone_id": zone_id, "name": name, "patrols": per_zone.get(zone_id, 0)}
                      for zone_id, name in zones],
            "incidents": {"reported": sum(reported.values()), "resolved": sum(resolved.values()),
                          "open_at_month_end": open_at_end},
            "incidents_by_category": labelled(session, Category, {
                code: {"reported": reported.get(code, 0), "resolved": resolved.get(code, 0)}
                for code in reported.keys() | resolved.keys()}),
        }

    # -- patrols ------------------------------------------------------------------------

    @rpc
    @idempotent
    def start_patrol(self, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        data = load_or_raise(PatrolStartSchema(), payload)
        with self.db.unit_of_work() as uow:
            zone = self._zone(data["zone_id"], uow.session)
            enforce(domain.check_may_patrol, actor["id"], zone.leader_id, zone.member_ids)
            patrol = begin_patrol(uow.session, zone.id, actor["id"])
            zone.last_patrol_at = patrol.started_at
            uow.emit(events.PATROL_STARTED, {
                "patrol_id": patrol.id, "zone_id": zone.id, "member_id": patrol.member_id,
                "started_at": isoformat(patrol.started_at)})
            shown = self._show_patrols([patrol], actor, uow.session)[0]
            uow.commit()
        return shown

    @rpc
    @idempotent
    def finish_patrol(self, patrol_id: str, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        data = load_or_raise(PatrolFinishSchema(), payload)
        with self.db.unit_of_work() as uow:
            patrol = get_by_id(uow.session, Patrol, patrol_id)
            if patrol is None:
                raise NotFound("No such patrol.")
            if patrol.member_id != actor["id"]:
                raise Forbidden("Only the member on this patrol finishes it.")
            cap = self._cap_hours()
            enforce(domain.check_unfinished, patrol.finished_at, patrol.closed_automatically, cap)
            now = naive_utcnow()
            minutes = domain.minutes_counted(patrol.started_at, now, cap)
            if not end_patrol(uow.session, patrol.id, now, minutes, notes=data["notes"]):
                raise Conflict("This patrol was closed just now (automatically, past the time allowed); "
                               "the office can correct its times.")
            uow.session.refresh(patrol)
            uow.emit(events.PATROL_FINISHED, {
                "patrol_id": patrol.id, "zone_id": patrol.zone_id, "member_id": patrol.member_id,
                "started_at": isoformat(patrol.started_at), "finished_at": isoformat(patrol.finished_at),
                "duration_minutes": minutes, "closed_automatically": False})
            shown = self._show_patrols([patrol], actor, uow.session)[0]
            uow.commit()
        return shown

    @rpc
    def correct_patrol(self, patrol_id: str, payload: dict, actor: dict) -> dict:
        """The office sets a finished patrol's times right (a forgotten one, a
        wrong tap): it then counts what those times say (the office vouches for
        them: no cap, at most 24 hours). Who, when and why are kept; the why is
        never announced."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(PatrolCorrectSchema(), payload)
        reason = data["reason"].strip()
        if not reason:
            raise InvalidInput("Say why the times are corrected.", {"fields": {"reason": ["Not blank."]}})
        now = naive_utcnow()
        problems = domain.correction_problems(data["started_at"], data["finished_at"], now)
        if problems:
            raise InvalidInput("These times cannot be a patrol's.", {"fields": problems})
        with self.db.unit_of_work() as uow:
            patrol = get_by_id(uow.session, Patrol, patrol_id)
            if patrol is None:
                raise NotFound("No such patrol.")
            if patrol.finished_at is None:
                raise Conflict("This patrol is still on: only a finished patrol's times are corrected.")
            patrol.started_at, patrol.finished_at = data["started_at"], data["finished_at"]
            patrol.duration_minutes = domain.minutes_counted(patrol.started_at, patrol.finished_at, None)
            patrol.corrected_at, patrol.corrected_by, patrol.correction_reason = now, actor["id"], reason
            uow.session.flush()
            # The zone's last patrol follows its patrols' (corrected) starts.
            zone = self._zone(patrol.zone_id, uow.session)
            zone.last_patrol_at = uow.session.scalar(
                select(func.max(Patrol.started_at)).where(Patrol.zone_id == zone.id))
            uow.emit(events.PATROL_CORRECTED, {
                "patrol_id": patrol.id, "zone_id": patrol.zone_id, "member_id": patrol.member_id,
                "started_at": isoformat(patrol.started_at), "finished_at": isoformat(patrol.finished_at),
                "duration_minutes": patrol.duration_minutes})
            shown = self._show_patrols([patrol], actor, uow.session)[0]
            uow.commit()
        return shown

    @rpc
    def list_patrols(self, actor: dict, query: dict | None = None) -> dict:
        """Patrols, newest first; notes only to those who may read them (audited)."""
        actor = load_actor(actor)
        query = load_or_raise(PatrolQuerySchema(), query)
        statement = select(Patrol)
        if query["zone_id"]:
            statement = statement.where(Patrol.zone_id == query["zone_id"])
        if query["member_id"]:
            statement = statement.where(Patrol.member_id == query["member_id"])
        if query["active"] is not None:
            statement = statement.where(
                Patrol.finished_at.is_(None) if query["active"] else Patrol.finished_at.is_not(None))
        if query["closed_automatically"] is not None:
            statement = statement.where(Patrol.closed_automatically.is_(query["closed_automatically"]))
        with self.db.unit_of_work() as uow:
            result = paginate(uow.session, statement, query, Patrol.started_at, Patrol.id)
            items = self._show_patrols(result["items"], actor, uow.session, audit=(uow, "list_patrol"))
            uow.commit()
        return {"items": items, "next_cursor": result["next_cursor"]}

    # -- incidents ----------------------------------------------------------------------

    @rpc
    @grouped
    @idempotent
    def report_incident(self, payload: dict, actor: dict) -> dict:
        """A problem found on patrol, in the process's group commit (@grouped):
        reports made at once share a commit, and the gateway sends them as one
        `call_many`. Its event alerts the zone's leader."""
        actor = load_actor(actor)
        data = load_or_raise(shared(IncidentReportSchema), payload)
        zone_id = data["zone_id"]
        with self.db.unit_of_work() as uow:
            # The zone's team and the compound's zone, not the zone itself (its compounds
            # come with it): a report is a hot write, and the zone is wanted only for these.
            team = _teams(uow.session, {zone_id}).get(zone_id)
            if team is None:
                raise InvalidInput("No such zone.", {"fields": {"zone_id": ["No zone has this id."]}})
            leader_id, member_ids = team
            enforce(domain.check_may_report, actor["id"], is_admin(actor), leader_id, member_ids)
            if uow.session.scalar(select(ZoneCompound.zone_id).where(ZoneCompound.compound == data["compound"])) \
                    != zone_id:
                compounds = uow.session.scalars(select(ZoneCompound.compound).where(
                    ZoneCompound.zone_id == zone_id).order_by(ZoneCompound.position)).all()
                raise InvalidInput("That compound is not in this zone.",
                                   {"fields": {"compound": [f"Not one of: {', '.join(compounds)}."]}})
            label = require_categories(uow.session, Category, self.category_kind, "category",
                                       [data["category"]])[data["category"]]
            patrol_id = uow.session.scalar(select(Patrol.id).where(
                Patrol.member_id == actor["id"], Patrol.zone_id == zone_id, Patrol.finished_at.is_(None)))
            incident = Incident(zone_id=zone_id, compound=data["compound"], category=data["category"],
                                severity=data["severity"], description=data["description"],
                                status=domain.IncidentStatus.OPEN, reported_by=actor["id"],
                                patrol_id=patrol_id, reported_at=naive_utcnow())
            uow.session.add(incident)
            uow.session.flush()
            uow.emit(events.INCIDENT_REPORTED, {**self._incident_event(incident, leader_id),
                                                "reported_by": actor["id"], "category_label": label})
            shown = self._show_incidents([incident], actor, uow.session, teams={zone_id: team})[0]
            uow.commit()
        return shown

    @staticmethod
    def _category_label(uow: UnitOfWork, incident: Incident) -> str:
        """For the alerts: the category in words (services/notifications/domain.py)."""
        return labels(uow.session, Category, [incident.category])[0]

    @staticmethod
    def _incident_event(incident: Incident, leader_id: str | None) -> dict:
        return {"incident_id": incident.id, "zone_id": incident.zone_id, "compound": incident.compound,
                "category": incident.category, "severity": incident.severity, "status": incident.status,
                "leader_id": leader_id}

    @rpc
    def get_incident(self, incident_id: str, actor: dict) -> dict:
        """One incident; its description only to those who may read it (audited)."""
        actor = load_actor(actor)
        with self.db.unit_of_work() as uow:
            incident = self._incident(incident_id, uow.session)
            shown = self._show_incidents([incident], actor, uow.session, audit=(uow, "read_incident"))[0]
            uow.commit()
        return shown

    def _incident(self, incident_id: str, session=None) -> Incident:
        incident = get_by_id(session or self.db.session, Incident, incident_id)
        if incident is None:
            raise NotFound("No such incident.")
        return incident

    @rpc
    def list_incidents(self, actor: dict, query: dict | None = None) -> dict:
        """Incidents, newest first; descriptions only to those who may read them (audited)."""
        actor = load_actor(actor)
        query = load_or_raise(IncidentQuerySchema(), query)
        statement = select(Incident)
        if query["zone_id"]:
            statement = statement.where(Incident.zone_id == query["zone_id"])
        if query["status"]:
            statement = statement.where(Incident.status == query["status"])
        if query["reported_by"]:
            statement = statement.where(Incident.reported_by == query["reported_by"])
        if query["since"]:
            statement = statement.where(Incident.reported_at >= query["since"])
        if query["until"]:
            statement = statement.where(Incident.reported_at < query["until"])
        with self.db.unit_of_work() as uow:
            result = paginate(uow.session, statement, query, Incident.reported_at, Incident.id)
            items = self._show_incidents(result["items"], actor, uow.session, audit=(uow, "list_incident"))
            uow.commit()
        return {"items": items, "next_cursor": result["next_cursor"]}

    @rpc
    def acknowledge_incident(self, incident_id: str, actor: dict) -> dict:
        """The zone's leader (or the office) has seen it: it will not escalate.
        acked_by records who. Twice is harmless."""
        actor = load_actor(actor)
        with self.db.unit_of_work() as uow:
            incident = self._incident(incident_id, uow.session)
            zone = uow.session.get(Zone, incident.zone_id)
            enforce(domain.check_may_acknowledge, actor["id"], is_admin(actor), zone.leader_id)
            if incident.acked_at is None and incident.status == domain.IncidentStatus.OPEN:
                incident.acked_at, incident.acked_by = naive_utcnow(), actor["id"]
                uow.emit(events.INCIDENT_ACKNOWLEDGED, {**self._incident_event(incident, zone.leader_id),
                                                        "acknowledged_by": actor["id"]})
            shown = self._show_incidents([incident], actor, uow.session)[0]
            uow.commit()
        return shown

    @rpc
    @idempotent
    def resolve_incident(self, incident_id: str, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        data = load_or_raise(IncidentResolveSchema(), payload)
        with self.db.unit_of_work() as uow:
            incident = self._incident(incident_id, uow.session)
            zone = uow.session.get(Zone, incident.zone_id)
            enforce(domain.check_may_resolve, actor["id"], is_admin(actor), zone.leader_id)
            enforce(domain.check_open, incident.status)
            if not resolve_once(uow.session, incident.id, actor["id"], data["resolution"]):
                raise Conflict("The incident is resolved already.")
            uow.session.refresh(incident)
            uow.emit(events.INCIDENT_RESOLVED, {**self._incident_event(incident, zone.leader_id),
                                                "resolved_by": actor["id"]})
            shown = self._show_incidents([incident], actor, uow.session)[0]
            uow.commit()
        return shown

    # -- free text: who reads it, and the audit of who did ---------------------------------

    @staticmethod
    def _show_incidents(incidents: list[Incident], actor: dict, session, audit=None, teams=None) -> list[dict]:
        """Incidents as this caller may see them: the description and resolution
        only where domain.may_read_free_text allows it. With `audit=(uow,
        action)`, each one shown in full is recorded as read. `teams`: their
        zones' (from _teams), when the caller has them already."""
        teams = _teams(session, {incident.zone_id for incident in incidents}) if teams is None else teams
        shown, read = [], []
        for incident, item in zip(incidents, shared(IncidentSchema, many=True).dump(incidents), strict=True):
            full = domain.may_read_free_text(actor["id"], is_admin(actor), incident.reported_by,
                                             *teams.get(incident.zone_id, (None, [])))
            if full:
                read.append(incident.id)
            shown.append({**item, "free_text_hidden": not full} if full else
                         {**item, "description": None, "resolution": None, "free_text_hidden": True})
        if audit:
            _audit(*audit, actor, "incident_id", read)
        return shown

    @staticmethod
    def _show_patrols(patrols: list[Patrol], actor: dict, session, audit=None) -> list[dict]:
        """Patrols as this caller may see them: notes only where
        domain.may_read_free_text allows it; a full read of notes is audited."""
        teams = _teams(session, {patrol.zone_id for patrol in patrols})
        shown, read = [], []
        for patrol, item in zip(patrols, PatrolSchema(many=True).dump(patrols), strict=True):
            full = domain.may_read_free_text(actor["id"], is_admin(actor), patrol.member_id,
                                             *teams.get(patrol.zone_id, (None, [])))
            if full and (patrol.notes or patrol.correction_reason):  # no text (yet): nothing was read
                read.append(patrol.id)
            shown.append({**item, "free_text_hidden": not full} if full else
                         {**item, "notes": None, "correction_reason": None, "free_text_hidden": True})
        if audit:
            _audit(*audit, actor, "patrol_id", read)
        return shown

    @rpc
    def list_audit(self, actor: dict, query: dict | None = None) -> dict:
        """Who read which incident's description or patrol's notes in full,
        newest first (admins only)."""
        require_admin(load_actor(actor))
        query = load_or_raise(AuditQuerySchema(), query)
        statement = select(AuditEntry)
        if query["incident_id"]:
            statement = statement.where(AuditEntry.incident_id == query["incident_id"])
        if query["patrol_id"]:
            statement = statement.where(AuditEntry.patrol_id == query["patrol_id"])
        result = paginate(self.db.session, statement, query, AuditEntry.at, AuditEntry.id)
        return {"items": AuditEntrySchema(many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}

    # -- the timer: escalation and coverage ----------------------------------------------

    def _uncovered_after_days(self) -> float:
        return float(self.config["UNCOVERED_AFTER_DAYS"])

    def _cap_hours(self) -> float:
        return domain.cap_hours(self.config["PATROL_CAP_HOURS"])

    @timer(interval=SWEEP_INTERVAL_SECONDS)
    def sweep(self):
        """Close forgotten patrols, escalate unacknowledged incidents and flag
        unpatrolled zones, each once. Safe with several instances: every claim
        is a conditional update."""
        now = naive_utcnow()
        self._close_forgotten(now, self._cap_hours())
        self._escalate(now, float(self.config["ESCALATE_AFTER_MINUTES"]))
        self._flag_uncovered(now, self._uncovered_after_days())

    def _close_forgotten(self, now: datetime, cap: float):
        """A patrol not finished within the cap ends at its start + the cap and
        counts the cap: its member may start a new one."""
        with self.db.unit_of_work() as uow:
            due = uow.session.execute(select(Patrol.id, Patrol.zone_id, Patrol.member_id, Patrol.started_at).where(
                Patrol.finished_at.is_(None), Patrol.started_at < domain.forgotten_before(now, cap)).limit(200)).all()
            for patrol_id, zone_id, member_id, started_at in due:
                finished_at = domain.closed_at(started_at, cap)
                minutes = domain.minutes_counted(started_at, finished_at, cap)
                if end_patrol(uow.session, patrol_id, finished_at, minutes, closed_automatically=True):
                    uow.emit(events.PATROL_FINISHED, {
                        "patrol_id": patrol_id, "zone_id": zone_id, "member_id": member_id,
                        "started_at": isoformat(started_at), "finished_at": isoformat(finished_at),
                        "duration_minutes": minutes, "closed_automatically": True})
            uow.commit()

    def _escalate(self, now: datetime, after_minutes: float):
        """The one home of "an open incident its leader has not acknowledged
        within ESCALATE_AFTER_MINUTES escalates, once": claimed by a
        conditional update, so two instances escalate it once."""
        cutoff = now - timedelta(minutes=after_minutes)
        with self.db.unit_of_work() as uow:
            due = uow.session.scalars(select(Incident).where(
                Incident.status == domain.IncidentStatus.OPEN, Incident.acked_at.is_(None),
                Incident.escalated_at.is_(None), Incident.reported_at <= cutoff).limit(200)).all()
            for incident in due:
                claimed = uow.session.execute(update(Incident).where(
                    Incident.id == incident.id, Incident.escalated_at.is_(None), Incident.acked_at.is_(None),
                    Incident.status == domain.IncidentStatus.OPEN).values(escalated_at=now))
                if claimed.rowcount == 1:
                    zone = uow.session.get(Zone, incident.zone_id)
                    uow.emit(events.INCIDENT_ESCALATED, {
                        **self._incident_event(incident, zone.leader_id),
                        "category_label": self._category_label(uow, incident),
                        "minutes_unacknowledged": round((now - incident.reported_at).total_seconds() / 60, 1)})
            uow.commit()

    def _flag_uncovered(self, now: datetime, days: float):
        with self.db.unit_of_work() as uow:
            # A zone without a leader has no one to tell yet: its lapse waits for one.
            for zone in uow.session.scalars(select(Zone).where(Zone.leader_id.is_not(None))).all():
                if not domain.due_uncovered_alert(zone.last_patrol_at, zone.created_at,
                                                  zone.uncovered_alerted_at, now, days):
                    continue
                lapse_started = zone.last_patrol_at or zone.created_at
                claimed = uow.session.execute(update(Zone).where(
                    Zone.id == zone.id,
                    (Zone.uncovered_alerted_at.is_(None)) | (Zone.uncovered_alerted_at < lapse_started),
                ).values(uncovered_alerted_at=now))
                if claimed.rowcount == 1:
                    uow.emit(events.ZONE_UNCOVERED, {
                        "zone_id": zone.id, "leader_id": zone.leader_id,
                        "last_patrol_at": _iso(zone.last_patrol_at), "days": days})
            uow.commit()
