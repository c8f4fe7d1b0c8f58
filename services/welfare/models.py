"""The welfare service's tables."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.categories import CategoryColumns
from services.common.clock import naive_utcnow
from services.common.db import KernelTables, new_id
from services.contracts import EVENTS


class Base(DeclarativeBase):
    pass


kernel = KernelTables(Base.metadata, EVENTS)


class Category(CategoryColumns, Base):
    """The community's case categories (services/categories.py)."""


class Person(Base):
    __tablename__ = "people"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    relation: Mapped[str] = mapped_column(String(40))
    birth_year: Mapped[int] = mapped_column(Integer)
    conditions: Mapped[list] = mapped_column(JSON, default=list)


class Household(Base):
    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    compound: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)  # whom the office calls there
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    # Set when its last case was erased: address, phone, names and conditions are gone.
    erased_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    people: Mapped[list[Person]] = relationship(
        order_by=Person.position, cascade="all, delete-orphan", lazy="selectin")
    consents: Mapped[list["Consent"]] = relationship(order_by="Consent.recorded_at", lazy="selectin")


class Consent(Base):
    """A person of a household consented to a purpose, or withdrew it: every
    answer is a row of its own (the history), the latest per person and
    purpose is the one that holds."""

    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), index=True)
    person_position: Mapped[int] = mapped_column(Integer)
    person_name: Mapped[str] = mapped_column(String(100))  # as the household held it then
    purpose: Mapped[str] = mapped_column(String(40))
    given: Mapped[bool] = mapped_column(Boolean)
    given_on: Mapped[date] = mapped_column(Date)  # the day the person said so
    recorded_by: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class Assistance(Base):
    """Goods a donation drive sent to a case (from donations' items_dispatched)."""

    __tablename__ = "case_assistance"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    campaign_id: Mapped[str] = mapped_column(String(32))
    dispatch_id: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_opened", "opened_at", "id"),
        Index("ix_cases_assignee_opened", "assignee_id", "opened_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # A draft (found on patrol) has a compound but no household or assignee until confirmed.
    household_id: Mapped[str | None] = mapped_column(ForeignKey("households.id"), index=True, nullable=True)
    compound: Mapped[str | None] = mapped_column(String(100), nullable=True)
    categories: Mapped[list] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text)
    assignee_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    source_incident_id: Mapped[str | None] = mapped_column(String(32), nullable=True, unique=True)
    opened_by: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    outcome_kind: Mapped[str | None] = mapped_column(String(20), nullable=True)  # domain.OUTCOME_KINDS
    # Its personal details were erased after the retention period (domain.CASE_TEXTS), by whom and why.
    erased_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    erased_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    erase_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_visit_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Since when the case has gone unvisited (its last visit's day, or its opening),
    # and the lapse a follow-up alert was raised for: one alert per lapse.
    lapse_started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    followup_alerted_for: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    household: Mapped[Household | None] = relationship(lazy="joined")
    assistance: Mapped[list[Assistance]] = relationship(order_by=Assistance.received_at, lazy="selectin")
    visits: Mapped[list["Visit"]] = relationship(order_by="Visit.visited_on", lazy="selectin")
    referrals: Mapped[list["Referral"]] = relationship(order_by="Referral.submitted_at", lazy="selectin")
    reopenings: Mapped[list["Reopening"]] = relationship(order_by="Reopening.reopened_at", lazy="selectin")


class Reopening(Base):
    """A closed case taken up again: why, by whom, and the closing it undid
    (the case's own outcome and closing time are cleared, so they are kept here)."""

    __tablename__ = "case_reopenings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    reopened_by: Mapped[str] = mapped_column(String(32))
    reopened_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    previous_outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    previous_closed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)


class Visit(Base):
    __tablename__ = "visits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    visited_on: Mapped[date] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text)
    logged_by: Mapped[str] = mapped_column(String(32))
    logged_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class Referral(Base):
    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    agency: Mapped[str] = mapped_column(String(200))
    benefit: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    submitted_by: Mapped[str] = mapped_column(String(32))
    submitted_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The agency's stages so far, [{"stage": "documents_checked", "on": "2026-05-20"}], and its deadline.
    stages: Mapped[list] = mapped_column(JSON, default=list)
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    overdue_alerted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AuditEntry(Base):
    """Who read a case's personal details, and when: readable by admins."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at", "id"), Index("ix_audit_case", "case_id", "at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    actor_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    household_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
