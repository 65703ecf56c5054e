"""Unit tests of the Shopify connector against httpx.MockTransport (no network, no waiting).

Pacing, retries, error classification, configuration, mapping and JSONL handling. The
contract tests against the local double are in test_shopify_connector_contract.py.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from custsync.connectors.shopify import documents as docs
from custsync.connectors.shopify import open_reader, open_writer
from custsync.connectors.shopify.bulk import _group_reversed, reversed_lines
from custsync.connectors.shopify.client import OutcomeUnknown, parse_shop_url
from custsync.connectors.shopify.mapping import customer_input, parse_customer
from custsync.connectors.shopify.pacing import Pacer, ThrottleStatus
from custsync.engine.errors import ConfigError, FatalError, RetriableError
from custsync.engine.model import ShopifyAddress
from custsync.engine.ports import CustomerInput, ShopifyReader, ShopifyWriter

TOKEN = "shpat_secret_token_123"
URL = "https://unit-shop.myshopify.com"


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def cost(
    requested: float = 10,
    actual: float | None = 10,
    available: float = 1990,
    maximum: float = 2000,
    rate: float = 100,
) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": maximum,
                "currentlyAvailable": available,
                "restoreRate": rate,
            },
        }
    }


def customer_node(n: int = 1, **over: Any) -> dict[str, Any]:
    node = {
        "id": f"gid://shopify/Customer/{n}",
        "firstName": "Jane",
        "lastName": "Doe",
        "email": f"jane{n}@example.com",
        "phone": None,
        "state": "DISABLED",
        "tags": ["vip"],
        "note": None,
        "updatedAt": "2026-05-07T09:08:54Z",
        "defaultAddress": {"id": f"gid://shopify/MailingAddress/{n}0"},
        "addresses": [
            {
                "id": f"gid://shopify/MailingAddress/{n}0",
                "firstName": "Jane",
                "lastName": "Doe",
                "company": None,
                "address1": "1 Main St",
                "address2": None,
                "city": "Springfield",
                "province": "California",
                "provinceCode": "CA",
                "countryCodeV2": "US",
                "zip": "90001",
                "phone": None,
            }
        ],
    }
    node.update(over)
    return node


Handler = Callable[[dict[str, Any], httpx.Request], httpx.Response]


class FakeShop:
    """Routes GraphQL requests by operation name to handlers; records every request."""

    def __init__(self, **handlers: Handler) -> None:
        self.handlers = handlers
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/graphql.json"):
            body = json.loads(request.content)
            self.bodies.append(body)
            handler = self.handlers.get(body["operationName"])
            assert handler is not None, f"unexpected operation {body['operationName']}"
            return handler(body, request)
        handler = self.handlers.get("storage")
        assert handler is not None, f"unexpected request {request.url}"
        return handler({}, request)

    def operations(self) -> list[str]:
        return [body["operationName"] for body in self.bodies]


def ok(data: dict[str, Any], **cost_kw: Any) -> httpx.Response:
    return httpx.Response(200, json={"data": data, "extensions": cost(**cost_kw)})


def sequence(*responses: httpx.Response | Exception) -> Handler:
    items = list(responses)

    def handler(body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler


def make(shop: FakeShop, *, writer: bool = False, fake: FakeTime | None = None, **options: Any):
    fake = fake or FakeTime()
    opener = open_writer if writer else open_reader
    return opener(
        URL,
        token=TOKEN,
        transport=httpx.MockTransport(shop),
        clock=fake.clock,
        sleep=fake.sleep,
        seed=1,
        **options,
    )


THROTTLED = httpx.Response(
    200,
    json={
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": cost(requested=500, actual=None, available=100),
    },
)


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


def test_token_comes_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SHOP_TOKEN", TOKEN)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-Shopify-Access-Token"])
        assert str(request.url) == f"{URL}/admin/api/2026-07/graphql.json"
        return ok({"shop": {"shipsToCountries": ["US", "DE", "CA"]}})

    reader = open_reader(URL, token_env="MY_SHOP_TOKEN", transport=httpx.MockTransport(handler))
    assert reader.shipping_countries() == ["CA", "DE", "US"]
    assert seen == [TOKEN]
    assert TOKEN not in repr(reader.client.endpoint)
    reader.close()


def test_missing_token_variable_is_a_config_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ABSENT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="ABSENT_TOKEN"):
        open_reader(URL, token_env="ABSENT_TOKEN")
    with pytest.raises(ConfigError, match="access_token_env"):
        open_reader(URL)


@pytest.mark.parametrize("value", ["shpat_one\ntwo", "shpat one", "shpat_\u00e9t\u00e9"])
def test_a_token_no_header_can_carry_is_refused_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A token with a line break was retried as a lost connection and the error quoted it
    (httpx's "illegal header value b'shpat_one\\ntwo'"); a non-ASCII one was a
    UnicodeEncodeError traceback."""
    monkeypatch.setenv("ODD_TOKEN", value)
    with pytest.raises(ConfigError) as raised:
        open_reader(URL, token_env="ODD_TOKEN")
    assert raised.value.render() == (
        "environment variable ODD_TOKEN holds a space, a line break or a non-ASCII character "
        "inside the access token; set it to the token alone"
    )
    # blanks around the token (a line end from `EnvironmentFile=` or a file) are dropped
    monkeypatch.setenv("ODD_TOKEN", f" {TOKEN}\r\n")
    reader = open_reader(URL, token_env="ODD_TOKEN")
    assert reader.client.endpoint.token == TOKEN
    reader.close()


def test_config_aliases_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIAS_TOKEN", TOKEN)
    reader = open_reader(
        URL, access_token_env="ALIAS_TOKEN", timeout_seconds=5, api_version="2026-04"
    )
    assert reader.client.endpoint.timeout == 5.0
    assert reader.client.endpoint.graphql_url.endswith("/admin/api/2026-04/graphql.json")
    reader.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a-shop.myshopify.com", "https://a-shop.myshopify.com"),
        ("https://a-shop.myshopify.com/", "https://a-shop.myshopify.com"),
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("http://localhost:9000/", "http://localhost:9000"),
    ],
)
def test_shop_urls(url: str, expected: str) -> None:
    assert parse_shop_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://a-shop.myshopify.com", "plain http"),
        ("a-shop.myshopify.com", "no scheme"),
        ("ftp://a-shop.myshopify.com", "not an http"),
        ("https://a-shop.myshopify.com/admin", "without a path"),
        ("https://user:pw@a-shop.myshopify.com", "credentials"),
        # these were ValueError tracebacks from urlsplit
        ("https://a-shop.myshopify.com:abc", r"^Shopify URL: not a valid URL \(Port could not"),
        ("http://127.0.0.1:99999", r"^Shopify URL: not a valid URL \(Port out of range"),
        ("https://[::1", r"^Shopify URL: not a valid URL \(Invalid IPv6 URL\)$"),
    ],
)
def test_bad_shop_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_reader(url, token=TOKEN)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="api_version"):
        open_reader(URL, token=TOKEN, api_version="july")
    with pytest.raises(ConfigError, match="page_size"):
        open_reader(URL, token=TOKEN, page_size=500)
    with pytest.raises(ConfigError, match="unknown Shopify connector option"):
        open_reader(URL, token=TOKEN, colour="blue")
    with pytest.raises(ConfigError, match="unknown Shopify connector option"):
        open_reader(URL, token=TOKEN, bulk_writes="always")  # writer-only option


def test_reader_has_no_write_methods_and_both_satisfy_the_ports() -> None:
    shop = FakeShop()
    reader = make(shop)
    writer = make(shop, writer=True)
    assert isinstance(reader, ShopifyReader)
    assert not isinstance(reader, ShopifyWriter)
    for name in ("create_customer", "update_customer", "send_invite", "bulk_create_customers"):
        assert not hasattr(reader, name)
    assert isinstance(writer, ShopifyWriter)


# --------------------------------------------------------------------------------------------
# pacing
# --------------------------------------------------------------------------------------------


def test_pacer_sleeps_only_as_long_as_the_bucket_needs() -> None:
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep)
    assert pacer.wait_for(500) == 0  # nothing known yet: go
    pacer.update(ThrottleStatus(1000, 100, 50))
    assert pacer.delay_for(100) == 0
    assert pacer.delay_for(200) == pytest.approx(2.0)
    fake.now += 1.0
    assert pacer.delay_for(200) == pytest.approx(1.0)
    assert pacer.wait_for(200) == pytest.approx(1.0)
    assert fake.sleeps == [pytest.approx(1.0)]
    # never waits for more than the bucket holds
    assert pacer.delay_for(5000) == pytest.approx((1000 - 200) / 50)


def test_pacer_time_scale() -> None:
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, time_scale=10)
    pacer.update(ThrottleStatus(2000, 0, 100))
    assert pacer.delay_for(1000) == pytest.approx(1.0)  # 10 s of bucket time


class BucketShop:
    """A fake Shopify with a leaky bucket on the fake clock; every query costs ``cost``."""

    def __init__(self, fake: FakeTime, size: float, rate: float, cost: float) -> None:
        self.fake, self.size, self.rate, self.cost = fake, size, rate, cost
        self.available, self.at = size, 0.0
        self.throttled = 0
        self.spent = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        now = self.fake.now
        self.available = min(self.size, self.available + (now - self.at) * self.rate)
        self.at = now
        if self.cost > self.available:
            self.throttled += 1
            return httpx.Response(
                200,
                json={
                    "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                    "extensions": cost(self.cost, None, self.available, self.size, self.rate),
                },
            )
        self.available -= self.cost
        self.spent += self.cost
        return ok(
            {"shop": {"shipsToCountries": ["US"]}},
            requested=self.cost,
            actual=self.cost,
            available=self.available,
            maximum=self.size,
            rate=self.rate,
        )


def test_pacing_uses_the_bucket_fully_without_throttling() -> None:
    fake = FakeTime()
    bucket = BucketShop(fake, size=1000, rate=50, cost=100)
    reader = open_reader(
        URL, token=TOKEN, transport=httpx.MockTransport(bucket), clock=fake.clock, sleep=fake.sleep
    )
    for _ in range(200):
        reader.shipping_countries()
    # 200 x 100 points: the first 1000 from the full bucket, the rest at 50 points/s
    assert bucket.throttled == 0
    expected_seconds = (200 * 100 - 1000) / 50
    assert fake.now == pytest.approx(expected_seconds, rel=0.02)
    assert bucket.spent / fake.now / 50 >= 0.99


def test_throttled_is_retried_after_the_bucket_refills() -> None:
    fake = FakeTime()
    shop = FakeShop(
        ShopShippingCountries=sequence(THROTTLED, ok({"shop": {"shipsToCountries": ["US"]}}))
    )
    reader = make(shop, fake=fake)
    assert reader.shipping_countries() == ["US"]
    assert reader.client.stats.throttled == 1
    # 500 requested, 100 available at 100/s -> about 4 s
    assert fake.sleeps and fake.sleeps[0] == pytest.approx(4.0)


def test_429_honours_retry_after() -> None:
    fake = FakeTime()
    shop = FakeShop(
        ShopShippingCountries=sequence(
            httpx.Response(429, headers={"Retry-After": "2.5"}, json={"errors": "Throttled"}),
            ok({"shop": {"shipsToCountries": []}}),
        )
    )
    reader = make(shop, fake=fake)
    assert reader.shipping_countries() == []
    assert fake.sleeps == [2.5]


def test_5xx_and_transport_errors_are_retried_with_bounded_backoff() -> None:
    fake = FakeTime()
    shop = FakeShop(
        ShopShippingCountries=sequence(
            httpx.Response(502),
            httpx.ReadTimeout("slow"),
            httpx.Response(503),
            ok({"shop": {"shipsToCountries": ["FR"]}}),
        )
    )
    reader = make(shop, fake=fake, retry_base_delay=1.0)
    assert reader.shipping_countries() == ["FR"]
    assert len(fake.sleeps) == 3
    # full jitter within [d/2, d] for d = 1, 2, 4
    for sleep, ceiling in zip(fake.sleeps, (1.0, 2.0, 4.0), strict=True):
        assert ceiling / 2 <= sleep <= ceiling


def test_retries_are_bounded() -> None:
    shop = FakeShop(ShopShippingCountries=sequence(httpx.Response(503)))
    reader = make(shop, max_attempts=3)
    with pytest.raises(RetriableError, match="giving up after 3 attempts"):
        reader.shipping_countries()
    assert len(shop.requests) == 3


def test_401_is_fatal_with_a_clear_message_and_no_token() -> None:
    body = {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    shop = FakeShop(ShopShippingCountries=sequence(httpx.Response(401, json=body)))
    reader = make(shop)
    with pytest.raises(FatalError) as info:
        reader.shipping_countries()
    message = info.value.render()
    assert "HTTP 401" in message and "Invalid API key" in message
    assert TOKEN not in message
    assert len(shop.requests) == 1


def test_graphql_errors_are_fatal_with_shopifys_message() -> None:
    body = {
        "errors": [
            {
                "message": "Field 'code' doesn't exist on type 'UserError'",
                "extensions": {"code": "undefinedField"},
            }
        ]
    }
    shop = FakeShop(ShopShippingCountries=sequence(httpx.Response(200, json=body)))
    with pytest.raises(FatalError, match=r"Field 'code' doesn't exist.*undefinedField"):
        make(shop).shipping_countries()


def test_access_denied_hints_at_scopes() -> None:
    body = {
        "errors": [
            {
                "message": "Access denied for shipsToCountries field.",
                "extensions": {"code": "ACCESS_DENIED"},
            }
        ],
        "extensions": cost(),
    }
    shop = FakeShop(ShopShippingCountries=sequence(httpx.Response(200, json=body)))
    with pytest.raises(FatalError, match="lacks a scope"):
        make(shop).shipping_countries()


def test_other_4xx_is_fatal() -> None:
    shop = FakeShop(ShopShippingCountries=sequence(httpx.Response(404, text="Not Found")))
    with pytest.raises(FatalError, match=r"HTTP 404.*api_version"):
        make(shop).shipping_countries()


def test_lost_mutation_answer_is_not_resent_by_the_client() -> None:
    shop = FakeShop(CustomerCreate=sequence(httpx.ReadError("connection reset")))
    reader = make(shop)
    with pytest.raises(OutcomeUnknown):
        reader.client.execute(docs.CUSTOMER_CREATE, {"input": {"email": "a@example.com"}})
    assert len(shop.requests) == 1


def test_mutation_that_could_not_connect_is_retried() -> None:
    created = {"customerCreate": {"customer": customer_node(), "userErrors": []}}
    shop = FakeShop(CustomerCreate=sequence(httpx.ConnectError("refused"), ok(created)))
    writer = make(shop, writer=True)
    result = writer.create_customer(CustomerInput(email="jane1@example.com"))
    assert result.ok and result.customer is not None
    assert shop.operations() == ["CustomerCreate", "CustomerCreate"]


# --------------------------------------------------------------------------------------------
# reads
# --------------------------------------------------------------------------------------------


def test_pages_follow_the_cursor_and_shrink_when_too_costly() -> None:
    too_costly = httpx.Response(
        200,
        json={
            "errors": [
                {
                    "message": "Query cost is 1502, which exceeds the single query max cost limit (1000).",
                    "extensions": {"code": "MAX_COST_EXCEEDED"},
                }
            ]
        },
    )
    pages = {
        None: ok(
            {
                "customers": {
                    "pageInfo": {"hasNextPage": True, "endCursor": "c1"},
                    "nodes": [customer_node(1), customer_node(2)],
                }
            }
        ),
        "c1": ok(
            {
                "customers": {
                    "pageInfo": {"hasNextPage": False, "endCursor": "c2"},
                    "nodes": [customer_node(2), customer_node(3)],
                }
            }
        ),
    }
    firsts: list[int] = []

    def page(body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        firsts.append(body["variables"]["first"])
        if body["variables"]["first"] > 100:
            return too_costly
        assert body["variables"]["query"] is None
        return pages[body["variables"]["after"]]

    shop = FakeShop(CustomersPage=page)
    reader = make(shop, bulk_reads="never")
    ids = [c.id for c in reader.iter_customers()]
    assert ids == [f"gid://shopify/Customer/{n}" for n in (1, 2, 3)]  # 2 only once
    assert firsts == [250, 125, 62, 62]


def test_incremental_read_queries_and_rechecks_updated_at() -> None:
    since = datetime(2026, 5, 7, 9, 0, 0, 400000, tzinfo=UTC)
    seen_queries: list[str] = []

    def page(body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        seen_queries.append(body["variables"]["query"])
        return ok(
            {
                "customers": {
                    "pageInfo": {"hasNextPage": False, "endCursor": None},
                    "nodes": [
                        customer_node(1, updatedAt="2026-05-07T08:59:59Z"),  # too old: dropped
                        customer_node(2, updatedAt="2026-05-07T09:00:00Z"),  # same second: kept
                        customer_node(3, updatedAt="2026-05-07T10:00:00Z"),
                    ],
                }
            }
        )

    shop = FakeShop(CustomersPage=page)
    reader = make(shop, bulk_reads="never")
    ids = [c.id[-1] for c in reader.iter_customers(updated_since=since)]
    assert ids == ["2", "3"]
    assert seen_queries == ["updated_at:>'2026-05-07T08:59:59Z'"]


def test_auto_bulk_reads_count_first() -> None:
    count = ok({"customersCount": {"count": 12, "precision": "EXACT"}})
    page = ok({"customers": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": []}})
    shop = FakeShop(CustomersCount=sequence(count), CustomersPage=sequence(page))
    assert list(make(shop, bulk_threshold=100).iter_customers()) == []
    assert shop.operations() == ["CustomersCount", "CustomersPage"]


def test_a_bad_customer_is_reported_and_skipped() -> None:
    page = ok(
        {
            "customers": {
                "pageInfo": {"hasNextPage": False},
                "nodes": [customer_node(1, updatedAt="yesterday"), customer_node(2)],
            }
        }
    )
    reader = make(FakeShop(CustomersPage=sequence(page)), bulk_reads="never")
    assert [c.id for c in reader.iter_customers()] == ["gid://shopify/Customer/2"]
    (problem,) = reader.problems()
    assert problem.record == "gid://shopify/Customer/1" and "updatedAt" in problem.message


def test_search_results_are_checked_exactly() -> None:
    near = customer_node(1, email="jane.doe@example.com.au", phone="+14155550100")
    exact = customer_node(2, email="Jane.Doe@Example.com", phone="+14155550199")
    shop = FakeShop(CustomersSearch=sequence(ok({"customers": {"nodes": [near, exact]}})))
    reader = make(shop, lookup="search")
    found = reader.find_by_email(" jane.doe@example.com ")
    assert found is not None and found.id.endswith("/2")
    assert shop.bodies[0]["variables"]["query"] == 'email:"jane.doe@example.com"'
    assert reader.find_by_phone("+1 (415) 555-0199") is not None
    assert shop.bodies[1]["variables"]["query"] == "phone:+14155550199"
    assert reader.find_by_phone("+14155550111") is None


def test_identifier_lookup_rechecks_the_value() -> None:
    shop = FakeShop(
        CustomerByIdentifier=sequence(
            ok({"customerByIdentifier": customer_node(5, email="other@example.com")})
        )
    )
    reader = make(shop)
    assert reader.find_by_email("jane5@example.com") is None
    assert shop.bodies[0]["variables"]["identifier"] == {"emailAddress": "jane5@example.com"}


def test_order_mapping_fields() -> None:
    address = customer_node()["addresses"][0]
    order = {
        "id": "gid://shopify/Order/9",
        "name": "#1001",
        "email": "buyer@example.com",
        "phone": None,
        "customer": customer_node(4),
        "billingAddress": address,
        "shippingAddress": dict(address, countryCodeV2="CA", id="gid://shopify/MailingAddress/77"),
    }
    reader = make(FakeShop(OrderById=sequence(ok({"order": order}))))
    parsed = reader.get_order("gid://shopify/Order/9")
    assert parsed is not None and parsed.name == "#1001"
    assert parsed.customer is not None and parsed.customer.id.endswith("/4")
    assert parsed.bill_to is not None and parsed.bill_to.country_code == "US"
    assert parsed.ship_to is not None and parsed.ship_to.country_code == "CA"


def test_shipping_provinces_from_delivery_zones() -> None:
    zones = {
        "deliveryProfiles": {
            "pageInfo": {"hasNextPage": False},
            "nodes": [
                {
                    "profileLocationGroups": [
                        {
                            "locationGroupZones": {
                                "nodes": [
                                    {
                                        "zone": {
                                            "countries": [
                                                {
                                                    "code": {
                                                        "countryCode": "US",
                                                        "restOfWorld": False,
                                                    },
                                                    "provinces": [
                                                        {"code": "CA", "name": "California"},
                                                        {"code": "NY", "name": "New York"},
                                                    ],
                                                },
                                                {
                                                    "code": {
                                                        "countryCode": None,
                                                        "restOfWorld": True,
                                                    },
                                                    "provinces": [],
                                                },
                                            ]
                                        }
                                    },
                                    {
                                        "zone": {
                                            "countries": [
                                                {
                                                    "code": {
                                                        "countryCode": "DE",
                                                        "restOfWorld": False,
                                                    },
                                                    "provinces": [],
                                                }
                                            ]
                                        }
                                    },
                                ]
                            }
                        }
                    ]
                }
            ],
        }
    }
    reader = make(FakeShop(DeliveryZones=sequence(ok(zones))))
    assert reader.shipping_provinces() == {
        "DE": (),
        "US": (("CA", "California"), ("NY", "New York")),
    }


# --------------------------------------------------------------------------------------------
# writes
# --------------------------------------------------------------------------------------------


def test_user_errors_are_per_record_failures_with_shopifys_message() -> None:
    refused = ok(
        {
            "customerCreate": {
                "customer": None,
                "userErrors": [
                    {"field": ["email"], "message": "Email has already been taken"},
                    {"field": ["phone"], "message": "Phone is invalid"},
                ],
            }
        }
    )
    writer = make(FakeShop(CustomerCreate=sequence(refused)), writer=True)
    result = writer.create_customer(CustomerInput(email="taken@example.com", phone="abc"))
    assert not result.ok
    assert result.errors == ("Email has already been taken", "Phone is invalid")


def test_lost_create_is_looked_up_before_it_is_resent() -> None:
    shop = FakeShop(
        CustomerCreate=sequence(httpx.RemoteProtocolError("dropped")),
        CustomerByIdentifier=sequence(ok({"customerByIdentifier": customer_node(7)})),
    )
    writer = make(shop, writer=True)
    result = writer.create_customer(CustomerInput(email="JANE7@example.com", first_name="Jane"))
    assert result.ok and result.customer is not None
    assert result.customer.id == "gid://shopify/Customer/7"
    assert shop.operations() == ["CustomerCreate", "CustomerByIdentifier"]


def test_lost_create_not_found_is_resent_once() -> None:
    created = ok({"customerCreate": {"customer": customer_node(8), "userErrors": []}})
    shop = FakeShop(
        CustomerCreate=sequence(httpx.Response(503), created),
        CustomerByIdentifier=sequence(ok({"customerByIdentifier": None})),
    )
    writer = make(shop, writer=True)
    result = writer.create_customer(CustomerInput(email="jane8@example.com"))
    assert result.ok
    assert shop.operations() == ["CustomerCreate", "CustomerByIdentifier", "CustomerCreate"]


def test_lost_create_without_email_or_phone_is_not_risked_twice() -> None:
    shop = FakeShop(CustomerCreate=sequence(httpx.ReadTimeout("slow")))
    result = make(shop, writer=True).create_customer(CustomerInput(first_name="Nameonly"))
    assert not result.ok and "outcome unknown" in result.errors[0]
    assert shop.operations() == ["CustomerCreate"]


def test_taken_after_a_lost_attempt_adopts_the_created_customer() -> None:
    taken = ok(
        {
            "customerCreate": {
                "customer": None,
                "userErrors": [{"field": ["email"], "message": "Email has already been taken"}],
            }
        }
    )
    shop = FakeShop(
        CustomerCreate=sequence(httpx.ReadError("reset"), taken),
        # the first lookup misses (index lag), the second finds it
        CustomerByIdentifier=sequence(
            ok({"customerByIdentifier": None}), ok({"customerByIdentifier": customer_node(9)})
        ),
    )
    result = make(shop, writer=True).create_customer(CustomerInput(email="jane9@example.com"))
    assert result.ok and result.customer is not None and result.customer.id.endswith("/9")


def test_update_sends_only_changed_fields_and_the_address_by_gid() -> None:
    updated = ok({"customerUpdate": {"customer": customer_node(3), "userErrors": []}})
    address_ok = ok({"customerAddressUpdate": {"address": {"id": "x"}, "userErrors": []}})
    shop = FakeShop(
        CustomerUpdate=sequence(updated),
        CustomerAddressUpdate=sequence(address_ok),
        CustomerById=sequence(ok({"customer": customer_node(3)})),
    )
    writer = make(shop, writer=True)
    address = ShopifyAddress(
        id="gid://shopify/MailingAddress/30",
        address1="2 Side St",
        city="Springfield",
        zip="90002",
        country_code="us",
        province_code="CA",
    )
    result = writer.update_customer(
        "gid://shopify/Customer/3", CustomerInput(phone="+14155550100", address=address)
    )
    assert result.ok
    assert shop.bodies[0]["variables"]["input"] == {
        "id": "gid://shopify/Customer/3",
        "phone": "+14155550100",
    }
    address_vars = shop.bodies[1]["variables"]
    assert address_vars["addressId"] == "gid://shopify/MailingAddress/30"
    assert address_vars["address"]["countryCode"] == "US"
    assert "id" not in address_vars["address"]


def test_update_user_errors_are_failures() -> None:
    refused = ok(
        {
            "customerUpdate": {
                "customer": None,
                "userErrors": [{"field": ["id"], "message": "Customer does not exist"}],
            }
        }
    )
    writer = make(FakeShop(CustomerUpdate=sequence(refused)), writer=True)
    result = writer.update_customer("gid://shopify/Customer/404", CustomerInput(note="x"))
    assert result.errors == ("Customer does not exist",)


def test_invite() -> None:
    invited = ok(
        {
            "customerSendAccountInviteEmail": {
                "customer": {"id": "gid://shopify/Customer/3", "state": "INVITED"},
                "userErrors": [],
            }
        }
    )
    shop = FakeShop(
        CustomerSendAccountInviteEmail=sequence(invited),
        CustomerById=sequence(ok({"customer": customer_node(3, state="INVITED")})),
    )
    result = make(shop, writer=True).send_invite("gid://shopify/Customer/3")
    assert result.ok and result.customer is not None and result.customer.state == "INVITED"


def test_customer_input_mapping() -> None:
    data = CustomerInput(
        first_name="Jane",
        email="j@example.com",
        tags=("a",),
        address=ShopifyAddress(company="ACME", country_code="de"),
    )
    mapped = customer_input(data, with_address=True)
    assert mapped["firstName"] == "Jane" and mapped["tags"] == ["a"]
    assert "lastName" not in mapped and "phone" not in mapped
    assert mapped["addresses"][0]["company"] == "ACME"
    assert mapped["addresses"][0]["countryCode"] == "DE"


def test_parse_customer_marks_the_default_address() -> None:
    node = customer_node(1)
    node["addresses"].append(dict(node["addresses"][0], id="gid://shopify/MailingAddress/99"))
    customer = parse_customer(node)
    assert [a.default for a in customer.addresses] == [True, False]
    assert customer.default_address is not None
    assert customer.updated_at == datetime(2026, 5, 7, 9, 8, 54, tzinfo=UTC)
    assert customer.phone == "" and customer.note == ""


def test_logs_have_no_token_and_masked_emails(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="custsync.shopify")
    refused = ok(
        {
            "customerCreate": {
                "customer": None,
                "userErrors": [{"field": ["email"], "message": "Email has already been taken"}],
            }
        }
    )
    shop = FakeShop(
        CustomerCreate=sequence(httpx.Response(502), refused),
        CustomerByIdentifier=sequence(ok({"customerByIdentifier": None})),
    )
    make(shop, writer=True).create_customer(CustomerInput(email="secret.person@example.com"))
    assert caplog.records
    assert TOKEN not in caplog.text
    assert "secret.person@example.com" not in caplog.text
    assert "s***@example.com" in caplog.text


# --------------------------------------------------------------------------------------------
# bulk files
# --------------------------------------------------------------------------------------------


def test_reversed_lines_across_blocks() -> None:
    lines = [f'{{"n":{i}}}'.encode() for i in range(100)]
    data = b"\n".join(lines) + b"\n"
    assert list(reversed_lines(io.BytesIO(data), block=7)) == list(reversed(lines))


def test_bulk_result_children_are_grouped_under_their_parents(tmp_path) -> None:
    rows = [
        {"id": "gid://shopify/Customer/1"},
        {"id": "gid://shopify/MailingAddress/11", "__parentId": "gid://shopify/Customer/1"},
        {"id": "gid://shopify/Customer/2"},
        {"id": "gid://shopify/MailingAddress/12", "__parentId": "gid://shopify/Customer/1"},
        {"id": "gid://shopify/MailingAddress/21", "__parentId": "gid://shopify/Customer/2"},
        {"id": "gid://shopify/Customer/3"},
    ]
    path = tmp_path / "result.jsonl"
    path.write_text("".join(json.dumps(r).replace("/", "\\/") + "\n" for r in rows))
    grouped = {
        root["id"][-1]: [c["id"][-2:] for c in children] for root, children in _group_reversed(path)
    }
    assert grouped == {"1": ["11", "12"], "2": ["21"], "3": []}


def test_bulk_create_uploads_without_the_token_and_maps_results_back() -> None:
    uploads: list[httpx.Request] = []
    result_lines = [
        {
            "data": {"customerCreate": {"customer": customer_node(2), "userErrors": []}},
            "__lineNumber": 1,
        },
        {
            "data": {
                "customerCreate": {
                    "customer": None,
                    "userErrors": [{"field": ["email"], "message": "Email is invalid"}],
                }
            },
            "__lineNumber": 0,
        },
    ]

    def storage(body: dict[str, Any], request: httpx.Request) -> httpx.Response:
        assert "X-Shopify-Access-Token" not in request.headers
        if request.method == "POST":
            uploads.append(request)
            return httpx.Response(201, text="<PostResponse/>")
        return httpx.Response(200, text="".join(json.dumps(r) + "\n" for r in result_lines))

    operation = {
        "id": "gid://shopify/BulkOperation/1",
        "status": "CREATED",
        "query": "",
        "objectCount": "0",
    }
    done = dict(
        operation, status="COMPLETED", url="https://storage.example/result.jsonl", objectCount="3"
    )
    shop = FakeShop(
        storage=storage,
        CurrentBulkOperation=sequence(ok({"currentBulkOperation": None})),
        StagedUploadsCreate=sequence(
            ok(
                {
                    "stagedUploadsCreate": {
                        "stagedTargets": [
                            {
                                "url": "https://storage.example/upload",
                                "resourceUrl": None,
                                "parameters": [
                                    {"name": "key", "value": "tmp/1/bulk/vars.jsonl"},
                                    {"name": "Content-Type", "value": "text/jsonl"},
                                ],
                            }
                        ],
                        "userErrors": [],
                    }
                }
            )
        ),
        BulkOperationRunMutation=sequence(
            ok({"bulkOperationRunMutation": {"bulkOperation": operation, "userErrors": []}})
        ),
        BulkOperationById=sequence(ok({"bulkOperation": done})),
    )
    writer = make(shop, writer=True, bulk_write_threshold=2)
    items = [
        ("C1", CustomerInput(email="bad")),
        ("C2", CustomerInput(email="jane2@example.com")),
        ("C3", CustomerInput(first_name="Lost")),  # no line in the result file
    ]
    results = {r.key: r for r in writer.bulk_create_customers(items)}
    assert results["C1"].errors == ("Email is invalid",)
    assert results["C2"].ok and results["C2"].customer is not None
    assert not results["C3"].ok and "no result" in results["C3"].errors[0]
    assert len(uploads) == 1
    content = uploads[0].content
    assert b'name="key"' in content and b"tmp/1/bulk/vars.jsonl" in content
    assert content.count(b'"input"') == 3
    run = next(b for b in shop.bodies if b["operationName"] == "BulkOperationRunMutation")
    assert run["variables"]["stagedUploadPath"] == "tmp/1/bulk/vars.jsonl"
    assert run["variables"]["mutation"] == docs.BULK_CUSTOMER_CREATE


def test_pacer_reservations_share_one_bucket_between_threads() -> None:
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep)
    pacer.update(ThrottleStatus(1000, 300, 100))
    assert pacer.acquire(200) == 0  # 100 left in the model
    assert pacer.acquire(200) == pytest.approx(1.0)  # must wait for the refill
    # an answer arriving while the second request is in flight is read net of it
    pacer.release(200)
    pacer.update(ThrottleStatus(1000, 500, 100))
    assert pacer.available() == pytest.approx(300)


def test_bulk_status_polls_that_fail_do_not_abandon_the_job() -> None:
    from custsync.connectors.shopify.bulk import BulkOperation

    done = {"id": "gid://shopify/BulkOperation/5", "status": "COMPLETED", "query": "",
            "objectCount": "0", "url": None}
    shop = FakeShop(BulkOperationById=sequence(
        httpx.Response(503), httpx.Response(503), httpx.Response(503), ok({"bulkOperation": done})
    ))
    reader = make(shop, max_attempts=2)
    running = BulkOperation(id="gid://shopify/BulkOperation/5", status="RUNNING")
    assert reader.bulk._wait(running).status == "COMPLETED"
    assert len(shop.requests) == 4
