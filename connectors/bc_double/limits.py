"""BC's per-user OData limits: a sliding window of requests and concurrent requests.

Published limits (api-facts §6): 6,000 requests per 5-minute sliding window per user (429),
5 requests processed at once per user, the rest queued (up to 100 connections, else 429;
after 8 minutes in the queue, 503). ``time_scale`` speeds the clock up (60.0 = a 5-minute
window lasts 5 seconds) so a benchmark can run into the limits quickly.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from .errors import BcError


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force (BC's published values by default)."""

    requests_per_window: int = 6000
    window_seconds: float = 300.0
    concurrent: int = 5
    max_connections: int = 100  #: processed + queued, per user
    queue_timeout_seconds: float = 480.0
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if min(self.requests_per_window, self.concurrent, self.max_connections) < 1:
            raise ValueError("limits must be at least 1")
        if self.window_seconds <= 0 or self.time_scale <= 0 or self.queue_timeout_seconds <= 0:
            raise ValueError("window, queue timeout and time scale must be positive")


def too_many_requests(retry_after: float, message: str) -> BcError:
    """BC's 429 (its body and Retry-After are not recorded; see docs/business-central.md)."""
    return BcError(429, "Application_TooManyRequests", message,
                   headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


@dataclass
class _User:
    admitted: deque[float] = field(default_factory=deque)
    running: int = 0
    waiting: int = 0
    peak_running: int = 0
    slots: asyncio.Semaphore | None = None


class UserLimiter:
    """Admits or refuses one user's requests; call :meth:`admit` around each request."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._users: dict[str, _User] = {}

    def _user(self, user: str) -> _User:
        state = self._users.get(user)
        if state is None:
            state = self._users[user] = _User()
        if state.slots is None:
            state.slots = asyncio.Semaphore(self.limits.concurrent)
        return state

    def peak_concurrency(self, user: str) -> int:
        state = self._users.get(user)
        return state.peak_running if state else 0

    def used(self, user: str) -> int:
        """Requests of ``user`` inside the current window."""
        state = self._users.get(user)
        if state is None:
            return 0
        self._expire(state)
        return len(state.admitted)

    def _expire(self, state: _User) -> None:
        horizon = self._clock() - self.limits.window_seconds / self.limits.time_scale
        while state.admitted and state.admitted[0] <= horizon:
            state.admitted.popleft()

    @asynccontextmanager
    async def admit(self, user: str) -> AsyncIterator[None]:
        limits = self.limits
        state = self._user(user)
        self._expire(state)
        if len(state.admitted) >= limits.requests_per_window:
            wait = state.admitted[0] + limits.window_seconds / limits.time_scale - self._clock()
            raise too_many_requests(
                wait, f"Too many requests reached. Actual ({len(state.admitted) + 1}). "
                f"Maximum ({limits.requests_per_window}).")
        if state.running + state.waiting >= limits.max_connections:
            raise too_many_requests(
                1.0, f"Too many connections reached. Actual ({limits.max_connections + 1}). "
                f"Maximum ({limits.max_connections}).")
        state.admitted.append(self._clock())
        assert state.slots is not None
        state.waiting += 1
        try:
            await asyncio.wait_for(state.slots.acquire(),
                                   limits.queue_timeout_seconds / limits.time_scale)
        except TimeoutError:
            raise BcError(503, "Application_ServiceUnavailable",
                          "The request waited too long in the queue of requests of this user.",
                          headers={"Retry-After": "1"}) from None
        finally:
            state.waiting -= 1
        state.running += 1
        state.peak_running = max(state.peak_running, state.running)
        try:
            yield
        finally:
            state.running -= 1
            state.slots.release()
