"""Rate limiting for the GraphQL Admin API: a cost pacer and a retry backoff.

Shopify limits each app and store with a leaky bucket of *cost points*: every response says
how full the bucket is (``extensions.cost.throttleStatus``: ``maximumAvailable``,
``currentlyAvailable``, ``restoreRate`` points per second) and a request whose requested cost
exceeds what is available is answered ``THROTTLED``. :class:`Pacer` keeps a model of that
bucket and, before each request, sleeps only as long as the bucket needs to refill to the
request's expected cost: bursts use the whole bucket, steady state runs at the restore rate,
and the bucket is never asked for more than it has.

Clock and sleep are injectable so tests run without real waiting.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    """The bucket as Shopify reported it in one response."""

    maximum_available: float
    currently_available: float
    restore_rate: float

    @classmethod
    def from_extensions(cls, extensions: Any) -> ThrottleStatus | None:
        """Read ``extensions.cost.throttleStatus``; ``None`` when absent or malformed."""
        try:
            status = extensions["cost"]["throttleStatus"]
            return cls(
                maximum_available=float(status["maximumAvailable"]),
                currently_available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class QueryCost:
    """``extensions.cost`` of one response (``actual`` is None when not executed)."""

    requested: float | None
    actual: float | None
    throttle: ThrottleStatus | None

    @classmethod
    def from_extensions(cls, extensions: Any) -> QueryCost | None:
        if not isinstance(extensions, dict) or not isinstance(extensions.get("cost"), dict):
            return None
        cost = extensions["cost"]
        return cls(
            requested=_number(cost.get("requestedQueryCost")),
            actual=_number(cost.get("actualQueryCost")),
            throttle=ThrottleStatus.from_extensions(extensions),
        )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


class Pacer:
    """Waits before a request until the modelled bucket holds its expected cost.

    ``time_scale`` > 1 runs the model's clock faster than real time (for a local test double
    whose bucket refills ``time_scale`` times faster than the rate it reports).
    """

    def __init__(
        self,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        time_scale: float = 1.0,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._clock = clock
        self._sleep = sleep
        self._scale = time_scale
        self._lock = threading.Lock()
        self._status: ThrottleStatus | None = None
        self._seen_at = 0.0
        self._inflight = 0.0  # points reserved by requests still waiting for their answer
        #: total seconds slept by the pacer (for logs and the benchmark)
        self.slept = 0.0

    @property
    def status(self) -> ThrottleStatus | None:
        return self._status

    def available(self) -> float | None:
        """The modelled points available now, or None before the first response."""
        with self._lock:
            return self._available_locked()

    def _available_locked(self) -> float | None:
        status = self._status
        if status is None:
            return None
        elapsed = max(0.0, (self._clock() - self._seen_at) * self._scale)
        return min(
            status.maximum_available,
            status.currently_available + elapsed * status.restore_rate,
        )

    def delay_for(self, cost: float) -> float:
        """Real seconds to wait until ``cost`` points are available (0 if they are)."""
        with self._lock:
            return self._delay_locked(cost)

    def _delay_locked(self, cost: float) -> float:
        status = self._status
        available = self._available_locked()
        if status is None or available is None or status.restore_rate <= 0:
            return 0.0
        # Never wait for more than the bucket can hold: such a request is sent when the
        # bucket is full and Shopify decides (MAX_COST_EXCEEDED or a throttle).
        needed = min(cost, status.maximum_available)
        if available >= needed:
            return 0.0
        return (needed - available) / status.restore_rate / self._scale

    def wait_for(self, cost: float) -> float:
        """Sleep until ``cost`` points are available; returns the seconds slept."""
        delay = self.delay_for(cost)
        if delay > 0:
            self._sleep(delay)
            self.slept += delay
        return delay

    def acquire(self, cost: float) -> float:
        """Wait for ``cost`` points and reserve them in the model; returns seconds slept.

        The reservation lets several threads share one bucket: each sees what the others
        have already taken, until the next response reports the real level.
        """
        slept = 0.0
        while True:
            with self._lock:
                delay = self._delay_locked(cost)
                if delay <= 0:
                    self._reserve_locked(cost)
                    self._inflight += cost
                    return slept
            self._sleep(delay)
            slept += delay
            self.slept += delay

    def _reserve_locked(self, cost: float) -> None:
        status = self._status
        available = self._available_locked()
        if status is None or available is None:
            return
        self._status = ThrottleStatus(
            status.maximum_available, available - cost, status.restore_rate
        )
        self._seen_at = self._clock()

    def release(self, cost: float) -> None:
        """The request that reserved ``cost`` got its answer (or failed)."""
        with self._lock:
            self._inflight = max(0.0, self._inflight - cost)

    def update(self, status: ThrottleStatus) -> None:
        """Adopt the bucket state a response reported, less what other requests in flight
        have reserved (conservative: some of them may already be charged)."""
        with self._lock:
            self._status = ThrottleStatus(
                status.maximum_available,
                status.currently_available - self._inflight,
                status.restore_rate,
            )
            self._seen_at = self._clock()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter.

    ``max_attempts`` counts the first try. Delays grow ``base_delay * 2**n`` up to
    ``max_delay``; the actual sleep is drawn uniformly from [delay/2, delay] so that several
    clients do not retry in lockstep. A server-sent ``Retry-After`` is honoured (capped by
    ``max_retry_after``).
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` is 1-based)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(ceiling / 2, ceiling)
