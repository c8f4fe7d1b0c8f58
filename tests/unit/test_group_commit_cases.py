"""Case openings in the group commit (services/common/groupcommit.py), with the
real welfare service's open_case on a real database file (or PostgreSQL under
`make test-postgres`): openings made at once share commits, each case is
written with the one alert event its party member is told by, and an opening
refused (no such household, an assignee who may not take cases) fails alone
and leaves no case and no alert behind. The case's event goes out before
any its opener causes next."""
from __future__ import annotations

import json
import time
from datetime import date
import uuid
from types import SimpleNamespace

import eventlet
import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import event, func, select

from services.common import config as linli_config
from services.common import migrations
from services.common.db import Database
from services.common.errors import InvalidInput
from services.common.outbox import Relay
from services.contracts import welfare as events
from services.welfare.models import Case, kernel
from services.welfare.service import WelfareService
from tests import databases
from tests.unit.test_group_commit import PublishedAtOnce
from tests.unit.test_outbox_relay import RecordingPublisher
from tests.unit.test_welfare_lifecycle import ADMIN, HOUSEHOLD, MEMBER_A, NOTES, SUMMARY, party_member

pytestmark = pytest.mark.database


@pytest.fixture
def process(tmp_path):
    """One welfare process's Database provider, with its group commit."""
    yield from welfare_process(tmp_path, lambda _provider: PublishedAtOnce())


@pytest.fixture
def publishing_process(tmp_path):
    """The same, with the real outbox relay in front of a publisher that records the order of what it publishes."""
    def relay(provider):
        real = Relay(provider.engine, kernel, "welfare", provider.container.config)
        real.publisher, real._topology_declared = RecordingPublisher(), True
        return real
    yield from welfare_process(tmp_path, relay)


def welfare_process(tmp_path, relay):
    url = databases.database_url(tmp_path, "welfare")
    migrations.upgrade("welfare", url)
    config = {**linli_config.load("welfare"), "DB_URL": url, "GROUP_COMMIT_GATHER_MS": 5}
    provider = Database(kernel)
    provider.container = SimpleNamespace(config=config, service_name="welfare")
    provider.setup()
    provider.relay = relay(provider)
    provider.commits = []
    event.listen(provider.group().engine, "commit", lambda _connection: provider.commits.append(time.monotonic()))
    yield provider
    for worker_ctx in list(provider._workers):
        provider.worker_teardown(worker_ctx)
    provider.stop()


def worker(process):
    return worker_factory(WelfareService, db=process.get_dependency(object()), config=process.container.config)


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


def alerts(process) -> list[dict]:
    """The case_opened events in the outbox: what the assignees' alerts are made from."""
    outbox = kernel.outbox
    with process.engine.connect() as connection:
        rows = connection.execute(select(outbox.c.envelope).where(outbox.c.event_type == events.CASE_OPENED)).all()
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
