"""End to end with Business Central as the ERP: `custsync plan` and `sync` against the BC
double and the Shopify double over loopback; the failures a BC user meets (wrong secret,
unknown company, a record BC refuses, BC down mid-run) give a located message and a non-zero
exit, and lose nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.bc_double import BcDouble, Fault
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine.cli import main
from custsync.engine.model import ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import open_store

from bc_world import open_bc, write_bc_config

SETTINGS: dict[str, Any] = {
    "customer_import": "all_customers",
    "auto_create_unknown_customers": True,
    "customer_template_code": "US-RETAIL",
    "name_source": "company_name",
    "name_2_source": "first_and_last_name",
}


def _shopify(i: int, **fields: Any) -> ShopifyCustomer:
    address = ShopifyAddress(
        default=True,
        first_name="Shop",
        last_name=f"Person {i}",
        company=f"Shop Company {i}",
        address1=f"{i} Main Street",
        zip="98101",
        city="Seattle",
        country_code="US",
        province_code="WA",
    )
    values: dict[str, Any] = {
        "id": "",
        "first_name": "Shop",
        "last_name": f"Person {i}",
        "email": f"shop{i}@example.com",
        "addresses": (address,),
    }
    values.update(fields)
    return ShopifyCustomer(**values)


def _config(tmp_path: Path, bc: BcDouble, shop: ShopifyDouble, **options: Any) -> Path:
    return write_bc_config(
        tmp_path, bc, shop_url=shop.url, token=shop.token, settings=SETTINGS, **options
    )


def _bc_customers(bc: BcDouble, tmp_path: Path) -> dict[str, Any]:
    with open_bc(bc, tmp_path, journal=str(tmp_path / "reader-journal.sqlite")) as reader:
        return {c.email: c for c in reader.iter_customers()}


def test_plan_then_sync_imports_into_bc_with_template_and_name_2(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble, capsys: Any
) -> None:
    seed_from_models(shopify_double, [_shopify(i) for i in range(1, 6)])
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
    seed_from_models(shopify_double, [_shopify(1)])
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
    seed_from_models(shopify_double, [_shopify(1), _shopify(2, email=long_email), _shopify(3)])
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
    seed_from_models(shopify_double, [_shopify(i) for i in range(1, 7)])
    config = _config(tmp_path, bc_double, shopify_double)
    # after two creates BC answers 503 to every customer write
    bc_double.inject(
        Fault("status", status=503, method="POST", target="customers", skip=2, times=1000)
    )
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
