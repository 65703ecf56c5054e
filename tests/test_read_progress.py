"""Progress of long reads (issue 11 item 4): the connectors tell how a read comes along
(Shopify pages and customers, a bulk job's objects and the lines of its result, ERP rows of
how many), the run shows it on stderr, never on stdout; and a first run reads the store once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from custsync.connectors.erp_sql import open_reader as open_erp
from custsync.connectors.shopify import open_reader as open_shop
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine.model import (
    Direction,
    ErpCustomer,
    ShopContext,
    ShopifyAddress,
    ShopifyCustomer,
    ShopSettings,
)
from custsync.engine.ports import ReadProgress, ReportsReadProgress
from custsync.engine.run import planner

from sync_world import IMPORT_SETTINGS, TOKEN_ENV, make_erp, write_config

_ADDRESS = ShopifyAddress(
    first_name="Max", address1="1 Main St", city="Austin", zip="73301", country_code="US"
)


def _seed(double: ShopifyDouble, count: int) -> list[str]:
    return seed_from_models(
        double,
        [
            ShopifyCustomer(id="", first_name=f"N{i}", email=f"c{i}@example.com", addresses=(_ADDRESS,))
            for i in range(count)
        ],
    )


def _last(reports: list[ReadProgress], step: str) -> ReadProgress:
    return [report for report in reports if report.step == step][-1]


def test_a_paged_read_tells_pages_and_customers_so_far(shopify_double: ShopifyDouble) -> None:
    _seed(shopify_double, 5)
    reader = open_shop(
        shopify_double.url, token=shopify_double.token, page_size=2, bulk_threshold=100
    )
    assert isinstance(reader, ReportsReadProgress)
    reports: list[ReadProgress] = []
    reader.watch_reads(reports.append)
    try:
        assert len(list(reader.iter_customers())) == 5
    finally:
        reader.close()
    pages = [r for r in reports if r.step == "customers (pages)"]
    assert [(r.done, r.total, r.note) for r in pages] == [
        (0, 5, ""),  # the count asked before (below the bulk threshold: read in pages)
        (2, 5, "1 page"),
        (4, 5, "2 pages"),
        (5, 5, "3 pages"),
    ]


def test_a_bulk_read_tells_the_jobs_objects_the_lines_downloaded_and_customers(
    shopify_double: ShopifyDouble,
) -> None:
    _seed(shopify_double, 4)  # 4 customers with an address each: 8 objects
    reader = open_shop(
        shopify_double.url, token=shopify_double.token, bulk_reads="always", poll_interval=0.02
    )
    reports: list[ReadProgress] = []
    reader.watch_reads(reports.append)
    try:
        assert len(list(reader.iter_customers())) == 4
        reader.watch_reads(None)
        assert len(list(reader.iter_customers())) == 4  # no longer watched: told nothing
    finally:
        reader.close()
    job = [r for r in reports if r.step == "bulk export"]
    assert job[0].note in ("CREATED", "RUNNING") and job[-1].note == "COMPLETED"
    assert (job[-1].done, job[-1].unit) == (8, "objects")
    download = _last(reports, "bulk result download")
    assert (download.done, download.total, download.unit) == (8, 8, "lines")
    assert _last(reports, "customers (bulk result)").done == 4
    steps = list(dict.fromkeys(r.step for r in reports))
    assert steps == ["bulk export", "bulk result download", "customers (bulk result)"]


def test_an_erp_read_tells_rows_read_of_how_many(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(url, [ErpCustomer(no=f"C{i:05d}", name=f"N{i}") for i in range(2500)])
    reader = open_erp(url)
    reports: list[ReadProgress] = []
    reader.watch_reads(reports.append)
    try:
        assert len(list(reader.iter_customers())) == 2500
    finally:
        reader.close()
    assert [(r.step, r.done, r.total, r.unit) for r in reports] == [
        ("customers", done, 2500, "rows") for done in (0, 1000, 2000, 2500)
    ]


def _world(tmp_path: Path, double: ShopifyDouble, **shopify: object) -> Path:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(
        erp_url,
        [ErpCustomer(no="C00001", name="Jane Doe", email="jane@example.com", country_code="NL")]
        + [ErpCustomer(no=f"C1{i:04d}", name=f"N{i}", country_code="NL") for i in range(3)],
    )
    seed_from_models(
        double,
        [
            ShopifyCustomer(id="", first_name="Jane", email="JANE@example.com", addresses=(_ADDRESS,)),
            ShopifyCustomer(id="", first_name="Max", email="max@example.com", addresses=(_ADDRESS,)),
        ],
    )
    return write_config(
        tmp_path,
        shop_url=double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings={**IMPORT_SETTINGS, "export_customers": True},
        token=double.token,
        shopify_options=shopify,
    )


def _custsync(*args: str, log_every: float) -> subprocess.CompletedProcess[str]:
    """``custsync ARGS`` as its own process (stdout and stderr apart, neither a terminal),
    its progress logged every ``log_every`` seconds."""
    code = (
        "import sys; from custsync.engine import progress; "
        f"progress.LOG_EVERY_SECONDS = {log_every}; "
        "from custsync.engine.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, TOKEN_ENV: os.environ[TOKEN_ENV]},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("bulk_reads", ["never", "always"])
def test_plan_off_a_terminal_logs_the_reads_on_stderr_and_leaves_stdout_the_plan(
    tmp_path: Path, shopify_double: ShopifyDouble, bulk_reads: str
) -> None:
    config = _world(tmp_path, shopify_double, bulk_reads=bulk_reads, poll_interval_seconds=0.02)
    quiet = _custsync("plan", "--config", str(config), log_every=3600)
    told = _custsync("plan", "--config", str(config), log_every=0)
    assert quiet.returncode == told.returncode == 0, told.stderr
    assert told.stdout == quiet.stdout  # the plan, and nothing else
    assert "custsync.progress" not in quiet.stderr  # a short read is not logged
    lines = [line for line in told.stderr.splitlines() if "custsync.progress" in line]
    if bulk_reads == "never":
        assert "custsync.progress: INFO: read shop main: customers (pages): 2 customers, 1 page" in lines
    else:
        assert any(
            "read shop main: bulk export: 4 objects, COMPLETED" in line for line in lines
        ), lines
        assert any("read shop main: bulk result download: 4/4 lines" in line for line in lines)
        assert any("read shop main: customers (bulk result): 2 customers" in line for line in lines)
    assert any("read ERP: customers: 4/4 rows" in line for line in lines), lines
    assert any("plan main: 6/6 customers" in line for line in lines), lines
    # the export of C00001 sees its Shopify counterpart (JANE@example.com): it is not created
    assert "+ shopify customer (new) <- erp C00001" not in told.stdout
    assert "<- erp C00001" in told.stdout


def test_a_first_run_reads_the_store_once_and_keeps_parked_customers_as_counterparts(
    tmp_path: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing every customer and exporting many (a first run): the store is read once
    (it was read twice, every customer held twice); a parked customer is not decided but
    is still in the World the exports are decided against."""
    monkeypatch.setattr(planner, "FULL_READ_THRESHOLD", 1)
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, [ErpCustomer(no=f"C{i:05d}", name=f"N{i}") for i in range(3)])
    parked_id, *others = _seed(shopify_double, 3)
    erp = open_erp(erp_url)
    shop = open_shop(shopify_double.url, token=shopify_double.token, bulk_reads="never")
    shopify_double.reset_log()
    try:
        inputs = planner.read_inputs(
            ShopContext("main", ShopSettings(export_customers=True), {}),
            erp=erp,
            shopify=shop,
            cursors={},
            directions=(Direction.IMPORT, Direction.EXPORT),
            parked={"import": {parked_id: planner._now()}},
        )
    finally:
        erp.close()
        shop.close()
    assert [c.id for c in inputs.imports] == others
    assert set(inputs.world.shopify) == {parked_id, *others}
    assert len(inputs.exports) == 3
    reads = [r for r in shopify_double.requests if "customers" in r.root_fields]
    assert len(reads) == 1  # one page: the store read once
