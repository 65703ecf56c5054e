"""Replay Shopify's recorded live exchanges against the double and compare what matters.

Each capture scenario (``../shared/shopify/captures/*.json``) runs against a fresh double:
every GraphQL step is sent in order over HTTP (ids Shopify assigned in earlier steps are
mapped to the double's ids), and the answer is compared with the recorded one: the data
shape (same keys, list lengths), values (e-mail and phone normalisation, names, tags,
states, userErrors ``field``/``message``/``code``), top-level error codes, and the presence
of ``extensions.cost`` with ``throttleStatus``. Timestamps, cursors, signed URLs and cost
numbers are not compared (see ``docs/sandbox.md``, "Accepted differences").

Scenarios the double does not reproduce are listed in :data:`SKIPPED` with the reason;
single steps in :data:`SKIPPED_STEPS`. Everything else must match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import graphql
import pytest
from custsync.connectors.shopify_double import ShopifyDouble, api

from fixtures_shopify import LARGE_BUCKET, graphql_post

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "shopify" / "captures"

_PRE_EXISTING = "reads customers/products that existed in the recorded store before the run"
_OUT_OF_SUBSET = "uses fields or mutations outside the double's customer subset"

_UPLOAD = ("the staged upload's file content is not recorded, so the run meets "
           "NO_SUCH_FILE; bulk mutation end to end is tested in test_shopify_double_bulk.py")
_PRODUCTS = ("bulk queries on products/variants/orders of the recorded catalogue, outside the "
             "customer subset; customer exports are tested in test_shopify_double_bulk.py")
_HISTORY = "lists the recorded app's earlier bulk jobs, which a fresh double does not have"

#: scenario -> why the double does not replay it
SKIPPED: dict[str, str] = {
    "bulk-mutation-concurrency-limit-2026-04": _UPLOAD,
    "bulk-mutation-created-status": _UPLOAD,
    "bulk-mutation-customer-create-jsonl": _UPLOAD,
    "bulk-mutation-operation-in-progress-2025-01": _UPLOAD,
    "bulk-mutation-staged-upload-errors": _UPLOAD,
    "bulk-mutation-validation-errors": _UPLOAD,
    "bulk-operation-cancel": _PRODUCTS,
    "bulk-operation-query-export-lifecycle": _PRODUCTS,
    "bulk-query-cold-catalog-jsonl": _PRODUCTS,
    "bulk-query-concurrency-limit-2026-04": _PRODUCTS,
    "bulk-query-group-objects": _PRODUCTS,
    "bulk-query-operation-in-progress-2025-01": _PRODUCTS,
    "bulk-query-run-poll-download-jsonl": _PRODUCTS,
    "bulk-query-schema-roots": _PRODUCTS,
    "bulk-query-validation-errors": (
        "the probes query products; the double applies the same rules (edges > node, no top "
        "level node, depth, count) to customers, tested in test_shopify_double_bulk.py"),
    "bulk-operation-reads-and-argument-errors": (
        _HISTORY + "; and a malformed bulk id is a static INVALID_VARIABLE at Shopify, a "
        "resolver error in the double"),
    "bulk-operations-list-window": _HISTORY,
    "bulk-operations-sort-key": _HISTORY,
    "customers-advanced-search": _PRE_EXISTING,
    "customers-first-page": _PRE_EXISTING,
    "customers-search": _PRE_EXISTING,
    "customers-sort-keys": _PRE_EXISTING,
    "customer-create-name-identity": (
        "its read-back search also finds customers of earlier recording runs"),
    "customer-set-duplicate-email-phone": (
        "the taken e-mail/phone belong to customers created outside this recording"),
    "customer-delete-blocked-by-orders": "creates its order with orderCreate (not in the subset)",
    "customer-update-merged-customer": "needs customerMerge (not in the subset)",
    "customer-set-custom-id": "customId identifiers need metafield definitions (not in subset)",
    "customer-inline-consent": "marketing consent inputs are not in the subset",
    "customer-by-identifier": "customId identifiers need metafield definitions (not in subset)",
    "customer-set-id-not-allowed": "its customId case needs metafield definitions",
    "customer-create-id-rejected": "its other cases send metafields (not in the subset)",
    "customer-address-input-validation": (
        "address text rules (HTML, URL and emoji rejection, per-field trimming) are not "
        "reproduced: the double accepts such text"),
    "customer-address-lifecycle": (
        "Shopify refuses an exact duplicate address; the double accepts it"),
    "customer-address-country-province-validation": (
        "its setup customer is created with metafields (not in the subset), so later steps "
        "meet 'Customer does not exist'"),
    "customer-send-account-invite-email": (
        "oversized or HTML invite texts: Shopify answers 'Error sending account invite to "
        "customer.'; the double only checks subject, to, from and bcc"),
}

#: (scenario, step) -> why that step is not compared
SKIPPED_STEPS: dict[tuple[str, str], str] = {}

#: keys whose values are not compared (only their presence)
UNCOMPARED = {"createdAt", "updatedAt", "completedAt", "cursor", "startCursor", "endCursor",
              "url", "resourceUrl", "parameters", "fileSize", "locations", "path", "problems",
              "value", "query", "extensions", "count", "legacyResourceId"}
_GID = re.compile(r"gid://shopify/([A-Za-z]+)/(\d+)")


def _scenarios() -> list[Path]:
    return sorted(CAPTURES.glob("*.json")) if CAPTURES.exists() else []


class IdMap:
    """Shopify's ids from the recording -> the double's ids, learned as answers come in."""

    def __init__(self) -> None:
        self.numbers: dict[tuple[str, str], str] = {}

    def translate(self, value: Any) -> Any:
        if isinstance(value, str):
            return _GID.sub(lambda m: f"gid://shopify/{m[1]}/"
                            f"{self.numbers.get((m[1], m[2]), m[2])}", value)
        if isinstance(value, list):
            return [self.translate(v) for v in value]
        if isinstance(value, dict):
            return {k: self.translate(v) for k, v in value.items()}
        return value

    def same(self, expected: str, actual: str) -> bool:
        want, got = _GID.search(expected), _GID.search(actual)
        if not want or not got or want[1] != got[1]:
            return False
        key = (want[1], want[2])
        if key not in self.numbers:
            if any(t == want[1] and n == got[2] for (t, _), n in self.numbers.items()):
                return False
            self.numbers[key] = got[2]
        return self.numbers[key] == got[2]


def prune(query: str) -> tuple[str, bool]:
    """Drop selections of fields the double's subset does not have (and selections left
    empty by that); ``True`` when something was dropped. Root fields are kept, so a step
    whose operation is outside the subset still fails (and is listed in SKIPPED)."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return query, False
    type_info = graphql.TypeInfo(api.schema())
    dropped = False

    class Pruner(graphql.Visitor):
        def enter_field(self, node: graphql.FieldNode, *_: Any) -> Any:
            nonlocal dropped
            parent = type_info.get_parent_type()
            name = node.name.value
            if parent is None or name == "__typename":
                return None
            if parent.name in ("QueryRoot", "Mutation"):
                return None
            if name not in getattr(parent, "fields", {}):
                dropped = True
                return graphql.REMOVE
            return None

        def leave_field(self, node: graphql.FieldNode, *_: Any) -> Any:
            nonlocal dropped
            if node.selection_set is not None and not node.selection_set.selections:
                dropped = True
                return graphql.REMOVE
            return None

    pruned = graphql.visit(document, graphql.TypeInfoVisitor(type_info, Pruner()))
    return (graphql.print_ast(pruned), True) if dropped else (query, False)


def compare(expected: Any, actual: Any, ids: IdMap, where: str, problems: list[str],
            subset: bool = False) -> None:
    """``subset``: the request was pruned, so the answer may lack some recorded keys."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            problems.append(f"{where}: expected an object, got {actual!r:.80}")
            return
        keys_ok = set(actual) <= set(expected) if subset else set(expected) == set(actual)
        if not keys_ok:
            problems.append(f"{where}: keys {sorted(expected)} != {sorted(actual)}")
        for key, value in expected.items():
            if key in UNCOMPARED or key not in actual:
                continue
            compare(value, actual[key], ids, f"{where}/{key}", problems, subset)
    elif isinstance(expected, list):
        if expected == [] and re.search(r"customers/(nodes|edges)$", where):
            return  # search lag: Shopify's index had not seen the customers just written
        if not isinstance(actual, list) or len(actual) != len(expected):
            problems.append(f"{where}: expected {len(expected)} items, got {actual!r:.200}")
            return
        for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
            compare(want, got, ids, f"{where}/{i}", problems, subset)
    elif isinstance(expected, str) and _GID.search(expected):
        if not isinstance(actual, str) or not ids.same(expected, actual):
            problems.append(f"{where}: id {expected} -> {actual!r}")
        elif expected.split("?", 1)[1:] != actual.split("?", 1)[1:]:
            problems.append(f"{where}: id suffix {expected} vs {actual}")
    elif expected != actual:
        problems.append(f"{where}: expected {expected!r:.120}, got {actual!r:.120}")


def compare_body(expected: dict[str, Any], actual: dict[str, Any], ids: IdMap,
                 subset: bool = False) -> list[str]:
    problems: list[str] = []
    if "data" in expected or "data" in actual:
        compare(expected.get("data"), actual.get("data"), ids, "data", problems, subset)
    want_errors = expected.get("errors") or []
    got_errors = actual.get("errors") or []
    if bool(want_errors) != bool(got_errors):
        problems.append(f"errors: expected {want_errors!r:.200}, got {got_errors!r:.200}")
    elif want_errors:
        want_codes = [(e.get("extensions") or {}).get("code") for e in want_errors]
        got_codes = [(e.get("extensions") or {}).get("code") for e in got_errors]
        if want_codes[:1] != got_codes[:1]:
            problems.append(f"error codes {want_codes} != {got_codes}: {got_errors!r:.200}")
    want_cost = (expected.get("extensions") or {}).get("cost")
    got_cost = (actual.get("extensions") or {}).get("cost")
    if want_cost is not None and (got_cost is None or set(got_cost) != set(want_cost) or
                                  set(got_cost["throttleStatus"]) !=
                                  set(want_cost["throttleStatus"])):
        problems.append(f"extensions.cost: expected the keys of {want_cost}, got {got_cost}")
    return problems


_OWN_RECORDS = ("Customer", "MailingAddress", "Order", "BulkOperation")


def not_replayable(query: str, variables: Any, ids: IdMap) -> str | None:
    """Why a step cannot run against a fresh double (automatic, applied to every step)."""
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError:
        return None
    subset = api.schema()
    for definition in document.definitions:
        if not isinstance(definition, graphql.OperationDefinitionNode):
            continue
        root = subset.mutation_type if definition.operation.value == "mutation" \
            else subset.query_type
        for selection in definition.selection_set.selections:
            if isinstance(selection, graphql.FieldNode) and root is not None \
                    and selection.name.value not in root.fields:
                return f"operation {selection.name.value} is outside the double's subset"
    text = query + json.dumps(variables)
    for kind, number in _GID.findall(text):
        if kind in _OWN_RECORDS and (kind, number) not in ids.numbers \
                and not re.fullmatch(r"9{6,}\d*", number):
            return f"uses {kind}/{number}, which existed in the recorded store before the run"
    return None


def replay(path: Path, double: ShopifyDouble, not_run: dict[str, str]
           ) -> Iterator[tuple[str, list[str]]]:
    scenario = json.loads(path.read_text(encoding="utf-8"))
    ids = IdMap()
    for exchange in scenario["exchanges"]:
        request = exchange.get("request") or {}
        step = exchange["step"]
        if exchange["kind"] != "graphql" or not request.get("query"):
            continue
        if (path.stem, step) in SKIPPED_STEPS:
            not_run[step] = SKIPPED_STEPS[(path.stem, step)]
            continue
        expected = exchange["response"]["body"]
        if not isinstance(expected, dict) or not isinstance(expected.get("data", {}), dict | None):
            not_run[step] = "response data not recorded"
            continue
        why = not_replayable(request["query"], request.get("variables"), ids)
        if why:
            not_run[step] = why
            continue
        if request.get("variables") is None and "$" in request["query"]:
            not_run[step] = "variables not recorded"
            continue
        query, pruned = ids.translate(request["query"]), False
        if expected.get("data") is not None:  # a recorded validation error must stay one
            query, pruned = prune(query)
        response = graphql_post(double, query, ids.translate(request.get("variables") or {}))
        assert response.status_code == 200, f"{step}: HTTP {response.status_code}"
        yield step, compare_body(expected, response.json(), ids, pruned)


@pytest.mark.parametrize("path", _scenarios(), ids=lambda p: p.stem)
def test_replay_capture(path: Path, shopify_double_factory: Callable[..., ShopifyDouble]
                        ) -> None:
    if path.stem in SKIPPED:
        pytest.skip(SKIPPED[path.stem])
    double = shopify_double_factory(**LARGE_BUCKET, max_cost_per_query=1_000_000,
                                    bulk_seconds=0)
    not_run: dict[str, str] = {}
    compared = 0
    failures: list[str] = []
    for step, problems in replay(path, double, not_run):
        compared += 1
        failures += [f"{step}: {problem}" for problem in problems]
    assert failures == [], "\n".join(failures[:15])
    if compared == 0:
        pytest.skip("no step replayable: " + "; ".join(sorted(set(not_run.values()))))


def test_skip_lists_name_real_scenarios() -> None:
    names = {p.stem for p in _scenarios()}
    if not names:
        pytest.skip(f"captures not found at {CAPTURES}")
    assert set(SKIPPED) <= names
    assert {scenario for scenario, _ in SKIPPED_STEPS} <= names
    assert len(SKIPPED) < len(names) / 2, "most scenarios must replay"
