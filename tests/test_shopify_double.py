"""The Shopify double behaves like Shopify where custsync depends on it (over real HTTP)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from custsync.connectors.shopify_double import (
    ShopifyDouble,
    normalize,
    seed_from_models,
    seed_store,
)
from custsync.engine.errors import ConfigError
from custsync.engine.model import ShopifyAddress, ShopifyCustomer

from fixtures_shopify import graphql_post

CREATE = """
mutation Create($input: CustomerInput!) {
  customerCreate(input: $input) {
    customer { id email phone firstName lastName displayName updatedAt tags
               defaultAddress { id city countryCodeV2 provinceCode province formattedArea } }
    userErrors { field message }
  }
}"""
UPDATE = """
mutation Update($input: CustomerInput!) {
  customerUpdate(input: $input) {
    customer { id email phone updatedAt }
    userErrors { field message }
  }
}"""
PAGE = """
query Page($first: Int, $after: String, $last: Int, $before: String, $query: String,
           $sortKey: CustomerSortKeys, $reverse: Boolean) {
  customers(first: $first, after: $after, last: $last, before: $before, query: $query,
            sortKey: $sortKey, reverse: $reverse) {
    edges { cursor node { id email updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


class Clock:
    """A settable clock for the store (updatedAt, search by updated_at)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def create(double: ShopifyDouble, **fields: Any) -> dict[str, Any]:
    body = graphql_post(double, CREATE, {"input": fields}).json()
    return body["data"]["customerCreate"]


def ids(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


# --------------------------------------------------------------------------- transport


def test_wrong_token_is_401_with_shopifys_body(shopify_double: ShopifyDouble) -> None:
    response = graphql_post(shopify_double, "{ shop { id } }", token="wrong")
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_unknown_path_and_bad_version_are_404(shopify_double: ShopifyDouble) -> None:
    import httpx

    assert httpx.get(f"{shopify_double.url}/nothing").status_code == 404
    response = graphql_post(shopify_double, "{ shop { id } }", version="latest")
    assert response.status_code == 404


def test_every_answer_has_cost_and_throttle_status(shopify_double: ShopifyDouble) -> None:
    body = graphql_post(shopify_double, "{ customers(first: 10) { nodes { id } } }").json()
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 12  # 2 + 10 x 1
    assert cost["actualQueryCost"] == 2  # no customers returned
    assert set(cost["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable",
                                           "restoreRate"}
    mutation = create(shopify_double, email="a@example.com")
    assert mutation["userErrors"] == []
    last = shopify_double.requests[-1]
    # 10 per mutation + 1 for the selected defaultAddress object, which is null: actual 10
    assert last.is_mutation and last.requested_cost == 11 and last.actual_cost == 10


def test_graphql_errors_look_like_shopifys(shopify_double: ShopifyDouble) -> None:
    body = graphql_post(shopify_double, "{ customers(first: 1) { nodes { code } } }").json()
    assert body == {"errors": [{
        "message": "Field 'code' doesn't exist on type 'Customer'",
        "locations": [{"line": 1, "column": 33}],
        "extensions": {"code": "undefinedField", "typeName": "Customer", "fieldName": "code"},
    }]}
    parse = graphql_post(shopify_double, "{ customers(first: 1) {").json()
    assert parse["errors"][0]["extensions"]["code"] == "PARSE_ERROR"
    assert "data" not in parse
    bad_variable = graphql_post(shopify_double, UPDATE, {"input": {"taxExempt": "maybe"}}).json()
    assert bad_variable["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    assert bad_variable["errors"][0]["message"] == (
        "Variable $input of type CustomerInput! was provided invalid value")
    no_page = graphql_post(shopify_double, "{ customers { nodes { id } } }").json()
    assert no_page["errors"][0]["message"] == "you must provide one of first or last"
    assert no_page["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# --------------------------------------------------------------------------- writes


def test_create_normalises_email_and_phone_and_formats_gids(shopify_double: ShopifyDouble
                                                            ) -> None:
    result = create(shopify_double, firstName="  Jane ", lastName="Doe",
                    email=" jane.doe @example.com ", phone="+1 (613) 450-5293",
                    tags=["vip, wholesale", "VIP", " zulu "],
                    addresses=[{"address1": "1 Main St", "city": "Ottawa", "countryCode": "CA",
                                "provinceCode": "ON", "zip": "K1A 0B1"}])
    assert result["userErrors"] == []
    customer = result["customer"]
    assert customer["email"] == "jane.doe@example.com"
    assert customer["phone"] == "+16134505293"
    assert customer["firstName"] == "Jane"
    assert customer["displayName"] == "Jane Doe"
    assert customer["tags"] == ["vip", "wholesale", "zulu"]
    assert customer["id"].startswith("gid://shopify/Customer/")
    address = customer["defaultAddress"]
    assert address["id"].startswith("gid://shopify/MailingAddress/")
    assert address["id"].endswith("?model_name=CustomerAddress")
    assert (address["province"], address["formattedArea"]) == ("Ontario", "Ottawa ON, Canada")
    stored = shopify_double.store.customers()
    assert [c["email"] for c in stored] == ["jane.doe@example.com"]
    assert stored[0]["defaultAddress"]["id"] == address["id"]
    assert shopify_double.store.count() == 1


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"email": "not-an-email"}, [(["email"], "Email is invalid")]),
        ({"email": "foo@bar"}, [(["email"], "Email is invalid")]),
        ({"phone": "abc"}, [(["phone"], "Phone is invalid")]),
        ({"phone": "+1234abcd"}, [(["phone"], "Phone is invalid")]),
        ({"email": "a" * 250 + "@example.com"},
         [(["email"], "Email is too long (maximum is 255 characters)"),
          (["email"], "Email is invalid")]),
        ({"email": ""}, [(None, "A name, phone number, or email address must be present")]),
        ({"firstName": "x" * 256},
         [(["firstName"], "First name is too long (maximum is 255 characters)")]),
        ({"locale": "not-a-locale", "email": "l@example.com"},
         [(["locale"], "Locale is invalid")]),
    ],
)
def test_create_rejects_like_shopify(
    shopify_double: ShopifyDouble, fields: dict[str, Any], expected: list[tuple[Any, str]]
) -> None:
    result = create(shopify_double, **fields)
    assert result["customer"] is None
    assert [(e["field"], e["message"]) for e in result["userErrors"]] == expected
    assert shopify_double.store.count() == 0


def test_email_and_phone_are_unique_after_normalisation(shopify_double: ShopifyDouble) -> None:
    first = create(shopify_double, email="jane@example.com", phone="+16134505293")["customer"]
    other = create(shopify_double, email="bob@example.com")["customer"]
    dup = create(shopify_double, email=" JANE@example.com", phone="(613) 450-5293")
    assert dup["customer"] is None
    assert [(e["field"], e["message"]) for e in dup["userErrors"]] == [
        (["email"], "Email has already been taken"),
        (["phone"], "Phone has already been taken"),
    ]
    update = graphql_post(shopify_double, UPDATE, {"input": {
        "id": other["id"], "phone": "+1 613 450 5293"}}).json()["data"]["customerUpdate"]
    assert update["customer"] is None
    assert update["userErrors"] == [{"field": ["phone"],
                                     "message": "Phone has already been taken"}]
    same = graphql_post(shopify_double, UPDATE, {"input": {
        "id": first["id"], "email": "Jane@Example.com"}}).json()["data"]["customerUpdate"]
    assert same["userErrors"] == []  # its own address in another case is no conflict


def test_update_unknown_customer(shopify_double: ShopifyDouble) -> None:
    body = graphql_post(shopify_double, UPDATE, {"input": {
        "id": "gid://shopify/Customer/999999", "firstName": "Ghost"}}).json()
    assert body["data"]["customerUpdate"] == {
        "customer": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}


def test_updated_at_moves_on_every_write_even_within_one_second(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    clock = Clock(datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC))
    double = shopify_double_factory(clock=clock)
    customer = create(double, email="t@example.com")["customer"]
    assert customer["updatedAt"] == "2026-03-01T12:00:00Z"
    stamps = []
    for i in range(3):
        result = graphql_post(double, UPDATE, {"input": {"id": customer["id"],
                                                         "firstName": f"T{i}"}}).json()
        stamps.append(result["data"]["customerUpdate"]["customer"]["updatedAt"])
    assert stamps == ["2026-03-01T12:00:01Z", "2026-03-01T12:00:02Z", "2026-03-01T12:00:03Z"]
    clock.advance(hours=1)
    result = graphql_post(double, UPDATE, {"input": {"id": customer["id"], "note": "x"}}).json()
    assert result["data"]["customerUpdate"]["customer"]["updatedAt"] == "2026-03-01T13:00:00Z"


def test_customer_set_upserts_by_email_and_delete(shopify_double: ShopifyDouble) -> None:
    mutation = """mutation Set($input: CustomerSetInput!, $identifier: CustomerSetIdentifiers) {
      customerSet(input: $input, identifier: $identifier) {
        customer { id firstName email } userErrors { field message code } } }"""
    created = graphql_post(shopify_double, mutation, {
        "identifier": {"email": "set@example.com"},
        "input": {"email": "set@example.com", "firstName": "One"}}).json()
    customer = created["data"]["customerSet"]["customer"]
    updated = graphql_post(shopify_double, mutation, {
        "identifier": {"email": "SET@example.com"},
        "input": {"email": "set@example.com", "firstName": "Two"}}).json()
    assert updated["data"]["customerSet"]["customer"] == {**customer, "firstName": "Two"}
    dup = graphql_post(shopify_double, mutation, {"input": {"email": "set@example.com"}}).json()
    assert dup["data"]["customerSet"]["userErrors"] == [
        {"field": ["input", "email"], "message": "Email has already been taken", "code": "TAKEN"}]
    delete = """mutation D($input: CustomerDeleteInput!) {
      customerDelete(input: $input) { deletedCustomerId userErrors { field message } } }"""
    gone = graphql_post(shopify_double, delete, {"input": {"id": customer["id"]}}).json()
    assert gone["data"]["customerDelete"]["deletedCustomerId"] == customer["id"]
    again = graphql_post(shopify_double, delete, {"input": {"id": customer["id"]}}).json()
    assert again["data"]["customerDelete"]["userErrors"] == [
        {"field": ["id"], "message": "Customer can't be found"}]


def test_invite_and_address_mutations(shopify_double: ShopifyDouble) -> None:
    customer = create(shopify_double, firstName="Ann", email="ann@example.com")["customer"]
    invite = """mutation I($id: ID!) { customerSendAccountInviteEmail(customerId: $id) {
      customer { state } userErrors { field message code } } }"""
    body = graphql_post(shopify_double, invite, {"id": customer["id"]}).json()
    assert body["data"]["customerSendAccountInviteEmail"]["customer"] == {"state": "INVITED"}
    assert shopify_double.store.invites[0]["to"] == "ann@example.com"
    add = """mutation A($c: ID!, $a: MailingAddressInput!) {
      customerAddressCreate(customerId: $c, address: $a, setAsDefault: true) {
        address { id firstName city country } userErrors { field message } } }"""
    added = graphql_post(shopify_double, add, {"c": customer["id"], "a": {
        "address1": "Dam 1", "city": "Amsterdam", "countryCode": "NL"}}).json()
    address = added["data"]["customerAddressCreate"]["address"]
    assert address["firstName"] == "Ann" and address["country"] == "Netherlands"
    bad = graphql_post(shopify_double, add, {"c": customer["id"], "a": {
        "countryCode": "CA", "provinceCode": "ZZ"}}).json()
    assert bad["data"]["customerAddressCreate"]["userErrors"] == [
        {"field": ["address", "province"], "message": "Province is invalid"}]
    update = """mutation U($c: ID!, $id: ID!, $a: MailingAddressInput!) {
      customerAddressUpdate(customerId: $c, addressId: $id, address: $a) {
        address { city } userErrors { field message } } }"""
    moved = graphql_post(shopify_double, update, {"c": customer["id"], "id": address["id"],
                                                  "a": {"city": "Utrecht"}}).json()
    assert moved["data"]["customerAddressUpdate"]["address"] == {"city": "Utrecht"}
    unknown = graphql_post(shopify_double, update, {
        "c": customer["id"], "id": "gid://shopify/MailingAddress/999999",
        "a": {"city": "X"}}).json()
    assert unknown["errors"][0]["message"] == "invalid id"
    assert unknown["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"
    assert unknown["data"] == {"customerAddressUpdate": None}


ADDRESSES = """
mutation Update($input: CustomerInput!) {
  customerUpdate(input: $input) {
    customer { defaultAddress { id address1 }
               addressesV2(first: 10) { nodes { id address1 city } } }
    userErrors { field message }
  }
}"""


def test_customer_update_address_list_replaces_the_addresses(
    shopify_double: ShopifyDouble,
) -> None:
    """As captured live (customer-update-inline-address-id-semantics, customer-input-addresses):
    listed ids are updated in place, entries without id are added, unlisted addresses are
    deleted, repeats are kept once; the default stays only when it is listed."""
    customer = create(shopify_double, email="list@example.com", addresses=[
        {"address1": "1 Old St", "city": "Ottawa", "countryCode": "CA", "provinceCode": "ON"},
        {"address1": "2 Kept St", "city": "Toronto", "countryCode": "CA", "provinceCode": "ON"},
    ])["customer"]
    stored = shopify_double.store.customer(customer["id"])
    assert stored is not None
    old, kept = (a["id"] for a in stored["addresses"])
    assert customer["defaultAddress"]["id"] == old

    def update(addresses: list[dict[str, Any]]) -> dict[str, Any]:
        body = graphql_post(shopify_double, ADDRESSES, {
            "input": {"id": customer["id"], "addresses": addresses}}).json()
        result: dict[str, Any] = body["data"]["customerUpdate"]
        return result

    new = {"address1": "3 New St", "city": "Montreal", "countryCode": "CA", "provinceCode": "QC"}
    first = update([{"id": kept, "city": "Hamilton"}, new, dict(new)])
    assert first["userErrors"] == []
    nodes = first["customer"]["addressesV2"]["nodes"]
    assert [(n["address1"], n["city"]) for n in nodes] == [
        ("2 Kept St", "Hamilton"), ("3 New St", "Montreal")]
    assert nodes[0]["id"] == kept  # updated in place
    created = nodes[1]["id"]
    # the old default was not listed: it is deleted, and the first listed one is the default
    assert first["customer"]["defaultAddress"] == {"id": kept, "address1": "2 Kept St"}
    gone = graphql_post(shopify_double, """mutation U($c: ID!, $id: ID!) {
      customerAddressUpdate(customerId: $c, addressId: $id, address: {city: "X"}) {
        address { id } } }""", {"c": customer["id"], "id": old}).json()
    assert gone["errors"][0]["extensions"]["code"] == "RESOURCE_NOT_FOUND"

    # a listed default stays the default, even when it is not listed first
    second = update([{"address1": "4 Next St", "city": "Laval", "countryCode": "CA",
                      "provinceCode": "QC"}, {"id": kept}])
    assert second["customer"]["defaultAddress"]["id"] == kept
    assert [n["address1"] for n in second["customer"]["addressesV2"]["nodes"]] == [
        "2 Kept St", "4 Next St"]
    assert created not in {n["id"] for n in second["customer"]["addressesV2"]["nodes"]}

    unknown = update([{"id": created, "city": "Nowhere"}])  # deleted by the last update
    assert unknown == {"customer": None, "userErrors": [
        {"field": ["addresses", "0", "id"], "message": "Customer address does not exist"}]}
    after = shopify_double.store.customer(customer["id"])
    assert after is not None and len(after["addresses"]) == 2  # unchanged by the refusal

    cleared = update([])
    assert cleared["customer"] == {"defaultAddress": None, "addressesV2": {"nodes": []}}


# --------------------------------------------------------------------------- reads


def test_pagination_with_opaque_cursors(shopify_double: ShopifyDouble) -> None:
    created = [create(shopify_double, email=f"p{i}@example.com")["customer"]["id"]
               for i in range(7)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = graphql_post(shopify_double, PAGE, {"first": 3, "after": after}).json()[
            "data"]["customers"]
        seen += ids(page)
        pages += 1
        assert page["pageInfo"]["hasPreviousPage"] is (pages > 1)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == created and pages == 3
    cursor = json.loads(base64.b64decode(page["edges"][0]["cursor"]))
    assert set(cursor) == {"last_id", "last_value"}
    last = graphql_post(shopify_double, PAGE, {"last": 2}).json()["data"]["customers"]
    assert ids(last) == created[-2:]
    assert last["pageInfo"]["hasPreviousPage"] and not last["pageInfo"]["hasNextPage"]
    before = graphql_post(shopify_double, PAGE, {
        "last": 2, "before": last["pageInfo"]["startCursor"]}).json()["data"]["customers"]
    assert ids(before) == created[-4:-2]
    backwards = graphql_post(shopify_double, PAGE, {"first": 3, "reverse": True}).json()
    assert ids(backwards["data"]["customers"]) == created[::-1][:3]
    empty = graphql_post(shopify_double, PAGE, {"first": 5, "query": "email:nobody"}).json()
    assert empty["data"]["customers"]["pageInfo"] == {
        "hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None}


def test_search_updated_at_comparators_and_sort(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    clock = Clock(datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC))
    double = shopify_double_factory(clock=clock)
    made = []
    for i in range(4):  # 2026-01-01T00:00:00Z, +1 day, +2 days, +3 days
        made.append(create(double, email=f"u{i}@example.com")["customer"]["id"])
        clock.advance(days=1)

    def search(query: str, **extra: Any) -> list[str]:
        variables = {"first": 50, "query": query, **extra}
        return ids(graphql_post(double, PAGE, variables).json()["data"]["customers"])

    assert search("updated_at:>'2026-01-02T00:00:00Z'") == made[2:]
    assert search("updated_at:>='2026-01-02T00:00:00Z'") == made[1:]
    assert search("updated_at:<'2026-01-02T00:00:00Z'") == made[:1]
    assert search("updated_at:<='2026-01-02T00:00:00Z'") == made[:2]
    assert search("updated_at:2026-01-03") == [made[2]]
    assert search("updated_at:>=2026-01-02 updated_at:<2026-01-04") == made[1:3]
    # an update moves the customer to the end of an UPDATED_AT walk
    graphql_post(double, UPDATE, {"input": {"id": made[0], "firstName": "Moved"}})
    assert search("", sortKey="UPDATED_AT") == [*made[1:], made[0]]
    assert search("updated_at:>'2026-01-04T00:00:00Z'", sortKey="UPDATED_AT") == [made[0]]


def test_search_email_phone_and_free_text(shopify_double: ShopifyDouble) -> None:
    jane = create(shopify_double, firstName="Jane", lastName="Norman",
                  email="jane.doe@example.com", phone="+31612345678")["customer"]["id"]
    doe = create(shopify_double, firstName="Bob", email="doe.jane@example.com")["customer"]["id"]
    other = create(shopify_double, firstName="Eve", email="eve@other.org",
                   tags=["VIP"])["customer"]["id"]

    def search(query: str) -> list[str]:
        return ids(graphql_post(shopify_double, PAGE, {"first": 50, "query": query}).json()[
            "data"]["customers"])

    # email is tokenised (both share the tokens) unless quoted
    assert search("email:jane.doe@example.com") == [jane, doe]
    assert search('email:"jane.doe@example.com"') == [jane]
    assert search("email:example.com") == [jane, doe]
    assert search("email:*") == [jane, doe, other]
    assert search("phone:+31612345678") == [jane]
    assert search("phone:31612345678") == [jane]
    assert search("phone:+3161234567") == []
    assert search("norman") == [jane]
    assert search("jan*") == [jane, doe]
    assert search("tag:vip") == [other]
    assert search("email:eve@other.org OR first_name:Bob") == [doe, other]
    assert search("-email:example.com") == [other]
    assert search("NOT first_name:Jane AND email:example.com") == [doe]
    body = graphql_post(shopify_double, PAGE, {"first": 5, "query": "colour:red"}).json()
    assert ids(body["data"]["customers"]) == [jane, doe, other]  # unknown field: ignored
    warning = body["extensions"]["search"][0]["warnings"][0]
    assert warning["code"] == "invalid_field"


def test_customer_by_id_node_count_orders_and_shop(
    shopify_double_factory: Callable[..., ShopifyDouble],
) -> None:
    double = shopify_double_factory(
        seed_customers=[{"first_name": "Jane", "last_name": "Doe", "email": "jane@example.com",
                         "addresses": [{"address1": "Dam 1", "city": "Amsterdam",
                                        "country_code": "NL", "default": True}]}],
        seed_orders=[{"name": "#1001", "customer_email": "jane@example.com",
                      "billing_address": {"address1": "Dam 1", "city": "Amsterdam",
                                          "country_code": "NL"}}],
        shop={"shipsToCountries": ["NL", "BE"]},
    )
    customer = double.store.customers()[0]
    order_id = double.store.orders()[0]["id"]
    query = """query Q($c: ID!, $o: ID!) {
      customer(id: $c) { id email numberOfOrders canDelete }
      node(id: $c) { ... on Customer { email } }
      customersCount { count precision }
      order(id: $o) { name customer { id } billingAddress { city countryCodeV2 } shippingAddress { city } }
      shop { shipsToCountries }
    }"""
    data = graphql_post(double, query, {"c": customer["id"], "o": order_id}).json()["data"]
    assert data["customer"] == {"id": customer["id"], "email": "jane@example.com",
                                "numberOfOrders": "1", "canDelete": False}
    assert data["node"] == {"email": "jane@example.com"}
    assert data["customersCount"] == {"count": 1, "precision": "EXACT"}
    assert data["order"] == {"name": "#1001", "customer": {"id": customer["id"]},
                             "billingAddress": {"city": "Amsterdam", "countryCodeV2": "NL"},
                             "shippingAddress": None}
    assert data["shop"] == {"shipsToCountries": ["NL", "BE"]}


ZONES = """query Zones($first: Int!, $after: String) {
  deliveryProfiles(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id name default
      profileLocationGroups {
        locationGroupZones(first: 10) {
          nodes { zone { id name countries {
            id name code { countryCode restOfWorld } provinces { id code name } } } } } } }
  }
}"""


def zone_countries(body: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Zone name per country code and the country's provinces (code -> name)."""
    found: dict[str, dict[str, str]] = {}
    for profile in body["data"]["deliveryProfiles"]["nodes"]:
        for group in profile["profileLocationGroups"]:
            for node in group["locationGroupZones"]["nodes"]:
                for country in node["zone"]["countries"]:
                    found[country["code"]["countryCode"]] = {
                        "zone": node["zone"]["name"],
                        **{p["code"]: p["name"] for p in country["provinces"]}}
    return found


def test_delivery_profiles_follow_the_countries_the_shop_ships_to(
    shopify_double: ShopifyDouble,
) -> None:
    body = graphql_post(shopify_double, ZONES, {"first": 5}).json()
    connection = body["data"]["deliveryProfiles"]
    assert connection["pageInfo"]["hasNextPage"] is False
    [profile] = connection["nodes"]
    assert profile["id"] == "gid://shopify/DeliveryProfile/1"
    assert (profile["name"], profile["default"]) == ("General profile", True)
    countries = zone_countries(body)
    assert sorted(countries) == sorted(shopify_double.store.shop["shipsToCountries"])
    assert countries["US"]["zone"] == "Domestic" and countries["DE"]["zone"] == "International"
    assert countries["US"]["CA"] == "California" and countries["US"]["DC"] == (
        "District of Columbia")
    assert countries["CA"]["QC"] == "Quebec" and len(countries["CA"]) == 1 + 13
    assert countries["DE"] == {"zone": "International"}  # no provinces in Shopify
    nodes = profile["profileLocationGroups"][0]["locationGroupZones"]["nodes"]
    country = nodes[1]["zone"]["countries"][0]
    assert country["code"] == {"countryCode": "CA", "restOfWorld": False}
    assert country["name"] == "Canada" and country["id"].startswith(
        "gid://shopify/DeliveryCountry/")
    # every province the zones list is one the double accepts on a customer's address
    for iso, listed in countries.items():
        for code, name in listed.items():
            if code != "zone":
                assert normalize.province(iso, code) == (code, name)
    zone = graphql_post(shopify_double, "query N($id: ID!) { node(id: $id) { id "
                        "... on DeliveryZone { name } } }",
                        {"id": nodes[0]["zone"]["id"]}).json()
    assert zone["data"]["node"] == {"id": nodes[0]["zone"]["id"], "name": "Domestic"}


def test_seeded_shipping_zones(shopify_double: ShopifyDouble) -> None:
    seed_store(shopify_double.store, {"shop": {"shipping_zones": [
        {"name": "Home", "countries": [{"code": "US", "provinces": ["CA", "New York"]}]},
        {"name": "Europe", "countries": ["NL", {"code": "gr"}]},
    ]}})
    body = graphql_post(shopify_double, ZONES, {"first": 1}).json()
    assert zone_countries(body) == {
        "US": {"zone": "Home", "CA": "California", "NY": "New York"},
        "NL": {"zone": "Europe"},
        "GR": {"zone": "Europe"},
    }
    shop = graphql_post(shopify_double, "{ shop { shipsToCountries } }").json()
    assert shop["data"]["shop"]["shipsToCountries"] == ["US", "NL", "GR"]  # the zones'
    for zones, problem in (
        ([{"countries": [{"code": "US", "provinces": ["ZZ"]}]}],
         "/shop/shipping_zones/0/countries/0/provinces/0: 'ZZ' is not a province of US"),
        ([{"countries": [{"code": "NL", "provinces": ["NH"]}]}],
         "/shop/shipping_zones/0/countries/0/provinces: NL has no provinces in Shopify"),
        ([{"name": "A", "countries": ["DE"]}, {"name": "B", "countries": ["DE"]}],
         "/shop/shipping_zones/1/countries/0: DE is already in zone 'A'"),
        ([{"countries": ["XY"]}],
         "/shop/shipping_zones/0/countries/0/code: 'XY' is not a country code Shopify knows"),
    ):
        with pytest.raises(ConfigError) as raised:
            seed_store(shopify_double.store, {"shop": {"shipping_zones": zones}}, "seed.yaml")
        assert str(raised.value).startswith(f"seed.yaml: {problem}")


def test_seed_from_engine_models(shopify_double: ShopifyDouble) -> None:
    models = [
        ShopifyCustomer(id="", first_name="Jane", last_name="Doe", email="jane@example.com",
                        phone="+31612345678", tags=("vip",),
                        addresses=(ShopifyAddress(address1="Dam 1", city="Amsterdam",
                                                  country_code="NL", default=True),)),
        ShopifyCustomer(id="gid://shopify/Customer/777", first_name="Bob"),
    ]
    gids = seed_from_models(shopify_double, models)
    assert gids[1] == "gid://shopify/Customer/777"
    stored = {c["id"]: c for c in shopify_double.store.customers()}
    assert stored[gids[0]]["phone"] == "+31612345678"
    assert stored[gids[0]]["defaultAddress"]["countryCode"] == "NL"
    assert stored[gids[0]]["tags"] == ["vip"]
    fresh = create(shopify_double, email="new@example.com")["customer"]["id"]
    assert int(fresh.rsplit("/", 1)[1]) > 777  # new ids never collide with seeded ones
