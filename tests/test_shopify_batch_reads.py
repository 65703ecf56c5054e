"""Reading customers by id in batches (``nodes(ids:)``) over HTTP to the Shopify double."""

from __future__ import annotations

from collections.abc import Callable

from custsync.connectors.shopify import open_reader
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.connectors.shopify_double.server import RequestLog

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
