"""An injectable clock, so the scheduler can be tested without real waiting.

Everything in :mod:`.schedule` asks a :class:`Clock` for the time and sleeps through it. The
:class:`SystemClock` is the real one; :class:`ManualClock` never waits: ``sleep`` moves its
time forward at once and records the requested durations, which tests assert on.

All times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "Clock",
    "ManualClock",
    "SystemClock",
    "as_utc",
]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait ``seconds`` or until ``wake`` is set; True when woken early by ``wake``."""
        ...


class SystemClock:
    """Wall-clock time; sleeping waits on the event so a stop request ends it at once."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        seconds = max(0.0, seconds)
        if wake is None:
            time.sleep(seconds)
            return False
        return wake.wait(seconds)


class ManualClock:
    """A clock for tests: ``sleep`` returns immediately after advancing the time.

    ``sleeps`` lists every requested duration. A set ``wake`` event ends a sleep at once
    without advancing the time (as a real stop request would). ``on_sleep`` (if given) is
    called with the duration before the time advances, so a test can inject events, e.g.
    request a stop "during" a sleep.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when.astimezone(UTC)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        if wake is not None and wake.is_set():
            return True
        self.advance(seconds)
        return False


def as_utc(value: datetime) -> datetime:
    """A datetime as aware UTC; a naive one (as SQLite returns them) is taken to be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
