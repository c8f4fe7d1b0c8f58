"""The welfare service: households and hardship cases through their whole
life (assignment, visits, referrals to agencies, closing), follow-ups that
fall due, and an audit of who read whose details. Every change commits with
its event in the outbox."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import and_, func, insert, not_, or_, select, true, update

from services import contracts
from services.categories import CategoryEntrypoints, labels, require_categories
from services.common.clock import community_zone, local_day, local_today, month_bounds, month_days, naive_utcnow
from services.common.db import Database, UnitOfWork, contains_text, get_by_id, json_list_has
from services.common.errors import Conflict, InvalidInput, NotFound, enforce
from services.common.groupcommit import grouped
from services.common.idempotency import idempotent
from services.common.pagination import PageSchema, paginate
from services.common.schemas import load_or_raise, require_id, shared
from services.common.service import KernelEntrypoints, rpc
from services.contracts.principal import is_admin, load_actor, require_admin
from services.contracts import donations as donation_events
from services.contracts import patrol as patrol_events
from services.contracts import welfare as events
from services.welfare import domain
from services.welfare.models import (
    Assistance, AuditEntry, Case, Category, Consent, Household, Person, Referral, Reopening, Visit, kernel,
)
from services.welfare.schemas import (
    AssigneeAccountSchema, AuditEntrySchema, AuditQuerySchema, CaseAssignSchema, CaseCloseSchema, CaseDismissSchema,
    CaseEraseSchema,
    CaseOpenSchema, CaseQuerySchema, CaseReopenSchema, CaseSchema, ConsentCreateSchema, ConsentSchema,
    HouseholdCreateSchema, HouseholdDetailSchema, HouseholdExportSchema, HouseholdQuerySchema, HouseholdSchema,
    HouseholdUpdateSchema, RecipientSchema,
    ReferralCreateSchema, ReferralDecisionSchema, ReferralSchema, ReferralStageSchema, VisitCreateSchema, VisitSchema,
)

SWEEP_INTERVAL_SECONDS = 2


def followup_overdue():
    """The one home of "this case's follow-up visit is overdue", for the
    dashboard's count and the cases filter: the sweep found it so and alerted
    for its current lapse (the alert is claimed by setting followup_alerted_for
    to the lapse's start), and it is still being worked on. A visit starts a
    new lapse, which ends it. So nothing but the sweep does the arithmetic of
    FOLLOWUP_AFTER_DAYS (a second or two behind it, at most)."""
    return and_(Case.status.in_(domain.CaseStatus.ACTIVE), Case.followup_alerted_for.is_not(None),
                Case.followup_alerted_for == Case.lapse_started_at)


def cases_visible_to(actor: dict):
    """The one enforcement of "a member sees only their own cases"
    (domain.cases_limited_to), as a filter on cases: every list and every
    single read or change of a case by a member goes through it."""
    limit = domain.cases_limited_to(actor["id"], is_admin(actor))
    return true() if limit is None else Case.assignee_id == limit


def case_event(case: Case) -> dict:
    """What every case event says: ids, compound, categories, status. No names, no notes."""
    return {"case_id": case.id, "household_id": case.household_id, "compound": case.compound,
            "categories": case.categories, "assignee_id": case.assignee_id, "status": case.status}


def people(persons: list[dict]) -> list[Person]:
    """A household's people as sent, in their order."""
    return [Person(position=i, **person) for i, person in enumerate(persons)]


def consent_view(consent: Consent) -> dict:
    """A consent row with its purpose in the community's words."""
    label_zh, label_en = domain.CONSENT_PURPOSES.get(consent.purpose, (consent.purpose, consent.purpose))
    return ConsentSchema().dump({**{c: getattr(consent, c) for c in (
        "id", "household_id", "person_position", "person_name", "purpose", "given", "given_on", "recorded_by",
        "recorded_at")}, "label_zh": label_zh, "label_en": label_en})


def household_view(household: Household) -> dict:
    """A household as the office opens it: with each person's current answer per purpose."""
    latest = {}
    for consent in household.consents:  # oldest first: the last word counts
        latest[(consent.person_position, consent.purpose)] = consent
    current = [latest[key] for key in domain.current_consents(
        [(c.person_position, c.purpose, c.given) for c in household.consents])]
    current.sort(key=lambda c: (c.person_position, list(domain.CONSENT_PURPOSES).index(c.purpose)
                                if c.purpose in domain.CONSENT_PURPOSES else 99))
    return {**HouseholdDetailSchema().dump(household), "consents": [consent_view(c) for c in current]}


class WelfareService(CategoryEntrypoints, KernelEntrypoints):
    name = "welfare"
    config = Config()
    db = Database(kernel)
    category_kind = "case"
    category_model = Category

    @staticmethod
    def _labels_for_alert(uow: UnitOfWork, case: Case) -> dict:
        """The categories in words, for the assignee's alert (never on the feed)."""
        return {"category_labels": labels(uow.session, Category, case.categories)}

    # -- households ---------------------------------------------------------------

    @rpc
    @idempotent
    def create_household(self, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(HouseholdCreateSchema(), payload)
        with self.db.unit_of_work() as uow:
            household = Household(compound=data["compound"], address=data["address"], phone=data["phone"],
                                  people=people(data["people"]))
            uow.session.add(household)
            uow.commit()
        return household_view(household)

    @rpc
    def get_household(self, household_id: str, actor: dict) -> dict:
        actor = load_actor(actor)
        require_admin(actor)
        with self.db.unit_of_work() as uow:
            household = get_by_id(uow.session, Household, household_id)
            if household is None:
                raise NotFound("No such household.")
            self._audit(uow, actor, "read_household", household_id=household.id)
            uow.commit()
        return household_view(household)

    @rpc
    def update_household(self, household_id: str, payload: dict, actor: dict) -> dict:
        """The office corrects a household: compound, address, contact phone,
        or its people (the list sent replaces the old one). Audited: the
        answer shows the household in full. Its cases keep the compound they
        were opened in."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(HouseholdUpdateSchema(), payload)
        with self.db.unit_of_work() as uow:
            household = get_by_id(uow.session, Household, household_id)
            if household is None:
                raise NotFound("No such household.")
            for field in ("compound", "address", "phone"):
                if field in data:
                    setattr(household, field, data[field])
            if "people" in data:
                household.people = people(data["people"])
            uow.session.flush()
            self._audit(uow, actor, "edit_household", household_id=household.id)
            uow.commit()
        return household_view(household)

    @rpc
    @idempotent
    def record_consent(self, household_id: str, payload: dict, actor: dict) -> dict:
        """A person of the household consented to a purpose, or withdrew it
        (a new row: the history stays). The person by place in the people list
        or by name as the household holds it. Audited (`record_consent`)."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(ConsentCreateSchema(), payload)
        today = local_today(self.config)
        given_on = data["given_on"] or today
        if given_on > today:
            message = f"The date {given_on.isoformat()} is in the future (today is {today.isoformat()})."
            raise InvalidInput(message, {"fields": {"given_on": [message]}})
        with self.db.unit_of_work() as uow:
            household = get_by_id(uow.session, Household, household_id)
            if household is None:
                raise NotFound("No such household.")
            if household.erased_at is not None:
                raise Conflict("This household's personal details are erased: no consent can be recorded.")
            person = self._person(household, data)
            consent = Consent(household_id=household.id, person_position=person.position, person_name=person.name,
                              purpose=data["purpose"], given=data["given"], given_on=given_on,
                              recorded_by=actor["id"], recorded_at=naive_utcnow())
            uow.session.add(consent)
            uow.session.flush()
            self._audit(uow, actor, "record_consent", household_id=household.id)
            uow.commit()
        return consent_view(consent)

    @staticmethod
    def _person(household: Household, data: dict) -> Person:
        """The person a consent is about: by place, or by a name only one person has."""
        if "person_position" in data:
            if data["person_position"] >= len(household.people):
                message = f"The household has {len(household.people)} people (places 0 to {len(household.people) - 1})."
                raise InvalidInput(message, {"fields": {"person_position": [message]}})
            return household.people[data["person_position"]]
        named = [p for p in household.people if p.name == data["person_name"]]
        if len(named) != 1:
            message = ("No one of the household has this name." if not named
                       else "More than one person has this name: give person_position instead.")
            raise InvalidInput(message, {"fields": {"person_name": [message]}})
        return named[0]

    @rpc
    def export_household(self, household_id: str, actor: dict) -> dict:
        """Everything welfare holds about a household, for the household on
        request: the household and its people, every consent answer, its
        cases with visits, referrals and their stages, goods received and
        reopenings. Audited (`export_household`)."""
        actor = load_actor(actor)
        require_admin(actor)
        with self.db.unit_of_work() as uow:
            household = get_by_id(uow.session, Household, household_id)
            if household is None:
                raise NotFound("No such household.")
            cases = uow.session.scalars(select(Case).where(Case.household_id == household.id)
                                        .order_by(Case.opened_at, Case.id)).all()
            self._audit(uow, actor, "export_household", household_id=household.id)
            uow.commit()
            return {**HouseholdExportSchema().dump({"exported_at": naive_utcnow(), "household": household}),
                    "consents": [consent_view(c) for c in household.consents],
                    "cases": [self._case_view(case) for case in cases]}

    @rpc
    def list_households(self, actor: dict, query: dict | None = None) -> dict:
        """Households with their people, newest first; `compound`, and `q`: part
        of the address or of anyone's name. Each household listed is audited
        (`household_search`), so the log says who saw which household."""
        actor = load_actor(actor)
        require_admin(actor)
        query = load_or_raise(HouseholdQuerySchema(), query)
        statement = select(Household)
        if query["compound"]:
            statement = statement.where(Household.compound == query["compound"])
        if query["q"]:
            statement = statement.where(or_(contains_text(Household.address, query["q"]),
                                            Household.people.any(contains_text(Person.name, query["q"]))))
        with self.db.unit_of_work() as uow:
            result = paginate(uow.session, statement, query, Household.created_at, Household.id)
            self._audit_many(uow, actor, "household_search", "household_id", [h.id for h in result["items"]])
            uow.commit()
        return {"items": [household_view(h) for h in result["items"]], "next_cursor": result["next_cursor"]}

    # -- cases ------------------------------------------------------------------------

    @rpc
    @grouped
    @idempotent
    def open_case(self, payload: dict, actor: dict, assignee: dict | None) -> dict:
        """Open a case for a household, paired with a party member
        (`assignee`: their account, as the gateway vouches; see _require_assignee).
        In the process's group commit (@grouped): openings made at once share a
        commit, and the gateway sends them as one `call_many`."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(shared(CaseOpenSchema), payload)
        self._require_assignee(data["assignee_id"], assignee)
        with self.db.unit_of_work() as uow:
            categories, alert_labels = self._case_categories(uow.session, data["categories"])
            # Its compound only: not the household's people and consents with it.
            compound = uow.session.scalar(select(Household.compound).where(Household.id == data["household_id"]))
            if compound is None:
                raise InvalidInput("No such household.",
                                   {"fields": {"household_id": ["No household has this id."]}})
            opened_at = naive_utcnow()
            # A new case has none of these yet: said here, they are not read back after the flush.
            case = Case(household_id=data["household_id"], compound=compound, categories=categories,
                        summary=data["summary"], assignee_id=data["assignee_id"], status=domain.CaseStatus.OPEN,
                        opened_by=actor["id"], opened_at=opened_at, lapse_started_at=opened_at,
                        assistance=[], visits=[], referrals=[], reopenings=[])
            uow.session.add(case)
            uow.session.flush()
            uow.emit(events.CASE_OPENED, {**case_event(case), **alert_labels})
            uow.commit()
        return self._case_view(case)

    @contracts.subscribed("patrol", patrol_events.INCIDENT_REPORTED)
    def on_incident_reported(self, envelope: dict):
        """A hardship found on patrol becomes a draft case for the office to
        confirm (with its household and a party member) or dismiss."""
        event = contracts.validate(envelope)
        data = event["data"]
        if data["category"] != "hardship":
            return
        with self.db.unit_of_work() as uow:
            if not uow.first_delivery(event["id"], f"{self.name}.on_incident_reported"):
                return
            now = naive_utcnow()
            case = Case(compound=data["compound"], categories=["other"], status=domain.CaseStatus.DRAFT,
                        summary=f"Found on patrol: see incident {data['incident_id']} for what was seen.",
                        source_incident_id=data["incident_id"], opened_by=data["reported_by"], opened_at=now)
            uow.session.add(case)
            uow.session.flush()
            uow.emit(events.CASE_DRAFTED, {"case_id": case.id, "compound": case.compound,
                                           "incident_id": data["incident_id"], "status": case.status})
            uow.commit()

    @rpc
    def confirm_case(self, case_id: str, payload: dict, actor: dict, assignee: dict | None) -> dict:
        """A draft becomes an open case: its household, categories, summary and
        party member (`assignee`: their account, see _require_assignee), who is alerted."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(shared(CaseOpenSchema), payload)
        self._require_assignee(data["assignee_id"], assignee)
        with self.db.unit_of_work() as uow:
            case = self._case(uow, case_id)
            household = uow.session.get(Household, data["household_id"])
            if household is None:
                raise InvalidInput("No such household.",
                                   {"fields": {"household_id": ["No household has this id."]}})
            self._move(case, "confirm")
            case.categories, alert_labels = self._case_categories(uow.session, data["categories"])
            case.household, case.household_id, case.compound = household, household.id, household.compound
            case.summary, case.assignee_id = data["summary"], data["assignee_id"]
            case.opened_at = case.lapse_started_at = naive_utcnow()
            uow.emit(events.CASE_OPENED, {**case_event(case), **alert_labels})
            uow.commit()
        return self._case_view(case)

    @rpc
    def dismiss_case(self, case_id: str, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(CaseDismissSchema(), payload)
        with self.db.unit_of_work() as uow:
            case = self._case(uow, case_id)
            self._move(case, "dismiss")
            case.outcome, case.closed_at, case.closed_by = data["reason"], naive_utcnow(), actor["id"]
            uow.emit(events.CASE_DISMISSED, {"case_id": case.id, "compound": case.compound, "status": case.status})
            uow.commit()
        return self._case_view(case)

    @rpc
    def get_case(self, case_id: str, actor: dict) -> dict:
        actor = load_actor(actor)
        with self.db.unit_of_work() as uow:
            case = self._visible_case(uow, case_id, actor)
            self._audit(uow, actor, "read_case", case_id=case.id)
            uow.commit()
        return self._case_view(case)

    @rpc
    def get_case_household(self, case_id: str, actor: dict) -> dict:
        """The household of a case, for its party member to visit (address,
        people, contact phone): the assignee, while the case is theirs, and
        admins; to anyone else the case does not exist. Audited as an admin's
        household read is (`read_household`), with the case it was read through."""
        actor = load_actor(actor)
        with self.db.unit_of_work() as uow:
            case = self._visible_case(uow, case_id, actor)
            if case.household is None:
                raise NotFound("This case has no household yet: the office confirms it first.")
            self._audit(uow, actor, "read_household", case_id=case.id, household_id=case.household.id)
            uow.commit()
            return HouseholdSchema().dump(case.household)

    @rpc
    def list_cases(self, actor: dict, query: dict | None = None) -> dict:
        """Cases newest first, by status, category, assignee, compound, and
        whether a follow-up is overdue; a member's only their own. Each case
        listed is audited."""
        actor = load_actor(actor)
        query = load_or_raise(CaseQuerySchema(), query)
        statement = select(Case).where(cases_visible_to(actor))
        for name in ("status", "assignee_id", "compound"):
            if query[name] is not None:
                statement = statement.where(getattr(Case, name) == query[name])
        if query["category"] is not None:
            statement = statement.where(json_list_has(Case.categories, query["category"]))
        if query["overdue"] is not None:
            statement = statement.where(followup_overdue() if query["overdue"] else not_(followup_overdue()))
        if query["erasable"] is not None:
            statement = statement.where(self._erasable() if query["erasable"] else not_(self._erasable()))
        with self.db.unit_of_work() as uow:
            result = paginate(uow.session, statement, query, Case.opened_at, Case.id)
            self._audit_many(uow, actor, "list_case", "case_id", [case.id for case in result["items"]])
            uow.commit()
        return {"items": [self._case_view(case) for case in result["items"]], "next_cursor": result["next_cursor"]}

    @rpc
    def list_recipients(self, actor: dict, paging: dict | None = None) -> dict:
        """Cases that can receive goods (confirmed, not closed), newest first,
        as the donation office chooses one: compound, categories, summary; no
        household, no names. A summary may still tell a lot: each listing is
        one `recipients_list` audit entry."""
        actor = load_actor(actor)
        require_admin(actor)
        paging = load_or_raise(PageSchema(), paging)
        statement = select(Case).where(Case.status.in_(domain.CaseStatus.ACTIVE))
        with self.db.unit_of_work() as uow:
            result = paginate(uow.session, statement, paging, Case.opened_at, Case.id)
            self._audit(uow, actor, "recipients_list")
            uow.commit()
        return {"items": RecipientSchema(many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}

    @rpc
    def check_goods_recipient(self, case_id: str, actor: dict) -> dict:
        """Whether goods may be dispatched to this case, and nothing about it:
        NotFound for no such case, Conflict (naming case_id) for one not
        confirmed or closed. Not audited: it shows no personal details."""
        actor = load_actor(actor)
        require_admin(actor)
        case = get_by_id(self.db.session, Case, case_id)
        if case is None:
            raise NotFound("No such case.")
        if case.status not in domain.CaseStatus.ACTIVE:
            message = f"A {case.status} case cannot receive goods."
            if case.status == domain.CaseStatus.DRAFT:
                message += " Confirm it first."
            raise Conflict(message, {"fields": {"case_id": [message]}})
        return {"case_id": case.id, "status": case.status}

    @rpc
    def assign_case(self, case_id: str, payload: dict, actor: dict, assignee: dict | None) -> dict:
        """Pair the case with another party member (`assignee`: their account,
        see _require_assignee); both the old and the new assignee are alerted."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(CaseAssignSchema(), payload)
        self._require_assignee(data["assignee_id"], assignee)
        with self.db.unit_of_work() as uow:
            case = self._case(uow, case_id)
            self._move(case, "assign")
            if case.assignee_id == data["assignee_id"]:
                raise Conflict("The case is assigned to this member already.")
            previous = case.assignee_id
            case.assignee_id = data["assignee_id"]
            uow.emit(events.CASE_ASSIGNED, {**case_event(case), "previous_assignee_id": previous,
                                            **self._labels_for_alert(uow, case)})
            uow.commit()
        return self._case_view(case)

    @rpc
    @idempotent
    def log_visit(self, case_id: str, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        data = load_or_raise(VisitCreateSchema(), payload)
        if data["visited_on"] > naive_utcnow().date() + timedelta(days=1):
            raise InvalidInput("A visit cannot be in the future.", {"fields": {"visited_on": ["In the future."]}})
        with self.db.unit_of_work() as uow:
            case = self._visible_case(uow, case_id, actor)
            self._move(case, "visit")
            visit = Visit(case_id=case.id, visited_on=data["visited_on"], notes=data["notes"],
                          logged_by=actor["id"], logged_at=naive_utcnow())
            uow.session.add(visit)
            case.last_visit_on = max(filter(None, [case.last_visit_on, visit.visited_on]))
            case.lapse_started_at = domain.lapse_start(case.last_visit_on, case.opened_at)
            uow.session.flush()
            uow.emit(events.VISIT_LOGGED, {"case_id": case.id, "visit_id": visit.id,
                                           "visited_on": visit.visited_on.isoformat(), "status": case.status})
            uow.commit()
        return VisitSchema().dump(visit)

    @rpc
    @idempotent
    def add_referral(self, case_id: str, payload: dict, actor: dict) -> dict:
        """Refer the household to an agency for a benefit: `submitted`."""
        actor = load_actor(actor)
        data = load_or_raise(ReferralCreateSchema(), payload)
        with self.db.unit_of_work() as uow:
            case = self._visible_case(uow, case_id, actor)
            self._move(case, "refer")
            referral = Referral(case_id=case.id, agency=data["agency"], benefit=data["benefit"],
                                status=domain.ReferralStatus.SUBMITTED, submitted_by=actor["id"],
                                submitted_at=naive_utcnow(), deadline=data["deadline"], stages=[])
            uow.session.add(referral)
            uow.session.flush()
            self._referral_event(uow, referral, case)
            uow.commit()
        return ReferralSchema().dump(referral)

    @rpc
    def decide_referral(self, referral_id: str, payload: dict, actor: dict) -> dict:
        """The agency's answer: approved or rejected, once."""
        actor = load_actor(actor)
        data = load_or_raise(ReferralDecisionSchema(), payload)
        with self.db.unit_of_work() as uow:
            referral = get_by_id(uow.session, Referral, referral_id)
            if referral is None:
                raise NotFound("No such referral.")
            case = self._visible_case(uow, referral.case_id, actor)
            if case.status == domain.CaseStatus.CLOSED:
                raise Conflict("The case is closed.")
            referral.status = enforce(domain.decide_referral, referral.status, data["status"])
            referral.decided_by, referral.decided_at = actor["id"], naive_utcnow()
            self._referral_event(uow, referral, case)
            uow.commit()
        return ReferralSchema().dump(referral)

    @rpc
    def record_referral_stage(self, referral_id: str, payload: dict, actor: dict) -> dict:
        """The agency moved the referral on (documents checked, its home visit ...),
        on a date: only the next stage in order, on a day not before the
        previous stage's nor after today."""
        actor = load_actor(actor)
        data = load_or_raise(ReferralStageSchema(), payload)
        with self.db.unit_of_work() as uow:
            referral = get_by_id(uow.session, Referral, referral_id)
            if referral is None:
                raise NotFound("No such referral.")
            case = self._visible_case(uow, referral.case_id, actor)
            if case.status == domain.CaseStatus.CLOSED:
                raise Conflict("The case is closed.")
            recorded = [(s["stage"], date.fromisoformat(s["on"])) for s in referral.stages or []]
            try:
                enforce(domain.check_stage, referral.status, recorded, data["stage"], data["on"],
                        local_today(self.config))
            except domain.StageDateInvalid as exc:
                raise InvalidInput(str(exc), {"fields": {"on": [str(exc)]}})
            referral.stages = [*(referral.stages or []), {"stage": data["stage"], "on": data["on"].isoformat()}]
            self._referral_event(uow, referral, case)
            uow.commit()
        return ReferralSchema().dump(referral)

    @staticmethod
    def _referral_event(uow: UnitOfWork, referral: Referral, case: Case):
        uow.emit(events.REFERRAL_UPDATED, {"case_id": case.id, "referral_id": referral.id,
                                           "referral_status": referral.status, "status": case.status})

    @rpc
    def close_case(self, case_id: str, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        data = load_or_raise(CaseCloseSchema(), payload)
        with self.db.unit_of_work() as uow:
            case = self._visible_case(uow, case_id, actor)
            self._move(case, "close")
            case.outcome, case.closed_at, case.closed_by = data["outcome"], naive_utcnow(), actor["id"]
            case.outcome_kind = data["outcome_kind"]
            uow.emit(events.CASE_CLOSED, {**case_event(case), "outcome_kind": case.outcome_kind})
            uow.commit()
        return self._case_view(case)

    @rpc
    def reopen_case(self, case_id: str, payload: dict, actor: dict) -> dict:
        """A closed case goes back to open, with its assignee, for a reason
        (kept, with the closing it undoes, in the case's reopenings). Its
        follow-up clock starts again from now."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(CaseReopenSchema(), payload)
        with self.db.unit_of_work() as uow:
            case = self._case(uow, case_id)
            self._move(case, "reopen")  # only a closed case: else a 409 saying what it is
            if case.erased_at is not None:
                raise Conflict("This case's personal details are erased: open a new case instead.")
            now = naive_utcnow()
            case.reopenings.append(Reopening(reason=data["reason"], reopened_by=actor["id"], reopened_at=now,
                                             previous_outcome=case.outcome, previous_closed_at=case.closed_at,
                                             previous_closed_by=case.closed_by))
            case.outcome = case.closed_at = case.closed_by = case.outcome_kind = None
            case.lapse_started_at = now
            uow.emit(events.CASE_REOPENED, {"case_id": case.id, "compound": case.compound,
                                            "categories": case.categories})
            uow.commit()
        return self._case_view(case)

    @rpc
    def erase_case(self, case_id: str, payload: dict, actor: dict) -> dict:
        """Erase a closed or dismissed case's personal details once its
        closing is older than RETENTION_DAYS (domain.check_erasable; else a
        409 saying from which day), and its household's once no other case
        of it is left unerased (domain.CASE_TEXTS, HOUSEHOLD_TEXTS): the marker
        stands where the text was; ids, categories, compound, statuses, dates,
        outcome kinds and goods stay, so reports count as before. Emits
        case_erased, audited (`erase_case`)."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(CaseEraseSchema(), payload)
        retention = self._retention_days()
        now = naive_utcnow()
        with self.db.unit_of_work() as uow:
            case = self._case(uow, case_id)
            erasable_on = case.closed_at and local_day(domain.erasable_from(case.closed_at, retention), self.config)
            enforce(domain.check_erasable, case.status, case.closed_at, case.erased_at, retention, now, erasable_on)
            # Claimed by a conditional update: two erasures at once, one wins and the other is a 409.
            claimed = uow.session.execute(update(Case).where(Case.id == case.id, Case.erased_at.is_(None))
                                          .values(erased_at=now, erased_by=actor["id"], erase_reason=data["reason"]))
            if claimed.rowcount != 1:
                raise Conflict("This case's personal details are erased already.")
            case.erased_at, case.erased_by, case.erase_reason = now, actor["id"], data["reason"]
            records = {"cases": [case], "visits": case.visits, "referrals": case.referrals,
                       "case_reopenings": case.reopenings}
            for table, columns in domain.CASE_TEXTS.items():
                for record in records[table]:
                    for column in columns:
                        setattr(record, column, domain.erased_text(getattr(record, column)))
            household = case.household
            if household is not None and household.erased_at is None:
                others = uow.session.scalar(select(func.count()).select_from(Case).where(
                    Case.household_id == household.id, Case.id != case.id, Case.erased_at.is_(None)))
                if domain.household_erasable(others):
                    self._erase_household(household, now)
            uow.emit(events.CASE_ERASED, {"case_id": case.id})
            self._audit(uow, actor, "erase_case", case_id=case.id, household_id=case.household_id)
            uow.commit()
        return self._case_view(case)

    @staticmethod
    def _erase_household(household: Household, now: datetime):
        for column in domain.HOUSEHOLD_TEXTS:
            setattr(household, column, domain.erased_text(getattr(household, column)))
        for column, empty in domain.HOUSEHOLD_CLEARED.items():
            setattr(household, column, empty)
        for person in household.people:
            for column in domain.PERSON_TEXTS:
                setattr(person, column, domain.erased_text(getattr(person, column)))
            for column, empty in domain.PERSON_CLEARED.items():
                setattr(person, column, empty())
        for consent in household.consents:
            for column in domain.CONSENT_TEXTS:
                setattr(consent, column, domain.erased_text(getattr(consent, column)))
        household.erased_at = now

    def _erasable(self):
        """Cases that erase_case would take now (domain.check_erasable, as a query)."""
        cutoff = domain.latest_erasable_closing(naive_utcnow(), self._retention_days())
        return and_(Case.status.in_(domain.ERASABLE_STATUSES), Case.erased_at.is_(None),
                    Case.closed_at.is_not(None), Case.closed_at <= cutoff)

    def _retention_days(self) -> float:
        """RETENTION_DAYS (env LINLI_WELFARE_RETENTION_DAYS); unset: domain.RETENTION_DAYS_DEFAULT."""
        value = self.config.get("RETENTION_DAYS")
        return float(domain.RETENTION_DAYS_DEFAULT if value in (None, "") else value)

    def _followup_after_days(self) -> float:
        return float(self.config["FOLLOWUP_AFTER_DAYS"])

    def _case_view(self, case: Case) -> dict:
        """A case as the API shows it, with `next_visit_due`: when the follow-up
        rule finds it overdue unless visited (only while it is worked on)."""
        case.next_visit_due = (domain.followup_due_at(case.lapse_started_at, self._followup_after_days())
                               if case.status in domain.CaseStatus.ACTIVE and case.lapse_started_at else None)
        return shared(CaseSchema).dump(case)

    def _case(self, uow: UnitOfWork, case_id: str) -> Case:
        case = get_by_id(uow.session, Case, case_id)
        if case is None:
            raise NotFound("No such case.")
        return case

    def _visible_case(self, uow: UnitOfWork, case_id: str, actor: dict) -> Case:
        """The case if the actor sees (and so works on) it (cases_visible_to);
        another member's case is "not found", not "forbidden": ids leak nothing."""
        case = uow.session.scalar(select(Case).where(Case.id == require_id(case_id, "case_id"),
                                                     cases_visible_to(actor)))
        if case is None:
            raise NotFound("No such case.")
        return case

    @staticmethod
    def _require_assignee(assignee_id: str, account: dict | None):
        """Where welfare enforces domain.check_assignee (opening, confirming,
        reassigning). The accounts live in the gateway, which hands over the
        assignee's within the call it vouches for (the signature covers every
        argument): a fact as of this request, with no race against an account
        event not yet arrived. A 400 naming assignee_id, before anything is read."""
        if account is not None:
            account = load_or_raise(shared(AssigneeAccountSchema), account)
        try:
            domain.check_assignee(assignee_id, account)
        except domain.AssigneeUnfit as exc:
            raise InvalidInput(str(exc), {"fields": {"assignee_id": [str(exc)]}})

    def _case_categories(self, session, categories: list[str]) -> tuple[list[str], dict]:
        """Known, active categories, each once, in the order they are listed, and
        the alert's labels of them (_labels_for_alert's, from the same query); else InvalidInput."""
        known = require_categories(session, Category, self.category_kind, "categories", categories)
        try:
            codes = domain.normalise_categories(categories, list(known))
        except ValueError as exc:
            raise InvalidInput(str(exc), {"fields": {"categories": [str(exc)]}})
        return codes, {"category_labels": [known[code] for code in codes]}

    @staticmethod
    def _move(case: Case, action: str):
        case.status = enforce(domain.next_status, case.status, action)

    @rpc
    def summary(self) -> dict:
        """For the dashboard: cases not closed, by status and by category, and
        how many are overdue a visit. Counts only."""
        active = (domain.CaseStatus.DRAFT, *domain.CaseStatus.ACTIVE)
        session = self.db.session
        by_status = dict(session.execute(select(Case.status, func.count()).where(
            Case.status.in_(active)).group_by(Case.status)).all())
        by_category: dict[str, int] = {}
        for (categories,) in session.execute(select(Case.categories).where(
                Case.status.in_(domain.CaseStatus.ACTIVE))):
            for category in categories:
                by_category[category] = by_category.get(category, 0) + 1
        overdue = session.scalar(select(func.count()).select_from(Case).where(followup_overdue()))
        # Every active category (0 if no case has it), and a retired one while cases still have it.
        listed = session.execute(select(Category.code, Category.retired)
                                 .order_by(Category.position, Category.code)).all()
        shown = [code for code, retired in listed if not retired or by_category.get(code)]
        return {"open_cases_by_status": {status: by_status.get(status, 0) for status in active},
                "open_cases_by_category": {c: by_category.get(c, 0) for c in shown},
                "followups_overdue": overdue}

    @rpc
    def monthly_summary(self, month: str) -> dict:
        """The month's cases in counts (the community's month, LOCAL_TIMEZONE):
        opened (confirmed, by category), helped (a visit, a referral made or
        decided or moved a stage, or goods received in the month), visits,
        referrals made and granted, closed by outcome kind, and open at the
        month's end. Erased cases count as before: erasure keeps these fields."""
        first, following = month_days(month)
        start, end = month_bounds(month, community_zone(self.config))
        session = self.db.session
        counted = Case.status.not_in((domain.CaseStatus.DRAFT, domain.CaseStatus.DISMISSED))

        def in_month(column):
            return and_(column >= start, column < end)

        opened = session.scalars(select(Case.categories).where(counted, in_month(Case.opened_at))).all()
        by_category: dict[str, int] = {}
        for categories in opened:
            for category in categories:
                by_category[category] = by_category.get(category, 0) + 1
        listed = session.execute(select(Category.code, Category.label_zh, Category.label_en)
                                 .order_by(Category.position, Category.code)).all()
        known = {code for code, _, _ in listed}
        opened_by_category = [{"category": code, "label_zh": zh, "label_en": en, "count": by_category[code]}
                              for code, zh, en in listed if by_category.get(code)]
        opened_by_category += [{"category": code, "label_zh": code, "label_en": code, "count": count}
                               for code, count in sorted(by_category.items()) if code not in known]

        visited = session.scalars(select(Visit.case_id).where(Visit.visited_on >= first,
                                                                Visit.visited_on < following)).all()
        made = session.scalars(select(Referral.case_id).where(in_month(Referral.submitted_at))).all()
        decided = session.execute(select(Referral.case_id, Referral.status).where(
            in_month(Referral.decided_at))).all()
        staged = [case_id for case_id, stages in session.execute(select(Referral.case_id, Referral.stages).where(
            Referral.submitted_at < end)).all()
                  if any(first <= date.fromisoformat(s["on"]) < following for s in stages or [])]
        goods = session.scalars(select(Assistance.case_id).where(in_month(Assistance.received_at))).all()
        helped = set(visited) | set(made) | {case_id for case_id, _ in decided} | set(staged) | set(goods)

        closed_kinds = session.scalars(select(Case.outcome_kind).where(
            Case.status == domain.CaseStatus.CLOSED, in_month(Case.closed_at))).all()
        open_at_end = session.scalar(select(func.count()).select_from(Case).where(
            counted, Case.opened_at < end,
            or_(Case.status.in_(domain.CaseStatus.ACTIVE), Case.closed_at >= end)))
        return {
            "month": first.strftime("%Y-%m"),
            "cases_opened": len(opened),
            "cases_opened_by_category": opened_by_category,
            "cases_helped": len(helped),
            "visits": len(visited),
            "referrals_made": len(made),
            "referrals_granted": sum(status == domain.ReferralStatus.APPROVED for _, status in decided),
            "cases_closed": len(closed_kinds),
            "closed_by_outcome": domain.outcome_counts(closed_kinds),
            "open_at_month_end": open_at_end,
        }

    # -- the audit log ------------------------------------------------------------

    @staticmethod
    def _audit(uow: UnitOfWork, actor: dict, action: str, case_id: str | None = None,
               household_id: str | None = None):
        uow.session.add(AuditEntry(actor_id=actor["id"], action=action, case_id=case_id,
                                   household_id=household_id, at=naive_utcnow()))

    @staticmethod
    def _audit_many(uow: UnitOfWork, actor: dict, action: str, key: str, ids: list[str]):
        """One entry per record shown (`key`: case_id or household_id), in one statement."""
        if ids:
            now = naive_utcnow()
            uow.session.execute(insert(AuditEntry), [
                {"actor_id": actor["id"], "action": action, key: record_id, "at": now} for record_id in ids])

    @rpc
    def list_audit(self, actor: dict, query: dict | None = None) -> dict:
        """Who read which case's or household's details, newest first (admins only)."""
        require_admin(load_actor(actor))
        query = load_or_raise(AuditQuerySchema(), query)
        statement = select(AuditEntry)
        for name in ("case_id", "household_id"):
            if query[name]:
                statement = statement.where(getattr(AuditEntry, name) == query[name])
        result = paginate(self.db.session, statement, query, AuditEntry.at, AuditEntry.id)
        return {"items": AuditEntrySchema(many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}

    # -- events from other services -------------------------------------------------

    @contracts.subscribed("donations", donation_events.ITEMS_DISPATCHED)
    def on_items_dispatched(self, envelope: dict):
        """Goods sent to a case show on it as assistance received."""
        event = contracts.validate(envelope)
        data = event["data"]
        if data["to"] != "case":
            return
        with self.db.unit_of_work() as uow:
            if not uow.first_delivery(event["id"], f"{self.name}.on_items_dispatched"):
                return
            if uow.session.get(Case, data["case_id"]) is None:
                # The gateway checked the case; if it is missing, an operator must look (dead letter).
                raise NotFound(f"Goods were dispatched to an unknown case {data['case_id']}.")
            for item in data["items"]:
                uow.session.add(Assistance(case_id=data["case_id"], campaign_id=data["campaign_id"],
                                           dispatch_id=data["dispatch_id"], category=item["category"],
                                           quantity=item["quantity"], received_at=naive_utcnow()))
            uow.commit()

    # -- the timer: follow-ups ----------------------------------------------------------

    @timer(interval=SWEEP_INTERVAL_SECONDS)
    def sweep(self):
        """Raise followup_overdue for each case unvisited too long, once per
        lapse, and referral_overdue for each referral past its deadline, once.
        Safe with several instances: each claim is a conditional update."""
        self._flag_overdue_followups()
        self._flag_overdue_referrals()

    def _flag_overdue_referrals(self):
        """The one home of "an undecided referral past its deadline alerts its
        case's assignee, once": still submitted, its deadline (a day of the
        community's calendar) before today, not alerted yet. Claimed by a
        conditional update, so two instances alert once; a referral of a case
        no longer worked on is claimed without an alert."""
        today = local_today(self.config)
        with self.db.unit_of_work() as uow:
            due = uow.session.scalars(select(Referral).where(
                Referral.status == domain.ReferralStatus.SUBMITTED, Referral.deadline < today,
                Referral.overdue_alerted_at.is_(None)).order_by(Referral.deadline).limit(500)).all()
            for referral in due:
                claimed = uow.session.execute(update(Referral).where(
                    Referral.id == referral.id, Referral.overdue_alerted_at.is_(None),
                ).values(overdue_alerted_at=naive_utcnow()))
                case = uow.session.get(Case, referral.case_id)
                if claimed.rowcount == 1 and case.status in domain.CaseStatus.ACTIVE:
                    # Agency and benefit for the assignee's alert only (never on the feed).
                    uow.emit(events.REFERRAL_OVERDUE, {
                        "case_id": case.id, "referral_id": referral.id, "assignee_id": case.assignee_id,
                        "deadline": referral.deadline.isoformat(), "compound": case.compound,
                        "agency": referral.agency, "benefit": referral.benefit})
            uow.commit()

    def _flag_overdue_followups(self):
        after_days = self._followup_after_days()
        now = naive_utcnow()
        cutoff = domain.latest_due_lapse(now, after_days)
        not_alerted_for_this_lapse = or_(Case.followup_alerted_for.is_(None),
                                         Case.followup_alerted_for != Case.lapse_started_at)
        with self.db.unit_of_work() as uow:
            # Only what is due, oldest lapse first: cases visited in time never crowd it out.
            due = uow.session.scalars(select(Case).where(
                Case.status.in_(domain.CaseStatus.ACTIVE), Case.lapse_started_at <= cutoff,
                not_alerted_for_this_lapse).order_by(Case.lapse_started_at).limit(500)).all()
            for case in due:
                lapse_started = case.lapse_started_at
                if not domain.due_followup(case.status, lapse_started, case.followup_alerted_for, now, after_days):
                    continue
                claimed = uow.session.execute(update(Case).where(
                    Case.id == case.id, Case.lapse_started_at == lapse_started, not_alerted_for_this_lapse,
                ).values(followup_alerted_for=lapse_started))
                if claimed.rowcount == 1:
                    uow.emit(events.FOLLOWUP_OVERDUE, {
                        "case_id": case.id, "assignee_id": case.assignee_id, "compound": case.compound,
                        "last_visit_on": case.last_visit_on.isoformat() if case.last_visit_on else None,
                        "days": after_days})
            uow.commit()


