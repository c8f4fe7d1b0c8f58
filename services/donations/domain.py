"""Rules of money and goods. Standard library only. Money is integer fen."""
from __future__ import annotations

import secrets
from datetime import date

from services.common.rules import RuleBroken


# No 0/O, 1/I/L: a code is read off paper and typed in again.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
VERIFICATION_CODE_LENGTH = 8
MAX_AMOUNT_FEN = 10_000_000_000  # 100 million yuan: beyond it, a typo
MAX_ITEM_QUANTITY = 100_000       # of one line of a gift or a dispatch: a lorry of bottled water
MAX_ITEM_LINES = 50               # lines in one gift or dispatch
# A campaign's running totals (its cash, and each category's goods received)
# stop here: a gift that would pass it is refused (409). Ten trillion yuan, or
# 10^15 items, is more than any drive takes; it keeps every total exact as a
# JavaScript number (below 2^53, for the dashboard) and the BigInteger columns
# (2^63 - 1, about 9.2 x 10^18) 9,000 times above anything they can hold.
MAX_CAMPAIGN_TOTAL = 10**15


class CampaignStatus:
    OPEN = "open"
    CLOSED = "closed"


def check_dates(starts_on: date, ends_on: date):
    """A drive lasts a day or more: the schemas check the dates sent together,
    the service a changed one against the one stored."""
    if ends_on < starts_on:
        raise ValueError("A campaign cannot end before it starts.")


def check_accepts_donations(status: str, starts_on: date, ends_on: date, today: date):
    if status != CampaignStatus.OPEN:
        raise RuleBroken("The campaign is closed: it takes no more donations.")
    if not starts_on <= today <= ends_on:
        raise RuleBroken(f"The campaign takes donations from {starts_on} to {ends_on}; today is {today}.")


def check_within_totals(total_after: int):
    """The totals a gift would leave must stay within MAX_CAMPAIGN_TOTAL."""
    if total_after > MAX_CAMPAIGN_TOTAL:
        raise RuleBroken(f"The campaign's totals cannot pass {MAX_CAMPAIGN_TOTAL}: this gift would take them past.")


def check_open(status: str):
    if status != CampaignStatus.OPEN:
        raise RuleBroken("The campaign is closed already.")


def check_editable(status: str, changing: set[str]):
    """A closed drive's goal and dates are its record: it can still be renamed (a typo),
    or marked a test drive (or not)."""
    if status != CampaignStatus.OPEN and changing - {"name", "test"}:
        raise RuleBroken("The campaign is closed: only its name can change.")


def unvoidable(category: str, quantity: int, in_stock: int) -> str:
    """Why goods of a gift cannot be voided: some were sent out already."""
    return (f"Cannot void this gift: it brought {quantity} {category}, and only {in_stock} {category} "
            f"are left in stock (the rest were dispatched). Nothing was changed.")


def count_items(items: list[dict]) -> dict[str, int]:
    """Quantities per category, a category given twice counted once."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item["category"]] = counts.get(item["category"], 0) + item["quantity"]
    return counts


def shortfalls(available: dict[str, int], wanted: dict[str, int]) -> dict[str, str]:
    """What a dispatch asks beyond the stock, per category."""
    return {category: f"{quantity} asked, {available.get(category, 0)} in stock"
            for category, quantity in wanted.items() if quantity > available.get(category, 0)}


def goal_newly_reached(cash_before: int, cash_after: int, goal_fen: int) -> bool:
    """True for the one donation that carries the cash total to the goal."""
    return cash_before < goal_fen <= cash_after


def receipt_no(campaign_code: str, seq: int) -> str:
    return f"{campaign_code}-{seq:06d}"


def new_code(length: int) -> str:
    """`length` letters of CODE_ALPHABET, each uniform: the digits of one random number
    (one draw from the OS, where a choice per letter took one each)."""
    number, letters = secrets.randbelow(len(CODE_ALPHABET) ** length), []
    for _ in range(length):
        number, digit = divmod(number, len(CODE_ALPHABET))
        letters.append(CODE_ALPHABET[digit])
    return "".join(letters)

