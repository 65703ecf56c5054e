"""`custsync orders map` against a real SQLite ERP and the Shopify double."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import order_record
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer
from custsync.engine.run.state import open_store

from sync_world import make_erp, write_config

ADDRESS = {
    "first_name": "Kim",
    "last_name": "Berg",
    "address1": "Damrak 1",
    "zip": "1012 AB",
    "city": "Amsterdam",
    "country_code": "NL",
}


@pytest.fixture
def world(tmp_path: Path, shopify_double: ShopifyDouble) -> tuple[Path, str, ShopifyDouble]:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(
        erp_url,
        [
            ErpCustomer(no="C00001", name="Default Customer", country_code="NL"),
            ErpCustomer(no="C00002", name="US Orders", country_code="US"),
        ],
    )
    customer = shopify_double.store.load(
        [
            {
                "firstName": "Kim",
                "lastName": "Berg",
                "email": "kim@example.com",
                "addresses": [
                    {
                        "firstName": "Kim",
                        "lastName": "Berg",
                        "address1": "Damrak 1",
                        "zip": "1012 AB",
                        "city": "Amsterdam",
                        "countryCode": "NL",
                    }
                ],
            }
        ]
    )[0]
    shopify_double.store.load(
        [],
        [
            order_record(
                {
                    "id": "gid://shopify/Order/5001",
                    "name": "#5001",
                    "email": "kim@example.com",
                    "customer_id": customer["id"],
                    "billing_address": ADDRESS,
                    "shipping_address": ADDRESS,
                }
            ),
            order_record(
                {
                    "id": "gid://shopify/Order/5002",
                    "name": "#5002",
                    "shipping_address": {
                        **ADDRESS,
                        "country_code": "US",
                        "zip": "94103",
                        "city": "San Francisco",
                    },
                }
            ),
        ],
    )
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        token=shopify_double.token,
        settings={
            "customer_import": "all_customers",
            "auto_create_unknown_customers": True,
            "customer_template_code": "RETAIL",
            "default_customer_no": "C00001",
        },
        countries=[{"iso_code": "US", "default_customer_no": "C00002"}],
    )
    return config, erp_url, shopify_double


def test_orders_map_creates_the_customer_and_uses_the_country_default(
    world: tuple[Path, str, ShopifyDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    config, erp_url, _double = world
    code = main(
        [
            "orders",
            "map",
            "--config",
            str(config),
            "--order",
            "5001",
            "--order",
            "5002",
            "-o",
            "json",
        ]
    )
    assert code == exitcodes.OK, capsys.readouterr()
    rows = {row["order"]: row for row in json.loads(capsys.readouterr().out)["orders"]}
    created = rows["gid://shopify/Order/5001"]
    assert created["action"] == "create" and created["status"] == "ok"
    assert rows["gid://shopify/Order/5002"]["customer"] == "C00002"  # per-country default first
    assert any("order_method" in rule for rule in rows["gid://shopify/Order/5002"]["rules"])
    assert created["decided_by"].startswith("order_method/by-email-phone (")
    reader = open_reader(erp_url)
    try:
        kim = [c for c in reader.iter_customers() if c.email == "kim@example.com"]
    finally:
        reader.close()
    assert len(kim) == 1 and created["customer"] == kim[0].no
    # mapping the same order again finds the link instead of creating a second customer
    assert main(["orders", "map", "--config", str(config), "--order", "5001"]) == exitcodes.OK
    out = capsys.readouterr().out.splitlines()
    assert "mapped to sell-to/bill-to " + kim[0].no in out[0]
    # the order rule decided, not the nested import's last rule (import_update/...)
    assert out[1].startswith("    decided by order_method/by-email-phone (")
    store = open_store(f"sqlite:///{config.parent / 'state.db'}")
    try:
        assert store.link_for_erp("main", kim[0].no) is not None
    finally:
        store.close()


def test_orders_map_dry_run_writes_nothing(
    world: tuple[Path, str, ShopifyDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    config, erp_url, _double = world
    assert main(["orders", "map", "--config", str(config), "--order", "5001", "--dry-run"]) == 0
    assert "would map" in capsys.readouterr().out
    reader = open_reader(erp_url)
    try:
        assert not [c for c in reader.iter_customers() if c.email == "kim@example.com"]
    finally:
        reader.close()


def test_orders_map_reports_unknown_orders(
    world: tuple[Path, str, ShopifyDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _erp_url, _double = world
    assert main(["orders", "map", "--config", str(config), "--order", "999999"]) == exitcodes.ERROR
    assert "not found" in capsys.readouterr().out


def test_orders_map_while_the_shop_is_being_synced_exits_4(
    world: tuple[Path, str, ShopifyDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _erp_url, _double = world
    store = open_store(f"sqlite:///{config.parent / 'state.db'}")
    try:
        assert store.acquire_lease("shop:main", "elsewhere:1:abc", 60)
        code = main(["orders", "map", "--config", str(config), "--order", "5001"])
    finally:
        store.close()
    assert code == exitcodes.LOCKED
    assert "being synced by elsewhere:1:abc" in capsys.readouterr().err


def test_file_help_names_the_page_with_the_orders_format(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The help pointed to "the README's world-in-files format", which is in docs/plan.md."""
    with pytest.raises(SystemExit):
        main(["orders", "map", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "README" not in help_text
    assert "the orders.yaml format of docs/plan.md, 'A world kept in files'" in help_text
    plan_doc = (project_root / "docs" / "plan.md").read_text(encoding="utf-8")
    assert "## A world kept in files" in plan_doc and "| `orders.yaml` /" in plan_doc
