"""Contract tests: the Shopify connector against the local double over real HTTP (127.0.0.1).

The double's store is the judge: after an export under injected faults, every customer must
exist exactly once and every failure must have been reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from custsync.connectors.shopify import open_reader, open_writer
from custsync.connectors.shopify.client import GraphQLErrors
from custsync.connectors.shopify_double import Fault, ShopifyDouble, seed_store
from custsync.engine.errors import FatalError
from custsync.engine.model import ShopifyAddress
from custsync.engine.ports import CustomerInput

TOKEN = "shpat_test"
FAST = {
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.1,
    "poll_interval": 0.02,
    "max_poll_interval": 0.05,
    "seed": 7,
}


def seed(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "email": f"customer{i}@example.com",
            "addresses": [
                {
                    "address1": f"{i} Main St",
                    "city": "Springfield",
                    "zip": "90001",
                    "country_code": "US",
                    "province_code": "CA",
                    "default": True,
                }
            ],
            **extra,
        }
        for i in range(start, start + n)
    ]


def export_input(i: int) -> CustomerInput:
    return CustomerInput(
        first_name=f"Export{i}",
        last_name="Person",
        email=f"export{i}@example.com",
        phone=f"+1415555{i:04d}",
        address=ShopifyAddress(
            address1=f"{i} Export Way",
            city="Portland",
            zip="97201",
            country_code="US",
            province_code="OR",
        ),
    )


# --------------------------------------------------------------------------------------------
# reads
# --------------------------------------------------------------------------------------------


def test_pagination_ends_and_sees_every_customer_once(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(
        bucket_size=1_000_000,
        restore_rate=1_000_000.0,
        max_cost_per_query=1000,
        seed_customers=seed(600),
    )
    reader = open_reader(double.url, token=TOKEN, bulk_reads="never", **FAST)
    customers = list(reader.iter_customers())
    reader.close()
    assert len(customers) == 600
    assert len({c.id for c in customers}) == 600
    pages = [r for r in double.requests if r.operation_name == "CustomersPage"]
    assert len(pages) == 3
    assert all(r.requested_cost is not None and r.requested_cost <= 1000 for r in pages)
    # oldest update first
    stamps = [c.updated_at for c in customers]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    first = customers[0]
    assert first.addresses and first.addresses[0].default
    assert first.addresses[0].country_code == "US"


def test_incremental_read_returns_only_newer(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    now = [datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)]
    double = shopify_double_factory(bulk_seconds=0.01, clock=lambda: now[0])
    writer = open_writer(double.url, token=TOKEN, bulk_reads="never", **FAST)
    for i in range(5):
        assert writer.create_customer(export_input(i)).ok
    now[0] += timedelta(hours=1)
    cursor = now[0]
    now[0] += timedelta(minutes=5)
    newer = [writer.create_customer(export_input(i)) for i in range(5, 8)]
    old = writer.find_by_email("export1@example.com")
    assert old is not None
    assert writer.update_customer(old.id, CustomerInput(note="changed")).ok
    found = {c.email for c in writer.iter_customers(updated_since=cursor)}
    writer.close()
    assert found == {r.customer.email for r in newer if r.customer} | {"export1@example.com"}


@pytest.mark.parametrize("lookup", ["identifier", "search"])
def test_search_by_email_and_phone_is_exact(
    shopify_double_factory: Callable[..., ShopifyDouble], lookup: str
) -> None:
    double = shopify_double_factory(
        bulk_seconds=0.01,
        seed_customers=[
            {"first_name": "Jane", "email": "jane.doe@example.com", "phone": "+14155550100"},
            {"first_name": "Bob", "email": "bob@example.org", "phone": "+4930123456"},
        ],
    )
    reader = open_reader(double.url, token=TOKEN, lookup=lookup, **FAST)
    found = reader.find_by_email("JANE.DOE@example.com")
    assert found is not None and found.first_name == "Jane"
    # tokenised near-matches are rejected
    assert reader.find_by_email("doe@example.com") is None
    assert reader.find_by_email("jane.doe@example") is None
    assert reader.find_by_email("bob@example.com") is None
    by_phone = reader.find_by_phone("+1 (415) 555-0100")
    assert by_phone is not None and by_phone.first_name == "Jane"
    assert reader.find_by_phone("+14155550101") is None
    assert reader.find_by_phone("+30123456") is None
    reader.close()
    assert double.mutation_count() == 0


def test_reader_makes_zero_mutations(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(bulk_seconds=0.01, seed_customers=seed(30))
    reader = open_reader(double.url, token=TOKEN, **FAST)
    customers = list(reader.iter_customers())
    assert len(customers) == 30
    assert reader.get_customer(customers[0].id) == customers[0]
    assert reader.get_customer("gid://shopify/Customer/999999") is None
    assert reader.find_by_email("customer3@example.com") is not None
    assert reader.shipping_countries()
    assert list(reader.iter_customers(updated_since=datetime.now(UTC) + timedelta(days=1))) == []
    reader.close()
    assert double.mutation_count() == 0
    assert not any(r.is_mutation for r in double.requests)


def test_shipping_provinces_come_from_the_delivery_profiles_within_the_cost_limit(
    shopify_double: ShopifyDouble,
) -> None:
    seed_store(shopify_double.store, {"shop": {"shipping_zones": [
        {"name": "Home", "countries": [{"code": "US", "provinces": ["CA", "NY", "TX"]}]},
        {"name": "North", "countries": ["CA"]},
        {"name": "Europe", "countries": ["DE", "NL"]},
    ]}})
    reader = open_reader(shopify_double.url, token=TOKEN, **FAST)
    provinces = reader.shipping_provinces()
    reader.close()
    assert sorted(provinces) == ["CA", "DE", "NL", "US"]
    assert provinces["US"] == (("CA", "California"), ("NY", "New York"), ("TX", "Texas"))
    assert ("QC", "Quebec") in provinces["CA"] and len(provinces["CA"]) == 13
    assert provinces["DE"] == provinces["NL"] == ()
    zone_reads = [r for r in shopify_double.requests if r.operation_name == "DeliveryZones"]
    # Shopify refuses a query whose requested cost is over 1000 (MAX_COST_EXCEEDED)
    assert zone_reads and all(r.requested_cost is not None and r.requested_cost <= 1000
                              for r in zone_reads)


def test_changing_the_default_address_keeps_the_others(shopify_double: ShopifyDouble) -> None:
    """The address goes to ``customerAddressUpdate`` by its id: never as a ``customerUpdate``
    address list, which would replace (delete) the customer's other addresses."""
    writer = open_writer(shopify_double.url, token=TOKEN, **FAST)
    created = writer.create_customer(export_input(2))
    assert created.ok and created.customer is not None
    customer = created.customer
    second = ShopifyAddress(address1="5 Side St", city="Eugene", zip="97401",
                            country_code="US", province_code="OR")
    added = writer.update_customer(customer.id, CustomerInput(address=second))
    assert added.ok and added.customer is not None
    default = added.customer.default_address
    assert default is not None and default.address1 == "5 Side St"
    moved = replace(default, address1="6 Side St")
    updated = writer.update_customer(customer.id, CustomerInput(note="moved", address=moved))
    writer.close()
    assert updated.ok and updated.customer is not None
    assert sorted(a.address1 for a in updated.customer.addresses) == [
        "2 Export Way", "6 Side St"]
    new_default = updated.customer.default_address
    assert new_default is not None and new_default.id == default.id  # updated in place
    stored = shopify_double.store.customer(customer.id)
    assert stored is not None and stored["note"] == "moved" and len(stored["addresses"]) == 2


def test_bulk_read_rebuilds_customers_with_their_addresses(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    customers = seed(40)
    for record in customers[:10]:
        record["addresses"].append(
            {
                "address1": "Second 1",
                "city": "Oakland",
                "zip": "94601",
                "country_code": "US",
                "province_code": "CA",
            }
        )
    double = shopify_double_factory(bulk_seconds=0.01, seed_customers=customers)
    reader = open_reader(double.url, token=TOKEN, bulk_threshold=20, **FAST)
    read = {c.email: c for c in reader.iter_customers()}
    reader.close()
    assert len(read) == 40
    two = read["customer3@example.com"].addresses
    assert [a.address1 for a in two] == ["3 Main St", "Second 1"]
    assert [a.default for a in two] == [True, False]
    assert len(read["customer30@example.com"].addresses) == 1
    operations = [r.operation_name for r in double.requests if r.operation_name]
    assert "BulkOperationRunQuery" in operations and "CustomersPage" not in operations
    assert double.mutation_count() == 1  # the bulk query job; it writes no store data


def test_paced_reads_are_not_throttled(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    # A 1,000-point bucket refilling at 100/s, time 5x faster on both sides: a 250-page costs
    # about 750 points, so after the first page every page has to wait for the bucket.
    double = shopify_double_factory(
        bucket_size=1000, restore_rate=100.0, time_scale=5.0, seed_customers=seed(800)
    )
    reader = open_reader(double.url, token=TOKEN, bulk_reads="never", time_scale=5.0, **FAST)
    assert len(list(reader.iter_customers())) == 800
    reader.close()
    assert not any(r.throttled for r in double.requests)
    assert reader.client.pacer.slept > 0  # it had to wait, and waited enough


# --------------------------------------------------------------------------------------------
# writes
# --------------------------------------------------------------------------------------------


def test_user_errors_are_per_record_failures(shopify_double: ShopifyDouble) -> None:
    shopify_double.store.load([{"email": "taken@example.com", "firstName": "Old"}], [])
    writer = open_writer(shopify_double.url, token=TOKEN, **FAST)
    results = list(
        writer.bulk_create_customers(
            [
                ("E1", CustomerInput(first_name="A", email="taken@example.com")),
                ("E2", CustomerInput(first_name="B", email="b@example.com", phone="abc")),
                ("E3", CustomerInput(first_name="C", email="c@example.com")),
            ]
        )
    )
    writer.close()
    by_key = {r.key: r for r in results}
    assert by_key["E1"].errors == ("Email has already been taken",)
    assert by_key["E2"].errors == ("Phone is invalid",)
    assert by_key["E3"].ok and by_key["E3"].customer is not None
    assert shopify_double.store.count() == 2


def test_wrong_token_is_fatal_without_the_token(shopify_double: ShopifyDouble) -> None:
    secret = "shpat_wrong_secret_value"
    reader = open_reader(shopify_double.url, token=secret, **FAST)
    with pytest.raises(FatalError) as info:
        list(reader.iter_customers())
    reader.close()
    message = info.value.render()
    assert "401" in message and "access token was refused" in message
    assert secret not in message and TOKEN not in message
    assert len(shopify_double.requests) == 1  # not retried


def test_graphql_validation_errors_are_fatal(shopify_double: ShopifyDouble) -> None:
    reader = open_reader(shopify_double.url, token=TOKEN, **FAST)
    with pytest.raises(GraphQLErrors) as info:
        reader.client.execute("query Broken { shop { noSuchField } }")
    reader.close()
    assert "noSuchField" in info.value.render()
    assert TOKEN not in info.value.render()


def test_update_invite_and_address(shopify_double: ShopifyDouble) -> None:
    writer = open_writer(shopify_double.url, token=TOKEN, **FAST)
    created = writer.create_customer(export_input(1))
    assert created.ok and created.customer is not None
    customer = created.customer
    address = customer.addresses[0]
    moved = ShopifyAddress(
        id=address.id,
        first_name="Export1",
        last_name="Person",
        address1="9 New Rd",
        city="Salem",
        zip="97301",
        country_code="US",
        province_code="OR",
    )
    updated = writer.update_customer(customer.id, CustomerInput(last_name="Renamed", address=moved))
    assert updated.ok and updated.customer is not None
    assert updated.customer.last_name == "Renamed"
    assert [a.address1 for a in updated.customer.addresses] == ["9 New Rd"]
    stored = shopify_double.store.customer(customer.id)
    assert stored is not None and stored["lastName"] == "Renamed"
    invited = writer.send_invite(customer.id)
    assert invited.ok and invited.customer is not None and invited.customer.state == "INVITED"
    missing = writer.update_customer("gid://shopify/Customer/424242", CustomerInput(note="x"))
    assert missing.errors == ("Customer does not exist",)
    writer.close()


def _inject_export_faults(double: ShopifyDouble) -> None:
    create = "customerCreate"
    faults = [
        Fault(kind="drop", operation=create, after_effect=True, skip=10),
        Fault(kind="drop", operation=create, after_effect=True, skip=25, times=2),
        Fault(kind="drop", operation=create, skip=40),
        Fault(kind="status", status=503, operation=create, skip=60, times=2),
        Fault(kind="status", status=502, operation=create, after_effect=True, skip=80),
        Fault(kind="throttle", skip=100, times=3),
        Fault(kind="status", status=429, retry_after=0.05, skip=130),
        Fault(kind="delay", seconds=3.5, operation=create, after_effect=True, skip=160),
        Fault(kind="status", status=500, skip=200, times=2),
        Fault(kind="drop", skip=240),  # whatever comes (a lookup or a create)
        Fault(kind="throttle", operation=create, skip=300, times=4),
        Fault(kind="drop", operation=create, after_effect=True, skip=380),
    ]
    for fault in faults:
        double.inject(fault)


def test_export_one_by_one_under_faults_creates_each_customer_exactly_once(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    """A full export of 2,000 customers one by one (the path a sync's creates take), under
    every kind of fault on the way: 5xx, 429, THROTTLED bursts, dropped connections (also
    after the write happened) and a slow answer."""
    # Standard-plan bucket, 50x time on both sides
    double = shopify_double_factory(bucket_size=2000, restore_rate=100.0, time_scale=50.0)
    double.store.load([{"email": "export7@example.com", "firstName": "Already"}], [])
    _inject_export_faults(double)
    # the slow answer (3.5 s) times out; an ordinary one on a loaded machine does not
    writer = open_writer(
        double.url, token=TOKEN, timeout=2.5, time_scale=50.0, bulk_writes="never", **FAST
    )
    items = [(f"C{i:04d}", export_input(i)) for i in range(2000)]
    items[13] = (
        "C0013",
        CustomerInput(first_name="Bad", email="bad13@example.com", phone="not a phone"),
    )
    results = list(writer.bulk_create_customers(items))
    writer.close()

    assert len(results) == 2000
    by_key = {r.key: r for r in results}
    failures = {k: r.errors for k, r in by_key.items() if not r.ok}
    assert failures == {
        "C0007": ("Email has already been taken",),
        "C0013": ("Phone is invalid",),
    }
    emails = Counter(c.get("email") for c in double.store.customers())
    assert double.store.count() == 1 + 1998
    assert all(count == 1 for count in emails.values())
    for key, result in by_key.items():
        if result.ok:
            assert result.customer is not None
            assert result.customer.email == f"export{int(key[1:])}@example.com"
    # the faults really happened
    faults = Counter(r.fault for r in double.requests if r.fault)
    assert faults["drop"] >= 5 and faults["throttle"] >= 7 and faults["status"] >= 6
    assert faults["delay"] == 1


def test_bulk_export_of_2000_under_faults_creates_each_customer_exactly_once(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    """A full export of 2,000 by bulk mutation: a failed upload, a lost answer to
    bulkOperationRunMutation (the job did start), a dropped download, THROTTLED polls."""
    double = shopify_double_factory(bucket_size=2000, restore_rate=100.0, bulk_seconds=0.05)
    double.store.load([{"email": "export5@example.com", "firstName": "Already"}], [])
    double.inject(Fault(kind="status", status=503, target="upload"))
    double.inject(Fault(kind="drop", operation="bulkOperationRunMutation", after_effect=True))
    double.inject(Fault(kind="drop", target="download"))
    double.inject(Fault(kind="throttle", operation="bulkOperation", times=2))
    writer = open_writer(double.url, token=TOKEN, **FAST)
    items = [(f"C{i:04d}", export_input(i)) for i in range(2000)]
    results = list(writer.bulk_create_customers(items))
    writer.close()
    assert len(results) == 2000 and len({r.key for r in results}) == 2000
    failures = {r.key: r.errors for r in results if not r.ok}
    assert failures == {"C0005": ("Email has already been taken",)}
    emails = Counter(c.get("email") for c in double.store.customers())
    assert double.store.count() == 2000
    assert all(count == 1 for count in emails.values())
    runs = [
        r for r in double.requests if r.operation_name == "BulkOperationRunMutation" and r.executed
    ]
    assert len(runs) == 1  # the lost answer was adopted, not re-run
    assert len(double.requests) < 40  # a few dozen requests for 2,000 customers


def test_a_lost_answer_to_an_address_create_does_not_create_it_twice(
    shopify_double: ShopifyDouble,
) -> None:
    """Shopify fills a blank address name from the customer, so the writer's look-up after a
    dropped answer compared "Person" with "" and created the address again (issue 10 item 3)."""
    writer = open_writer(shopify_double.url, token=TOKEN, **FAST)
    created = writer.create_customer(
        CustomerInput(first_name="Ada", last_name="Person", email="ada@example.com")
    )
    assert created.ok and created.customer is not None and not created.customer.addresses
    shopify_double.inject(
        Fault(kind="drop", operation="customerAddressCreate", after_effect=True)
    )
    new = ShopifyAddress(address1="1 Elm St", city="Salem", zip="97301", country_code="US")
    updated = writer.update_customer(created.customer.id, CustomerInput(address=new))
    writer.close()
    assert updated.ok, updated.errors
    stored = shopify_double.store.customer(created.customer.id)
    assert stored is not None
    assert [(a["address1"], a["lastName"]) for a in stored["addresses"]] == [
        ("1 Elm St", "Person")
    ]
    assert not shopify_double.faults.pending()  # the answer was really dropped
