"""Case openings and incident reports in the group commit
(services/common/groupcommit.py), with the real welfare service's open_case
and patrol service's report_incident on a real database file (or PostgreSQL
under `make test-postgres`): those made at once share commits, each is
written with the one event its alert is made from (the case's party member,
the zone's leader), and one refused (no such household, an assignee who may
not take cases; no such zone, a reporter outside the zone's team) fails alone
and leaves nothing behind. A case's event goes out before any its opener
causes next."""
from __future__ import annotations

import json
from datetime import date
import uuid

import eventlet
import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select

from services.common.errors import Forbidden, InvalidInput
from services.common.outbox import Relay
from services.contracts import patrol as patrol_events
from services.contracts import welfare as events
from services.patrol.models import Incident
from services.patrol.models import kernel as patrol_kernel
from services.patrol.service import PatrolService
from services.welfare.models import Case, kernel
from services.welfare.service import WelfareService
from tests.unit.test_group_commit import PublishedAtOnce, grouped_process
from tests.unit.test_outbox_relay import RecordingPublisher
from tests.unit.test_patrol_service import DESCRIPTION, M1, M2, NORTH, OUTSIDER, make_zone
from tests.unit.test_welfare_lifecycle import ADMIN, HOUSEHOLD, MEMBER_A, NOTES, SUMMARY, party_member

pytestmark = pytest.mark.database


@pytest.fixture
def process(tmp_path):
    """One welfare process's Database provider, with its group commit."""
    yield from grouped_process(tmp_path, "welfare", kernel, lambda _provider: PublishedAtOnce())


@pytest.fixture
def publishing_process(tmp_path):
    """The same, with the real outbox relay in front of a publisher that records the order of what it publishes."""
    def relay(provider):
        real = Relay(provider.engine, kernel, "welfare", provider.container.config)
        real.publisher, real._topology_declared = RecordingPublisher(), True
        return real
    yield from grouped_process(tmp_path, "welfare", kernel, relay)


@pytest.fixture
def patrol_process(tmp_path):
    """One patrol process's Database provider, with its group commit."""
    yield from grouped_process(tmp_path, "patrol", patrol_kernel, lambda _provider: PublishedAtOnce())


def worker(process, cls=WelfareService):
    return worker_factory(cls, db=process.get_dependency(object()), config=process.container.config)


def open_at_once(process, openings):
    """Each (household id, assignee id, the assignee's account) from a worker of its own, all at once."""
    def one(opening):
        household_id, assignee_id, account = opening
        try:
            return worker(process).open_case({"household_id": household_id, "categories": ["disability"],
                                              "summary": SUMMARY, "assignee_id": assignee_id}, ADMIN, account,
                                             idempotency_key=uuid.uuid4().hex)
        except Exception as exc:
            return exc
    return list(eventlet.GreenPool().imap(one, openings))


def alerts(process, event_type=events.CASE_OPENED) -> list[dict]:
    """The events in the outbox that alerts are made from (the case's party member's, the zone leader's)."""
    outbox = process.kernel.outbox
    with process.engine.connect() as connection:
        rows = connection.execute(select(outbox.c.envelope).where(outbox.c.event_type == event_type)).all()
    return [json.loads(row.envelope)["data"] for row in rows]


def test_case_openings_at_once_share_commits_and_each_alerts_its_own_party_member(process):
    household_id = worker(process).create_household(HOUSEHOLD, ADMIN)["id"]
    members = [f"member-{n}" for n in range(20)]
    answers = open_at_once(process, [(household_id, member, party_member(member)) for member in members])
    assert all(isinstance(answer, dict) for answer in answers), answers
    assert [answer["assignee_id"] for answer in answers] == members
    group = process.group()
    print(f"\n20 case openings in {group.batches} batches")
    assert group.calls == 20 and group.batches < 10
    eventlet.sleep(0.5)
    assert len(process.commits) <= group.batches + 1  # one per batch (and the last one's marks)
    told = {alert["case_id"]: alert["assignee_id"] for alert in alerts(process)}
    assert told == {answer["id"]: answer["assignee_id"] for answer in answers}
    assert len(process.relay.published) == 20


def test_a_refused_case_opening_fails_alone_and_leaves_no_case_and_no_alert(process):
    household_id = worker(process).create_household(HOUSEHOLD, ADMIN)["id"]
    not_a_party_member = {"id": "member-x", "party_member": False, "active": True}
    answers = open_at_once(process, [
        (household_id, "member-a", party_member("member-a")),
        (uuid.uuid4().hex, "member-b", party_member("member-b")),       # no such household
        (household_id, "member-x", not_a_party_member),                  # may not take cases
        (household_id, "member-c", party_member("member-c")),
    ])
    assert isinstance(answers[0], dict) and isinstance(answers[3], dict)
    assert isinstance(answers[1], InvalidInput) and "household_id" in answers[1].details["fields"]
    assert isinstance(answers[2], InvalidInput) and "assignee_id" in answers[2].details["fields"]
    assert process.group().batches == 1
    with process.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Case)).scalar() == 2
    assert sorted(alert["assignee_id"] for alert in alerts(process)) == ["member-a", "member-c"]


def test_a_case_opened_in_a_batch_has_its_event_out_before_the_visit_logged_next(publishing_process):
    # The batch's callers are answered while its events are being published: a caller's next
    # write must not have its event out first (a visit to a case no consumer has heard of).
    process = publishing_process
    household_id = worker(process).create_household(HOUSEHOLD, ADMIN)["id"]
    case = worker(process).open_case({"household_id": household_id, "categories": ["disability"],
                                      "summary": SUMMARY, "assignee_id": MEMBER_A["id"]}, ADMIN,
                                     party_member(MEMBER_A["id"]))
    worker(process).log_visit(case["id"], {"visited_on": date.today().isoformat(), "notes": NOTES}, MEMBER_A)
    outbox = kernel.outbox
    with process.engine.connect() as connection:
        written = dict(connection.execute(select(outbox.c.id, outbox.c.event_type)).all())
    published = [written[event_id] for event_id in process.relay.publisher.published]
    assert published[-2:] == [events.CASE_OPENED, events.VISIT_LOGGED]


def report_at_once(process, reports):
    """Each (reporter, zone id) from a worker of its own, all at once: (answer or error) each."""
    def one(report):
        actor, zone_id = report
        try:
            return worker(process, PatrolService).report_incident(
                {"zone_id": zone_id, "compound": NORTH[0], "category": "fire_hazard",
                 "description": DESCRIPTION, "severity": "high"}, actor, idempotency_key=uuid.uuid4().hex)
        except Exception as exc:
            return exc
    return list(eventlet.GreenPool().imap(one, reports))


def test_incident_reports_at_once_share_commits_and_each_alerts_the_zones_leader(patrol_process):
    process = patrol_process
    members = [f"m{n}" for n in range(12)]
    zone = make_zone(lambda: worker(process, PatrolService), members=members)
    answers = report_at_once(process, [({"id": member, "roles": ["member"]}, zone["id"]) for member in members])
    assert all(isinstance(answer, dict) for answer in answers), answers
    assert [answer["reported_by"] for answer in answers] == members
    group = process.group()
    assert group.calls == 12 and group.batches < 6
    told = {alert["incident_id"]: alert["leader_id"] for alert in alerts(process, patrol_events.INCIDENT_REPORTED)}
    assert told == {answer["id"]: "lead" for answer in answers}


def test_a_refused_incident_report_fails_alone_and_leaves_no_incident_and_no_alert(patrol_process):
    process = patrol_process
    zone = make_zone(lambda: worker(process, PatrolService))
    answers = report_at_once(process, [(M1, zone["id"]), (M1, uuid.uuid4().hex), (OUTSIDER, zone["id"]),
                                       (M2, zone["id"])])
    assert isinstance(answers[0], dict) and isinstance(answers[3], dict)
    assert isinstance(answers[1], InvalidInput) and "zone_id" in answers[1].details["fields"]
    assert isinstance(answers[2], Forbidden)
    assert process.group().batches == 1
    with process.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Incident)).scalar() == 2
    assert sorted(alert["incident_id"] for alert in alerts(process, patrol_events.INCIDENT_REPORTED)) == sorted(
        answer["id"] for answer in (answers[0], answers[3]))
