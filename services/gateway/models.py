"""The gateway's tables: accounts of members, admins and dashboard viewers,
and the audit of searches through them."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import naive_utcnow
from services.common.db import KernelTables, new_id
from services.contracts import EVENTS


class Base(DeclarativeBase):
    pass


kernel = KernelTables(Base.metadata, EVENTS)


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
    # A disabled account cannot log in, and its tokens are refused.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Carried in each token; raised to end every session (a password set, the account disabled).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LoginAttempts(Base):
    """Recent failed logins of one username from one client address (known
    name or not, so a delay tells nothing about which names exist). A login
    in progress counts as failed until it succeeds; a row goes once a login
    succeeds or the failures are old."""
    __tablename__ = "login_attempts"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(40), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    wait_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AddressWindow(Base):
    """How often one client address did something (`scope`: failed logins,
    receipt lookups) in the current fixed window of time."""
    __tablename__ = "address_windows"

    scope: Mapped[str] = mapped_column(String(20), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """A search of the accounts that returned personal data in bulk (names,
    phones): who, when, with which filters. Readable by admins (GET /audit?source=accounts)."""
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    actor_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    filters: Mapped[dict] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)


class Device(Base):
    """A screen the office set up (the wall at the office's door): it holds a
    signed token naming this row, good until `expires_at` unless revoked. The
    token itself is never stored; it reads the dashboard and the feed, nothing else."""
    __tablename__ = "devices"
    __table_args__ = (Index("ix_devices_created", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=naive_utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Written at most once a minute per gateway process (DeviceStates), not on every request.
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
