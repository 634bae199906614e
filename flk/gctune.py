"""The cyclic garbage collector's settings for the long-running services (gateway, worker).

With CPython's defaults (a young collection every 700 net container allocations) a gateway
under load ran a young collection every couple of requests, and each one traversed every
object of every request in flight: sampled with `py-spy --native` at 700 submissions/s,
`gc_collect_main` was the largest single item of the gateway's busy time. Nearly all of
a request's objects die by reference counting; the collector is only there for the few
cycles (exceptions with tracebacks, futures and their callbacks), which can wait longer.
What exists once the service has started (modules, configuration, metric families) is never
garbage: `gc.freeze()` moves it out of every later collection.
"""

from __future__ import annotations

import gc
from typing import Final

# Young collections ~30× rarer; older generations at their usual ratio to it.
THRESHOLDS: Final = (20_000, 10, 10)


def tune() -> None:
    """Freeze what start-up created and space collections out; call once start-up is done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
