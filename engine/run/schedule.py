"""Scheduled sync: cron per shop and direction, one run per shop at a time, retries.

How it works (see docs/scheduling.md for the user's view):

* Every (shop, direction) with a cron expression is a :class:`JobSpec`. Its next slot is the
  first cron time after the start of its last run in the state store's run log, so a restart
  neither re-runs a slot nor runs every slot missed during downtime: one catch-up run, then
  the next slot after that run. A job that never ran waits for its first slot.
* Before a run the scheduler takes the lease ``shop:<name>`` in the state store (shared by
  every process and machine using the same state database). A held lease means another
  process is syncing the shop: the slot is skipped with a log line. While the run lasts a
  heartbeat thread renews the lease; a crashed holder stops renewing and its lease expires.
* A failed run is retried with exponential backoff and jitter up to ``retries`` times, then
  reported. The scheduler never moves a cursor: the sync job advances it only on success.
* A stop request (SIGTERM/SIGINT in the CLI) sets the :class:`StopToken`; the job finishes the
  current record and returns, the scheduler releases the lease and returns.

The job itself is injected (:data:`Job`), so this module does not depend on the sync code.
Jobs run one at a time in the calling thread: the rule engine is not thread-safe, so a
deployment scales by running more instances, not threads.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from croniter import croniter

from .. import exitcodes
from ..clock import Clock, SystemClock, as_utc
from ..config import check_shop_names
from ..errors import ConfigError, CustsyncError, FatalError
from ..masking import mask_text, terminal_safe
from ..ports import RunRecord

__all__ = [
    "DIRECTIONS",
    "LEASE_TTL_SECONDS",
    "HealthRow",
    "HealthSource",
    "Job",
    "JobHealth",
    "JobSpec",
    "LeaseHeartbeat",
    "RunOutcome",
    "RunReport",
    "ScheduleState",
    "Scheduler",
    "ShopBusy",
    "SlotLedger",
    "StopToken",
    "acquire_shop_lease",
    "backoff_delay",
    "dead_local_holder",
    "format_counts",
    "job_health",
    "jobs_from_config",
    "last_run_start",
    "lease_fence",
    "lease_holder",
    "lease_name",
    "make_holder_id",
    "next_slot",
    "parse_cron",
    "safe_error",
    "shop_lease",
    "stamp",
]

log = logging.getLogger("custsync.schedule")

#: directions a shop's schedule can name, in run order when both are due together
DIRECTIONS: tuple[str, ...] = ("import", "export")

#: run statuses (the run log's vocabulary)
SUCCEEDED = "succeeded"
PARTIAL = "partial"  # finished, some records failed; the sync job did not advance the cursor
FAILED = "failed"
ABANDONED = "abandoned"  # stopped early on request; the cursor did not advance
REFUSED = "refused"  # nothing attempted (a stale saved plan): neither success nor failure
SKIPPED = "skipped"  # not a run: the lease was held elsewhere or the slot was already run

_RUN_LOG_STATUSES = frozenset({SUCCEEDED, PARTIAL, FAILED, ABANDONED, REFUSED})
_COUNT_ORDER = ("created", "updated", "linked", "skipped", "failed")
_EMPTY_COUNTS: Mapping[str, int] = MappingProxyType({})


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


class StopToken(threading.Event):
    """Set when the current run should stop after the record it is working on.

    A ``threading.Event`` (so it can be passed wherever an Event is expected) with the reason
    it was set, for the log.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""
        #: the lease the run holds (a state.Fence), for the job to fence its writes with
        self.fence: Any = None

    def stop(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
        self.set()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job: a shop's direction on a cron expression."""

    shop: str
    direction: str
    cron: str
    retries: int = 3
    retry_backoff_seconds: float = 30.0
    #: the shop's configuration, handed to the job unchanged
    shop_config: Any = None

    @property
    def key(self) -> str:
        return f"{self.shop}/{self.direction}"


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a job returns.

    ``status`` is one of succeeded, partial, failed, abandoned, refused (not retried, not a
    failure). ``retriable`` False says a
    retry cannot help (bad configuration, authentication). ``run_id`` is the run-log entry
    the job wrote itself; when it is None the scheduler records the run.
    """

    status: str
    counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY_COUNTS)
    error: str = ""
    retriable: bool = True
    run_id: int | None = None


#: the injected job: (shop configuration, direction, stop token) -> outcome
Job = Callable[[Any, str, StopToken], RunOutcome]


@dataclass(frozen=True, slots=True)
class RunReport:
    """What the scheduler did for one due slot (after retries)."""

    shop: str
    direction: str
    slot: datetime
    status: str
    attempts: int = 0
    counts: Mapping[str, int] = field(default_factory=lambda: _EMPTY_COUNTS)
    error: str = ""
    holder: str | None = None  # who held the lease when skipped


class ScheduleState(Protocol):
    """The part of :class:`~.ports.StateStore` the scheduler uses."""

    def start_run(
        self, shop: str, direction: str, started_at: datetime, holder: str = ""
    ) -> int: ...

    def finish_run(
        self, run_id: int, status: str, counts: Mapping[str, int], error: str = ""
    ) -> None: ...

    def runs(self, shop: str | None = None, limit: int = 20) -> list[RunRecord]: ...

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool: ...

    def renew_lease(self, name: str, holder: str, ttl_seconds: float) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...


class SlotLedger(Protocol):
    """Who decides whether a slot still needs its run (asked under the shop lease).

    The embedded scheduler asks its run log (:func:`last_run_start`); a Celery worker asks
    the dispatch table, where a run its killed predecessor left does not count."""

    def already_done(self, spec: JobSpec, slot: datetime) -> str | None:
        """Why the slot needs no run (None: run it)."""
        ...

    def finished(self, spec: JobSpec, slot: datetime, report: RunReport) -> None:
        """The slot's run ended (still under the lease)."""
        ...


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def parse_cron(expression: str, where: str = "schedule") -> str:
    """Check a cron expression (5 fields or an alias such as ``@hourly``; evaluated in UTC);
    ConfigError naming ``where`` if invalid."""
    text = (expression or "").strip()
    fields = len(text.split())
    if not croniter.is_valid(text) or not (fields == 5 or (fields == 1 and text[:1] == "@")):
        raise ConfigError(
            f"{where}: invalid cron expression {expression!r} "
            "(five fields: minute hour day-of-month month day-of-week, e.g. '*/15 * * * *')"
        )
    return text


def next_slot(cron: str, after: datetime) -> datetime:
    """The first cron time strictly after ``after`` (UTC)."""
    nxt = croniter(cron, as_utc(after)).get_next(datetime)
    return as_utc(nxt)


def backoff_delay(
    attempt: int, base: float, rng: random.Random | None = None, cap: float = 3600.0
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    Exponential (base, 2*base, 4*base, ...) capped at ``cap``, with "equal jitter": half
    the delay is fixed, half random, so instances that failed together do not retry together.
    """
    delay = min(cap, max(0.0, base) * (2 ** max(0, attempt - 1)))
    rand = (rng or random).random()
    return delay / 2 + rand * delay / 2


def lease_name(shop: str) -> str:
    return f"shop:{shop}"


def make_holder_id() -> str:
    """``hostname:pid:random``: unique per process, readable in logs and ``status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def dead_local_holder(holder: str | None) -> bool:
    """Whether ``holder`` (``hostname:pid:random``) is a process of this machine that no
    longer runs, so its lease may be taken over at once instead of after its TTL.

    Relies on host names being unique among the instances sharing a state database.
    """
    if not holder:
        return False
    parts = holder.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def acquire_shop_lease(
    state: ScheduleState, name: str, holder: str, ttl: float
) -> tuple[bool, str | None]:
    """Take lease ``name``; True, None when taken, else False and who holds it.

    A lease left by a killed process of this machine (see :func:`dead_local_holder`) is taken
    over at once, so a service restarted after a crash does not wait out the TTL.
    """
    if state.acquire_lease(name, holder, ttl):
        return True, None
    other = lease_holder(state, name)
    if other is not None and dead_local_holder(other):
        log.info(
            "%s taking over lease %s: its process %s is gone", stamp(datetime.now(UTC)), name, other
        )
        state.release_lease(name, other)
        if state.acquire_lease(name, holder, ttl):
            return True, None
        other = lease_holder(state, name)
    return False, other


def lease_fence(state: object, name: str, holder: str) -> Any:
    """The fence (:class:`~.state.Fence`) of the lease ``name`` just taken by ``holder``, or
    None when the store keeps no generations."""
    from .state import Fence

    reader = getattr(state, "lease", None)
    if reader is None:
        return None
    try:
        lease = reader(name)
    except Exception:  # fencing is a safety net: a store that cannot say runs unfenced
        log.debug("lease(%s) failed", name, exc_info=True)
        return None
    generation = getattr(lease, "generation", None)
    if lease is None or generation is None or getattr(lease, "holder", None) != holder:
        return None
    return Fence(name, holder, int(generation))


def lease_holder(state: object, name: str) -> str | None:
    """Who holds lease ``name`` now, if the store can tell (None when free or unknown)."""
    getter = getattr(state, "lease_holder", None)
    if getter is None:
        return None
    try:
        found = getter(name)
    except Exception:  # a diagnostic only: never fail a run over it
        log.debug("lease_holder(%s) failed", name, exc_info=True)
        return None
    if found is None:
        return None
    holder = getattr(found, "holder", found)
    return str(holder) if holder else None


def last_run_start(state: ScheduleState, shop: str, direction: str) -> datetime | None:
    """Start time of the newest run of ``shop``/``direction`` in the run log. A refused run
    (e.g. a stale ``sync --plan``) synced nothing, so it does not count as a slot's run."""
    latest: datetime | None = None
    for run in state.runs(shop=shop, limit=200):
        if run.shop != shop or run.direction != direction or run.status == REFUSED:
            continue
        started = as_utc(run.started_at)
        if latest is None or started > latest:
            latest = started
    return latest


def format_counts(counts: Mapping[str, int]) -> str:
    """``created=3 updated=1 skipped=2 failed=0`` (the usual four always, others after)."""
    parts = [f"{key}={int(counts.get(key, 0))}" for key in _COUNT_ORDER if key != "linked"]
    if "linked" in counts:
        parts.insert(2, f"linked={int(counts['linked'])}")
    parts += [
        f"{key}={int(value)}" for key, value in sorted(counts.items()) if key not in _COUNT_ORDER
    ]
    return " ".join(parts)


def safe_error(text: str, limit: int = 300) -> str:
    """One line, e-mail addresses and phones masked, control and bidi characters escaped,
    bounded length: fit for a log line or a terminal."""
    one_line = " ".join(str(text).split())
    masked = terminal_safe(mask_text(one_line))
    return masked if len(masked) <= limit else masked[: limit - 3] + "..."


def stamp(when: datetime) -> str:
    """``2026-11-28T10:15:00Z``"""
    return as_utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def _field(obj: Any, *names: str) -> Any:
    """A field of a config object or mapping, by its first present name."""
    for name in names:
        if isinstance(obj, Mapping):
            if name in obj:
                return obj[name]
        elif hasattr(obj, name):
            return getattr(obj, name)
    return None


def jobs_from_config(config: Any, shops: Sequence[str] = ()) -> list[JobSpec]:
    """The scheduled jobs of a config: one per shop and direction with a cron expression.

    ``shops`` limits them to the named shops (UsageError for a name not in the config).
    """
    all_shops = list(_field(config, "shops") or ())
    names = [str(_field(shop, "name")) for shop in all_shops]
    check_shop_names(shops, names)
    specs: list[JobSpec] = []
    for index, shop in enumerate(all_shops):
        name = names[index]
        if shops and name not in shops:
            continue
        schedule = _field(shop, "schedule")
        if schedule is None:
            continue
        retries = _field(schedule, "retries")
        backoff = _field(schedule, "retry_backoff_seconds")
        for direction in DIRECTIONS:
            cron = _field(schedule, direction, f"{direction}_", f"{direction}_cron")
            if not cron:
                continue
            where = f"shops[{index}] ({name}).schedule.{direction}"
            specs.append(
                JobSpec(
                    shop=name,
                    direction=direction,
                    cron=parse_cron(str(cron), where),
                    retries=3 if retries is None else int(retries),
                    retry_backoff_seconds=30.0 if backoff is None else float(backoff),
                    shop_config=shop,
                )
            )
    return specs


# --------------------------------------------------------------------------------------------
# Lease heartbeat
# --------------------------------------------------------------------------------------------


class LeaseHeartbeat:
    """Renews a lease every ``interval`` seconds in a daemon thread while a run lasts.

    When a renewal is refused (the lease expired and someone else took it), ``lost`` is set
    and the run's stop token is triggered: two writers for one shop must never overlap. A
    renewal that raises (database briefly unavailable) is retried at the next beat.
    """

    def __init__(
        self,
        state: ScheduleState,
        name: str,
        holder: str,
        ttl: float,
        interval: float,
        token: StopToken,
    ) -> None:
        self._state = state
        self._name = name
        self._holder = holder
        self._ttl = ttl
        self._interval = interval
        self._token = token
        self._done = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease {name}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=max(1.0, self._interval))

    def _beat(self) -> None:
        while not self._done.wait(self._interval):
            try:
                renewed = self._state.renew_lease(self._name, self._holder, self._ttl)
            except Exception as exc:
                log.warning(
                    "lease %s: renewal failed, retrying: %s", self._name, safe_error(str(exc))
                )
                continue
            if not renewed:
                self.lost.set()
                self._token.stop(f"lease {self._name} lost")
                return


#: how long a killed holder's lease blocks its shop (the default of ``schedule``, ``sync``,
#: ``orders map`` and the console's approvals)
LEASE_TTL_SECONDS = 60.0


class ShopBusy(Exception):
    """Another process holds the shop's lease."""

    def __init__(self, shop: str, holder: str | None) -> None:
        super().__init__(f"shop {shop} is being synced by {holder or 'another process'}")
        self.shop = shop
        self.holder = holder


@contextmanager
def shop_lease(
    state: Any,
    shop: str,
    holder: str,
    ttl: float,
    stop: StopToken,
    on_unreleased: Callable[[str], None] | None = None,
) -> Iterator[Any]:
    """Hold ``shop``'s lease for the ``with`` block, renewed every ``ttl / 3`` seconds; yields
    its fence (None when the store keeps none). ShopBusy when another process holds it; when
    a renewal is refused (the lease was lost), ``stop`` is set so that no write follows. The
    lease is given back at the end; when the state database cannot be written (a full disk)
    that is said (``on_unreleased``, else the log) without hiding the error that ended the
    run: the lease expires after ``ttl``."""
    name = lease_name(shop)
    acquired, other = acquire_shop_lease(state, name, holder, ttl)
    if not acquired:
        raise ShopBusy(shop, other)
    try:
        with LeaseHeartbeat(state, name, holder, ttl, ttl / 3, stop):
            yield lease_fence(state, name, holder)
    finally:
        try:
            state.release_lease(name, holder)
        except CustsyncError as exc:
            message = f"lease {name} not released ({exc.render()}); it expires within {ttl:g}s"
            (on_unreleased or log.warning)(message)


# --------------------------------------------------------------------------------------------
# The scheduler
# --------------------------------------------------------------------------------------------


class Scheduler:
    """Runs :class:`JobSpec` s on their cron schedules through an injected :data:`Job`.

    ``clock`` supplies time and sleeping (tests pass a :class:`~.clock.ManualClock`);
    ``rng`` the backoff jitter; ``holder`` the lease holder id. ``lease_ttl`` is how long a
    crashed holder blocks a shop; the heartbeat renews every ``lease_ttl / 3`` seconds.
    ``max_sleep`` bounds one idle sleep so a changed wall clock is noticed.
    """

    def __init__(
        self,
        jobs: Sequence[JobSpec],
        job: Job,
        state: ScheduleState,
        *,
        clock: Clock | None = None,
        holder: str | None = None,
        lease_ttl: float = LEASE_TTL_SECONDS,
        heartbeat_interval: float | None = None,
        rng: random.Random | None = None,
        max_backoff: float = 3600.0,
        max_sleep: float = 60.0,
        request_quiet: float = 10.0,
        request_max_wait: float = 60.0,
    ) -> None:
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be positive")
        self.jobs = list(jobs)
        self._job = job
        self._state = state
        self._clock: Clock = clock or SystemClock()
        self.holder = holder or make_holder_id()
        self.lease_ttl = float(lease_ttl)
        self._interval = heartbeat_interval or self.lease_ttl / 3
        self._rng = rng or random.Random()
        self._max_backoff = max_backoff
        self._max_sleep = max_sleep
        self._stop = StopToken()
        self._current: StopToken | None = None
        # re-entrant: request_stop runs in a signal handler on the thread that may hold it
        self._lock = threading.RLock()
        self._next: dict[str, datetime] = {}
        #: a requested run (webhooks) starts once no request came for ``request_quiet``
        #: seconds, or ``request_max_wait`` seconds after the first (a steady stream)
        self._request_quiet = request_quiet
        self._request_max_wait = request_max_wait

    # ---- control -------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self, reason: str = "stop requested") -> None:
        """Finish the current record, then stop (safe to call from a signal handler)."""
        with self._lock:
            current = self._current
        self._stop.stop(reason)
        if current is not None:
            current.stop(reason)

    # ---- planning --------------------------------------------------------------------------

    def plan(self, *, run_never_run: bool = False) -> dict[str, datetime]:
        """Compute each job's next slot from the run log (and remember it).

        A job with runs is due at the first slot after its newest run's start (in the past
        after downtime: one catch-up run). A job without runs waits for its next slot, or
        is due now with ``run_never_run`` (``schedule --once`` from an external cron).
        """
        now = self._clock.now()
        for spec in self.jobs:
            last = last_run_start(self._state, spec.shop, spec.direction)
            if last is not None:
                self._next[spec.key] = next_slot(spec.cron, last)
            elif run_never_run:
                self._next[spec.key] = now
            else:
                self._next[spec.key] = next_slot(spec.cron, now)
        return dict(self._next)

    def next_runs(self) -> dict[str, datetime]:
        return dict(self._next)

    def due(self) -> list[JobSpec]:
        """Jobs whose next slot has come, earliest first (import before export on a tie)."""
        now = self._clock.now()
        order = {d: i for i, d in enumerate(DIRECTIONS)}
        ready = [s for s in self.jobs if self._next.get(s.key, now) <= now]
        return sorted(ready, key=lambda s: (self._next.get(s.key, now), order.get(s.direction, 9)))

    def requested(self) -> list[tuple[JobSpec, datetime]]:
        """Scheduled jobs with a run request (webhooks) that is due now, with the time of its
        latest request (the run covers every request made up to then)."""
        reader = getattr(self._state, "run_requests", None)
        if reader is None:
            return []
        now = self._clock.now()
        specs = {spec.key: spec for spec in self.jobs}
        due = []
        for request in reader():
            spec = specs.get(f"{request.shop}/{request.direction}")
            if spec is None:
                continue
            quiet = (now - request.last_at).total_seconds() >= self._request_quiet
            waited = (now - request.first_at).total_seconds() >= self._request_max_wait
            if quiet or waited:
                due.append((spec, request.last_at))
        return due

    def run_requested(self) -> list[RunReport]:
        """Run the jobs whose run requests are due; a request is dropped once a run that
        started after it covered it (a request made during the run stays for the next)."""
        reports: list[RunReport] = []
        for spec, last_request in self.requested():
            if self.stopping:
                break
            report = self.run_job(spec, last_request)
            reports.append(report)
            if report.holder is None:  # not skipped for another process's lease
                self._state.clear_run_request(  # type: ignore[attr-defined]
                    spec.shop, spec.direction, last_request
                )
        return reports

    # ---- loops -----------------------------------------------------------------------------

    def run_pending(self) -> list[RunReport]:
        """Run every due job once (in slot order) and schedule its next slot, then the jobs
        whose run requests (webhooks) are due."""
        reports: list[RunReport] = self._run_slots()
        if not self.stopping:
            reports.extend(self._guarded(self.run_requested, "run requests"))
        return reports

    def _guarded(self, run: Callable[[], list[RunReport]], what: str) -> list[RunReport]:
        try:
            return run()
        except Exception as exc:  # the state database failed: keep the service up
            self._log(f"{what}: status=failed error=\"{safe_error(str(exc))}\"")
            return []

    def _run_slots(self) -> list[RunReport]:
        reports: list[RunReport] = []
        for spec in self.due():
            if self.stopping:
                break
            slot = self._next.get(spec.key, self._clock.now())
            try:
                reports.append(self.run_job(spec, slot))
            except Exception as exc:
                # the state database itself failed (lease, run log): report the slot as
                # failed and keep the service up; the next slot catches up
                error = (
                    exc.render()
                    if isinstance(exc, CustsyncError)
                    else (f"{type(exc).__name__}: {exc}")
                )
                self._log(
                    f"shop={spec.shop} direction={spec.direction} status=failed "
                    f'error="{safe_error(error)}"'
                )
                reports.append(RunReport(spec.shop, spec.direction, slot, FAILED, error=error))
            self._next[spec.key] = next_slot(spec.cron, max(self._clock.now(), slot))
        return reports

    def run_forever(self) -> int:
        """Run jobs as they fall due until stopped; returns the exit code (0 on a clean stop)."""
        self._log(
            f"scheduler started holder={self.holder} jobs={len(self.jobs)} "
            f"lease_ttl={self.lease_ttl:g}s"
        )
        if not self._next:
            self.plan()
        self._log_next()
        while not self.stopping:
            ran = self.run_pending()
            if ran and not self.stopping:
                self._log_next(only={f"{r.shop}/{r.direction}" for r in ran})
            if self.stopping:
                break
            wake = min(self._next.values(), default=None)
            if wake is None:
                self._log("no scheduled jobs; waiting for a stop signal")
                delay = self._max_sleep
            else:
                delay = (wake - self._clock.now()).total_seconds()
            if hasattr(self._state, "run_requests"):  # look for requested runs meanwhile
                delay = min(delay, max(self._request_quiet / 2, 1.0))
            if delay > 0:
                self._clock.sleep(min(delay, self._max_sleep), self._stop)
        self._log(f"scheduler stopped ({self._stop.reason or 'stop requested'})")
        return exitcodes.OK

    def run_once(self) -> tuple[list[RunReport], int]:
        """``schedule --once``: run every due job (never-run jobs count as due), then return.

        Exit code: 1 when a run failed after its retries, 3 when one finished with failed
        records, else 0 (a slot skipped because another process holds the lease is fine).
        """
        self.plan(run_never_run=True)
        reports = self.run_pending()
        if not reports:
            self._log("nothing due")
        statuses = {r.status for r in reports}
        if FAILED in statuses:
            return reports, exitcodes.ERROR
        if PARTIAL in statuses:
            return reports, exitcodes.PARTIAL
        return reports, exitcodes.OK

    # ---- one slot -------------------------------------------------------------------------

    def run_job(
        self, spec: JobSpec, slot: datetime, *, ledger: SlotLedger | None = None
    ) -> RunReport:
        """Run one due slot of ``spec`` under the shop lease, with retries. ``ledger``
        replaces the run log as the judge of whether the slot already ran."""
        name = lease_name(spec.shop)
        taken, holder = acquire_shop_lease(self._state, name, self.holder, self.lease_ttl)
        if not taken:
            other = holder or "another process"
            self._log(
                f"skipped: {spec.shop} is being synced by {other} "
                f"(direction={spec.direction} slot={stamp(slot)})"
            )
            return RunReport(spec.shop, spec.direction, slot, SKIPPED, holder=other)
        token = StopToken()
        token.fence = lease_fence(self._state, name, self.holder)
        with self._lock:
            self._current = token
        if self.stopping:
            token.stop(self._stop.reason)
        try:
            with LeaseHeartbeat(
                self._state, name, self.holder, self.lease_ttl, self._interval, token
            ) as heartbeat:
                # Another instance may have run this slot between our wake-up and our lease.
                done = (ledger or self).already_done(spec, slot)
                if done is not None:
                    self._log(
                        f"skipped: {spec.shop} direction={spec.direction} slot "
                        f"{stamp(slot)} {done}"
                    )
                    return RunReport(spec.shop, spec.direction, slot, SKIPPED)
                self._abandon_stale_runs(spec.shop)
                report = self._attempts(spec, slot, token, heartbeat)
                if ledger is not None:
                    ledger.finished(spec, slot, report)
                return report
        finally:
            with self._lock:
                self._current = None
            try:
                self._state.release_lease(name, self.holder)
            except Exception as exc:  # it expires by itself after the TTL
                log.warning(
                    "lease %s: release failed (expires in %gs): %s",
                    name,
                    self.lease_ttl,
                    safe_error(str(exc)),
                )

    def already_done(self, spec: JobSpec, slot: datetime) -> str | None:
        """The run log's answer: a run started at or after ``slot`` ran it."""
        last = last_run_start(self._state, spec.shop, spec.direction)
        if last is not None and last >= slot:
            return f"already ran at {stamp(last)}"
        return None

    def _abandon_stale_runs(self, shop: str) -> None:
        """Runs of ``shop`` still "running" while we hold its lease belong to a process that
        died: mark them abandoned so ``runs`` and ``status`` tell the truth."""
        abandon = getattr(self._state, "abandon_running", None)
        if abandon is None:
            return
        try:
            ids = abandon(shop=shop, error="the process running it stopped (lease expired)")
        except Exception as exc:
            log.warning("run log: could not close stale runs of %s: %s", shop, safe_error(str(exc)))
            return
        if ids:
            self._log(
                f"shop={shop} marked {len(ids)} run(s) of a stopped process abandoned: "
                + ", ".join(map(str, ids))
            )

    def _attempts(
        self, spec: JobSpec, slot: datetime, token: StopToken, heartbeat: LeaseHeartbeat
    ) -> RunReport:
        attempts_allowed = max(0, spec.retries) + 1
        outcome = RunOutcome(ABANDONED)
        attempt = 0
        while attempt < attempts_allowed:
            attempt += 1
            outcome = self._one_attempt(spec, token, attempt, attempts_allowed)
            if heartbeat.lost.is_set():
                self._log(
                    f"shop={spec.shop} direction={spec.direction} lease lost during "
                    "the run: stopped after the current record"
                )
                break
            if outcome.status != FAILED or not outcome.retriable or token.is_set():
                break
            if attempt >= attempts_allowed:
                self._log(
                    f"shop={spec.shop} direction={spec.direction} status=failed "
                    f"gave up after {attempt} attempt{'s' if attempt > 1 else ''}: "
                    f"{safe_error(outcome.error)}"
                )
                break
            delay = backoff_delay(attempt, spec.retry_backoff_seconds, self._rng, self._max_backoff)
            self._log(
                f"shop={spec.shop} direction={spec.direction} retry "
                f"{attempt}/{attempts_allowed - 1} in {delay:.1f}s"
            )
            if self._clock.sleep(delay, token):
                break  # stop requested while waiting to retry
        return RunReport(
            spec.shop, spec.direction, slot, outcome.status, attempt, outcome.counts, outcome.error
        )

    def _one_attempt(
        self, spec: JobSpec, token: StopToken, attempt: int, allowed: int
    ) -> RunOutcome:
        started = self._clock.now()
        before = self._newest_run_id(spec)
        raised = True
        try:
            outcome = self._job(spec.shop_config, spec.direction, token)
            raised = False
        except (FatalError, ConfigError) as exc:
            outcome = RunOutcome(FAILED, error=exc.render(), retriable=False)
        except CustsyncError as exc:  # transient (RetriableError) or unexpected: retry
            outcome = RunOutcome(FAILED, error=exc.render())
        except Exception as exc:  # a failed run must not stop the scheduler
            log.debug("job %s raised", spec.key, exc_info=True)
            outcome = RunOutcome(FAILED, error=f"{type(exc).__name__}: {exc}")
        except BaseException:
            # hard interrupt (second signal): leave a truthful run log entry, then unwind
            if not self._close_open_runs(spec, ABANDONED, "interrupted", before):
                self._record(spec, started, RunOutcome(ABANDONED, error="interrupted"))
            raise
        if outcome.run_id is None:
            left = self._close_open_runs(spec, FAILED, outcome.error, before) if raised else []
            outcome = (
                RunOutcome(
                    outcome.status,
                    left[-1].counts,
                    outcome.error,
                    outcome.retriable,
                    left[-1].id,
                )
                if left
                else self._record(spec, started, outcome)
            )
        finished = self._clock.now()
        duration = (finished - started).total_seconds()
        line = (
            f"{stamp(started)} shop={spec.shop} direction={spec.direction} "
            f"status={outcome.status} {format_counts(outcome.counts)} "
            f"duration={duration:.1f}s"
        )
        if attempt > 1 or (allowed > 1 and outcome.status == FAILED and outcome.retriable):
            line += f" attempt={attempt}/{allowed}"
        if outcome.error:
            line += f' error="{safe_error(outcome.error)}"'
        if outcome.status == ABANDONED and token.reason and token.reason != outcome.error:
            line += f' reason="{token.reason}"'
        log.info(line)
        return outcome

    def _newest_run_id(self, spec: JobSpec) -> int | None:
        """The newest run id of the shop before an attempt (0: none; None: the run log cannot
        be read), to tell the runs a job that raises leaves from the older ones."""
        try:
            return max((r.id for r in self._state.runs(shop=spec.shop, limit=20)), default=0)
        except Exception as exc:
            log.warning(
                "run log: could not read the runs of %s: %s", spec.key, safe_error(str(exc))
            )
            return None

    def _close_open_runs(
        self, spec: JobSpec, status: str, error: str, before: int | None = None
    ) -> list[RunRecord]:
        """The runs a job that raised left in the run log, oldest first: those still
        "running" (we hold the shop's lease, so they are ours) are finished with ``status``
        and ``error``; those it finished itself (newer than run ``before``; e.g. ``sync_shop``
        records an unexpected error, then re-raises it) are kept as they are, so that one
        failure is one entry."""
        try:
            runs = [
                r
                for r in self._state.runs(shop=spec.shop, limit=20)
                if r.direction == spec.direction
            ]
            left: dict[int, RunRecord] = {}
            for run in runs:
                if run.status == "running":
                    self._state.finish_run(
                        run.id, status, dict(run.counts), safe_error(error, 2000)
                    )
                    left[run.id] = run
                elif before is not None and run.id > before:
                    left[run.id] = run
        except Exception as exc:
            log.warning(
                "run log: could not close the open runs of %s: %s", spec.key, safe_error(str(exc))
            )
            return []
        return [left[run_id] for run_id in sorted(left)]

    def _record(self, spec: JobSpec, started: datetime, outcome: RunOutcome) -> RunOutcome:
        """Write a run-log entry for a job that did not write its own."""
        status, error = outcome.status, outcome.error
        if status not in _RUN_LOG_STATUSES:
            error = error or f"run finished with status {status}"
            status = FAILED
        try:
            run_id = self._state.start_run(spec.shop, spec.direction, started, self.holder)
            self._state.finish_run(run_id, status, dict(outcome.counts), safe_error(error, 2000))
        except Exception as exc:
            log.warning("run log: could not record %s run: %s", spec.key, safe_error(str(exc)))
            return outcome
        return RunOutcome(outcome.status, outcome.counts, outcome.error, outcome.retriable, run_id)

    # ---- logging ---------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        log.info("%s %s", stamp(self._clock.now()), message)

    def _log_next(self, only: Iterable[str] | None = None) -> None:
        keys = set(only) if only is not None else None
        for spec in self.jobs:
            if keys is not None and spec.key not in keys:
                continue
            when = self._next.get(spec.key)
            if when is not None:
                self._log(
                    f"next shop={spec.shop} direction={spec.direction} "
                    f'at={stamp(when)} cron="{spec.cron}"'
                )


# --------------------------------------------------------------------------------------------
# Health (``custsync status``)
# --------------------------------------------------------------------------------------------


class HealthRow(Protocol):
    """One (shop, direction) of the state store's ``health()`` (see :class:`.state.Health`)."""

    shop: str
    direction: str
    last_success: RunRecord | None
    last_failure: RunRecord | None
    consecutive_failures: int
    running: RunRecord | None


class HealthSource(Protocol):
    def health(self, shop: str | None = None) -> Sequence[HealthRow]: ...

    def lease_holder(self, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class JobHealth:
    """The health of one scheduled job: the run log's view plus lag, lease and next run.

    ``lag_seconds`` is now minus the start of the last successful run: everything changed
    before that moment has been synced. ``consecutive_failures`` (failed or abandoned runs
    since the last success) and ``last_failure`` come from the state store; refused runs
    count as neither success nor failure.
    """

    shop: str
    direction: str
    cron: str
    last_success: datetime | None
    lag_seconds: float | None
    last_failure: RunRecord | None
    consecutive_failures: int
    lease_holder: str | None
    next_run: datetime
    running: RunRecord | None
    problems: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return not self.problems


def job_health(
    state: HealthSource,
    specs: Sequence[JobSpec],
    now: datetime,
    *,
    max_lag: float | None = None,
    max_failures: int | None = None,
) -> list[JobHealth]:
    """Health per scheduled job.

    Unhealthy when the last success is older than ``max_lag`` seconds (or there are failed
    runs and no success at all), or with ``max_failures`` or more consecutive failures. A job
    that never ran is healthy (pending its first slot).
    """
    now = as_utc(now)
    rows: dict[tuple[str, str], HealthRow] = {}
    for shop in dict.fromkeys(spec.shop for spec in specs):
        rows.update({(row.shop, row.direction): row for row in state.health(shop)})
    holders = {
        shop: lease_holder(state, lease_name(shop))
        for shop in dict.fromkeys(spec.shop for spec in specs)
    }
    result: list[JobHealth] = []
    for spec in specs:
        row = rows.get((spec.shop, spec.direction))
        success = row.last_success if row else None
        failure = row.last_failure if row else None
        running = row.running if row else None
        last_success = as_utc(success.started_at) if success else None
        lag = (now - last_success).total_seconds() if last_success else None
        starts = [as_utc(r.started_at) for r in (success, failure, running) if r is not None]
        next_run = next_slot(spec.cron, max(starts) if starts else now)
        consecutive = row.consecutive_failures if row else 0
        problems: list[str] = []
        if max_lag is not None:
            if lag is not None and lag > max_lag:
                problems.append(f"last success {lag:.0f}s ago (more than {max_lag:g}s)")
            elif lag is None and failure is not None:
                problems.append("no successful run yet, only failures")
        if max_failures is not None and consecutive >= max_failures:
            problems.append(f"{consecutive} consecutive failures")
        result.append(
            JobHealth(
                shop=spec.shop,
                direction=spec.direction,
                cron=spec.cron,
                last_success=last_success,
                lag_seconds=lag,
                last_failure=failure,
                consecutive_failures=consecutive,
                lease_holder=holders[spec.shop],
                next_run=next_run,
                running=running,
                problems=tuple(problems),
            )
        )
    return result
