"""Properties of the domain rules, with Hypothesis: the pure functions of
services/*/domain.py, and where a rule lives in a service, the service itself
as nameko workers (worker_factory) over in-memory SQLite.

- money: integer fen never drifts, whatever the amounts and their order; an
  amount outside 1..MAX_AMOUNT_FEN (or not an integer) is refused and counts nothing;
- stock: any mix of donations and dispatches leaves stock = received -
  dispatched, never negative; a dispatch past the stock is refused and changes nothing;
- cases: any sequence of moves reaches only the states of the transition
  table; an illegal move is refused and leaves the case as it was; referral
  stages only ever go forward, none skipped, and a decision is taken once.

Deterministic: derandomized, no example database."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.errors import Conflict, InvalidInput, NotFound
from services.donations import domain as donations_domain
from services.donations import models as donation_models
from services.donations.domain import MAX_AMOUNT_FEN, MAX_ITEM_QUANTITY
from services.donations.service import DonationsService
from services.welfare import domain as welfare_domain
from services.welfare import models as welfare_models
from services.welfare.domain import CASE_TRANSITIONS, REFERRAL_STAGES, CaseStatus, ReferralStatus, RuleBroken
from services.welfare.service import WelfareService
from tests.unit.conftest import FOLLOWUP_AFTER_DAYS, ServiceDb, category_seed, seed_categories, workers_of
from tests.unit.test_welfare_lifecycle import party_member

PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                    suppress_health_check=[HealthCheck.too_slow])
SERVICE_PROPERTY = settings(PROPERTY, max_examples=30)

ADMIN = {"id": "admin-1", "roles": ["admin"]}
VOLUNTEER = {"id": "volunteer-1", "roles": ["member"]}
ASSIGNEE = {"id": "member-a", "roles": ["member"]}

amounts = st.integers(min_value=1, max_value=MAX_AMOUNT_FEN)
ITEM_CATEGORIES = tuple(code for code, _zh, _en in category_seed("donations"))
categories = st.sampled_from(ITEM_CATEGORIES)
quantities = st.integers(min_value=1, max_value=MAX_ITEM_QUANTITY)


@contextmanager
def service_workers(service_cls, base, kernel, source: str, **settings):
    """A new worker per call, each with its own session, over one database
    that lasts the module (Hypothesis runs many examples in each test)."""
    db = seed_categories(ServiceDb(base, kernel, source))
    new_worker = workers_of(service_cls, db, **settings)

    def worker():
        # One call per worker, in turn: the last one's session is done with,
        # closed now rather than left open till the module ends.
        db.close_workers()
        return new_worker()

    try:
        yield worker
    finally:
        db.release()


@pytest.fixture(scope="module")
def donations():
    with service_workers(DonationsService, donation_models.Base, donation_models.kernel, "donations") as worker:
        yield worker


@pytest.fixture(scope="module")
def welfare():
    with service_workers(WelfareService, welfare_models.Base, welfare_models.kernel, "welfare",
                         FOLLOWUP_AFTER_DAYS=FOLLOWUP_AFTER_DAYS) as worker:
        yield worker


def new_campaign(donations, goal_fen: int = MAX_AMOUNT_FEN) -> dict:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return donations().create_campaign({"name": "Relief", "goal_fen": goal_fen,
                                        "starts_on": (today - timedelta(days=1)).isoformat(),
                                        "ends_on": (today + timedelta(days=1)).isoformat()}, ADMIN)


# -- money ------------------------------------------------------------------------------


@PROPERTY
@given(st.lists(amounts, max_size=200))
def test_goal_is_reached_by_exactly_one_donation_of_any_sequence(gifts):
    goal = sum(gifts) // 2 + 1
    running, reached = 0, 0
    for amount in gifts:
        reached += donations_domain.goal_newly_reached(running, running + amount, goal)
        running += amount
    assert reached == (1 if running >= goal else 0)


@SERVICE_PROPERTY
@given(gifts=st.lists(amounts, min_size=1, max_size=12))
def test_cash_totals_are_the_exact_sum_of_the_gifts(donations, gifts):
    campaign = new_campaign(donations)
    receipts = [donations().record_donation(campaign["id"], {"kind": "cash", "amount_fen": amount}, VOLUNTEER)
                for amount in gifts]
    totals = donations().get_campaign(campaign["id"])["totals"]
    assert totals["cash_fen"] == sum(gifts)
    assert isinstance(totals["cash_fen"], int)
    assert totals["donations"] == len(gifts)
    assert [r["receipt_no"].rsplit("-", 1)[1] for r in receipts] == [f"{n:06d}" for n in range(1, len(gifts) + 1)]


bad_amounts = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=MAX_AMOUNT_FEN + 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)


@SERVICE_PROPERTY
@given(good=st.lists(amounts, max_size=4), bad=bad_amounts)
def test_an_amount_outside_the_range_is_refused_and_counts_nothing(donations, good, bad):
    campaign = new_campaign(donations)
    for amount in good:
        donations().record_donation(campaign["id"], {"kind": "cash", "amount_fen": amount}, VOLUNTEER)
    before = donations().get_campaign(campaign["id"])
    with pytest.raises(InvalidInput) as refused:
        donations().record_donation(campaign["id"], {"kind": "cash", "amount_fen": bad}, VOLUNTEER)
    assert "amount_fen" in refused.value.details["fields"]
    assert donations().get_campaign(campaign["id"]) == before


# -- stock ------------------------------------------------------------------------------

moves = st.lists(st.tuples(st.sampled_from(("donate", "dispatch")),
                           st.lists(st.tuples(categories, quantities), min_size=1, max_size=3)),
                 min_size=1, max_size=10)


@PROPERTY
@given(available=st.dictionaries(categories, st.integers(min_value=0, max_value=10**6)),
       wanted=st.lists(st.tuples(categories, quantities), min_size=1, max_size=5))
def test_shortfalls_name_exactly_the_categories_beyond_stock(available, wanted):
    asked = donations_domain.count_items([{"category": c, "quantity": q} for c, q in wanted])
    assert sum(asked.values()) == sum(q for _c, q in wanted)
    short = donations_domain.shortfalls(available, asked)
    assert set(short) == {c for c, q in asked.items() if q > available.get(c, 0)}


@SERVICE_PROPERTY
@given(moves=moves)
def test_stock_is_received_less_dispatched_and_never_negative(donations, moves):
    campaign = new_campaign(donations)
    received = {c: 0 for c in ITEM_CATEGORIES}
    dispatched = {c: 0 for c in ITEM_CATEGORIES}
    for kind, lines in moves:
        items = [{"category": c, "quantity": q} for c, q in lines]
        asked = donations_domain.count_items(items)
        if kind == "donate":
            donations().record_donation(campaign["id"], {"kind": "in_kind", "items": items}, VOLUNTEER)
            for c, q in asked.items():
                received[c] += q
        elif all(q <= received[c] - dispatched[c] for c, q in asked.items()):
            donations().dispatch(campaign["id"], {"destination": "Shelter", "items": items}, ADMIN)
            for c, q in asked.items():
                dispatched[c] += q
        else:
            before = donations().get_campaign(campaign["id"])
            with pytest.raises(Conflict) as refused:
                donations().dispatch(campaign["id"], {"destination": "Shelter", "items": items}, ADMIN)
            assert set(refused.value.details["stock"]) == {
                c for c, q in asked.items() if q > received[c] - dispatched[c]}
            assert donations().get_campaign(campaign["id"]) == before  # nothing left the stock
        view = donations().get_campaign(campaign["id"])
        stock = {c: view["stock"].get(c, 0) for c in ITEM_CATEGORIES}
        assert stock == {c: received[c] - dispatched[c] for c in ITEM_CATEGORIES}
        assert min(stock.values()) >= 0
        assert {c: q for c, q in view["totals"]["items"].items() if q} == {c: q for c, q in received.items() if q}
    listed = donations().list_dispatches(campaign["id"], {"limit": 200})["items"]
    sent = {c: 0 for c in ITEM_CATEGORIES}
    for dispatch in listed:
        for item in dispatch["items"]:
            sent[item["category"]] += item["quantity"]
    assert sent == dispatched


# -- cases ------------------------------------------------------------------------------

STATES = (CaseStatus.DRAFT, CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.CLOSED, CaseStatus.DISMISSED)
ACTIONS = sorted({action for _status, action in CASE_TRANSITIONS})


@PROPERTY
@given(start=st.sampled_from((CaseStatus.DRAFT, CaseStatus.OPEN)), actions=st.lists(st.sampled_from(ACTIONS)))
def test_case_moves_reach_only_allowed_states_and_illegal_ones_change_nothing(start, actions):
    status = start
    for action in actions:
        legal = (status, action) in CASE_TRANSITIONS
        try:
            after = welfare_domain.next_status(status, action)
        except RuleBroken:
            assert not legal
            continue  # refused: the status stays
        assert legal
        assert after == CASE_TRANSITIONS[(status, action)]
        assert after in STATES
        status = after
    if status in (CaseStatus.CLOSED, CaseStatus.DISMISSED):
        # The end of a case's life: nothing moves it again, but the office reopening a closed case.
        for action in ACTIONS:
            if (status, action) == (CaseStatus.CLOSED, "reopen"):
                assert welfare_domain.next_status(status, action) == CaseStatus.OPEN
                continue
            with pytest.raises(RuleBroken):
                welfare_domain.next_status(status, action)


@PROPERTY
@given(steps=st.lists(st.one_of(st.sampled_from(REFERRAL_STAGES),
                                st.sampled_from((ReferralStatus.APPROVED, ReferralStatus.REJECTED)))))
def test_referral_stages_only_go_forward_and_a_decision_is_taken_once(steps):
    status, done, today = ReferralStatus.SUBMITTED, [], date(2026, 5, 20)
    for step in steps:
        if step in REFERRAL_STAGES:
            try:
                welfare_domain.check_stage(status, [(d, today) for d in done], step, today, today)
            except RuleBroken:
                assert status != ReferralStatus.SUBMITTED or step != REFERRAL_STAGES[len(done)]
                continue
            done.append(step)
        else:
            try:
                status = welfare_domain.decide_referral(status, step)
            except RuleBroken:
                assert status != ReferralStatus.SUBMITTED
    assert done == list(REFERRAL_STAGES[:len(done)])  # in order, none skipped
    assert status in (ReferralStatus.SUBMITTED, ReferralStatus.APPROVED, ReferralStatus.REJECTED)


HOUSEHOLD = {"compound": "Lotus Garden", "address": "Building 3, Room 401",
             "people": [{"name": "Wang", "relation": "self", "birth_year": 1946}]}

# What each move sends to the welfare service, and the action of the transition table it is.
CASE_MOVES = {
    "visit": ("log_visit", lambda: {"visited_on": date.today().isoformat(), "notes": "Visited."}),
    "refer": ("add_referral", lambda: {"agency": "Civil affairs", "benefit": "dibao"}),
    "close": ("close_case", lambda: {"outcome": "Helped."}),
    "assign": ("assign_case", None),  # to the other member each time
}


@SERVICE_PROPERTY
@given(moves=st.lists(st.sampled_from(sorted(CASE_MOVES)), max_size=8),
       stage_moves=st.lists(st.one_of(st.sampled_from(REFERRAL_STAGES), st.sampled_from(("approved", "rejected"))),
                            max_size=6))
def test_a_case_in_the_service_follows_the_transition_table(welfare, moves, stage_moves):
    """Through the service: each move is taken exactly when the table allows
    it, a refused one is a 409 and leaves the case as it was; a referral's
    stages and decision too, and nothing moves a closed case's referral."""
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    case = welfare().open_case({"household_id": household["id"], "categories": ["elderly"], "summary": "Alone.",
                                "assignee_id": ASSIGNEE["id"]}, ADMIN,
                                party_member(ASSIGNEE["id"]))
    status, assignee, referral = CaseStatus.OPEN, ASSIGNEE["id"], None
    for move in moves:
        method, body = CASE_MOVES[move]
        extra = ()
        if move == "assign":
            assignee = "member-b" if assignee == ASSIGNEE["id"] else ASSIGNEE["id"]
            payload, extra = {"assignee_id": assignee}, (party_member(assignee),)
        else:
            payload = body()
        before = welfare().get_case(case["id"], ADMIN)
        if (status, move) in CASE_TRANSITIONS:
            answer = getattr(welfare(), method)(case["id"], payload, ADMIN, *extra)
            status = CASE_TRANSITIONS[(status, move)]
            if move == "refer":
                referral = answer
        else:
            with pytest.raises(Conflict):
                getattr(welfare(), method)(case["id"], payload, ADMIN, *extra)
            if move == "assign":
                assignee = before["assignee_id"]
            assert welfare().get_case(case["id"], ADMIN) == before
        assert welfare().get_case(case["id"], ADMIN)["status"] == status
    if referral is None:
        return
    referral_status, done = ReferralStatus.SUBMITTED, []
    for step in stage_moves:
        before = welfare().get_case(case["id"], ADMIN)
        if step in REFERRAL_STAGES:
            allowed = (status != CaseStatus.CLOSED and referral_status == ReferralStatus.SUBMITTED
                       and step == welfare_domain.next_stage(done))
            method, payload = "record_referral_stage", {"stage": step, "on": date.today().isoformat()}
        else:
            allowed = status != CaseStatus.CLOSED and referral_status == ReferralStatus.SUBMITTED
            method, payload = "decide_referral", {"status": step}
        if allowed:
            answer = getattr(welfare(), method)(referral["id"], payload, ADMIN)
            if step in REFERRAL_STAGES:
                done.append(step)
            else:
                referral_status = step
            assert answer["status"] == referral_status
            assert [s["stage"] for s in answer["stages"]] == done
        else:
            with pytest.raises(Conflict):
                getattr(welfare(), method)(referral["id"], payload, ADMIN)
            assert welfare().get_case(case["id"], ADMIN) == before


def test_a_move_on_an_unknown_case_is_not_found(welfare):
    with pytest.raises(NotFound):
        welfare().close_case("0" * 32, {"outcome": "Helped."}, ADMIN)
