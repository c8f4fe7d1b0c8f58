"""The donations service: campaigns with live totals, donations with gap-free
receipts and Idempotency-Key replays, stock, and dispatches that never
oversell. Every change commits with its event in the outbox."""
from __future__ import annotations

import hmac
import math
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import NamedTuple

from nameko.dependency_providers import Config
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from services.categories import CategoryEntrypoints, labelled, problems
from services.common.clock import community_zone, isoformat, local_day, local_today, month_bounds, naive_utcnow
from services.common.db import Database, get_by_id, new_id
from services.common.errors import Conflict, InvalidInput, NotFound, enforce
from services.common.groupcommit import grouped
from services.common.idempotency import idempotent
from services.common.pagination import PageSchema, paginate
from services.common.prepared import Prepared
from services.common.schemas import load_or_raise, require_id, shared
from services.common.service import KernelEntrypoints, rpc
from services.contracts.principal import load_actor, require_admin
from services.contracts import donations as events
from services.donations import domain
from services.donations.models import (
    AuditEntry, Campaign, Category, Dispatch, DispatchItem, Donation, DonationItem, Stock, kernel,
)
from services.donations.schemas import (
    AuditEntrySchema, AuditQuerySchema, CampaignCreateSchema, CampaignSchema, CampaignUpdateSchema,
    DispatchCreateSchema, DispatchSchema, DonationCreateSchema, DonationListItemSchema, DonationSchema,
    LedgerSchema, ReceiptQuerySchema, VoidSchema,
)

CAMPAIGN_CODE_LENGTH = 6
# Where a dispatch to a welfare case went, as a receipt tells it: never whose household.
CASE_DESTINATION = "a household in need (hardship case)"
SHOWN_DISPATCHES = 20  # per drive, newest first, on the public page and a receipt


def campaign_view(campaign: Campaign) -> dict:
    received = {s.category: s.received for s in campaign.stock if s.received}
    return shared(CampaignSchema).dump({
        **{column: getattr(campaign, column) for column in (
            "id", "code", "name", "goal_fen", "starts_on", "ends_on", "status", "created_by",
            "created_at", "goal_reached_at", "test")},
        "totals": {"cash_fen": campaign.cash_fen, "items": received, "donations": campaign.donation_count},
        # Rounded down: 99.99% must not read as 100 while the goal is not reached.
        "progress_percent": math.floor(1000 * campaign.cash_fen / campaign.goal_fen) / 10,
        "stock": {s.category: s.received - s.dispatched for s in campaign.stock if s.received},
    })


class Receipt(NamedTuple):
    seq: int
    receipt_no: str
    cash_fen: int       # the campaign's totals with this gift
    donations: int
    goal_fen: int


_campaigns = Campaign.__table__
# Statements every donation runs, built once and on the table, not the ORM class: building,
# keying and (for an ORM UPDATE) evaluating a statement cost more CPU than SQLite takes to run it.
_TAKE_RECEIPT_NO = Prepared(update(_campaigns).where(
    _campaigns.c.id == bindparam("campaign_id"), _campaigns.c.status == domain.CampaignStatus.OPEN,
).values(
    last_receipt_seq=_campaigns.c.last_receipt_seq + 1,
    cash_fen=_campaigns.c.cash_fen + bindparam("amount_fen"),
    donation_count=_campaigns.c.donation_count + 1,
).returning(_campaigns.c.last_receipt_seq, _campaigns.c.cash_fen, _campaigns.c.donation_count,
            _campaigns.c.goal_fen, _campaigns.c.code, _campaigns.c.starts_on, _campaigns.c.ends_on))
_ADD_DONATION = Prepared(insert(Donation.__table__))
_ADD_DONATION_ITEMS = insert(DonationItem.__table__)
_CAMPAIGN_TAKING_GIFTS = select(_campaigns.c.status, _campaigns.c.starts_on, _campaigns.c.ends_on) \
    .where(_campaigns.c.id == bindparam("campaign_id"))


def next_receipt_no(session, campaign_id: str, amount_fen: int, today) -> Receipt:
    """The rule "a campaign's receipts are numbered without gaps", enforced:
    one statement takes the next number and adds the gift to the totals. The
    row lock it holds serialises gifts to one campaign until they commit, and
    a gift rolled back gives its number back with it. The status in the
    statement itself: a close committed meanwhile wins (Conflict). The dates
    are checked on the row it returns (refused: the caller's savepoint or
    transaction takes the number back); no row: NotFound, or why the campaign
    takes no gifts (one statement, not a read before it, on every gift)."""
    taken = _TAKE_RECEIPT_NO.rows(session, {"campaign_id": campaign_id, "amount_fen": amount_fen})
    if not taken:
        campaign = session.execute(_CAMPAIGN_TAKING_GIFTS, {"campaign_id": campaign_id}).one_or_none()
        if campaign is None:
            raise NotFound("No such campaign.")
        enforce(domain.check_accepts_donations, campaign.status, campaign.starts_on, campaign.ends_on, today)
        raise Conflict("The campaign is closed: it takes no more donations.")
    (seq, cash_fen, donations, goal_fen, code, starts_on, ends_on), = taken
    enforce(domain.check_accepts_donations, domain.CampaignStatus.OPEN, starts_on, ends_on, today)
    return Receipt(seq, domain.receipt_no(code, seq), cash_fen, donations, goal_fen)


def take_stock(session, campaign_id: str, wanted: dict[str, int]):
    """The rule "a dispatch never oversells", enforced: each category's stock
    in hand (received - dispatched) goes down by what is wanted only where
    that much is left, one conditional UPDATE per category, whose row lock
    makes a racing dispatch or void wait and then see what this one left.
    Short of any category: everything rolls back, and Conflict names each
    shortfall (domain.shortfalls words them)."""
    for category, quantity in wanted.items():
        taken = session.execute(update(Stock).where(
            Stock.campaign_id == campaign_id, Stock.category == category,
            Stock.received - Stock.dispatched >= quantity,
        ).values(dispatched=Stock.dispatched + quantity))
        if taken.rowcount != 1:
            session.rollback()
            available = dict(session.execute(select(Stock.category, Stock.received - Stock.dispatched)
                                              .where(Stock.campaign_id == campaign_id)).all())
            raise Conflict("Not that much in stock; nothing was dispatched.",
                           {"stock": domain.shortfalls(available, wanted)})


def take_back_goods(session, campaign_id: str, items: dict[str, int]):
    """The rule "a void never takes back goods already dispatched", enforced:
    a voided gift's goods leave the stock received only where that many are
    still in hand, one conditional UPDATE per category (stock never goes
    negative, whatever races it). Too few left: everything rolls back, and
    Conflict says why (domain.unvoidable words it)."""
    for category, quantity in items.items():
        taken = session.execute(update(Stock).where(
            Stock.campaign_id == campaign_id, Stock.category == category,
            Stock.received - Stock.dispatched >= quantity,
        ).values(received=Stock.received - quantity))
        if taken.rowcount != 1:
            session.rollback()
            in_stock = session.scalar(select(Stock.received - Stock.dispatched).where(
                Stock.campaign_id == campaign_id, Stock.category == category)) or 0
            # Details as a dispatch's shortfall tells them (text: RPC carries strings).
            raise Conflict(domain.unvoidable(category, quantity, in_stock),
                           {"stock": {category: f"{quantity} in this gift, {in_stock} in stock"}})


class DonationsService(CategoryEntrypoints, KernelEntrypoints):
    name = "donations"
    config = Config()
    db = Database(kernel)
    category_kind = "goods"
    category_model = Category

    # -- campaigns ----------------------------------------------------------------

    @rpc
    @idempotent
    def create_campaign(self, payload: dict, actor: dict) -> dict:
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(shared(CampaignCreateSchema), payload)
        for _attempt in range(5):  # a random code may, very rarely, be taken already
            try:
                return self._create_campaign(data, actor)
            except IntegrityError:
                continue
        raise Conflict("Could not find a free campaign code; try again.")

    def _create_campaign(self, data: dict, actor: dict) -> dict:
        with self.db.unit_of_work() as uow:
            campaign = Campaign(code=domain.new_code(CAMPAIGN_CODE_LENGTH), status=domain.CampaignStatus.OPEN,
                                created_by=actor["id"], created_at=naive_utcnow(), cash_fen=0,
                                donation_count=0, last_receipt_seq=0, **data)
            uow.session.add(campaign)
            uow.session.flush()
            uow.emit(events.CAMPAIGN_CREATED, {
                "campaign_id": campaign.id, "name": campaign.name, "goal_fen": campaign.goal_fen,
                "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat()})
            uow.commit()
        return campaign_view(campaign)

    @rpc
    def list_campaigns(self, paging: dict | None = None) -> dict:
        paging = load_or_raise(shared(PageSchema), paging)
        result = paginate(self.db.session, select(Campaign), paging, Campaign.created_at, Campaign.id)
        return {"items": [campaign_view(c) for c in result["items"]], "next_cursor": result["next_cursor"]}

    @rpc
    def get_campaign(self, campaign_id: str) -> dict:
        """Live totals: read from the running aggregates, the same cost at any size."""
        return campaign_view(self._campaign(campaign_id))

    @rpc
    def summary(self) -> dict:
        """For the dashboard and the public page: every campaign's totals and
        progress (newest first, 50 at most), and where goods went (destinations
        and counts only: a case is "a household in need")."""
        campaigns = self.db.session.scalars(
            select(Campaign).order_by(Campaign.created_at.desc()).limit(50)).all()
        return {"campaigns": self._summaries(campaigns)}

    @rpc
    def campaign_summary(self, campaign_id: str) -> dict:
        """One campaign as summary() shows it, with its code (for its summary export's file name)."""
        campaign = self._campaign(campaign_id)
        return {**self._summaries([campaign])[0], "code": campaign.code}

    def _summaries(self, campaigns: list[Campaign]) -> list[dict]:
        sent = self.db.session.execute(
            select(Dispatch.campaign_id, Dispatch.destination, Dispatch.case_id, DispatchItem.category,
                   func.sum(DispatchItem.quantity))
            .join(DispatchItem, DispatchItem.dispatch_id == Dispatch.id)
            .where(Dispatch.campaign_id.in_([c.id for c in campaigns]))
            .group_by(Dispatch.campaign_id, Dispatch.destination, Dispatch.case_id, DispatchItem.category)).all()
        goods_sent: dict[str, dict[tuple[str, str], int]] = {}
        for campaign_id, destination, case_id, category, quantity in sent:
            key = (CASE_DESTINATION if case_id else destination, category)
            per_campaign = goods_sent.setdefault(campaign_id, {})
            per_campaign[key] = per_campaign.get(key, 0) + int(quantity)
        dispatches = self._dispatches([c.id for c in campaigns])
        return [{
            **{k: v for k, v in campaign_view(c).items() if k not in ("created_by", "code")},
            "goods_sent": [{"to": to, "category": category, "quantity": quantity}
                           for (to, category), quantity in sorted(goods_sent.get(c.id, {}).items())],
            "dispatches": dispatches.get(c.id, []),
        } for c in campaigns]

    def _dispatches(self, campaign_ids: list[str], categories: set[str] | None = None,
                    after: datetime | None = None) -> dict[str, list[dict]]:
        """Each campaign's dispatches, newest first (SHOWN_DISPATCHES at most),
        with when and where they went: `{sent_at, sent_on, to, items}`, sent_on
        the community's calendar day, a case "a household in need". With
        `categories`, only those goods; with `after`, only dispatches made after
        that moment (a receipt: never goods sent before the gift existed)."""
        statement = (select(Dispatch.campaign_id, Dispatch.id, Dispatch.created_at, Dispatch.destination,
                            Dispatch.case_id, DispatchItem.category, DispatchItem.quantity)
                     .join(DispatchItem, DispatchItem.dispatch_id == Dispatch.id)
                     .where(Dispatch.campaign_id.in_(campaign_ids))
                     .order_by(Dispatch.created_at.desc(), Dispatch.id.desc(), DispatchItem.category))
        if categories is not None:
            statement = statement.where(DispatchItem.category.in_(categories))
        if after is not None:
            statement = statement.where(Dispatch.created_at > after)
        found: dict[str, dict[str, dict]] = {}
        for campaign_id, dispatch_id, created_at, destination, case_id, category, quantity in \
                self.db.session.execute(statement):
            per_campaign = found.setdefault(campaign_id, {})
            if dispatch_id not in per_campaign:
                if len(per_campaign) >= SHOWN_DISPATCHES:
                    continue
                per_campaign[dispatch_id] = {
                    "sent_at": isoformat(created_at), "sent_on": local_day(created_at, self.config).isoformat(),
                    "to": CASE_DESTINATION if case_id else destination, "items": []}
            per_campaign[dispatch_id]["items"].append({"category": category, "quantity": quantity})
        return {campaign_id: list(per_campaign.values()) for campaign_id, per_campaign in found.items()}

    @rpc
    def monthly_summary(self, month) -> dict:
        """For the street office's monthly report, in the community's month
        ("2026-11"), test drives left out: cash and goods received in gifts not
        voided, the voids made, each drive's part, and each dispatch with where
        it went (a place's name; a case only as `to_case`). Counts only."""
        start, end = month_bounds(month, community_zone(self.config))
        session = self.db.session
        real = Campaign.test.is_(False)
        in_month = (Donation.created_at >= start) & (Donation.created_at < end) & Donation.voided_at.is_(None)
        per_drive = {campaign_id: (int(cash or 0), gifts) for campaign_id, cash, gifts in session.execute(
            select(Donation.campaign_id, func.sum(Donation.amount_fen), func.count())
            .join(Campaign, Campaign.id == Donation.campaign_id).where(real, in_month)
            .group_by(Donation.campaign_id)).all()}
        items = {category: {"quantity": int(quantity)} for category, quantity in session.execute(
            select(DonationItem.category, func.sum(DonationItem.quantity))
            .join(Donation, Donation.id == DonationItem.donation_id)
            .join(Campaign, Campaign.id == Donation.campaign_id).where(real, in_month)
            .group_by(DonationItem.category)).all()}
        voided = session.scalar(select(func.count()).select_from(Donation)
                                .join(Campaign, Campaign.id == Donation.campaign_id)
                                .where(real, Donation.voided_at >= start, Donation.voided_at < end))
        dispatches = session.scalars(
            select(Dispatch).join(Campaign, Campaign.id == Dispatch.campaign_id)
            .where(real, Dispatch.created_at >= start, Dispatch.created_at < end)
            .order_by(Dispatch.created_at, Dispatch.id)).all()
        drive_ids = set(per_drive) | {d.campaign_id for d in dispatches}
        drives = session.scalars(select(Campaign).where(Campaign.id.in_(drive_ids))
                                 .order_by(Campaign.created_at, Campaign.id)).all()
        return {
            "month": month,
            "cash_fen": sum(cash for cash, _ in per_drive.values()),
            "gifts": sum(gifts for _, gifts in per_drive.values()),
            "voided": voided,
            "items_received": labelled(session, Category, items),
            "drives": [{"campaign_id": c.id, "name": c.name, "status": c.status, "goal_fen": c.goal_fen,
                        "cash_fen": per_drive.get(c.id, (0, 0))[0], "gifts": per_drive.get(c.id, (0, 0))[1]}
                       for c in drives],
            "dispatches": [{
                "dispatched_on": local_day(d.created_at, self.config).isoformat(),
                "destination": None if d.case_id else d.destination, "to_case": d.case_id is not None,
                "items": labelled(session, Category, {i.category: {"quantity": i.quantity} for i in d.items}),
            } for d in dispatches],
        }

    def _campaign(self, campaign_id: str, session=None) -> Campaign:
        campaign = get_by_id(session or self.db.session, Campaign, campaign_id)
        if campaign is None:
            raise NotFound("No such campaign.")
        return campaign

    @rpc
    def close_campaign(self, campaign_id: str, actor: dict) -> dict:
        require_admin(load_actor(actor))
        with self.db.unit_of_work() as uow:
            campaign = self._campaign(campaign_id, uow.session)
            enforce(domain.check_open, campaign.status)
            campaign.status = domain.CampaignStatus.CLOSED
            uow.emit(events.CAMPAIGN_CLOSED, {"campaign_id": campaign.id})
            uow.commit()
        return campaign_view(campaign)

    @rpc
    def update_campaign(self, campaign_id: str, payload: dict, actor: dict) -> dict:
        """Change a drive's name, goal or dates (only the fields sent). A closed
        drive can only be renamed (409). A goal lowered to what the drive has
        already raised announces goal_reached then, if it never was."""
        require_admin(load_actor(actor))
        data = load_or_raise(shared(CampaignUpdateSchema), payload)
        with self.db.unit_of_work() as uow:
            campaign = uow.session.scalar(select(Campaign).where(
                Campaign.id == require_id(campaign_id, "campaign_id")).with_for_update())
            if campaign is None:
                raise NotFound("No such campaign.")
            enforce(domain.check_editable, campaign.status, set(data))
            starts_on, ends_on = data.get("starts_on", campaign.starts_on), data.get("ends_on", campaign.ends_on)
            try:
                domain.check_dates(starts_on, ends_on)
            except ValueError as exc:
                field = "ends_on" if "ends_on" in data else "starts_on"
                raise InvalidInput(str(exc), {"fields": {field: [str(exc)]}})
            for column, value in data.items():
                setattr(campaign, column, value)
            uow.session.flush()
            uow.emit(events.CAMPAIGN_UPDATED, {
                "campaign_id": campaign.id, "name": campaign.name, "goal_fen": campaign.goal_fen,
                "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat()})
            if "goal_fen" in data:
                self._goal_reached(uow, campaign.id)
            uow.session.refresh(campaign)
            uow.commit()
        return campaign_view(campaign)

    def _goal_reached(self, uow, campaign_id: str):
        """Announce goal_reached if the cash total is at the goal and it never
        was announced: at most once per drive, ever (a void that takes the total
        below the goal, and a gift that reaches it again, alert no one). One
        conditional statement: two gifts at once cannot both announce it."""
        reached = uow.session.execute(update(Campaign).where(
            Campaign.id == campaign_id, Campaign.goal_reached_at.is_(None), Campaign.cash_fen >= Campaign.goal_fen,
        ).values(goal_reached_at=naive_utcnow()).returning(
            Campaign.goal_fen, Campaign.cash_fen, Campaign.created_by)).one_or_none()
        if reached is not None:
            goal_fen, cash_fen, created_by = reached
            uow.emit(events.GOAL_REACHED, {"campaign_id": campaign_id, "goal_fen": goal_fen,
                                           "cash_fen": cash_fen, "created_by": created_by})

    # -- donations ------------------------------------------------------------------

    @rpc
    @grouped(orm=False)  # its rows are written with Core statements: a savepoint on the cursor
    @idempotent
    def record_donation(self, campaign_id: str, payload: dict, actor: dict) -> dict:
        """Record a donation and issue its receipt. With an idempotency key, the
        same call again returns the first receipt and counts nothing twice."""
        actor = load_actor(actor)
        data = load_or_raise(shared(DonationCreateSchema), payload)
        if data["anonymous"]:
            data["donor_name"] = None  # an anonymous donor's name is not kept at all
        items = data["items"] or []
        with self.db.unit_of_work() as uow:
            self._require_goods(uow.session, items)
            campaign_id = require_id(campaign_id, "campaign_id")
            amount = data["amount_fen"] or 0
            # The goal as of this row lock: an edit of the goal committed meanwhile counts.
            seq, receipt_no, cash_after, donations_after, goal_fen = next_receipt_no(
                uow.session, campaign_id, amount, local_today(self.config))
            # Checked after adding, under the row locks: a gift past the totals' bound is rolled back.
            enforce(domain.check_within_totals, cash_after)
            for category, quantity in domain.count_items(items).items():
                enforce(domain.check_within_totals, self._receive(uow.session, campaign_id, category, quantity))
            donation = SimpleNamespace(
                id=new_id(), campaign_id=campaign_id, seq=seq, receipt_no=receipt_no,
                verification_code=domain.new_code(domain.VERIFICATION_CODE_LENGTH), kind=data["kind"],
                amount_fen=data["amount_fen"], donor_name=data["donor_name"], anonymous=data["anonymous"],
                recorded_by=actor["id"], created_at=naive_utcnow(), voided_at=None, voided_by=None,
                void_reason=None)
            _ADD_DONATION.rows(uow.session, vars(donation))
            donation.items = [{"donation_id": donation.id, "id": new_id(), "position": i, **item}
                              for i, item in enumerate(items)]
            if items:
                uow.session.execute(_ADD_DONATION_ITEMS, donation.items)
            uow.emit(events.DONATION_RECEIVED, {
                "campaign_id": campaign_id, "donation_id": donation.id, "receipt_no": donation.receipt_no,
                "kind": donation.kind, "amount_fen": donation.amount_fen,
                "items": [{"category": c, "quantity": q} for c, q in domain.count_items(items).items()],
                "cash_fen_total": cash_after, "donations_total": donations_after})
            if domain.goal_newly_reached(cash_after - amount, cash_after, goal_fen):
                self._goal_reached(uow, campaign_id)
            uow.commit()
        return shared(DonationSchema).dump(donation)

    @staticmethod
    def _receive(session, campaign_id: str, category: str, quantity: int) -> int:
        """Add goods to a campaign's stock of a category; the stock received after.
        A category's row is made by its first gift, as an insert that does
        nothing if the row is there: two first gifts at once (whoever commits
        first) both count, and neither fails."""
        add = update(Stock).where(Stock.campaign_id == campaign_id, Stock.category == category) \
            .values(received=Stock.received + quantity).returning(Stock.received)
        received = session.execute(add).scalar()
        if received is None:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            session.execute(dialect.insert(Stock).values(
                campaign_id=campaign_id, category=category, received=0, dispatched=0).on_conflict_do_nothing())
            received = session.execute(add).scalar()
        return received

    def _require_goods(self, session, items: list[dict], retired_ok: bool = False):
        """InvalidInput naming each line whose category is unknown, or retired
        (but goods of a retired category still in stock may leave)."""
        found = problems(session, Category, self.category_kind, {item["category"] for item in items}, retired_ok)
        if found:
            raise InvalidInput(next(iter(found.values())), {"fields": {"items": {
                i: {"category": [found[item["category"]]]} for i, item in enumerate(items)
                if item["category"] in found}}})

    @rpc
    @idempotent
    def void_donation(self, campaign_id: str, receipt_no: str, payload: dict, actor: dict) -> dict:
        """Void a gift recorded in error, with the reason: the campaign's totals
        and stock go down in the same transaction, nothing is deleted, and the
        receipt keeps its number and says it was voided. Twice: 409. Goods of
        which too many were dispatched already: 409, and nothing changes."""
        actor = load_actor(actor)
        require_admin(actor)
        reason = load_or_raise(shared(VoidSchema), payload)["reason"]
        with self.db.unit_of_work() as uow:
            donation = uow.session.scalar(select(Donation).where(
                Donation.campaign_id == require_id(campaign_id, "campaign_id"),
                Donation.receipt_no == receipt_no)) if isinstance(receipt_no, str) else None
            if donation is None:
                raise NotFound("No such receipt in this campaign.")
            # Each step a conditional statement, in the order a donation locks rows
            # (the gift, its campaign, then stock): a void racing a void, a dispatch
            # or a gift cannot count twice, go negative, or deadlock.
            marked = uow.session.execute(update(Donation).where(
                Donation.id == donation.id, Donation.voided_at.is_(None),
            ).values(voided_at=naive_utcnow(), voided_by=actor["id"], void_reason=reason))
            if marked.rowcount != 1:
                raise Conflict("This gift is already voided.")
            amount = donation.amount_fen or 0
            cash_after, donations_after = uow.session.execute(update(Campaign).where(
                Campaign.id == donation.campaign_id).values(
                cash_fen=Campaign.cash_fen - amount, donation_count=Campaign.donation_count - 1,
            ).returning(Campaign.cash_fen, Campaign.donation_count)).one()
            items = domain.count_items([{"category": i.category, "quantity": i.quantity} for i in donation.items])
            take_back_goods(uow.session, donation.campaign_id, items)
            uow.emit(events.DONATION_VOIDED, {
                "campaign_id": donation.campaign_id, "donation_id": donation.id, "receipt_no": donation.receipt_no,
                "kind": donation.kind, "amount_fen": donation.amount_fen,
                "items": [{"category": c, "quantity": q} for c, q in items.items()],
                "cash_fen_total": cash_after, "donations_total": donations_after})
            uow.session.refresh(donation)
            uow.commit()
        return shared(DonationSchema).dump(donation)

    @rpc
    def ledger(self, campaign_id: str, actor: dict) -> dict:
        """Every gift of a drive, oldest first, voided ones too, with donors'
        names: the office's ledger export. A bulk read of names, so audited
        (who, which drive, how many gifts, when; never a name)."""
        actor = load_actor(actor)
        require_admin(actor)
        zone = community_zone(self.config)
        with self.db.unit_of_work() as uow:
            campaign = self._campaign(campaign_id, uow.session)
            gifts = uow.session.scalars(
                select(Donation).where(Donation.campaign_id == campaign.id).order_by(Donation.seq)).all()
            uow.session.add(AuditEntry(actor_id=actor["id"], action="export_ledger", campaign_id=campaign.id,
                                       rows=len(gifts), at=naive_utcnow()))
            uow.commit()
        return shared(LedgerSchema).dump({
            "campaign": {"id": campaign.id, "code": campaign.code, "name": campaign.name},
            "rows": [{
                "receipt_no": gift.receipt_no,
                "recorded_on": gift.created_at.replace(tzinfo=timezone.utc).astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                "kind": gift.kind, "amount_fen": gift.amount_fen,
                "items": [{"category": c, "quantity": q} for c, q in domain.count_items(
                    [{"category": i.category, "quantity": i.quantity} for i in gift.items]).items()],
                "donor_name": gift.donor_name, "anonymous": gift.anonymous,
                "voided": gift.voided_at is not None, "void_reason": gift.void_reason,
            } for gift in gifts]})

    @rpc
    def list_audit(self, actor: dict, query: dict | None = None) -> dict:
        """Who exported which drive's ledger (its donors' names), newest first (admins only)."""
        require_admin(load_actor(actor))
        query = load_or_raise(shared(AuditQuerySchema), query)
        statement = select(AuditEntry)
        if query["campaign_id"]:
            statement = statement.where(AuditEntry.campaign_id == query["campaign_id"])
        result = paginate(self.db.session, statement, query, AuditEntry.at, AuditEntry.id)
        return {"items": shared(AuditEntrySchema, many=True).dump(result["items"]),
                "next_cursor": result["next_cursor"]}

    @rpc
    def list_donations(self, campaign_id: str, paging: dict | None = None) -> dict:
        """Newest first; an anonymous donor's name was never kept."""
        paging = load_or_raise(shared(PageSchema), paging)
        self._campaign(campaign_id)
        query = select(Donation).where(Donation.campaign_id == campaign_id)
        result = paginate(self.db.session, query, paging, Donation.created_at, Donation.id)
        return {"items": shared(DonationListItemSchema, many=True).dump(result["items"]),
                "next_cursor": result["next_cursor"]}

    @rpc
    def get_donation(self, campaign_id: str, receipt_no: str) -> dict:
        """A receipt again, for the volunteer who reprints it."""
        donation = self.db.session.scalar(select(Donation).where(
            Donation.campaign_id == campaign_id, Donation.receipt_no == receipt_no))
        if donation is None:
            raise NotFound("No such receipt in this campaign.")
        return shared(DonationSchema).dump(donation)

    @rpc
    def get_receipt(self, receipt_no: str, query: dict | None = None) -> dict:
        """Public: anyone holding a receipt's number and code. A wrong code
        looks exactly like an unknown number."""
        code = load_or_raise(shared(ReceiptQuerySchema), query)["code"]
        donation = self.db.session.scalar(select(Donation).where(Donation.receipt_no == receipt_no)) \
            if isinstance(receipt_no, str) else None
        if donation is None or not hmac.compare_digest(donation.verification_code.encode(),
                                                       code.strip().upper().encode()):
            raise NotFound("No receipt has this number and code.")
        campaign = self.db.session.get(Campaign, donation.campaign_id)
        categories = {item.category for item in donation.items}
        # Goods are pooled: where goods of the gift's kinds went, but only once the gift was there.
        after = donation.created_at
        return {
            "receipt_no": donation.receipt_no,
            "campaign": {"id": campaign.id, "name": campaign.name},
            "kind": donation.kind,
            "amount_fen": donation.amount_fen,
            "items": [{"category": c, "quantity": q}
                      for c, q in domain.count_items([{"category": i.category, "quantity": i.quantity}
                                                      for i in donation.items]).items()],
            "received_at": isoformat(donation.created_at),
            "received_on": local_day(donation.created_at, self.config).isoformat(),
            "goods_sent": self._goods_sent(campaign.id, categories, after) if categories else [],
            "dispatches": self._dispatches([campaign.id], categories, after).get(campaign.id, [])
            if categories else [],
            "voided": donation.voided_at is not None,
            "voided_at": isoformat(donation.voided_at) if donation.voided_at else None,
        }

    def _goods_sent(self, campaign_id: str, categories: set[str], after: datetime) -> list[dict]:
        """Where the campaign sent goods of these categories after `after`, the
        gift's moment (goods are pooled: this is what became of the donor's
        kind of gift; what left before it was there cannot have been it)."""
        sent: dict[tuple[str, str], int] = {}
        rows = self.db.session.execute(
            select(DispatchItem.category, DispatchItem.quantity, Dispatch.destination, Dispatch.case_id)
            .join(Dispatch, Dispatch.id == DispatchItem.dispatch_id)
            .where(Dispatch.campaign_id == campaign_id, DispatchItem.category.in_(categories),
                   Dispatch.created_at > after)).all()
        for category, quantity, destination, case_id in rows:
            key = (category, CASE_DESTINATION if case_id else destination)
            sent[key] = sent.get(key, 0) + quantity
        return [{"category": c, "to": to, "quantity": q} for (c, to), q in sorted(sent.items())]

    # -- dispatches -----------------------------------------------------------------

    @rpc
    @idempotent
    def dispatch(self, campaign_id: str, payload: dict, actor: dict) -> dict:
        """Send goods out; never more than in stock, also when dispatches race."""
        actor = load_actor(actor)
        require_admin(actor)
        data = load_or_raise(shared(DispatchCreateSchema), payload)
        wanted = domain.count_items(data["items"])
        with self.db.unit_of_work() as uow:
            campaign = self._campaign(campaign_id, uow.session)
            self._require_goods(uow.session, data["items"], retired_ok=True)
            take_stock(uow.session, campaign.id, wanted)
            dispatch = Dispatch(campaign_id=campaign.id, destination=data["destination"], case_id=data["case_id"],
                                created_by=actor["id"], created_at=naive_utcnow(),
                                items=[DispatchItem(category=c, quantity=q) for c, q in wanted.items()])
            uow.session.add(dispatch)
            uow.session.flush()
            uow.emit(events.ITEMS_DISPATCHED, {
                "campaign_id": campaign.id, "dispatch_id": dispatch.id,
                "to": "case" if dispatch.case_id else "place", "case_id": dispatch.case_id,
                "items": [{"category": c, "quantity": q} for c, q in wanted.items()]})
            uow.commit()
        return shared(DispatchSchema).dump(dispatch)

    @rpc
    def list_dispatches(self, campaign_id: str, paging: dict | None = None) -> dict:
        paging = load_or_raise(shared(PageSchema), paging)
        self._campaign(campaign_id)
        query = select(Dispatch).where(Dispatch.campaign_id == campaign_id)
        result = paginate(self.db.session, query, paging, Dispatch.created_at, Dispatch.id)
        return {"items": shared(DispatchSchema, many=True).dump(result["items"]), "next_cursor": result["next_cursor"]}
