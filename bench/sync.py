"""Benchmark: an incremental sync costs time and API calls proportional to the changes.

    python bench/sync.py --n 100000 --changed 0.01

Builds an ERP (SQLite) and a Shopify store (the local double over loopback) with N customers
that are already in sync and linked, as after a first run; then changes a share of them on
both sides (half in the ERP, half in Shopify) and runs one incremental ``sync`` of both
directions. It does this for two change rates (``--changed`` and a tenth of it) so the figures
show proportionality: time and API requests should scale with the changes, not with N.

Printed: setup time; per run the changed records, decisions, API requests (reads, writes),
wall time split into reading, planning and applying; and the ratio between the two runs.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from custsync.connectors.erp_sql import LoadRow, open_writer
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.engine.config import load_config_text
from custsync.engine.rules.validate import require_rule_set
from custsync.engine.run.state import link_table, open_store
from custsync.engine.run.sync import run_sync

TOKEN_ENV = "CUSTSYNC_BENCH_TOKEN"


def _erp_record(i: int) -> dict[str, str]:
    return {
        "no": f"C{i:07d}",
        "name": f"Person {i}",
        "address": f"{i % 300 + 1} Damrak",
        "city": "Amsterdam",
        "post_code": "1012 AB",
        "country_code": "NL",
        "phone": f"+316{i:08d}",
        "email": f"person{i}@example.com",
    }


def _shopify_record(i: int, updated_at: str) -> dict[str, Any]:
    return {
        "firstName": "Person",
        "lastName": str(i),
        "email": f"person{i}@example.com",
        "phone": f"+316{i:08d}",
        "updatedAt": updated_at,
        "addresses": [
            {
                "firstName": "Person",
                "lastName": str(i),
                "address1": f"{i % 300 + 1} Damrak",
                "zip": "1012 AB",
                "city": "Amsterdam",
                "countryCode": "NL",
            }
        ],
    }


def _config(folder: Path, shop_url: str) -> Any:
    text = f"""
erp: {{url: "sqlite:///{folder / "erp.db"}"}}
state: {{url: "sqlite:///{folder / "state.db"}"}}
shops:
  - name: bench
    shopify: {{url: "{shop_url}", access_token_env: {TOKEN_ENV}}}
    settings:
      customer_import: all_customers
      shopify_can_update_customers: true
      auto_create_unknown_customers: true
      customer_template_code: RETAIL
      export_customers: true
"""
    config, diagnostics = load_config_text(text, "<bench>", folder)
    assert config is not None, [d.render() for d in diagnostics]
    return config


def setup(folder: Path, n: int, double: ShopifyDouble) -> tuple[Any, datetime]:
    """ERP, store and links in agreement, cursors at ``synced_at`` (one hour ago)."""
    synced_at = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    stamp = (synced_at - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    erp = open_writer(
        f"sqlite:///{folder / 'erp.db'}",
        create=True,
        clock=lambda: synced_at - timedelta(minutes=5),
    )
    try:
        erp.initialize(company_name="Bench", company_country="NL", with_defaults=True)
        rows = [LoadRow(i + 1, _erp_record(i)) for i in range(1, n + 1)]
        report = erp.load("customers", rows)
        assert not report.problems, report.problems[:3]
    finally:
        erp.close()
    created = double.store.load([_shopify_record(i, stamp) for i in range(1, n + 1)])
    config = _config(folder, double.url)
    store = open_store(config.state_url)
    try:
        rows_ = [
            {
                "shop": "bench",
                "shopify_id": customer["id"],
                "erp_no": f"C{i:07d}",
                "last_import_at": synced_at - timedelta(minutes=5),
                "last_export_at": synced_at - timedelta(minutes=5),
                "own_write_shopify_updated_at": None,
                "created_at": synced_at,
                "updated_at": synced_at,
            }
            for i, customer in enumerate(created, start=1)
        ]
        with store._engine.begin() as conn:  # bench-only bulk insert of the links
            conn.execute(sa.insert(link_table), rows_)
        for direction in ("import", "export"):
            store.advance_cursor("bench", direction, synced_at)
    finally:
        store.close()
    return config, synced_at


def change(folder: Path, double: ShopifyDouble, n: int, count: int, rng: random.Random) -> None:
    """Change ``count`` customers: half in the ERP (city), half in Shopify (last name)."""
    from custsync.connectors.erp_sql import open_writer as writer

    picks = rng.sample(range(1, n + 1), count)
    erp = writer(f"sqlite:///{folder / 'erp.db'}")
    try:
        for i in picks[: count // 2]:
            result = erp.update_customer(f"C{i:07d}", {"city": f"Utrecht {rng.randint(1, 99)}"})
            assert result.ok, result.message
    finally:
        erp.close()
    for i in picks[count // 2 :]:
        found = double.store.by_email(f"person{i}@example.com")
        assert found is not None
        double.store.update_customer(found["id"], {"lastName": f"{i}-{rng.randint(1, 99)}"})


def one_run(config: Any, rules: Any, double: ShopifyDouble) -> dict[str, Any]:
    store = open_store(config.state_url)
    double.reset_log()
    started = time.perf_counter()
    try:
        result = run_sync(config, "bench", "both", state=store, rules=rules)
    finally:
        store.close()
    seconds = time.perf_counter() - started
    requests = double.requests
    return {
        "status": result.status,
        "decided": sum(result.counts.values()),
        "counts": dict(result.counts),
        "requests": len(requests),
        "writes": sum(1 for r in requests if r.is_mutation),
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share changed (0.01 = 1%%)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    double = ShopifyDouble(
        token="shpat_bench",
        bucket_size=1_000_000,
        restore_rate=1_000_000.0,
        max_cost_per_query=1_000_000,
    )
    os.environ[TOKEN_ENV] = double.token
    with tempfile.TemporaryDirectory(prefix="custsync-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        double.start()
        try:
            config, _ = setup(folder, args.n, double)
            rules = require_rule_set([])
            print(
                f"setup: {args.n:,} customers in sync on both sides, linked "
                f"({time.perf_counter() - t0:.1f}s)"
            )
            results = []
            for share in (args.changed / 10, args.changed):
                count = max(2, int(args.n * share))
                change(folder, double, args.n, count, rng)
                figures = one_run(config, rules, double)
                results.append((count, figures))
                print(
                    f"changed {count:>6,} ({share:.2%}): {figures['status']}, decided "
                    f"{figures['decided']:,}, API requests {figures['requests']:,} "
                    f"({figures['writes']:,} writes), {figures['seconds']:.1f}s  "
                    f"counts {figures['counts']}"
                )
        finally:
            double.stop()
    (_, a), (large, b) = results
    print(
        f"10x the changes -> {b['requests'] / max(1, a['requests']):.1f}x the API requests, "
        f"{b['seconds'] / max(1e-9, a['seconds']):.1f}x the time"
    )
    print(f"API requests per changed record: {b['requests'] / large:.2f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS {rss:.0f} MB (includes the in-process Shopify double and its {args.n:,} "
        "customers); machine: " + f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
