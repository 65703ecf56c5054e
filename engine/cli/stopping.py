"""Waiting for Ctrl-C or a service manager's stop, for the commands that serve until then
(``serve``, ``sandbox``, ``bc-sandbox``, ``demo --serve``)."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM arrives, then restore the previous handlers. The
    handlers are installed whatever the signals' disposition was: a process started in the
    background by a shell without job control inherits SIGINT *ignored*, and Python then
    never raises KeyboardInterrupt, so Ctrl-C's signal would be lost."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
