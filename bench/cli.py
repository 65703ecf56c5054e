"""Benchmark of the CLI itself: ``custsync`` run as a subprocess, wall time and peak RSS.

    python bench/cli.py --scenario sync [--n 10000] [--time-scale 1]
    python bench/cli.py --scenario sync-updates [--n 10000] [--time-scale 10]
    python bench/cli.py --scenario sync-few-updates [--n 200] [--latency 0.15]

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

``sync-updates``
    N customers (``--n``) exported by a first sync (not measured), then every ERP customer's
    contact changed (the Shopify customer's names and its address's: an update of both); the
    measured ``custsync sync --direction export`` sends N updates, once with the default
    options (two bulk jobs from ``bulk_write_threshold``: addresses, then customers) and once
    with ``bulk_writes: never`` (one at a time: customerUpdate, customerAddressUpdate, a
    read). Same figures and target as ``sync``, the requests counted without the plan's reads
    of the linked Shopify customers (``CustomersByIds``, 250 ids a request; one by one also
    ``CustomerById`` after each address write; printed apart); ``--time-scale`` as there (the one-by-one run of 10,000 updates, some 25 points
    each, takes about 40 minutes at 1).

``sync-few-updates``
    N updates below ``bulk_write_threshold`` (``--n`` when below 250, else 200), exported as
    single mutations: once with the default ``concurrency`` (4 in flight) and once with
    ``concurrency: 1``, the double answering each request after ``--latency`` seconds (0.15,
    Shopify over the internet; loopback has none). Printed: both times and their ratio; no
    target is named (issue 11 asks for single mutations with concurrency below the threshold).

``plan-files``, ``plan-sqlite``, ``erp-load`` (issue 11: memory bounded by the batch)
    ``plan-files``: ``bench/evaluate.py``'s world of N records (60 % ERP, 40 % Shopify, the
    same generator and ``--seed``) written as a files world (JSON Lines, links CSV, a config
    with the benchmark's settings and country setups); ``custsync plan -o json --out FILE`` on
    it, and ``bench/evaluate.py --n N`` in the same run. Target (judged at N >= 1,000,000):
    peak RSS < 1.5 GB and wall time within 1.5x of evaluate.py's.
    ``plan-sqlite``: a SQLite ERP (loaded with ``custsync erp load``) and the Shopify double
    (in this process, over loopback) with N customers a side; ``custsync plan`` (text, a first
    run). Target (judged at N >= 200,000): peak RSS < 1 GB.
    ``erp-load``: ``custsync erp load`` of N customer rows from CSV into a new SQLite ERP.
    Target (judged at N >= 1,000,000): peak RSS < 500 MB.
    ``sync-plan``: a saved plan of N export creates (a SQLite ERP of N new customers,
    ``custsync plan --direction export --out``) applied with ``custsync sync --plan`` to the
    Shopify double (bulk creates), and the same for N/5. Target (judged at N >= 50,000): the
    saved plan is read streaming, so the peak RSS at N is at most 15 % + 20 MB above the one
    at N/5 (a plan held in memory grows by kilobytes a decision).
    Their peak RSS is the child's own ``ru_maxrss`` taken by a small launcher process (MB =
    10^6 bytes).

Add a scenario: a function ``(args) -> bool`` (True when its target is met) in
:data:`SCENARIOS`.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import evaluate  # bench/evaluate.py: the world generator of the plan scenarios
from custsync.engine.model import ERP_FIELD_LENGTHS, ErpCustomer, ShopifyCustomer

HERE = Path(__file__).resolve().parent
CUSTSYNC = str(Path(sys.executable).with_name("custsync"))

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


def _serve_double(
    time_scale: float, urls: Any, stop: Any, report: Any, reset: Any = None, latency: float = 0.0
) -> None:
    from custsync.connectors.shopify_double import Fault, ShopifyDouble

    double = ShopifyDouble(
        token=TOKEN,
        bucket_size=BUCKET,
        restore_rate=RESTORE * time_scale,
        bulk_seconds=0.05,
    )
    if latency > 0:  # Shopify's answer time over the internet, which loopback does not have
        double.inject(Fault("delay", times=10**9, seconds=latency, target="any"))
    double.start()
    urls.put(double.url)
    while not stop.wait(0.05):
        if reset is not None and reset.is_set():  # count from here on
            double.reset_log()
            reset.clear()
    requests = double.requests
    report.put(
        {
            "customers": double.store.count(),
            "emails": len({c["email"] for c in double.store.customers()}),
            "graphql": sum(1 for r in requests if r.operation_name or r.root_fields),
            "files": sum(1 for r in requests if not (r.operation_name or r.root_fields)),
            "creates": sum(1 for r in requests if "customerCreate" in r.root_fields),
            "updates": sum(1 for r in requests if "customerUpdate" in r.root_fields),
            "address_updates": sum(
                1 for r in requests if "customerAddressUpdate" in r.root_fields
            ),
            "bulk_jobs": sum(1 for r in requests if "bulkOperationRunMutation" in r.root_fields),
            "reads_by_id": sum(1 for r in requests if r.operation_name == "CustomerById"),
            "batch_reads": sum(1 for r in requests if r.operation_name == "CustomersByIds"),
            "renamed": sum(
                1
                for c in double.store.customers()
                if c.get("firstName") == "Ann"
                and all(a.get("firstName") == "Ann" for a in c.get("addresses") or ())
            ),
            "throttled": sum(1 for r in requests if r.throttled),
        }
    )
    double.stop()


class _DoubleProcess:
    """The Shopify double in a child process (its CPU does not slow the CLI's)."""

    def __init__(self, time_scale: float, latency: float = 0.0) -> None:
        ctx = mp.get_context("spawn")
        self._urls, self._report, self._stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        self._reset = ctx.Event()
        self._process = ctx.Process(
            target=_serve_double,
            args=(time_scale, self._urls, self._stop, self._report, self._reset, latency),
            daemon=True,
        )
        self._process.start()
        self.url: str = self._urls.get(timeout=300)

    def reset_log(self) -> None:
        """Count requests from now on (the report covers what follows)."""
        self._reset.set()
        while self._reset.is_set():
            time.sleep(0.01)

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


def _write_config(
    folder: Path, shop_url: str, shopify_options: str, settings: str = ""
) -> Path:
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
{settings}""",
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




# --------------------------------------------------------------------------------------------
# sync-updates: N customers' contact changed in the ERP, exported as updates
# --------------------------------------------------------------------------------------------

_UPDATES = "      can_update_shopify_customers: true\n"


def _one_update_sync(
    template: Path,
    workdir: Path,
    label: str,
    shopify_options: str,
    time_scale: float,
    n: int,
    latency: float = 0.0,
) -> dict[str, Any]:
    """A first export (not measured), the contact of every ERP customer changed, then the
    measured ``sync --direction export`` with ``shopify_options``."""
    from custsync.connectors.erp_sql import open_writer

    folder = workdir / label
    folder.mkdir()
    shutil.copy(template, folder / "erp.db")
    double = _DoubleProcess(time_scale, latency)
    try:
        config = _write_config(folder, double.url, "", _UPDATES)
        first = run_cli(
            ["sync", "--config", str(config), "--no-progress", "--direction", "export"],
            env={TOKEN_ENV: TOKEN},
        )
        assert first["returncode"] == 0, first["stderr"][-2000:]
        erp = open_writer(f"sqlite:///{folder / 'erp.db'}")
        try:
            for i in range(1, n + 1):
                changed = erp.update_customer(f"C{i:07d}", {"contact": f"Ann Renamed{i}"})
                assert changed.ok, changed.message
        finally:
            erp.close()
        config = _write_config(folder, double.url, shopify_options, _UPDATES)
        double.reset_log()
        result = run_cli(
            ["sync", "--config", str(config), "--no-progress", "--direction", "export"],
            env={TOKEN_ENV: TOKEN},
        )
    finally:
        server = double.finish()
    result.update(server)
    result["requests"] = server["graphql"] + server["files"]
    return result


def scenario_sync_updates(args: argparse.Namespace) -> bool:
    n, scale = args.n, args.time_scale
    print(
        f"sync-updates: {n:,} ERP customers' contact changed (the Shopify customer's and its "
        f"address's names), exported as updates to the Shopify double (bucket {BUCKET:.0f} "
        f"points refilled at {RESTORE * scale:.0f}/s: the Standard plan x{scale:g}); machine: "
        f"{machine()}"
    )
    with tempfile.TemporaryDirectory(prefix="custsync-bench-cli-") as tmp:
        workdir = Path(tmp)
        _make_erp(workdir / "erp-template.db", n)
        runs = {}
        for label, options in (("bulk", ""), ("one-by-one", "      bulk_writes: never\n")):
            r = _one_update_sync(workdir / "erp-template.db", workdir, label, options, scale, n)
            runs[label] = r
            print(
                f"  {label:>10}: exit {r['returncode']}, {r['renamed']:,} of {r['customers']:,} "
                f"customers renamed, {r['requests']:,} HTTP requests ({r['graphql']:,} GraphQL, "
                f"{r['files']} file transfers; {r['reads_by_id']:,} CustomerById reads, "
                f"{r['batch_reads']:,} CustomersByIds reads, "
                f"{r['bulk_jobs']} bulk jobs, {r['updates']:,} customerUpdate, "
                f"{r['address_updates']:,} customerAddressUpdate, {r['throttled']} "
                f"THROTTLED), {r['seconds']:.1f} s, peak RSS {r['rss_mb']:.0f} MB"
            )
            if r["returncode"] != 0:
                print("    " + (r["stderr"].strip() or r["stdout"].strip())[-2000:])
    bulk, single = runs["bulk"], runs["one-by-one"]
    ratio = single["seconds"] / max(bulk["seconds"], 1e-9)
    print(f"  one-by-one / bulk time: {ratio:.1f}x (measured in this run, time scale {scale:g})")
    complete = all(r["returncode"] == 0 and r["renamed"] == n for r in runs.values())
    # the writes are this scenario's subject; the plan's reads of the linked customers (up
    # to 250 a CustomersByIds request; one by one also reads each customer again by id after
    # its address write) are counted apart
    reads = bulk["reads_by_id"] + bulk["batch_reads"]
    writes = bulk["requests"] - reads
    met = complete and writes <= 50 and ratio >= 10
    print(
        f"target: {n:,} updates written in <= 50 HTTP requests ({writes}; the plan read "
        f"the linked customers in {reads:,} requests besides) and <= 1/10 of the one-by-one "
        f"time ({ratio:.1f}x faster): "
        + ("met" if met else "NOT met" + ("" if complete else " (a run did not finish cleanly)"))
    )
    return met


def scenario_sync_few_updates(args: argparse.Namespace) -> bool:
    """Updates below ``bulk_write_threshold`` (250): single mutations, ``concurrency`` (4) in
    flight, against the same run with ``concurrency: 1`` (one after another), the double
    answering each request after ``--latency`` seconds as Shopify does over the internet."""
    n = args.n if args.n < 250 else 200
    scale, latency = args.time_scale, args.latency
    print(
        f"sync-few-updates: {n:,} ERP customers' contact changed (below the bulk threshold of "
        f"250), exported as single updates to the Shopify double answering after {latency:g} "
        f"s (Standard plan x{scale:g}); machine: {machine()}"
    )
    runs = {}
    with tempfile.TemporaryDirectory(prefix="custsync-bench-cli-") as tmp:
        workdir = Path(tmp)
        _make_erp(workdir / "erp-template.db", n)
        for label, options in (("concurrent", ""), ("one at a time", "      concurrency: 1\n")):
            r = _one_update_sync(
                workdir / "erp-template.db", workdir, label.replace(" ", "-"), options, scale, n,
                latency,
            )
            runs[label] = r
            print(
                f"  {label:>13}: exit {r['returncode']}, {r['renamed']:,} of {n:,} renamed, "
                f"{r['updates']:,} customerUpdate, {r['address_updates']:,} "
                f"customerAddressUpdate, {r['bulk_jobs']} bulk jobs, {r['throttled']} "
                f"THROTTLED, {r['seconds']:.1f} s"
            )
    complete = all(r["returncode"] == 0 and r["renamed"] == n for r in runs.values())
    ratio = runs["one at a time"]["seconds"] / max(runs["concurrent"]["seconds"], 1e-9)
    print(
        f"  one at a time / concurrent time: {ratio:.1f}x (measured in this run); no target "
        "is named: figures only" + ("" if complete else " (a run did not finish cleanly)")
    )
    return complete


# --------------------------------------------------------------------------------------------
# plan-files, plan-sqlite, erp-load
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stderr: str
    cpu_seconds: float = 0.0  # user + system time of the process itself


#: runs the measured command from a small process: a child forked (or vfork-ed) by this
#: benchmark, which holds a generated world, would report this process's RSS as its own
#: ``ru_maxrss`` (it is counted before the exec); forked from the launcher it cannot
_LAUNCHER = """
import json, os, subprocess, sys, time
out, command = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
child = subprocess.Popen(command)
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - started
with open(out, "w") as handle:
    json.dump({"seconds": seconds, "maxrss_kb": usage.ru_maxrss,
               "cpu_seconds": usage.ru_utime + usage.ru_stime,
               "returncode": os.waitstatus_to_exitcode(status)}, handle)
"""


def measure(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdout: Any = subprocess.DEVNULL,
) -> Measured:
    """Run ``command``; its wall time and its own peak RSS (``ru_maxrss`` from ``wait4``,
    taken by a small launcher process that starts it)."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.json"
        launched = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(figures), *command],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=stdout,
            stderr=err,
            check=False,
        )
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        if not figures.is_file():
            raise SystemExit(f"the launcher failed (exit {launched.returncode}):\n{stderr[-3000:]}")
        result = json.loads(figures.read_text())
    return Measured(
        result["seconds"],
        result["maxrss_kb"] * 1024 / 1e6,
        result["returncode"],
        stderr,
        result["cpu_seconds"],
    )


def _check(what: str, measured: Measured, ok: Sequence[int] = (0,)) -> None:
    if measured.returncode not in ok:
        raise SystemExit(f"{what} failed (exit {measured.returncode}):\n{measured.stderr[-3000:]}")


def _verdict(met: bool | None, below: str) -> str:
    return f"n/a below {below}" if met is None else ("met" if met else "NOT met")


# --------------------------------------------------------------------------------------------
# Worlds
# --------------------------------------------------------------------------------------------


def _erp_row(customer: ErpCustomer) -> dict[str, str]:
    row = {
        "no": customer.no,
        "name": customer.name,
        "contact": customer.contact,
        "address": customer.address,
        "city": customer.city,
        "post_code": customer.post_code,
        "county": customer.county,
        "country_code": customer.country_code,
        "phone": customer.phone,
        "email": customer.email,
    }
    return {key: value for key, value in row.items() if value}


def _shopify_row(customer: ShopifyCustomer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone": customer.phone,
        "addresses": [
            {
                key: value
                for key, value in (
                    ("id", address.id),
                    ("default", address.default),
                    ("first_name", address.first_name),
                    ("last_name", address.last_name),
                    ("address1", address.address1),
                    ("zip", address.zip),
                    ("city", address.city),
                    ("country_code", address.country_code),
                    ("province_code", address.province_code),
                    ("province", address.province),
                )
                if value
            }
            for address in customer.addresses
        ],
    }


def _settings_yaml(shop_url: str, extra: str = "") -> str:
    setups = evaluate.country_setups()
    lines = [
        "shops:",
        f"  - name: {evaluate.SHOP}",
        f'    shopify: {{url: "{shop_url}"{extra}}}',
        "    settings:",
        "      customer_import: all_customers",
        "      auto_create_unknown_customers: true",
        "      shopify_can_update_customers: true",
        "      export_customers: true",
        "      customer_template_code: RETAIL",
        "    countries:",
    ]
    for iso, setup in setups.items():
        lines.append(f"      - iso_code: {iso}")
        if setup.customer_template_code:
            lines.append(f"        customer_template_code: {setup.customer_template_code}")
        if setup.tax_areas:
            lines.append("        tax_areas:")
            for area in setup.tax_areas:
                lines.append(
                    f'          - {{county: "{area.county}", county_code: "{area.county_code}", '
                    f'tax_area_code: "{area.tax_area_code}", tax_liable: {str(area.tax_liable).lower()}, '
                    'vat_bus_posting_group: ""}'
                )
    return "\n".join(lines) + "\n"


def write_files_world(folder: Path, n: int, seed: int) -> Path:
    """bench/evaluate.py's world of ``n`` records as a files world; returns the config."""
    world = evaluate.generate(n, seed)
    data = folder / "world"
    data.mkdir()
    with (data / "erp_customers.jsonl").open("w", encoding="utf-8") as out:
        for customer in world.erp:
            out.write(json.dumps(_erp_row(customer), ensure_ascii=False) + "\n")
    with (data / "shopify_customers.jsonl").open("w", encoding="utf-8") as out:
        for shopify in world.shopify:
            out.write(json.dumps(_shopify_row(shopify), ensure_ascii=False) + "\n")
    with (data / "links.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["shop", "shopify_id", "erp_no"])
        writer.writerows([link.shop, link.shopify_id, link.erp_no] for link in world.links)
    reference = evaluate.reference()
    (data / "countries.yaml").write_text(
        "".join(f"- {{code: {c.code}, iso_code: {c.iso_code}}}\n" for c in reference.countries)
    )
    (data / "company.yaml").write_text(
        f"name: {reference.company.name}\ncountry_code: {reference.company.country_code}\n"
    )
    (data / "templates.yaml").write_text(
        "".join(f"- {{code: {t.code}}}\n" for t in reference.templates)
    )
    config = folder / "custsync.yaml"
    config.write_text(
        'erp: {url: "files:./world"}\n'
        f'state: {{url: "sqlite:///{folder / "state.db"}"}}\n' + _settings_yaml("files:./world")
    )
    return config


def write_erp_csv(path: Path, customers: Sequence[ErpCustomer]) -> None:
    """ERP customers as an `erp load` file (values clipped to the ERP's field lengths)."""
    columns = (
        "no",
        "name",
        "contact",
        "address",
        "city",
        "post_code",
        "county",
        "country_code",
        "phone",
        "email",
    )
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for customer in customers:
            writer.writerow(
                str(getattr(customer, name))[: ERP_FIELD_LENGTHS.get(name, 250)] for name in columns
            )


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


def plan_files(n: int, seed: int, folder: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    config = write_files_world(folder, n, seed)
    setup = time.perf_counter() - t0
    out = folder / "plan.json"
    plan = measure(
        [CUSTSYNC, "plan", "-c", str(config), "-o", "json", "--out", str(out)], cwd=folder
    )
    _check("custsync plan", plan)
    size = out.stat().st_size
    result_file = folder / "evaluate.json"
    with result_file.open("w") as handle:
        evaluated = measure(
            [
                sys.executable,
                str(HERE / "evaluate.py"),
                "--n",
                str(n),
                "--seed",
                str(seed),
                "--json",
            ],
            stdout=handle,
        )
    _check("bench/evaluate.py", evaluated)
    figures = json.loads(result_file.read_text())
    planned = figures["seconds"]["load_to_decide"]
    ratio_planned = plan.seconds / planned
    ratio_process = plan.seconds / evaluated.seconds
    judged = n >= 1_000_000
    memory_met = plan.peak_rss_mb < 1500 if judged else None
    time_met = ratio_process <= 1.5 if judged else None
    print(
        f"plan-files: N = {n:,} ({figures['erp_customers']:,} ERP, "
        f"{figures['shopify_customers']:,} Shopify, {figures['links']:,} links); world "
        f"written in {setup:.1f} s"
    )
    print(
        f"  custsync plan -o json --out: {plan.seconds:.1f} s, peak RSS "
        f"{plan.peak_rss_mb:.0f} MB, plan file {size / 1e6:.0f} MB"
    )
    print(
        f"  bench/evaluate.py (same world, same run): process {evaluated.seconds:.1f} s "
        f"(peak RSS {evaluated.peak_rss_mb:.0f} MB), of which planned (indexes + decide) "
        f"{planned:.1f} s"
    )
    ratio_cpu = plan.cpu_seconds / max(evaluated.cpu_seconds, 1e-9)
    print(
        f"  ratio: {ratio_process:.2f}x evaluate.py's process time, {ratio_planned:.2f}x its "
        "planned time (custsync also reads the files, writes the plan file and copies it to stdout)"
    )
    print(
        f"  CPU time (user + system): custsync {plan.cpu_seconds:.1f} s, evaluate.py "
        f"{evaluated.cpu_seconds:.1f} s, {ratio_cpu:.2f}x (less sensitive to other work on the "
        "machine than the wall times the target compares)"
    )
    print(
        f"target: plan -o json --out peak RSS {plan.peak_rss_mb:.0f} MB < 1,500 MB "
        f"{_verdict(memory_met, '1,000,000')}; time {ratio_process:.2f}x evaluate.py's "
        f"<= 1.5x {_verdict(time_met, '1,000,000')}"
    )
    return {
        "n": n,
        "plan_seconds": plan.seconds,
        "plan_peak_rss_mb": plan.peak_rss_mb,
        "plan_file_mb": size / 1e6,
        "evaluate_seconds": evaluated.seconds,
        "evaluate_planned_seconds": planned,
        "ratio": ratio_process,
        "ratio_planned": ratio_planned,
        "plan_cpu_seconds": plan.cpu_seconds,
        "evaluate_cpu_seconds": evaluated.cpu_seconds,
        "ratio_cpu": ratio_cpu,
        "memory_met": memory_met,
        "time_met": time_met,
    }


def _erp_world(folder: Path, customers: Sequence[ErpCustomer]) -> tuple[str, Measured]:
    url = f"sqlite:///{folder / 'erp.db'}"
    _check("erp init", measure([CUSTSYNC, "erp", "init", "--erp", url, "--with-defaults"]))
    rows = folder / "customers.csv"
    write_erp_csv(rows, customers)
    loaded = measure([CUSTSYNC, "erp", "load", str(rows), "--erp", url])
    _check("erp load", loaded)
    return url, loaded


def erp_load(n: int, seed: int, folder: Path) -> dict[str, Any]:
    world = evaluate.generate(max(2, n * 10 // 6 + 2), seed)
    customers = world.erp[:n]
    del world
    url, loaded = _erp_world(folder, customers)
    del url
    judged = n >= 1_000_000
    met = loaded.peak_rss_mb < 500 if judged else None
    print(
        f"erp-load: N = {len(customers):,} rows: {loaded.seconds:.1f} s, peak RSS "
        f"{loaded.peak_rss_mb:.0f} MB"
    )
    print(
        f"target: erp load peak RSS {loaded.peak_rss_mb:.0f} MB < 500 MB "
        f"{_verdict(met, '1,000,000')}"
    )
    return {
        "n": len(customers),
        "seconds": loaded.seconds,
        "peak_rss_mb": loaded.peak_rss_mb,
        "met": met,
    }


def _graphql_customer(customer: ShopifyCustomer) -> dict[str, Any]:
    return {
        "firstName": customer.first_name,
        "lastName": customer.last_name,
        "email": customer.email,
        "phone": customer.phone,
        "addresses": [
            {
                "firstName": a.first_name,
                "lastName": a.last_name,
                "address1": a.address1,
                "zip": a.zip,
                "city": a.city,
                "countryCode": a.country_code,
                "provinceCode": a.province_code,
            }
            for a in customer.addresses
        ],
    }


def _plan_sqlite_world(
    n: int, seed: int, folder: Path, cache: Path | None
) -> tuple[str, Path, Measured | None, int, int]:
    """The SQLite ERP of ``n`` customers and the double's seed records (JSON Lines of
    GraphQL customer inputs the double accepted, in seeding order): built in ``folder``, or
    copied from ``cache`` when it holds them for this n and seed (and saved there when not).
    Returns (ERP URL, seed file, erp load figures or None when cached, seeded, rejected)."""
    from custsync.connectors.shopify_double.store import Store, WriteRejected

    kept = cache / f"plan-sqlite-{n}-{seed}" if cache is not None else None
    erp_db, seeds = folder / "erp.db", folder / "shopify.jsonl"
    if kept is not None and (kept / "done").is_file():
        shutil.copy(kept / "erp.db", erp_db)
        shutil.copy(kept / "shopify.jsonl", seeds)
        counts = json.loads((kept / "done").read_text())
        return f"sqlite:///{erp_db}", seeds, None, counts["seeded"], counts["rejected"]
    world = evaluate.generate(max(2, n * 10 // 4 + 4), seed)  # N ERP, N Shopify customers
    url, loaded = _erp_world(folder, world.erp[:n])
    probe = Store()  # the double's own rules: keep only the customers it accepts
    seeded = rejected = 0
    with seeds.open("w", encoding="utf-8") as out:
        for customer in world.shopify[:n]:
            record = _graphql_customer(customer)
            try:
                probe.load([record])
            except WriteRejected:
                rejected += 1
                continue
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            seeded += 1
    del world, probe
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copy(erp_db, kept / "erp.db")
        shutil.copy(seeds, kept / "shopify.jsonl")
        (kept / "done").write_text(json.dumps({"seeded": seeded, "rejected": rejected}))
    return url, seeds, loaded, seeded, rejected


def plan_sqlite(n: int, seed: int, folder: Path, cache: Path | None = None) -> dict[str, Any]:
    from custsync.connectors.shopify_double import ShopifyDouble

    t0 = time.perf_counter()
    url, seeds, loaded, seeded, rejected = _plan_sqlite_world(n, seed, folder, cache)
    double = ShopifyDouble(
        token="shpat_bench",
        bucket_size=1_000_000,
        restore_rate=1_000_000.0,
        max_cost_per_query=1_000_000,
    )
    with seeds.open(encoding="utf-8") as lines:
        double.store.load(json.loads(line) for line in lines)
    double.start()
    try:
        config = folder / "custsync.yaml"
        config.write_text(
            f'erp: {{url: "{url}"}}\n'
            f'state: {{url: "sqlite:///{folder / "state.db"}"}}\n'
            + _settings_yaml(double.url, f", access_token_env: {TOKEN_ENV}")
        )
        setup = time.perf_counter() - t0
        plan = measure(
            [CUSTSYNC, "plan", "-c", str(config)], cwd=folder, env={TOKEN_ENV: double.token}
        )
        _check("custsync plan", plan)
    finally:
        double.stop()
    judged = n >= 200_000
    met = plan.peak_rss_mb < 1000 if judged else None
    built = (
        f"erp load {loaded.seconds:.1f} s, {loaded.peak_rss_mb:.0f} MB"
        if loaded is not None
        else f"from the cache {cache}"
    )
    print(
        f"plan-sqlite: N = {n:,} ERP customers (SQLite), {seeded:,} Shopify customers in the "
        f"double ({rejected:,} the double refused as duplicates); setup {setup:.1f} s ({built})"
    )
    print(f"  custsync plan (text): {plan.seconds:.1f} s, peak RSS {plan.peak_rss_mb:.0f} MB")
    print(f"target: plan peak RSS {plan.peak_rss_mb:.0f} MB < 1,000 MB {_verdict(met, '200,000')}")
    return {
        "n": n,
        "shopify": seeded,
        "seconds": plan.seconds,
        "peak_rss_mb": plan.peak_rss_mb,
        "met": met,
    }


def _saved_plan_sync(n: int, folder: Path) -> dict[str, Any]:
    """Plan the export of ``n`` new ERP customers to ``--out``, then apply it with
    ``sync --plan``; the figures of both commands."""
    folder.mkdir()
    _make_erp(folder / "erp.db", n)
    double = _DoubleProcess(1.0)
    try:
        config = _write_config(folder, double.url, "")
        env = {TOKEN_ENV: TOKEN}
        plan_file = folder / "plan.json"
        plan = measure(
            [CUSTSYNC, "plan", "-c", str(config), "--direction", "export", "--out",
             str(plan_file)],
            cwd=folder, env=env,
        )
        _check("custsync plan", plan, ok=(0, 2))
        synced = measure(
            [CUSTSYNC, "sync", "-c", str(config), "--plan", str(plan_file), "--no-progress"],
            cwd=folder, env=env,
        )
        _check("custsync sync --plan", synced)
    finally:
        server = double.finish()
    return {
        "n": n,
        "plan_file_mb": plan_file.stat().st_size / 1e6,
        "plan_seconds": plan.seconds,
        "seconds": synced.seconds,
        "peak_rss_mb": synced.peak_rss_mb,
        "customers": server["customers"],
    }


def sync_plan(n: int, seed: int, folder: Path) -> dict[str, Any]:
    """``sync --plan`` of a saved plan of N export creates, and of one a fifth of its size:
    the saved plan is read streaming, so the peak RSS must not grow with the plan."""
    del seed  # the customers are generated, not drawn
    small_n = max(1, n // 5)
    small = _saved_plan_sync(small_n, folder / "small")
    large = _saved_plan_sync(n, folder / "large")
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    judged = n >= 50_000
    # a plan held in memory grows by kilobytes a decision: the 4/5 of N more here would be
    # hundreds of MB at 50,000; read streaming, the batches are the same size
    allowed = 0.15 * small["peak_rss_mb"] + 20
    met = (growth <= allowed and large["customers"] == n) if judged else None
    for run in (small, large):
        print(
            f"sync-plan: N = {run['n']:,} export creates: plan file {run['plan_file_mb']:.1f} MB "
            f"(planned in {run['plan_seconds']:.1f} s); custsync sync --plan: "
            f"{run['seconds']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB, "
            f"{run['customers']:,} customers in the store"
        )
    print(
        f"target: sync --plan peak RSS bounded by the batch, not the plan: "
        f"{large['peak_rss_mb']:.0f} MB at {n:,} vs {small['peak_rss_mb']:.0f} MB at "
        f"{small_n:,} (+{growth:.0f} MB <= {allowed:.0f} MB allowed) {_verdict(met, '50,000')}"
    )
    return {"small": small, "large": large, "growth_mb": growth, "met": met}


def _judged(
    scenario: Callable[..., dict[str, Any]], *, cached: bool = False
) -> Callable[[argparse.Namespace], bool]:
    """A scenario(n, seed, folder) -> figures, as a SCENARIOS entry: True unless a judged
    target is not met; figures added to ``--json FILE`` when given. A ``cached`` scenario
    also takes ``cache`` (``--cache DIR`` or None)."""

    def run(args: argparse.Namespace) -> bool:
        print(f"machine: {machine()}")
        extra = {"cache": Path(args.cache) if args.cache else None} if cached else {}
        with tempfile.TemporaryDirectory(prefix="custsync-bench-cli-") as tmp:
            figures = scenario(args.n, args.seed, Path(tmp), **extra)
        if args.json:
            path = Path(args.json)
            known = json.loads(path.read_text()) if path.is_file() else {}
            known[scenario.__name__.replace("_", "-")] = figures
            path.write_text(json.dumps(known, indent=2) + "\n")
        return all(value is not False for key, value in figures.items() if key.endswith("met"))

    return run


SCENARIOS: dict[str, Callable[[argparse.Namespace], bool]] = {
    "sync": scenario_sync,
    "sync-updates": scenario_sync_updates,
    "sync-few-updates": scenario_sync_few_updates,
    "plan-files": _judged(plan_files),
    "plan-sqlite": _judged(plan_sqlite, cached=True),
    "erp-load": _judged(erp_load),
    "sync-plan": _judged(sync_plan),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", choices=[*sorted(SCENARIOS), "all"], default="sync", help="(sync)"
    )
    parser.add_argument("--n", type=int, default=10_000, help="customers (10,000)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="the double's bucket refills this many times faster than the Standard plan (1)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.15,
        metavar="SECONDS",
        help="sync-few-updates: the double answers each request after this long (0.15)",
    )
    parser.add_argument("--seed", type=int, default=7, help="world generator seed (7)")
    parser.add_argument("--json", metavar="FILE", help="also write the plan scenarios' figures")
    parser.add_argument(
        "--cache",
        metavar="DIR",
        help="plan-sqlite: keep the built world (ERP database, the double's seed records) in "
        "DIR per N and seed, and reuse it when there (none: built every run)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.time_scale <= 0:
        parser.error("--n must be >= 1 and --time-scale > 0")
    names = sorted(SCENARIOS) if args.scenario == "all" else [args.scenario]
    met = [SCENARIOS[name](args) for name in names]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
