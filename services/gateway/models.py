"""The gateway's tables: accounts of members, admins and dashboard viewers."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import naive_utcnow
from services.common.db import KernelTables, new_id


class Base(DeclarativeBase):
    pass


kernel = KernelTables(Base.metadata)


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (Index("ix_accounts_created", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    roles: Mapped[list] = mapped_column(JSON)
    party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    compound: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class FailedLogins(Base):
    """Recent failed logins per username (known or not, so a lock tells
    nothing about which names exist); a row goes once a login succeeds or
    the failures are old."""
    __tablename__ = "failed_logins"

    username: Mapped[str] = mapped_column(String(40), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
