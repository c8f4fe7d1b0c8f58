"""How every Linli process runs Python, set once when the kernel is imported
(`services.common.service` imports this module).

The garbage collector: CPython collects its youngest generation after 700 new
container objects (lists, dicts, instances), the middle one every 10 of
those and the oldest every 10 of those. A request allocates thousands (the
HTTP parsing, nameko's worker context, marshmallow, SQLAlchemy, kombu), so
with CPython's settings the collector ran several times per request, and a
full collection every few requests walked every object the process keeps.
What the imports made (modules, classes, nameko's and SQLAlchemy's tables of
them) is frozen: never walked again by a full collection.

A collection pauses the whole process, and its pause grows with what it
walks: a young collection after GC_YOUNG_THRESHOLD new objects takes a few
milliseconds. Under load a young collection finds the objects of every
request in flight still alive, so they are moved on to the middle
generation, and when they become garbage later (a request's cycles: its
exception and traceback, its green threads) only a middle collection frees
them. Collected every GC_OLDER_THRESHOLDS[0] young ones, the middle
generation stays small (a pause of ~10-20 ms in the gateway); collected
every 200 (tried), the gateway's held 240,000 dead objects and paused it
285 ms. The first tuning here, a young generation of 50,000, paused the
gateway 20-50 ms each time, about twice a second under load: that set the
p99 of every request at half load, and the tail of refusals under overload
(bench/README.md). The oldest generation: every GC_OLDER_THRESHOLDS[1]
middle collections at most (CPython also waits until a quarter more objects
have lived that long), a pause of ~50 ms in the gateway.

Better than collecting a worker's garbage is leaving none: nameko's worker
context holds the worker's service instance, whose injected dependencies hold
the context again (an RPC proxy, the database), so every worker ended as a
cycle, with its request, its proxies and its sessions hanging off it (~50
objects a request in the gateway), left to the collector. Under an overload
the admitted requests live long enough to reach the oldest generation, and
one full collection of 126,000 such objects paused the gateway 184 ms. The
container now lets go of the service instance once the worker is torn down
(`let_go_of_finished_workers`): the cycle is broken and reference counting
frees the worker at once.

Log records: for every record Python's logging looks up the caller's file,
line and function (walking the stack), the thread, the process and its name.
No Linli line shows any of them (services/common/logs.py: time, level,
service, logger, message, request id), and a gift writes a line in the
gateway and another in donations: the switches of the logging HOWTO's
"Optimization" section turn the lookups off (a quarter of a line's CPU)."""
from __future__ import annotations

import gc
import logging

from nameko.containers import ServiceContainer

GC_YOUNG_THRESHOLD = 10_000
GC_OLDER_THRESHOLDS = (4, 100)


def tune_garbage_collector():
    """Once, when the kernel is imported: the libraries are imported by then."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)
    gc.freeze()


def let_go_of_finished_workers():
    """After nameko's teardown of a worker (every dependency's
    worker_teardown), its context no longer holds the service instance.
    Nothing reads it afterwards; what outlives the worker (a stream's body)
    holds what it needs itself."""
    teardown = ServiceContainer._worker_teardown

    def _worker_teardown(self, worker_ctx):
        try:
            teardown(self, worker_ctx)
        finally:
            worker_ctx.service = None

    ServiceContainer._worker_teardown = _worker_teardown


def lighter_log_records():
    """What no Linli line shows is not gathered for it (the module's doc)."""
    logging._srcfile = None  # the HOWTO's switch for the caller's file, line and function
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


tune_garbage_collector()
let_go_of_finished_workers()
lighter_log_records()
