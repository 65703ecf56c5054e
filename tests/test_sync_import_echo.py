"""An import that only linked must not hold back the ERP customer's export (issue 10, item 2);
an import that wrote to the ERP is still not echoed back to Shopify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer, ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import open_store

from sync_world import make_erp, write_config

BOTH_WAYS = {
    "customer_import": "all_customers",
    "export_customers": True,
    "can_update_shopify_customers": True,
}


def _world(tmp_path: Path, double: ShopifyDouble, **settings: Any) -> tuple[Path, str, str]:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(
        erp_url,
        [
            ErpCustomer(
                no="C00001",
                name="Jane Doe",
                email="jane@example.com",
                address="1 Canal Street",
                city="Amsterdam",
                post_code="1011AB",
                country_code="NL",
            )
        ],
    )
    address = ShopifyAddress(
        default=True,
        first_name="Jane",
        last_name="Doe",
        address1="9 Harbour Road",
        zip="3011AA",
        city="Rotterdam",
        country_code="NL",
    )
    seed_from_models(
        double,
        [ShopifyCustomer(id="", first_name="Jane", last_name="Doe", email="jane@example.com",
                         addresses=(address,))],
    )
    config = write_config(
        tmp_path, shop_url=double.url, erp_url=erp_url, state_url=state_url,
        settings={**BOTH_WAYS, **settings}, token=double.token,
    )
    return config, erp_url, state_url


def _sync(config: Path, direction: str) -> int:
    return main(["sync", "-c", str(config), "--no-progress", "--direction", direction])


def _etag(erp_url: str) -> str | None:
    reader = open_reader(erp_url)
    try:
        customer = reader.get_customer("C00001")
        assert customer is not None
        return customer.etag
    finally:
        reader.close()


def _shopify_city(double: ShopifyDouble) -> str:
    [customer] = double.store.customers()
    return str(customer["defaultAddress"]["city"])


def test_an_import_that_only_linked_does_not_hold_back_the_export(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    config, erp_url, state_url = _world(tmp_path, shopify_double)
    before = _etag(erp_url)

    assert _sync(config, "import") == exitcodes.OK
    store = open_store(state_url)
    try:
        [link] = list(store.links("main"))
        assert link.erp_no == "C00001" and link.last_import_at is not None
        assert link.own_write_erp_etag is None  # the import linked, it wrote nothing
    finally:
        store.close()
    assert _etag(erp_url) == before  # the ERP customer was not written

    capsys.readouterr()
    assert main(["plan", "-c", str(config), "--direction", "export", "--full"]) == exitcodes.OK
    assert "C00001" in capsys.readouterr().out  # --full plans every record

    assert _sync(config, "export") == exitcodes.OK
    assert _shopify_city(shopify_double) == "Amsterdam"  # the ERP's address reached Shopify


def test_an_import_that_wrote_to_the_erp_is_not_echoed_back(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    config, erp_url, state_url = _world(
        tmp_path,
        shopify_double,
        shopify_can_update_customers=True,
        can_update_shopify_customers=False,
    )
    assert _sync(config, "import") == exitcodes.OK
    written = _etag(erp_url)
    store = open_store(state_url)
    try:
        [link] = list(store.links("main"))
        assert link.own_write_erp_etag == written  # the version our import wrote
    finally:
        store.close()

    capsys.readouterr()
    assert main(["plan", "-c", str(config), "--direction", "export", "-o", "json"]) == 0
    planned = [d["record"] for d in json.loads(capsys.readouterr().out)["decisions"]]
    assert "C00001" not in planned  # our own write is not read back as an ERP change
    assert main(["plan", "-c", str(config), "--direction", "export", "-o", "json", "--full"]) == 0
    planned = [d["record"] for d in json.loads(capsys.readouterr().out)["decisions"]]
    assert "C00001" in planned
