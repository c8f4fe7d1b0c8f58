"""The patrol service's tables."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.categories import CategoryColumns
from services.common.clock import naive_utcnow
from services.common.db import KernelTables, new_id
from services.contracts import EVENTS


class Base(DeclarativeBase):
    pass


kernel = KernelTables(Base.metadata, EVENTS)


class Category(CategoryColumns, Base):
    """The community's incident categories (services/categories.py)."""


class ZoneCompound(Base):
    """A compound belongs to one zone at most: its name is the key."""

    __tablename__ = "zone_compounds"

    compound: Mapped[str] = mapped_column(String(100), primary_key=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    position: Mapped[int] = mapped_column()


class Zone(Base):
    __tablename__ = "zones"
    __table_args__ = (Index("ix_zones_created", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    leader_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    member_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    last_patrol_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    uncovered_alerted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    compound_rows: Mapped[list[ZoneCompound]] = relationship(
        order_by=ZoneCompound.position, cascade="all, delete-orphan", lazy="selectin")

    @property
    def compounds(self) -> list[str]:
        return [row.compound for row in self.compound_rows]

    @property
    def team(self) -> dict:
        return {"leader_id": self.leader_id, "member_ids": list(self.member_ids or [])}


class Patrol(Base):
    __tablename__ = "patrols"
    __table_args__ = (
        Index("ix_patrols_started", "started_at", "id"),
        # One patrol at a time per member, enforced by the database too.
        Index("ux_patrols_one_active", "member_id", unique=True,
              sqlite_where=text("finished_at IS NULL"), postgresql_where=text("finished_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What the patrol counts as service, fixed when it ends (at most the cap then in force) or
    # when the office corrects it: a later change of the cap does not rewrite past months.
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Never finished by its member: the sweep closed it at started_at + the cap. The flag is
    # the note (the pages word it); the member's notes stay theirs alone.
    closed_automatically: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    corrected_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    correction_reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # free text: never in events


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_reported", "reported_at", "id"),
        Index("ix_incidents_open", "status", "acked_at", "escalated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"), index=True)
    compound: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    reported_by: Mapped[str] = mapped_column(String(32))
    patrol_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reported_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    acked_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditEntry(Base):
    """Who read an incident's description or a patrol's notes in full, and
    when: ids only, never the text. Readable by admins."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at", "id"), Index("ix_audit_incident", "incident_id", "at"),
                      Index("ix_audit_patrol", "patrol_id", "at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    actor_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    incident_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    patrol_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
