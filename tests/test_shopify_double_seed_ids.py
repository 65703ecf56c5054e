"""Sandbox seed files: ids written as numbers (as in the world-in-files format) are taken as
gids, a wrong id is a located problem, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from custsync.connectors.shopify_double import ShopifyDouble, load_seed_file
from custsync.engine.errors import ConfigError


def test_the_example_world_customers_seed_the_sandbox_with_their_ids(project_root: Path) -> None:
    double = ShopifyDouble()
    load_seed_file(double.store, project_root / "examples/world/shopify_customers.yaml")
    ids = {customer["id"] for customer in double.store.customers()}
    assert "gid://shopify/Customer/1001" in ids
    jane = next(c for c in double.store.customers() if c["id"].endswith("/1001"))
    assert jane["addresses"][0]["id"].startswith("gid://shopify/MailingAddress/5001")


def test_numeric_text_ids_and_bad_ids(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("customers:\n  - {id: '77', email: a@example.com}\n", encoding="utf-8")
    double = ShopifyDouble()
    load_seed_file(double.store, good)
    assert [c["id"] for c in double.store.customers()] == ["gid://shopify/Customer/77"]

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "customers:\n  - {id: [1], email: a@example.com}\n  - {id: -3, email: b@example.com}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_seed_file(ShopifyDouble().store, bad)
    assert "/customers/0/id: expected a positive number or a gid" in raised.value.message
    assert "/customers/1/id:" in raised.value.message


def test_countries_outside_shopifys_country_enum_are_refused_not_stored(tmp_path: Path) -> None:
    """An address in Antarctica (AQ) was stored, and then every customers query failed with
    "Enum 'CountryCode' cannot represent value: 'AQ'"; Kosovo (XK), which Shopify knows but
    ISO 3166 does not, was refused."""
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "customers:\n"
        "  - {email: a@example.com, addresses: [{address1: x, city: y, country_code: AQ}]}\n"
        "  - {email: b@example.com, addresses: [{address1: x, city: y, country_code: PR}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_seed_file(ShopifyDouble().store, seed)
    assert "/customers/0/addresses/0/country: Country is invalid" in raised.value.message
    assert "/customers/1/addresses/0/country: Country is invalid" in raised.value.message

    seed.write_text(
        "customers:\n"
        "  - {email: k@example.com, addresses: [{address1: x, city: Pristina, country_code: XK}]}\n",
        encoding="utf-8",
    )
    double = ShopifyDouble()
    load_seed_file(double.store, seed)
    assert double.store.customers()[0]["addresses"][0]["countryCode"] == "XK"


def test_order_ids_and_customer_ids_written_as_numbers(tmp_path: Path) -> None:
    """`orders: [{id: 5001, customer_id: 1001}]` was an AttributeError traceback."""
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "customers:\n"
        "  - {id: 1001, email: jane@example.com}\n"
        "orders:\n"
        "  - {id: 5001, name: '#5001', customer_id: 1001}\n"
        "  - {id: '5002', name: '#5002', customer_id: gid://shopify/Customer/1001}\n",
        encoding="utf-8",
    )
    double = ShopifyDouble()
    load_seed_file(double.store, seed)
    for number in (5001, 5002):
        order = double.store.get_order(f"gid://shopify/Order/{number}")
        assert order is not None and order["name"] == f"#{number}"
        assert order["customerId"] == "gid://shopify/Customer/1001"

    seed.write_text(
        "orders:\n  - {id: abc, name: '#1'}\n  - {name: '#2', customer_id: [1001]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_seed_file(ShopifyDouble().store, seed)
    assert "/orders/0/id: expected a positive number or a gid" in raised.value.message
    assert "/orders/1/customer_id: expected a positive number or a gid" in raised.value.message
