"""Benchmark: import N new Shopify customers into the Business Central double with BC's limits.

    python bench/bc.py --n 2000 [--time-scale 30] [--budget 600] [--path both|batch|single]

The BC double runs in a child process (its own interpreter lock) with BC's per-user limits:
``--budget`` requests per 5-minute sliding window (BC: 6,000; default here 600 so that a few
thousand customers run into it) and 5 concurrent requests. Time is scaled by the same factor
on both sides like bench/shopify.py: ``--time-scale 30`` makes the double's window last
300/30 = 10 real seconds and tells the connector its window is 10 seconds too.

The N customers are new Shopify customers (US addresses, e-mail, phone) with the ERP fields
an import gives them (name from the company, Name 2 from first and last name, address,
contact data), created with the template US-RETAIL:

* ``batch``: the writer's ``create_customers`` (JSON ``$batch`` of 100). Printed: HTTP
  requests per created customer (target <= 0.1).
* ``single``: one ``POST customers`` per customer (what the connector sends for a single
  create), ``--workers`` at a time (default 5, BC's concurrency limit) so that the request
  budget, not the latency, is the limit; paced by the connector to the budget. Printed: the
  share of BC's request budget used while the budget was the limit (the time a client sending
  each request the moment BC's window lets it would have taken for the same requests, over
  the time they took: see ``_budget_share``; target >= 0.9), 429 answers seen, and records
  lost or duplicated (must be 0).

Both paths use no Customer Card source.

* ``cli``: the product path. ``custsync sync --direction import`` runs as a subprocess against
  the BC double (child process, the same limits) and the Shopify double (child process) holding
  N new Shopify customers, with the Customer Card, template and country pages published (so
  Name 2 and Contact are written). Printed: HTTP requests BC answered during the sync (token,
  reads and writes) per created customer (target <= 0.1), 429s, and records lost and
  duplicated (BC customers per e-mail; links in custsync's state), both must be 0. With a
  ``--budget`` the sync's requests exceed for a whole window, the budget share as for
  ``single`` too.

``--path all`` runs the three, ``both`` batch and single.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from custsync.connectors import business_central as bc

COMPANY = "CRONUS USA, Inc."
SECRET_ENV = "BENCH_BC_SECRET"


def _serve(budget: int, time_scale: float, urls: Any, stop: Any, report: Any) -> None:
    from custsync.connectors.bc_double import DEFAULT_WORLD, BcDouble, Limits, seed_world

    double = BcDouble(limits=Limits(requests_per_window=budget, time_scale=time_scale))
    world = {
        **DEFAULT_WORLD,
        "companies": [{**c, "customers": []} for c in DEFAULT_WORLD["companies"]],
    }
    seed_world(double.store, world)
    double.start()
    urls.put((double.environment_url, double.client_id, double.client_secret))
    stop.wait()
    requests = double.requests
    report.put(
        {
            "requests": len(requests),
            "throttled": sum(1 for r in requests if r.status == 429),
            # (monotonic start, status, method, path, operations): the cli path counts the
            # requests sent while the sync ran
            "log": [(r.started, r.status, r.method, r.path, r.operations) for r in requests],
            "peak_concurrency": double._limiter.peak_concurrency(double.client_id)
            if double._limiter
            else 0,
        }
    )
    double.stop()


class _Double:
    def __init__(self, budget: int, time_scale: float) -> None:
        ctx = mp.get_context("spawn")
        self._urls, self._report = ctx.Queue(), ctx.Queue()
        self._stop = ctx.Event()
        self._process = ctx.Process(
            target=_serve,
            args=(budget, time_scale, self._urls, self._stop, self._report),
            daemon=True,
        )
        self._process.start()
        self.url, self.client_id, self.secret = self._urls.get(timeout=120)

    def finish(self) -> dict[str, Any]:
        self._stop.set()
        report: dict[str, Any] = self._report.get(timeout=60)
        self._process.join(timeout=30)
        return report


class _Timed(httpx.HTTPTransport):
    """Keeps the send time of every request (the budget share is computed from them)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append(time.monotonic())
        return super().handle_request(request)


def _fields(i: int, run: str) -> dict[str, Any]:
    return {
        "name": f"Bench Company {i}",
        "address": f"{i} Pike Street",
        "city": "Seattle",
        "post_code": "98101",
        "county": "WA",
        "country_code": "US",
        "phone": f"+1 206 {i % 1000:03d} {i % 10000:04d}",
        "email": f"{run}{i}@example.com",
    }


def _writer(double: _Double, journal: Path, budget: int, time_scale: float, transport: Any):
    return bc.open_writer(
        f"bc+{double.url}",
        company=COMPANY,
        company_country="US",
        client_id=double.client_id,
        client_secret_env=SECRET_ENV,
        environ={SECRET_ENV: double.secret},
        journal=str(journal),
        requests_per_window=budget,
        window_seconds=300.0 / time_scale,
        pages={"customer_templates": "CustomerTemplates"},
        transport=transport,
        timeout_seconds=120,
    )


def _lost(writer: Any, run: str, n: int) -> tuple[int, int]:
    emails = Counter(c.email for c in writer.iter_customers() if c.email.startswith(run))
    return n - len(emails), sum(count - 1 for count in emails.values())


def run_batch(n: int, budget: int, time_scale: float, folder: Path) -> bool:
    double = _Double(budget, time_scale)
    transport = _Timed()
    writer = _writer(double, folder / "batch.sqlite", budget, time_scale, transport)
    started = time.monotonic()
    items = [bc.CreateItem(f"bench:b{i}", _fields(i, "b"), "US-RETAIL") for i in range(n)]
    results = list(writer.create_customers(items))
    seconds = time.monotonic() - started
    requests = writer.client.stats.requests + writer.client.stats.token_requests
    created = sum(1 for r in results if r.ok)
    lost, duplicated = _lost(writer, "b", n)
    writer.close()
    report = double.finish()
    per = requests / max(created, 1)
    print(
        f"batch: {created}/{n} created in {seconds:.1f} s; {requests} HTTP requests "
        f"({per:.3f} per created customer); 429s seen {writer.client.stats.throttled} "
        f"(double: {report['throttled']}); lost {lost}, duplicated {duplicated}"
    )
    ok = per <= 0.1 and lost == 0 and duplicated == 0
    print(
        f"VERDICT batch requests per customer {per:.3f} <= 0.1, nothing lost: "
        f"{'MET' if ok else 'NOT MET'}"
    )
    return ok


def _counted(log: list[Any]) -> list[float]:
    """The times BC counted requests at, sorted: the double's log of arrivals without the
    token requests (Microsoft Entra ID answers those, not BC) and without the 429s (BC does
    not admit them)."""
    return sorted(e[0] for e in log if e[1] != 429 and "/oauth2/" not in e[3])


def _budget_share(counted: list[float], budget: int, window: float) -> float:
    """The share of BC's request budget used while it was the limit (NaN when it never was,
    or for less than a whole window).

    The budget is the limit from the moment ``a`` a window first holds ``budget`` requests
    until the last request ``b``. Had the client sent each request the moment BC's rule (at
    most ``budget`` in any ``window`` seconds) let it, the ``m`` requests after ``a`` would
    have been sent by ``ideal``: each of the ``budget`` places held at ``a`` frees ``window``
    seconds after its request and takes the next one, so the k-th request after ``a`` goes
    ``window * (k // budget + 1)`` after the request holding place ``k % budget`` (the
    client's own spacing in its first full window, so BC's concurrency limit is respected).
    The share is ``(ideal - a) / (b - a)``: the budget's time over the time taken.

    Counting the requests in k whole windows from ``a`` instead makes the figure depend on
    phase and on the tail: a pacer holding its window 2 % longer than BC's sends its bursts a
    little later each window and loses a whole burst from the count every few windows, and the
    last window, where the work ran out, is never full (0.767 for the product path and 0.79
    for the single path measured that way, for clients that keep within 2-5 % of the
    budget's pace)."""
    start = next(
        (i for i in range(budget - 1, len(counted))
         if counted[i] - counted[i - budget + 1] < window),
        None,
    )
    if start is None:
        return float("nan")
    a, b = counted[start], counted[-1]
    if b - a < window:
        return float("nan")
    held = counted[start - budget + 1 : start + 1]
    last = sum(1 for t in counted if t > a) - 1
    ideal = held[last % budget] + window * (last // budget + 1)
    return (ideal - a) / (b - a)


def run_single(n: int, budget: int, time_scale: float, folder: Path, workers: int) -> bool:
    double = _Double(budget, time_scale)
    transport = _Timed()
    writer = _writer(double, folder / "single.sqlite", budget, time_scale, transport)
    writer.reference()  # token, company, templates: before the clock starts
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            pool.map(
                lambda i: writer.create_customer(_fields(i, "s"), "US-RETAIL", f"bench:s{i}"),
                range(n),
            )
        )
    ended = time.monotonic()
    sent = sorted(t for t in transport.sent if t >= started)
    window = 300.0 / time_scale
    created = sum(1 for r in results if r.ok)
    lost, duplicated = _lost(writer, "s", n)
    stats = writer.client.stats
    writer.close()
    report = double.finish()
    # the creates' requests as BC counted them (the reference reads before them included:
    # they hold places in BC's window too)
    share = _budget_share(
        _counted([e for e in report["log"] if e[0] <= ended]), budget, window
    )
    print(
        f"single: {created}/{n} created in {ended - started:.1f} s "
        f"(window {window:.1f} s, budget {budget}); {len(sent)} requests; paced "
        f"{stats.paced_seconds:.1f} s; budget used while throttled {share:.3f}; "
        f"429s seen {stats.throttled} (double: {report['throttled']}); peak concurrency "
        f"{report['peak_concurrency']}; lost {lost}, duplicated {duplicated}"
    )
    ok = share >= 0.9 and lost == 0 and duplicated == 0
    print(
        f"VERDICT single budget share {share:.3f} >= 0.9, nothing lost or duplicated: "
        f"{'MET' if ok else 'NOT MET'}"
    )
    if len(sent) <= budget:
        print("  (N did not exceed the budget: raise --n or lower --budget to measure it)")
    return ok


SHOPIFY_TOKEN = "shpat_bench_bc"
TOKEN_ENV = "CUSTSYNC_BENCH_SHOPIFY_TOKEN"


def _serve_shopify(n: int, urls: Any, stop: Any) -> None:
    from custsync.connectors.shopify_double import ShopifyDouble
    from custsync.connectors.shopify_double.seed import seed_from_models
    from custsync.engine.model import ShopifyAddress, ShopifyCustomer

    double = ShopifyDouble(token=SHOPIFY_TOKEN, bucket_size=2000.0, restore_rate=100.0)
    customers = (
        ShopifyCustomer(
            id="",
            first_name="Bench",
            last_name=f"Person {i}",
            email=f"c{i}@example.com",
            phone=f"+1206555{i % 10000:04d}",
            addresses=(
                ShopifyAddress(
                    default=True,
                    first_name="Bench",
                    last_name=f"Person {i}",
                    company=f"Bench Company {i}",
                    address1=f"{i} Pike Street",
                    zip="98101",
                    city="Seattle",
                    country_code="US",
                    province_code="WA",
                ),
            ),
        )
        for i in range(n)
    )
    seed_from_models(double, customers)
    double.start()
    urls.put(double.url)
    stop.wait()
    double.stop()


class _Shopify:
    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self._urls, self._stop = ctx.Queue(), ctx.Event()
        self._process = ctx.Process(
            target=_serve_shopify, args=(n, self._urls, self._stop), daemon=True
        )
        self._process.start()
        self.url: str = self._urls.get(timeout=600)

    def finish(self) -> None:
        self._stop.set()
        self._process.join(timeout=60)


def _cli_config(folder: Path, double: _Double, shop_url: str, budget: int, time_scale: float):
    import yaml

    document = {
        "erp": {
            "url": f"bc+{double.url}",
            "business_central": {
                "company": COMPANY,
                "company_country": "US",
                "client_id": double.client_id,
                "client_secret_env": SECRET_ENV,
                "journal": str(folder / "bc-journal.sqlite"),
                "pages": {
                    "customer_card": "Customer",
                    "countries": "CountriesRegions",
                    "customer_templates": "CustomerTemplates",
                },
                "requests_per_window": budget,
                "window_seconds": 300.0 / time_scale,
                "timeout_seconds": 120,
            },
        },
        "state": {"url": f"sqlite:///{folder / 'state.db'}"},
        "rules": [],
        "shops": [
            {
                "name": "main",
                "shopify": {"url": shop_url, "access_token_env": TOKEN_ENV},
                "settings": {
                    "customer_import": "all_customers",
                    "auto_create_unknown_customers": True,
                    "customer_template_code": "US-RETAIL",
                    "name_source": "company_name",
                    "name_2_source": "first_and_last_name",
                },
            }
        ],
    }
    path = folder / "custsync.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _cli_links(folder: Path) -> int:
    from custsync.engine.run.state import open_store

    store = open_store(f"sqlite:///{folder / 'state.db'}")
    try:
        return sum(1 for _ in store.links("main"))
    finally:
        store.close()


def run_cli(n: int, budget: int, time_scale: float, folder: Path) -> bool:
    """``custsync sync`` (a subprocess) imports N new Shopify customers into the BC double."""
    import subprocess

    folder = folder / "cli"
    folder.mkdir()
    double = _Double(budget, time_scale)
    shop = _Shopify(n)
    config = _cli_config(folder, double, shop.url, budget, time_scale)
    env = {**os.environ, SECRET_ENV: double.secret, TOKEN_ENV: SHOPIFY_TOKEN}
    command = [sys.executable, "-c", "from custsync.engine.cli import run; run()"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, "sync", "--config", str(config), "--no-progress", "--direction", "import"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    ended = time.monotonic()
    seconds = ended - started
    summary = (done.stdout.strip().splitlines() or [""])[0]
    links = _cli_links(folder)
    # the check reads BC with a pacer of its own: let the sync's requests leave BC's window
    # first so that the check meets no 429 (a 429 it meets is retried; it is not the sync's)
    time.sleep(min(300.0 / time_scale, 30.0))
    checker = _writer(double, folder / "check.sqlite", budget, time_scale, None)
    emails = Counter(c.email for c in checker.iter_customers() if c.email.startswith("c"))
    checker.close()
    report = double.finish()
    shop.finish()
    created = sum(emails.values())
    lost = n - len(emails)
    duplicated = created - len(emails)
    # the checker's own reads come after the sync (CLOCK_MONOTONIC is the machine's)
    during = [entry for entry in report["log"] if started <= entry[0] <= ended]
    sync_requests = len(during)
    writes = sum(1 for entry in during if entry[2] != "GET")
    operations = sum(entry[4] for entry in during if entry[3].endswith("$batch"))
    throttled = sum(1 for entry in during if entry[1] == 429)
    per = sync_requests / max(created, 1)
    # with a budget the sync's requests exceed, the connector's pacing is measured too (BC
    # counts requests by arrival: the double's log)
    share = _budget_share(_counted(during), budget, 300.0 / time_scale)
    print(
        f"cli: custsync sync exit {done.returncode} in {seconds:.1f} s: {summary}\n"
        f"  {created}/{n} customers in BC, {links} links; {sync_requests} HTTP requests to BC "
        f"during the sync ({per:.3f} per created customer; {writes} not GET, carrying "
        f"{operations} $batch operations); 429s {throttled}; "
        f"lost {lost + max(0, n - links)}, duplicated {duplicated}; budget used while "
        f"throttled {share:.3f}"
    )
    if done.returncode != 0:
        print(done.stderr[-2000:])
    ok = per <= 0.1 and lost == 0 and links == n and duplicated == 0 and done.returncode == 0
    print(
        f"VERDICT cli requests per created customer {per:.3f} <= 0.1, nothing lost or "
        f"duplicated: {'MET' if ok else 'NOT MET'}"
    )
    if share == share:  # measured: the sync's requests exceeded the budget
        ok &= share >= 0.9
        print(f"VERDICT cli budget share {share:.3f} >= 0.9: {'MET' if share >= 0.9 else 'NOT MET'}")
    else:
        print("  (budget share not measured: the sync's requests did not exceed --budget for a"
              " whole window; lower --budget to measure it)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--time-scale", type=float, default=30.0)
    parser.add_argument("--budget", type=int, default=600, help="requests per 5-minute window")
    parser.add_argument(
        "--path", choices=("both", "all", "batch", "single", "cli"), default="both"
    )
    parser.add_argument(
        "--workers", type=int, default=5, help="single path: creates at a time (BC allows 5)"
    )
    args = parser.parse_args(argv)
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-bc-") as tmp:
        print(f"machine: {os.cpu_count()} cores, load average {_load()}")
        if args.path in ("both", "all", "batch"):
            ok &= run_batch(args.n, args.budget, args.time_scale, Path(tmp))
        if args.path in ("both", "all", "single"):
            ok &= run_single(args.n, args.budget, args.time_scale, Path(tmp), args.workers)
        if args.path in ("all", "cli"):
            ok &= run_cli(args.n, args.budget, args.time_scale, Path(tmp))
        print(f"load average at the end {_load()}")
    return 0 if ok else 1


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
