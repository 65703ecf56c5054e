"""Scheduler behaviour with a manual clock and an in-memory state store: no real waiting."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.clock import ManualClock
from custsync.engine.errors import ConfigError, FatalError, RetriableError, UsageError
from custsync.engine.ports import RunRecord
from custsync.engine.run.schedule import (
    JobSpec,
    RunOutcome,
    Scheduler,
    StopToken,
    backoff_delay,
    format_counts,
    job_health,
    jobs_from_config,
    next_slot,
    safe_error,
)
from custsync.engine.run.state import SqlStateStore

T0 = datetime(2026, 11, 28, 10, 7, tzinfo=UTC)


class MemoryState:
    """Run log and leases in memory; leases expire on the injected clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.run_log: list[RunRecord] = []
        self.leases: dict[str, tuple[str, datetime]] = {}
        self.renewals = 0
        self.refuse_renewal = False
        self._lock = threading.Lock()

    def start_run(
        self, shop: str, direction: str, started_at: datetime, holder: str = ""
    ) -> int:
        with self._lock:
            run = RunRecord(len(self.run_log) + 1, shop, direction, started_at, holder=holder)
            self.run_log.append(run)
            return run.id

    def finish_run(
        self, run_id: int, status: str, counts: Mapping[str, int], error: str = ""
    ) -> None:
        assert status in ("succeeded", "partial", "failed", "abandoned", "refused"), status
        with self._lock:
            old = self.run_log[run_id - 1]
            self.run_log[run_id - 1] = RunRecord(
                old.id,
                old.shop,
                old.direction,
                old.started_at,
                self.clock.now(),
                status,
                dict(counts),
                error,
                old.holder,
            )

    def runs(self, shop: str | None = None, limit: int = 20) -> list[RunRecord]:
        found = [r for r in reversed(self.run_log) if shop is None or r.shop == shop]
        return found[:limit]

    def add_run(
        self, shop: str, direction: str, started_at: datetime, status: str, error: str = ""
    ) -> None:
        run_id = self.start_run(shop, direction, started_at)
        self.finish_run(run_id, status, {}, error)

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        with self._lock:
            now = self.clock.now()
            current = self.leases.get(name)
            if current is not None and current[0] != holder and current[1] > now:
                return False
            self.leases[name] = (holder, now + timedelta(seconds=ttl_seconds))
            return True

    def renew_lease(self, name: str, holder: str, ttl_seconds: float) -> bool:
        with self._lock:
            self.renewals += 1
            current = self.leases.get(name)
            if self.refuse_renewal or current is None or current[0] != holder:
                return False
            self.leases[name] = (holder, self.clock.now() + timedelta(seconds=ttl_seconds))
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._lock:
            if self.leases.get(name, ("",))[0] == holder:
                del self.leases[name]

    def lease_holder(self, name: str) -> str | None:
        current = self.leases.get(name)
        if current is None or current[1] <= self.clock.now():
            return None
        return current[0]


class StubJob:
    """A job that returns scripted outcomes (or raises them) and records its calls."""

    def __init__(
        self, clock: ManualClock, *outcomes: RunOutcome | Exception, duration: float = 4.2
    ) -> None:
        self.clock = clock
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str, datetime]] = []
        self.duration = duration
        self.after_call: list[object] = []

    def __call__(self, shop: object, direction: str, stop: StopToken) -> RunOutcome:
        self.calls.append((str(shop), direction, self.clock.now()))
        self.clock.advance(self.duration)
        outcome = (
            self.outcomes.pop(0)
            if self.outcomes
            else RunOutcome("succeeded", {"created": 3, "updated": 1, "skipped": 2, "failed": 0})
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def spec(
    shop: str = "main",
    direction: str = "import",
    cron: str = "*/15 * * * *",
    retries: int = 3,
    backoff: float = 10.0,
) -> JobSpec:
    return JobSpec(shop, direction, cron, retries, backoff, shop_config=shop)


class FixedRandom(random.Random):
    def random(self) -> float:
        return 0.5


def make(
    jobs: list[JobSpec], job: StubJob, state: MemoryState, clock: ManualClock, **options: object
) -> Scheduler:
    return Scheduler(jobs, job, state, clock=clock, holder="me:1:aa", rng=FixedRandom(), **options)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def state(clock: ManualClock) -> MemoryState:
    return MemoryState(clock)


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="custsync.schedule")


# ---- cron and due times -------------------------------------------------------------------


def test_schedule_fires_when_due_and_sleeps_until_the_next_slot(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    job = StubJob(clock)
    scheduler = make([spec()], job, state, clock, max_sleep=3600)

    def stop_after_two_runs(seconds: float) -> None:
        if len(job.calls) == 2:
            scheduler.request_stop("test done")

    clock.on_sleep = stop_after_two_runs
    assert scheduler.run_forever() == exitcodes.OK

    assert [c[2] for c in job.calls] == [
        datetime(2026, 11, 28, 10, 15, tzinfo=UTC),
        datetime(2026, 11, 28, 10, 30, tzinfo=UTC),
    ]
    # first sleep: 10:07 -> 10:15; after the 4.2 s run: 10:15:04.2 -> 10:30
    assert clock.sleeps[:2] == [480.0, pytest.approx(895.8)]
    text = caplog.text
    assert "next shop=main direction=import at=2026-11-28T10:15:00Z" in text
    assert (
        "2026-11-28T10:15:00Z shop=main direction=import status=succeeded "
        "created=3 updated=1 skipped=2 failed=0 duration=4.2s"
    ) in text
    assert "scheduler stopped (test done)" in text
    assert [r.status for r in state.run_log] == ["succeeded", "succeeded"]
    assert state.leases == {}


def test_missed_slots_after_downtime_run_once(clock: ManualClock, state: MemoryState) -> None:
    state.add_run("main", "import", datetime(2026, 11, 28, 8, 0, tzinfo=UTC), "succeeded")
    job = StubJob(clock)
    scheduler = make([spec()], job, state, clock)

    planned = scheduler.plan()
    assert planned["main/import"] == datetime(2026, 11, 28, 8, 15, tzinfo=UTC)
    reports = scheduler.run_pending()
    assert [r.status for r in reports] == ["succeeded"]
    assert len(job.calls) == 1  # not 8 runs for the 8 missed slots
    assert scheduler.next_runs()["main/import"] == datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
    assert scheduler.run_pending() == []  # nothing more due at 10:07


def test_restart_does_not_rerun_a_slot(clock: ManualClock, state: MemoryState) -> None:
    state.add_run("main", "import", datetime(2026, 11, 28, 10, 0, 2, tzinfo=UTC), "failed")
    scheduler = make([spec()], StubJob(clock), state, clock)
    assert scheduler.plan()["main/import"] == datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
    assert scheduler.due() == []


def test_job_that_never_ran_waits_for_its_first_slot(
    clock: ManualClock, state: MemoryState
) -> None:
    scheduler = make([spec(cron="0 2 * * *")], StubJob(clock), state, clock)
    assert scheduler.plan()["main/import"] == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def test_both_directions_due_together_run_import_first(
    clock: ManualClock, state: MemoryState
) -> None:
    job = StubJob(clock)
    scheduler = make([spec(direction="export"), spec(direction="import")], job, state, clock)
    scheduler.plan(run_never_run=True)
    scheduler.run_pending()
    assert [c[1] for c in job.calls] == ["import", "export"]


# ---- leases --------------------------------------------------------------------------------


def test_overlapping_run_is_refused_and_tried_at_the_next_slot(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    state.leases["shop:main"] = ("other-host:42:bb", T0 + timedelta(minutes=30))
    job = StubJob(clock)
    scheduler = make([spec()], job, state, clock)
    scheduler.plan(run_never_run=True)

    reports = scheduler.run_pending()
    assert [(r.status, r.holder) for r in reports] == [("skipped", "other-host:42:bb")]
    assert job.calls == []
    assert "skipped: main is being synced by other-host:42:bb" in caplog.text
    assert scheduler.next_runs()["main/import"] == datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
    assert state.leases["shop:main"][0] == "other-host:42:bb"  # not touched


def test_two_schedulers_never_run_the_same_shop_at_once(
    clock: ManualClock, state: MemoryState
) -> None:
    inner_reports = []
    second = Scheduler([spec()], StubJob(clock), state, clock=clock, holder="b:2:bb")

    def job_that_lets_the_other_instance_try(
        shop: object, direction: str, stop: StopToken
    ) -> RunOutcome:
        inner_reports.append(second.run_job(spec(), clock.now()))
        return RunOutcome("succeeded")

    first = Scheduler(
        [spec()], job_that_lets_the_other_instance_try, state, clock=clock, holder="a:1:aa"
    )
    report = first.run_job(spec(), clock.now())
    assert report.status == "succeeded"
    assert [(r.status, r.holder) for r in inner_reports] == [("skipped", "a:1:aa")]
    assert state.leases == {}  # released after the run


def test_slot_already_run_by_another_instance_is_not_run_again(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    slot = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    state.add_run("main", "import", slot + timedelta(seconds=1), "succeeded")
    job = StubJob(clock)
    report = make([spec()], job, state, clock).run_job(spec(), slot)
    assert report.status == "skipped"
    assert job.calls == []
    assert "already ran at 2026-11-28T10:00:01Z" in caplog.text


def test_expired_lease_of_a_crashed_holder_is_taken_over(
    clock: ManualClock, state: MemoryState
) -> None:
    state.leases["shop:main"] = ("crashed:9:cc", T0 + timedelta(seconds=60))
    scheduler = make([spec()], StubJob(clock), state, clock)
    assert scheduler.run_job(spec(), T0).status == "skipped"
    clock.advance(61)
    assert scheduler.run_job(spec(), T0).status == "succeeded"


def test_heartbeat_renews_the_lease_while_the_job_runs(
    clock: ManualClock, state: MemoryState
) -> None:
    def slow_job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        deadline = threading.Event()
        for _ in range(200):  # up to 2 s of real time; a few beats of 10 ms
            if state.renewals >= 3:
                break
            deadline.wait(0.01)
        return RunOutcome("succeeded")

    scheduler = make([spec()], StubJob(clock), state, clock)
    scheduler._job = slow_job
    scheduler._interval = 0.01
    assert scheduler.run_job(spec(), T0).status == "succeeded"
    assert state.renewals >= 3


def test_lost_lease_stops_the_job_after_the_current_record(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    state.refuse_renewal = True

    def job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        assert stop.wait(5), "the heartbeat should have set the stop token"
        return RunOutcome("abandoned", {"created": 1})

    scheduler = Scheduler(
        [spec()], job, state, clock=clock, holder="me:1:aa", heartbeat_interval=0.01
    )
    report = scheduler.run_job(spec(), T0)
    assert report.status == "abandoned"
    assert report.attempts == 1
    assert "lease lost during the run" in caplog.text


# ---- retries -------------------------------------------------------------------------------


def test_failed_run_is_retried_with_exponential_backoff(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    job = StubJob(
        clock,
        RuntimeError("boom"),
        RetriableError("HTTP 503"),
        RunOutcome("failed", error="timeout"),
        duration=0,
    )
    scheduler = make([spec(retries=3, backoff=10)], job, state, clock)
    report = scheduler.run_job(spec(retries=3, backoff=10), T0)

    assert report.status == "succeeded"
    assert report.attempts == 4
    # equal jitter with random() = 0.5: 3/4 of 10, 20, 40
    assert clock.sleeps == [7.5, 15.0, 30.0]
    assert [r.status for r in state.run_log] == ["failed", "failed", "failed", "succeeded"]
    assert "RuntimeError: boom" in state.run_log[0].error
    assert "retry 1/3 in 7.5s" in caplog.text
    assert "attempt=4/4" in caplog.text


def test_retries_are_bounded_then_reported(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    job = StubJob(clock, *[RunOutcome("failed", error="db down")] * 5, duration=0)
    report = make([spec()], job, state, clock).run_job(spec(retries=2, backoff=4), T0)
    assert report.status == "failed"
    assert report.attempts == 3
    assert len(job.calls) == 3
    assert clock.sleeps == [3.0, 6.0]
    assert "status=failed gave up after 3 attempts: db down" in caplog.text
    assert state.leases == {}


def test_fatal_error_is_not_retried(clock: ManualClock, state: MemoryState) -> None:
    job = StubJob(clock, FatalError("HTTP 401 from Shopify: check the access token"))
    report = make([spec()], job, state, clock).run_job(spec(), T0)
    assert (report.status, report.attempts) == ("failed", 1)
    assert clock.sleeps == []
    assert state.run_log[0].error == "HTTP 401 from Shopify: check the access token"


def test_partial_run_is_not_retried(clock: ManualClock, state: MemoryState) -> None:
    job = StubJob(clock, RunOutcome("partial", {"created": 2, "failed": 1}))
    report = make([spec()], job, state, clock).run_job(spec(), T0)
    assert (report.status, report.attempts) == ("partial", 1)
    # the run log says "partial" too (some records failed; the cursor did not advance)
    assert [(r.status, r.error) for r in state.run_log] == [
        ("partial", "")
    ]


def test_a_refused_run_is_not_a_slot_s_run_nor_retried(
    clock: ManualClock, state: MemoryState
) -> None:
    # a manual `sync --plan` refused as stale at 10:00:30 synced nothing: the 10:00 slot
    # (cron */15; the last real run 09:45) is still due, not "already ran"
    state.add_run("main", "import", datetime(2026, 11, 28, 9, 45, tzinfo=UTC), "succeeded")
    state.add_run(
        "main",
        "import",
        datetime(2026, 11, 28, 10, 0, 30, tzinfo=UTC),
        "refused",
        "the plan is stale: its records changed since it was made",
    )
    job = StubJob(clock, RunOutcome("refused", error="the plan is stale: ..."))
    scheduler = make([spec(retries=2)], job, state, clock)
    assert scheduler.plan()["main/import"] == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    report = scheduler.run_job(spec(retries=2), datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
    # a refusal is neither retried nor turned into a failed run-log entry
    assert (report.status, report.attempts) == ("refused", 1)
    assert [r.status for r in state.run_log] == ["succeeded", "refused", "refused"]


def test_job_that_records_its_own_run_is_not_recorded_twice(
    clock: ManualClock, state: MemoryState
) -> None:
    def job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        run_id = state.start_run("main", direction, clock.now())
        state.finish_run(run_id, "succeeded", {"created": 1})
        return RunOutcome("succeeded", {"created": 1}, run_id=run_id)

    Scheduler([spec()], job, state, clock=clock).run_job(spec(), T0)
    assert len(state.run_log) == 1


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_delay(1, 10, FixedRandom()) == 7.5
    assert backoff_delay(20, 10, FixedRandom(), cap=100) == 75.0
    rng = random.Random(7)
    values = [backoff_delay(3, 10, rng) for _ in range(50)]
    assert all(20.0 <= v <= 40.0 for v in values)
    assert len(set(values)) > 1


# ---- stopping -------------------------------------------------------------------------------


def test_stop_during_a_run_ends_it_without_retries(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler: Scheduler

    def job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        scheduler.request_stop("SIGTERM")
        assert stop.is_set()
        return RunOutcome("abandoned", {"created": 2})

    scheduler = Scheduler([spec()], job, state, clock=clock, holder="me:1:aa")
    scheduler.plan(run_never_run=True)
    assert scheduler.run_forever() == exitcodes.OK
    assert [r.status for r in state.run_log] == ["abandoned"]
    assert "status=abandoned created=2" in caplog.text and 'reason="SIGTERM"' in caplog.text
    assert "scheduler stopped (SIGTERM)" in caplog.text
    assert state.leases == {}


def test_stop_while_waiting_to_retry_ends_the_retries(
    clock: ManualClock, state: MemoryState
) -> None:
    job = StubJob(clock, *[RunOutcome("failed", error="x")] * 3, duration=0)
    scheduler = make([spec()], job, state, clock)
    clock.on_sleep = lambda seconds: scheduler.request_stop("SIGINT")
    report = scheduler.run_job(spec(), T0)
    assert report.status == "failed"
    assert len(job.calls) == 1


def test_stop_while_idle_wakes_the_sleep(clock: ManualClock, state: MemoryState) -> None:
    scheduler = make([spec()], StubJob(clock), state, clock)
    clock.on_sleep = lambda seconds: scheduler.request_stop("SIGTERM")
    assert scheduler.run_forever() == exitcodes.OK
    assert clock.now() == T0  # the sleep was cut short, not waited out
    assert state.run_log == []


def test_hard_interrupt_records_an_abandoned_run_and_releases_the_lease(
    clock: ManualClock, state: MemoryState
) -> None:
    def job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        raise KeyboardInterrupt

    scheduler = Scheduler([spec()], job, state, clock=clock)
    with pytest.raises(KeyboardInterrupt):
        scheduler.run_job(spec(), T0)
    assert [(r.status, r.error) for r in state.run_log] == [("abandoned", "interrupted")]
    assert state.leases == {}


# ---- --once ----------------------------------------------------------------------------------


def test_once_runs_never_run_and_due_jobs_and_reports_failures(
    clock: ManualClock, state: MemoryState
) -> None:
    state.add_run("main", "export", T0 - timedelta(minutes=2), "succeeded")  # not due yet
    job = StubJob(clock, RunOutcome("failed", error="x"), duration=0)
    scheduler = make(
        [spec(retries=0), spec(direction="export", cron="0 * * * *")], job, state, clock
    )
    reports, code = scheduler.run_once()
    assert [(r.direction, r.status) for r in reports] == [("import", "failed")]
    assert code == exitcodes.ERROR

    clock.advance(3600)
    reports, code = scheduler.run_once()
    assert [(r.direction, r.status) for r in reports] == [
        ("import", "succeeded"),
        ("export", "succeeded"),
    ]
    assert code == exitcodes.OK


def test_once_with_partial_run_exits_3(clock: ManualClock, state: MemoryState) -> None:
    job = StubJob(clock, RunOutcome("partial", {"failed": 1}))
    assert make([spec()], job, state, clock).run_once()[1] == exitcodes.PARTIAL


# ---- config, health, formatting -------------------------------------------------------------


def test_jobs_from_config_reads_each_shops_schedule() -> None:
    config = {
        "shops": [
            {
                "name": "main",
                "schedule": {
                    "import": "*/15 * * * *",
                    "export": "0 * * * *",
                    "retries": 5,
                    "retry_backoff_seconds": 2,
                },
            },
            {"name": "outlet", "schedule": {"export": "30 2 * * *"}},
            {"name": "manual"},
        ]
    }
    specs = jobs_from_config(config)
    assert [(s.shop, s.direction, s.cron, s.retries, s.retry_backoff_seconds) for s in specs] == [
        ("main", "import", "*/15 * * * *", 5, 2.0),
        ("main", "export", "0 * * * *", 5, 2.0),
        ("outlet", "export", "30 2 * * *", 3, 30.0),
    ]
    assert [s.shop for s in jobs_from_config(config, ["outlet"])] == ["outlet"]


def test_jobs_from_config_errors_say_where() -> None:
    bad = {"shops": [{"name": "main", "schedule": {"import": "every 5 minutes"}}]}
    with pytest.raises(
        ConfigError,
        match=r"shops\[0\] \(main\)\.schedule\.import: invalid "
        r"cron expression 'every 5 minutes'",
    ):
        jobs_from_config(bad)
    with pytest.raises(UsageError, match="--shop nope: no such shop; configured: main"):
        jobs_from_config({"shops": [{"name": "main"}]}, ["nope"])


def test_health_reports_lag_failures_and_lease(tmp_path: Path) -> None:
    store = SqlStateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        for started, status, error in [
            (T0 - timedelta(hours=2), "succeeded", ""),
            (T0 - timedelta(hours=1), "failed", "HTTP 503"),
            (T0 - timedelta(minutes=30), "failed", "1 record failed"),
        ]:
            store.finish_run(store.start_run("main", "import", started), status, {}, error)
        store.finish_run(
            store.start_run("main", "export", T0 - timedelta(minutes=5)),
            "succeeded",
            {"created": 1},
        )
        assert store.acquire_lease("shop:main", "h:1:aa", 30)
        specs = [
            spec(),
            spec(direction="export", cron="0 * * * *"),
            spec(shop="outlet", cron="0 3 * * *"),
        ]

        health = {
            h.shop + "/" + h.direction: h
            for h in job_health(store, specs, T0, max_lag=3600, max_failures=3)
        }
    finally:
        store.close()
    imp = health["main/import"]
    assert imp.lag_seconds == 7200
    assert imp.consecutive_failures == 2
    assert imp.last_failure is not None and imp.last_failure.error == "1 record failed"
    assert imp.lease_holder == "h:1:aa"
    assert imp.next_run == datetime(2026, 11, 28, 9, 45, tzinfo=UTC)  # overdue
    assert not imp.healthy and "last success 7200s ago" in imp.problems[0]
    assert health["main/export"].healthy and health["main/export"].lag_seconds == 300
    pending = health["outlet/import"]
    assert pending.healthy and pending.last_success is None and pending.lag_seconds is None
    assert pending.next_run == datetime(2026, 11, 29, 3, 0, tzinfo=UTC)

    store = SqlStateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        strict = job_health(store, specs[:1], T0, max_failures=2)[0]
    finally:
        store.close()
    assert strict.problems == ("2 consecutive failures",)


def test_formatting_helpers() -> None:
    assert format_counts({"failed": 1, "created": 2, "linked": 4, "noop": 7}) == (
        "created=2 updated=0 linked=4 skipped=0 failed=1 noop=7"
    )
    assert safe_error("bad e-mail jane.doe@example.com\nline 2") == (
        "bad e-mail j***@example.com line 2"
    )
    # phones masked too; a name cannot reverse the log line or send a terminal escape
    assert safe_error("phone +14155550101 of \u202eevil\x1b[2J") == (
        "phone +141******01 of \\u202eevil\\u001b[2J"
    )
    assert safe_error("x" * 50, 10) == "xxxxxxx..."
    assert next_slot("0 * * * *", datetime(2026, 1, 1, 10, 0)) == datetime(
        2026, 1, 1, 11, 0, tzinfo=UTC
    )


def test_runs_left_open_by_a_raising_job_are_closed_as_failed(
    clock: ManualClock, state: MemoryState
) -> None:
    def job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        state.start_run("main", direction, clock.now())  # as the real sync job does
        raise RetriableError("HTTP 503 from Shopify")

    report = Scheduler([spec()], job, state, clock=clock, rng=FixedRandom()).run_job(
        spec(retries=1, backoff=1), T0
    )
    assert (report.status, report.attempts) == ("failed", 2)
    assert [(r.status, r.error) for r in state.run_log] == [
        ("failed", "HTTP 503 from Shopify"),
        ("failed", "HTTP 503 from Shopify"),
    ]


def test_cron_aliases_are_accepted() -> None:
    config = {"shops": [{"name": "main", "schedule": {"import": "@hourly"}}]}
    assert jobs_from_config(config)[0].cron == "@hourly"
    with pytest.raises(ConfigError, match="invalid cron"):
        jobs_from_config({"shops": [{"name": "m", "schedule": {"export": "0 * * * * *"}}]})


def test_state_database_outage_fails_the_slot_but_keeps_the_service_up(
    clock: ManualClock, state: MemoryState, caplog: pytest.LogCaptureFixture
) -> None:
    job = StubJob(clock)
    scheduler = make([spec()], job, state, clock)
    scheduler.plan(run_never_run=True)
    healthy_acquire = state.acquire_lease

    def down(name: str, holder: str, ttl_seconds: float) -> bool:
        raise RetriableError("acquiring a lease: database postgresql://db/custsync unavailable")

    state.acquire_lease = down  # type: ignore[method-assign]
    reports = scheduler.run_pending()
    assert [r.status for r in reports] == ["failed"]
    assert 'status=failed error="acquiring a lease: database' in caplog.text
    assert job.calls == []
    assert scheduler.next_runs()["main/import"] == datetime(2026, 11, 28, 10, 15, tzinfo=UTC)

    state.acquire_lease = healthy_acquire  # type: ignore[method-assign]
    clock.advance(8 * 60)
    assert [r.status for r in scheduler.run_pending()] == ["succeeded"]


def test_a_job_that_records_its_failed_run_and_raises_leaves_one_entry(
    clock: ManualClock, state: MemoryState
) -> None:
    """As sync_shop does for an unexpected exception: its run is finished as failed, then the
    exception propagates; one failure is one run-log entry per attempt."""
    state.add_run("main", "import", T0 - timedelta(hours=1), "succeeded")

    def job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        run_id = state.start_run("main", direction, clock.now())
        state.finish_run(run_id, "failed", {"created": 1}, "TypeError: boom")
        raise TypeError("boom")

    report = Scheduler([spec()], job, state, clock=clock, rng=FixedRandom()).run_job(
        spec(retries=1, backoff=1), T0
    )

    assert (report.status, report.attempts, report.counts) == ("failed", 2, {"created": 1})
    assert [(r.status, r.error) for r in state.run_log] == [
        ("succeeded", ""),
        ("failed", "TypeError: boom"),
        ("failed", "TypeError: boom"),
    ]
