"""The actor of an RPC (services/contracts/principal.py): loaded as its schema
loads it, whether it is loaded for the first time or again."""
import pytest

from services.common.errors import InvalidInput
from services.contracts.principal import load_actor


def test_an_actor_is_loaded_the_same_each_time_and_is_the_callers_own():
    first = load_actor({"id": "member-1", "roles": ["member", "admin"]})
    assert first == {"id": "member-1", "roles": ["member", "admin"]}
    first["roles"].append("viewer")  # a caller that changes what it got changes nothing for the next
    assert load_actor({"id": "member-1", "roles": ["member", "admin"]}) == {"id": "member-1",
                                                                           "roles": ["member", "admin"]}


@pytest.mark.parametrize("actor", [
    {"id": "member-1", "roles": ["superuser"]},          # a role the community has not
    {"id": "member-1", "roles": ["admin"], "name": "x"},  # a field the contract does not name
    {"id": "member-1"},                                   # no roles
    {"id": 7, "roles": ["admin"]},                        # an id that is not text
    {"id": "member-1", "roles": "admin"},                 # roles that are not a list
    "member-1",
])
def test_what_is_not_an_actor_is_refused_every_time(actor):
    for _ in range(2):  # a refusal is not remembered as an actor
        with pytest.raises(InvalidInput):
            load_actor(actor)
