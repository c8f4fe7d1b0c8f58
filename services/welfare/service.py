"""The welfare service: households and hardship cases, over nameko RPC.
Every change commits with its event in the outbox."""
from __future__ import annotations

from sqlalchemy import select

from services.common.db import Database
from services.common.errors import InvalidInput, NotFound
from services.common.pagination import PageSchema, paginate
from services.common.schemas import is_admin, load_actor, load_or_raise, require_admin
from services.common.service import KernelEntrypoints, rpc
from services import contracts
from services.common.clock import naive_utcnow
from services.common.events import reliable_event_handler
from services.contracts import donations as donation_events
from services.contracts import welfare as events
from services.welfare import domain
from services.welfare.models import Assistance, Case, Household, Person, kernel
from services.welfare.schemas import (
    CaseOpenSchema, CaseSchema, HouseholdCreateSchema, HouseholdSchema,
)


class WelfareService(KernelEntrypoints):
    name = "welfare"
    db = Database(kernel)

    @rpc
    def create_household(self, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(HouseholdCreateSchema(), payload)
        with self.db.unit_of_work() as uow:
            household = Household(compound=data["compound"], address=data["address"], people=[
                Person(position=i, **person) for i, person in enumerate(data["people"])
            ])
            uow.session.add(household)
            uow.commit()
        return HouseholdSchema().dump(household)

    @rpc
    def get_household(self, household_id: str, actor: dict) -> dict:
        require_admin(load_actor(actor))
        household = self.db.session.get(Household, household_id)
        if household is None:
            raise NotFound("No such household.")
        return HouseholdSchema().dump(household)

    @rpc
    def open_case(self, payload: dict, actor: dict) -> dict:
        """Open a case for a household, assigned to a party member. The gateway
        has checked that the assignee is a registered party member."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(CaseOpenSchema(), payload)
        try:
            categories = domain.normalise_categories(data["categories"])
        except ValueError as exc:
            raise InvalidInput(str(exc), {"fields": {"categories": [str(exc)]}})
        with self.db.unit_of_work() as uow:
            household = uow.session.get(Household, data["household_id"])
            if household is None:
                raise InvalidInput("No such household.",
                                   {"fields": {"household_id": ["No household has this id."]}})
            case = Case(household=household, categories=categories, summary=data["summary"],
                        assignee_id=data["assignee_id"], status=domain.CaseStatus.OPEN,
                        opened_by=actor["id"])
            uow.session.add(case)
            uow.session.flush()
            uow.emit(events.CASE_OPENED, {
                "case_id": case.id, "household_id": household.id, "compound": household.compound,
                "categories": categories, "assignee_id": case.assignee_id, "status": case.status,
            })
            uow.commit()
        return CaseSchema().dump(case)

    @reliable_event_handler("donations", donation_events.ITEMS_DISPATCHED)
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

    @rpc
    def get_case(self, case_id: str, actor: dict) -> dict:
        actor = load_actor(actor)
        case = self.db.session.get(Case, case_id)
        # Another member's case is "not found", not "forbidden": ids leak nothing.
        if case is None or not domain.may_see_case(actor["id"], is_admin(actor), case.assignee_id):
            raise NotFound("No such case.")
        return CaseSchema().dump(case)

    @rpc
    def list_cases(self, actor: dict, paging: dict | None = None) -> dict:
        actor = load_actor(actor)
        paging = load_or_raise(PageSchema(), paging)
        query = select(Case)
        if not is_admin(actor):
            query = query.where(Case.assignee_id == actor["id"])
        result = paginate(self.db.session, query, paging, Case.opened_at, Case.id)
        return {"items": CaseSchema(many=True).dump(result["items"]),
                "next_cursor": result["next_cursor"]}
