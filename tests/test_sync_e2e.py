"""End to end: `custsync sync` on a real SQLite ERP and the Shopify double over loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.erp_sql import open_reader, open_writer
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.config import require_config
from custsync.engine.model import ErpCustomer, ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import open_store
from custsync.engine.run.sync import run_sync

from sync_world import EXPORT_SETTINGS, IMPORT_SETTINGS, make_erp, write_config


def _address(**fields: Any) -> ShopifyAddress:
    base = {
        "default": True,
        "first_name": "Jane",
        "last_name": "Doe",
        "address1": "1 Main Street",
        "zip": "94103",
        "city": "San Francisco",
        "country_code": "US",
        "province_code": "CA",
    }
    base.update(fields)
    return ShopifyAddress(**base)


def _shopify(email: str, first: str = "Jane", last: str = "Doe", **fields: Any) -> ShopifyCustomer:
    return ShopifyCustomer(id="", first_name=first, last_name=last, email=email, **fields)


def _erp_customers(url: str) -> list[ErpCustomer]:
    reader = open_reader(url)
    try:
        return list(reader.iter_customers())
    finally:
        reader.close()


@pytest.fixture
def setup(tmp_path: Path, shopify_double: ShopifyDouble) -> Any:
    class Setup:
        double = shopify_double
        erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        folder = tmp_path

        def config(self, settings: Any, countries: Any = ()) -> Path:
            return write_config(
                tmp_path,
                shop_url=shopify_double.url,
                erp_url=self.erp_url,
                state_url=self.state_url,
                settings=settings,
                countries=countries,
                token=shopify_double.token,
            )

    return Setup()


def _sync(config: Path, *extra: str) -> int:
    return main(["sync", "--config", str(config), "--no-progress", *extra])


def test_import_matches_creates_from_template_and_reports_pos_customer(setup: Any) -> None:
    make_erp(setup.erp_url, [ErpCustomer(no="C00001", name="Jane Doe", email="jane@example.com")])
    seed_from_models(
        setup.double,
        [
            _shopify("JANE@example.com", addresses=(_address(),)),
            _shopify("new@example.com", "Max", "Power", addresses=(_address(first_name="Max"),)),
            _shopify("pos@example.com", "Pos", "Only"),
        ],
    )
    config = setup.config(IMPORT_SETTINGS)

    assert _sync(config, "--direction", "import") == exitcodes.OK

    customers = {c.email: c for c in _erp_customers(setup.erp_url)}
    assert set(customers) == {"jane@example.com", "new@example.com"}
    created = customers["new@example.com"]
    assert created.extra["gen_bus_posting_group"] == "DOMESTIC"  # from template RETAIL
    assert created.city == "San Francisco" and created.country_code == "US"
    store = open_store(setup.state_url)
    try:
        links = {link.erp_no for link in store.links("main")}
        assert links == {"C00001", created.no}
        run = store.runs("main")[0]
        assert run.status == "succeeded"
        outcomes = {o.record: o for o in store.outcomes(run.id)}
        pos = next(o for o in outcomes.values() if o.status == "skipped")
        assert "no address" in pos.reason
        assert store.cursor("main", "import") is not None
    finally:
        store.close()


def test_export_sends_e164_adopts_existing_and_skips_invalid(setup: Any) -> None:
    make_erp(
        setup.erp_url,
        [
            ErpCustomer(
                no="C00001",
                name="Ann Lee",
                email="ann@example.com",
                phone="(415)555-0123",
                country_code="US",
                city="San Francisco",
            ),
            ErpCustomer(
                no="C00002", name="Bad Mail", email="bad(at)example.com", country_code="NL"
            ),
            ErpCustomer(
                no="C00003", name="Already There", email="there@example.com", country_code="NL"
            ),
        ],
    )
    seed_from_models(setup.double, [_shopify("THERE@example.com", "Already", "There")])
    config = setup.config(EXPORT_SETTINGS)

    assert _sync(config, "--direction", "export") == exitcodes.OK

    by_email = {c["email"]: c for c in setup.double.store.customers()}
    assert by_email["ann@example.com"]["phone"] == "+14155550123"
    assert "bad(at)example.com" not in by_email
    assert len(setup.double.store.customers()) == 2  # created one, adopted one
    store = open_store(setup.state_url)
    try:
        linked = {link.erp_no: link.shopify_id for link in store.links("main")}
        # adopted as it is: an e-mail differing only in case is not rewritten
        assert linked["C00003"] == by_email["THERE@example.com"]["id"]
        assert linked["C00001"] == by_email["ann@example.com"]["id"]
        assert "C00002" not in linked
    finally:
        store.close()


def test_an_email_differing_only_in_case_is_written_on_neither_side(setup: Any) -> None:
    make_erp(
        setup.erp_url,
        [
            ErpCustomer(
                no="C00001",
                name="Jane Doe",
                email="Jane.Doe@Example.com",
                country_code="US",
                address="1 Main Street",
                post_code="94103",
                city="Oldtown",
                county="CA",
            )
        ],
    )
    seed_from_models(setup.double, [_shopify("jane.doe@example.com", addresses=(_address(),))])
    updates = {"customer_import": "all_customers", "name_source": "first_and_last_name"}

    importing = setup.config({**updates, "shopify_can_update_customers": True})
    assert _sync(importing, "--direction", "import") == exitcodes.OK
    [erp] = _erp_customers(setup.erp_url)
    assert (erp.city, erp.email) == ("San Francisco", "Jane.Doe@Example.com")

    writer = open_writer(setup.erp_url)
    try:
        assert writer.update_customer("C00001", {"phone": "415 555 0100"}).ok
    finally:
        writer.close()
    exporting = setup.config({**updates, "can_update_shopify_customers": True})
    setup.double.reset_log()
    assert _sync(exporting, "--direction", "export") == exitcodes.OK
    assert setup.double.mutation_count() > 0  # the phone (the double keeps an e-mail's case)
    [shopify] = setup.double.store.customers()
    assert (shopify["phone"], shopify["email"]) == ("+14155550100", "jane.doe@example.com")

    assert _sync(importing, "--direction", "import", "--full") == exitcodes.OK
    [erp] = _erp_customers(setup.erp_url)
    assert erp.email == "Jane.Doe@Example.com"


def test_second_sync_is_incremental_and_writes_nothing(setup: Any) -> None:
    make_erp(
        setup.erp_url,
        [
            ErpCustomer(
                no=f"C{i:05d}", name=f"Person {i}", email=f"p{i}@example.com", country_code="NL"
            )
            for i in range(1, 31)
        ],
    )
    config = setup.config({**EXPORT_SETTINGS})
    assert _sync(config) == exitcodes.OK
    assert setup.double.store.count() == 30
    setup.double.reset_log()

    assert _sync(config) == exitcodes.OK

    assert setup.double.mutation_count() == 0
    assert len(setup.double.requests) <= 3  # a page of changed customers, nothing per record


def test_failed_records_keep_the_cursor_and_the_next_run_finishes(setup: Any) -> None:
    make_erp(
        setup.erp_url,
        [
            ErpCustomer(
                no=f"C{i:05d}", name=f"Person {i}", email=f"p{i}@example.com", country_code="NL"
            )
            for i in range(1, 6)
        ],
    )
    config = setup.config(EXPORT_SETTINGS)
    setup.double.inject(Fault(kind="status", status=503, times=200, operation="customerCreate"))

    code = _sync(config, "--direction", "export")

    # every create answered 5xx: the creates go as one batch (sent whole before a run can
    # stop for an outage: tests/test_sync_outages.py), so the run ends partial, cursor kept
    assert code == exitcodes.PARTIAL
    store = open_store(setup.state_url)
    try:
        assert store.cursor("main", "export") is None
    finally:
        store.close()
    setup.double.clear_faults()
    assert _sync(config, "--direction", "export") == exitcodes.OK
    assert setup.double.store.count() == 5
    emails = [c["email"] for c in setup.double.store.customers()]
    assert len(emails) == len(set(emails))


def test_sync_json_output_and_runs_listing(setup: Any, capsys: pytest.CaptureFixture[str]) -> None:
    make_erp(
        setup.erp_url,
        [ErpCustomer(no="C00001", name="A B", email="ab@example.com", country_code="NL")],
    )
    config = setup.config(EXPORT_SETTINGS)
    assert _sync(config, "-o", "json") == exitcodes.OK
    result = json.loads(capsys.readouterr().out)
    assert result[0]["shop"] == "main" and result[0]["counts"]["created"] == 1
    assert main(["runs", "--config", str(config)]) == exitcodes.OK
    assert "succeeded" in capsys.readouterr().out


def test_a_second_sync_of_the_same_shop_is_refused_while_one_runs(setup: Any) -> None:
    make_erp(setup.erp_url, [])
    config = setup.config(EXPORT_SETTINGS)
    store = open_store(setup.state_url)
    try:
        assert store.acquire_lease("shop:main", "someone-else", 60)
        assert _sync(config) == exitcodes.LOCKED
    finally:
        store.close()


def test_sync_applies_a_saved_plan_and_refuses_a_stale_one(
    setup: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    make_erp(
        setup.erp_url,
        [ErpCustomer(no="C00001", name="Ann Lee", email="ann@example.com", country_code="NL")],
    )
    seed_from_models(setup.double, [_shopify("ann@example.com", "Ann", "Lee")])
    config = setup.config({**EXPORT_SETTINGS})
    assert _sync(config) == exitcodes.OK  # links C00001 to the Shopify customer
    erp = open_writer(setup.erp_url)
    try:
        assert erp.update_customer("C00001", {"name": "Ann Lee-Berg"}).ok
    finally:
        erp.close()
    plan_file = setup.folder / "plan.json"
    assert main(["plan", "-c", str(config), "--out", str(plan_file)]) == exitcodes.OK
    capsys.readouterr()
    # someone edits the Shopify customer after the plan was made: the plan is stale
    customer = setup.double.store.customers()[0]
    setup.double.store.update_customer(customer["id"], {"note": "edited in the admin"})
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.ERROR
    assert "stale" in capsys.readouterr().out

    def company() -> str:
        return str(setup.double.store.customers()[0]["addresses"][0]["company"])

    assert company() == "Ann Lee"  # name_source = company_name: Name is the company
    # a fresh plan applies, exactly
    assert main(["plan", "-c", str(config), "--out", str(plan_file)]) == exitcodes.OK
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.OK
    assert company() == "Ann Lee-Berg"
    # and then the two sides agree: nothing left to do
    capsys.readouterr()
    assert main(["plan", "-c", str(config), "--full", "--detailed-exitcode"]) == exitcodes.OK


@pytest.mark.postgres
def test_sync_with_erp_and_state_on_postgresql(
    pg_url: str, tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    make_erp(
        pg_url,
        [ErpCustomer(no="C00001", name="Jane Doe", email="jane@example.com", country_code="NL")],
    )
    seed_from_models(
        shopify_double,
        [_shopify("new@example.com", "Max", "Power", addresses=(_address(first_name="Max"),))],
    )
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=pg_url,
        state_url=pg_url,
        token=shopify_double.token,
        settings={**IMPORT_SETTINGS, "export_customers": True},
    )
    assert _sync(config) == exitcodes.OK
    emails = {c.email for c in _erp_customers(pg_url)}
    assert emails == {"jane@example.com", "new@example.com"}
    assert {c["email"] for c in shopify_double.store.customers()} == emails
    store = open_store(pg_url)
    try:
        assert len(list(store.links("main"))) == 2
        assert store.cursor("main", "import") is not None
        assert store.cursor("main", "export") is not None
    finally:
        store.close()


def test_a_stop_while_reading_ends_the_run_within_a_page(setup: Any) -> None:
    """SIGTERM while a first run reads a large store (minutes on a throttled bucket) used to
    take effect only after the whole read; now the run ends at the next customer read:
    abandoned, nothing written, cursor unmoved."""
    make_erp(setup.erp_url)
    seed_from_models(
        setup.double,
        [_shopify(f"p{i}@example.com", f"P{i}", addresses=(_address(),)) for i in range(600)],
    )
    config_path = setup.config(IMPORT_SETTINGS)
    config = require_config(config_path)

    def pages_read() -> int:
        return sum(1 for r in setup.double.requests if r.executed and "customers" in r.root_fields)

    class StopAfterTheFirstPage:  # a signal that arrives while the first page is read
        reason = "SIGTERM received"

        def is_set(self) -> bool:
            return pages_read() >= 1

    store = open_store(setup.state_url)
    try:
        result = run_sync(config, "main", "import", state=store, stop=StopAfterTheFirstPage())
        assert (result.status, result.error) == ("abandoned", "SIGTERM received")
        assert pages_read() == 1  # of three or more
        [run] = store.runs("main")
        assert (run.status, run.error) == ("abandoned", "SIGTERM received")
        assert store.cursor("main", "import") is None
    finally:
        store.close()
    assert _erp_customers(setup.erp_url) == []
    assert setup.double.mutation_count() == 0
    # the same command again reads and applies everything
    assert _sync(config_path, "--direction", "import") == exitcodes.OK
    assert len(_erp_customers(setup.erp_url)) == 600
