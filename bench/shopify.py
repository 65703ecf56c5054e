"""Benchmark: export N customers to the local Shopify double with a Standard-plan bucket.

    python bench/shopify.py --n 2000 [--time-scale 5] [--path both|single|bulk|read] [-v]

The double runs in a child process (so its CPU does not compete with the connector for one
interpreter lock) with Shopify's Standard plan bucket: 2,000 points, 100 points/s. Time may be
scaled by the same factor on both sides: ``--time-scale 10`` makes the double refill 1,000
points per real second while reporting 100/s, and tells the connector's pacer that its clock
runs 10x, so a 2,000-customer export takes about a tenth of the real-world time. The default
is 5. Much above 20 the double and the connector (together about 270 creates/s over loopback
on two cores) become the limit instead of the bucket, which is then no longer what is
measured.

Printed for the one-by-one path (customerCreate per customer): points spent, achieved
points/s in bucket time over the restore rate (overall, and in steady state: without the
2,000-point head start of the full bucket; target >= 0.9), and THROTTLED answers seen.
For the bulk path (staged upload + bulkOperationRunMutation): HTTP requests used, and
requests per 10,000 customers (target: a few dozen). ``--path read`` (not part of ``both``)
seeds a store of N customers and reads them all back with a bulk export
(``bulkOperationRunQuery``, the connector's read for large stores): time, requests, status
polls. ``--path update`` (not part of ``both``) seeds N customers and renames them all (first
and last name of the customer and of its address, as a changed ERP contact does), once one by
one (``customerUpdate`` + ``customerAddressUpdate`` + a read of the customer, ``--concurrency``
in flight) and once by bulk jobs (an address job, then a ``customerUpdate`` job): requests
and time of each, and the bulk path's share of the one-by-one time on a real Standard store
(the one-by-one bucket time: that path is bound by the bucket; target <= 0.10). Every path prints the slowest HTTP request the connector saw (while a bulk job runs,
the double answers polls between its slices of work).
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import httpx
from custsync.connectors.shopify import open_reader, open_writer
from custsync.engine.model import ShopifyAddress
from custsync.engine.ports import CustomerInput

TOKEN = "shpat_bench"
BUCKET, RESTORE = 2000.0, 100.0  # Shopify Standard plan


def _serve(time_scale: float, urls: Any, stop: Any, report: Any, seed: int) -> None:
    from custsync.connectors.shopify_double import ShopifyDouble

    double = ShopifyDouble(
        token=TOKEN,
        bucket_size=BUCKET,
        restore_rate=RESTORE,
        time_scale=time_scale,
        bulk_seconds=0.05,
    )
    if seed:
        double.store.load(_seed_record(i) for i in range(seed))
    double.start()
    urls.put(double.url)
    stop.wait()
    requests = double.requests
    report.put(
        {
            "customers": double.store.count(),
            "graphql": sum(1 for r in requests if r.operation_name),
            "other_http": sum(1 for r in requests if not r.operation_name),
            "throttled": sum(1 for r in requests if r.throttled),
            "points": sum(r.actual_cost or 0 for r in requests),
            "polls": sum(1 for r in requests if "bulkOperation" in r.root_fields),
            "renamed": sum(
                1
                for c in double.store.customers()
                if str(c.get("firstName") or "").startswith("Renamed")
                and all(
                    str(a.get("firstName") or "").startswith("Renamed")
                    for a in c.get("addresses") or ()
                )
            ),
        }
    )
    double.stop()


def _seed_record(i: int) -> dict[str, Any]:
    return {
        "firstName": f"Seed{i}",
        "lastName": "Customer",
        "email": f"seed{i}@example.com",
        "phone": f"+1425{i:07d}",
        "tags": ["bench"],
        "addresses": [
            {
                "address1": f"{i} Seed Ave",
                "city": "Bellevue",
                "zip": "98004",
                "countryCode": "US",
                "provinceCode": "WA",
            }
        ],
    }


class _Double:
    """The double in a child process (``seed``: customers it starts with)."""

    def __init__(self, time_scale: float, seed: int = 0) -> None:
        ctx = mp.get_context("spawn")
        self._urls, self._report = ctx.Queue(), ctx.Queue()
        self._stop = ctx.Event()
        self._process = ctx.Process(
            target=_serve,
            args=(time_scale, self._urls, self._stop, self._report, seed),
            daemon=True,
        )
        self._process.start()
        self.url: str = self._urls.get(timeout=600)

    def finish(self) -> dict[str, Any]:
        self._stop.set()
        report: dict[str, Any] = self._report.get(timeout=60)
        self._process.join(timeout=30)
        return report


class _TimedTransport(httpx.HTTPTransport):
    """Records how long each HTTP request took (the slowest one shows lock waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        response = super().handle_request(request)
        response.read()
        with self._lock:
            self.seconds.append(time.monotonic() - started)
        return response

    def slowest(self) -> float:
        with self._lock:
            return max(self.seconds, default=0.0)


def _items(n: int, prefix: str) -> list[tuple[str, CustomerInput]]:
    return [
        (
            f"{prefix}{i:06d}",
            CustomerInput(
                first_name=f"Bench{i}",
                last_name="Customer",
                email=f"{prefix.lower()}{i}@example.com",
                phone=f"+1206{i:07d}",
                address=ShopifyAddress(
                    address1=f"{i} Bench St",
                    city="Seattle",
                    zip="98101",
                    country_code="US",
                    province_code="WA",
                ),
            ),
        )
        for i in range(n)
    ]


def run_single(n: int, time_scale: float, concurrency: int) -> dict[str, Any]:
    double = _Double(time_scale)
    transport = _TimedTransport()
    writer = open_writer(
        double.url,
        token=TOKEN,
        transport=transport,
        time_scale=time_scale,
        bulk_writes="never",
        concurrency=concurrency,
    )
    started = time.monotonic()
    results = list(writer.bulk_create_customers(_items(n, "S")))
    elapsed = time.monotonic() - started
    stats = writer.client.stats
    writer.close()
    server = double.finish()
    bucket_seconds = elapsed * time_scale
    points = stats.points
    return {
        "created": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "in_store": server["customers"],
        "seconds": elapsed,
        "points": points,
        "ratio": points / bucket_seconds / RESTORE,
        "steady_ratio": max(0.0, points - BUCKET) / bucket_seconds / RESTORE,
        "throttled": stats.throttled,
        "throttled_server": server["throttled"],
        "requests": stats.requests,
        "paced_seconds": writer.client.pacer.slept,
        "slowest": transport.slowest(),
    }


def run_bulk(n: int, time_scale: float) -> dict[str, Any]:
    double = _Double(time_scale)
    transport = _TimedTransport()
    writer = open_writer(
        double.url,
        token=TOKEN,
        transport=transport,
        time_scale=time_scale,
        bulk_writes="always",
        poll_interval=0.2,
        max_poll_interval=1.0,
    )
    started = time.monotonic()
    results = list(writer.bulk_create_customers(_items(n, "B")))
    elapsed = time.monotonic() - started
    stats = writer.client.stats
    writer.close()
    server = double.finish()
    requests = stats.requests + stats.http_other
    return {
        "created": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "in_store": server["customers"],
        "seconds": elapsed,
        "requests": requests,
        "per_10k": requests * 10_000 / n if n else 0.0,
        "polls": server["polls"],
        "throttled": stats.throttled,
        "slowest": transport.slowest(),
    }


def run_read(n: int, time_scale: float) -> dict[str, Any]:
    """Seed a store of ``n`` customers, then read them all with a bulk export."""
    started = time.monotonic()
    double = _Double(time_scale, seed=n)
    seeded = time.monotonic() - started
    transport = _TimedTransport()
    reader = open_reader(
        double.url,
        token=TOKEN,
        transport=transport,
        time_scale=time_scale,
        bulk_reads="always",
        poll_interval=0.2,
        max_poll_interval=1.0,
    )
    started = time.monotonic()
    read = sum(1 for _ in reader.iter_customers())
    elapsed = time.monotonic() - started
    stats = reader.client.stats
    problems = len(reader.problems())
    reader.close()
    server = double.finish()
    polls = server["polls"]
    return {
        "read": read,
        "in_store": server["customers"],
        "seed_seconds": seeded,
        "seconds": elapsed,
        "requests": stats.requests + stats.http_other,
        "polls": polls,
        "throttled": stats.throttled,
        "slowest": transport.slowest(),
        "problems": problems,
    }


def run_update(n: int, time_scale: float, *, bulk: bool, concurrency: int) -> dict[str, Any]:
    """Seed ``n`` customers, read them, then rename them all: by bulk jobs or one by one.
    Only the updates are counted and timed."""
    double = _Double(time_scale, seed=n)
    transport = _TimedTransport()
    writer = open_writer(
        double.url,
        token=TOKEN,
        transport=transport,
        time_scale=time_scale,
        bulk_reads="always",
        bulk_writes="always" if bulk else "never",
        concurrency=concurrency,
        poll_interval=0.2,
        max_poll_interval=1.0,
    )
    items: list[tuple[str, str, CustomerInput]] = []
    for i, customer in enumerate(writer.iter_customers()):
        (address,) = customer.addresses
        name = {"first_name": f"Renamed{i}", "last_name": "Bench"}
        items.append(
            (
                customer.id,
                customer.id,
                CustomerInput(**name, address=replace(address, **name)),
            )
        )
    before = replace(writer.client.stats)
    started = time.monotonic()
    results = list(writer.bulk_update_customers(items))
    elapsed = time.monotonic() - started
    stats = writer.client.stats
    writer.close()
    server = double.finish()
    requests = stats.requests + stats.http_other - before.requests - before.http_other
    return {
        "updated": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "renamed": server["renamed"],
        "seconds": elapsed,
        "requests": requests,
        "points": stats.points - before.points,
        "throttled": stats.throttled - before.throttled,
        "slowest": transport.slowest(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="customers to export (2000)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=5.0,
        help="bucket time runs this many times faster on both sides (5)",
    )
    parser.add_argument(
        "--path",
        choices=("both", "single", "bulk", "read", "update"),
        default="both",
        help="both = single + bulk exports; read = bulk export (read) of a seeded store; "
        "update = renames of a seeded store, one by one and by bulk jobs",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="creates (updates) in flight on the one-by-one path (4)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and pacing")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(relativeCreated)8.0f ms %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.n < 1 or args.time_scale <= 0:
        parser.error("--n must be >= 1 and --time-scale > 0")
    print(
        f"Shopify export benchmark: {args.n} customers, Standard bucket "
        f"({BUCKET:.0f} points, {RESTORE:.0f}/s), time scale {args.time_scale:g}"
    )
    ok = True
    if args.path in ("both", "single"):
        r = run_single(args.n, args.time_scale, args.concurrency)
        print(
            f"one by one: {r['created']} created, {r['failed']} failed, {r['in_store']} in "
            f"store, {r['seconds']:.1f} s real ({r['seconds'] * args.time_scale:.0f} s bucket "
            f"time), {r['requests']} requests"
        )
        print(
            f"  points {r['points']:.0f}; achieved/restore rate {r['ratio']:.2f} overall, "
            f"{r['steady_ratio']:.2f} steady state (target >= 0.90); THROTTLED seen "
            f"{r['throttled']}; pacer waited {r['paced_seconds']:.1f} s; slowest request "
            f"{r['slowest']:.2f} s"
        )
        ok = ok and r["steady_ratio"] >= 0.9 and r["in_store"] == r["created"]
    if args.path in ("both", "bulk"):
        r = run_bulk(args.n, args.time_scale)
        print(
            f"bulk: {r['created']} created, {r['failed']} failed, {r['in_store']} in store, "
            f"{r['seconds']:.1f} s, {r['requests']} HTTP requests "
            f"({r['per_10k']:.1f} per 10,000 customers; {r['polls']} status polls), THROTTLED "
            f"seen {r['throttled']}, "
            f"slowest request {r['slowest']:.2f} s"
        )
        ok = ok and r["in_store"] == r["created"]
    if args.path == "read":
        r = run_read(args.n, args.time_scale)
        print(
            f"bulk read: {r['read']} of {r['in_store']} customers read in {r['seconds']:.1f} s "
            f"({r['read'] / max(r['seconds'], 1e-9):.0f}/s; store seeded in "
            f"{r['seed_seconds']:.0f} s, not counted), {r['requests']} HTTP requests "
            f"({r['polls']} status polls), THROTTLED seen {r['throttled']}, slowest request "
            f"{r['slowest']:.2f} s, {r['problems']} unreadable"
        )
        ok = ok and r["read"] == r["in_store"] == args.n and not r["problems"]
    if args.path == "update":
        single = run_update(args.n, args.time_scale, bulk=False, concurrency=args.concurrency)
        bulk = run_update(args.n, args.time_scale, bulk=True, concurrency=args.concurrency)
        for label, r in (("one by one", single), ("bulk", bulk)):
            print(
                f"updates {label}: {r['updated']} updated, {r['failed']} failed, "
                f"{r['renamed']} renamed in store, {r['seconds']:.1f} s real "
                f"({r['seconds'] * args.time_scale:.0f} s bucket time), {r['requests']} HTTP "
                f"requests, {r['points']:.0f} points, THROTTLED seen {r['throttled']}, "
                f"slowest request {r['slowest']:.2f} s"
            )
        # one by one is bound by the bucket: its bucket time is what a real store takes; the
        # bulk jobs are not, their real time is theirs
        single_real = single["seconds"] * args.time_scale
        share = bulk["seconds"] / max(single_real, 1e-9)
        fine = all(r["updated"] == r["renamed"] == args.n for r in (single, bulk))
        verdict = "met" if fine and share <= 0.10 else "NOT met"
        print(
            f"bulk updates: {bulk['seconds']:.1f} s against {single_real:.0f} s one by one on a "
            f"Standard store (its bucket time) = {share:.3f} of it; {bulk['requests']} HTTP "
            f"requests against {single['requests']} (target <= 0.10 of the time): {verdict}"
        )
        ok = ok and fine and share <= 0.10
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
