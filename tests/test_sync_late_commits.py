"""Changes that commit (or show up in Shopify's search) after a run started but are stamped
before it are picked up by the next run (issue 10, item 1): a run reads from its cursor minus
``sync.overlap_seconds``; what it reads again is unchanged and written nowhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer, ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import UtcDateTime, make_engine, open_store

from sync_world import EXPORT_SETTINGS, IMPORT_SETTINGS, make_erp, write_config


def _sync(config: Path, direction: str) -> int:
    return main(["sync", "-c", str(config), "--no-progress", "--direction", direction])


def _cities(double: ShopifyDouble) -> list[str]:
    return [str(c["defaultAddress"]["city"]) for c in double.store.customers()]


def test_an_erp_change_committed_after_a_run_started_is_exported_by_the_next(
    db_url: str, tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    make_erp(
        db_url,
        [ErpCustomer(no="C00001", name="Jane Doe", email="jane@example.com",
                     address="1 Canal Street", city="Amsterdam", post_code="1011AB",
                     country_code="NL")],
    )
    config = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=db_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}", settings=EXPORT_SETTINGS,
        token=shopify_double.token,
    )
    assert _sync(config, "export") == exitcodes.OK
    assert _cities(shopify_double) == ["Amsterdam"]

    # an ERP writer stamps modified_at, then holds its transaction open (a long load, a row
    # lock) while the next run starts, reads, succeeds and moves the cursor past the stamp
    writer = make_engine(db_url)
    connection = writer.connect()
    transaction = connection.begin()
    connection.execute(
        sa.text(
            "UPDATE erp_customer SET city = 'Utrecht', modified_at = :stamp, "
            "row_version = row_version + 1 WHERE no = 'C00001'"
        ).bindparams(sa.bindparam("stamp", type_=UtcDateTime)),
        {"stamp": datetime.now(UTC)},
    )
    try:
        assert _sync(config, "export") == exitcodes.OK
        assert _cities(shopify_double) == ["Amsterdam"]  # not committed yet: not visible
    finally:
        transaction.commit()
        connection.close()
        writer.dispose()

    assert _sync(config, "export") == exitcodes.OK
    assert _cities(shopify_double) == ["Utrecht"]  # the next run picked it up

    shopify_double.reset_log()
    assert _sync(config, "export") == exitcodes.OK  # reads it again: unchanged, not rewritten
    assert shopify_double.mutation_count() == 0


def test_a_shopify_change_indexed_after_a_run_is_imported_by_the_next(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url, [])
    config = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url, state_url=state_url,
        settings=IMPORT_SETTINGS, token=shopify_double.token,
    )
    assert _sync(config, "import") == exitcodes.OK
    store = open_store(state_url)
    try:
        cursor = store.cursor("main", "import")
    finally:
        store.close()
    assert cursor is not None
    # updated 20 s before that run started, but only now visible to the search (index lag)
    address = ShopifyAddress(default=True, first_name="Max", last_name="Power",
                             address1="1 Main Street", zip="94103", city="San Francisco",
                             country_code="US", province_code="CA")
    seed_from_models(shopify_double, [ShopifyCustomer(
        id="", first_name="Max", last_name="Power", email="max@example.com",
        addresses=(address,), updated_at=cursor - timedelta(seconds=20),
    )])

    assert _sync(config, "import") == exitcodes.OK
    assert _sync(config, "import") == exitcodes.OK  # read again: not created twice
    reader = open_reader(erp_url)
    try:
        assert [c.email for c in reader.iter_customers()] == ["max@example.com"]
    finally:
        reader.close()


@pytest.mark.parametrize("overlap", [0, 45])
def test_the_overlap_is_configurable(tmp_path: Path, shopify_double: ShopifyDouble,
                                     overlap: int, capsys: Any) -> None:
    """``sync.overlap_seconds`` bounds how far back a run reads: a change stamped 30 s before
    the cursor is read with 45, not with 0."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url, [])
    config = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url, state_url=state_url,
        settings=IMPORT_SETTINGS, token=shopify_double.token,
    )
    text = config.read_text(encoding="utf-8").replace(
        "\n  settings:", f"\n  sync:\n    overlap_seconds: {overlap}\n  settings:", 1
    )
    assert "overlap_seconds" in text
    config.write_text(text, encoding="utf-8")
    assert _sync(config, "import") == exitcodes.OK
    store = open_store(state_url)
    try:
        cursor = store.cursor("main", "import")
    finally:
        store.close()
    assert cursor is not None
    seed_from_models(shopify_double, [ShopifyCustomer(
        id="", first_name="Max", last_name="Power", email="max@example.com",
        updated_at=cursor - timedelta(seconds=30),
    )])
    capsys.readouterr()
    assert main(["plan", "-c", str(config), "--direction", "import"]) == exitcodes.OK
    assert ("Power" in capsys.readouterr().out) is (overlap == 45)
