"""A record the target refuses for good is parked at once, with the target's message; a
transient failure is not.

Shopify's ``userErrors`` (the Shopify double validates as Shopify does), the SQL ERP's
validation (a real SQLite file) and Business Central's validation answers (the BC double over
loopback): the record is on the attention list after one run, ``permanent``, no longer holds
the cursor, is not sent again while it is unchanged, and goes through once it changes. A 503
or THROTTLED answer leaves its record ``failing`` (tried again by the next run).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.bc_double import BcDouble
from custsync.connectors.erp_sql import open_reader, open_writer
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.config import require_config
from custsync.engine.model import (
    Action,
    Decision,
    Direction,
    ErpCustomer,
    FieldChange,
    ShopifyAddress,
    ShopifyCustomer,
)
from custsync.engine.run.apply import Applier
from custsync.engine.run.state import open_store
from custsync.engine.run.sync import open_shopify_writer_for

from bc_world import write_bc_config
from sync_world import EXPORT_SETTINGS, IMPORT_SETTINGS, make_erp, write_config

#: our rules accept it (one @, a dot in the domain); Shopify answers "Email is invalid"
REFUSED_EMAIL = "refused@example..com"


def _sync(config: Path, *extra: str) -> int:
    return main(["sync", "-c", str(config), "--no-progress", *extra])


def _attention(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["attention", "list", "-c", str(config), "-o", "json"]) == 0
    return {r["record"]: r for r in json.loads(capsys.readouterr().out)["records"]}


def _requests(double: ShopifyDouble, operation: str) -> int:
    return sum(1 for r in double.requests if operation in r.root_fields)


def _shop_customer(i: int, **fields: Any) -> ShopifyCustomer:
    values: dict[str, Any] = {
        "id": "",
        "first_name": "Shop",
        "last_name": f"Person {i}",
        "email": f"shop{i}@example.com",
        "addresses": (
            ShopifyAddress(
                default=True,
                first_name="Shop",
                last_name=f"Person {i}",
                address1=f"{i} Damrak",
                zip="1012 AB",
                city="Amsterdam",
                country_code="NL",
            ),
        ),
    }
    values.update(fields)
    return ShopifyCustomer(**values)


def test_shopify_user_errors_park_at_once_and_a_503_does_not(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(
        erp_url,
        [
            ErpCustomer(no="C00001", name="Refused Person", email=REFUSED_EMAIL, country_code="NL"),
            ErpCustomer(no="C00002", name="Good Person", email="good@example.com", country_code="NL"),
        ],
    )
    config = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url, state_url=state_url,
        settings=EXPORT_SETTINGS, token=shopify_double.token,
        # one create at a time, in ERP order: the fault below lets the first through
        # (the refused one) and must hit the second; with creates in flight together
        # either could come second
        shopify_options={"concurrency": 1},
    )
    # the good record meets a 503 on every try of this run: transient
    shopify_double.inject(
        Fault(kind="status", status=503, times=10_000, operation="customerCreate", skip=1)
    )
    assert _sync(config, "--direction", "export") == exitcodes.PARTIAL
    records = _attention(config, capsys)
    refused, transient = records["C00001"], records["C00002"]
    assert (refused["status"], refused["failures"], refused["permanent"]) == ("parked", 1, True)
    assert "Email is invalid" in refused["reason"]
    assert REFUSED_EMAIL not in json.dumps(records)  # the list masks contact data
    assert (transient["status"], transient["permanent"]) == ("failing", False)
    assert "503" in transient["reason"]

    # the transient one is sent again and goes through; the refused one is not sent again
    shopify_double.clear_faults()
    sent = _requests(shopify_double, "customerCreate")
    assert _sync(config, "--direction", "export") == exitcodes.OK
    assert _requests(shopify_double, "customerCreate") == sent + 1
    assert [c["email"] for c in shopify_double.store.customers()] == ["good@example.com"]
    assert list(_attention(config, capsys)) == ["C00001"]

    # fixed in the ERP: it comes back by itself and goes through
    erp = open_writer(erp_url)
    try:
        customer = erp.get_customer("C00001")
        assert customer is not None
        assert erp.update_customer(
            "C00001", {"email": "fixed@example.com"}, expected_etag=customer.etag
        ).ok
    finally:
        erp.close()
    assert _sync(config, "--direction", "export") == exitcodes.OK
    assert _attention(config, capsys) == {}
    assert shopify_double.store.count() == 2


def test_a_shopify_update_refused_is_parked_and_throttling_is_not(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """customerUpdate's userErrors (an e-mail another Shopify customer has) park the record;
    THROTTLED answers that outlast the retries leave it failing."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(
        erp_url,
        [
            ErpCustomer(no=f"C0000{i}", name=f"Person {i}", email=f"p{i}@example.com",
                        country_code="NL")
            for i in (1, 2, 3)
        ],
    )
    config = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url, state_url=state_url,
        settings=EXPORT_SETTINGS, token=shopify_double.token,
    )
    assert _sync(config, "--direction", "export") == exitcodes.OK
    assert shopify_double.store.count() == 3
    erp = open_writer(erp_url)
    try:
        for no, email in (("C00001", "p2@example.com"), ("C00003", "p3.new@example.com")):
            customer = erp.get_customer(no)
            assert customer is not None
            assert erp.update_customer(no, {"email": email}, expected_etag=customer.etag).ok
    finally:
        erp.close()
    # C00003's update meets THROTTLED on every try (C00001's goes first: ERP number order)
    shopify_double.inject(
        Fault(kind="throttle", times=10_000, operation="customerUpdate", skip=1)
    )
    assert _sync(config, "--direction", "export") == exitcodes.PARTIAL
    records = _attention(config, capsys)
    assert (records["C00001"]["status"], records["C00001"]["permanent"]) == ("parked", True)
    assert "Email has already been taken" in records["C00001"]["reason"]
    assert (records["C00003"]["status"], records["C00003"]["permanent"]) == ("failing", False)


def test_sql_erp_validation_parks_an_import_at_once(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url)
    # a country the ERP's country table does not have: the ERP refuses the code
    tokyo = ShopifyAddress(
        default=True, first_name="Shop", last_name="Person 1", address1="1 Chiyoda",
        zip="100-0001", city="Tokyo", country_code="JP",
    )
    seed_from_models(shopify_double, [_shop_customer(1, addresses=(tokyo,)), _shop_customer(2)])
    config = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url, state_url=state_url,
        settings=IMPORT_SETTINGS, token=shopify_double.token,
    )
    assert _sync(config, "--direction", "import") == exitcodes.PARTIAL
    records = _attention(config, capsys)
    assert len(records) == 1
    ((gid, record),) = records.items()
    assert (record["status"], record["failures"], record["permanent"]) == ("parked", 1, True)
    assert "unknown country/region code 'JP'" in record["reason"]
    store = open_store(state_url)
    try:
        assert store.cursor("main", "import") is not None  # parked: it holds no cursor
    finally:
        store.close()
    reader = open_reader(erp_url)
    try:
        assert [c.email for c in reader.iter_customers()] == ["shop2@example.com"]
    finally:
        reader.close()
    # retried on demand: refused again, still parked, no second ERP customer
    assert main(["attention", "retry", gid, "-c", str(config)]) == 0
    assert _sync(config, "--direction", "import") == exitcodes.PARTIAL
    again = _attention(config, capsys)[gid]
    assert (again["status"], again["failures"]) == ("parked", 2)


def test_business_central_validation_parks_at_once(
    tmp_path: Path,
    bc_double: BcDouble,
    shopify_double: ShopifyDouble,
    capsys: pytest.CaptureFixture[str],
) -> None:
    long_email = "y" * 75 + "@example.com"  # BC refuses an e-mail over 80 characters
    seed_from_models(shopify_double, [_shop_customer(1), _shop_customer(2, email=long_email)])
    config = write_bc_config(
        tmp_path,
        bc_double,
        shop_url=shopify_double.url,
        token=shopify_double.token,
        settings={**IMPORT_SETTINGS, "customer_template_code": "US-RETAIL"},
    )
    assert _sync(config, "--direction", "import") == exitcodes.PARTIAL
    records = _attention(config, capsys)
    assert len(records) == 1
    (record,) = records.values()
    assert (record["status"], record["failures"], record["permanent"]) == ("parked", 1, True)
    assert record["reason"].startswith("Application_DialogException: The email address")
    assert "yyyy" not in record["reason"]


def test_a_phone_shopify_says_is_taken_is_adopted_when_unlinked_else_refused(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    """A create answered "Phone has already been taken" (the customer an interrupted run
    created, not yet in the search index the plan used) adopts that customer when it is
    linked to nobody; linked to another ERP customer, the refusal stands and parks."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url)
    config = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url, state_url=state_url,
        settings=EXPORT_SETTINGS, token=shopify_double.token,
    )
    seed_from_models(shopify_double, [_shop_customer(1, email="", phone="+31612340001")])
    (existing,) = shopify_double.store.customers()

    def create(no: str) -> Decision:
        return Decision(
            direction=Direction.EXPORT, action=Action.CREATE, shop="main", record=no,
            erp_no=no,
            changes=(
                FieldChange("last_name", None, f"Person {no}"),
                FieldChange("phone", None, "+31612340001"),
            ),
        )

    shopify = open_shopify_writer_for(require_config(config).shops[0])
    store = open_store(state_url)
    try:
        run_id = store.start_run("main", "export", datetime.now(UTC))
        applier = Applier(shop="main", run_id=run_id, state=store, shopify=shopify)
        (adopted,) = applier.apply_export_creates([create("C00001")])
        assert (adopted.status, adopted.shopify_id) == ("ok", existing["id"])
        assert "adopted the existing Shopify customer with phone" in adopted.message
        assert "+31612340001" not in adopted.message  # masked
        (refused,) = applier.apply_export_creates([create("C00002")])
        assert (refused.status, refused.permanent) == ("failed", True)
        assert "Phone has already been taken" in refused.message
        assert {link.erp_no: link.shopify_id for link in store.links("main")} == {
            "C00001": existing["id"]
        }
        assert shopify_double.store.count() == 1
    finally:
        store.close()
        shopify.close()
