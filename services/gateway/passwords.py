"""Passwords: what a good one is, and hashing that never runs on the eventlet
hub. scrypt takes tens of milliseconds of CPU; on the hub it stalls every
other request of the process, so it runs in a real thread (eventlet.tpool),
at most `MAX_HASHES` at once, and at a lower CPU priority than everything
else on the machine, so that a login flood on a busy machine slows logins,
not the routes beside them."""
from __future__ import annotations

import gzip
import os
import threading
from functools import cache
from pathlib import Path

from eventlet import tpool
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from werkzeug.security import check_password_hash, generate_password_hash

from services.common.errors import Unavailable
from services.gateway.slots import Slots

MIN_LENGTH = 10
MAX_LENGTH = 200
# Django's list of 20,000 common passwords (BSD licence), taken from the
# django 5.2.19 wheel (`pip download django --no-deps`,
# django/contrib/auth/common-passwords.txt.gz): lower-case, one a line.
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt.gz")

RETRY_AFTER_SECONDS = 1
# The nice value of the threads that hash (0 is everyone else's; 19 the lowest).
HASH_NICE = 10


@cache
def _common() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines)


def problem(password: str) -> str | None:
    """What is wrong with `password` as a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"At least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"At most {MAX_LENGTH} characters."
    if password.strip().lower() in _common():
        return "This password is too common: choose another."
    return None


def validate_new(password: str):
    """A marshmallow validator for any field that sets a password."""
    message = problem(password)
    if message:
        raise ValidationError(message)


class Hasher:
    """scrypt in a real thread, under a cap on hashes at once. Past the cap a
    request waits `wait` seconds at most, then is refused at once (503 with
    Retry-After) rather than queued: a login flood slows only logins. Slots go
    to the requests that waited first (a newcomer never takes one handed back)."""

    def __init__(self, max_hashes: int, wait: float):
        self._slots = Slots(max(1, int(max_hashes)))
        self.wait = max(0.0, float(wait))

    def slot(self):
        """Hold one hashing slot (a context manager); Unavailable when none frees in time."""
        if not self._slots.take(self.wait):
            raise Unavailable("Too many logins at once; try again in a moment.",
                              {"retry_after": RETRY_AFTER_SECONDS})
        return _Held(self._slots)

    @staticmethod
    def hash(password: str) -> str:
        """Call while holding a slot."""
        return tpool.execute(_at_low_priority, generate_password_hash, password)

    @staticmethod
    def check(password_hash: str, password: str) -> bool:
        """Call while holding a slot."""
        return tpool.execute(_at_low_priority, check_password_hash, password_hash, password)

    def hash_new(self, password: str) -> str:
        with self.slot():
            return self.hash(password)


def _at_low_priority(work, *args):
    """Run `work` in this (tpool) thread at HASH_NICE. Linux gives each thread
    its own nice value; the thread keeps it, since only hashes use the
    gateway's tpool threads (and an unprivileged one may not raise it back)."""
    thread = threading.get_native_id()
    if os.getpriority(os.PRIO_PROCESS, thread) < HASH_NICE:
        os.setpriority(os.PRIO_PROCESS, thread, HASH_NICE)
    return work(*args)


class _Held:
    def __init__(self, slots: Slots):
        self._slots = slots

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self._slots.give_back()


class PasswordHashing(DependencyProvider):
    """One Hasher per gateway process, from config MAX_HASHES and HASH_WAIT."""

    hasher: Hasher | None = None

    def setup(self):
        config = self.container.config
        self.hasher = Hasher(int(config["MAX_HASHES"]), float(config["HASH_WAIT"]))

    def get_dependency(self, worker_ctx) -> Hasher:
        return self.hasher
