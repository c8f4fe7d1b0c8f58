"""The notifications service's tables."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import naive_utcnow
from services.common.db import KernelTables


class Base(DeclarativeBase):
    pass


kernel = KernelTables(Base.metadata)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_member_created", "member_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: uuid.uuid4().hex)
    member_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(String(300))
    ref_type: Mapped[str] = mapped_column(String(40))
    ref_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def ref(self) -> dict:
        return {"type": self.ref_type, "id": self.ref_id}


class Member(Base):
    """Who is an admin, learnt from the gateway's member_registered events:
    some alerts go to every admin."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
