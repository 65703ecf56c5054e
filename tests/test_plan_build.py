"""build_plan on a files world with a stand-in engine: bad records, warnings, fingerprints."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from custsync.connectors import files
from custsync.engine.decide.world import World
from custsync.engine.model import (
    Action,
    Decision,
    Direction,
    ErpCustomer,
    ShopContext,
    ShopifyCustomer,
    ShopifyOrder,
)
from custsync.engine.run.planner import build_plan, stream_plan

from plan_helpers import FIXED_TIME, ROOT

EXAMPLE = ROOT / "examples" / "world"


class _Engine:
    """Decides every record as a NOOP and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []

    def decide_import(self, world: World, shop: ShopContext, customer: ShopifyCustomer) -> Decision:
        self.asked.append(("import", shop.name, customer.id))
        return Decision(Direction.IMPORT, Action.NOOP, shop.name, customer.id)

    def decide_export(self, world: World, shop: ShopContext, customer: ErpCustomer) -> Decision:
        self.asked.append(("export", shop.name, customer.no))
        return Decision(Direction.EXPORT, Action.NOOP, shop.name, customer.no)

    def decide_order(self, world: World, shop: ShopContext, order: ShopifyOrder) -> Decision:
        assert order.customer is None or world.shopify_customer(order.customer.id) is not None
        self.asked.append(("order", shop.name, order.id))
        return Decision(Direction.ORDER, Action.LINK, shop.name, order.id, erp_no="C00010")


def _plan(folder: Path, shops: tuple[str, ...] = ("main",), **kwargs: Any) -> tuple[Any, _Engine]:
    engine = _Engine()
    shopify = files.shopify.open_reader(str(folder))
    plan = build_plan(
        shops=[ShopContext(name) for name in shops],
        rules=None,
        erp=files.erp.open_reader(str(folder)),
        shopify=dict.fromkeys(shops, shopify),
        links=files.load_links(folder).records,
        engine=engine,
        now=FIXED_TIME,
        **kwargs,
    )
    return plan, engine


def test_bad_records_become_skips_per_shop_and_problems_are_reported_once() -> None:
    plan, engine = _plan(EXAMPLE, shops=("a", "b"))
    skips = [
        (d.shop, d.direction.value, d.record) for d in plan.decisions if d.action is Action.SKIP
    ]
    assert skips == [
        ("a", "import", "gid://shopify/Customer/1009"),
        ("b", "import", "gid://shopify/Customer/1009"),
        ("a", "export", "C00130"),
        ("b", "export", "C00130"),
    ]
    assert plan.warnings == ()
    assert {shop for _, shop, _ in engine.asked} == {"a", "b"}
    assert plan.summary.counts["noop"] == 2 * (8 + 12)
    assert plan.created_at == FIXED_TIME and plan.shops == ("a", "b")


def test_records_of_unplanned_directions_become_warnings() -> None:
    plan, engine = _plan(EXAMPLE, directions=("import",))
    assert {kind for kind, _, _ in engine.asked} == {"import"}
    assert [w.record for w in plan.warnings] == ["C00130"]
    assert plan.warnings[0].location.endswith("erp_customers.csv:14")
    assert plan.directions == (Direction.IMPORT,)


def test_orders_are_decided_with_their_customer_in_the_world() -> None:
    orders = files.load_orders(EXAMPLE).records
    plan, _ = _plan(EXAMPLE, directions=(), orders={"main": orders})
    assert [d.record for d in plan.decisions] == [o.id for o in orders]
    assert plan.directions == (Direction.ORDER,)


def test_fingerprints_follow_the_data(tmp_path: Path) -> None:
    world = tmp_path / "world"
    shutil.copytree(EXAMPLE, world)
    before, _ = _plan(world, fingerprints={"rules": "sha256:x"})
    assert before.fingerprints["rules"] == "sha256:x"
    again, _ = _plan(world)
    assert again.fingerprints["shopify:main"] == before.fingerprints["shopify:main"]
    path = world / "shopify_customers.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Lena", "Lene"), encoding="utf-8")
    after, _ = _plan(world)
    assert after.fingerprints["shopify:main"] != before.fingerprints["shopify:main"]
    assert after.fingerprints["erp"] == before.fingerprints["erp"]
    assert after.fingerprints["links:main"] == before.fingerprints["links:main"]


def test_a_streamed_plan_says_when_the_deciding_is_over() -> None:
    """``decided`` is called once, after the last shop's records are decided and before the
    skips of bad records (what `plan -o json --out`'s second process settles its spool on)."""
    sunk: list[Decision] = []
    calls: list[int] = []
    shopify = files.shopify.open_reader(str(EXAMPLE))
    stream_plan(
        sunk.append,
        shops=[ShopContext("a"), ShopContext("b")],
        rules=None,
        erp=files.erp.open_reader(str(EXAMPLE)),
        shopify={"a": shopify, "b": shopify},
        links=files.load_links(EXAMPLE).records,
        engine=_Engine(),
        now=FIXED_TIME,
        decided=lambda: calls.append(len(sunk)),
    )
    assert len(calls) == 1
    before, after = sunk[: calls[0]], sunk[calls[0] :]
    assert {d.shop for d in before} == {"a", "b"} and before[-1].shop == "b"
    assert after and all(d.reason_code == "bad-record" for d in after)
