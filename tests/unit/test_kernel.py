"""The kernel (services/common): how a domain's refusal reaches a caller."""
import pytest

from services.common.errors import Conflict, Forbidden, enforce
from services.common.rules import NotAllowed, RuleBroken


def refuse(error):
    raise error


def test_enforce_returns_what_the_rule_returns():
    assert enforce(lambda status, action: f"{status}:{action}", "open", action="close") == "open:close"


@pytest.mark.parametrize("refusal, error", [(NotAllowed, Forbidden), (RuleBroken, Conflict)])
def test_a_refusal_becomes_the_callers_error_with_its_message_and_details(refusal, error):
    with pytest.raises(error) as raised:
        enforce(refuse, refusal("Not now.", {"next_stage": "submitted"}))
    assert type(raised.value) is error
    assert raised.value.message == "Not now." and raised.value.details == {"next_stage": "submitted"}
