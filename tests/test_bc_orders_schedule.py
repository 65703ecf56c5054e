"""Business Central as the ERP for `custsync orders map` and `custsync schedule --once`,
against the BC double and the Shopify double."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from custsync.connectors.bc_double import BcDouble
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import order_record
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.run.state import open_store

from bc_world import open_bc, write_bc_config

ADDRESS = {
    "first_name": "Kim",
    "last_name": "Berg",
    "address1": "Damrak 1",
    "zip": "1012 AB",
    "city": "Amsterdam",
    "country_code": "NL",
}


def _bc_emails(double: BcDouble, tmp_path: Path) -> list[str]:
    with open_bc(double, tmp_path, journal=str(tmp_path / "read.sqlite")) as reader:
        return [c.email for c in reader.iter_customers()]


def test_orders_map_creates_the_customer_in_bc_and_uses_the_country_default(
    tmp_path: Path,
    bc_double: BcDouble,
    shopify_double: ShopifyDouble,
    capsys: pytest.CaptureFixture[str],
) -> None:
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
    config = write_bc_config(
        tmp_path,
        bc_double,
        shop_url=shopify_double.url,
        token=shopify_double.token,
        settings={
            "customer_import": "all_customers",
            "auto_create_unknown_customers": True,
            "customer_template_code": "EU-RETAIL",
            "default_customer_no": "C00030",
        },
        countries=[{"iso_code": "US", "default_customer_no": "C00010"}],
    )
    args = ["orders", "map", "--config", str(config), "--order", "5001", "--order", "5002"]
    assert main([*args, "-o", "json"]) == exitcodes.OK
    rows = {row["order"]: row for row in json.loads(capsys.readouterr().out)["orders"]}
    created = rows["gid://shopify/Order/5001"]
    assert created["action"] == "create" and created["status"] == "ok"
    assert rows["gid://shopify/Order/5002"]["customer"] == "C00010"
    assert _bc_emails(bc_double, tmp_path).count("kim@example.com") == 1
    # mapped again: the link is found, no second customer
    assert main(args) == exitcodes.OK
    assert _bc_emails(bc_double, tmp_path).count("kim@example.com") == 1


def test_schedule_once_syncs_with_bc(
    tmp_path: Path, bc_double: BcDouble, shopify_double: ShopifyDouble
) -> None:
    shopify_double.store.load(
        [
            {
                "firstName": "Ann",
                "lastName": "Lee",
                "email": "ann@example.com",
                "addresses": [
                    {
                        "firstName": "Ann",
                        "lastName": "Lee",
                        "address1": "1 Pike Street",
                        "zip": "98101",
                        "city": "Seattle",
                        "countryCode": "US",
                        "provinceCode": "WA",
                    }
                ],
            }
        ]
    )
    config = write_bc_config(
        tmp_path,
        bc_double,
        shop_url=shopify_double.url,
        token=shopify_double.token,
        settings={
            "customer_import": "all_customers",
            "auto_create_unknown_customers": True,
            "customer_template_code": "US-RETAIL",
            "export_customers": True,
        },
    )
    assert main(["schedule", "--config", str(config), "--once"]) == exitcodes.OK
    assert "ann@example.com" in _bc_emails(bc_double, tmp_path)
    shop_emails = {c["email"] for c in shopify_double.store.customers()}
    assert {"robert.townes@contoso.com", "helen.ray@contoso.com"} <= shop_emails  # exported
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert {run.status for run in store.runs("main")} == {"succeeded"}
    finally:
        store.close()


def test_an_expired_token_is_renewed_once(tmp_path: Path, bc_double: BcDouble) -> None:
    with open_bc(bc_double, tmp_path) as writer:
        before = len(list(writer.iter_customers()))
        bc_double.expire_tokens()  # BC answers 401 to the cached token
        assert len(list(writer.iter_customers())) == before
        assert writer.client.stats.token_requests == 2
