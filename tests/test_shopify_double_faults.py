"""Cost, leaky bucket, THROTTLED answers and injected faults of the Shopify double."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from custsync.connectors.shopify_double import Fault, ShopifyDouble

from fixtures_shopify import graphql_post

PAGE_100 = "{ customers(first: 100) { nodes { id } } }"  # requested cost 2 + 100 = 102
CREATE = """mutation C($input: CustomerInput!) {
  customerCreate(input: $input) { customer { id } userErrors { field message } } }"""


def test_bucket_throttles_and_restores_with_time_scale(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(bucket_size=250, restore_rate=50.0, time_scale=20.0)
    double.bucket.set_available(250)
    first = graphql_post(double, PAGE_100).json()
    assert first["extensions"]["cost"]["requestedQueryCost"] == 102
    # the bucket is charged the requested cost, then refunded down to the actual cost (2)
    assert first["extensions"]["cost"]["actualQueryCost"] == 2
    double.bucket.set_available(50)
    throttled = graphql_post(double, PAGE_100)
    assert throttled.status_code == 200
    body = throttled.json()
    assert body["errors"][0]["message"] == "Throttled"
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "data" not in body
    status = body["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 250 and status["restoreRate"] == 50
    assert status["currentlyAvailable"] < 102
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert double.requests[-1].throttled and not double.requests[-1].executed
    # 52 points at 50/s x 20 (time_scale) refill in about 0.05 s
    time.sleep(0.1)
    again = graphql_post(double, PAGE_100).json()
    assert "errors" not in again


def test_bucket_drains_by_actual_cost(shopify_double_factory: Callable[..., ShopifyDouble]
                                      ) -> None:
    double = shopify_double_factory(bucket_size=2000, restore_rate=0.001)
    for i in range(5):
        graphql_post(double, CREATE, {"input": {"email": f"c{i}@example.com"}})
    available = [r for r in double.requests if r.executed]
    assert len(available) == 5 and all(r.actual_cost == 10 for r in available)
    status = double.bucket.status()
    assert 1949 <= status.currently_available <= 1951


def test_max_cost_per_query(shopify_double_factory: Callable[..., ShopifyDouble]) -> None:
    double = shopify_double_factory(max_cost_per_query=1000)
    body = graphql_post(double, "{ customers(first: 250) { nodes { id "
                        "addressesV2(first: 10) { nodes { id } } } } }").json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["maxCost"] == 1000
    assert "exceeds the single query max cost limit (1000)" in error["message"]


def test_status_fault_answers_then_recovers(shopify_double: ShopifyDouble) -> None:
    shopify_double.inject(Fault(kind="status", status=503, times=2))
    statuses = [graphql_post(shopify_double, "{ shop { id } }").status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    shopify_double.inject(Fault(kind="status", status=429, retry_after=1.5))
    limited = graphql_post(shopify_double, "{ shop { id } }")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1.5"
    assert [r.fault for r in shopify_double.requests] == ["status", "status", None, "status"]


def test_throttle_fault_burst(shopify_double: ShopifyDouble) -> None:
    shopify_double.inject(Fault(kind="throttle", times=3))
    codes = []
    for _ in range(4):
        body = graphql_post(shopify_double, "{ shop { id } }").json()
        codes.append(body.get("errors", [{}])[0].get("extensions", {}).get("code"))
        assert "throttleStatus" in body["extensions"]["cost"]
    assert codes == ["THROTTLED", "THROTTLED", "THROTTLED", None]


def test_fault_by_operation_with_skip(shopify_double: ShopifyDouble) -> None:
    shopify_double.inject(Fault(kind="status", status=500, operation="customerCreate", skip=1))
    assert graphql_post(shopify_double, "{ shop { id } }").status_code == 200
    ok = graphql_post(shopify_double, CREATE, {"input": {"email": "a@example.com"}})
    assert ok.status_code == 200  # the first matching request is let through
    failed = graphql_post(shopify_double, CREATE, {"input": {"email": "b@example.com"}})
    assert failed.status_code == 500
    assert shopify_double.store.count() == 1
    assert shopify_double.mutation_count() == 1


def test_drop_before_effect_changes_nothing(shopify_double: ShopifyDouble) -> None:
    shopify_double.inject(Fault(kind="drop", operation="customerCreate"))
    with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
        client.post(shopify_double.graphql_url(), headers={
            "X-Shopify-Access-Token": shopify_double.token},
            json={"query": CREATE, "variables": {"input": {"email": "d@example.com"}}})
    assert shopify_double.store.count() == 0
    assert shopify_double.requests[-1].status == 0
    assert shopify_double.mutation_count() == 0


def test_drop_after_effect_applies_the_write(shopify_double: ShopifyDouble) -> None:
    shopify_double.inject(Fault(kind="drop", operation="customerCreate", after_effect=True))
    with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
        client.post(shopify_double.graphql_url(), headers={
            "X-Shopify-Access-Token": shopify_double.token},
            json={"query": CREATE, "variables": {"input": {"email": "d@example.com"}}})
    assert [c["email"] for c in shopify_double.store.customers()] == ["d@example.com"]
    assert shopify_double.mutation_count() == 1
    # a retry of the same create now meets Shopify's uniqueness check
    retry = graphql_post(shopify_double, CREATE, {"input": {"email": "d@example.com"}}).json()
    assert retry["data"]["customerCreate"]["userErrors"][0]["message"] == (
        "Email has already been taken")


def test_delay_fault_makes_clients_time_out(shopify_double: ShopifyDouble) -> None:
    shopify_double.inject(Fault(kind="delay", seconds=0.6))
    with pytest.raises(httpx.ReadTimeout):
        graphql_post(shopify_double, "{ shop { id } }", timeout=0.2)
    started = time.monotonic()
    assert graphql_post(shopify_double, "{ shop { id } }").status_code == 200
    assert time.monotonic() - started < 0.5


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind="explode")
    with pytest.raises(ValueError, match="times"):
        Fault(kind="drop", times=0)
