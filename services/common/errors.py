"""Errors that cross the RPC boundary and map to one HTTP status each.

They are registered with nameko so that a caller gets the same class back,
with its details, instead of a bare RemoteError.
"""
from nameko.exceptions import deserialize_to_instance

from services.common.rules import NotAllowed, RuleBroken


class LinliError(Exception):
    """Base of every expected error; `code` is stable for clients."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message, details or {})
        self.message = message
        self.details = details or {}

    def __str__(self):
        return self.message


@deserialize_to_instance
class InvalidInput(LinliError):
    status = 400
    code = "invalid_input"


@deserialize_to_instance
class NotAuthenticated(LinliError):
    status = 401
    code = "not_authenticated"


@deserialize_to_instance
class Forbidden(LinliError):
    status = 403
    code = "forbidden"


@deserialize_to_instance
class NotFound(LinliError):
    status = 404
    code = "not_found"


@deserialize_to_instance
class Conflict(LinliError):
    status = 409
    code = "conflict"


@deserialize_to_instance
class PayloadTooLarge(LinliError):
    status = 413
    code = "payload_too_large"


@deserialize_to_instance
class UnsupportedMediaType(LinliError):
    """A body sent as anything but JSON: it is not guessed at."""
    status = 415
    code = "unsupported_media_type"


@deserialize_to_instance
class IdempotencyKeyRequired(LinliError):
    """A write of money or goods sent without an Idempotency-Key: a retry of it
    could not be told from a second gift, so it is not taken."""
    status = 400
    code = "idempotency_key_required"


@deserialize_to_instance
class IdempotencyKeyReused(LinliError):
    """The same Idempotency-Key came again with a different request."""
    status = 422
    code = "idempotency_key_reused"


@deserialize_to_instance
class TooManyRequests(LinliError):
    """Slowed down; `details["retry_after"]` says how many seconds to wait."""
    status = 429
    code = "too_many_requests"


@deserialize_to_instance
class Unavailable(LinliError):
    status = 503
    code = "unavailable"


@deserialize_to_instance
class CallerNotVouched(LinliError):
    """An RPC call without a valid assertion from the gateway (services/common/caller.py):
    refused before any work. The gateway never sees this unless it is misconfigured."""
    status = 500
    code = "caller_not_vouched"


def invalid_input(validation_error) -> InvalidInput:
    """Turn a marshmallow ValidationError into our error, field by field."""
    messages = validation_error.messages
    if not isinstance(messages, dict):
        messages = {"_schema": messages}
    return InvalidInput("The request has invalid fields.", {"fields": messages})


def enforce(rule, *args, **kwargs):
    """Apply a domain rule (services/common/rules.py) and return what it
    returns; its refusal becomes the caller's error, message and details kept:
    NotAllowed a Forbidden (403), any other RuleBroken a Conflict (409). The
    one place where a domain's "no" becomes a remote error, for every service."""
    try:
        return rule(*args, **kwargs)
    except NotAllowed as exc:
        raise Forbidden(exc.message, exc.details)
    except RuleBroken as exc:
        raise Conflict(exc.message, exc.details)
