"""The community's own categories, as nameko workers (worker_factory) over a
real database: each owning service lists, adds and retires its kind
(patrol: incident, welfare: case, donations: goods), and refuses an unknown or
retired code at its own writes, with a 400 that names the field, while old
records keep their codes."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from services.common.db import make_engine
from services.common.envelope import make_envelope
from services.common.errors import Conflict, Forbidden, IdempotencyKeyReused, InvalidInput, NotFound
from services.donations import models as donation_models
from services.donations.service import DonationsService
from services.patrol.service import PatrolService
from services.welfare.service import WelfareService
from tests.unit.conftest import ServiceDb, seed_categories, workers_of
from tests.unit.test_welfare_lifecycle import party_member

ADMIN = {"id": "admin-1", "roles": ["admin"]}
MEMBER = {"id": "m1", "roles": ["member"]}
ILLEGAL = {"code": "illegal_structure", "label_zh": "違章建築", "label_en": "Illegal structure"}

# kind: (service, its database fixture, its first seeded category and labels, how many it seeds)
KINDS = {
    "incident": (PatrolService, "patrol_db", {"code": "dispute", "label_zh": "纠纷", "label_en": "Dispute"}, 6),
    "case": (WelfareService, "welfare_db", {"code": "low_income", "label_zh": "低收入", "label_en": "Low income"}, 5),
    "goods": (DonationsService, "donations_db", {"code": "clothing", "label_zh": "衣物", "label_en": "Clothing"}, 7),
}


@pytest.fixture(params=[pytest.param(kind, marks=pytest.mark.database) for kind in sorted(KINDS)])
def owner(request):
    """(kind, a maker of the owning service's workers, its database). Marked
    `database` by hand: the database fixture is taken by name, out of sight
    of tests/conftest.py's marking."""
    service_cls, db_fixture, _first, _count = KINDS[request.param]
    db = request.getfixturevalue(db_fixture)
    return request.param, workers_of(service_cls, db), db


def events_of(db, event_type):
    return [row["envelope"]["data"] for row in db.outbox(event_type)]


def field_messages(raised, field) -> str:
    return " ".join(map(str, raised.value.details["fields"][field]))


# -- listing, adding, retiring: the same in each owning service ------------------------

def test_the_seeded_categories_are_listed_in_order_with_both_labels(owner):
    kind, service, _db = owner
    _cls, _fixture, first, count = KINDS[kind]
    listed = service().list_categories()
    assert len(listed) == count
    assert listed[0] == {**first, "retired": False}
    assert all(set(c) == {"code", "label_zh", "label_en", "retired"} and not c["retired"] for c in listed)


def test_an_admin_adds_a_category_it_comes_last_trimmed_and_is_announced(owner):
    kind, service, db = owner
    added = service().add_category({"code": "illegal_structure", "label_zh": " 違章建築 ",
                                    "label_en": "Illegal structure  "}, ADMIN)
    assert added == {**ILLEGAL, "retired": False}
    assert service().list_categories()[-1] == added
    assert events_of(db, "category_added") == [{"kind": kind, "code": "illegal_structure"}]


def test_adding_with_the_same_key_again_answers_the_first_and_adds_once(owner):
    kind, service, db = owner
    first = service().add_category(ILLEGAL, ADMIN, idempotency_key="k1")
    assert service().add_category(ILLEGAL, ADMIN, idempotency_key="k1") == first
    assert [c["code"] for c in service().list_categories()].count("illegal_structure") == 1
    assert len(events_of(db, "category_added")) == 1
    with pytest.raises(IdempotencyKeyReused):
        service().add_category({**ILLEGAL, "code": "graffiti"}, ADMIN, idempotency_key="k1")


def test_a_code_that_exists_is_a_conflict_retired_or_not(owner):
    kind, service, db = owner
    service().add_category(ILLEGAL, ADMIN)
    with pytest.raises(Conflict, match="exists"):
        service().add_category({**ILLEGAL, "label_en": "Another"}, ADMIN)
    service().retire_category("illegal_structure", ADMIN)
    with pytest.raises(Conflict, match="exists") as raised:
        service().add_category(ILLEGAL, ADMIN)
    assert "code" in raised.value.details["fields"]
    assert len(events_of(db, "category_added")) == 1


@pytest.mark.parametrize("payload, field", [
    ({**ILLEGAL, "code": "Illegal"}, "code"),          # not lowercase
    ({**ILLEGAL, "code": "9lives"}, "code"),           # not a letter first
    ({**ILLEGAL, "code": "x"}, "code"),                # too short
    ({**ILLEGAL, "code": "a" * 41}, "code"),           # too long
    ({**ILLEGAL, "code": "违章"}, "code"),              # not ASCII
    ({**ILLEGAL, "label_zh": "   "}, "label_zh"),      # blank once trimmed
    ({**ILLEGAL, "label_en": "x" * 41}, "label_en"),
    ({"code": "graffiti", "label_zh": "涂鸦"}, "label_en"),
])
def test_a_bad_category_is_invalid_input_naming_the_field_and_adds_nothing(owner, payload, field):
    kind, service, db = owner
    before = service().list_categories()
    with pytest.raises(InvalidInput) as raised:
        service().add_category(payload, ADMIN)
    assert field in raised.value.details["fields"]
    assert service().list_categories() == before and events_of(db, "category_added") == []


def test_only_an_admin_adds_or_retires(owner):
    kind, service, db = owner
    before = service().list_categories()
    with pytest.raises(Forbidden):
        service().add_category(ILLEGAL, MEMBER)
    with pytest.raises(Forbidden):
        service().retire_category("other", MEMBER)
    assert service().list_categories() == before and db.outbox() == []


def test_retiring_marks_it_retired_and_announces_it_once(owner):
    kind, service, db = owner
    service().add_category(ILLEGAL, ADMIN)
    assert service().retire_category("illegal_structure", ADMIN) == {**ILLEGAL, "retired": True}
    assert service().list_categories()[-1] == {**ILLEGAL, "retired": True}  # still listed: old records use it
    with pytest.raises(Conflict, match="retired already"):
        service().retire_category("illegal_structure", ADMIN)
    assert events_of(db, "category_retired") == [{"kind": kind, "code": "illegal_structure"}]


def test_retiring_an_unknown_code_is_not_found_and_a_code_that_is_no_string_invalid_input(owner):
    kind, service, db = owner
    with pytest.raises(NotFound, match=f"No {kind} category has the code graffiti"):
        service().retire_category("graffiti", ADMIN)
    for code in ("", None, 5, "x" * 100):
        with pytest.raises(InvalidInput):
            service().retire_category(code, ADMIN)
    assert db.outbox() == []


def test_patrol_never_retires_hardship_it_makes_welfare_s_draft_cases(patrol, patrol_db):
    with pytest.raises(Conflict, match="draft hardship cases"):
        patrol().retire_category("hardship", ADMIN)
    assert {"code": "hardship", "label_zh": "困难群众", "label_en": "Hardship", "retired": False} \
        in patrol().list_categories()
    assert patrol_db.outbox() == []


# -- patrol: an incident's category -----------------------------------------------------

@pytest.fixture
def zone(patrol):
    return patrol().create_zone({"name": "North", "compounds": ["Pine Court"]}, ADMIN)


def report(patrol, zone, category):
    return patrol().report_incident({"zone_id": zone["id"], "compound": "Pine Court", "category": category,
                                     "description": "A shed built over the fire lane.", "severity": "medium"},
                                    ADMIN)


def test_an_incident_of_a_new_category_is_reported_and_announced_with_it(patrol, patrol_db, zone):
    patrol().add_category(ILLEGAL, ADMIN)
    incident = report(patrol, zone, "illegal_structure")
    assert incident["category"] == "illegal_structure"
    assert events_of(patrol_db, "incident_reported")[0]["category"] == "illegal_structure"


def test_an_unknown_incident_category_is_a_400_naming_category(patrol, patrol_db, zone):
    with pytest.raises(InvalidInput) as raised:
        report(patrol, zone, "illegal_structure")
    assert field_messages(raised, "category") == (
        "No incident category has the code illegal_structure; GET /categories lists them.")
    assert patrol().list_incidents(ADMIN)["items"] == [] and patrol_db.outbox("incident_reported") == []


def test_a_retired_incident_category_takes_no_new_incident_but_old_ones_keep_it(patrol, patrol_db, zone):
    patrol().add_category(ILLEGAL, ADMIN)
    old = report(patrol, zone, "illegal_structure")
    patrol().retire_category("illegal_structure", ADMIN)
    with pytest.raises(InvalidInput) as raised:
        report(patrol, zone, "illegal_structure")
    assert "illegal_structure is retired" in field_messages(raised, "category")
    assert patrol().get_incident(old["id"], ADMIN)["category"] == "illegal_structure"
    assert len(patrol().list_incidents(ADMIN)["items"]) == 1


# -- welfare: a case's categories ----------------------------------------------------------

@pytest.fixture
def household(welfare):
    return welfare().create_household({"compound": "Pine Court", "address": "Building 1, Room 101", "people": [
        {"name": "Zhang Min", "relation": "self", "birth_year": 1950, "conditions": []}]}, ADMIN)


def open_case(welfare, household, categories):
    return welfare().open_case({"household_id": household["id"], "categories": categories,
                                "summary": "Lives alone.", "assignee_id": "m1"}, ADMIN,
                               party_member("m1"))


def test_a_case_takes_a_new_category_in_the_order_they_are_listed(welfare, household):
    welfare().add_category({"code": "housing", "label_zh": "住房困难", "label_en": "Housing"}, ADMIN)
    case = open_case(welfare, household, ["housing", "elderly", "housing"])
    assert case["categories"] == ["elderly", "housing"]


def test_an_unknown_or_retired_case_category_is_a_400_naming_categories(welfare, welfare_db, household):
    welfare().add_category({"code": "housing", "label_zh": "住房困难", "label_en": "Housing"}, ADMIN)
    welfare().retire_category("housing", ADMIN)
    with pytest.raises(InvalidInput) as raised:
        open_case(welfare, household, ["elderly", "homeless", "housing"])
    messages = field_messages(raised, "categories")
    assert "No case category has the code homeless" in messages and "housing is retired" in messages
    assert welfare().list_cases(ADMIN)["items"] == [] and welfare_db.outbox("case_opened") == []


def test_confirming_a_draft_checks_its_categories_too(welfare, welfare_db, household):
    welfare().on_incident_reported(make_envelope("patrol", "incident_reported", {
        "incident_id": "inc-1", "zone_id": "z1", "compound": "Pine Court", "category": "hardship",
        "severity": "medium", "status": "open", "leader_id": None, "reported_by": "m1"}))
    draft = welfare().list_cases(ADMIN)["items"][0]
    payload = {"household_id": household["id"], "summary": "Found on patrol.", "assignee_id": "m1"}
    with pytest.raises(InvalidInput) as raised:
        welfare().confirm_case(draft["id"], {**payload, "categories": ["homeless"]}, ADMIN, party_member("m1"))
    assert "categories" in raised.value.details["fields"]
    assert welfare().get_case(draft["id"], ADMIN)["status"] == "draft"
    welfare().add_category({"code": "homeless", "label_zh": "无固定住所", "label_en": "Homeless"}, ADMIN)
    confirmed = welfare().confirm_case(draft["id"], {**payload, "categories": ["homeless"]}, ADMIN, party_member("m1"))
    assert confirmed["status"] == "open" and confirmed["categories"] == ["homeless"]


def test_the_summary_counts_every_active_category_and_a_retired_one_only_while_cases_have_it(welfare, household):
    for code, zh, en in (("housing", "住房困难", "Housing"), ("flood", "水灾", "Flood")):
        welfare().add_category({"code": code, "label_zh": zh, "label_en": en}, ADMIN)
    open_case(welfare, household, ["elderly", "housing"])
    welfare().retire_category("housing", ADMIN)
    welfare().retire_category("flood", ADMIN)
    assert welfare().summary()["open_cases_by_category"] == {
        "low_income": 0, "disability": 0, "elderly": 1, "illness": 0, "other": 0, "housing": 1}


# -- donations: goods' categories, and stock made on first receipt ----------------------------

def today():
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


@pytest.fixture
def campaign(donations):
    return donations().create_campaign({"name": "Winter drive", "goal_fen": 100_000,
                                        "starts_on": (today() - timedelta(days=1)).isoformat(),
                                        "ends_on": (today() + timedelta(days=9)).isoformat()}, ADMIN)


def gift(*items):
    return {"kind": "in_kind", "items": [{"category": c, "quantity": q} for c, q in items], "anonymous": True}


def test_goods_of_a_new_category_are_received_counted_and_sent_on(donations, campaign):
    donations().add_category({"code": "blankets", "label_zh": "毛毯", "label_en": "Blankets"}, ADMIN)
    donations().record_donation(campaign["id"], gift(("blankets", 5), ("clothing", 2)), MEMBER)
    donations().record_donation(campaign["id"], gift(("blankets", 3)), MEMBER)
    donations().dispatch(campaign["id"], {"destination": "Shelter", "items": [
        {"category": "blankets", "quantity": 6}]}, ADMIN)
    view = donations().get_campaign(campaign["id"])
    assert view["totals"]["items"] == {"blankets": 8, "clothing": 2}
    assert view["stock"] == {"blankets": 2, "clothing": 2}
    summary = donations().summary()["campaigns"][0]
    assert summary["goods_sent"] == [{"to": "Shelter", "category": "blankets", "quantity": 6}]


def test_a_new_campaign_has_no_stock_rows_until_goods_arrive(donations, donations_db, campaign):
    assert donations_db.count(donation_models.Stock) == 0
    view = donations().get_campaign(campaign["id"])
    assert view["totals"]["items"] == {} and view["stock"] == {}


def test_an_unknown_or_retired_goods_category_is_a_400_naming_the_line(donations, donations_db, campaign):
    donations().add_category({"code": "blankets", "label_zh": "毛毯", "label_en": "Blankets"}, ADMIN)
    donations().retire_category("blankets", ADMIN)
    with pytest.raises(InvalidInput) as raised:
        donations().record_donation(campaign["id"], gift(("clothing", 1), ("heaters", 2), ("blankets", 1)), MEMBER)
    lines = raised.value.details["fields"]["items"]
    assert set(lines) == {1, 2}
    assert lines[1]["category"] == ["No goods category has the code heaters; GET /categories lists them."]
    assert "blankets is retired" in lines[2]["category"][0]
    assert donations().get_campaign(campaign["id"])["totals"]["donations"] == 0
    assert donations_db.outbox("donation_received") == []


def test_goods_of_a_retired_category_in_stock_may_still_leave_an_unknown_one_is_a_400(donations, campaign):
    donations().record_donation(campaign["id"], gift(("tents", 4)), MEMBER)
    donations().retire_category("tents", ADMIN)
    donations().dispatch(campaign["id"], {"destination": "Shelter", "items": [{"category": "tents", "quantity": 4}]},
                         ADMIN)
    with pytest.raises(InvalidInput) as raised:
        donations().dispatch(campaign["id"], {"destination": "Shelter", "items": [
            {"category": "heaters", "quantity": 1}]}, ADMIN)
    assert "No goods category has the code heaters" in raised.value.details["fields"]["items"][0]["category"][0]
    assert donations().get_campaign(campaign["id"])["stock"] == {"tents": 0}


def test_two_first_gifts_of_a_category_at_once_both_count_and_neither_fails():
    """The race PostgreSQL allows (another donation makes the category's stock
    row between this one's update that found none and its insert), played on
    SQLite: the insert does nothing, and the update counts onto that row."""
    db = ServiceDb(donation_models.Base, donation_models.kernel, "donations", engine=make_engine("sqlite://"))
    donation_models.Base.metadata.create_all(db.engine)
    seed_categories(db)
    new_worker = workers_of(DonationsService, db)
    campaign = new_worker().create_campaign({"name": "Drive", "goal_fen": 100_000,
                                             "starts_on": today().isoformat(), "ends_on": today().isoformat()}, ADMIN)
    raced = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def the_other_gift_lands_first(_conn, cursor, statement, _parameters, _context, _executemany):
        if statement.startswith("INSERT INTO stock") and "ON CONFLICT" in statement and not raced:
            raced.append(True)
            cursor.execute("INSERT INTO stock (campaign_id, category, received, dispatched) VALUES (?, ?, 7, 0)",
                           (campaign["id"], "water"))

    try:
        donation = new_worker().record_donation(campaign["id"], gift(("water", 5)), MEMBER)
        assert raced and donation["receipt_no"].endswith("-000001")
        assert new_worker().get_campaign(campaign["id"])["stock"] == {"water": 12}
    finally:
        db.release()
