"""The garbage collector of a request-serving process.

CPython collects its youngest generation every 700 net allocations by default, an older one
every 10 younger ones, and every collection runs with the GIL held, stalling every thread of
the process. An API process under load allocates that many objects in a fraction of a request
(Flask, gRPC, psycopg and JSON objects that die young, nearly all freed by reference counting
anyway), and the stalls show in the tail: in the open-model benchmark at 443 orders/s, three
interleaved pairs gave a p99 of 132 / 89 / 115 ms with CPython's thresholds and 114 / 86 / 99
ms with these, at the same CPU per order (BENCHMARKS.md, seventh round). Cycles are still
collected, less often; the stack's memory stayed at ~440 MiB.
"""

from __future__ import annotations

import gc

# (youngest, middle, oldest): a young collection per this many net allocations, a middle one
# per this many young ones, a full one per this many middle ones.
SERVING_THRESHOLDS = (20_000, 50, 100)


def tune_for_serving(young: int | None = None) -> tuple[int, int, int]:
    """Sets the collector's thresholds for a serving process (``young`` overrides the first,
    e.g. 700 for CPython's default) and returns them."""
    thresholds = (SERVING_THRESHOLDS[0] if young is None else young, *SERVING_THRESHOLDS[1:])
    gc.set_threshold(*thresholds)
    return thresholds
