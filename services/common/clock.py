"""Time in Linli is UTC; databases store it naive (SQLite keeps no zone)."""
import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from services.common.errors import InvalidInput

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def naive_utcnow() -> datetime:
    return utcnow().replace(tzinfo=None)


def isoformat(moment: datetime) -> str:
    """2026-05-12T08:00:00.000123Z; a naive time is taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"  # a third of strftime's cost, on every event


def community_zone(config) -> ZoneInfo:
    """The community's time zone, in which its days and months are counted:
    LOCAL_TIMEZONE of a service's config, whose default (LINLI_TIMEZONE, else
    Asia/Shanghai) deploy/config/<service>.yml states, and nothing else."""
    return ZoneInfo(config["LOCAL_TIMEZONE"])


def local_today(config) -> date:
    """Today in the community's calendar, not UTC's (before 08:00 in Shanghai,
    UTC's day is still yesterday). `config`: a service's, or ops' (config.load)."""
    return datetime.now(community_zone(config)).date()


def local_day(moment: datetime, config) -> date:
    """The community's calendar day of a stored (naive UTC) moment. `config`: as local_today's."""
    return moment.replace(tzinfo=timezone.utc).astimezone(community_zone(config)).date()


def month_days(month) -> tuple[date, date]:
    """A month ("2026-11") as its first day and the first day of the next. Anything
    but a month of the years 2000 to 9998 is an InvalidInput naming `month`: the one
    home of what a month is, for every service's monthly summary."""
    found = _MONTH.fullmatch(month) if isinstance(month, str) else None
    if found is None or not 2000 <= int(found[1]) <= 9998 or not 1 <= int(found[2]) <= 12:
        raise InvalidInput("A month is YYYY-MM, e.g. 2026-11.", {"fields": {"month": ["A month as YYYY-MM."]}})
    year, number = int(found[1]), int(found[2])
    return date(year, number, 1), date(year + number // 12, number % 12 + 1, 1)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(month, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A community's month ("2026-11" in `zone`, its LOCAL_TIMEZONE) as naive
    UTC bounds [start, end) for queries on stored times (see month_days)."""
    return tuple(datetime.combine(day, datetime.min.time(), zone).astimezone(timezone.utc).replace(tzinfo=None)
                 for day in month_days(month))
