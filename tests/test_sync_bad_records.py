"""A Shopify customer the reader cannot read is a failed record of the run, not only a log
line: counted, in the run log with its key and the problem, and read again by the next run.

End to end on a real SQLite ERP and state and the Shopify double over loopback."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import open_store

from sync_world import IMPORT_SETTINGS, make_erp, write_config


def _customer(first: str) -> ShopifyCustomer:
    return ShopifyCustomer(
        id="",
        first_name=first,
        last_name="Doe",
        email=f"{first.lower()}@example.com",
        addresses=(
            ShopifyAddress(
                default=True,
                first_name=first,
                last_name="Doe",
                address1="1 Main Street",
                zip="94103",
                city="San Francisco",
                country_code="US",
                province_code="CA",
            ),
        ),
    )


def _set_updated_at(double: ShopifyDouble, gid: str, value: str) -> None:
    """What the store answers as the customer's ``updatedAt`` (the API cannot write it)."""
    with double.store.lock:
        stored = double.store.get_customer(gid)
        assert stored is not None
        stored["updatedAt"] = value
        double.store._changed()


def _erp_emails(url: str) -> set[str]:
    reader = open_reader(url)
    try:
        return {customer.email for customer in reader.iter_customers()}
    finally:
        reader.close()


@pytest.fixture
def world(tmp_path: Path, shopify_double: ShopifyDouble) -> Any:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url)
    seed_from_models(shopify_double, [_customer("Ann"), _customer("Bob")])

    class World:
        erp = erp_url
        state = f"sqlite:///{tmp_path / 'state.db'}"
        double = shopify_double
        config = write_config(
            tmp_path,
            shop_url=shopify_double.url,
            erp_url=erp_url,
            state_url=state,
            settings=IMPORT_SETTINGS,
            token=shopify_double.token,
        )
        bob = next(c["id"] for c in shopify_double.store.customers() if c["firstName"] == "Bob")

    return World()


def test_an_unreadable_customer_fails_the_run_and_is_read_again(
    world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    good_updated_at = world.double.store.customer(world.bob)["updatedAt"]
    _set_updated_at(world.double, world.bob, "next tuesday")
    config = str(world.config)

    assert main(["plan", "-c", config, "-o", "json"]) == exitcodes.OK
    planned = json.loads(capsys.readouterr().out)
    bad = next(d for d in planned["decisions"] if d["record"] == world.bob)
    assert (bad["action"], bad["reason_code"]) == ("skip", "bad-record")

    code = main(["sync", "-c", config, "--no-progress", "--direction", "import", "-o", "json"])

    assert code == exitcodes.PARTIAL
    [result] = json.loads(capsys.readouterr().out)
    assert result["counts"]["created"] == 1 and result["counts"]["failed"] == 1
    assert [f["record"] for f in result["failures"]] == [world.bob]
    assert _erp_emails(world.erp) == {"ann@example.com"}
    store = open_store(world.state)
    try:
        [run] = store.runs("main")
        assert run.status == "partial" and run.counts["failed"] == 1  # the word sync says
        assert run.counts["created"] + run.counts["failed"] == len(planned["decisions"])
        [failed] = store.failures(run.id)
        assert failed.record == world.bob
        assert failed.reason.startswith("bad-record: ") and "updatedAt" in failed.reason
        assert store.cursor("main", "import") is None  # the next run reads it again
    finally:
        store.close()
    assert main(["runs", "-c", config, "--failures", str(run.id)]) == exitcodes.OK
    assert world.bob in capsys.readouterr().out

    # still unreadable: failed again, not forgotten
    assert main(["sync", "-c", config, "--no-progress", "--direction", "import"]) == (
        exitcodes.PARTIAL
    )
    # readable again: the next run imports it and the cursor moves on
    _set_updated_at(world.double, world.bob, good_updated_at)
    assert main(["sync", "-c", config, "--no-progress", "--direction", "import"]) == exitcodes.OK
    assert _erp_emails(world.erp) == {"ann@example.com", "bob@example.com"}
    store = open_store(world.state)
    try:
        assert store.runs("main")[0].status == "succeeded"
        assert store.cursor("main", "import") is not None
    finally:
        store.close()


def test_runs_columns_add_up_to_the_sync_summary(
    world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs` showed created/updated/skipped/failed only (no linked, no unchanged) and said
    "failed" where `sync` said "partial"."""
    config = str(world.config)
    _set_updated_at(world.double, world.bob, "next tuesday")  # Bob fails every time
    summaries = []
    for full in ([], ["--full"]):  # the second run skips Ann (no updates allowed)
        code = main(["sync", "-c", config, "--no-progress", "-o", "json", *full])
        assert code == exitcodes.PARTIAL
        [summary] = json.loads(capsys.readouterr().out)
        assert summary["status"] == "partial"
        summaries.append(summary["counts"])

    assert main(["runs", "-c", config]) == exitcodes.OK
    header, *rows = capsys.readouterr().out.splitlines()
    columns = header.split()
    counted = ["CREATED", "UPDATED", "LINKED", "UNCHANGED", "SKIPPED", "FAILED"]
    assert columns[columns.index("STATUS") + 1 :][:7] == ["HOLDER", *counted]
    totals = dict.fromkeys(counted, 0)
    for row in rows:
        cells = row.split()
        assert cells[6] in ("partial", "succeeded"), row  # the start time has a blank
        # who ran it: this process, as the holder of the shop lease (hostname:pid:random)
        assert cells[7].startswith(f"{socket.gethostname()}:{os.getpid()}:"), row
        for offset, name in enumerate(counted):
            totals[name] += int(cells[8 + offset])
    expected = {key: sum(s[key] for s in summaries) for key in summaries[0]}
    assert {name.lower(): n for name, n in totals.items()} == expected
    # --full plans every record (issue 10 item 2): Ann's import, and the export of the ERP
    # customer it created (a skip: updates are off)
    assert (totals["CREATED"], totals["SKIPPED"], totals["FAILED"]) == (1, 2, 2)


def test_a_customer_the_engine_cannot_evaluate_fails_and_is_decided_again(
    world: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``record-error`` (an unexpected error while deciding one record) is no decision: it
    fails that record, so the cursor waits and the next run decides it again."""
    from custsync.engine.decide.engine import Engine

    real_import = Engine._import

    def failing_for_bob(self: Engine, world_: Any, shop: Any, customer: Any, **kw: Any) -> Any:
        if customer.id == world.bob:
            raise RuntimeError("engine bug")
        return real_import(self, world_, shop, customer, **kw)

    monkeypatch.setattr(Engine, "_import", failing_for_bob)
    config = str(world.config)
    code = main(["sync", "-c", config, "--no-progress", "--direction", "import", "-o", "json"])
    assert code == exitcodes.PARTIAL
    [result] = json.loads(capsys.readouterr().out)
    assert result["counts"]["created"] == 1 and result["counts"]["failed"] == 1
    store = open_store(world.state)
    try:
        [failed] = store.failures(store.runs("main")[0].id)
        assert failed.record == world.bob and failed.reason.startswith("record-error: ")
        assert store.cursor("main", "import") is None
    finally:
        store.close()

    monkeypatch.setattr(Engine, "_import", real_import)  # the bug is fixed
    assert main(["sync", "-c", config, "--no-progress", "--direction", "import"]) == exitcodes.OK
    assert _erp_emails(world.erp) == {"ann@example.com", "bob@example.com"}
