"""The leaky bucket that throttles GraphQL requests by calculated query cost.

Shopify's model: the bucket holds up to ``size`` points and refills at ``restore_rate`` points
per second. A request needs its *requested* cost available, or it is THROTTLED (nothing runs);
after it runs, the difference between requested and actual cost is refunded.
``time_scale`` speeds the clock up (10.0 = refills ten times faster) so tests stay fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float

    def as_dict(self) -> dict[str, float]:
        return {
            "maximumAvailable": _num(self.maximum_available),
            "currentlyAvailable": _num(self.currently_available),
            "restoreRate": _num(self.restore_rate),
        }


def _num(value: float) -> float:
    """Whole numbers as ints (Shopify prints ``2000``, not ``2000.0``)."""
    rounded = round(value)
    return rounded if abs(value - rounded) < 1e-9 else round(value, 3)


class LeakyBucket:
    def __init__(
        self,
        size: float = 2000.0,
        restore_rate: float = 100.0,
        time_scale: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if size <= 0 or restore_rate <= 0 or time_scale <= 0:
            raise ValueError("bucket size, restore rate and time scale must be positive")
        self.size = float(size)
        self.restore_rate = float(restore_rate)
        self.time_scale = float(time_scale)
        self._monotonic = monotonic
        self._available = float(size)
        self._at = monotonic()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._monotonic()
        elapsed = (now - self._at) * self.time_scale
        self._at = now
        self._available = min(self.size, self._available + elapsed * self.restore_rate)

    def take(self, cost: float) -> bool:
        """Take ``cost`` points if available; ``False`` means throttled (nothing taken)."""
        with self._lock:
            self._refill()
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def refund(self, points: float) -> None:
        with self._lock:
            self._refill()
            self._available = min(self.size, self._available + max(0.0, points))

    def set_available(self, points: float) -> None:
        """For tests: start from a partly drained bucket."""
        with self._lock:
            self._refill()
            self._available = max(0.0, min(self.size, points))

    def status(self) -> ThrottleStatus:
        with self._lock:
            self._refill()
            return ThrottleStatus(self.size, int(self._available), self.restore_rate)
