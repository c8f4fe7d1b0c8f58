"""The rules of money and goods in services.donations.domain, without a
database: dates, counting, stock shortfalls, the goal, receipt numbers and
codes, and what makes two donation requests the same."""
from datetime import date

import pytest

from services.donations import domain
from services.donations.domain import CampaignStatus, RuleBroken

START = date(2026, 5, 10)
END = date(2026, 5, 20)


# -- dates ----------------------------------------------------------------------

def test_a_campaign_may_last_one_day_or_longer():
    domain.check_dates(START, START)
    domain.check_dates(START, END)


def test_a_campaign_cannot_end_before_it_starts():
    with pytest.raises(ValueError, match="cannot end before it starts"):
        domain.check_dates(END, START)


@pytest.mark.parametrize("today", [START, date(2026, 5, 15), END], ids=["first day", "middle", "last day"])
def test_an_open_campaign_takes_donations_on_each_of_its_days(today):
    domain.check_accepts_donations(CampaignStatus.OPEN, START, END, today)


@pytest.mark.parametrize("today", [date(2026, 5, 9), date(2026, 5, 21), date(2025, 5, 15)],
                         ids=["day before start", "day after end", "a year before"])
def test_an_open_campaign_refuses_donations_outside_its_dates(today):
    with pytest.raises(RuleBroken) as raised:
        domain.check_accepts_donations(CampaignStatus.OPEN, START, END, today)
    message = str(raised.value)
    assert "2026-05-10" in message and "2026-05-20" in message and today.isoformat() in message


@pytest.mark.parametrize("today", [date(2026, 5, 9), START, END])
def test_a_closed_campaign_refuses_donations_even_within_its_dates(today):
    with pytest.raises(RuleBroken, match="closed"):
        domain.check_accepts_donations(CampaignStatus.CLOSED, START, END, today)


def test_check_open_refuses_a_closed_campaign():
    domain.check_open(CampaignStatus.OPEN)
    with pytest.raises(RuleBroken):
        domain.check_open(CampaignStatus.CLOSED)


# -- counting goods --------------------------------------------------------------

def test_count_items_sums_quantities_per_category():
    assert domain.count_items([
        {"category": "clothing", "quantity": 3, "description": "coats"},
        {"category": "bedding", "quantity": 2},
        {"category": "clothing", "quantity": 4, "description": "trousers"},
    ]) == {"clothing": 7, "bedding": 2}


def test_count_items_of_nothing_is_nothing():
    assert domain.count_items([]) == {}


def test_no_shortfall_when_stock_covers_the_dispatch_exactly():
    assert domain.shortfalls({"clothing": 5, "water": 10}, {"clothing": 5, "water": 1}) == {}


def test_shortfalls_name_each_short_category_with_what_is_asked_and_held():
    short = domain.shortfalls({"clothing": 5, "water": 10}, {"clothing": 6, "water": 10, "tents": 2})
    assert short == {"clothing": "6 asked, 5 in stock", "tents": "2 asked, 0 in stock"}


# -- the goal --------------------------------------------------------------------

@pytest.mark.parametrize("before, after, reached", [
    (90_000, 110_000, True),    # crossing the goal
    (90_000, 100_000, True),    # landing exactly on it
    (0, 100_000, True),         # the first donation reaches it
    (100_000, 100_500, False),  # already there before
    (120_000, 130_000, False),  # already past
    (10_000, 99_999, False),    # not yet
    (99_999, 99_999, False),    # an in-kind donation adds no cash
])
def test_goal_newly_reached_only_for_the_donation_that_carries_cash_to_the_goal(before, after, reached):
    assert domain.goal_newly_reached(before, after, 100_000) is reached


# -- receipts and codes ----------------------------------------------------------

@pytest.mark.parametrize("seq, expected", [(1, "K7QX2M-000001"), (42, "K7QX2M-000042"),
                                           (999_999, "K7QX2M-999999")])
def test_receipt_no_is_the_campaign_code_and_a_six_digit_number(seq, expected):
    assert domain.receipt_no("K7QX2M", seq) == expected


def test_receipt_numbers_sort_in_order_of_their_numbers():
    numbers = [domain.receipt_no("ABC234", seq) for seq in (1, 2, 9, 10, 99, 100)]
    assert numbers == sorted(numbers)


def test_the_code_alphabet_has_no_characters_that_read_alike():
    for confusable in "01OIL":
        assert confusable not in domain.CODE_ALPHABET
    assert len(set(domain.CODE_ALPHABET)) == len(domain.CODE_ALPHABET) == 31
    assert domain.CODE_ALPHABET == domain.CODE_ALPHABET.upper()


@pytest.mark.parametrize("length", [6, domain.VERIFICATION_CODE_LENGTH])
def test_new_code_has_its_length_and_only_the_alphabet(length):
    codes = [domain.new_code(length) for _ in range(300)]
    for code in codes:
        assert len(code) == length
        assert set(code) <= set(domain.CODE_ALPHABET), code
    assert len(set(codes)) == len(codes)  # random: 300 codes of 31**6 and more never repeat


def test_new_code_uses_the_whole_alphabet_in_every_position():
    # The letters are the digits of one random number: each position must still take every
    # letter (a letter missing from one of 8 positions in 1,000 codes: about e^-33 by chance).
    codes = [domain.new_code(8) for _ in range(1000)]
    for position in range(8):
        assert set(code[position] for code in codes) == set(domain.CODE_ALPHABET), position


def test_a_verification_code_is_at_least_eight_characters():
    assert domain.VERIFICATION_CODE_LENGTH >= 8
