"""The attention list: records that keep failing are parked and stop holding the cursor;
they come back when their record changes, on `attention retry`, and go off the list when they
succeed. Also: two Shopify customers matching one ERP customer is a planned skip.

Real SQLite ERP and state, the Shopify double over loopback with injected faults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.erp_sql import open_writer
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer, Link, ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import Failure, open_store

from sync_world import EXPORT_SETTINGS, IMPORT_SETTINGS, make_erp, write_config


@pytest.fixture
def setup(tmp_path: Path, shopify_double: ShopifyDouble) -> Any:
    class Setup:
        double = shopify_double
        erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
        state_url = f"sqlite:///{tmp_path / 'state.db'}"

        def config(self, settings: Any) -> Path:
            return write_config(tmp_path, shop_url=shopify_double.url, erp_url=self.erp_url,
                                state_url=self.state_url, settings=settings,
                                token=shopify_double.token)

    return Setup()


def _sync(config: Path, *extra: str) -> int:
    return main(["sync", "-c", str(config), "--no-progress", *extra])


def _attention(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    capsys.readouterr()
    assert main(["attention", "list", "-c", str(config), "-o", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)["records"]


def test_a_record_failing_three_runs_is_parked_and_comes_back(
    setup: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    make_erp(setup.erp_url, [
        ErpCustomer(no=f"C{i:05d}", name=f"Person {i}", email=f"p{i}@example.com",
                    country_code="NL")
        for i in range(1, 4)
    ])
    config = setup.config(EXPORT_SETTINGS)
    setup.double.inject(Fault(kind="status", status=503, times=10_000, operation="customerCreate"))

    for _attempt in (1, 2):
        assert _sync(config, "--direction", "export") == exitcodes.PARTIAL
        store = open_store(setup.state_url)
        try:
            assert store.cursor("main", "export") is None  # failing records hold the cursor
        finally:
            store.close()
        assert {r["status"] for r in _attention(config, capsys)} == {"failing"}
    assert _sync(config, "--direction", "export") == exitcodes.PARTIAL

    records = _attention(config, capsys)
    assert [(r["record"], r["status"], r["failures"]) for r in records] == [
        (f"C{i:05d}", "parked", 3) for i in range(1, 4)
    ]
    first = records[0]
    assert "HTTP 503" in first["reason"] and not first["permanent"]
    assert first["rules"] and first["last_run_id"]
    store = open_store(setup.state_url)
    try:
        cursor = store.cursor("main", "export")
        assert cursor is not None  # parked: the cursor moved on
        assert "all parked" in store.runs("main")[0].error
    finally:
        store.close()
    # status counts them, and can fail the health check on them
    capsys.readouterr()
    assert main(["status", "-c", str(config), "-o", "json", "--max-failures", "9"]) == 0
    jobs = {j["direction"]: j for j in json.loads(capsys.readouterr().out)["jobs"]}
    assert jobs["export"]["parked"] == 3
    assert main(["status", "-c", str(config), "--max-failures", "9", "--max-parked", "2"]) == 1
    assert "3 parked records" in capsys.readouterr().out

    setup.double.clear_faults()
    # nothing changed: the next run does not read them again
    assert _sync(config, "--direction", "export") == exitcodes.OK
    assert setup.double.store.count() == 0
    # on demand
    assert main(["attention", "retry", "C00001", "-c", str(config)]) == 0
    assert _sync(config, "--direction", "export") == exitcodes.OK
    assert [c["email"] for c in setup.double.store.customers()] == ["p1@example.com"]
    # by itself, when the record changes
    erp = open_writer(setup.erp_url)
    try:
        customer = erp.get_customer("C00002")
        assert customer is not None
        assert erp.update_customer("C00002", {"city": "Utrecht"},
                                   expected_etag=customer.etag).ok
    finally:
        erp.close()
    assert _sync(config, "--direction", "export") == exitcodes.OK
    assert setup.double.store.count() == 2
    assert [r["record"] for r in _attention(config, capsys)] == ["C00003"]
    # by hand
    assert main(["attention", "show", "C00003", "-c", str(config)]) == 0
    assert "parked" in capsys.readouterr().out
    assert main(["attention", "resolve", "C00003", "-c", str(config)]) == 0
    assert _attention(config, capsys) == []
    assert main(["attention", "retry", "C00003", "-c", str(config)]) == exitcodes.USAGE


def test_a_permanent_failure_parks_at_once_and_success_clears_it(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        parked = store.note_failures("main", "import", None, [
            Failure("gid://shopify/Customer/1", "link conflict", permanent=True),
            Failure("gid://shopify/Customer/2", "timeout"),
        ])
        assert parked == {"gid://shopify/Customer/1"}
        assert store.count_parked("main") == 1
        assert store.note_failures("main", "import", None, [
            Failure("gid://shopify/Customer/2", "timeout")
        ], park_after=2) == {"gid://shopify/Customer/2"}
        assert store.clear_attention("main", "import", ["gid://shopify/Customer/1"]) == 1
        assert [a.record for a in store.attention("main")] == ["gid://shopify/Customer/2"]
    finally:
        store.close()


def _address() -> ShopifyAddress:
    return ShopifyAddress(default=True, first_name="Jane", last_name="Doe",
                          address1="1 Main St", zip="94103", city="San Francisco",
                          country_code="US", province_code="CA")


def test_two_shopify_customers_for_one_erp_customer_is_a_planned_skip(
    setup: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    make_erp(setup.erp_url, [ErpCustomer(no="C00001", name="Jane Doe", email="jane@example.com",
                                         phone="+14155550100", country_code="US")])
    first, second = seed_from_models(setup.double, [
        ShopifyCustomer(id="", first_name="Jane", last_name="Doe", email="jane@example.com",
                        addresses=(_address(),)),
        ShopifyCustomer(id="", first_name="Jane", last_name="Doe", email="other@example.com",
                        phone="+14155550100", addresses=(_address(),)),
    ])
    config = setup.config(IMPORT_SETTINGS)
    capsys.readouterr()
    assert main(["plan", "-c", str(config), "--direction", "import", "-o", "json"]) in (0, 2)
    decisions = {d["record"]: d for d in json.loads(capsys.readouterr().out)["decisions"]}
    assert decisions[first]["action"] in ("link", "update")
    skipped = decisions[second]
    assert skipped["action"] == "skip" and skipped["reason_code"] == "linked-to-another"
    assert first in skipped["message"] and "C00001" in skipped["message"]

    assert _sync(config, "--direction", "import") == exitcodes.OK  # a skip, not a failure
    store = open_store(setup.state_url)
    try:
        assert {link.shopify_id: link.erp_no for link in store.links("main")} == {
            first: "C00001"
        }
        assert store.cursor("main", "import") is not None
    finally:
        store.close()
    # unlinking the first lets the next run link the second
    assert main(["attention", "unlink", first, "-c", str(config)]) == 0
    store = open_store(setup.state_url)
    try:
        store.save_link(Link("main", second, "C00001"))
        assert store.link_for_shopify("main", first) is None
    finally:
        store.close()


def test_attention_commands_say_what_is_wrong(setup: Any) -> None:
    make_erp(setup.erp_url, [])
    config = setup.config(IMPORT_SETTINGS)
    assert main(["attention", "list", "-c", str(config), "--shop", "nope"]) == exitcodes.USAGE
    # no state database yet: said, not created by a read
    assert main(["attention", "show", "C1", "-c", str(config)]) == exitcodes.ERROR
    open_store(setup.state_url).close()
    assert main(["attention", "show", "C1", "-c", str(config)]) == exitcodes.USAGE
    assert main(["attention", "unlink", "123", "-c", str(config)]) == exitcodes.USAGE
    assert main(["attention"]) == exitcodes.USAGE
