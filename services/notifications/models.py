"""The notifications service's tables."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import naive_utcnow
from services.common.db import KernelTables, new_id
from services.contracts import EVENTS


class Base(DeclarativeBase):
    pass


kernel = KernelTables(Base.metadata, EVENTS)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_member_created", "member_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    member_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    # In words, Chinese first (services/notifications/domain.py): inside Linli only, never in a webhook or a log.
    message: Mapped[str] = mapped_column(String(1000))
    compound: Mapped[str | None] = mapped_column(String(100), nullable=True)  # where, when the event says
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


class Webhook(Base):
    """Where a member's alerts also go (an SMS or chat gateway), and the
    secret their bodies are signed with."""

    __tablename__ = "webhooks"

    member_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    # Per alert kind, whether it goes to the webhook too: {"case_assigned": false}; unlisted: yes.
    kinds: Mapped[dict] = mapped_column(JSON, default=dict)
    quiet_start: Mapped[str | None] = mapped_column(String(5), nullable=True)  # "22:00", local time
    quiet_end: Mapped[str | None] = mapped_column(String(5), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class WebhookDelivery(Base):
    """One alert to one webhook: written with the alert, sent by the delivery
    timer, retried with back-off until the receiver takes it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    alert_id: Mapped[str] = mapped_column(String(32), index=True)
    member_id: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))           # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
