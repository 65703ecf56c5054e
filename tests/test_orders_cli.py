"""`custsync orders map` against a real SQLite ERP and the Shopify double."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import Fault, ShopifyDouble
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


def _start_orders_map(config: Path, ttl: str) -> subprocess.Popen[bytes]:
    """``custsync orders map`` of order 5001 in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()", "orders", "map",
         "--config", str(config), "--order", "5001", "--lease-ttl", ttl],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _held_lease(store: Any, process: subprocess.Popen[bytes]) -> Any:
    """The shop lease once the ``orders map`` process holds it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lease = store.lease("shop:main")
        if lease is not None and f":{process.pid}:" in lease.holder:
            return lease
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("orders map never took the shop lease")


def test_a_long_orders_map_renews_its_lease_and_a_killed_one_lets_it_expire(
    world: tuple[Path, str, ShopifyDouble],
) -> None:
    """issue 11: `orders map` held a fixed 120 s lease. Now it renews a --lease-ttl lease
    while it runs, as `sync` does: a mapping that lasts longer than the TTL (the order read
    answers after 4 s) is not taken over by a second process, and the lease of a killed
    mapping expires after its TTL."""
    config, _erp_url, double = world
    store = open_store(f"sqlite:///{config.parent / 'state.db'}")
    try:
        double.inject(Fault(kind="delay", seconds=4.0, operation="order"))
        mapping = _start_orders_map(config, "1.5")
        _held_lease(store, mapping)
        held_at = time.monotonic()
        taken_after = None  # seconds after the mapping took the lease that another could
        attempts = 0
        while mapping.poll() is None and taken_after is None:
            attempts += 1
            if store.acquire_lease("shop:main", "other-host:1:abcd", 60):
                taken_after = time.monotonic() - held_at
                store.release_lease("shop:main", "other-host:1:abcd")
            time.sleep(0.1)
        out, err = mapping.communicate()
        assert mapping.returncode == exitcodes.OK, err.decode()
        assert "mapped to sell-to/bill-to" in out.decode()
        # tried all along the 4 s read (more than twice the TTL); free only once it ended
        assert attempts >= 20
        assert taken_after is None or taken_after >= 3.9, taken_after

        # a killed mapping: its lease is not renewed any more and expires after the TTL
        double.inject(Fault(kind="delay", seconds=8.0, operation="order"))
        mapping = _start_orders_map(config, "3")
        _held_lease(store, mapping)
        mapping.kill()
        mapping.communicate()
        killed_at = time.monotonic()
        assert not store.acquire_lease("shop:main", "other-host:1:abcd", 60)
        while not store.acquire_lease("shop:main", "other-host:1:abcd", 60):
            assert time.monotonic() - killed_at < 3 + 2, "the killed holder's lease never expired"
            time.sleep(0.1)
    finally:
        store.close()
