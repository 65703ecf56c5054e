"""Benchmark: a fleet of shops synced by Celery workers (issue 13).

    python bench/fleet.py --shops 8 --n 300 --workers 8 [--time-scale 1] [--sweep]

S Shopify doubles (each in its own process) with the Standard plan's bucket (2,000 points,
100 points/s; ``--time-scale`` speeds both the double's refill and the connector's pacer up),
one SQLite ERP with N customers that every shop exports (N creates per shop: the first ~200
from the full bucket, the rest paced by the rate limit, as a first export of a real store),
PostgreSQL state (a fresh schema per round), RabbitMQ (a queue of its own). Per round a
``custsync worker --concurrency W`` is started, the real dispatcher (``DispatchScheduler``,
as ``schedule --executor celery``) sends the S jobs, all due at once, and the round ends when
every job is done. Rounds: W = 1 and W = ``--workers`` (``--sweep``: 1, 2, 4, ... W).

Printed per round: jobs per minute, speed-up over W = 1, broker messages per job (task
messages: sends and retries; Celery event messages, counted by a real event receiver), and
the time from a slot's due time to its run's start (p50, p95: queueing when S > W); then what
a job cost: Shopify requests, bucket points (its lowest level, throttled answers), CPU seconds
of the worker processes and of the Shopify doubles (from /proc), and the machine's CPU use
(busy cores during the round, other work's share measured just before it, steal, load).

Verdicts: speed-up >= 0.8 x W; every customer created once; the runs are API-bound (W jobs'
CPU fits in half the cores: they wait on Shopify's answers, not on this machine); the
machine was quiet (other work kept at most half a core busy): where it was not, the
speed-ups are not conclusive and the verdict says so. With the default 0.15 s per request
the runs wait on Shopify's answer time; the Standard bucket (2,000 points, 100 points/s)
runs dry only when more points are asked per second than it restores, which these
one-lookup-at-a-time exports do not: the output says which of the two it was.

Needs the servers of the test suite: PostgreSQL (127.0.0.1:5432, db ``test``), RabbitMQ
(127.0.0.1:5672, guest/guest). The machine has 2 cores, shared with whatever else runs.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml
from custsync.connectors.erp_sql import LoadRow, open_writer
from custsync.engine.config import require_config
from custsync.engine.run.dispatch import DispatchLedger, DispatchScheduler
from custsync.engine.run.schedule import jobs_from_config
from custsync.engine.run.state import open_store
from custsync.engine.run.workers import celery_app, config_fingerprint, queue_depths, send_job

TOKEN = "shpat_bench"
TOKEN_ENV = "CUSTSYNC_BENCH_TOKEN"
PASSWORD_ENV = "CUSTSYNC_BENCH_BROKER_PASSWORD"
BUCKET, RESTORE = 2000.0, 100.0  # Shopify Standard plan


# --------------------------------------------------------------------------------------------
# Shopify doubles, one process each
# --------------------------------------------------------------------------------------------


def _serve(time_scale: float, latency: float, urls: Any, stop: Any, stats: Any) -> None:
    from custsync.connectors.shopify_double import Fault, ShopifyDouble

    double = ShopifyDouble(
        token=TOKEN, bucket_size=BUCKET, restore_rate=RESTORE, time_scale=time_scale
    ).start()
    if latency > 0:  # Shopify's answer time over the internet, which loopback does not have
        double.inject(Fault("delay", times=10**9, seconds=latency, target="any"))
    bucket = double.bucket
    take = bucket.take
    lowest = [BUCKET]

    def taking(cost: float) -> bool:
        """The bucket's lowest level after a request took its points: did the limit bite?"""
        taken = take(cost)
        lowest[0] = min(lowest[0], bucket.status().currently_available)
        return taken

    bucket.take = taking  # type: ignore[method-assign]
    urls.put(double.url)
    stop.wait()
    requests = double.requests
    stats.put(
        {
            "requests": len(requests),
            "throttled": sum(1 for r in requests if r.throttled),
            "points": sum(r.actual_cost or 0 for r in requests),
            "lowest": lowest[0],
        }
    )
    double.stop()


class Doubles:
    """S Shopify doubles, each in a process of its own (its CPU is counted apart)."""

    def __init__(self, count: int, time_scale: float, latency: float) -> None:
        ctx = mp.get_context("fork")
        self._stop = ctx.Event()
        urls: Any = ctx.Queue()
        self._stats: Any = ctx.Queue()
        self._procs = [
            ctx.Process(
                target=_serve,
                args=(time_scale, latency, urls, self._stop, self._stats),
                daemon=True,
            )
            for _ in range(count)
        ]
        for proc in self._procs:
            proc.start()
        self.urls = [urls.get(timeout=60) for _ in self._procs]
        self.stats: list[dict[str, float]] = []

    @property
    def pids(self) -> list[int]:
        return [int(proc.pid or 0) for proc in self._procs]

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.stats = [self._stats.get(timeout=30) for _ in self._procs]
        for proc in self._procs:
            proc.join(timeout=10)


# --------------------------------------------------------------------------------------------
# CPU accounting (Linux /proc): what the round's processes and the whole machine used
# --------------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (a process gone counts 0)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the worker and its pool processes)."""
    found = [pid]
    for parent in found:
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


#: how long the machine's CPU use is measured before a round, to know the other work's share
BASELINE_SECONDS = 3.0


def _pss_mb(pids: list[int]) -> float:
    """Proportional set size of ``pids`` together, MB (pages shared after the fork count once)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total / 1024


class MachineCpu:
    """The machine's CPU use over an interval (/proc/stat): busy cores and steal."""

    def __init__(self) -> None:
        self._start = self._read()
        self.load_start = os.getloadavg()[0]

    @staticmethod
    def _read() -> list[int]:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(x) for x in stat.readline().split()[1:9]]

    def busy_cores(self) -> tuple[float, float]:
        """Cores busy on average since the start (any process) and the share stolen by the
        hypervisor."""
        end = self._read()
        delta = [b - a for a, b in zip(self._start, end, strict=True)]
        user, nice, system, _idle, _iowait, irq, softirq, steal = delta
        total = sum(delta) or 1
        cores = os.cpu_count() or 1
        busy = (user + nice + system + irq + softirq) / total * cores
        return busy, steal / total


# --------------------------------------------------------------------------------------------
# World: ERP, state schema, config
# --------------------------------------------------------------------------------------------


def _make_erp(url: str, n: int) -> None:
    erp = open_writer(url, create=True)
    try:
        erp.initialize(company_name="Bench", company_country="NL")
        rows = [
            LoadRow(
                i + 2,
                {
                    "no": f"C{i:06d}",
                    "name": f"Person {i}",
                    "email": f"p{i}@example.com",
                    "country_code": "NL",
                },
            )
            for i in range(n)
        ]
        report = erp.load("customers", rows)
        assert not report.problems, report.problems[:3]
    finally:
        erp.close()


def _pg_schema(base: str) -> tuple[str, str]:
    import psycopg

    schema = f"bench_fleet_{secrets.token_hex(4)}"
    with psycopg.connect(base.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    return f"{base}?options=-csearch_path%3D{schema}", schema


def _drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _write_config(
    folder: Path, urls: list[str], erp_url: str, state_url: str, broker: str, queue: str
) -> Path:
    document = {
        "erp": {"url": erp_url},
        "state": {"url": state_url},
        "workers": {
            "broker_url": broker,
            "broker_password_env": PASSWORD_ENV,
            "queue": queue,
            "lease_retry_seconds": 1,
        },
        "shops": [
            {
                "name": f"shop{i:02d}",
                "shopify": {"url": url, "access_token_env": TOKEN_ENV, "timeout_seconds": 30},
                "settings": {
                    "customer_import": "with_order_import",
                    "export_customers": True,
                    "can_update_shopify_customers": True,
                },
                "schedule": {"export": "*/15 * * * *", "retries": 0},
            }
            for i, url in enumerate(urls)
        ],
    }
    path = folder / "custsync.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# Worker entry: the real `custsync worker`, its connector told the doubles' time scale
# --------------------------------------------------------------------------------------------


def _worker_entry(config: str, concurrency: int, time_scale: float) -> int:
    from custsync.engine import registry
    from custsync.engine.cli import main

    real = registry.open_shopify_writer

    def scaled(url: str, **options: Any) -> Any:  # the sandbox-only pacer option
        return real(url, **options, time_scale=time_scale)

    registry.open_shopify_writer = scaled  # type: ignore[assignment]
    return main(["worker", "-c", config, "--concurrency", str(concurrency), "--lease-ttl", "30"])


# --------------------------------------------------------------------------------------------
# One round
# --------------------------------------------------------------------------------------------


class EventCounter:
    """Counts the Celery event messages the broker carries while a round runs."""

    def __init__(self, app: Any, queue: str, worker_pid: int) -> None:
        self.counts: dict[str, int] = {}
        self._app = app
        self._queue = queue
        self._worker = f"custsync-{worker_pid}@"
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _count(self, event: dict[str, Any]) -> None:
        """Only this round's: its worker's events and the jobs sent to its queue (other
        Celery users of the broker publish to the same event exchange)."""
        kind = str(event.get("type", "?"))
        if kind == "task-sent":
            if event.get("routing_key") != self._queue and event.get("queue") != self._queue:
                return
        elif not str(event.get("hostname", "")).startswith(self._worker):
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _run(self) -> None:
        with self._app.connection() as conn:
            self._receiver = self._app.events.Receiver(conn, handlers={"*": self._count})
            self._ready.set()
            with contextlib.suppress(Exception):  # the connection closes when the round ends
                self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def __enter__(self) -> EventCounter:
        self._thread.start()
        self._ready.wait(10)
        time.sleep(0.5)  # the receiver's queue is bound
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1.0)  # the last events arrive
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=5)


def run_round(args: argparse.Namespace, workers: int, folder: Path) -> dict[str, Any]:
    doubles = Doubles(args.shops, args.time_scale, args.latency)
    state_url, schema = _pg_schema(args.state)
    queue = f"bench-fleet-{secrets.token_hex(3)}"
    config_path = _write_config(
        folder, doubles.urls, f"sqlite:///{folder / 'erp.db'}", state_url, args.broker, queue
    )
    config = require_config(config_path)
    app = celery_app(config)
    ledger = DispatchLedger(state_url)
    state = open_store(state_url)
    worker = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--worker-entry",
            str(config_path),
            str(workers),
            str(args.time_scale),
        ],
        stdout=subprocess.DEVNULL if not args.verbose else None,
        stderr=subprocess.DEVNULL if not args.verbose else None,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while queue_depths(app, [queue])[queue]["consumers"] == 0:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start (exit {worker.poll()})")
            time.sleep(0.3)
        time.sleep(1.0)  # its processes are forked and have opened the state database
        # the machine's load from other work, measured while this round's processes are idle
        idle = MachineCpu()
        time.sleep(BASELINE_SECONDS)
        baseline, _ = idle.busy_cores()
        fingerprint = config_fingerprint(config)
        dispatcher = DispatchScheduler(
            jobs_from_config(config),
            state,
            ledger,
            lambda row: send_job(app, row, fingerprint),
            queue_for=config.workers.queue_for,  # type: ignore[union-attr]
        )
        with EventCounter(app, queue, worker.pid) as events:
            worker_pids = _process_tree(worker.pid)
            cpu_before = _cpu_seconds(worker_pids), _cpu_seconds(doubles.pids)
            own_before = time.process_time()
            machine = MachineCpu()
            started = time.monotonic()
            dispatcher.plan(run_never_run=True)  # every shop due now
            reports = dispatcher.run_pending()
            assert len(reports) == args.shops, reports
            while True:
                rows = ledger.rows()
                if all(r.done for r in rows):
                    break
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"round W={workers} timed out: {[r.status for r in rows]}")
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            busy, steal = machine.busy_cores()
            worker_cpu = _cpu_seconds(worker_pids) - cpu_before[0]
            double_cpu = _cpu_seconds(doubles.pids) - cpu_before[1]
            own_cpu = time.process_time() - own_before
            load_end = os.getloadavg()[0]
            worker_pss = _pss_mb(_process_tree(worker.pid))
        failed = [r for r in rows if r.status != "succeeded"]
        runs = state.runs(limit=10 * args.shops)
        created = sum(int(r.counts.get("created", 0)) for r in runs if r.status == "succeeded")
        waits = sorted(
            (r.started_at - r.slot).total_seconds() for r in rows if r.started_at is not None
        )
        durations = sorted(
            (r.finished_at - r.started_at).total_seconds()
            for r in rows
            if r.finished_at and r.started_at
        )
        task_messages = events.counts.get("task-sent", 0) + events.counts.get("task-retried", 0)
        event_messages = sum(events.counts.values())
        jobs = len(rows)
        result: dict[str, Any] = {
            "worker_cpu_per_job": worker_cpu / jobs,
            "double_cpu_per_job": double_cpu / jobs,
            # what this benchmark's own processes kept busy, and everything else on the machine
            # (PostgreSQL and RabbitMQ serving the round, and any other work)
            "ours_cores": (worker_cpu + double_cpu + own_cpu) / elapsed,
            "busy_cores": busy,
            "baseline_cores": baseline,
            "worker_pss_mb": worker_pss,
            "steal": steal,
            "load": (machine.load_start, load_end),
            "workers": workers,
            "elapsed": elapsed,
            "jobs_per_minute": len(rows) / elapsed * 60,
            "failed": len(failed),
            "failures": [f"{r.shop}: {r.status} {r.error}" for r in failed[:3]],
            "created": created,
            "wait_p50": _pct(waits, 50),
            "wait_p95": _pct(waits, 95),
            "run_p50": _pct(durations, 50),
            "task_messages_per_job": task_messages / len(rows),
            "event_messages_per_job": event_messages / len(rows),
            "events": dict(sorted(events.counts.items())),
        }
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, 15)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, 9)
                worker.wait()
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        app.close()
        ledger.close()
        state.close()
        _drop_schema(args.state, schema)
        doubles.close()
    # what the Shopify doubles saw: requests, points, throttling, the bucket's lowest level
    stats = doubles.stats
    result["requests_per_job"] = sum(d["requests"] for d in stats) / args.shops
    result["points_per_job"] = sum(d["points"] for d in stats) / args.shops
    result["throttled"] = sum(int(d["throttled"]) for d in stats)
    result["lowest_bucket"] = min((d["lowest"] for d in stats), default=float("nan"))
    return result


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker-entry":
        return _worker_entry(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shops", type=int, default=8, help="S: shops (Shopify doubles)")
    parser.add_argument("--n", type=int, default=300, help="N: customers each shop exports")
    parser.add_argument("--workers", type=int, default=8, help="W: worker processes")
    parser.add_argument("--time-scale", type=float, default=1.0, help="rate-limit clock speed")
    parser.add_argument("--sweep", action="store_true", help="also W = 2, 4, ... below W")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.15,
        help="seconds each Shopify request takes (default 0.15, an Admin API answer over the "
        "internet; 0: loopback speed, the runs are then CPU-bound on this machine)",
    )
    parser.add_argument("--broker", default="amqp://guest@127.0.0.1:5672//")
    parser.add_argument("--broker-password", default="guest")
    parser.add_argument("--state", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per round, seconds")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the worker's log")
    args = parser.parse_args()
    os.environ[TOKEN_ENV] = TOKEN
    os.environ[PASSWORD_ENV] = args.broker_password
    counts = [1]
    if args.sweep:
        w = 2
        while w < args.workers:
            counts.append(w)
            w *= 2
    if args.workers > 1:
        counts.append(args.workers)
    print(
        f"fleet: S={args.shops} shops x N={args.n} customers (export: creates), Standard "
        f"bucket {BUCKET:g} points at {RESTORE:g}/s, time scale {args.time_scale:g}, "
        f"{args.latency:g}s per Shopify request; "
        f"{os.cpu_count()} CPUs (shared with other work); rounds W={counts}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="custsync-fleet-") as tmp:
        folder = Path(tmp)
        t0 = time.monotonic()
        _make_erp(f"sqlite:///{folder / 'erp.db'}", args.n)
        print(f"setup: ERP with {args.n} customers in {time.monotonic() - t0:.1f}s", flush=True)
        results = []
        for workers in counts:
            result = run_round(args, workers, folder)
            results.append(result)
            base = results[0]["jobs_per_minute"]
            print(
                f"W={workers}: {args.shops} jobs in {result['elapsed']:.1f}s = "
                f"{result['jobs_per_minute']:.1f} jobs/min, speed-up {result['jobs_per_minute'] / base:.2f}"
                f" (ideal {min(workers, args.shops)}), run p50 {result['run_p50']:.1f}s; "
                f"due->start p50 {result['wait_p50']:.2f}s p95 {result['wait_p95']:.2f}s; "
                f"broker messages/job: {result['task_messages_per_job']:.1f} task + "
                f"{result['event_messages_per_job']:.1f} event; created {result['created']}"
                f"/{args.shops * args.n}; failed jobs {result['failed']} {result['failures']}",
                flush=True,
            )
            _print_costs(result, args)
            if args.verbose:
                print(f"  events: {result['events']}", flush=True)
    ok = True
    base = results[0]["jobs_per_minute"]
    for result in results[1:]:
        workers = result["workers"]
        ideal = min(workers, args.shops)
        speedup = result["jobs_per_minute"] / base
        met = speedup >= 0.8 * ideal
        ok = ok and met
        print(
            f"verdict: speed-up of W={workers} over W=1 {speedup:.2f} "
            f"(target >= {0.8 * ideal:.1f} = 0.8 x {ideal}): {'met' if met else 'NOT met'}"
        )
    lost = [r for r in results if r["failed"] or r["created"] != args.shops * args.n]
    print(
        "verdict: every job succeeded, every customer created once: "
        + ("met" if not lost else "NOT met")
    )
    _print_bounds(results, args)
    return 0 if ok and not lost else 1


def _print_costs(result: dict[str, Any], args: argparse.Namespace) -> None:
    """Where a round's time went: Shopify (requests, points, throttling), CPU, the machine."""
    cores = os.cpu_count() or 1
    print(
        f"  per job: {result['requests_per_job']:.0f} Shopify requests answered after "
        f"{args.latency:g}s each (lookups one after the other, creates several at a time), "
        f"{result['points_per_job']:.0f} points of the {BUCKET:g}-point bucket (lowest level "
        f"{result['lowest_bucket']:.0f}, {result['throttled']} throttled answers); CPU "
        f"{result['worker_cpu_per_job']:.2f}s in the worker + {result['double_cpu_per_job']:.2f}s "
        "in the Shopify double",
        flush=True,
    )
    print(
        f"  machine: {result['busy_cores']:.2f} of {cores} cores busy during the round: "
        f"{result['ours_cores']:.2f} this benchmark's worker, doubles and dispatcher, "
        f"{max(0.0, result['busy_cores'] - result['ours_cores']):.2f} the rest (PostgreSQL, "
        f"RabbitMQ, other work; other work alone before the round: "
        f"{result['baseline_cores']:.2f}); steal {result['steal']:.0%}; load average "
        f"{result['load'][0]:.1f} -> {result['load'][1]:.1f}; the worker's memory (PSS) "
        f"{result['worker_pss_mb']:.0f} MB for {result['workers']} processes and its main "
        "process",
        flush=True,
    )


#: other work may keep this many cores busy (measured before each round) for the round's
#: speed-up to be judged: on a loaded machine every request waits for a core as well
QUIET_CORES = 0.5


def _print_bounds(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Whether the runs were API-bound (they wait on Shopify, not on this machine's CPU), and
    whether the machine was quiet enough for the speed-up to say anything."""
    cores = os.cpu_count() or 1
    one = results[0]
    cpu = one["worker_cpu_per_job"] + one["double_cpu_per_job"]
    widest = max(r["workers"] for r in results)
    need = min(widest, args.shops) * cpu / one["run_p50"]
    bound = need <= cores / 2
    print(
        f"verdict: API-bound runs: a job used {cpu:.2f}s of CPU (worker + Shopify double) in a "
        f"{one['run_p50']:.1f}s run ({cpu / one['run_p50']:.0%}); {min(widest, args.shops)} at "
        f"once need {need:.2f} of {cores} cores: {'met' if bound else 'NOT met'} "
        f"(at most half the cores)"
    )
    throttled = sum(int(r["throttled"]) for r in results)
    lowest = min(r["lowest_bucket"] for r in results)
    print(
        f"what the runs waited on: Shopify's answers ({args.latency:g}s each)"
        + (
            f" and its rate limit ({throttled} throttled answers, the bucket down to "
            f"{lowest:.0f} points)"
            if throttled or lowest < 0.1 * BUCKET
            else f"; the rate limit did not bite (the bucket's lowest level {lowest:.0f} of "
            f"{BUCKET:g} points, no throttled answer)"
        )
    )
    noisy = [r for r in results if r["baseline_cores"] > QUIET_CORES or r["steal"] > 0.1]
    print(
        f"verdict: machine quiet (other work kept at most {QUIET_CORES:g} core busy before each "
        "round, steal at most 10%): "
        + (
            "met"
            if not noisy
            else "NOT met in W="
            + ", ".join(
                f"{r['workers']} ({r['baseline_cores']:.2f} cores, steal {r['steal']:.0%}, "
                f"load {max(r['load']):.1f})"
                for r in noisy
            )
            + ": the speed-ups above are not conclusive; run again on an idle machine"
        )
    )


if __name__ == "__main__":
    sys.exit(main())
