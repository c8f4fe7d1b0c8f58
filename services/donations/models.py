"""The donations service's tables. Totals are running aggregates, updated in
the same transaction as each donation or dispatch: reading a campaign never
scans its donations."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint, false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.categories import CategoryColumns
from services.common.clock import naive_utcnow
from services.common.db import KernelTables, new_id
from services.contracts import EVENTS


class Base(DeclarativeBase):
    pass


# No sequence of valid requests overflows a counter here (PostgreSQL's INTEGER
# stops at 2^31 - 1, about 2.1 x 10^9; BIGINT at 2^63 - 1, about 9.2 x 10^18):
# - cash_fen and each category's `received` stay at most MAX_CAMPAIGN_TOTAL
#   (10^15), checked in the very UPDATE that adds a gift; `dispatched` never
#   passes `received`. BIGINT.
# - donation_count, last_receipt_seq and a donation's seq grow by one per gift:
#   BIGINT takes 9.2 x 10^18 gifts, 292,000 years at a million a second.
# - goal_fen and amount_fen are at most MAX_AMOUNT_FEN (10^10): BIGINT.
# - a donation line's quantity is at most MAX_ITEM_QUANTITY (10^5), a dispatch's
#   quantity of one category at most MAX_ITEM_LINES x MAX_ITEM_QUANTITY
#   (5 x 10^6), and so the welfare service's assistance rows too: INTEGER.


kernel = KernelTables(Base.metadata, EVENTS)


class Category(CategoryColumns, Base):
    """The community's goods categories (services/categories.py)."""


class Stock(Base):
    """Goods of one category in one campaign: received and dispatched so far."""

    __tablename__ = "stock"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    dispatched: Mapped[int] = mapped_column(BigInteger, default=0)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_created", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(12), unique=True)  # the receipt numbers' prefix
    name: Mapped[str] = mapped_column(String(200))
    goal_fen: Mapped[int] = mapped_column(BigInteger)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    cash_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    donation_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_receipt_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    goal_reached_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # A drive opened to try Linli out (a training, a check after an upgrade): the wall shows it
    # apart from the running drives, the public page leaves it out.
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    stock: Mapped[list[Stock]] = relationship(order_by=Stock.category, lazy="selectin")


class DonationItem(Base):
    __tablename__ = "donation_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    donation_id: Mapped[str] = mapped_column(ForeignKey("donations.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Donation(Base):
    __tablename__ = "donations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "seq", name="uq_donations_gap_free_seq"),
        Index("ix_donations_campaign_created", "campaign_id", "created_at", "id"),
        Index("ix_donations_created", "created_at"),  # a month's gifts, across drives (monthly_summary)
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    receipt_no: Mapped[str] = mapped_column(String(24), unique=True)
    verification_code: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(10))
    amount_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    donor_name: Mapped[str | None] = mapped_column(String(100), nullable=True)  # never kept if anonymous
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    # A gift recorded in error (a typo, a bounced transfer) is voided, never deleted: its
    # receipt keeps its number (the sequence stays gap-free) and says it was voided.
    voided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    voided_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    void_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    items: Mapped[list[DonationItem]] = relationship(order_by=DonationItem.position, lazy="selectin")


class DispatchItem(Base):
    __tablename__ = "dispatch_items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dispatch_id: Mapped[str] = mapped_column(ForeignKey("dispatches.id"), index=True)
    category: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)


class Dispatch(Base):
    __tablename__ = "dispatches"
    __table_args__ = (Index("ix_dispatches_campaign_created", "campaign_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    destination: Mapped[str | None] = mapped_column(String(200), nullable=True)
    case_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    items: Mapped[list[DispatchItem]] = relationship(lazy="selectin")


class AuditEntry(Base):
    """Who read a drive's donors' names in bulk (the ledger export), and when:
    ids only, never a name. Readable by admins."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at", "id"), Index("ix_audit_campaign", "campaign_id", "at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    actor_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    campaign_id: Mapped[str] = mapped_column(String(32))
    rows: Mapped[int] = mapped_column(BigInteger)  # how many gifts the read showed
    at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
