"""``custsync runs`` (run history) and ``custsync status`` (health check for monitoring).

::

    custsync runs   [-c CONFIG] [--state URL] [--shop SHOP] [--direction D] [--limit N]
                    [--failures RUN_ID] [-o text|json]
    custsync status [-c CONFIG] [--state URL] [--shop SHOP] [--max-lag SECONDS]
                    [--max-failures N] [-o text|json]

Both only read the state database. ``status`` exits 0 when every scheduled job is healthy and
1 when one is not (see :func:`custsync.engine.run.schedule.job_health`), so it can be used as a
health check as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import exitcodes
from ..clock import SystemClock, as_utc
from ..config import check_shop_names
from ..errors import ConfigError, UsageError
from ..ports import RUN_COUNTS, RunRecord
from ..run.schedule import DIRECTIONS, JobHealth, job_health, jobs_from_config, safe_error
from .options import add_output_option
from .schedule import add_config_options, load_config, number_type, open_state, state_url_of

FORMAT_VERSION = 1
_POSITIVE_INT = number_type(int, 1)
_SECONDS = number_type(float, 0)
_NON_NEGATIVE_INT = number_type(int, 0)
_COUNT_COLUMNS = RUN_COUNTS  # as `sync` sums them up


def register(subparsers: Any) -> None:
    runs = subparsers.add_parser(
        "runs",
        help="run history with durations, counts and failures",
        description="Show the run log of the state database, newest first, or the failed "
        "records of one run (--failures RUN_ID).",
    )
    add_config_options(runs)
    runs.add_argument("--shop", metavar="SHOP", help="only this shop")
    runs.add_argument("--direction", choices=(*DIRECTIONS, "order"), help="only this direction")
    runs.add_argument(
        "--limit", type=_POSITIVE_INT, default=20, metavar="N", help="how many runs (default: 20)"
    )
    runs.add_argument(
        "--failures",
        type=_POSITIVE_INT,
        metavar="RUN_ID",
        help="list the records that failed in this run, with reasons",
    )
    add_output_option(runs)
    runs.set_defaults(handler=_runs)

    status = subparsers.add_parser(
        "status",
        help="health of each scheduled job (exit 1 when unhealthy)",
        description="Per shop and direction: last success, lag, failures, lease holder and "
        "next scheduled run. Exit 0 when healthy, 1 when a job breaks a threshold.",
    )
    add_config_options(status)
    status.add_argument(
        "--shop",
        dest="shops",
        action="append",
        default=[],
        metavar="SHOP",
        help="only this shop (repeatable)",
    )
    status.add_argument(
        "--max-lag",
        type=_SECONDS,
        metavar="SECONDS",
        help="unhealthy when the last success is older than this",
    )
    status.add_argument(
        "--max-failures",
        type=_POSITIVE_INT,
        default=3,
        metavar="N",
        help="unhealthy after N consecutive partial, failed or abandoned runs (default: 3)",
    )
    status.add_argument(
        "--max-parked",
        type=_NON_NEGATIVE_INT,
        metavar="N",
        help="unhealthy when more than N records of a job are parked on the attention list "
        "(default: parked records do not make a job unhealthy)",
    )
    add_output_option(status)
    status.set_defaults(handler=_status)


def _state_url(args: argparse.Namespace) -> str:
    """The state URL from --state, else from the config (which must then exist)."""
    if args.state_url:
        return str(args.state_url)
    return state_url_of(load_config(args.config), None)


# --------------------------------------------------------------------------------------------
# custsync runs
# --------------------------------------------------------------------------------------------


def _runs(args: argparse.Namespace) -> int:
    state = open_state(_state_url(args), read_only=True)
    try:
        if args.failures is not None:
            return _failures(state, args.failures, args.output)
        _check_shop(args, state)
        records = state.runs(shop=args.shop, limit=args.limit, direction=args.direction)
    finally:
        state.close()
    if args.output == "json":
        _print_json({"format_version": FORMAT_VERSION, "runs": [_run_json(r) for r in records]})
        return exitcodes.OK
    if not records:
        print("No runs.")
        return exitcodes.OK
    header = [
        "RUN",
        "SHOP",
        "DIRECTION",
        "STARTED (UTC)",
        "DURATION",
        "STATUS",
        "HOLDER",
        *(c.upper() for c in _COUNT_COLUMNS),
        "ERROR",
    ]
    rows = [
        [
            str(r.id),
            r.shop,
            r.direction,
            _time(r.started_at),
            _duration(r),
            r.status,
            r.holder or "-",
            *(str(r.counts.get(c, 0)) for c in _COUNT_COLUMNS),
            safe_error(r.error, 80),
        ]
        for r in records
    ]
    _print_table(header, rows)
    return exitcodes.OK


def _check_shop(args: argparse.Namespace, state: Any) -> None:
    """An unknown ``--shop`` is a usage error (64) as in every command, not "No runs.": a shop
    is known when the config has it or the run log holds runs of it (a shop removed since)."""
    if args.shop is None or state.runs(shop=args.shop, limit=1):
        return
    configured: list[str] = []
    if not args.state_url or Path(args.config).is_file():
        configured = [shop.name for shop in load_config(args.config).shops]
    logged = {health.shop for health in state.health()}
    check_shop_names([args.shop], sorted(logged.union(configured)))


def _failures(state: Any, run_id: int, output: str) -> int:
    run = state.run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id} in the state database {state.url}")
    failed = state.failures(run_id)
    if output == "json":
        _print_json(
            {
                "format_version": FORMAT_VERSION,
                "run": _run_json(run),
                "failures": [
                    {
                        "record": o.record,
                        "action": o.action,
                        "reason": safe_error(o.reason, 2000),
                        "rules": list(o.rules),
                    }
                    for o in failed
                ],
            }
        )
        return exitcodes.OK
    print(
        f"Run {run.id}: {run.shop} {run.direction}, {run.status}, started "
        f"{_time(run.started_at)}, {_duration(run)}"
        + (f", by {run.holder}" if run.holder else "")
    )
    if run.error:
        print(f"Error: {safe_error(run.error, 2000)}")
    if not failed:
        print("No failed records.")
        return exitcodes.OK
    _print_table(
        ["RECORD", "ACTION", "REASON", "RULES"],
        [[o.record, o.action, safe_error(o.reason, 200), ", ".join(o.rules)] for o in failed],
    )
    print(f"{len(failed)} failed record{'s' if len(failed) != 1 else ''}.")
    return exitcodes.OK


def _run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id,
        "shop": run.shop,
        "direction": run.direction,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "duration_seconds": _seconds(run),
        "status": run.status,
        "holder": run.holder or None,
        "counts": dict(run.counts),
        "error": safe_error(run.error, 2000),
    }


# --------------------------------------------------------------------------------------------
# custsync status
# --------------------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    specs = jobs_from_config(config, args.shops)
    if not specs:
        raise ConfigError(f"{args.config}: no shop has a schedule; nothing to check")
    now = SystemClock().now()
    state = open_state(state_url_of(config, args.state_url), read_only=True)
    try:
        health = job_health(state, specs, now, max_lag=args.max_lag, max_failures=args.max_failures)
        parked = _parked_counts(state)
    finally:
        state.close()
    too_many = {
        (h.shop, h.direction): f"{parked.get((h.shop, h.direction), 0)} parked records "
        f"(more than {args.max_parked}): custsync attention list"
        for h in health
        if args.max_parked is not None and parked.get((h.shop, h.direction), 0) > args.max_parked
    }
    healthy = all(h.healthy for h in health) and not too_many
    queues: dict[str, dict[str, int | None]] | None = None
    queue_problem = ""
    if getattr(config, "workers", None) is not None:
        from .worker import queue_report

        queues, queue_problem = queue_report(config)
        healthy = healthy and not queue_problem
    if args.output == "json":
        document: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "checked_at": _iso(now),
            "healthy": healthy,
            "jobs": [
                {
                    **_health_json(h),
                    "parked": parked.get((h.shop, h.direction), 0),
                    **(
                        {"healthy": False, "problems": [*h.problems, too_many[key]]}
                        if (key := (h.shop, h.direction)) in too_many
                        else {}
                    ),
                }
                for h in health
            ],
        }
        if getattr(config, "workers", None) is not None:
            document["queues"] = queues
            if queue_problem:
                document["queue_problem"] = safe_error(queue_problem, 2000)
        _print_json(document)
    else:
        header = [
            "SHOP",
            "DIRECTION",
            "LAST SUCCESS",
            "LAG",
            "FAILURES",
            "PARKED",
            "LAST FAILURE",
            "LEASE",
            "NEXT RUN",
            "HEALTH",
        ]
        rows = [
            [
                h.shop,
                h.direction,
                _time(h.last_success),
                "-" if h.lag_seconds is None else _span(h.lag_seconds),
                str(h.consecutive_failures),
                str(parked.get((h.shop, h.direction), 0)),
                _time(h.last_failure.started_at) if h.last_failure else "-",
                h.lease_holder or "-",
                _time(h.next_run),
                "; ".join(
                    [*h.problems, *([too_many[(h.shop, h.direction)]]
                                    if (h.shop, h.direction) in too_many else [])]
                ) or "ok",
            ]
            for h in health
        ]
        _print_table(header, rows)
        if queues is not None:
            print()
            _print_table(
                ["QUEUE", "WAITING", "CONSUMERS"],
                [
                    [
                        name,
                        str(q["messages"]),
                        "-" if q["consumers"] is None else str(q["consumers"]),
                    ]
                    for name, q in queues.items()
                ],
            )
        if queue_problem:
            print(f"queues: {safe_error(queue_problem)}")
        print("healthy" if healthy else "UNHEALTHY")
    return exitcodes.OK if healthy else exitcodes.ERROR


def _parked_counts(state: Any) -> dict[tuple[str, str], int]:
    """Parked records per (shop, direction); none where the store has no attention list."""
    counts: dict[tuple[str, str], int] = {}
    for record in getattr(state, "attention", lambda **_: [])(status="parked"):
        key = (record.shop, record.direction)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _health_json(h: JobHealth) -> dict[str, Any]:
    failure = h.last_failure
    return {
        "shop": h.shop,
        "direction": h.direction,
        "cron": h.cron,
        "healthy": h.healthy,
        "problems": list(h.problems),
        "last_success": _iso(h.last_success),
        "lag_seconds": None if h.lag_seconds is None else round(h.lag_seconds, 3),
        "last_failure": None
        if failure is None
        else {
            "run_id": failure.id,
            "started_at": _iso(failure.started_at),
            "status": failure.status,
            "holder": failure.holder or None,
            "error": safe_error(failure.error, 2000),
        },
        "consecutive_failures": h.consecutive_failures,
        "running": None
        if h.running is None
        else {
            "run_id": h.running.id,
            "started_at": _iso(h.running.started_at),
            "holder": h.running.holder or None,
        },
        "lease_holder": h.lease_holder,
        "next_run": _iso(h.next_run),
    }


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal; plain aligned columns otherwise (pipes, files, tests)."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*header, box=None, header_style="bold", pad_edge=False)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    for line in [list(header), *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


def _time(value: datetime | None) -> str:
    return "-" if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(run: RunRecord) -> float | None:
    if run.finished_at is None:
        return None
    return round((as_utc(run.finished_at) - as_utc(run.started_at)).total_seconds(), 3)


def _duration(run: RunRecord) -> str:
    seconds = _seconds(run)
    return (
        "running"
        if seconds is None and run.status == "running"
        else ("-" if seconds is None else _span(seconds))
    )


def _span(seconds: float) -> str:
    """4.2s, 3m05s, 2h10m, 3d4h"""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600}h"
