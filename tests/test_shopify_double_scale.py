"""The Shopify double at size: pages, indexes and bulk jobs that do not scan or block the
store, and a server that stays quiet when clients go away."""

from __future__ import annotations

import json
import logging
import random
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import pytest
from custsync.connectors.shopify_double import Fault, ShopifyDouble, api, bulk
from custsync.connectors.shopify_double.store import gid_number

from fixtures_shopify import LARGE_BUCKET, graphql_post
from test_shopify_double_bulk import (
    CREATE,
    POLL,
    RUN_MUTATION,
    RUN_QUERY,
    poll,
    stage_and_upload,
)

# ---------------------------------------------------------------------------- pagination


def _reference(items: Sequence[Mapping[str, Any]], args: Mapping[str, Any], sort: str
               ) -> tuple[list[str], dict[str, Any]]:
    """The double's original connection: sort everything, scan for the cursors."""
    key = api._sort_key(sort)
    ordered = sorted(items, key=key, reverse=bool(args.get("reverse")))

    def position(cursor: str) -> tuple[Any, int]:
        last_id, last_value = api.decode_cursor(cursor)
        if sort in ("ID", "RELEVANCE", "LOCATION"):
            return (last_id, last_id)
        return (last_value, last_id)

    start, end = 0, len(ordered)
    reverse = bool(args.get("reverse"))
    if args.get("after"):
        mark = position(args["after"])
        start = next((i for i, r in enumerate(ordered)
                      if (key(r) < mark if reverse else key(r) > mark)), len(ordered))
    if args.get("before"):
        mark = position(args["before"])
        end = next((i for i, r in enumerate(ordered)
                    if (key(r) <= mark if reverse else key(r) >= mark)), len(ordered))
        end = max(end, start)
    first, last = args.get("first"), args.get("last")
    if first is not None:
        end = min(end, start + first)
    elif last is not None:
        start = max(start, end - last)
    page = ordered[start:end]
    return [str(r["id"]) for r in page], {"hasNextPage": end < len(ordered),
                                         "hasPreviousPage": start > 0}


def _record(number: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Customer/{number}",
        "updatedAt": f"2026-01-0{rng.randint(1, 3)}T00:00:0{rng.randint(0, 2)}Z",
        "createdAt": f"2026-01-0{rng.randint(1, 3)}T00:00:00Z",
        "firstName": rng.choice(["Ann", "bob", "Cleo", None]),
        "lastName": rng.choice(["Zed", "young", None]),
    }


@pytest.mark.parametrize("seed", range(6))
def test_pages_by_bisection_and_lazy_filter_match_the_full_sort(seed: int) -> None:
    rng = random.Random(seed)
    records = [_record(n, rng) for n in rng.sample(range(1000, 1100), 40)]
    wanted = {r["id"] for r in records if rng.random() < 0.4}

    def predicate(record: Mapping[str, Any]) -> bool:
        return record["id"] in wanted

    for _ in range(150):
        sort = rng.choice(["ID", "UPDATED_AT", "CREATED_AT", "NAME"])
        filtered = rng.random() < 0.6
        candidates = [r for r in records if r["id"] in wanted] if filtered else records
        ordered = api.sort_items(records, sort)
        cursors = [api.encode_cursor(gid_number(r["id"]) or 0, api._SORT_VALUES[sort](r))
                   for r in rng.sample(records, 3)]
        args: dict[str, Any] = {"reverse": rng.random() < 0.5}
        args[rng.choice(["first", "last"])] = rng.choice([0, 1, 3, 7, 50])
        if rng.random() < 0.6:
            args["after"] = cursors[0]
        if rng.random() < 0.4:
            args["before"] = cursors[1]
        expected_ids, expected_info = _reference(candidates, args, sort)
        got = api.connection((), args, sort=sort, ordered=lambda o=ordered: o,
                             predicate=predicate if filtered else None)
        assert [n["id"] for n in got["nodes"]] == expected_ids, (sort, args, filtered)
        assert {k: got["pageInfo"][k] for k in expected_info} == expected_info, (sort, args)
        plain = api.connection(candidates, args, sort=sort)
        assert [n["id"] for n in plain["nodes"]] == expected_ids


def test_paging_through_a_store_sorts_it_once_until_the_next_write(
    shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    shopify_double.store.load([{"email": f"p{i}@example.com"} for i in range(120)])
    sorts: list[str] = []
    real = api.sort_items

    def counting(items: Sequence[Mapping[str, Any]], sort: str) -> api.SortedItems:
        sorts.append(sort)
        return real(items, sort)

    monkeypatch.setattr(api, "sort_items", counting)
    page = """query($after: String) { customers(first: 25, after: $after, sortKey: UPDATED_AT,
      query: "email:*") { nodes { id } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    while True:
        data = shopify_double.execute(page, {"after": after})["data"]["customers"]
        seen += [n["id"] for n in data["nodes"]]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 120
    assert sorts.count("UPDATED_AT") == 1  # five pages, one sort
    shopify_double.execute(CREATE, {"input": {"email": "new@example.com"}})
    shopify_double.execute(page, {"after": None})
    assert sorts.count("UPDATED_AT") == 2  # the write made the view stale


# ---------------------------------------------------------------------------- indexes

ADDRESS_DELETE = """mutation($c: ID!, $a: ID!) { customerAddressDelete(customerId: $c,
  addressId: $a) { deletedAddressId userErrors { message } } }"""
ADDRESS_CREATE = """mutation($c: ID!) { customerAddressCreate(customerId: $c,
  address: {address1: "New 1", city: "Utrecht", countryCode: NL}) { address { id } } }"""
SET = """mutation($input: CustomerSetInput!, $identifier: CustomerSetIdentifiers) {
  customerSet(input: $input, identifier: $identifier) { customer { id } userErrors { message } } }"""
DELETE = """mutation($id: ID!) { customerDelete(input: {id: $id}) { deletedCustomerId } }"""


def test_address_lookups_follow_every_write(shopify_double: ShopifyDouble) -> None:
    store = shopify_double.store
    store.load([{"id": "gid://shopify/Customer/50", "email": "seeded@example.com",
                 "addresses": [{"id": "gid://shopify/MailingAddress/7", "address1": "A 1",
                                "city": "Delft", "countryCode": "NL"}]}])
    ids = [shopify_double.execute(CREATE, {"input": {
        "email": f"c{i}@example.com",
        "addresses": [{"address1": f"{i} Main", "city": "Austin", "countryCode": "US"}] * 2,
    }})["data"]["customerCreate"]["customer"]["id"] for i in range(3)]
    shopify_double.execute(ADDRESS_CREATE, {"c": ids[0]})
    first = store.customer(ids[1])
    assert first is not None
    shopify_double.execute(ADDRESS_DELETE, {"c": ids[1], "a": first["addresses"][0]["id"]})
    shopify_double.execute(SET, {"identifier": {"id": ids[2]}, "input": {
        "email": "c2@example.com", "addresses": [{"address1": "Replaced", "city": "Gouda",
                                                  "countryCode": "NL"}]}})
    replaced = [a["id"] for a in (store.customer(ids[2]) or {})["addresses"]]
    gone = [a["id"] for a in (first["addresses"][:1])]
    shopify_double.execute(DELETE, {"id": ids[0]})

    every = [(c["id"], a["id"]) for c in store.customers() for a in c["addresses"]]
    assert ("gid://shopify/Customer/50", "gid://shopify/MailingAddress/7?model_name="
            "CustomerAddress") in every
    assert any(address in replaced for _, address in every)
    with store.lock:
        for owner, address in every:
            found = store.find_address(address)
            assert found is not None and found[0]["id"] == owner and found[1]["id"] == address
        for address in gone:
            assert store.find_address(address) is None
        assert all(c["id"] != ids[0] for c in store.all_customers())
        assert [c["id"] for c in store.all_customers()] == sorted(
            (c["id"] for c in store.all_customers()), key=lambda g: gid_number(g) or 0)


# ---------------------------------------------------------------------------- bulk slices


def test_a_bulk_mutation_runs_in_slices_and_polls_are_answered_meanwhile(
    shopify_double_factory: Callable[..., ShopifyDouble], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "SLICE_SECONDS", 0.005)
    double = shopify_double_factory(bulk_seconds=0.01, **LARGE_BUCKET)
    lines = [{"input": {"email": f"bulk{i}@example.com", "phone": f"+1206555{i:04d}"}}
             for i in range(400)]
    key = stage_and_upload(double, "".join(json.dumps(v) + "\n" for v in lines).encode())
    op = graphql_post(double, RUN_MUTATION, {"mutation": CREATE, "path": key}).json()[
        "data"]["bulkOperationRunMutation"]["bulkOperation"]
    partial: list[int] = []
    slowest = 0.0
    for _ in range(2000):
        started = time.monotonic()
        status = graphql_post(double, POLL, {"id": op["id"]}).json()["data"]["bulkOperation"]
        slowest = max(slowest, time.monotonic() - started)
        if status["status"] == "COMPLETED":
            break
        if status["status"] == "RUNNING" and 0 < double.store.count() < 400:
            partial.append(double.store.count())
        time.sleep(0.002)
    assert status["status"] == "COMPLETED" and status["objectCount"] == "400"
    assert partial, "no poll was answered while the job was part-way"
    assert slowest < 1.0
    results = [json.loads(line) for line in httpx.get(status["url"]).text.splitlines()]
    assert [r["__lineNumber"] for r in results] == list(range(400))
    assert all(r["data"]["customerCreate"]["userErrors"] == [] for r in results)
    assert double.store.count() == 400


def test_a_canceled_bulk_mutation_stops_between_slices(
    shopify_double_factory: Callable[..., ShopifyDouble], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "SLICE_SECONDS", 0.005)
    double = shopify_double_factory(bulk_seconds=0.01, **LARGE_BUCKET)
    lines = [{"input": {"email": f"cancel{i}@example.com"}} for i in range(1000)]
    key = stage_and_upload(double, "".join(json.dumps(v) + "\n" for v in lines).encode())
    op = graphql_post(double, RUN_MUTATION, {"mutation": CREATE, "path": key}).json()[
        "data"]["bulkOperationRunMutation"]["bulkOperation"]
    deadline = time.monotonic() + 30
    while double.store.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    cancel = """mutation X($id: ID!) { bulkOperationCancel(id: $id) {
      bulkOperation { id status } userErrors { field message } } }"""
    graphql_post(double, cancel, {"id": op["id"]})
    assert poll(double, op["id"])["status"] == "CANCELED"
    created = double.store.count()
    time.sleep(0.1)
    assert 0 < double.store.count() == created < 1000


EXPORT = """{ customers(query: "tag:keep") { edges { node { id email
  addressesV2 { edges { node { id city } } } } } }
  orders { edges { node { id name } } } }"""


def _export(double: ShopifyDouble) -> tuple[bytes, dict[str, Any]]:
    op = graphql_post(double, RUN_QUERY, {"query": EXPORT}).json()[
        "data"]["bulkOperationRunQuery"]["bulkOperation"]
    done = poll(double, op["id"])
    return httpx.get(done["url"]).content, done


def test_a_bulk_export_in_slices_gives_the_same_file(
    shopify_double_factory: Callable[..., ShopifyDouble], monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = [{"first_name": f"C{i}", "email": f"c{i}@example.com",
                  "tags": ["keep"] if i % 4 else ["drop"],
                  "addresses": [{"address1": f"{i} Main", "city": f"City/{i}",
                                 "country_code": "US"}] * (i % 3)}
                 for i in range(150)]
    orders = [{"name": f"#{1000 + i}", "customer_email": f"c{i}@example.com"} for i in range(5)]
    whole, whole_op = _export(shopify_double_factory(seed_customers=customers,
                                                     seed_orders=orders))
    monkeypatch.setattr(bulk, "EXPORT_FIRST_SLICE", 7)
    monkeypatch.setattr(bulk, "SLICE_SECONDS", 0.001)  # the next slices stay small too
    monkeypatch.setattr(bulk, "FINISH_ON_READ_LINES", 0)
    sliced_double = shopify_double_factory(seed_customers=customers, seed_orders=orders)
    sliced, sliced_op = _export(sliced_double)
    assert sliced == whole
    for field in ("objectCount", "rootObjectCount", "fileSize"):
        assert sliced_op[field] == whole_op[field]
    lines = [json.loads(line) for line in sliced.decode().splitlines()]
    roots = [line for line in lines if "__parentId" not in line]
    assert [r.get("email") for r in roots[:112]] == [
        f"c{i}@example.com" for i in range(150) if i % 4]
    assert [r.get("name") for r in roots[112:]] == [f"#{1000 + i}" for i in range(5)]


# ---------------------------------------------------------------------------- server


def test_a_client_that_goes_away_leaves_no_traceback(
    shopify_double: ShopifyDouble, capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custsync.connectors.shopify_double.server")
    shopify_double.inject(Fault(kind="delay", seconds=0.3, times=2))
    body = json.dumps({"query": "{ shop { name } }"}).encode()
    request = (f"POST /admin/api/2026-07/graphql.json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"X-Shopify-Access-Token: {shopify_double.token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body
    for _ in range(2):  # reset by the peer while the answer is late
        with socket.create_connection(("127.0.0.1", shopify_double.port)) as sock:
            sock.sendall(request)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + 10
    while len(shopify_double.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    # and a client that times out (httpx), as the connector's fault tests do
    shopify_double.inject(Fault(kind="delay", seconds=0.4))
    with pytest.raises(httpx.TimeoutException):
        httpx.post(shopify_double.graphql_url(), content=body, timeout=0.1, headers={
            "X-Shopify-Access-Token": shopify_double.token})
    time.sleep(0.5)
    assert graphql_post(shopify_double, "{ shop { name } }").status_code == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err
    assert any("went away" in r.getMessage() for r in caplog.records
               if r.levelno == logging.DEBUG)


def test_a_write_is_logged_when_it_happened_not_when_its_late_answer_went_out(
    shopify_double: ShopifyDouble,
) -> None:
    shopify_double.inject(Fault(kind="delay", seconds=2.0, after_effect=True))
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        httpx.post(shopify_double.graphql_url(), timeout=0.2,
                   headers={"X-Shopify-Access-Token": shopify_double.token},
                   json={"query": CREATE, "variables": {"input": {"email": "d@example.com"}}})
    assert shopify_double.mutation_count() == 1
    assert [r.fault for r in shopify_double.requests] == ["delay"]
    assert time.monotonic() - started < 1.5
