"""The dispatcher of ``schedule --executor celery`` (run/dispatch.py) without a broker: cron
semantics, one send per slot among several dispatchers, unsent jobs sent again, and the
worker's slot ledger. Real SQLite state files, a manual clock, the send injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.clock import ManualClock
from custsync.engine.errors import RetriableError
from custsync.engine.run.dispatch import (
    SENT,
    DispatchLedger,
    DispatchRow,
    DispatchScheduler,
    WorkerSlot,
)
from custsync.engine.run.schedule import FAILED, SKIPPED, JobSpec, RunReport
from custsync.engine.run.state import SqlStateStore

T0 = datetime(2026, 11, 28, 10, 7, 12, tzinfo=UTC)
SPEC = JobSpec(shop="main", direction="import", cron="*/15 * * * *")


class Broker:
    """The injected send: records what was sent; ``down`` makes it fail like kombu would."""

    def __init__(self) -> None:
        self.sent: list[DispatchRow] = []
        self.down = False

    def __call__(self, row: DispatchRow) -> str:
        if self.down:
            raise RetriableError("broker amqp://custsync:***@rabbit:5672/ unreachable: refused")
        self.sent.append(row)
        return f"task-{len(self.sent)}"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def _dispatcher(url: str, clock: ManualClock, broker: Broker) -> DispatchScheduler:
    state = SqlStateStore.open(url)
    ledger = DispatchLedger(url, clock=clock.now)
    return DispatchScheduler(
        [SPEC], state, ledger, broker, queue_for=lambda shop: "custsync", clock=clock
    )


def _close(*dispatchers: DispatchScheduler) -> None:
    for dispatcher in dispatchers:
        dispatcher._ledger.close()
        dispatcher._state.close()


def test_missed_slots_are_sent_once_then_the_next_slot_follows_cron(url: str) -> None:
    clock = ManualClock(T0)
    store = SqlStateStore.open(url)
    store.finish_run(store.start_run("main", "import", T0 - timedelta(hours=5)), "succeeded", {})
    store.close()
    broker = Broker()
    dispatcher = _dispatcher(url, clock, broker)
    try:
        dispatcher.plan()
        [report] = dispatcher.run_pending()
        assert report.status == SENT
        # one catch-up slot for five hours of downtime: the first slot after the last run
        assert [r.slot for r in broker.sent] == [datetime(2026, 11, 28, 5, 15, tzinfo=UTC)]
        assert dispatcher.next_runs()[SPEC.key] == datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
        assert dispatcher.run_pending() == []
        clock.set(datetime(2026, 11, 28, 10, 15, tzinfo=UTC))
        [report] = dispatcher.run_pending()
        assert report.slot == datetime(2026, 11, 28, 10, 15, tzinfo=UTC) and len(broker.sent) == 2
    finally:
        _close(dispatcher)


def test_a_restarted_dispatcher_does_not_send_a_slot_again(url: str) -> None:
    clock = ManualClock(T0)
    broker = Broker()
    first = _dispatcher(url, clock, broker)
    first.plan(run_never_run=True)
    assert [r.status for r in first.run_pending()] == [SENT]
    _close(first)
    again = _dispatcher(url, clock, broker)  # e.g. restarted at once: nothing due
    try:
        again.plan()
        assert again.run_pending() == []
        assert again.next_runs()[SPEC.key] == datetime(2026, 11, 28, 10, 15, tzinfo=UTC)
        assert len(broker.sent) == 1
    finally:
        _close(again)


def test_two_dispatchers_due_at_once_send_the_slot_once(url: str) -> None:
    clock = ManualClock(T0)
    broker = Broker()
    a, b = _dispatcher(url, clock, broker), _dispatcher(url, clock, broker)
    try:
        a.plan()
        b.plan()  # both planned before either sent: both find 10:15 due
        clock.set(datetime(2026, 11, 28, 10, 15, tzinfo=UTC))
        reports = a.run_pending() + b.run_pending()
        assert sorted(r.status for r in reports) == [SENT, SKIPPED]
        assert len(broker.sent) == 1
        # and the next slot is the same on both
        assert a.next_runs() == b.next_runs()
    finally:
        _close(a, b)


def test_a_job_the_broker_did_not_take_is_sent_again_once(url: str) -> None:
    clock = ManualClock(T0)
    broker = Broker()
    a, b = _dispatcher(url, clock, broker), _dispatcher(url, clock, broker)
    try:
        broker.down = True
        a.plan(run_never_run=True)
        reports, code = a.run_once()
        assert [r.status for r in reports] == [FAILED] and code == exitcodes.ERROR
        assert "unreachable" in reports[0].error
        [row] = a._ledger.rows()
        assert row.status == "pending" and row.task_id is None
        broker.down = False
        assert b.resend_unsent() == []  # not yet: the sender may still be trying
        clock.advance(11)
        assert [r.status for r in b.resend_unsent()] == [SENT]
        assert a.resend_unsent() == []  # claimed by b: not sent twice
        [row] = a._ledger.rows()
        assert row.status == SENT and row.task_id == "task-1" and len(broker.sent) == 1
    finally:
        _close(a, b)


def test_the_worker_slot_runs_an_unfinished_slot_and_skips_a_finished_one(url: str) -> None:
    clock = ManualClock(T0)
    ledger = DispatchLedger(url, clock=clock.now)
    try:
        row_id = ledger.claim("main", "import", T0, kind="scheduled", queue="q")
        assert row_id is not None
        assert ledger.claim("main", "import", T0, kind="scheduled", queue="q") is None
        slot = WorkerSlot(ledger, row_id, "host:1:aa")
        assert slot.already_done(SPEC, T0) is None  # run it; counted as a delivery
        # the worker died: the task comes again, to another worker
        other = WorkerSlot(ledger, row_id, "host:2:bb")
        assert other.already_done(SPEC, T0) is None
        other.finished(SPEC, T0, RunReport("main", "import", T0, "succeeded"))
        row = ledger.get(row_id)
        assert row is not None
        assert (row.status, row.deliveries, row.holder) == ("succeeded", 2, "host:2:bb")
        assert row.started_at == T0 and row.finished_at == T0
        # a third delivery (the broker redelivered after the run) does nothing
        done = WorkerSlot(ledger, row_id, "host:3:cc").already_done(SPEC, T0)
        assert done is not None and "already succeeded" in done
        # a run stopped by a lost lease is not the slot's run: tried again
        second = ledger.claim(
            "main", "import", T0 + timedelta(minutes=15), kind="scheduled", queue="q"
        )
        assert second is not None
        WorkerSlot(ledger, second, "h:1:a").finished(
            SPEC, T0, RunReport("main", "import", T0, "abandoned", error="lease shop:main lost")
        )
        row = ledger.get(second)
        assert row is not None and row.status == "deferred" and not row.done
    finally:
        ledger.close()
