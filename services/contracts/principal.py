"""Who is calling, as the gateway vouches for it: part of the contract
between the gateway and every service (the `actor` argument of an RPC). The
roles are the community's; the kernel knows none of them."""
from marshmallow import Schema, fields, validate

from services.common.errors import Forbidden
from services.common.schemas import load_or_raise, shared

ROLES = ("admin", "member", "viewer")


class ActorSchema(Schema):
    id = fields.String(required=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)


def load_actor(actor: dict) -> dict:
    return load_or_raise(shared(ActorSchema), actor)


def is_admin(actor: dict) -> bool:
    return "admin" in actor["roles"]


def require_admin(actor: dict):
    if not is_admin(actor):
        raise Forbidden("Only the community office (admin) may do this.")
