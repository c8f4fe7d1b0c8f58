"""Idempotency-Key for RPC writes: a retry of a write (after a timeout, a
dropped connection, a double click) returns the first answer and writes
nothing twice, at any instance, at any time.

    @rpc
    @idempotent
    def open_case(self, payload, actor): ...

    self.welfare.open_case(payload, actor, idempotency_key="...")

The key and the call's answer are stored in the write's own transaction (the
method's `uow.commit()` is completed here, once the answer is known), so a
write and its answer exist together or not at all, whatever crashes when. The
same key with other arguments (another body, or another caller) is a 422. A
call that failed wrote nothing and may be retried with the same key.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json

from sqlalchemy import select

from services.common.db import KeyAlreadyUsed, RequestKey
from services.common.errors import IdempotencyKeyReused, InvalidInput, LinliError

MAX_KEY_LENGTH = 100


def check_key(key) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput(f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
                           {"fields": {"Idempotency-Key": [f"1 to {MAX_KEY_LENGTH} characters."]}})
    return key


def fingerprint(args: tuple, kwargs: dict) -> str:
    canonical = json.dumps([args, kwargs], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(method):
    """Give an RPC write an `idempotency_key=None` keyword (see the module doc)."""

    @functools.wraps(method)
    def call(self, *args, idempotency_key=None, **kwargs):
        if idempotency_key is None:
            return method(self, *args, **kwargs)
        request = RequestKey(method.__name__, check_key(idempotency_key), fingerprint(args, kwargs))
        earlier = _earlier_answer(self.db, request)
        if earlier is not None:
            return earlier
        self.db.request = request
        try:
            answer = method(self, *args, **kwargs)
            if request.unit_of_work is not None:  # it wrote: commit the write with its answer
                request.unit_of_work.commit_with_answer(answer)
            return answer
        except KeyAlreadyUsed:  # the same key at once, elsewhere, and that one committed first
            return _earlier_answer(self.db, request)
        except LinliError:
            # Refused, perhaps because of what the same request at once elsewhere
            # just wrote (a household's second open case): then answer as it did.
            earlier = _earlier_answer(self.db, request)
            if earlier is None:
                raise
            return earlier
        finally:
            self.db.request = None
            self.db.session.rollback()  # whatever was not committed with its answer

    # The method's own signature plus the key, so that nameko's check of a call's
    # arguments (IncorrectSignature) sees what the method really takes.
    signature = inspect.signature(method)
    call.__signature__ = signature.replace(parameters=[*signature.parameters.values(), inspect.Parameter(
        "idempotency_key", inspect.Parameter.KEYWORD_ONLY, default=None)])
    return call


def _earlier_answer(db, request: RequestKey):
    """The first answer given under this key; None if there was none."""
    table = db.kernel.idempotent_requests
    db.session.rollback()  # see what other transactions committed meanwhile
    row = db.session.execute(select(table.c.fingerprint, table.c.response).where(
        table.c.operation == request.operation, table.c.key == request.key)).first()
    if row is None:
        return None
    if row.fingerprint != request.fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
    return json.loads(row.response)
