"""The volunteers service's tables."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import naive_utcnow
from services.common.db import KernelTables, new_id
from services.contracts import EVENTS


class Base(DeclarativeBase):
    pass


kernel = KernelTables(Base.metadata, EVENTS)


class Group(Base):
    """An activity group: its kind, its leader (a party member) and helpers."""

    __tablename__ = "groups"
    __table_args__ = (Index("ix_groups_created", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    leader_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    helper_ids: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class GroupSession(Base):
    """A rehearsal, practice, performance or match: how many residents took
    part is a count, never who."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_created", "created_at", "id"), Index("ix_sessions_held", "held_on"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), index=True)
    held_on: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[str] = mapped_column(String(5))  # HH:MM, the community's time
    duration_minutes: Mapped[int] = mapped_column(Integer)
    place: Mapped[str] = mapped_column(String(200))
    what: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    participants: Mapped[int] = mapped_column(Integer)
    leader_id: Mapped[str] = mapped_column(String(32))
    helper_ids: Mapped[list] = mapped_column(JSON, default=list)
    recorded_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class ServiceRecord(Base):
    """Minutes of a member's service on a day. One per (source, source_id,
    member_id): a patrol or a session counts once for each member, however
    often its event arrives or however many instances handle it at once
    (other service has no source_id, and NULLs never collide)."""

    __tablename__ = "service_records"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "member_id", name="ux_service_once"),
        Index("ix_service_recorded", "recorded_at", "id"),
        Index("ix_service_member_day", "member_id", "served_on"),
        Index("ix_service_day", "served_on"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(String(32))
    served_on: Mapped[date] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(10))
    source_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    role: Mapped[str | None] = mapped_column(String(10), nullable=True)
    what: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by: Mapped[str | None] = mapped_column(String(32), nullable=True)  # null: counted from an event
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
