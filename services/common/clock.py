"""Time in Linli is UTC; databases store it naive (SQLite keeps no zone)."""
from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def naive_utcnow() -> datetime:
    return utcnow().replace(tzinfo=None)


def isoformat(moment: datetime) -> str:
    """2026-05-12T08:00:00.000123Z; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
