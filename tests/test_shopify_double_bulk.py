"""Bulk query export and bulk mutation import through the Shopify double, over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from custsync.connectors.shopify_double import Fault, ShopifyDouble

from fixtures_shopify import graphql_post

OPERATION_FIELDS = "id status type errorCode objectCount rootObjectCount fileSize url query"
RUN_QUERY = """mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { FIELDS } userErrors { field message code } } }""".replace(
    "FIELDS", OPERATION_FIELDS)
POLL = "query Poll($id: ID!) { bulkOperation(id: $id) { FIELDS } }".replace(
    "FIELDS", OPERATION_FIELDS)
CURRENT = "query { currentBulkOperation(type: MUTATION) { FIELDS } }".replace(
    "FIELDS", OPERATION_FIELDS)
STAGE = """mutation Stage($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } } }"""
RUN_MUTATION = """mutation RunMutation($mutation: String!, $path: String!) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $path) {
    bulkOperation { FIELDS } userErrors { field message code } } }""".replace(
    "FIELDS", OPERATION_FIELDS)
CREATE = ("mutation call($input: CustomerInput!) { customerCreate(input: $input) "
          "{ customer { id email } userErrors { field message } } }")
EXPORT = """{ customers { edges { node { id email updatedAt
  addressesV2 { edges { node { id city } } } } } } }"""


def seeded(factory: Callable[..., ShopifyDouble]) -> ShopifyDouble:
    customers: list[dict[str, Any]] = [
        {"first_name": f"C{i}", "email": f"c{i}@example.com",
         "addresses": [{"address1": f"{i} Main", "city": f"City/{i}", "country_code": "US"}
                       for _ in range(i % 3)]}
        for i in range(6)
    ]
    return factory(seed_customers=customers, bulk_seconds=0.05)


def poll(double: ShopifyDouble, gid: str) -> dict[str, Any]:
    seen = []
    for _ in range(200):
        op = graphql_post(double, POLL, {"id": gid}).json()["data"]["bulkOperation"]
        seen.append(op["status"])
        if op["status"] in ("COMPLETED", "FAILED", "CANCELED"):
            return op
        time.sleep(0.01)
    raise AssertionError(f"bulk operation never finished: {seen}")


def test_bulk_query_export_end_to_end(shopify_double_factory: Callable[..., ShopifyDouble]
                                      ) -> None:
    double = seeded(shopify_double_factory)
    started = graphql_post(double, RUN_QUERY, {"query": EXPORT}).json()[
        "data"]["bulkOperationRunQuery"]
    assert started["userErrors"] == []
    op = started["bulkOperation"]
    assert (op["status"], op["type"], op["objectCount"], op["url"]) == (
        "CREATED", "QUERY", "0", None)
    done = poll(double, op["id"])
    assert done["status"] == "COMPLETED"
    raw = httpx.get(done["url"]).content.decode()
    assert "\\/" in raw  # Shopify escapes "/" in its JSONL
    lines = [json.loads(line) for line in raw.splitlines()]
    roots = [line for line in lines if "__parentId" not in line]
    children = [line for line in lines if "__parentId" in line]
    assert [r["email"] for r in roots] == [f"c{i}@example.com" for i in range(6)]
    assert all("addressesV2" not in r for r in roots)
    assert len(children) == sum(i % 3 for i in range(6))
    by_parent = {r["id"]: r for r in roots}
    assert all(c["__parentId"] in by_parent for c in children)
    assert children[0]["city"].startswith("City/")
    assert done["objectCount"] == str(len(lines)) and done["rootObjectCount"] == "6"
    assert done["fileSize"] == str(len(raw.encode()))


def test_bulk_query_with_no_results_has_no_url(shopify_double: ShopifyDouble) -> None:
    started = graphql_post(shopify_double, RUN_QUERY, {
        "query": "{ customers(query: \"email:nobody@example.com\") { edges { node { id } } } }"
    }).json()["data"]["bulkOperationRunQuery"]
    done = poll(shopify_double, started["bulkOperation"]["id"])
    assert (done["status"], done["objectCount"], done["url"]) == ("COMPLETED", "0", None)


def test_bulk_query_validation_like_shopify(shopify_double: ShopifyDouble) -> None:
    def errors(query: str) -> list[dict[str, Any]]:
        body = graphql_post(shopify_double, RUN_QUERY, {"query": query}).json()
        result: list[dict[str, Any]] = body["data"]["bulkOperationRunQuery"]["userErrors"]
        return result

    assert errors("{ shop { id } }")[0]["message"] == (
        "Bulk queries must contain at least one connection.")
    assert errors("{ customers { nodes { id } } }")[0]["message"].startswith(
        "All connection fields in a bulk query must select their contents using 'edges'")
    assert errors("{ customers { edges { node { id ")[0]["message"].startswith(
        "Invalid bulk query: Syntax Error")
    assert errors("mutation { customerDelete(input: {id: \"x\"}) { deletedCustomerId } }")[0][
        "message"] == "Invalid operation type. Only `query` operations are supported."
    assert errors("{ node(id: \"gid://shopify/Customer/1\") { id } }")[0]["code"] == "INVALID"


def stage_and_upload(double: ShopifyDouble, content: bytes, filename: str = "in.jsonl"
                     ) -> str:
    target = graphql_post(double, STAGE, {"input": [{
        "resource": "BULK_MUTATION_VARIABLES", "filename": filename,
        "mimeType": "text/jsonl", "httpMethod": "POST"}]}).json()[
        "data"]["stagedUploadsCreate"]["stagedTargets"][0]
    fields = {p["name"]: p["value"] for p in target["parameters"]}
    response = httpx.post(target["url"], data=fields,
                          files={"file": (filename, content, "text/jsonl")})
    assert response.status_code == 201
    assert "<PostResponse>" in response.text
    return fields["key"]


def test_bulk_mutation_end_to_end(shopify_double_factory: Callable[..., ShopifyDouble]
                                  ) -> None:
    double = shopify_double_factory(bulk_seconds=0.05)
    graphql_post(double, CREATE, {"input": {"email": "taken@example.com"}})
    lines = [{"input": {"email": "new1@example.com", "firstName": "N1"}},
             {"input": {"email": "TAKEN@example.com"}},
             {"input": {"email": "new2@example.com", "phone": "+1 613 450 5293"}}]
    key = stage_and_upload(double, "".join(json.dumps(v) + "\n" for v in lines).encode())
    started = graphql_post(double, RUN_MUTATION, {"mutation": CREATE, "path": key}).json()
    op = started["data"]["bulkOperationRunMutation"]["bulkOperation"]
    assert (op["status"], op["type"]) == ("CREATED", "MUTATION")
    current = graphql_post(double, CURRENT).json()["data"]["currentBulkOperation"]
    assert current["id"] == op["id"]
    done = poll(double, op["id"])
    assert (done["status"], done["objectCount"], done["rootObjectCount"]) == (
        "COMPLETED", "3", "3")
    results = [json.loads(line) for line in httpx.get(done["url"]).text.splitlines()]
    assert [r["__lineNumber"] for r in results] == [0, 1, 2]
    payloads = [r["data"]["customerCreate"] for r in results]
    assert payloads[0]["customer"]["email"] == "new1@example.com"
    assert payloads[1] == {"customer": None, "userErrors": [
        {"field": ["email"], "message": "Email has already been taken"}]}
    assert payloads[2]["userErrors"] == []
    assert double.store.count() == 3



UPDATE = ("mutation call($input: CustomerInput!) { customerUpdate(input: $input) "
          "{ customer { id email lastName updatedAt } userErrors { field message } } }")


def test_bulk_customer_update_runs_per_line_with_user_errors_like_shopify(
    shopify_double_factory: Callable[..., ShopifyDouble]
) -> None:
    """Shopify runs any Admin mutation in bulk (since 2026-01, all versions): customerUpdate
    lines update their customers; a refused line carries its userErrors, the others go on."""
    double = shopify_double_factory(bulk_seconds=0.05)
    made = [graphql_post(double, CREATE, {"input": {"email": f"u{i}@example.com"}}).json()[
        "data"]["customerCreate"]["customer"] for i in range(3)]
    before = {c["id"]: c["updatedAt"] for c in double.store.customers()}
    lines = [{"input": {"id": made[0]["id"], "lastName": "Renamed"}},
             {"input": {"id": made[1]["id"], "email": "u2@example.com"}},  # u2's e-mail
             {"input": {"id": "gid://shopify/Customer/999999", "lastName": "Nobody"}},
             {"input": {"id": made[2]["id"], "lastName": "Also"}}]
    key = stage_and_upload(double, "".join(json.dumps(v) + "\n" for v in lines).encode())
    started = graphql_post(double, RUN_MUTATION, {"mutation": UPDATE, "path": key}).json()
    assert started["data"]["bulkOperationRunMutation"]["userErrors"] == []
    op = started["data"]["bulkOperationRunMutation"]["bulkOperation"]
    done = poll(double, op["id"])
    assert (done["status"], done["objectCount"]) == ("COMPLETED", "4")
    results = [json.loads(line) for line in httpx.get(done["url"]).text.splitlines()]
    payloads = {r["__lineNumber"]: r["data"]["customerUpdate"] for r in results}
    assert payloads[0]["customer"]["lastName"] == "Renamed"
    assert payloads[0]["customer"]["updatedAt"] > before[made[0]["id"]]
    assert payloads[1] == {"customer": None, "userErrors": [
        {"field": ["email"], "message": "Email has already been taken"}]}
    assert payloads[2]["customer"] is None
    assert payloads[2]["userErrors"][0]["message"] == "Customer does not exist"
    assert payloads[3]["customer"]["lastName"] == "Also"
    after = {c["id"]: c for c in double.store.customers()}
    assert after[made[1]["id"]]["email"] == "u1@example.com"  # the refused line changed nothing
    assert after[made[1]["id"]]["updatedAt"] == before[made[1]["id"]]


def test_bulk_customer_update_is_validated_against_the_schema(
    shopify_double: ShopifyDouble,
) -> None:
    key = stage_and_upload(shopify_double, b'{"input": {"id": "gid://shopify/Customer/1"}}\n')
    wrong = UPDATE.replace("lastName", "surname")
    answer = graphql_post(shopify_double, RUN_MUTATION, {"mutation": wrong, "path": key}).json()
    (error,) = answer["data"]["bulkOperationRunMutation"]["userErrors"]
    assert error["code"] == "INVALID_MUTATION" and "surname" in error["message"]
    assert answer["data"]["bulkOperationRunMutation"]["bulkOperation"] is None

def test_bulk_mutation_upload_errors(shopify_double: ShopifyDouble) -> None:
    missing = graphql_post(shopify_double, RUN_MUTATION, {
        "mutation": CREATE, "path": "tmp/1/bulk/nothing/in.jsonl"}).json()
    error = missing["data"]["bulkOperationRunMutation"]["userErrors"][0]
    assert error["code"] == "NO_SUCH_FILE" and error["field"] is None
    key = stage_and_upload(shopify_double, b"\n")
    empty = graphql_post(shopify_double, RUN_MUTATION, {"mutation": CREATE, "path": key}).json()
    assert empty["data"]["bulkOperationRunMutation"]["userErrors"][0] == {
        "field": None, "message": "The input file is empty.",
        "code": "INVALID_STAGED_UPLOAD_FILE"}


def test_bulk_download_fault(shopify_double_factory: Callable[..., ShopifyDouble]) -> None:
    double = seeded(shopify_double_factory)
    op = graphql_post(double, RUN_QUERY, {"query": EXPORT}).json()[
        "data"]["bulkOperationRunQuery"]["bulkOperation"]
    done = poll(double, op["id"])
    double.inject(Fault(kind="status", status=503, target="download"))
    assert httpx.get(done["url"]).status_code == 503
    assert httpx.get(done["url"]).status_code == 200


def test_cancel_and_concurrency_limit(shopify_double_factory: Callable[..., ShopifyDouble]
                                      ) -> None:
    double = shopify_double_factory(bulk_seconds=30)
    cancel = """mutation X($id: ID!) { bulkOperationCancel(id: $id) {
      bulkOperation { id status } userErrors { field message } } }"""
    started = [graphql_post(double, RUN_QUERY, {"query": EXPORT}).json()[
        "data"]["bulkOperationRunQuery"] for _ in range(6)]
    assert all(s["userErrors"] == [] for s in started[:5])
    assert started[5]["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    first = started[0]["bulkOperation"]["id"]
    canceled = graphql_post(double, cancel, {"id": first}).json()["data"]["bulkOperationCancel"]
    assert canceled["bulkOperation"]["status"] == "CANCELING"
    assert poll(double, first)["status"] == "CANCELED"
    unknown = graphql_post(double, cancel, {"id": "gid://shopify/BulkOperation/999"}).json()
    assert unknown["data"]["bulkOperationCancel"]["userErrors"][0]["message"] == (
        "Bulk operation does not exist")
