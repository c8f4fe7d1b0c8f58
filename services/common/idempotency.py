"""Idempotency-Key for RPC writes: a retry of a write (after a timeout, a
dropped connection, a double click) returns the first answer and writes
nothing twice, at any instance, at any time.

    @rpc
    @idempotent
    def open_case(self, payload, actor, assignee): ...

    self.welfare.open_case(payload, actor, assignee, idempotency_key="...")

The key and the call's answer are stored in the write's own transaction, so a
write and its answer exist together or not at all, whatever crashes when: for
the call it wraps, @idempotent installs its own committer on the worker's
database (WorkerDatabase.committer, the unit of work's seam), CommitWithAnswer,
which holds the method's `uow.commit()` open until the answer is known. The
same key with other arguments (another body, or another caller) is a 422. A
call that failed wrote nothing and may be retried with the same key.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json

from sqlalchemy.exc import IntegrityError

from services.common.clock import naive_utcnow
from services.common.db import CommitNow, UnitOfWork
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


class KeyAlreadyUsed(Exception):
    """Another request with this Idempotency-Key committed first."""


class RequestKey:
    def __init__(self, operation: str, key: str, fingerprint: str):
        self.operation, self.key, self.fingerprint = operation, key, fingerprint


class CommitWithAnswer:
    """The committer of a call under an Idempotency-Key: each `uow.commit()`
    only flushes and leaves the transaction open (the unit is `held`); once the
    call has its answer, commit_with_answer writes the key and the answer in
    that same transaction and commits it all, then publishes through `then`
    (the worker's own committer)."""

    def __init__(self, request: RequestKey, then: CommitNow):
        self.request = request
        self.then = then
        self.held: list[UnitOfWork] = []  # the call's units of work, all on the worker's one session

    def commit(self, uow: UnitOfWork):
        uow.held = True
        self.held.append(uow)

    def commit_with_answer(self, answer):
        """The key, its answer and the write, at once. KeyAlreadyUsed (and
        nothing written) when the same key committed first, at any instance.
        Nothing to do when the call wrote nothing."""
        if not self.held:
            return
        request, session, kernel = self.request, self.held[0].session, self.held[0].kernel
        try:
            kernel.remember_answer.rows(session, {
                "operation": request.operation, "key": request.key, "fingerprint": request.fingerprint,
                "response": json.dumps(answer, default=str), "created_at": naive_utcnow()})
            self.then.finish(session, self.held)
        except IntegrityError:
            self.then.rollback(session)
            raise KeyAlreadyUsed(request.key)

    def rollback(self, session):
        self.then.rollback(session)


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
        committer = CommitWithAnswer(request, then=self.db.committer)
        self.db.committer = committer
        try:
            answer = method(self, *args, **kwargs)
            committer.commit_with_answer(answer)  # if it wrote: the write with its answer
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
            self.db.committer = committer.then
            self.db.committer.rollback(self.db.session)  # whatever was not committed with its answer

    # The method's own signature plus the key, so that nameko's check of a call's
    # arguments (IncorrectSignature) sees what the method really takes.
    signature = inspect.signature(method)
    call.__signature__ = signature.replace(parameters=[*signature.parameters.values(), inspect.Parameter(
        "idempotency_key", inspect.Parameter.KEYWORD_ONLY, default=None)])
    return call


def _earlier_answer(db, request: RequestKey):
    """The first answer given under this key; None if there was none."""
    db.committer.rollback(db.session)  # see what other transactions committed meanwhile
    rows = db.kernel.earlier_answer.rows(db.session, {"operation": request.operation, "key": request.key})
    if not rows:
        return None
    fingerprint, response = rows[0]
    if fingerprint != request.fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
    return json.loads(response)
