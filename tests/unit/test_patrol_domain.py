"""The rules of zones, teams, patrols and incidents, without a database or a broker."""
from datetime import datetime, timedelta

import pytest

from services.patrol.domain import (
    IncidentStatus, NotAllowed, RuleBroken, check_may_acknowledge, check_may_patrol, check_may_report,
    check_may_resolve, check_no_active_patrol, check_open, due_uncovered_alert,
    is_covered, may_read_free_text, normalise_names, team,
)

NOW = datetime(2026, 5, 12, 8, 0, 0)


# -- names and teams ------------------------------------------------------------------

def test_normalise_names_trims_keeps_each_once_in_the_order_given():
    assert normalise_names(["  Lotus Garden ", "Pine Court", "Lotus Garden", "", "   ", "Pine Court "]) == [
        "Lotus Garden", "Pine Court"]


def test_normalise_names_of_nothing_is_nothing():
    assert normalise_names([]) == []


def test_team_puts_the_leader_first_and_lists_everyone_once():
    assert team("lead", ["m1", "lead", "m2", "m1"]) == ["lead", "m1", "m2"]


def test_a_team_without_a_leader_is_its_members():
    assert team(None, ["m1", "m2"]) == ["m1", "m2"]
    assert team(None, []) == []


# -- who may do what -------------------------------------------------------------------

@pytest.mark.parametrize("actor", ["lead", "m1", "m2"])
def test_the_team_may_patrol_its_zone(actor):
    check_may_patrol(actor, "lead", ["m1", "m2"])  # no refusal


@pytest.mark.parametrize("leader, members", [("lead", ["m1"]), (None, []), (None, ["m1"])])
def test_an_outsider_may_not_patrol(leader, members):
    with pytest.raises(NotAllowed) as raised:
        check_may_patrol("outsider", leader, members)
    assert "team" in str(raised.value)


def test_no_active_patrol_is_fine_and_an_active_one_is_named():
    check_no_active_patrol(None)
    with pytest.raises(RuleBroken) as raised:
        check_no_active_patrol("patrol-7")
    assert "patrol-7" in str(raised.value)


def test_an_admin_may_report_anywhere():
    check_may_report("office", True, "lead", ["m1"])
    check_may_report("office", True, None, [])


@pytest.mark.parametrize("actor", ["lead", "m1"])
def test_the_team_may_report(actor):
    check_may_report(actor, False, "lead", ["m1"])


def test_an_outsider_may_not_report():
    with pytest.raises(NotAllowed):
        check_may_report("outsider", False, "lead", ["m1"])
    with pytest.raises(NotAllowed):
        check_may_report("outsider", False, None, [])


def test_the_leader_or_an_admin_acknowledges():
    check_may_acknowledge("lead", False, "lead")
    check_may_acknowledge("office", True, "lead")
    for actor in ("m1", "office"):
        with pytest.raises(NotAllowed):
            check_may_acknowledge(actor, False, "lead")


def test_only_an_admin_acknowledges_in_a_zone_without_a_leader():
    check_may_acknowledge("office", True, None)
    with pytest.raises(NotAllowed):
        check_may_acknowledge("m1", False, None)


def test_the_leader_or_an_admin_resolves():
    check_may_resolve("lead", False, "lead")
    check_may_resolve("office", True, "lead")
    check_may_resolve("office", True, None)
    with pytest.raises(NotAllowed):
        check_may_resolve("m1", False, "lead")
    with pytest.raises(NotAllowed):
        check_may_resolve("m1", False, None)


def test_check_open():
    check_open(IncidentStatus.OPEN)
    with pytest.raises(RuleBroken) as raised:
        check_open(IncidentStatus.RESOLVED)
    assert "resolved" in str(raised.value)


# -- coverage --------------------------------------------------------------------------

def test_a_zone_never_patrolled_is_not_covered():
    assert is_covered(None, NOW, 7) is False


def test_a_zone_is_covered_until_the_limit():
    assert is_covered(NOW - timedelta(days=1), NOW, 7) is True
    assert is_covered(NOW - timedelta(days=7) + timedelta(seconds=1), NOW, 7) is True
    assert is_covered(NOW - timedelta(days=7), NOW, 7) is False
    assert is_covered(NOW - timedelta(days=8), NOW, 7) is False


def test_a_new_zone_never_patrolled_raises_no_alert_before_the_limit():
    assert due_uncovered_alert(None, NOW - timedelta(days=6), None, NOW, 7) is False


def test_a_zone_never_patrolled_and_old_enough_raises_an_alert():
    assert due_uncovered_alert(None, NOW - timedelta(days=8), None, NOW, 7) is True
    assert due_uncovered_alert(None, NOW - timedelta(days=7), None, NOW, 7) is True


def test_a_recent_patrol_means_no_alert_however_old_the_zone():
    assert due_uncovered_alert(NOW - timedelta(days=2), NOW - timedelta(days=100), None, NOW, 7) is False


def test_one_alert_per_lapse():
    created = NOW - timedelta(days=30)
    last_patrol = NOW - timedelta(days=20)
    alerted = NOW - timedelta(days=12)  # for the lapse that began with that patrol
    assert due_uncovered_alert(last_patrol, created, alerted, NOW, 7) is False


def test_a_zone_never_patrolled_is_alerted_once():
    created = NOW - timedelta(days=30)
    alerted = NOW - timedelta(days=22)
    assert due_uncovered_alert(None, created, alerted, NOW, 7) is False


def test_a_new_patrol_after_the_alert_then_a_new_lapse_alerts_again():
    created = NOW - timedelta(days=30)
    alerted = NOW - timedelta(days=22)
    patrolled = NOW - timedelta(days=10)  # after the alert: the old lapse ended
    assert due_uncovered_alert(patrolled, created, alerted, NOW, 7) is True
    # ... but not while that new patrol is recent.
    assert due_uncovered_alert(patrolled, created, alerted, patrolled + timedelta(days=6), 7) is False


# -- who reads free text -----------------------------------------------------------------

@pytest.mark.parametrize("actor_id, admin, may", [
    ("lead", False, True),        # the zone's leader
    ("m1", False, True),          # a member of its team
    ("writer", False, True),      # whoever wrote it, in the team or not (now)
    ("office", True, True),       # the office
    ("west-lead", False, False),  # another zone's leader
    ("stranger", False, False),
])
def test_free_text_is_read_by_the_zones_team_its_writer_and_the_office(actor_id, admin, may):
    assert may_read_free_text(actor_id, admin, "writer", "lead", ["m1", "m2"]) is may


def test_free_text_of_a_zone_without_a_team_is_read_by_its_writer_and_the_office_only():
    assert not may_read_free_text("m1", False, "writer", None, [])
    assert may_read_free_text("writer", False, "writer", None, [])
    assert may_read_free_text("office", True, "writer", None, [])
