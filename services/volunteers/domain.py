"""Rules of activity groups, their sessions and volunteer service hours. Standard library only."""
from __future__ import annotations

from datetime import date, datetime, timezone, tzinfo

from services.common.rules import NotAllowed, RuleBroken


class BadHelpers(ValueError):
    """Helpers named for a session who are not the group's helpers: a 400 naming helper_ids."""

    def __init__(self, unknown: list[str]):
        super().__init__("Not every helper is one of the group's helpers.")
        self.unknown = unknown


class Source:
    PATROL = "patrol"
    SESSION = "session"
    OTHER = "other"


class Role:
    PATROL = "patrol"
    LEADER = "leader"
    HELPER = "helper"


MEMBER_ROLES = ("member", "admin")  # a viewer (a dashboard screen) helps no group


class BadPeople(ValueError):
    """A group's leader or helpers who may not be; a 400 naming `field`, with a message per id."""

    def __init__(self, message: str, field: str, messages: list[str]):
        super().__init__(message)
        self.field = field
        self.messages = messages


def check_group_people(leader_id: str | None, helper_ids: list[str], accounts: dict[str, dict]) -> None:
    """A group's leader is an active party member, each helper an active
    member (or admin). `accounts`: the ones the gateway holds under these ids,
    vouched for within the same call ({id: {"party_member", "active",
    "roles"}}); an id without one is nobody's."""
    if leader_id is not None:
        leader = accounts.get(leader_id)
        if leader is None or not leader["party_member"] or not leader["active"]:
            message = "No active party member has this id."
            raise BadPeople(message, "leader_id", [message])
    unknown = [helper for helper in helper_ids if not _active_member(accounts.get(helper))]
    if unknown:
        raise BadPeople("Not every helper is an active member.", "helper_ids",
                        [f"No active member has the id {helper}." for helper in unknown])


def _active_member(account: dict | None) -> bool:
    return account is not None and account["active"] and bool(set(account["roles"]) & set(MEMBER_ROLES))


def helpers_of(leader_id: str | None, helper_ids: list[str]) -> list[str]:
    """Each helper once, in the order given, the leader left out (a leader is not their own helper)."""
    seen: list[str] = []
    for helper in helper_ids:
        if helper and helper != leader_id and helper not in seen:
            seen.append(helper)
    return seen


def check_may_record_session(actor_id: str, actor_is_admin: bool, leader_id: str | None):
    """The office, or the group's own leader, records its sessions."""
    if not actor_is_admin and (leader_id is None or actor_id != leader_id):
        raise NotAllowed("Only the group's leader (or the office) records its sessions.")


def check_session(group_active: bool, leader_id: str | None, present: list[str], group_helpers: list[str]):
    """A session is held by an active group under its leader, with helpers
    from the group's own. Raises RuleBroken (no leader, inactive) or BadHelpers."""
    if not group_active:
        raise RuleBroken("The group is inactive: it holds no sessions.")
    if leader_id is None:
        raise RuleBroken("A session needs its leader: give the group a leader first.")
    unknown = [helper for helper in present if helper not in group_helpers]
    if unknown:
        raise BadHelpers(unknown)


def check_not_after_today(day: date, today: date):
    """A session held, or service served, is in the past or today: never in the community's tomorrow."""
    if day > today:
        raise ValueError(f"Not after today ({today.isoformat()}).")


def _moment(text: str) -> datetime:
    """An event's ISO 8601 time as an aware UTC datetime (no zone: UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def patrol_minutes(started_at: str, finished_at: str, duration_minutes: int | None) -> int:
    """What a finished patrol counts: the producer's (capped) duration when it
    sends one, else whole minutes between start and finish; never negative."""
    if duration_minutes is not None:
        return max(0, int(duration_minutes))
    seconds = (_moment(finished_at) - _moment(started_at)).total_seconds()
    return max(0, int(seconds // 60))


def local_date(moment: str, zone: tzinfo) -> date:
    """The community's date of an event's time (a patrol at 23:30 UTC is the next day in Shanghai)."""
    return _moment(moment).astimezone(zone).date()


def months_of_year(year: int) -> list[str]:
    return [f"{year:04d}-{number:02d}" for number in range(1, 13)]
