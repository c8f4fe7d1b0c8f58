"""Idempotency-Key on RPC writes (services/common/idempotency.py), on a real
service (welfare, as nameko workers over in-memory SQLite): a retry returns the
first answer and writes nothing twice, also when two arrive at once; another
request under the same key is refused; a call that failed wrote nothing, so
its retry does the work; a write and its answer commit together."""
import pytest

from services.common import idempotency
from services.common.errors import IdempotencyKeyReused, InvalidInput
from services.welfare.models import Case, Household
from tests import databases
from tests.unit.conftest import service_config
from tests.unit.test_welfare_lifecycle import ADMIN, HOUSEHOLD, SUMMARY, party_member

OTHER_ADMIN = {"id": "admin-2", "roles": ["admin"]}


ASSIGNEE = party_member("member-a")  # the account the gateway vouches for with each call


def case_body(household_id, summary=SUMMARY):
    return {"household_id": household_id, "categories": ["disability"], "summary": summary,
            "assignee_id": "member-a"}


@pytest.fixture
def household(welfare):
    return welfare().create_household(HOUSEHOLD, ADMIN)


def test_a_retry_returns_the_first_answer_and_writes_once(welfare, welfare_db, household):
    first = welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-1")
    again = welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-1")
    assert again == first
    assert welfare_db.count(Case) == 1
    assert len(welfare_db.outbox("case_opened")) == 1
    # Without a key, or with another, it is another case.
    assert welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-2")["id"] != first["id"]
    assert welfare_db.count(Case) == 2


def test_the_same_key_for_another_request_is_refused_and_writes_nothing(
        welfare, welfare_db, household):
    welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-1")
    for body, actor in [(case_body(household["id"], "Another summary."), ADMIN),
                        (case_body(household["id"]), OTHER_ADMIN)]:  # another caller's key is not yours
        with pytest.raises(IdempotencyKeyReused):
            welfare().open_case(body, actor, ASSIGNEE, idempotency_key="k-1")
    assert welfare_db.count(Case) == 1
    # Keys are per operation: the same one on another write is its own.
    welfare().create_household(HOUSEHOLD, ADMIN, idempotency_key="k-1")
    assert welfare_db.count(Household) == 2


def test_a_call_that_failed_wrote_nothing_and_its_retry_does_the_work(welfare, welfare_db, household):
    with pytest.raises(InvalidInput):
        welfare().open_case({**case_body(household["id"]), "categories": []}, ADMIN, ASSIGNEE, idempotency_key="k-1")
    assert welfare_db.count(Case) == 0
    fixed = welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-1")
    assert fixed["status"] == "open" and welfare_db.count(Case) == 1


def test_two_at_once_write_once_and_both_get_the_first_answer(
        welfare, welfare_db, household, monkeypatch):
    """The late worker finds no earlier answer; meanwhile the other commits. The
    late one's write then loses the key at commit, is rolled back, and it
    answers as the winner did."""
    body, winner = case_body(household["id"]), {}
    look_up = idempotency._earlier_answer

    def look_up_while_the_other_commits(db, request):
        found = look_up(db, request)
        if "started" not in winner:
            winner["started"] = True
            winner["answer"] = welfare().open_case(body, ADMIN, ASSIGNEE, idempotency_key="k-1")
        return found

    monkeypatch.setattr(idempotency, "_earlier_answer", look_up_while_the_other_commits)
    answer = welfare().open_case(body, ADMIN, ASSIGNEE, idempotency_key="k-1")
    assert answer == winner["answer"]
    assert welfare_db.count(Case) == 1
    assert len(welfare_db.outbox("case_opened")) == 1


def test_the_write_and_its_answer_commit_together(welfare, welfare_db, household, monkeypatch):
    """A crash (here: a failure) between the write and the storing of its answer
    leaves neither, so a retry does the work once, rather than finding a write
    whose answer is lost."""
    commit_with_answer = idempotency.CommitWithAnswer.commit_with_answer

    def crash(self, answer):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(idempotency.CommitWithAnswer, "commit_with_answer", crash)
    with pytest.raises(RuntimeError):
        welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-1")
    assert welfare_db.count(Case) == 0 and welfare_db.outbox("case_opened") == []

    monkeypatch.setattr(idempotency.CommitWithAnswer, "commit_with_answer", commit_with_answer)
    answer = welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-1")
    assert welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key="k-1") == answer
    assert welfare_db.count(Case) == 1 and len(welfare_db.outbox("case_opened")) == 1


@pytest.mark.parametrize("key", ["", "k" * 101, 12, ["k"]])
def test_a_malformed_key_is_invalid_input(welfare, welfare_db, household, key):
    with pytest.raises(InvalidInput):
        welfare().open_case(case_body(household["id"]), ADMIN, ASSIGNEE, idempotency_key=key)
    assert welfare_db.count(Case) == 0


def test_a_fingerprint_is_the_same_whatever_the_order_of_keys():
    one = ({"kind": "in_kind", "items": [{"category": "bedding", "quantity": 2}], "anonymous": False}, ADMIN)
    other = ({"anonymous": False, "items": [{"quantity": 2, "category": "bedding"}], "kind": "in_kind"},
             {"roles": ["admin"], "id": "admin-1"})
    assert idempotency.fingerprint(one, {}) == idempotency.fingerprint(other, {})


@pytest.mark.parametrize("change", [{"amount_fen": 10_001}, {"donor_name": "Wang"}, {"anonymous": True}])
def test_a_fingerprint_differs_when_anything_differs(change):
    donation = {"kind": "cash", "amount_fen": 10_000, "donor_name": None, "anonymous": False}
    assert idempotency.fingerprint((donation,), {}) != idempotency.fingerprint(({**donation, **change},), {})
    assert idempotency.fingerprint((donation, ADMIN), {}) != idempotency.fingerprint((donation, OTHER_ADMIN), {})


def test_keys_older_than_the_keeping_time_are_forgotten(tmp_path):
    from datetime import timedelta
    from unittest import mock

    from services.common.clock import naive_utcnow
    from services.common.db import Database
    from services.welfare.models import Base, kernel

    provider = Database(kernel)
    provider.container = mock.Mock(service_name="welfare", config=service_config(
        "welfare", DB_URL=databases.database_url(tmp_path, "welfare"), AMQP_URI="amqp://guest:guest@127.0.0.1:1/",
        IDEMPOTENCY_KEEP_HOURS=24))
    provider.setup()
    Base.metadata.create_all(provider.engine)
    now = naive_utcnow()
    with provider.engine.begin() as connection:
        connection.execute(kernel.idempotent_requests.insert(), [
            {"operation": "open_case", "key": key, "fingerprint": "f", "response": "{}", "created_at": at}
            for key, at in [("old", now - timedelta(hours=25)), ("recent", now - timedelta(hours=23))]])
    worker = provider.get_dependency(mock.Mock())
    assert worker.forget_idempotent_requests() == 1
    with provider.engine.connect() as connection:
        assert [row.key for row in connection.execute(kernel.idempotent_requests.select())] == ["recent"]
    provider.stop()


def test_nameko_checks_a_call_against_the_method_and_its_key():
    """A call that does not fit is IncorrectSignature before any work, as for any RPC method."""
    import inspect

    from services.welfare.service import WelfareService
    assert list(inspect.signature(WelfareService.open_case).parameters) == [
        "self", "payload", "actor", "assignee", "idempotency_key"]
    with pytest.raises(TypeError):
        inspect.getcallargs(WelfareService.open_case, None, {}, ADMIN, ASSIGNEE, "a key given by position")
    called = inspect.getcallargs(WelfareService.open_case, None, {}, ADMIN, ASSIGNEE, idempotency_key="k")
    assert called["idempotency_key"] == "k"
