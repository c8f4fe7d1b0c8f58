"""The unit of work: domain rows and outbox rows commit together or not at all,
and a consumer knows whether it has seen an event before."""
import pytest
from marshmallow import ValidationError

from services.welfare.models import Household


def case_opened_data(**overrides):
    data = {"case_id": "c1", "household_id": "h1", "compound": "Lotus Garden",
            "categories": ["elderly"], "assignee_id": "m1", "status": "open"}
    data.update(overrides)
    return data


def test_emit_writes_an_outbox_row_that_commits_with_the_domain_row(welfare_db):
    with welfare_db.unit_of_work() as uow:
        uow.session.add(Household(id="h1", compound="Lotus Garden", address="Building 3"))
        envelope = uow.emit("case_opened", case_opened_data())
        uow.commit()

    assert welfare_db.count(Household) == 1
    rows = welfare_db.outbox()
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == envelope["id"]
    assert row["source"] == "welfare"
    assert row["event_type"] == "case_opened"
    assert row["sent_at"] is None  # no relay here: left for the relay's timer
    assert row["created_at"] is not None
    assert row["envelope"] == envelope
    assert row["envelope"]["data"] == case_opened_data()


def test_without_commit_the_domain_row_and_the_outbox_row_roll_back(welfare_db):
    with welfare_db.unit_of_work() as uow:
        uow.session.add(Household(id="h1", compound="Lotus Garden", address="Building 3"))
        uow.session.flush()
        uow.emit("case_opened", case_opened_data())

    assert welfare_db.count(Household) == 0
    assert welfare_db.outbox() == []


def test_an_error_in_the_unit_rolls_back_both(welfare_db):
    with pytest.raises(RuntimeError):
        with welfare_db.unit_of_work() as uow:
            uow.session.add(Household(id="h1", compound="Lotus Garden", address="Building 3"))
            uow.emit("case_opened", case_opened_data())
            raise RuntimeError("the domain refused")

    assert welfare_db.count(Household) == 0
    assert welfare_db.outbox() == []


@pytest.mark.parametrize("event_type, data", [
    ("case_opened", case_opened_data(categories=["Homeless!"])),         # not a category code
    ("case_opened", {"case_id": "c1"}),                                  # fields missing
    ("case_opened", case_opened_data(summary="Wang Guifang, 80, alone")),  # personal data
    ("case_exploded", case_opened_data()),                               # not an event
])
def test_emit_with_a_payload_that_breaks_the_contract_writes_nothing(welfare_db, event_type, data):
    with welfare_db.unit_of_work() as uow:
        with pytest.raises(ValidationError):
            uow.emit(event_type, data)
        # Even committing afterwards leaves no row behind.
        uow.commit()
    assert welfare_db.outbox() == []


def test_two_events_in_one_unit_are_two_rows(welfare_db):
    with welfare_db.unit_of_work() as uow:
        first = uow.emit("case_opened", case_opened_data(case_id="c1"))
        second = uow.emit("case_opened", case_opened_data(case_id="c2"))
        uow.commit()
    assert first["id"] != second["id"]
    assert {row["id"] for row in welfare_db.outbox()} == {first["id"], second["id"]}


def test_first_delivery_is_true_once_per_event_and_consumer(welfare_db):
    with welfare_db.unit_of_work() as uow:
        assert uow.first_delivery("event-1", "notifications.on_case_opened") is True
        uow.commit()
    with welfare_db.worker().unit_of_work() as uow:
        assert uow.first_delivery("event-1", "notifications.on_case_opened") is False
    with welfare_db.worker().unit_of_work() as uow:
        assert uow.first_delivery("event-1", "notifications.on_case_opened") is False


def test_another_consumer_gets_its_own_first_delivery(welfare_db):
    with welfare_db.unit_of_work() as uow:
        assert uow.first_delivery("event-1", "notifications.on_case_opened") is True
        uow.commit()
    with welfare_db.worker().unit_of_work() as uow:
        assert uow.first_delivery("event-1", "dashboard.on_case_opened") is True
        uow.commit()
    with welfare_db.worker().unit_of_work() as uow:
        assert uow.first_delivery("event-2", "notifications.on_case_opened") is True
        uow.commit()


def test_a_delivery_not_committed_is_not_remembered(welfare_db):
    # The handler failed before its commit: the redelivery must run it again.
    with welfare_db.unit_of_work() as uow:
        assert uow.first_delivery("event-1", "notifications.on_case_opened") is True
    with welfare_db.worker().unit_of_work() as uow:
        assert uow.first_delivery("event-1", "notifications.on_case_opened") is True
