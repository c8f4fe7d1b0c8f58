"""A bound on things done at once, whose slots go in the order asked for."""
from __future__ import annotations

import collections

import eventlet
from eventlet.event import Event


class Slots:
    """`limit` slots, handed out in the order they were asked for: a slot given
    back while requests wait goes to the first of them as it is, never to a
    newcomer. (eventlet's Semaphore lets a newcomer take a slot given back
    before the waiter it was meant for wakes; under load the same waiter lost
    it again and again, and a few requests in a thousand waited seconds.)"""

    def __init__(self, limit: int):
        self.free = limit
        self._waiters: collections.deque[Event] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def locked(self) -> bool:
        """Every slot is taken."""
        return self.free <= 0

    def has_free(self) -> bool:
        """A slot is free and no one waits for it."""
        return self.free > 0 and not self._waiters

    def take_free(self) -> bool:
        """A free slot, if one is free and no one waits for it."""
        if self.has_free():
            self.free -= 1
            return True
        return False

    def take(self, timeout: float) -> bool:
        """A slot within `timeout` seconds, in turn."""
        if self.take_free():
            return True
        handed = Event()
        self._waiters.append(handed)
        try:
            with eventlet.Timeout(timeout, False):
                handed.wait()
        except BaseException:  # the request was ended while it waited
            self._leave(handed)
            raise
        if handed.ready():
            return True
        self._leave(handed)
        return False

    def give_back(self):
        if self._waiters:
            self._waiters.popleft().send()
        else:
            self.free += 1

    def _leave(self, handed: Event):
        if handed.ready():  # a slot was handed over just as it stopped waiting: the next waiter's
            self.give_back()
        else:
            self._waiters.remove(handed)
