"""A side that goes down mid-run stops the run (issue 10, item 8), and a state database that
fills up reports the error that ended the run (issue 10, item 9)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from custsync.connectors.erp_sql import open_writer
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer
from custsync.engine.run import sync as sync_module
from custsync.engine.run.state import SqlStateStore, open_store

from sync_world import EXPORT_SETTINGS, make_erp, write_config

CUSTOMERS = [
    ErpCustomer(no=f"C{i:05d}", name=f"Person {i}", email=f"p{i}@example.com",
                address=f"{i} Canal Street", city="Amsterdam", post_code="1011AB",
                country_code="NL")
    for i in range(1, 11)
]


def _config(tmp_path: Path, double: ShopifyDouble) -> tuple[Path, str]:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url, CUSTOMERS)
    config = write_config(
        tmp_path, shop_url=double.url, erp_url=erp_url, state_url=state_url,
        settings=EXPORT_SETTINGS, token=double.token,
    )
    return config, state_url


def _sync(config: Path) -> int:
    return main(["sync", "-c", str(config), "--no-progress", "--direction", "export"])


def _exported_then_changed(config: Path, erp_url: str) -> None:
    """Every customer exported once, then changed in the ERP: the next export updates them
    one by one (creates are sent as one batch)."""
    assert _sync(config) == exitcodes.OK
    writer = open_writer(erp_url)
    try:
        for customer in CUSTOMERS:
            current = writer.get_customer(customer.no)
            assert current is not None
            assert writer.update_customer(customer.no, {"city": "Utrecht"}, current.etag).ok
    finally:
        writer.close()


def test_a_shopify_outage_mid_run_stops_the_run(
    tmp_path: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, state_url = _config(tmp_path, shopify_double)
    _exported_then_changed(config, f"sqlite:///{tmp_path / 'erp.db'}")
    real = sync_module.plan_incremental

    def plan_then_go_down(*args: Any, **kwargs: Any) -> Any:
        planned = real(*args, **kwargs)
        # Shopify goes away after the run has read and planned: every request fails
        shopify_double.inject(Fault(kind="status", status=503, times=1_000_000))
        return planned

    monkeypatch.setattr(sync_module, "plan_incremental", plan_then_go_down)
    store = open_store(state_url)
    try:
        cursor_before = store.cursor("main", "export")
    finally:
        store.close()
    capsys.readouterr()
    began = time.monotonic()
    code = _sync(config)
    elapsed = time.monotonic() - began

    assert code == exitcodes.ERROR
    out = capsys.readouterr().out
    assert "stopped: Shopify unreachable" in out
    store = open_store(state_url)
    try:
        run = store.runs(shop="main")[0]
        assert run.status == "failed" and run.error.startswith("stopped: Shopify unreachable")
        failed = store.failures(run.id)
        # three records in a row, not all ten
        assert len(failed) == sync_module.UNREACHABLE_AFTER < len(CUSTOMERS)
        assert store.cursor("main", "export") == cursor_before  # the cursor stays
        assert store.lease_holder("shop:main") is None  # the lease is released
    finally:
        store.close()
    assert elapsed < 60

    # Shopify is back: the next run updates every customer, those whose answers the stopped
    # run did not record (in flight when it stopped) included, and leaves nothing pending
    monkeypatch.setattr(sync_module, "plan_incremental", real)
    shopify_double.clear_faults()
    assert _sync(config) == exitcodes.OK
    cities = {
        c["email"]: c["addresses"][0]["city"] for c in shopify_double.store.customers()
    }
    assert cities == {c.email: "Utrecht" for c in CUSTOMERS}
    store = open_store(state_url)
    try:
        assert not store.pending_intents(shop="main")
    finally:
        store.close()


def test_the_stop_is_retriable_for_the_scheduler(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    from custsync.engine.config import require_config
    from custsync.engine.run.sync import run_sync

    config_path, state_url = _config(tmp_path, shopify_double)
    _exported_then_changed(config_path, f"sqlite:///{tmp_path / 'erp.db'}")
    config = require_config(config_path)
    store = open_store(state_url)
    try:
        result = run_sync(config, "main", "export", state=store,
                          on_planned=lambda plan: shopify_double.inject(
                              Fault(kind="drop", times=1_000_000)))
    finally:
        store.close()
    assert result.status == "failed" and result.retriable
    assert result.error.startswith("stopped: Shopify unreachable")
    assert len(result.failures) == 3


def _full_disk(what: str) -> Any:
    """A method that fails as SQLite does when its file cannot grow."""

    def write(self: SqlStateStore, *args: Any, **kwargs: Any) -> None:
        with self._write(what):
            raise sa.exc.OperationalError(
                "INSERT", {}, sqlite3.OperationalError("database or disk is full")
            )

    return write


def test_a_full_disk_reports_the_error_that_ended_the_run(
    tmp_path: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, state_url = _config(tmp_path, shopify_double)
    # the disk fills up during the run: new rows cannot be written, rows updated in place can
    monkeypatch.setattr(SqlStateStore, "record_outcomes", _full_disk("recording outcomes"))
    monkeypatch.setattr(SqlStateStore, "release_lease", _full_disk("releasing a lease"))

    assert _sync(config) == exitcodes.ERROR

    captured = capsys.readouterr()
    assert "recording outcomes" in captured.out and "database or disk is full" in captured.out
    assert "releasing a lease" in captured.err  # said, but not instead of the real error
    monkeypatch.undo()
    store = open_store(state_url)
    try:
        [run] = store.runs(shop="main")
        assert run.status == "failed"  # ended, not left "running"
        assert "recording outcomes" in run.error and "disk is full" in run.error
        assert store.cursor("main", "export") is None
    finally:
        store.close()


def test_a_run_log_that_cannot_be_finished_keeps_the_first_error(
    tmp_path: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, state_url = _config(tmp_path, shopify_double)
    monkeypatch.setattr(SqlStateStore, "record_outcomes", _full_disk("recording outcomes"))
    monkeypatch.setattr(SqlStateStore, "finish_run", _full_disk("finishing a run"))
    monkeypatch.setattr(SqlStateStore, "release_lease", _full_disk("releasing a lease"))

    assert _sync(config) == exitcodes.ERROR

    out = capsys.readouterr().out
    assert "recording outcomes" in out and "the run log could not be updated" in out
    monkeypatch.undo()
    # space again: the next run takes the (expired or local dead) lease, ends the old run
    store = open_store(state_url)
    try:
        store.release_lease("shop:main", store.lease("shop:main").holder)  # type: ignore[union-attr]
    finally:
        store.close()
    assert _sync(config) == exitcodes.OK
    store = open_store(state_url)
    try:
        statuses = [run.status for run in store.runs(shop="main")]
        assert statuses == ["succeeded", "abandoned"]
    finally:
        store.close()
