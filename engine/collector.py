"""The cyclic garbage collector around phases that build or keep many objects.

CPython's collector rescans every tracked container the program keeps each time a full
collection runs: while a reader builds a million records, or while a plan decides against a
World of a million records, such collections rescan what cannot be garbage (at 1,000,000
records 12 of them took 7.1-7.5 s of a `custsync plan`).
Objects are still freed by reference counting inside these blocks; only the search for
reference cycles is changed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused", "kept_out_of_collection"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside the block (for building records that hold no cycles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


#: a threshold no count of collections reaches: the oldest generation is never collected
_NEVER = 1 << 30


@contextmanager
def kept_out_of_collection() -> Iterator[None]:
    """Only young collections inside the block: what is alive when it starts is left out of
    them (``gc.freeze``), and the oldest generation is not collected until the block ends
    (what survives two young collections inside it, such as the records a plan reads, its
    World and the links it notes for later decisions, lives that long anyway). Short-lived
    cycles are still found by the young collections."""
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)
        gc.unfreeze()
