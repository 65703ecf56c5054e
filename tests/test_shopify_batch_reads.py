"""Reading customers by id in batches (``nodes(ids:)``) over HTTP to the Shopify double."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from custsync.connectors.erp_sql import open_writer
from custsync.connectors.shopify import open_reader
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.connectors.shopify_double.server import RequestLog
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer

from sync_world import EXPORT_SETTINGS, make_erp, write_config
from test_shopify_connector_contract import FAST, TOKEN, seed

MISSING = "gid://shopify/Customer/999999"


def _batch_requests(double: ShopifyDouble) -> list[RequestLog]:
    """The ``nodes(ids:)`` requests (an injected fault answers before the operation is named)."""
    return [r for r in double.requests if "nodes" in r.root_fields]


def test_a_batch_maps_every_id_and_missing_or_deleted_ones_to_none(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(seed_customers=seed(5))
    ids = [c["id"] for c in double.store.customers()]
    double.store.delete_customer(ids[1])
    reader = open_reader(double.url, token=TOKEN, bulk_reads="never", **FAST)
    asked = [ids[0], MISSING, ids[1], ids[4], ids[0], "gid://shopify/Order/1"]
    found = reader.get_customers(asked)
    reader.close()
    assert list(found) == [ids[0], MISSING, ids[1], ids[4], "gid://shopify/Order/1"]
    assert found[MISSING] is None and found[ids[1]] is None
    assert found["gid://shopify/Order/1"] is None  # not a customer's id
    first, fifth = found[ids[0]], found[ids[4]]
    assert first is not None and first.email == "customer0@example.com"
    assert fifth is not None and fifth.addresses and fifth.addresses[0].city == "Springfield"
    assert len(_batch_requests(double)) == 1
    assert not any(r.is_mutation for r in double.requests)


def test_a_batch_reads_the_same_customer_as_a_read_by_id(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(seed_customers=seed(3))
    ids = [c["id"] for c in double.store.customers()]
    reader = open_reader(double.url, token=TOKEN, bulk_reads="never", **FAST)
    found = reader.get_customers(ids)
    singles = {gid: reader.get_customer(gid) for gid in ids}
    reader.close()
    assert found == singles
    assert reader.get_customers([]) == {}


def test_more_than_250_ids_are_split_and_each_request_stays_within_the_limits(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(
        bucket_size=1_000_000, restore_rate=1_000_000.0, seed_customers=seed(600)
    )
    ids = [c["id"] for c in double.store.customers()]
    reader = open_reader(double.url, token=TOKEN, bulk_reads="never", **FAST)
    found = reader.get_customers([*ids, MISSING])
    reader.close()
    assert len(found) == 601 and found[MISSING] is None
    assert sum(1 for c in found.values() if c is not None) == 600
    assert {gid: c.id for gid, c in found.items() if c is not None} == {i: i for i in ids}
    requests = _batch_requests(double)
    assert len(requests) == 3  # 250 + 250 + 101 ids
    # every customer costs its object, its default address and its address list
    assert [r.requested_cost for r in requests] == [750, 750, 303]
    assert [r.actual_cost for r in requests] == [750, 750, 300]


def test_a_batch_shopify_finds_too_costly_is_sent_again_smaller(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(max_cost_per_query=500, seed_customers=seed(300))
    ids = [c["id"] for c in double.store.customers()]
    reader = open_reader(double.url, token=TOKEN, bulk_reads="never", **FAST)
    found = reader.get_customers(ids)
    reader.close()
    assert sum(1 for c in found.values() if c is not None) == 300
    costs = [r.requested_cost for r in _batch_requests(double)]
    assert costs[0] == 750  # refused: MAX_COST_EXCEEDED
    assert all(cost <= 500 for cost in costs[1:]) and len(costs) == 4  # 125 + 125 + 50


def test_throttled_batches_are_paced_and_retried(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    # a 1,000-point bucket refilling at 100/s (5x faster on both sides): every 250-id batch
    # costs 750 points, so after the first the reader has to wait for the bucket; two
    # THROTTLED answers injected on top are retried
    double = shopify_double_factory(
        bucket_size=1000, restore_rate=100.0, time_scale=5.0, seed_customers=seed(700)
    )
    double.inject(Fault(kind="throttle", operation="nodes", skip=1, times=2))
    ids = [c["id"] for c in double.store.customers()]
    reader = open_reader(double.url, token=TOKEN, bulk_reads="never", time_scale=5.0, **FAST)
    found = reader.get_customers(ids)
    reader.close()
    assert sum(1 for c in found.values() if c is not None) == 700
    requests = _batch_requests(double)
    faults = [r.fault for r in requests]
    assert faults == [None, "throttle", "throttle", None, None]
    assert all(r.executed for r in requests if r.fault is None)
    assert reader.client.pacer.slept > 0


# --------------------------------------------------------------------------------------------
# the planner and the stale check of a saved plan read the linked customers in batches
# --------------------------------------------------------------------------------------------


def _people(n: int) -> list[ErpCustomer]:
    return [
        ErpCustomer(
            no=f"C{i:05d}", name=f"Person {i}", email=f"person{i}@example.com", country_code="NL"
        )
        for i in range(1, n + 1)
    ]


def test_an_update_run_reads_its_linked_customers_in_batches_and_so_does_its_stale_check(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, _people(7))
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings=EXPORT_SETTINGS,
        token=shopify_double.token,
        shopify_options={"page_size": 3},  # 3 ids a request: 7 linked customers take 3
    )
    sync = ["sync", "-c", str(config), "--no-progress", "--direction", "export"]
    assert main(sync) == exitcodes.OK
    assert shopify_double.store.count() == 7
    erp = open_writer(erp_url)
    try:
        for i in range(1, 8):
            assert erp.update_customer(f"C{i:05d}", {"name": f"Renamed {i}"}).ok
    finally:
        erp.close()
    gone = next(c for c in shopify_double.store.customers() if c["email"] == "person2@example.com")
    shopify_double.store.delete_customer(gone["id"])
    shopify_double.reset_log()

    plan_file = tmp_path / "plan.json"
    main(["plan", "-c", str(config), "--direction", "export", "--out", str(plan_file)])
    plan_reads = [r.operation_name for r in shopify_double.requests]
    assert plan_reads.count("CustomersByIds") == 3 and "CustomerById" not in plan_reads
    decisions = {d["record"]: d for d in json.loads(plan_file.read_text())["decisions"]}
    assert [decisions[f"C{i:05d}"]["action"] for i in (1, 3, 7)] == ["update"] * 3
    # read as "not in the shop" (no version), like a read by id of a deleted customer
    assert decisions["C00002"]["target_version"] is None
    assert all(decisions[f"C{i:05d}"]["target_version"] for i in (1, 3, 7))

    # one customer changed in Shopify since: the saved plan is stale, read in one batch
    shopify_double.reset_log()
    seventh = next(c for c in shopify_double.store.customers() if c["email"] == "person7@example.com")
    shopify_double.store.update_customer(seventh["id"], {"note": "edited in the admin"})
    capsys.readouterr()
    assert main([*sync, "--plan", str(plan_file)]) == exitcodes.ERROR
    assert "export C00007 (target changed)" in capsys.readouterr().out
    stale_reads = [r.operation_name for r in shopify_double.requests]
    assert "CustomersByIds" in stale_reads and "CustomerById" not in stale_reads
    assert shopify_double.mutation_count() == 0
