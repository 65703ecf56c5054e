"""Dispatching due jobs to a queue instead of running them (``--executor celery``).

The state database decides who sends a slot and whether it still needs its run:

* :class:`DispatchLedger` is the table ``state_dispatch``: one row per (shop, direction,
  slot), unique, so of several dispatchers (high availability) exactly one inserts a slot's
  row and sends its task. A row whose task could not be sent (broker down) stays
  ``pending`` and is sent again by whichever dispatcher claims it next.
* :class:`DispatchScheduler` keeps the embedded scheduler's cron semantics (UTC, missed slots
  once, next slot after the newest run or dispatched slot) but sends the due job.
* :class:`WorkerSlot` is the worker's :class:`~.schedule.SlotLedger`: under the shop lease it
  asks the row whether the slot is done, so a redelivered task of a finished slot is a no-op
  and one whose worker was killed mid-run runs again (the run it left is marked abandoned).

This module knows nothing of Celery: the sending is injected (:data:`Send`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, ProgrammingError

from ..errors import CustsyncError
from .schedule import (
    FAILED,
    SKIPPED,
    JobSpec,
    RunReport,
    Scheduler,
    ScheduleState,
    last_run_start,
    next_slot,
    safe_error,
    stamp,
)
from .state import UtcDateTime, database_errors, make_engine, write_transaction

__all__ = [
    "FINAL_STATUSES",
    "SENT",
    "DispatchLedger",
    "DispatchRow",
    "DispatchScheduler",
    "Send",
    "WorkerSlot",
]

log = logging.getLogger("custsync.schedule")

PENDING = "pending"  # claimed, its task not sent (yet)
SENT = "sent"  # in the queue
DEFERRED = "deferred"  # a worker found the shop's lease held: tried again later
RUNNING = "running"
#: the slot's run is over: a redelivered task does nothing
FINAL_STATUSES = frozenset({"succeeded", "partial", "failed", "refused"})
SCHEDULED, MANUAL = "scheduled", "manual"

_metadata = sa.MetaData()
#: what PostgreSQL says to the loser of a CREATE TABLE race (unique violation on pg_type,
#: or "relation already exists")
_RACE: tuple[type[Exception], ...] = (IntegrityError, ProgrammingError)

dispatch_table = sa.Table(
    "state_dispatch",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(200), nullable=False),
    sa.Column("direction", sa.String(20), nullable=False),
    sa.Column("slot", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("queue", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("task_id", sa.String(64)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime),
    sa.Column("send_tried_at", UtcDateTime),
    sa.Column("started_at", UtcDateTime),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("deliveries", sa.Integer, nullable=False, default=0),
    sa.Column("holder", sa.String(200)),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("shop", "direction", "slot", name="uq_state_dispatch_slot"),
)


@dataclass(frozen=True, slots=True)
class DispatchRow:
    id: int
    shop: str
    direction: str
    slot: datetime
    kind: str
    queue: str
    status: str
    task_id: str | None
    created_at: datetime
    sent_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    deliveries: int
    holder: str | None
    error: str | None

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


def _now() -> datetime:
    return datetime.now(UTC)


class DispatchLedger:
    """The ``state_dispatch`` table in the state database at ``url`` (created when missing)."""

    def __init__(self, url: str, *, clock: Callable[[], datetime] = _now) -> None:
        self._url = url
        self._engine = make_engine(url)
        self._clock = clock
        for attempt in range(3):
            # several processes opening a new database at once race to create the table:
            # the losers see it exist on the next try
            try:
                with self._write("creating the dispatch table", keep=_RACE) as conn:
                    _metadata.create_all(conn)
                break
            except _RACE:
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _write(self, what: str, keep: tuple[type[Exception], ...] = ()) -> Iterator[Connection]:
        with database_errors(what, self._url, keep=keep), write_transaction(self._engine) as conn:  # type: ignore[arg-type]
            yield conn

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        with database_errors(what, self._url), self._engine.connect() as conn:
            yield conn

    # ---- dispatcher side ------------------------------------------------------------------

    def claim(
        self, shop: str, direction: str, slot: datetime, *, kind: str, queue: str
    ) -> int | None:
        """Insert the slot's row; its id, or None when another dispatcher has it already."""
        now = self._clock()
        try:
            with self._write("claiming a slot", keep=(IntegrityError,)) as conn:
                result = conn.execute(
                    dispatch_table.insert().values(
                        shop=shop,
                        direction=direction,
                        slot=slot,
                        kind=kind,
                        queue=queue,
                        status=PENDING,
                        created_at=now,
                        send_tried_at=now,
                        deliveries=0,
                    )
                )
                key = result.inserted_primary_key
                return int(key[0]) if key else None
        except IntegrityError:
            return None

    def mark_sent(self, row_id: int, task_id: str) -> None:
        with self._write("recording a sent task") as conn:
            conn.execute(
                dispatch_table.update()
                .where(dispatch_table.c.id == row_id, dispatch_table.c.status == PENDING)
                .values(status=SENT, task_id=task_id, sent_at=self._clock())
            )

    def claim_unsent(self, older_than: float) -> list[DispatchRow]:
        """Pending rows whose sending failed (or whose dispatcher died) at least
        ``older_than`` seconds ago, each claimed by this caller for one more try."""
        now = self._clock()
        cutoff = now - timedelta(seconds=older_than)
        claimed: list[DispatchRow] = []
        with self._read("reading unsent jobs") as conn:
            rows = conn.execute(
                sa.select(dispatch_table).where(
                    dispatch_table.c.status == PENDING, dispatch_table.c.send_tried_at <= cutoff
                )
            ).all()
        for row in rows:
            with self._write("claiming an unsent job") as conn:
                won = conn.execute(
                    dispatch_table.update()
                    .where(
                        dispatch_table.c.id == row.id,
                        dispatch_table.c.status == PENDING,
                        dispatch_table.c.send_tried_at <= cutoff,
                    )
                    .values(send_tried_at=now)
                ).rowcount
            if won:
                claimed.append(_row(row))
        return claimed

    def last_dispatched(self, shop: str, direction: str) -> datetime | None:
        """When the newest scheduled slot of ``shop``/``direction`` was claimed (the
        dispatcher's counterpart of a run's start: the next slot is the first cron time
        after it, so a missed slot is sent once, not once per missed slot)."""
        with self._read("reading dispatched slots") as conn:
            return conn.execute(
                sa.select(sa.func.max(dispatch_table.c.created_at)).where(
                    dispatch_table.c.shop == shop,
                    dispatch_table.c.direction == direction,
                    dispatch_table.c.kind == SCHEDULED,
                )
            ).scalar()

    # ---- worker side ----------------------------------------------------------------------

    def get(self, row_id: int) -> DispatchRow | None:
        with self._read("reading a dispatched job") as conn:
            row = conn.execute(
                sa.select(dispatch_table).where(dispatch_table.c.id == row_id)
            ).first()
        return None if row is None else _row(row)

    def rows(self, limit: int = 1000) -> list[DispatchRow]:
        with self._read("reading dispatched jobs") as conn:
            found = conn.execute(
                sa.select(dispatch_table).order_by(dispatch_table.c.id.desc()).limit(limit)
            ).all()
        return [_row(r) for r in found]

    def update(
        self, row_id: int, status: str, *, holder: str | None = None, error: str = ""
    ) -> None:
        """Set a row's status; the first start and every delivery are counted."""
        now = self._clock()
        values: dict[str, Any] = {"status": status}
        if holder is not None:
            values["holder"] = holder
        if error:
            values["error"] = safe_error(error, 2000)
        if status == RUNNING:
            values["deliveries"] = dispatch_table.c.deliveries + 1
            values["started_at"] = sa.func.coalesce(dispatch_table.c.started_at, now)
        if status in FINAL_STATUSES:
            values["finished_at"] = now
        with self._write("recording a job's progress") as conn:
            conn.execute(
                dispatch_table.update().where(dispatch_table.c.id == row_id).values(**values)
            )


def _row(row: Any) -> DispatchRow:
    return DispatchRow(
        id=row.id,
        shop=row.shop,
        direction=row.direction,
        slot=row.slot,
        kind=row.kind,
        queue=row.queue,
        status=row.status,
        task_id=row.task_id,
        created_at=row.created_at,
        sent_at=row.sent_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        deliveries=int(row.deliveries or 0),
        holder=row.holder,
        error=row.error,
    )


# --------------------------------------------------------------------------------------------
# The dispatcher
# --------------------------------------------------------------------------------------------

#: sends one job to the queue: (dispatch row) -> task id; raises when the broker is unreachable
Send = Callable[[DispatchRow], str]


def _no_job(_shop: Any, _direction: str, _stop: Any) -> Any:  # pragma: no cover - never called
    raise AssertionError("a dispatcher sends jobs, it does not run them")


class DispatchScheduler(Scheduler):
    """The cron loop of :class:`~.schedule.Scheduler`, sending due jobs instead of running
    them. A slot's row is claimed before sending (one dispatcher wins); rows left unsent
    are sent again every ``resend_after`` seconds."""

    def __init__(
        self,
        jobs: Sequence[JobSpec],
        state: ScheduleState,
        ledger: DispatchLedger,
        send: Send,
        *,
        queue_for: Callable[[str], str],
        resend_after: float = 10.0,
        **options: Any,
    ) -> None:
        options.setdefault("max_sleep", min(15.0, resend_after))
        super().__init__(jobs, _no_job, state, **options)
        self._ledger = ledger
        self._send = send
        self._queue_for = queue_for
        self._resend_after = resend_after

    def plan(self, *, run_never_run: bool = False) -> dict[str, datetime]:
        """Next slot: the first cron time after the newest run's start *or dispatch*."""
        super().plan(run_never_run=run_never_run)
        for spec in self.jobs:
            sent = self._ledger.last_dispatched(spec.shop, spec.direction)
            if sent is None:
                continue
            ran = last_run_start(self._state, spec.shop, spec.direction)
            self._next[spec.key] = next_slot(spec.cron, max(sent, ran) if ran else sent)
        return dict(self._next)

    def run_pending(self) -> list[RunReport]:
        self.resend_unsent()
        return super().run_pending()

    def run_job(self, spec: JobSpec, slot: datetime, *, ledger: Any = None) -> RunReport:
        row_id = self._ledger.claim(
            spec.shop, spec.direction, slot, kind=SCHEDULED, queue=self._queue_for(spec.shop)
        )
        if row_id is None:
            self._log(
                f"skipped: shop={spec.shop} direction={spec.direction} slot={stamp(slot)} "
                "was sent by another dispatcher"
            )
            return RunReport(spec.shop, spec.direction, slot, SKIPPED)
        row = self._ledger.get(row_id)
        assert row is not None
        return self._send_row(row)

    def resend_unsent(self) -> list[RunReport]:
        try:
            rows = self._ledger.claim_unsent(self._resend_after)
        except CustsyncError as exc:
            self._log(f"could not read unsent jobs: {safe_error(exc.render())}")
            return []
        return [self._send_row(row, again=True) for row in rows]

    def _send_row(self, row: DispatchRow, *, again: bool = False) -> RunReport:
        try:
            task_id = self._send(row)
        except CustsyncError as exc:
            error = exc.render()
            self._log(
                f"shop={row.shop} direction={row.direction} slot={stamp(row.slot)} not sent "
                f'(tried again in {self._resend_after:g}s): error="{safe_error(error)}"'
            )
            return RunReport(row.shop, row.direction, row.slot, FAILED, error=error)
        self._ledger.mark_sent(row.id, task_id)
        self._log(
            f"shop={row.shop} direction={row.direction} slot={stamp(row.slot)} "
            f"{'sent again' if again else 'sent'} queue={row.queue} task={task_id}"
        )
        return RunReport(row.shop, row.direction, row.slot, SENT)


# --------------------------------------------------------------------------------------------
# The worker's view of a slot
# --------------------------------------------------------------------------------------------


class WorkerSlot:
    """The :class:`~.schedule.SlotLedger` of one delivered task (asked under the lease)."""

    def __init__(self, ledger: DispatchLedger, row_id: int, holder: str) -> None:
        self._ledger = ledger
        self._row_id = row_id
        self._holder = holder

    def already_done(self, spec: JobSpec, slot: datetime) -> str | None:
        row = self._ledger.get(self._row_id)
        if row is None:
            return f"has no dispatch row {self._row_id} (state database reset?)"
        if row.done:
            return f"already {row.status} (dispatch {row.id}, run by {row.holder or '?'})"
        self._ledger.update(self._row_id, RUNNING, holder=self._holder)
        return None

    def finished(self, spec: JobSpec, slot: datetime, report: RunReport) -> None:
        if report.status in FINAL_STATUSES:
            self._ledger.update(self._row_id, report.status, error=report.error)
        else:  # abandoned (lease lost): the task is tried again
            self._ledger.update(self._row_id, DEFERRED, error=report.error)
