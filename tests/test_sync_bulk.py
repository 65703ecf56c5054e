"""`sync` sends its Shopify creates as a bulk mutation above ``bulk_write_threshold`` and one
by one (a few in flight) below it; a run killed while the bulk job runs, or after it finished,
is resumed by reading the job's result back: nobody is created twice, nobody is lost.

Real SQLite files, the Shopify double over loopback, the CLI as a subprocess for the kills.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.engine.cli import main
from custsync.engine.config import require_config
from custsync.engine.model import ErpCustomer, Link
from custsync.engine.run.state import bulk_table, intent_table, make_engine, open_store
from custsync.engine.run.sync import run_sync

from fixtures_shopify import LARGE_BUCKET
from sync_world import EXPORT_SETTINGS, TOKEN_ENV, make_erp, write_config


def _customers(n: int) -> list[ErpCustomer]:
    return [
        ErpCustomer(
            no=f"C{i:05d}",
            name=f"Erp Person {i}",
            email=f"erp{i}@example.com",
            phone=f"+3161234{i:04d}",
            address=f"{i} Damrak",
            post_code="1012 AB",
            city="Amsterdam",
            country_code="NL",
        )
        for i in range(1, n + 1)
    ]


def _world(
    folder: Path, double: ShopifyDouble, n: int, **shopify_options: Any
) -> tuple[Path, str, str]:
    erp_url = f"sqlite:///{folder / 'erp.db'}"
    state_url = f"sqlite:///{folder / 'state.db'}"
    make_erp(erp_url, _customers(n))
    config = write_config(
        folder,
        shop_url=double.url,
        erp_url=erp_url,
        state_url=state_url,
        settings=EXPORT_SETTINGS,
        token=double.token,
        shopify_options=shopify_options,
    )
    return config, erp_url, state_url


def _roots(double: ShopifyDouble, field: str) -> int:
    return sum(1 for r in double.requests if field in r.root_fields)


def _assert_each_once(double: ShopifyDouble, state_url: str, n: int) -> None:
    emails = Counter(c["email"] for c in double.store.customers())
    assert all(count == 1 for count in emails.values()), emails.most_common(3)
    assert len(emails) == n
    store = open_store(state_url)
    try:
        links = list(store.links("main"))
        assert not store.pending_intents(shop="main")
    finally:
        store.close()
    assert len(links) == n
    by_id = {c["id"]: c["email"] for c in double.store.customers()}
    for link in links:  # each link joins the ERP customer to the customer made from it
        assert by_id[link.shopify_id] == f"erp{int(link.erp_no[1:])}@example.com"


def test_creates_above_the_threshold_go_as_one_bulk_mutation(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, state_url = _world(tmp_path, shopify_double, 30, bulk_write_threshold=20)
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "export"]) == 0
    assert "30 created" in capsys.readouterr().out
    assert _roots(shopify_double, "bulkOperationRunMutation") == 1
    assert _roots(shopify_double, "customerCreate") == 0
    _assert_each_once(shopify_double, state_url, 30)
    store = open_store(state_url)
    try:
        (run,) = store.runs(shop="main")
        assert run.status == "succeeded" and run.counts == {"created": 30}
        assert len(store.outcomes(run.id)) == 30
    finally:
        store.close()
    # the links carry Shopify's updatedAt of our write: the next run sees nothing to do
    shopify_double.reset_log()
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "export"]) == 0
    assert not any(r.is_mutation for r in shopify_double.requests)


def test_creates_below_the_threshold_or_with_bulk_writes_never_go_one_by_one(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    config, _, state_url = _world(
        tmp_path, shopify_double, 40, bulk_writes="never", concurrency=4
    )
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "export"]) == 0
    assert _roots(shopify_double, "bulkOperationRunMutation") == 0
    assert _roots(shopify_double, "customerCreate") == 40
    _assert_each_once(shopify_double, state_url, 40)


def test_a_taken_email_in_a_bulk_job_adopts_the_customer_a_refused_line_fails_alone(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    config_path, _, state_url = _world(tmp_path, shopify_double, 12, bulk_write_threshold=5)
    config = require_config(config_path)

    def meanwhile(_: Any) -> None:
        # after the read, before the job: erp3's e-mail appears in Shopify (linked to
        # nobody), and erp7's e-mail is taken by a customer already linked elsewhere
        made = shopify_double.store.load(
            [
                {"email": "erp3@example.com", "lastName": "Three"},
                {"email": "erp7@example.com", "lastName": "Seven"},
            ]
        )
        store.save_link(Link(shop="main", shopify_id=made[1]["id"], erp_no="OTHER"))

    store = open_store(state_url)
    try:
        result = run_sync(config, "main", "export", state=store, on_planned=meanwhile)
        assert result.status == "partial"
        assert result.counts == {"created": 11, "failed": 1}
        (failure,) = result.failures
        assert failure.decision.record == "C00007"
        assert "has already been taken" in failure.message
        links = {link.erp_no: link.shopify_id for link in store.links("main")}
        assert not store.pending_intents(shop="main")
    finally:
        store.close()
    assert _roots(shopify_double, "bulkOperationRunMutation") == 1
    adopted = shopify_double.store.by_email("erp3@example.com")
    assert adopted is not None and links["C00003"] == adopted["id"]
    assert "C00007" not in links
    emails = Counter(c["email"] for c in shopify_double.store.customers())
    assert len(emails) == 12 and max(emails.values()) == 1


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from custsync.engine.cli import run; run()", *args]


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(600):
        if condition():
            return
        assert process.poll() is None, f"the sync ended before {what}"
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _journaled_operation(state_url: str) -> str:
    if not Path(state_url.removeprefix("sqlite:///")).exists():
        return ""
    engine = make_engine(state_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("state_bulk"):
                return ""
            return str(conn.execute(sa.select(sa.func.max(bulk_table.c.operation))).scalar() or "")
    finally:
        engine.dispose()


def _pending(state_url: str) -> int:
    if not Path(state_url.removeprefix("sqlite:///")).exists():
        return 0
    engine = make_engine(state_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("state_intent"):
                return 0
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(intent_table.c.status == "pending")
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("when", ["during the job", "after the job"])
def test_a_sync_killed_during_or_after_its_bulk_job_resumes_without_duplicates(
    tmp_path: Path, shopify_double_factory: Callable[..., ShopifyDouble], when: str
) -> None:
    n = 60
    # the job needs 2 s at the double: a kill "during" lands while it runs
    double = shopify_double_factory(bulk_seconds=2.0, **LARGE_BUCKET)
    config, _, state_url = _world(
        tmp_path, double, n, bulk_write_threshold=10, poll_interval_seconds=0.1,
        max_poll_interval_seconds=0.2,
    )
    if when == "after the job":
        # the job completes; the result file is slow to come: the kill lands before any
        # customer of it is settled
        double.inject(Fault(kind="delay", seconds=8, target="download", after_effect=True))
    env = {**os.environ, TOKEN_ENV: double.token}
    command = _cli("sync", "--config", str(config), "--no-progress", "--direction", "export")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: bool(_journaled_operation(state_url)), process, "the job ran")
        operation = _journaled_operation(state_url)
        if when == "after the job":
            _wait_for(
                lambda: any(r.path.startswith("/bulk/") for r in double.requests),
                process,
                "the result download",
            )
        status = double.bulk.get(operation)
        assert status is not None
        assert (status["status"] == "COMPLETED") is (when == "after the job"), status
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()
    assert _pending(state_url) == n  # journaled before the job, none settled
    double.clear_faults()
    double.reset_log()

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    # the resumed run read the job back (its status, its result file) and sent no create
    assert _roots(double, "bulkOperation") >= 1
    assert any(r.path.startswith("/bulk/") for r in double.requests)
    assert _roots(double, "bulkOperationRunMutation") == 0
    assert _roots(double, "customerCreate") == 0
    _assert_each_once(double, state_url, n)


def test_a_bulk_job_that_never_ran_is_settled_by_looking_its_customers_up(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    """Killed after journaling, before the job ran (the staged upload hangs): the intents
    have no job to read back, so each customer is looked up; none exists, all are created
    by the resumed run."""
    n = 15
    config, _, state_url = _world(tmp_path, shopify_double, n, bulk_write_threshold=10)
    shopify_double.inject(Fault(kind="delay", seconds=8, target="upload"))
    env = {**os.environ, TOKEN_ENV: shopify_double.token}
    command = _cli("sync", "--config", str(config), "--no-progress", "--direction", "export")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _pending(state_url) == n, process, "the intents")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()
    assert not _journaled_operation(state_url)
    shopify_double.clear_faults()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    _assert_each_once(shopify_double, state_url, n)


def test_settling_a_batch_inserts_new_links_and_refuses_a_conflicting_one(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.save_link(Link(shop="main", shopify_id="gid://shopify/Customer/9", erp_no="C3"))
        run = store.start_run("main", "export", datetime.now(UTC))
        bulk_id, ids = store.begin_intents(
            run, [(f"C{i}", "shopify.create", f"main:C{i}") for i in (1, 2, 3)], bulk=True
        )
        assert bulk_id is not None and len(ids) == 3
        store.bulk_started(bulk_id, "gid://shopify/BulkOperation/1")
        (pending,) = store.pending_bulks("main")
        assert pending.operation == "gid://shopify/BulkOperation/1"
        assert [i.record for i in pending.intents] == ["C1", "C2", "C3"]
        refused = store.settle_intents(
            done=[
                (ids[i], f"gid://shopify/Customer/{i + 1}", Link(
                    shop="main", shopify_id=f"gid://shopify/Customer/{i + 1}", erp_no=f"C{i + 1}"
                ))
                for i in range(3)
            ]
        )
        # C3 is linked to Customer/9 already: its intent fails, the link stays
        assert list(refused) == [ids[2]] and "already linked" in refused[ids[2]]
        links = {link.erp_no: link.shopify_id for link in store.links("main")}
        assert links == {
            "C1": "gid://shopify/Customer/1",
            "C2": "gid://shopify/Customer/2",
            "C3": "gid://shopify/Customer/9",
        }
        assert not store.pending_intents(shop="main") and not store.pending_bulks("main")
        assert store.intent_for_key("main:C1").status == "done"
        assert store.intent_for_key("main:C3").status == "failed"
    finally:
        store.close()
