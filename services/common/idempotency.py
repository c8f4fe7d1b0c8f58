"""Idempotency-Key for RPC writes: a retry of a write (after a timeout, a
dropped connection, a double click) returns the first answer and writes
nothing twice, at any instance, at any time.

    @rpc
    @idempotent
    def open_case(self, payload, actor): ...

    self.welfare.open_case(payload, actor, idempotency_key="...")

The key is stored with the write, in its own transaction (UnitOfWork.commit),
so the write happens once per key whatever the timing; the answer is stored
just after. The same key with other arguments (another body, or another
caller) is a 422. A call that failed before writing stored nothing and may be
retried with the same key.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import time

from sqlalchemy import select, update

from services.common.db import KeyAlreadyUsed, RequestKey
from services.common.errors import Conflict, IdempotencyKeyReused, InvalidInput, LinliError

MAX_KEY_LENGTH = 100
ANSWER_WAIT_SECONDS = 5.0  # how long a retry waits for a first request still at work


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
        earlier = _earlier_answer(self.db.session, self.db, request, wait=ANSWER_WAIT_SECONDS)
        if earlier is not None:
            return earlier
        self.db.request = request
        try:
            answer = method(self, *args, **kwargs)
        except KeyAlreadyUsed:  # the same key at once, elsewhere, and that one committed first
            return _earlier_answer(self.db.session, self.db, request, wait=ANSWER_WAIT_SECONDS)
        except LinliError:
            # Refused, perhaps because of what the same request at once elsewhere
            # just wrote (a household's second open case): then answer as it did.
            earlier = _earlier_answer(self.db.session, self.db, request, wait=ANSWER_WAIT_SECONDS)
            if earlier is None:
                raise
            return earlier
        finally:
            self.db.request = None
        if request.reserved:
            _record_answer(self.db, request, answer)
        return answer

    # The method's own signature plus the key, so that nameko's check of a call's
    # arguments (IncorrectSignature) sees what the method really takes.
    signature = inspect.signature(method)
    call.__signature__ = signature.replace(parameters=[*signature.parameters.values(), inspect.Parameter(
        "idempotency_key", inspect.Parameter.KEYWORD_ONLY, default=None)])
    return call


def _earlier_answer(session, db, request: RequestKey, wait: float):
    """The first answer given under this key; None if there was none. A first
    request still at work (written, answer not yet recorded) is waited for."""
    table = db.kernel.idempotent_requests
    deadline = time.monotonic() + wait
    while True:
        session.rollback()  # see what other transactions committed meanwhile
        row = session.execute(select(table.c.fingerprint, table.c.response).where(
            table.c.operation == request.operation, table.c.key == request.key)).first()
        if row is None:
            return None
        if row.fingerprint != request.fingerprint:
            raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
        if row.response is not None:
            return json.loads(row.response)
        if time.monotonic() >= deadline:
            # Written, but its answer is not recorded (yet): say so rather than write twice.
            raise Conflict("The first request with this Idempotency-Key was done once, but its answer "
                           "is not known yet; look the result up rather than retry.")
        time.sleep(0.1)


def _record_answer(db, request: RequestKey, answer):
    table = db.kernel.idempotent_requests
    session = db.session
    session.execute(update(table).where(table.c.operation == request.operation, table.c.key == request.key)
                    .values(response=json.dumps(answer, default=str)))
    session.commit()
