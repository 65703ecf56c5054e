"""The shop lease on the real state store, across real processes, on SQLite and PostgreSQL.

Each test runs on both backends (``db_url``). Expiry is checked without waiting: after the
holder is killed, the test's store looks at the lease through a clock set past the TTL.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from custsync.engine.clock import ManualClock
from custsync.engine.run.schedule import JobSpec, RunOutcome, Scheduler, StopToken
from custsync.engine.run.state import SqlStateStore

SPEC = JobSpec("main", "import", "*/15 * * * *", retries=0, shop_config="main")

#: a process that takes the lease through the scheduler and then blocks inside its job
#: (with a "running" run in the log, as the real sync job writes), until it is killed
HOLDER = textwrap.dedent(
    """
    import sys, threading
    from custsync.engine.run.schedule import JobSpec, RunOutcome, Scheduler
    from custsync.engine.run.state import SqlStateStore

    url, ttl = sys.argv[1], float(sys.argv[2])
    store = SqlStateStore.open(url)

    def job(shop, direction, stop):
        store.start_run(shop, direction, store_now())
        print("running", flush=True)
        threading.Event().wait(600)
        return RunOutcome("succeeded")

    def store_now():
        from datetime import datetime, UTC
        return datetime.now(UTC)

    spec = JobSpec("main", "import", "*/15 * * * *", retries=0, shop_config="main")
    Scheduler([spec], job, store, holder=sys.argv[3], lease_ttl=ttl,
              heartbeat_interval=float(sys.argv[4])).run_job(spec, store_now())
    """
)

#: a process that tries once to take the lease and prints whether it got it
CONTENDER = textwrap.dedent(
    """
    import sys, time
    from custsync.engine.run.state import SqlStateStore

    url, holder, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    store = SqlStateStore.open(url)
    time.sleep(max(0.0, start_at - time.time()))
    print("won" if store.acquire_lease("shop:main", holder, 30) else "lost", flush=True)
    """
)


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStateStore]:
    opened = SqlStateStore.open(db_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="custsync.schedule")


def _wait_for_holder(store: SqlStateStore, holder: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while store.lease_holder("shop:main") != holder:
        if proc.poll() is not None:
            raise AssertionError(f"holder process ended early: {proc.communicate()[1]}")
        assert time.monotonic() < deadline, "the holder process never took the lease"
        time.sleep(0.05)


def test_lease_of_a_killed_process_blocks_until_it_expires(
    db_url: str, store: SqlStateStore, caplog: pytest.LogCaptureFixture
) -> None:
    ttl = 30.0
    proc = _python(HOLDER, db_url, str(ttl), "other-host:4242:dead", "0.2")
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
        _wait_for_holder(store, "other-host:4242:dead", proc)
        lease_before = store.lease("shop:main")
        assert lease_before is not None
        time.sleep(0.5)  # a couple of heartbeats
        renewed = store.lease("shop:main")
        assert renewed is not None and renewed.expires_at > lease_before.expires_at
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()

    # killed: nothing released the lease, so this instance is refused...
    job_calls: list[str] = []

    def job(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        job_calls.append(direction)
        return RunOutcome("succeeded", {"created": 1})

    clock = ManualClock(datetime.now(UTC))
    scheduler = Scheduler([SPEC], job, store, clock=clock, holder="me:1:aa")
    report = scheduler.run_job(SPEC, clock.now())
    assert (report.status, report.holder) == ("skipped", "other-host:4242:dead")
    assert "skipped: main is being synced by other-host:4242:dead" in caplog.text
    assert job_calls == []

    # ...until the TTL has passed (seen through a clock past the expiry, no waiting)
    expires = store.lease("shop:main").expires_at  # type: ignore[union-attr]
    later = SqlStateStore.open(db_url, lease_clock=lambda: expires + timedelta(seconds=1))
    try:
        report = Scheduler([SPEC], job, later, clock=clock, holder="me:1:aa").run_job(
            SPEC, clock.now()
        )
    finally:
        later.close()
    assert report.status == "succeeded"
    assert job_calls == ["import"]
    # the killed process's run is closed as abandoned, ours is recorded after it
    runs = store.runs("main")
    assert [r.status for r in runs] == ["succeeded", "abandoned"]
    assert "lease expired" in runs[1].error
    assert store.lease("shop:main") is None  # released after the run


def test_exactly_one_of_several_processes_gets_the_lease(db_url: str, store: SqlStateStore) -> None:
    start_at = time.time() + 2.0  # let all interpreters start, then race
    procs = [_python(CONTENDER, db_url, f"p{i}:1:aa", str(start_at)) for i in range(4)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(out.strip())
    assert sorted(results) == ["lost", "lost", "lost", "won"]
    winner = f"p{results.index('won')}:1:aa"
    assert store.lease_holder("shop:main") == winner


def test_two_schedulers_on_one_database_take_turns(store: SqlStateStore) -> None:
    clock = ManualClock(datetime.now(UTC))
    inside = threading.Event()
    release = threading.Event()

    def slow(shop: object, direction: str, stop: StopToken) -> RunOutcome:
        inside.set()
        assert release.wait(30)
        return RunOutcome("succeeded")

    first = Scheduler([SPEC], slow, store, clock=clock, holder="a:1:aa")
    second = Scheduler(
        [SPEC], lambda *a: RunOutcome("succeeded"), store, clock=clock, holder="b:2:bb"
    )
    results = []
    thread = threading.Thread(target=lambda: results.append(first.run_job(SPEC, clock.now())))
    thread.start()
    try:
        assert inside.wait(30)
        assert second.run_job(SPEC, clock.now()).status == "skipped"
    finally:
        release.set()
        thread.join(30)
    assert results[0].status == "succeeded"
    clock.advance(900)
    assert second.run_job(SPEC, clock.now()).status == "succeeded"


def test_lease_of_a_dead_process_on_this_machine_is_taken_over_at_once(
    store: SqlStateStore, caplog: pytest.LogCaptureFixture
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    dead = f"{socket.gethostname()}:{gone.pid}:dead"
    assert store.acquire_lease("shop:main", dead, 3600)

    clock = ManualClock(datetime.now(UTC))
    scheduler = Scheduler(
        [SPEC], lambda *a: RunOutcome("succeeded"), store, clock=clock, holder="me:1:aa"
    )
    assert scheduler.run_job(SPEC, clock.now()).status == "succeeded"
    assert f"taking over lease shop:main: its process {dead} is gone" in caplog.text

    # a live process of this machine (our parent) keeps its lease
    alive = f"{socket.gethostname()}:{os.getppid()}:live"
    assert store.acquire_lease("shop:main", alive, 3600)
    assert scheduler.run_job(SPEC, clock.now() + timedelta(hours=1)).status == "skipped"
