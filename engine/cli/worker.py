"""``custsync worker`` and the Celery side of ``schedule``/``sync --executor celery``.

::

    custsync worker [-c FILE] [--concurrency N] [--queues Q[,Q...]] [--lease-ttl SECONDS]

A Celery worker (prefork pool, one job per process at a time) whose task runs one shop's
job exactly as ``custsync schedule`` would (see :mod:`custsync.engine.run.workers`). Needs the
``celery`` extra, a ``workers:`` section and a PostgreSQL state database.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from .. import exitcodes
from ..errors import UsageError
from .schedule import load_config, number_type

__all__ = ["enqueue_sync", "queue_report", "register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run shop jobs sent by `schedule --executor celery` (Celery worker)",
        description=(
            "A Celery worker: runs the shop jobs that `custsync schedule --executor celery` "
            "and `custsync sync --executor celery` send, one job per process at a time, "
            "through the same code as `custsync schedule` (leases, retries, run log). Needs "
            "`pip install 'custsync[celery]'`, a workers: section and PostgreSQL state."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        default="custsync.yaml",
        metavar="FILE",
        help="configuration file (default: ./custsync.yaml)",
    )
    cpus = os.cpu_count() or 1
    parser.add_argument(
        "--concurrency",
        type=number_type(int, 1),
        default=cpus,
        metavar="N",
        help=f"worker processes, each running one job at a time (default: {cpus}, the number "
        "of CPUs)",
    )
    parser.add_argument(
        "--queues",
        metavar="QUEUES",
        help="queues to take jobs from (comma-separated; default: every queue of the config)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=number_type(float, 0, inclusive=False),
        default=60.0,
        metavar="SECONDS",
        help="how long a killed worker blocks its shop (default: 60; renewed every TTL/3)",
    )
    parser.set_defaults(handler=_run)


def _app(config: Any, config_path: str | None, what: str) -> Any:
    from ..run.workers import celery_app, require_shared_state

    require_shared_state(config.state_url, what)
    return celery_app(config, config_path=config_path)


def _run(args: argparse.Namespace) -> int:
    from ..config import config_file
    from ..run.workers import check_broker, preload

    path = str(config_file(args.config).resolve())
    config = load_config(path)
    # bad rules stop the worker before it starts; the pool processes inherit what is loaded
    fingerprint = preload(config)
    app = _app(config, path, "custsync worker")
    app.conf.custsync_lease_ttl = args.lease_ttl
    queues = (
        [q.strip() for q in args.queues.split(",") if q.strip()]
        if args.queues
        else list(config.workers.queues)
    )
    if not queues:
        raise UsageError("--queues: name at least one queue")
    check_broker(app)
    _create_tables(config.state_url)
    for chatty in ("httpx", "httpcore"):  # one line per HTTP request at Celery's INFO level
        logging.getLogger(chatty).setLevel(logging.WARNING)
    print(
        f"custsync worker: broker={app.conf.custsync_shown_broker} queues={','.join(queues)} "
        f"concurrency={args.concurrency} config={path} fingerprint={fingerprint}",
        flush=True,
    )
    argv = [
        "worker",
        "--pool=prefork",
        f"--concurrency={args.concurrency}",
        f"--queues={','.join(queues)}",
        "--prefetch-multiplier=1",
        "--optimization=fair",
        "--task-events",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=INFO",
        f"--hostname=custsync-{os.getpid()}@%h",
    ]
    try:
        app.worker_main(argv=argv)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else exitcodes.ERROR
    return exitcodes.OK


def _create_tables(state_url: str) -> None:
    """Open the state database once before the worker processes start, so that they do not
    race to create its tables (and an unusable database stops the worker here)."""
    from ..run.dispatch import DispatchLedger
    from .schedule import open_state

    open_state(state_url).close()
    DispatchLedger(state_url).close()


# --------------------------------------------------------------------------------------------
# sync --executor celery
# --------------------------------------------------------------------------------------------


def enqueue_sync(args: argparse.Namespace, config: Any) -> int:
    """``custsync sync --executor celery --shop S``: send one job per shop; with ``--wait``
    wait for each to end (exit as ``sync`` would: 0, 3 partial, 1 failed or refused)."""
    from ..run.dispatch import DispatchLedger
    from ..run.workers import check_broker, config_fingerprint, manual_slot, send_job

    if not args.shop:
        raise UsageError("--executor celery: name the shop(s) to sync with --shop")
    app = _app(config, None, "custsync sync --executor celery")
    ledger = None
    try:
        check_broker(app)
        fingerprint = config_fingerprint(config)
        ledger = DispatchLedger(config.state_url)
        sent = []
        for name in args.shop:
            queue = config.workers.queue_for(name)
            row_id = manual_slot(ledger, name, args.direction, datetime.now(UTC), queue)
            row = ledger.get(row_id)
            assert row is not None
            task_id = send_job(app, row, fingerprint)
            ledger.mark_sent(row_id, task_id)
            print(
                f"queued shop={name} direction={args.direction} queue={queue} task={task_id} dispatch={row_id}",
                flush=True,
            )
            sent.append(row_id)
        if not args.wait:
            return exitcodes.OK
        return _wait(ledger, sent, args.wait_timeout)
    finally:
        if ledger is not None:
            ledger.close()
        app.close()


def _wait(ledger: Any, row_ids: list[int], timeout: float) -> int:
    from ..run.dispatch import FINAL_STATUSES
    from ..run.schedule import safe_error

    deadline = time.monotonic() + timeout
    pending = list(row_ids)
    worst = exitcodes.OK
    codes = {"succeeded": exitcodes.OK, "partial": exitcodes.PARTIAL}
    while pending:
        for row_id in list(pending):
            row = ledger.get(row_id)
            if row is None or row.status not in FINAL_STATUSES:
                continue
            pending.remove(row_id)
            line = f"shop={row.shop} direction={row.direction} status={row.status} worker={row.holder or '-'}"
            if row.error:
                line += f' error="{safe_error(row.error)}"'
            print(line, flush=True)
            worst = max(worst, codes.get(row.status, exitcodes.ERROR))
        if not pending:
            break
        if time.monotonic() > deadline:
            print(
                f"custsync: gave up waiting after {timeout:g}s for dispatch "
                f"{', '.join(map(str, pending))} (still queued or running; see custsync runs)",
                file=sys.stderr,
            )
            return exitcodes.ERROR
        time.sleep(0.5)
    return worst


# --------------------------------------------------------------------------------------------
# status: queue depth
# --------------------------------------------------------------------------------------------


def queue_report(config: Any) -> tuple[dict[str, dict[str, int | None]] | None, str]:
    """Queue depths of the config's queues, or None and why they could not be read."""
    from ..errors import CustsyncError
    from ..run.workers import celery_app, queue_depths

    try:
        app = celery_app(config)
    except CustsyncError as exc:
        return None, exc.render()
    try:
        return queue_depths(app, list(config.workers.queues)), ""
    except CustsyncError as exc:
        return None, exc.render()
    finally:
        app.close()
