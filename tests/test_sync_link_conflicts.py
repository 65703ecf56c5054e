"""One Shopify customer maps to one ERP customer: a second ERP customer with the same e-mail
does not take over (or silently drop) a link made earlier, in the state or in the same run.

End to end on a real SQLite ERP and state and the Shopify double over loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.erp_sql import open_writer
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import (
    Action,
    Decision,
    Direction,
    ErpCustomer,
    FieldChange,
    Link,
    ShopifyAddress,
    ShopifyCustomer,
)
from custsync.engine.run.state import open_store

from sync_world import make_erp, write_config

#: examples/custsync.yaml's settings: import everything, export_customers on
SETTINGS = {
    "customer_import": "all_customers",
    "shopify_can_update_customers": True,
    "auto_create_unknown_customers": True,
    "export_customers": True,
}

#: examples/world: two ERP customers with the same e-mail (case aside), one Shopify customer
TWINS = (
    ErpCustomer(
        no="C00010",
        name="Jane Doe",
        contact="Jane Doe",
        address="1 Market St",
        city="San Francisco",
        post_code="94105",
        county="CA",
        country_code="US",
        phone="415 555 0101",
        email="jane.doe@example.com",
    ),
    ErpCustomer(
        no="C00120",
        name="Jane Doe (second account)",
        contact="Jane Doe",
        address="1 Market St",
        city="San Francisco",
        post_code="94105",
        county="CA",
        country_code="US",
        email="Jane.Doe@example.com",
    ),
)

JANE = ShopifyCustomer(
    id="",
    first_name="Jane",
    last_name="Doe",
    email="jane.doe@example.com",
    addresses=(
        ShopifyAddress(
            default=True,
            first_name="Jane",
            last_name="Doe",
            address1="100 Mission St",
            zip="94105",
            city="San Francisco",
            country_code="US",
            province_code="CA",
        ),
    ),
)


def _make_world(tmp_path: Path, store: ShopifyDouble, shopify: list[ShopifyCustomer]) -> Any:
    """The TWINS ERP, a store with ``shopify`` and a config of SETTINGS."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url, TWINS)
    seed_from_models(store, shopify)

    class World:
        erp = erp_url
        state = state_url
        double = store
        folder = tmp_path
        config = write_config(
            tmp_path,
            shop_url=store.url,
            erp_url=erp_url,
            state_url=state_url,
            settings=SETTINGS,
            token=store.token,
        )

    return World()


@pytest.fixture
def world(tmp_path: Path, shopify_double: ShopifyDouble) -> Any:
    made = _make_world(tmp_path, shopify_double, [JANE])
    made.jane = shopify_double.store.customers()[0]["id"]
    return made


def _plan(world: Any, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["plan", "-c", str(world.config), "-o", "json", *extra]) == exitcodes.OK
    plan: dict[str, Any] = json.loads(capsys.readouterr().out)
    return plan


def _sync(world: Any, *extra: str) -> int:
    return main(["sync", "-c", str(world.config), "--no-progress", *extra])


def _export_decision(plan: dict[str, Any], record: str) -> dict[str, Any]:
    return next(
        d for d in plan["decisions"] if d["direction"] == "export" and d["record"] == record
    )


def _outcomes(world: Any) -> dict[tuple[str, str], Any]:
    """(direction, record) -> outcome of the latest run of each direction."""
    store = open_store(world.state)
    try:
        found: dict[tuple[str, str], Any] = {}
        for run in reversed(store.runs("main")):
            for outcome in store.outcomes(run.id):
                found[(run.direction, outcome.record)] = outcome
        return found
    finally:
        store.close()


def _links(world: Any) -> dict[str, str]:
    store = open_store(world.state)
    try:
        return {link.shopify_id: link.erp_no for link in store.links("main")}
    finally:
        store.close()


def test_first_run_both_directions_keeps_the_first_link_and_skips_the_twin(
    world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(world, capsys)
    twin = _export_decision(plan, "C00120")
    assert (twin["action"], twin["reason_code"]) == ("skip", "already-exists")
    assert "C00010" in twin["message"]
    first = _export_decision(plan, "C00010")
    assert first["action"] in ("link", "update") and first["shopify_id"] == world.jane

    assert _sync(world) == exitcodes.OK

    assert _links(world) == {world.jane: "C00010"}
    outcomes = _outcomes(world)
    skipped = outcomes[("export", "C00120")]
    assert skipped.status == "skipped" and skipped.reason.startswith("already-exists")
    assert "C00010" in skipped.reason
    # plan == sync: every planned decision was applied as planned
    for decision in plan["decisions"]:
        outcome = outcomes[(decision["direction"], decision["record"])]
        assert outcome.action == f"{decision['direction']}.{decision['action']}"


def test_export_only_run_adopts_once_the_lowest_number_wins(
    world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _plan(world, capsys, "--direction", "export")
    assert _export_decision(plan, "C00010")["shopify_id"] == world.jane
    assert _export_decision(plan, "C00120")["reason_code"] == "already-exists"

    assert _sync(world, "--direction", "export") == exitcodes.OK

    assert _links(world) == {world.jane: "C00010"}
    assert _outcomes(world)[("export", "C00120")].status == "skipped"


def test_a_link_in_the_state_is_not_taken_over_by_a_later_run(
    world: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _sync(world) == exitcodes.OK
    erp = open_writer(world.erp)
    try:  # the twin changes: the next export run looks at it again
        assert erp.update_customer("C00120", {"city": "Oakland"}).ok
    finally:
        erp.close()

    plan = _plan(world, capsys, "--direction", "export")
    assert [d["record"] for d in plan["decisions"]] == ["C00120"]
    assert _export_decision(plan, "C00120")["reason_code"] == "already-exists"
    assert _sync(world, "--direction", "export") == exitcodes.OK
    assert _links(world) == {world.jane: "C00010"}


@pytest.fixture
def applier(world: Any) -> Iterator[Callable[[Any, str], Any]]:
    """``applier(store, direction)``: an Applier of a new run with the real ERP and Shopify
    writers (closed after the test)."""
    from custsync.connectors.erp_sql import open_writer as open_erp
    from custsync.engine.config import require_config
    from custsync.engine.run.apply import Applier
    from custsync.engine.run.sync import open_shopify_writer_for

    shop_config = require_config(world.config).shops[0]
    opened: list[Any] = []

    def make(store: Any, direction: str) -> Any:
        erp, shopify = open_erp(world.erp), open_shopify_writer_for(shop_config)
        opened.extend((erp, shopify))
        run_id = store.start_run("main", direction, datetime.now(UTC))
        return Applier(shop="main", run_id=run_id, state=store, erp=erp, shopify=shopify)

    yield make
    for writer in opened:
        writer.close()


def test_applying_a_link_to_a_shopify_customer_linked_elsewhere_fails_and_keeps_it(
    world: Any, applier: Callable[[Any, str], Any]
) -> None:
    """A decision that would link Shopify customer 1001 to C00120 while it is linked to
    C00010 (a saved plan, a concurrent run, a user rule) used to move the link silently."""
    store = open_store(world.state)
    try:
        store.save_link(Link("main", world.jane, "C00010"))
        exporting = applier(store, "export")
        adopt = Decision(
            direction=Direction.EXPORT,
            action=Action.UPDATE,
            shop="main",
            record="C00120",
            erp_no="C00120",
            shopify_id=world.jane,
            changes=(FieldChange("last_name", "Doe", "Doe (second account)"),),
            new_link=True,
        )
        outcome = exporting.apply(adopt)
        assert outcome.status == "failed"
        assert outcome.permanent  # trying again cannot help: parked at once (attention list)
        assert "already linked to ERP customer C00010" in outcome.message
        assert world.double.mutation_count() == 0  # nothing written to Shopify
        importing = applier(store, "import")
        before = importing.erp.get_customer("C00120")
        update = Decision(
            direction=Direction.IMPORT,
            action=Action.UPDATE,
            shop="main",
            record=world.jane,
            erp_no="C00120",
            shopify_id=world.jane,
            changes=(FieldChange("city", "San Francisco", "Oakland"),),
            new_link=True,
        )
        assert importing.apply(update).status == "failed"
        assert importing.erp.get_customer("C00120") == before  # the ERP was not written
        assert {link.shopify_id: link.erp_no for link in store.links("main")} == {
            world.jane: "C00010"
        }
        [failed] = store.failures(exporting.run_id)
        assert failed.record == "C00120" and "C00010" in failed.reason
    finally:
        store.close()


def test_a_link_to_a_deleted_erp_customer_moves_to_the_new_match(
    world: Any, applier: Callable[[Any, str], Any]
) -> None:
    store = open_store(world.state)
    try:
        store.save_link(Link("main", world.jane, "C00999"))  # no such ERP customer (deleted)
        importing = applier(store, "import")
        link = Decision(
            direction=Direction.IMPORT,
            action=Action.LINK,
            shop="main",
            record=world.jane,
            erp_no="C00010",
            shopify_id=world.jane,
            new_link=True,
        )
        assert importing.apply(link).status == "ok"
        assert {link.shopify_id: link.erp_no for link in store.links("main")} == {
            world.jane: "C00010"
        }
    finally:
        store.close()


def test_a_shopify_customer_the_import_creates_from_is_not_adopted_as_well(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """The import matches e-mails as whole values, the export by the first of several: the
    import creates an ERP customer for Jane (and links her to it) while the export of the ERP
    customer whose first e-mail is Jane's would adopt her too, and fail when applied."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(
        erp_url,
        [
            ErpCustomer(
                no="C00200",
                name="Doe Family",
                country_code="US",
                email="jane.doe@example.com; john.doe@example.com",
            )
        ],
    )
    seed_from_models(shopify_double, [JANE])
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=state_url,
        settings={**SETTINGS, "customer_template_code": "RETAIL"},
        token=shopify_double.token,
    )
    capsys.readouterr()
    assert main(["plan", "-c", str(config), "-o", "json"]) == exitcodes.OK
    plan = json.loads(capsys.readouterr().out)
    assert [(d["direction"], d["action"]) for d in plan["decisions"]] == [
        ("import", "create"),
        ("export", "skip"),
    ]
    skipped = _export_decision(plan, "C00200")
    assert skipped["reason_code"] == "already-exists" and "(new)" in skipped["message"]

    assert main(["sync", "-c", str(config), "--no-progress"]) == exitcodes.OK
    store = open_store(state_url)
    try:
        [link] = store.links("main")
        assert link.erp_no != "C00200"  # the customer the import created
    finally:
        store.close()


def test_two_new_erp_customers_with_one_email_create_one_shopify_customer(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody in Shopify has the e-mail yet: the lower number creates the customer, the twin
    finds it (as linked to the first) and is skipped as already-exists, in plan and sync,
    instead of failing on Shopify's "Email has already been taken"."""
    world = _make_world(tmp_path, shopify_double, [])
    config = world.config
    capsys.readouterr()
    assert main(["plan", "-c", str(config), "-o", "json", "--direction", "export"]) == exitcodes.OK
    plan = json.loads(capsys.readouterr().out)
    assert _export_decision(plan, "C00010")["action"] == "create"
    twin = _export_decision(plan, "C00120")
    assert (twin["action"], twin["reason_code"]) == ("skip", "already-exists")
    assert "C00010" in twin["message"]

    assert main(["sync", "-c", str(config), "--no-progress", "--direction", "export"]) == (
        exitcodes.OK
    )
    [created] = shopify_double.store.customers()
    assert created["email"] == "jane.doe@example.com"
    assert _links(world) == {created["id"]: "C00010"}
    outcome = _outcomes(world)[("export", "C00120")]
    assert outcome.status == "skipped" and outcome.reason.startswith("already-exists")
