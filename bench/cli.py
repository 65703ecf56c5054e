"""Benchmark of the CLI itself: ``custsync`` run as a subprocess, wall time and peak RSS.

    python bench/cli.py --scenario sync [--n 10000] [--time-scale 1]

Scenarios (``--scenario``; each prints its figures and a ``target:`` verdict line):

``sync``
    A first ``custsync sync`` exporting N new customers (``--n``, default 10,000) from a SQLite
    ERP to an empty store: the Shopify double in a child process with the Standard plan's
    bucket (2,000 points). Run twice on fresh copies of the same world, in the same run: with
    the default options (bulk mutation from ``bulk_write_threshold``) and with
    ``bulk_writes: never`` (one by one, ``concurrency`` 4 in flight). Printed per run: HTTP
    requests the double answered (GraphQL and file transfers), wall time, peak RSS of the
    ``custsync`` process, customers in the store; then the time ratio. Target (issue 11):
    the bulk run in <= 50 HTTP requests and in at most a tenth of the one-by-one time.

    Time scale (default 1: the real Standard plan; the one-by-one run of 10,000 customers
    then takes about 20 minutes): with ``--time-scale S`` the double's bucket refills at
    ``100 x S`` points per second (the CLI paces itself by the rate the double reports), so
    the one-by-one run, which the bucket limits, takes about 1/S of a real store's time while
    the bulk run, which it does not limit, takes as long: the ratio then understates the
    real one (quick checks only).

Add a scenario: a function ``(args) -> bool`` (True when its target is met) in
:data:`SCENARIOS`.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKEN = "shpat_bench"
TOKEN_ENV = "CUSTSYNC_BENCH_TOKEN"
BUCKET, RESTORE = 2000.0, 100.0  # Shopify Standard plan


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``custsync ARGS`` as a subprocess: exit code, wall seconds, peak RSS (MB), output."""
    command = [sys.executable, "-c", "from custsync.engine.cli import run; run()", *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # files, not pipes: a chatty run must not block on a full pipe while we wait for it
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=out, stderr=err, text=True
        )
        # wait4 gives this child's own resource usage (ru_maxrss: its peak RSS, KB on Linux)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "returncode": process.returncode,
            "seconds": seconds,
            "rss_mb": usage.ru_maxrss / 1024,
            "stdout": out.read(),
            "stderr": err.read(),
        }


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}, Python {sys.version.split()[0]}"


# --------------------------------------------------------------------------------------------
# sync: a first export of N new customers
# --------------------------------------------------------------------------------------------


def _serve_double(time_scale: float, urls: Any, stop: Any, report: Any) -> None:
    from custsync.connectors.shopify_double import ShopifyDouble

    double = ShopifyDouble(
        token=TOKEN,
        bucket_size=BUCKET,
        restore_rate=RESTORE * time_scale,
        bulk_seconds=0.05,
    )
    double.start()
    urls.put(double.url)
    stop.wait()
    requests = double.requests
    report.put(
        {
            "customers": double.store.count(),
            "emails": len({c["email"] for c in double.store.customers()}),
            "graphql": sum(1 for r in requests if r.operation_name or r.root_fields),
            "files": sum(1 for r in requests if not (r.operation_name or r.root_fields)),
            "creates": sum(1 for r in requests if "customerCreate" in r.root_fields),
            "throttled": sum(1 for r in requests if r.throttled),
        }
    )
    double.stop()


class _DoubleProcess:
    """The Shopify double in a child process (its CPU does not slow the CLI's)."""

    def __init__(self, time_scale: float) -> None:
        ctx = mp.get_context("spawn")
        self._urls, self._report, self._stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        self._process = ctx.Process(
            target=_serve_double,
            args=(time_scale, self._urls, self._stop, self._report),
            daemon=True,
        )
        self._process.start()
        self.url: str = self._urls.get(timeout=300)

    def finish(self) -> dict[str, Any]:
        self._stop.set()
        report: dict[str, Any] = self._report.get(timeout=300)
        self._process.join(timeout=60)
        return report


def _erp_record(i: int) -> dict[str, str]:
    return {
        "no": f"C{i:07d}",
        "name": f"Person {i}",
        "address": f"{i % 300 + 1} Damrak",
        "city": "Amsterdam",
        "post_code": "1012 AB",
        "country_code": "NL",
        "phone": f"+3161{i:07d}",
        "email": f"person{i}@example.com",
    }


def _make_erp(path: Path, n: int) -> None:
    from custsync.connectors.erp_sql import LoadRow, open_writer

    erp = open_writer(f"sqlite:///{path}", create=True)
    try:
        erp.initialize(company_name="Bench", company_country="NL", with_defaults=True)
        report = erp.load("customers", [LoadRow(i + 1, _erp_record(i)) for i in range(1, n + 1)])
        assert not report.problems, report.problems[:3]
    finally:
        erp.close()


def _write_config(folder: Path, shop_url: str, shopify_options: str) -> Path:
    path = folder / "custsync.yaml"
    path.write_text(
        f"""erp: {{url: "sqlite:///{folder / "erp.db"}"}}
state: {{url: "sqlite:///{folder / "state.db"}"}}
shops:
  - name: bench
    shopify:
      url: "{shop_url}"
      access_token_env: {TOKEN_ENV}
{shopify_options}
    settings:
      customer_import: all_customers
      auto_create_unknown_customers: true
      customer_template_code: RETAIL
      export_customers: true
""",
        encoding="utf-8",
    )
    return path


def _one_sync(
    template: Path, workdir: Path, label: str, shopify_options: str, time_scale: float
) -> dict[str, Any]:
    folder = workdir / label
    folder.mkdir()
    shutil.copy(template, folder / "erp.db")
    double = _DoubleProcess(time_scale)
    try:
        config = _write_config(folder, double.url, shopify_options)
        result = run_cli(
            ["sync", "--config", str(config), "--no-progress"], env={TOKEN_ENV: TOKEN}
        )
    finally:
        server = double.finish()
    result.update(server)
    result["requests"] = server["graphql"] + server["files"]
    return result


def scenario_sync(args: argparse.Namespace) -> bool:
    n, scale = args.n, args.time_scale
    print(
        f"sync: a first export of {n:,} new customers from a SQLite ERP to the Shopify double "
        f"(bucket {BUCKET:.0f} points refilled at {RESTORE * scale:.0f}/s: the Standard plan "
        f"x{scale:g}); machine: {machine()}"
    )
    with tempfile.TemporaryDirectory(prefix="custsync-bench-cli-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        _make_erp(workdir / "erp-template.db", n)
        print(f"  setup: ERP of {n:,} customers in {time.perf_counter() - started:.1f} s")
        runs = {}
        for label, options in (
            ("bulk", ""),
            ("one-by-one", "      bulk_writes: never\n      concurrency: 4\n"),
        ):
            r = _one_sync(workdir / "erp-template.db", workdir, label, options, scale)
            runs[label] = r
            print(
                f"  {label:>10}: exit {r['returncode']}, {r['customers']:,} customers in the "
                f"store ({r['emails']:,} distinct e-mails), {r['requests']:,} HTTP requests "
                f"({r['graphql']:,} GraphQL, {r['files']} file transfers; "
                f"{r['creates']:,} customerCreate, {r['throttled']} THROTTLED), "
                f"{r['seconds']:.1f} s, peak RSS {r['rss_mb']:.0f} MB"
            )
            if r["returncode"] != 0:
                print("    " + (r["stderr"].strip() or r["stdout"].strip())[-2000:])
    bulk, single = runs["bulk"], runs["one-by-one"]
    ratio = single["seconds"] / max(bulk["seconds"], 1e-9)
    print(f"  one-by-one / bulk time: {ratio:.1f}x (measured in this run)")
    complete = all(r["returncode"] == 0 and r["customers"] == r["emails"] == n for r in runs.values())
    met = complete and bulk["requests"] <= 50 and ratio >= 10
    print(
        f"target: first sync of {n:,} new customers in <= 50 HTTP requests "
        f"({bulk['requests']}) and <= 1/10 of the one-by-one time ({ratio:.1f}x faster): "
        + ("met" if met else "NOT met" + ("" if complete else " (a run did not finish cleanly)"))
    )
    return met


SCENARIOS: dict[str, Callable[[argparse.Namespace], bool]] = {
    "sync": scenario_sync,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="sync")
    parser.add_argument("--n", type=int, default=10_000, help="customers (10,000)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="the double's bucket refills this many times faster than the Standard plan (1)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.time_scale <= 0:
        parser.error("--n must be >= 1 and --time-scale > 0")
    return 0 if SCENARIOS[args.scenario](args) else 1


if __name__ == "__main__":
    sys.exit(main())
