"""`sync` sends its Shopify *updates* as a bulk ``customerUpdate`` mutation above
``bulk_write_threshold`` and one by one (a few in flight) below it; address changes go one by
one (Shopify's address mutations). The links keep our own write's ``updatedAt``; a refused line
fails alone; a run killed while the bulk job runs, or after it finished, is resumed by reading
the job's result back: no update is sent twice, the links and the run log stay right.

Real SQLite files, the Shopify double over loopback, the CLI as a subprocess for the kills.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from custsync.connectors.erp_sql import open_writer
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.engine.cli import main
from custsync.engine.config import require_config
from custsync.engine.run.state import bulk_table, intent_table, make_engine, open_store
from custsync.engine.run.sync import run_sync

from fixtures_shopify import LARGE_BUCKET
from sync_world import EXPORT_SETTINGS, TOKEN_ENV, write_config
from test_sync_bulk import _cli, _roots, _wait_for, _world

EXPORT = ["--no-progress", "--direction", "export"]


def _exported(folder: Path, double: ShopifyDouble, n: int, **options: Any) -> tuple[Path, str, str]:
    """A world whose ``n`` ERP customers were exported (one by one) by a first sync; the
    config is then rewritten with ``options`` for the runs under test."""
    config, erp_url, state_url = _world(folder, double, n, bulk_writes="never")
    assert main(["sync", "--config", str(config), *EXPORT]) == 0
    config = write_config(
        folder,
        shop_url=double.url,
        erp_url=erp_url,
        state_url=state_url,
        settings=EXPORT_SETTINGS,
        token=double.token,
        shopify_options=options,
    )
    double.reset_log()
    return config, erp_url, state_url


def _rename(erp_url: str, numbers: range, **more: dict[str, str]) -> None:
    """ERP edits: customers ``numbers`` get a contact ("Ann Renamed<i>": the Shopify
    customer's and its address's first and last name change); ``more`` per ERP no."""
    erp = open_writer(erp_url)
    try:
        for i in numbers:
            result = erp.update_customer(f"C{i:05d}", {"contact": f"Ann Renamed{i}"})
            assert result.ok, result.message
        for no, changes in more.items():
            result = erp.update_customer(no, changes)
            assert result.ok, result.message
    finally:
        erp.close()


def _update_jobs(double: ShopifyDouble) -> list[str]:
    """The mutations of the bulk jobs the double ran, in order (every bulk mutation asked
    for ran)."""
    jobs = [op for op in double.bulk.all() if op["type"] == "MUTATION"]
    assert _roots(double, "bulkOperationRunMutation") == len(jobs)
    return [
        "customerAddressUpdate" if "customerAddressUpdate(" in op["query"] else
        "customerUpdate" if "customerUpdate(" in op["query"] else op["query"]
        for op in jobs
    ]


BOTH_JOBS = ["customerAddressUpdate", "customerUpdate"]


def _assert_links_carry_our_writes(double: ShopifyDouble, state_url: str) -> None:
    """Every link's own-write time is its Shopify customer's updatedAt now: the import sees
    our own export as an echo, not as a foreign change."""
    updated = {c["id"]: c["updatedAt"] for c in double.store.customers()}
    store = open_store(state_url)
    try:
        links = list(store.links("main"))
        assert not store.pending_intents(shop="main")
    finally:
        store.close()
    for link in links:
        own = link.own_write_shopify_updated_at
        assert own is not None, link
        assert own.strftime("%Y-%m-%dT%H:%M:%SZ") == updated[link.shopify_id], link


def _last_names(double: ShopifyDouble) -> dict[str, str]:
    return {c["email"]: c.get("lastName") or "" for c in double.store.customers()}


@pytest.mark.parametrize(("threshold", "bulk"), [(20, True), (50, False)])
def test_the_threshold_chooses_a_bulk_update_job_or_single_updates(
    tmp_path: Path, shopify_double: ShopifyDouble, threshold: int, bulk: bool
) -> None:
    config, erp_url, state_url = _exported(
        tmp_path, shopify_double, 40, bulk_write_threshold=threshold, concurrency=4
    )
    # 25 renames (the customer's own fields) and 3 address changes
    moved = {f"C{i:05d}": {"address": f"{i} Rokin"} for i in (31, 32, 33)}
    _rename(erp_url, range(1, 26), **moved)
    assert main(["sync", "--config", str(config), *EXPORT]) == 0
    if bulk:
        # two jobs: the 28 addresses (25 names, 3 moves), then the 28 customers
        assert _update_jobs(shopify_double) == BOTH_JOBS
        assert _roots(shopify_double, "customerUpdate") == 0
        assert _roots(shopify_double, "customerAddressUpdate") == 0
    else:
        assert _update_jobs(shopify_double) == []
        assert _roots(shopify_double, "customerUpdate") == 25
        assert _roots(shopify_double, "customerAddressUpdate") == 28
    customers = {c["email"]: c for c in shopify_double.store.customers()}
    for i in range(1, 26):
        customer = customers[f"erp{i}@example.com"]
        assert (customer["firstName"], customer["lastName"]) == ("Ann", f"Renamed{i}")
        (address,) = customer["addresses"]
        assert (address["firstName"], address["lastName"]) == ("Ann", f"Renamed{i}")
    assert not customers["erp26@example.com"]["lastName"]
    assert customers["erp31@example.com"]["addresses"][0]["address1"] == "31 Rokin"
    store = open_store(state_url)
    try:
        run = store.runs(shop="main")[0]
        assert run.status == "succeeded" and run.counts.get("updated") == 28, run
        assert not run.counts.get("failed")
        done = [
            i for i in _intents(state_url) if i[0] == "shopify.update" and i[1] == "done"
        ]
        assert len(done) == 28  # journaled before they were sent, each settled
    finally:
        store.close()
    _assert_links_carry_our_writes(shopify_double, state_url)
    # nothing left to do: the next run writes nothing
    shopify_double.reset_log()
    assert main(["sync", "--config", str(config), *EXPORT]) == 0
    assert not any(r.is_mutation for r in shopify_double.requests)


def test_below_the_threshold_updates_are_sent_a_few_at_a_time(
    tmp_path: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """25 updates below the threshold go as single mutations, ``concurrency`` (here 3) in
    flight at once, not one after another; each is still settled with its own write."""
    from custsync.connectors.shopify.writer import ShopifyGraphQLWriter as ShopifyWriter

    config, erp_url, state_url = _exported(
        tmp_path, shopify_double, 30, bulk_write_threshold=100, concurrency=3
    )
    _rename(erp_url, range(1, 26))
    lock = threading.Lock()
    running, peak = [0], [0]
    real = ShopifyWriter.update_customer

    def counted(self: ShopifyWriter, *args: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)  # long enough for the others to start
            return real(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(ShopifyWriter, "update_customer", counted)
    assert main(["sync", "--config", str(config), *EXPORT]) == 0
    assert peak[0] == 3
    assert _update_jobs(shopify_double) == []
    assert _roots(shopify_double, "customerUpdate") == 25
    names = _last_names(shopify_double)
    assert all(names[f"erp{i}@example.com"] == f"Renamed{i}" for i in range(1, 26))
    _assert_links_carry_our_writes(shopify_double, state_url)


def _intents(state_url: str) -> list[tuple[str, str]]:
    engine = make_engine(state_url)
    try:
        with engine.connect() as conn:
            return [
                (row.action, row.status)
                for row in conn.execute(sa.select(intent_table.c.action, intent_table.c.status))
            ]
    finally:
        engine.dispose()


def test_a_refused_line_of_a_bulk_update_fails_alone_with_shopifys_message(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    config_path, erp_url, state_url = _exported(
        tmp_path, shopify_double, 30, bulk_write_threshold=10
    )
    _rename(
        erp_url,
        range(1, 21),
        C00003={"email": "new3@example.com"},
        C00007={"email": "new7@example.com"},
    )
    config = require_config(config_path)
    store = open_store(state_url)
    try:
        link7_before = store.link_for_erp("main", "C00007")
    finally:
        store.close()

    def meanwhile(_: Any) -> None:
        # after the plan, before the job: new7's e-mail is taken in Shopify by someone else
        shopify_double.store.load([{"email": "new7@example.com", "lastName": "Someone"}])

    store = open_store(state_url)
    try:
        result = run_sync(config, "main", "export", state=store, on_planned=meanwhile)
        assert result.status == "partial"
        assert (result.counts["updated"], result.counts["failed"]) == (19, 1), result.counts
        (failure,) = result.failures
        assert failure.decision.record == "C00007"
        assert failure.message == "Email has already been taken"
        assert not store.pending_intents(shop="main")
        outcomes = {o.record: o for o in store.outcomes(result.run_ids[0])}
        assert outcomes["C00007"].status == "failed"
        assert outcomes["C00003"].status == "ok"
        link7 = store.link_for_erp("main", "C00007")
    finally:
        store.close()
    assert _update_jobs(shopify_double) == BOTH_JOBS
    assert _roots(shopify_double, "customerUpdate") == 0  # the refused line is not re-sent
    customers = {c["email"]: c for c in shopify_double.store.customers()}
    assert customers["new3@example.com"]["lastName"] == "Renamed3"
    assert not customers["erp7@example.com"]["lastName"]  # its customer line was refused
    # its link keeps the own write of the export that created it
    assert link7 is not None and link7 == link7_before


def _job(state_url: str, kind: str) -> str:
    """The id of the journaled bulk job of updates of ``kind`` ("address", "customer"), ""
    until it runs."""
    if not Path(state_url.removeprefix("sqlite:///")).exists():
        return ""
    engine = make_engine(state_url)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(
                    sa.select(bulk_table.c.operation)
                    .where(bulk_table.c.kind == kind)
                    .order_by(bulk_table.c.id.desc())
                    .limit(1)
                ).scalar()
                or ""
            )
    finally:
        engine.dispose()


def _pending_updates(state_url: str) -> int:
    engine = make_engine(state_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        intent_table.c.status == "pending",
                        intent_table.c.action == "shopify.update",
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "when", ["during the address job", "during the customer job", "after the customer job"]
)
def test_a_sync_killed_during_or_after_its_bulk_update_jobs_resumes_sending_nothing_twice(
    tmp_path: Path, shopify_double_factory: Callable[..., ShopifyDouble], when: str
) -> None:
    n = 40
    # each job needs 2 s at the double: a kill "during" lands while it runs
    double = shopify_double_factory(bulk_seconds=2.0, **LARGE_BUCKET)
    config, erp_url, state_url = _exported(
        tmp_path,
        double,
        n,
        bulk_write_threshold=10,
        poll_interval_seconds=0.1,
        max_poll_interval_seconds=0.2,
    )
    _rename(erp_url, range(1, n + 1))
    if when == "after the customer job":
        # the customer job completes; its result file is slow to come: the kill lands
        # before any update of it is settled (the address job's result comes first)
        double.inject(
            Fault(kind="delay", seconds=8, target="download", skip=1, after_effect=True)
        )
    kind = "address" if when == "during the address job" else "customer"
    env = {**os.environ, TOKEN_ENV: double.token}
    command = _cli("sync", "--config", str(config), *EXPORT)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: bool(_job(state_url, kind)), process, f"the {kind} job ran")
        operation = _job(state_url, kind)
        if when == "after the customer job":
            _wait_for(
                lambda: sum(r.path.startswith("/bulk/") for r in double.requests) >= 2,
                process,
                "the result download",
            )
        status = double.bulk.get(operation)
        assert status is not None
        assert (status["status"] == "COMPLETED") is (when == "after the customer job"), status
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        if process.stderr is not None:
            process.stderr.close()
    assert _pending_updates(state_url) == n  # journaled before the jobs, none settled
    store = open_store(state_url)
    try:
        dead_run = store.runs(shop="main")[0].id
    finally:
        store.close()
    double.clear_faults()
    double.reset_log()

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    # the resumed run read the jobs back (their status, their result files) ...
    assert any(r.path.startswith("/bulk/") for r in double.requests)
    # ... and sent no address again: the address job ran to its end at Shopify
    assert _roots(double, "customerAddressUpdate") == 0
    assert _roots(double, "customerUpdate") == 0
    resent = _roots(double, "bulkOperationRunMutation")
    customers = {c["email"]: c for c in double.store.customers()}
    for i in range(1, n + 1):
        customer = customers[f"erp{i}@example.com"]
        assert (customer["firstName"], customer["lastName"]) == ("Ann", f"Renamed{i}")
        assert customer["addresses"][0]["lastName"] == f"Renamed{i}"
    _assert_links_carry_our_writes(double, state_url)
    store = open_store(state_url)
    try:
        latest = store.runs(shop="main")[0]
        settled = store.outcomes(dead_run)
    finally:
        store.close()
    assert latest.id != dead_run and latest.status == "succeeded", latest
    assert not latest.counts.get("failed"), latest
    if when == "during the address job":
        # the customer job never ran: its updates are planned again; their addresses are
        # already right, so one customer job sends just the names
        assert resent == 1
        assert latest.counts.get("updated") == n, latest
        assert not settled
    else:
        # the dead run's log holds the updates its jobs made; nothing was left to update
        assert resent == 0
        assert not latest.counts.get("updated"), latest
        assert len(settled) == n
        assert {(o.action, o.status, o.reason) for o in settled} == {
            ("export.update", "ok", "settled after a crash")
        }
    assert not any(status == "pending" for _, status in _intents(state_url))


def test_lines_of_a_canceled_bulk_update_job_are_sent_again_one_by_one(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    """The customer job is canceled at Shopify before it ran: its lines have no result, so
    each is sent on its own (the same values: safe to repeat), and every result carries the
    customer's updatedAt for the link."""
    from dataclasses import replace

    from custsync.connectors.shopify import open_writer
    from custsync.engine.ports import CustomerInput

    double = shopify_double_factory(bulk_seconds=1.0, **LARGE_BUCKET)
    double.store.load(
        [
            {"email": f"c{i}@example.com", "addresses": [{"address1": f"{i} Main",
                                                         "countryCode": "NL"}]}
            for i in range(6)
        ]
    )
    writer = open_writer(
        double.url, token=double.token, bulk_writes="always", poll_interval=0.05,
        max_poll_interval=0.1, max_attempts=3, retry_base_delay=0.01,
    )
    try:
        items = []
        for customer in writer.iter_customers():
            (address,) = customer.addresses
            name = {"first_name": "Ann", "last_name": customer.email[:2].upper()}
            # three change their names (and their address's), three only the address
            data = (
                CustomerInput(**name, address=replace(address, **name))
                if customer.email < "c3"
                else CustomerInput(address=replace(address, address1="1 Rokin"))
            )
            items.append((customer.id, customer.id, data))
        started: list[tuple[str, str]] = []

        def cancel_the_customer_job(part: str, operation: str) -> None:
            started.append((part, operation))
            if part == "customer":
                double.bulk.cancel(operation)

        double.reset_log()
        results = list(writer.bulk_update_customers(items, on_started=cancel_the_customer_job))
    finally:
        writer.close()
    assert [part for part, _ in started] == ["address", "customer"]
    assert double.bulk.get(started[1][1])["status"] == "CANCELED"  # type: ignore[index]
    assert all(r.ok for r in results), results
    now = {c["id"]: c for c in double.store.customers()}
    for result in results:
        assert result.customer is not None
        assert result.customer.updated_at is not None
        assert result.customer.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ") == now[result.key][
            "updatedAt"]
    # sent again: a customerUpdate per customer with names, a read for the address-only ones
    assert _roots(double, "customerUpdate") == 3
    assert _roots(double, "customerAddressUpdate") == 0  # the address job had run
    assert sum(c["lastName"] == "C0" for c in now.values()) == 1
    assert sum(c["addresses"][0]["address1"] == "1 Rokin" for c in now.values()) == 3
