"""End to end with Business Central as the ERP: `custsync plan` and `sync` against the BC
double and the Shopify double over loopback; the failures a BC user meets (wrong secret,
unknown company, a record BC refuses, BC down mid-run) give a located message and a non-zero
exit, and lose nothing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors import business_central as bc
from custsync.connectors.bc_double import BcDouble, Fault
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine.cli import main
from custsync.engine.model import (
    Action,
    Decision,
    Direction,
    FieldChange,
)
from custsync.engine.run.apply import Applier
from custsync.engine.run.state import open_store

from bc_world import IMPORT_SETTINGS, open_bc, shopify_customer, write_bc_config


def _config(tmp_path: Path, bc: BcDouble, shop: ShopifyDouble, **options: Any) -> Path:
    return write_bc_config(
        tmp_path, bc, shop_url=shop.url, token=shop.token, settings=IMPORT_SETTINGS, **options
    )


def _links(tmp_path: Path) -> dict[str, Any]:
    """The shop's links in custsync's state, by ERP customer number."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        return {link.erp_no: link for link in store.links("main")}
    finally:
        store.close()


def _bc_customers(bc: BcDouble, tmp_path: Path) -> dict[str, Any]:
    with open_bc(bc, tmp_path, journal=str(tmp_path / "reader-journal.sqlite")) as reader:
        return {c.email: c for c in reader.iter_customers()}


def test_plan_then_sync_imports_into_bc_with_template_and_name_2(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble, capsys: Any
) -> None:
    seed_from_models(shopify_double, [shopify_customer(i) for i in range(1, 6)])
    config = _config(tmp_path, bc_double, shopify_double)

    assert main(["plan", "--config", str(config), "--direction", "import", "-o", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    creates = [d for d in planned["decisions"] if d["action"] == "create"]
    assert len(creates) == 5
    assert not [c for c in _bc_customers(bc_double, tmp_path) if c.startswith("shop")]

    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "import"]) == 0

    customers = _bc_customers(bc_double, tmp_path)
    created = customers["shop3@example.com"]
    assert created.name == "Shop Company 3" and created.name_2 == "Shop Person 3"
    assert created.no.startswith("C0")  # BC's number series
    assert created.extra["payment_method_code"] == "CARD"  # template US-RETAIL
    assert created.extra["customer_posting_group"] == "DOMESTIC"  # template, via the card
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        links = {link.erp_no for link in store.links("main")}
        assert {customers[f"shop{i}@example.com"].no for i in range(1, 6)} <= links
        assert store.runs("main")[0].status == "succeeded"
    finally:
        store.close()

    # the next run finds nothing to do: no duplicate, nothing written
    posts = sum(1 for r in bc_double.requests if r.method == "POST" and r.target == "customers")
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "import"]) == 0
    assert len([c for c in _bc_customers(bc_double, tmp_path) if c.startswith("shop")]) == 5
    assert (
        sum(1 for r in bc_double.requests if r.method == "POST" and r.target == "customers")
        == posts
    )


def test_without_the_customer_card_the_plan_says_name_2_is_not_written(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble, capsys: Any
) -> None:
    seed_from_models(shopify_double, [shopify_customer(1)])
    pages = {"countries": "CountriesRegions", "customer_templates": "CustomerTemplates"}
    config = _config(tmp_path, bc_double, shopify_double, pages=pages)

    assert main(["plan", "--config", str(config), "--direction", "import", "-o", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    (create,) = [d for d in planned["decisions"] if d["action"] == "create"]
    assert "name_2 not written: Name 2, Contact and posting groups" in create["message"]
    assert any(
        "customer_card" in w["message"] or "Customer Card" in w["message"]
        for w in planned["warnings"]
    )


def test_wrong_secret_stops_with_what_to_check(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble, capsys: Any
) -> None:
    config = _config(tmp_path, bc_double, shopify_double)
    import os

    os.environ["CUSTSYNC_TEST_BC_SECRET"] = "not-the-secret"
    code = main(["sync", "--config", str(config), "--no-progress"])
    captured = capsys.readouterr()
    err = captured.err + captured.out
    assert code != 0
    assert "no access token" in err and "client_id" in err and "CUSTSYNC_TEST_BC_SECRET" in err
    assert "not-the-secret" not in err


def test_unknown_company_is_named_with_the_ones_there(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble, capsys: Any
) -> None:
    config = _config(tmp_path, bc_double, shopify_double, company="CRONUS Nowhere")
    code = main(["plan", "--config", str(config)])
    err = capsys.readouterr().err
    assert code != 0
    assert "company 'CRONUS Nowhere' does not exist" in err and "CRONUS USA, Inc." in err


def test_a_record_bc_refuses_fails_alone(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble
) -> None:
    # BC refuses an e-mail address longer than its 80 characters; the others go in
    long_email = "x" * 75 + "@example.com"
    seed_from_models(shopify_double, [shopify_customer(1), shopify_customer(2, email=long_email), shopify_customer(3)])
    config = _config(tmp_path, bc_double, shopify_double)
    code = main(["sync", "--config", str(config), "--no-progress", "--direction", "import"])
    assert code != 0  # a failed record is a non-zero exit
    customers = _bc_customers(bc_double, tmp_path)
    assert {"shop1@example.com", "shop3@example.com"} <= set(customers)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        run = store.runs("main")[0]
        failed = [o for o in store.outcomes(run.id) if o.status == "failed"]
    finally:
        store.close()
    assert len(failed) == 1
    # BC's code, its message (the e-mail it quotes masked) and the correlation id
    assert failed[0].reason.startswith("Application_DialogException: The email address")
    assert "correlation id" in failed[0].reason and "x***@" in failed[0].reason
    assert "xxxx" not in failed[0].reason


def test_bc_down_mid_run_stops_cleanly_and_the_next_run_finishes(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble
) -> None:
    seed_from_models(shopify_double, [shopify_customer(i) for i in range(1, 7)])
    config = _config(tmp_path, bc_double, shopify_double)
    # the creates go as one $batch: BC answers 503 to it, every time
    bc_double.inject(Fault("status", status=503, method="POST", target="$batch", times=1000))
    code = main(["sync", "--config", str(config), "--no-progress", "--direction", "import"])
    assert code != 0
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert store.cursor("main", "import") is None  # the failed run moved no cursor
    finally:
        store.close()

    bc_double.clear_faults()
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "import"]) == 0
    emails = [e for e in _bc_customers(bc_double, tmp_path) if e.startswith("shop")]
    assert sorted(emails) == sorted(f"shop{i}@example.com" for i in range(1, 7))


@pytest.mark.parametrize("after_effect", [True, False])
def test_a_create_whose_answer_is_lost_is_not_duplicated(
    tmp_path: Path, bc_double: BcDouble, after_effect: bool
) -> None:
    """The POST reaches BC (or not) and the connection drops before the answer: the
    connector looks the customer up before sending again."""
    bc_double.inject(Fault("drop", method="POST", target="customers", after_effect=after_effect))
    with open_bc(bc_double, tmp_path) as writer:
        result = writer.create_customer(
            {"name": "Lost Answer", "email": "lost@example.com"}, "US-RETAIL", "main:gid:1"
        )
        again = writer.create_customer(
            {"name": "Lost Answer", "email": "lost@example.com"}, "US-RETAIL", "main:gid:1"
        )
    assert result.ok and again.ok and again.no == result.no
    names = [c for c in _bc_customers(bc_double, tmp_path) if c == "lost@example.com"]
    assert len(names) == 1


def test_sync_sends_the_import_creates_as_batches(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble
) -> None:
    """30 new Shopify customers: one $batch of creates, one $batch of Customer Card writes
    (Name 2, the template's posting groups) on the page service, one $batch reading the new
    etags; no request per customer. Each link keeps the etag BC has after the card write (so
    that the next export sees its own write)."""
    seed_from_models(shopify_double, [shopify_customer(i) for i in range(1, 31)])
    config = _config(tmp_path, bc_double, shopify_double)
    bc_double.reset_log()
    code = main(["sync", "--config", str(config), "--no-progress", "--direction", "import"])
    assert code == 0
    writes = [r for r in bc_double.requests if r.method not in ("GET",) and r.target != "token"]
    assert [(r.method, r.target, r.operations) for r in writes] == [
        ("POST", "$batch", 30),  # the creates (API v2.0)
        ("POST", "$batch", 30),  # the card writes (ODataV4)
        ("POST", "$batch", 30),  # the etag reads (API v2.0)
    ]
    assert "/ODataV4/" in writes[1].path and "/api/v2.0/" in writes[2].path
    # the rest: the token and the reads of the plan, none per customer
    assert len(bc_double.requests) - len(writes) < 15, [r.path for r in bc_double.requests]
    customers = _bc_customers(bc_double, tmp_path)
    links = _links(tmp_path)
    for i in range(1, 31):
        created = customers[f"shop{i}@example.com"]
        assert created.name_2 == f"Shop Person {i}"
        assert links[created.no].own_write_erp_etag == created.etag


def test_import_updates_go_as_batches_each_with_its_etag(
    tmp_path: Path, bc_double: BcDouble
) -> None:
    """The applier sends import updates of a batching ERP together: one API $batch with a
    PATCH per customer, each with the etag the plan read as If-Match (a customer whose only
    change is a card value: a GET of its etag instead), one $batch of card writes, one of
    etag reads. A customer changed in BC since it was read fails alone with BC's 409; one
    BC refuses fails alone with BC's code; the others are written and linked with BC's new
    etag."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    writer = open_bc(bc_double, tmp_path)
    try:
        created = list(
            writer.create_customers(
                [
                    bc.CreateItem(f"main:u{i}", {"name": f"U {i}", "email": f"u{i}@example.com"})
                    for i in range(4)
                ]
            )
        )
        nos = [r.no or "" for r in created]
        read = {c.no: c for c in writer.iter_customers()}
        # another user edits customer 1 after the plan read it
        assert writer.update_customer(nos[1], {"city": "Tacoma"}, read[nos[1]].etag).ok

        def update(i: int, **changes: Any) -> Decision:
            gid = f"gid://shopify/Customer/{900 + i}"
            return Decision(
                direction=Direction.IMPORT,
                action=Action.UPDATE,
                shop="main",
                record=gid,
                shopify_id=gid,
                erp_no=nos[i],
                changes=tuple(FieldChange(k, None, v) for k, v in changes.items()),
                new_link=True,
                target_version=read[nos[i]].etag,
            )

        decisions = [
            update(0, city="Spokane", name_2="Two"),
            update(1, city="Olympia"),
            update(2, email="x" * 75 + "@example.com"),
            update(3, contact="Ann"),
        ]
        run_id = store.start_run("main", "import", datetime.now(UTC))
        applier = Applier(shop="main", run_id=run_id, state=store, erp=writer)
        bc_double.reset_log()
        outcomes = list(applier.apply_import_updates(decisions))
        writes = [
            (r.method, r.target, r.operations) for r in bc_double.requests if r.method != "GET"
        ]
        after = {no: writer.get_customer(no) for no in nos}
        links = {link.erp_no: link for link in store.links("main")}
    finally:
        writer.close()
        store.close()
    assert writes == [("POST", "$batch", 4), ("POST", "$batch", 2), ("POST", "$batch", 2)]
    assert [o.status for o in outcomes] == ["ok", "failed", "failed", "ok"]
    first, fourth = after[nos[0]], after[nos[3]]
    assert first is not None and (first.city, first.name_2) == ("Spokane", "Two")
    assert fourth is not None and fourth.contact == "Ann"
    assert links[nos[0]].own_write_erp_etag == first.etag
    assert links[nos[3]].own_write_erp_etag == fourth.etag
    assert "changed in Business Central since it was read" in outcomes[1].message
    assert "Request_EntityChanged" in outcomes[1].message
    second = after[nos[1]]
    assert second is not None and second.city == "Tacoma"  # the other user's edit stays
    # BC's code and message (the value masked), the batch's request-id as correlation id
    assert outcomes[2].message.startswith("Application_StringExceededLength: The length")
    assert "correlation id" in outcomes[2].message and "xxxx" not in outcomes[2].message
    assert set(links) == {nos[0], nos[3]}


def test_a_second_sync_sends_the_import_updates_as_batches(
    tmp_path: Path,
    bc_double: BcDouble,
    shopify_double: ShopifyDouble,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gids = seed_from_models(shopify_double, [shopify_customer(i) for i in range(1, 7)])
    config = _config(tmp_path, bc_double, shopify_double)
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "import"]) == 0
    time.sleep(1.1)  # Shopify's updatedAt has whole seconds: after the import's
    for i, gid in enumerate(gids[:3], start=1):
        shopify_double.store.update_customer(gid, {"email": f"renamed{i}@example.com"})
    settings = {**IMPORT_SETTINGS, "shopify_can_update_customers": True}
    config = write_bc_config(
        tmp_path, bc_double, shop_url=shopify_double.url, token=shopify_double.token,
        settings=settings,
    )
    bc_double.reset_log()
    code = main(["sync", "--config", str(config), "--no-progress", "--direction", "import"])
    assert code == 0
    assert "3 updated" in capsys.readouterr().out
    # one $batch of three PATCHes, each with the etag the plan read
    writes = [(r.method, r.target, r.operations) for r in bc_double.requests if r.method != "GET"]
    assert writes == [("POST", "token", 1), ("POST", "$batch", 3)]
    customers = _bc_customers(bc_double, tmp_path)
    assert {f"renamed{i}@example.com" for i in range(1, 4)} | {
        f"shop{i}@example.com" for i in range(4, 7)
    } <= set(customers)
    links = _links(tmp_path)
    for i in range(1, 4):
        updated = customers[f"renamed{i}@example.com"]
        assert links[updated.no].own_write_erp_etag == updated.etag


def test_a_card_value_bc_refuses_in_a_batched_update_is_a_refusal(
    tmp_path: Path, bc_double: BcDouble
) -> None:
    """A Customer Card write BC refuses (400: Name 2 longer than its 50 characters) inside a
    batch of updates fails that record as a refusal (parked at once, like the one-at-a-time
    path), and the others are written."""
    from custsync.engine.ports import ErpUpdate

    writer = open_bc(bc_double, tmp_path)
    try:
        created = list(
            writer.create_customers(
                [bc.CreateItem(f"main:r{i}", {"name": f"R {i}"}) for i in range(2)]
            )
        )
        nos = [r.no or "" for r in created]
        read = {c.no: c for c in writer.iter_customers()}
        results = list(
            writer.update_customers(
                [
                    ErpUpdate(nos[0], {"name_2": "y" * 60}, read[nos[0]].etag),
                    ErpUpdate(nos[1], {"name_2": "Branch"}, read[nos[1]].etag),
                ]
            )
        )
        second = writer.get_customer(nos[1])
    finally:
        writer.close()
    assert [(r.ok, r.refused) for r in results] == [(False, True), (True, False)]
    assert results[0].message.startswith("name_2: ")
    assert second is not None and second.name_2 == "Branch"


def test_a_saved_plan_is_checked_against_bc_in_a_few_reads_not_one_a_customer(
    tmp_path: Path,
    bc_double: BcDouble,
    shopify_double: ShopifyDouble,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``sync --plan`` checks each planned import update against the customer's current etag
    in BC: 45 of them are read 20 a request (``number eq .. or ..``), not one GET each (which
    would spend BC's request budget on the check), and a customer changed in BC since the plan
    is still found and named."""
    gids = seed_from_models(shopify_double, [shopify_customer(i) for i in range(1, 46)])
    config = _config(tmp_path, bc_double, shopify_double)
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "import"]) == 0
    time.sleep(1.1)  # Shopify's updatedAt has whole seconds: after the import's
    for i, gid in enumerate(gids, start=1):
        shopify_double.store.update_customer(gid, {"email": f"renamed{i}@example.com"})
    config = write_bc_config(
        tmp_path, bc_double, shop_url=shopify_double.url, token=shopify_double.token,
        settings={**IMPORT_SETTINGS, "shopify_can_update_customers": True},
    )
    plan_file = tmp_path / "plan.json"
    plan = ["plan", "--config", str(config), "--direction", "import", "--out", str(plan_file)]
    sync = ["sync", "--config", str(config), "--no-progress", "--direction", "import"]
    assert main(plan) == 0
    customers = _bc_customers(bc_double, tmp_path)
    seventh = customers["shop7@example.com"]
    with open_bc(bc_double, tmp_path) as writer:  # another user edits it in BC
        assert writer.update_customer(seventh.no, {"city": "Tacoma"}, seventh.etag).ok
    capsys.readouterr()
    assert main([*sync, "--plan", str(plan_file)]) != 0
    out = capsys.readouterr().out
    assert "the plan is stale" in out and "(target changed)" in out

    assert main(plan) == 0
    bc_double.reset_log()
    assert main([*sync, "--plan", str(plan_file)]) == 0
    assert "45 updated" in capsys.readouterr().out
    reads = [r for r in bc_double.requests if r.method == "GET"]
    by_number = [r for r in reads if " eq " in r.params.get("$filter", "")]
    assert 0 < len(by_number) <= 8, [(r.path, dict(r.params)) for r in reads]
    assert len(reads) < 20, [(r.path, dict(r.params)) for r in reads]
