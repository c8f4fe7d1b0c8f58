"""Rules of zones, teams, patrols and incidents. Standard library only."""
from __future__ import annotations

from datetime import datetime, timedelta

from services.common.rules import NotAllowed, RuleBroken


class IncidentStatus:
    OPEN = "open"
    RESOLVED = "resolved"


def normalise_names(names: list[str]) -> list[str]:
    """Trimmed, each once, in the order given."""
    seen: list[str] = []
    for name in (n.strip() for n in names):
        if name and name not in seen:
            seen.append(name)
    return seen


def team(leader_id: str | None, member_ids: list[str]) -> list[str]:
    """Everyone in a zone's team, the leader first."""
    return normalise_names(([leader_id] if leader_id else []) + list(member_ids))


def check_may_patrol(actor_id: str, leader_id: str | None, member_ids: list[str]):
    if actor_id not in team(leader_id, member_ids):
        raise NotAllowed("Only the zone's team patrols it.")


def check_no_active_patrol(active_patrol_id: str | None):
    if active_patrol_id is not None:
        raise RuleBroken(f"You are on patrol already ({active_patrol_id}): finish it first.")


def check_may_report(actor_id: str, actor_is_admin: bool, leader_id: str | None, member_ids: list[str]):
    """The zone's team reports what it finds; the office may report anywhere."""
    if not actor_is_admin and actor_id not in team(leader_id, member_ids):
        raise NotAllowed("Only the zone's team (or the office) reports incidents in it.")


def may_read_free_text(actor_id: str, actor_is_admin: bool, author_id: str,
                       leader_id: str | None, member_ids: list[str]) -> bool:
    """Whether the caller sees an incident's description and resolution, or a
    patrol's notes, in full: people write names, phones, rooms and illnesses
    there, so only the zone's team, whoever wrote it and the office read them;
    everyone else gets the record without them."""
    return actor_is_admin or actor_id == author_id or actor_id in team(leader_id, member_ids)


def check_may_acknowledge(actor_id: str, actor_is_admin: bool, leader_id: str | None):
    """The zone's leader acknowledges; the office may, for a leader who is away
    or a zone without one (the incident then no longer escalates)."""
    if not actor_is_admin and actor_id != leader_id:
        raise NotAllowed("Only the zone's leader (or the office) acknowledges its incidents.")


def check_may_resolve(actor_id: str, actor_is_admin: bool, leader_id: str | None):
    if not actor_is_admin and actor_id != leader_id:
        raise NotAllowed("Only the zone's leader (or the office) resolves its incidents.")


def check_open(status: str):
    if status != IncidentStatus.OPEN:
        raise RuleBroken(f"The incident is {status} already.")


def is_covered(last_patrol_at: datetime | None, now: datetime, days: float) -> bool:
    return last_patrol_at is not None and now - last_patrol_at < timedelta(days=days)


def due_uncovered_alert(last_patrol_at: datetime | None, created_at: datetime,
                        alerted_at: datetime | None, now: datetime, days: float) -> bool:
    """A zone unpatrolled for `days` raises one alert per lapse: a lapse starts
    at its last patrol (or its creation) and ends with the next patrol."""
    lapse_started = last_patrol_at or created_at
    if now - lapse_started < timedelta(days=days):
        return False
    return alerted_at is None or alerted_at < lapse_started


# -- forgotten patrols ----------------------------------------------------------------

MAX_CORRECTED_HOURS = 24


def cap_hours(configured) -> float:
    """The cap in force: PATROL_CAP_HOURS (deploy/config/patrol.yml holds its default),
    more than 0 and at most MAX_CORRECTED_HOURS."""
    hours = float(configured)
    if not 0 < hours <= MAX_CORRECTED_HOURS:
        raise ValueError(f"PATROL_CAP_HOURS must be more than 0 and at most {MAX_CORRECTED_HOURS}, not {configured}.")
    return hours


def minutes_counted(started_at: datetime, finished_at: datetime, cap: float | None) -> int:
    """What a patrol counts as service: its whole minutes, at most `cap` hours
    (None: no cap, for times the office set right)."""
    seconds = max(0.0, (finished_at - started_at).total_seconds())
    if cap is not None:
        seconds = min(seconds, cap * 3600)
    return int(seconds // 60)


def forgotten_before(now: datetime, cap: float) -> datetime:
    """An unfinished patrol started before this moment is forgotten: the sweep
    closes it at its start + the cap."""
    return now - timedelta(hours=cap)


def closed_at(started_at: datetime, cap: float) -> datetime:
    """When a forgotten patrol counts as finished."""
    return started_at + timedelta(hours=cap)


def check_unfinished(finished_at: datetime | None, closed_automatically: bool, cap: float):
    if finished_at is not None and closed_automatically:
        raise RuleBroken(f"This patrol was closed automatically: it was not finished within {cap:g} hours. "
                         "The office can correct its times; you may start a new patrol.")
    if finished_at is not None:
        raise RuleBroken("This patrol is finished already.")


def correction_problems(started_at: datetime, finished_at: datetime, now: datetime) -> dict[str, list[str]]:
    """Why the office's times for a patrol cannot stand, field by field (empty:
    they can): finished after started, at most MAX_CORRECTED_HOURS, neither in the future."""
    problems: dict[str, list[str]] = {}
    for field, moment in (("started_at", started_at), ("finished_at", finished_at)):
        if moment > now:
            problems.setdefault(field, []).append("Not in the future.")
    if finished_at <= started_at:
        problems.setdefault("finished_at", []).append("After started_at.")
    elif finished_at - started_at > timedelta(hours=MAX_CORRECTED_HOURS):
        problems.setdefault("finished_at", []).append(f"At most {MAX_CORRECTED_HOURS} hours after started_at.")
    return problems
