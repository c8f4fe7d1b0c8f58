"""How every Linli process runs Python, set once when the kernel is imported
(`services.common.service` imports this module).

The garbage collector: CPython collects its youngest generation after 700 new
container objects (lists, dicts, instances) and the older ones every 10 of
those. A request allocates thousands (the HTTP parsing, nameko's worker
context, marshmallow, SQLAlchemy, kombu), so the collector ran several times
per request, each time walking objects that live as long as the process.
Collecting after GC_YOUNG_THRESHOLD instead cut the gateway's CPU per
donation write by 10-20 % under load (bench/README.md); cycles are still
collected, a few MB later. Only cycles wait for it: most objects are freed by
their reference count the moment they are dropped. And what the imports made
(modules, classes, nameko's and SQLAlchemy's tables of them) is frozen:
never walked again by a full collection (another ~5 % in the gateway)."""
from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 50_000
GC_OLDER_THRESHOLDS = (20, 20)


def tune_garbage_collector():
    """Once, when the kernel is imported: the libraries are imported by then."""
    gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)
    gc.freeze()


tune_garbage_collector()
