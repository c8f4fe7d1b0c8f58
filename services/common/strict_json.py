"""JSON from outside (a request body, a cursor), read so that it means one
thing: no key given twice, no NaN or Infinity, and nested at most MAX_DEPTH
levels, which is checked on the text before the parser recurses into it."""
from __future__ import annotations

import json
import re

# Deeper than any body or cursor of this API; far below the recursion limit
# that the parser and the schemas would otherwise hit (a 500).
MAX_DEPTH = 32
DEPTH_MESSAGE = f"Nested deeper than {MAX_DEPTH} levels."

# A string (possessive, so an unterminated one is consumed once, never
# rescanned), or a bracket that opens or closes a level.
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]')


class NotStrictJson(ValueError):
    """Valid or not, JSON this API does not take; `key` names a key given twice."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


def too_deep(text: str, max_depth: int = MAX_DEPTH) -> bool:
    if text.count("[") + text.count("{") <= max_depth:
        return False  # too few brackets, counting those inside strings, to nest that deep (a gift's body)
    depth = 0
    for token in _TOKENS.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True
        elif bracket in ("]", "}"):
            depth -= 1
    return False


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    # {"amount_fen": 1, "amount_fen": 999999} means two things: the last one must not win silently.
    result = {}
    for key, value in pairs:
        if key in result:
            raise NotStrictJson(f"The key {key!r} is given more than once.", key)
        result[key] = value
    return result


def _no_constant(name: str):
    raise NotStrictJson(f"{name} is not a JSON number.")


def loads(text: str | bytes):
    """Parse `text`; ValueError (NotStrictJson for what is refused on purpose)
    if it is not JSON, not UTF-8, or not strict."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if too_deep(text):
        raise NotStrictJson(DEPTH_MESSAGE)
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
