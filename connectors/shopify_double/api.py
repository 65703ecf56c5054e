"""GraphQL execution for the double: the subset schema, resolvers over :class:`Store`.

Resolvers are looked up by ``(type name, field name)``; anything not listed reads the key of
the same name from the parent dict. Top-level errors carry Shopify's ``extensions.code``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

import graphql
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema

from . import delivery, normalize
from .search import SearchSyntaxError
from .store import (
    Store,
    UserError,
    WriteRejected,
    gid_number,
    gid_type,
)

if TYPE_CHECKING:
    from .bulk import BulkManager
    from .webhooks import WebhookHub

MAX_PAGE = 250
T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    """The subset schema (built once per process)."""
    text = resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")
    return graphql.build_schema(text)


@functools.lru_cache(maxsize=256)
def parse(query: str) -> graphql.DocumentNode:
    """``graphql.parse`` remembered per query text (clients send the same few documents over
    and over; parsing and validating them again was most of a request's time). Documents are
    never changed after parsing, so sharing them between requests and threads is safe.
    Syntax errors are raised every time (not cached)."""
    return graphql.parse(query)


@functools.lru_cache(maxsize=256)
def _validated(query: str) -> tuple[GraphQLError, ...]:
    return tuple(graphql.validate(schema(), parse(query)))


def validate(query: str) -> list[GraphQLError]:
    """``graphql.validate`` of :func:`parse`'s document against :func:`schema`, remembered per
    query text."""
    return list(_validated(query))


#: records in sort order with their sort keys (ascending, keys unique: they end in the id)
SortedItems = tuple[list[tuple[Any, int]], list[Mapping[str, Any]]]


@dataclass
class ExportWindow:
    """A bulk query export run in slices: the document is executed again and again, and each
    time its root connections (one after the other, in document order) give their next
    ``limit`` records; the order of each root connection is the one at its first slice."""

    limit: int
    active: str | None = None  #: response key of the root connection being exported
    done: set[str] = field(default_factory=set)
    positions: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, SortedItems] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """After an execution: every root connection it met has given all its records."""
        return self.active is None


@dataclass
class Context:
    store: Store
    bulk: BulkManager | None = None
    #: connections return every item (bulk query export)
    unpaged: bool = False
    search_warnings: list[str] = field(default_factory=list)
    #: an export in slices (with ``unpaged``): root connections give a window per execution
    window: ExportWindow | None = None
    webhooks: WebhookHub | None = None


def error(message: str, code: str | None = None, **extra: Any) -> GraphQLError:
    extensions = {"code": code, **extra} if code else (extra or None)
    return GraphQLError(message, extensions=extensions)


# ---------------------------------------------------------------------------- pagination


def encode_cursor(last_id: int, last_value: Any) -> str:
    raw = json.dumps({"last_id": last_id, "last_value": last_value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, Any]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return int(data["last_id"]), data["last_value"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise error("Invalid cursor for current pagination sort.", "BAD_REQUEST") from exc


_SORT_VALUES: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "ID": lambda r: str(gid_number(r["id"])),
    "UPDATED_AT": lambda r: r.get("updatedAt") or "",
    "CREATED_AT": lambda r: r.get("createdAt") or "",
    "NAME": lambda r: ", ".join(
        p for p in ((r.get("lastName") or "").lower(), (r.get("firstName") or "").lower()) if p
    ),
    "RELEVANCE": lambda r: str(gid_number(r["id"])),
    "LOCATION": lambda r: str(gid_number(r["id"])),
    "PROCESSED_AT": lambda r: r.get("createdAt") or "",
    "COMPLETED_AT": lambda r: r.get("completedAt") or "",
}


def _sort_key(sort: str) -> Callable[[Mapping[str, Any]], tuple[Any, int]]:
    get = _SORT_VALUES.get(sort, _SORT_VALUES["ID"])

    def key(record: Mapping[str, Any]) -> tuple[Any, int]:
        number = gid_number(record["id"]) or 0
        if sort in ("ID", "RELEVANCE", "LOCATION"):
            return (number, number)
        return (get(record), number)

    return key


def sort_items(items: Sequence[Mapping[str, Any]], sort: str) -> SortedItems:
    key = _sort_key(sort)
    keyed = sorted(((key(r), r) for r in items), key=lambda pair: pair[0])
    return [k for k, _ in keyed], [r for _, r in keyed]


def connection(
    items: Sequence[Mapping[str, Any]],
    args: Mapping[str, Any],
    ctx: Context | None = None,
    *,
    sort: str = "ID",
    require_page: bool = True,
    ordered: Callable[[], SortedItems] | None = None,
    predicate: Callable[[Mapping[str, Any]], bool] | None = None,
    root: str | None = None,
) -> dict[str, Any]:
    """A Relay connection over ``items`` with Shopify's opaque cursors.

    ``ordered`` (instead of ``items``): gives the candidates already sorted by ``sort``, e.g.
    a store view kept between pages; ``predicate`` filters them (a search). Cursors are found
    by bisection and the predicate is only applied as far as the page needs, so a page costs
    about its own size, not the store's. ``root``: the response key when this is a root field
    (a sliced bulk export then gives only its current window, see :class:`ExportWindow`).
    """
    first, last = args.get("first"), args.get("last")
    unpaged = ctx is not None and ctx.unpaged
    if not unpaged and require_page:
        if first is None and last is None:
            raise error("you must provide one of first or last", "BAD_REQUEST")
        if first is not None and last is not None:
            raise error("providing both first and last is not supported", "BAD_REQUEST")
    for name, value in (("first", first), ("last", last)):
        if value is not None and (value < 0 or (value > MAX_PAGE and not unpaged)):
            raise error(f"The value of argument '{name}' must be between 0 and {MAX_PAGE}.",
                        "BAD_REQUEST")
    window = ctx.window if ctx is not None and ctx.unpaged and root is not None else None
    if window is not None:
        assert root is not None
        if root in window.done or window.active not in (None, root):
            return _connection_page([], False, False, get_value=_SORT_VALUES["ID"])
        if root not in window.snapshots:
            window.snapshots[root] = ordered() if ordered is not None else sort_items(items,
                                                                                      sort)
        keys, records = window.snapshots[root]
    else:
        keys, records = ordered() if ordered is not None else sort_items(items, sort)
    get_value = _SORT_VALUES.get(sort, _SORT_VALUES["ID"])
    reverse = bool(args.get("reverse"))
    size = len(records)

    def at(pos: int) -> Mapping[str, Any]:
        """The record at ``pos`` in the requested order."""
        return records[size - 1 - pos] if reverse else records[pos]

    def position(cursor: str) -> tuple[Any, int]:
        last_id, last_value = decode_cursor(cursor)
        if sort in ("ID", "RELEVANCE", "LOCATION"):
            return (last_id, last_id)
        return (last_value, last_id)

    # [start, end): positions (in the requested order) between the cursors
    start, end = 0, size
    if args.get("after"):
        mark = position(args["after"])
        start = size - bisect.bisect_left(keys, mark) if reverse else bisect.bisect_right(
            keys, mark)
    if args.get("before"):
        mark = position(args["before"])
        end = size - bisect.bisect_right(keys, mark) if reverse else bisect.bisect_left(
            keys, mark)
        end = max(end, start)
    page: list[Mapping[str, Any]]
    if window is not None:
        assert root is not None
        window.active = root
        pos = window.positions.get(root, start)
        page = []
        while pos < end and len(page) < window.limit:
            if predicate is None or predicate(at(pos)):
                page.append(at(pos))
            pos += 1
        window.positions[root] = pos
        if pos >= end:
            window.done.add(root)
            window.active = None
        has_next, has_previous = False, False
    elif predicate is None:
        if not unpaged:
            if first is not None:
                end = min(end, start + first)
            elif last is not None:
                start = max(start, end - last)
        page = [at(pos) for pos in range(start, end)]
        has_next, has_previous = end < size, start > 0
    else:
        match = predicate
        if unpaged or (first is None and last is None):
            page = [r for r in (at(pos) for pos in range(start, end)) if match(r)]
        elif first is not None:
            page = []
            pos = start
            while len(page) < first and pos < end:
                if match(at(pos)):
                    page.append(at(pos))
                pos += 1
            if len(page) == first:
                end = pos
        else:
            assert last is not None
            page = []
            pos = end - 1
            while len(page) < last and pos >= start:
                if match(at(pos)):
                    page.append(at(pos))
                pos -= 1
            page.reverse()
            if len(page) == last:
                start = pos + 1
        has_next = any(match(at(pos)) for pos in range(end, size))
        has_previous = any(match(at(pos)) for pos in range(start - 1, -1, -1))
    return _connection_page(page, has_next, has_previous, get_value)


def _connection_page(
    page: list[Mapping[str, Any]], has_next: bool, has_previous: bool,
    get_value: Callable[[Mapping[str, Any]], Any],
) -> dict[str, Any]:
    edges = [
        {"cursor": encode_cursor(gid_number(r["id"]) or 0, get_value(r)), "node": r}
        for r in page
    ]
    return {
        "edges": edges,
        "nodes": page,
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# ---------------------------------------------------------------------------- resolvers

Resolver = Callable[..., Any]
RESOLVERS: dict[tuple[str, str], Resolver] = {}


def resolves(type_name: str, field_name: str) -> Callable[[Resolver], Resolver]:
    def register(fn: Resolver) -> Resolver:
        RESOLVERS[(type_name, field_name)] = fn
        return fn

    return register


def _ctx(info: GraphQLResolveInfo) -> Context:
    ctx: Context = info.context
    return ctx


def _search(info: GraphQLResolveInfo, fn: Callable[..., T], query: str | None) -> T:
    try:
        return fn(query, _ctx(info).search_warnings)
    except SearchSyntaxError as exc:
        raise error(str(exc), "BAD_REQUEST") from exc


@resolves("QueryRoot", "customers")
def _customers(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    store = _ctx(info).store
    predicate = _search(info, store.customer_filter, args.get("query"))
    sort = args.get("sortKey") or "ID"

    def ordered() -> SortedItems:
        return store.view(f"customers by {sort}", lambda: sort_items(store.all_customers(), sort))

    return connection((), args, _ctx(info), sort=sort, ordered=ordered, predicate=predicate,
                      root=_root(info))


def _root(info: GraphQLResolveInfo) -> str | None:
    """The response key of a root field (``None`` below the root)."""
    return str(info.path.key) if info.path.prev is None else None


@resolves("QueryRoot", "customer")
def _customer(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    _check_gid(id)
    return _ctx(info).store.get_customer(id)


@resolves("QueryRoot", "customerByIdentifier")
def _customer_by_identifier(_: Any, info: GraphQLResolveInfo, identifier: dict[str, Any]) -> Any:
    store = _ctx(info).store
    if identifier.get("id"):
        return store.get_customer(identifier["id"])
    if identifier.get("emailAddress"):
        return store.by_email(identifier["emailAddress"])
    if identifier.get("phoneNumber"):
        return store.by_phone(identifier["phoneNumber"])
    raise error("Exactly one identifier must be provided.", "INVALID_VARIABLE")


@resolves("QueryRoot", "customersCount")
def _customers_count(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    store = _ctx(info).store
    found = _search(info, store.search_customers, args.get("query"))
    count = len(found)
    limit = args.get("limit")
    if limit is not None and count > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": count, "precision": "EXACT"}


def _check_gid(value: str) -> None:
    if gid_type(value) is None:
        raise error(f"Invalid global id '{value}'", "argumentLiteralsIncompatible")


#: node types of the shipping zones (:mod:`.delivery`)
_DELIVERY_TYPES = frozenset({"DeliveryProfile", "DeliveryZone", "DeliveryCountry",
                             "DeliveryProvince"})


def _node(store: Store, ctx: Context, gid: str) -> Any:
    kind = gid_type(gid)
    if kind == "Customer":
        return store.get_customer(gid)
    if kind == "Order":
        return store.get_order(gid)
    if kind == "MailingAddress":
        found = store.find_address(gid)
        return found[1] if found else None
    if kind == "BulkOperation" and ctx.bulk is not None:
        return ctx.bulk.get(gid)
    if kind == "Shop" and gid == store.shop["id"]:
        return store.shop
    if kind in _DELIVERY_TYPES:
        return delivery.find(store.shop, gid)
    return None


@resolves("QueryRoot", "node")
def _node_field(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    _check_gid(id)
    return _node(_ctx(info).store, _ctx(info), id)


@resolves("QueryRoot", "nodes")
def _nodes(_: Any, info: GraphQLResolveInfo, ids: list[str]) -> list[Any]:
    if len(ids) > MAX_PAGE:
        raise error(f"The input array size of {len(ids)} is greater than the maximum allowed "
                    f"of {MAX_PAGE}.", "MAX_INPUT_SIZE_EXCEEDED")
    for gid in ids:
        _check_gid(gid)
    return [_node(_ctx(info).store, _ctx(info), gid) for gid in ids]


@resolves("QueryRoot", "orders")
def _orders(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    store = _ctx(info).store
    found = _search(info, store.search_orders, args.get("query"))
    return connection(found, args, _ctx(info), sort=args.get("sortKey") or "ID",
                      root=_root(info))


@resolves("QueryRoot", "order")
def _order(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    _check_gid(id)
    return _ctx(info).store.get_order(id)


@resolves("QueryRoot", "shop")
def _shop(_: Any, info: GraphQLResolveInfo) -> Any:
    return _ctx(info).store.shop


@resolves("QueryRoot", "deliveryProfiles")
def _delivery_profiles(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    return connection(delivery.profiles(_ctx(info).store.shop), args, _ctx(info))


@resolves("DeliveryProfile", "profileLocationGroups")
def _profile_location_groups(parent: Mapping[str, Any], info: GraphQLResolveInfo,
                             locationGroupId: str | None = None) -> list[Any]:
    groups = list(parent["profileLocationGroups"])
    if locationGroupId is not None:
        _check_gid(locationGroupId)
        groups = [g for g in groups if g["locationGroupId"] == locationGroupId]
    return groups


@resolves("DeliveryProfileLocationGroup", "locationGroupZones")
def _location_group_zones(parent: Mapping[str, Any], info: GraphQLResolveInfo,
                          **args: Any) -> dict[str, Any]:
    return connection(parent["zones"], args, _ctx(info))


@resolves("CustomerDeletePayload", "shop")
def _payload_shop(_: Any, info: GraphQLResolveInfo) -> Any:
    return _ctx(info).store.shop


@resolves("QueryRoot", "currentBulkOperation")
def _current_bulk(_: Any, info: GraphQLResolveInfo, type: str = "QUERY") -> Any:
    bulk = _ctx(info).bulk
    return bulk.current(type) if bulk else None


@resolves("QueryRoot", "bulkOperation")
def _bulk_operation(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    _check_gid(id)
    bulk = _ctx(info).bulk
    return bulk.get(id) if bulk else None


@resolves("QueryRoot", "bulkOperations")
def _bulk_operations(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    bulk = _ctx(info).bulk
    items = bulk.all() if bulk else []
    return connection(items, args, _ctx(info), sort=args.get("sortKey") or "CREATED_AT",
                      root=_root(info))


# --- Customer ---------------------------------------------------------------------------


@resolves("Customer", "legacyResourceId")
@resolves("Order", "legacyResourceId")
def _legacy_id(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> str:
    return str(gid_number(parent["id"]))


@resolves("Customer", "displayName")
def _display_name(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> str:
    name = " ".join(p for p in (parent.get("firstName"), parent.get("lastName")) if p)
    if name:
        return name
    if parent.get("email"):
        return str(parent["email"])
    if parent.get("phone"):
        return normalize.national(str(parent["phone"]))
    return ""


@resolves("Customer", "defaultEmailAddress")
def _default_email(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> Any:
    if not parent.get("email"):
        return None
    return {"emailAddress": parent["email"], "validFormat": True,
            "marketingState": "NOT_SUBSCRIBED"}


@resolves("Customer", "defaultPhoneNumber")
def _default_phone(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> Any:
    if not parent.get("phone"):
        return None
    return {"phoneNumber": parent["phone"], "marketingState": "NOT_SUBSCRIBED"}


@resolves("Customer", "validEmailAddress")
def _valid_email(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> bool:
    return bool(parent.get("email"))


@resolves("Customer", "defaultAddress")
def _default_address(parent: Mapping[str, Any], info: GraphQLResolveInfo) -> Any:
    return _ctx(info).store.default_address(parent)


@resolves("Customer", "addresses")
def _addresses(parent: Mapping[str, Any], _: GraphQLResolveInfo, first: int | None = None
               ) -> list[Any]:
    items = list(parent["addresses"])
    return items[:first] if first is not None else items


@resolves("Customer", "addressesV2")
def _addresses_v2(parent: Mapping[str, Any], info: GraphQLResolveInfo, **args: Any) -> Any:
    return connection(list(parent["addresses"]), args, _ctx(info))


@resolves("Customer", "orders")
def _customer_orders(parent: Mapping[str, Any], info: GraphQLResolveInfo, **args: Any) -> Any:
    store = _ctx(info).store
    return connection(store.orders_of(parent), args, _ctx(info),
                      sort=args.get("sortKey") or "ID")


@resolves("Customer", "lastOrder")
def _last_order(parent: Mapping[str, Any], info: GraphQLResolveInfo) -> Any:
    orders = _ctx(info).store.orders_of(parent)
    return orders[-1] if orders else None


@resolves("Customer", "numberOfOrders")
def _number_of_orders(parent: Mapping[str, Any], info: GraphQLResolveInfo) -> str:
    return str(len(_ctx(info).store.orders_of(parent)))


@resolves("Customer", "canDelete")
def _can_delete(parent: Mapping[str, Any], info: GraphQLResolveInfo) -> bool:
    return not _ctx(info).store.orders_of(parent)


@resolves("Customer", "amountSpent")
def _amount_spent(_: Mapping[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
    return {"amount": "0.0", "currencyCode": _ctx(info).store.shop["currencyCode"]}


@resolves("Customer", "metafield")
def _metafield(*_: Any, **__: Any) -> None:
    return None


@resolves("Customer", "metafields")
def _metafields(_: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    return connection([], args, _ctx(info))


@resolves("Order", "customer")
def _order_customer(parent: Mapping[str, Any], info: GraphQLResolveInfo) -> Any:
    return _ctx(info).store.get_customer(parent.get("customerId"))


# --- MailingAddress ---------------------------------------------------------------------


@resolves("MailingAddress", "name")
def _address_name(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> Any:
    name = " ".join(p for p in (parent.get("firstName"), parent.get("lastName")) if p)
    return name or None


@resolves("MailingAddress", "countryCodeV2")
def _country_code_v2(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> Any:
    return parent.get("countryCode")


@resolves("MailingAddress", "formattedArea")
def _formatted_area(parent: Mapping[str, Any], _: GraphQLResolveInfo) -> Any:
    local = " ".join(p for p in (parent.get("city"), parent.get("provinceCode")) if p)
    parts = [p for p in (local, parent.get("country")) if p]
    return ", ".join(parts) or None


@resolves("MailingAddress", "formatted")
def _formatted(parent: Mapping[str, Any], info: GraphQLResolveInfo, **_: Any) -> list[str]:
    lines = [parent.get("company"), parent.get("address1"), parent.get("address2"),
             " ".join(p for p in (parent.get("city"), parent.get("provinceCode"),
                                  parent.get("zip")) if p),
             parent.get("country")]
    return [str(line) for line in lines if line]


@resolves("MailingAddress", "coordinatesValidated")
def _coordinates_validated(*_: Any) -> bool:
    return False


# --- mutations --------------------------------------------------------------------------


def _user_errors(errors: list[UserError], with_code: bool) -> list[dict[str, Any]]:
    out = []
    for item in errors:
        entry = item.as_dict()
        if not with_code:
            entry.pop("code")
        out.append(entry)
    return out


@resolves("Mutation", "customerCreate")
def _customer_create(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    try:
        customer = _ctx(info).store.create_customer(input)
    except WriteRejected as exc:
        return {"customer": None, "userErrors": _user_errors(exc.errors, False)}
    return {"customer": customer, "userErrors": []}


@resolves("Mutation", "customerUpdate")
def _customer_update(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    data = {k: v for k, v in input.items() if k != "id"}
    if not input.get("id"):
        return {"customer": None, "userErrors": [{"field": ["id"], "message":
                                                  "Customer does not exist"}]}
    try:
        customer = _ctx(info).store.update_customer(input["id"], data)
    except WriteRejected as exc:
        return {"customer": None, "userErrors": _user_errors(exc.errors, False)}
    return {"customer": customer, "userErrors": []}


@resolves("Mutation", "customerSet")
def _customer_set(_: Any, info: GraphQLResolveInfo, input: dict[str, Any],
                  identifier: dict[str, Any] | None = None) -> Any:
    store = _ctx(info).store
    prefix = ("input",)

    def rejected(errors: list[UserError]) -> dict[str, Any]:
        return {"customer": None, "userErrors": _user_errors(errors, True)}

    with store.lock:
        target = None
        if identifier:
            if input.get("id"):
                return rejected([UserError(("input",), "The id field is not allowed if "
                                           "identifier is provided.", "ID_NOT_ALLOWED")])
            if identifier.get("id"):
                target = store.get_customer(identifier["id"])
                if target is None:
                    return rejected([UserError(("input",), "Resource matching the identifier "
                                               "was not found.", "NOT_FOUND")])
            for key, lookup in (("email", store.by_email), ("phone", store.by_phone)):
                if identifier.get(key):
                    if not input.get(key):
                        return rejected([UserError(("input",), "The input field "
                                                   "corresponding to the identifier is "
                                                   "required.", "MISSING_FIELD")])
                    same = (normalize.email_key(input[key]) == normalize.email_key(
                        identifier[key])) if key == "email" else (
                        normalize.e164(input[key]) == normalize.e164(identifier[key]))
                    if not same:
                        return rejected([UserError(("input",), "The identifier value does "
                                                   "not match the value of the corresponding "
                                                   "field in the input.", "INVALID")])
                    target = lookup(identifier[key])
        elif input.get("id"):
            target = store.get_customer(input["id"])
            if target is None:
                return rejected([UserError(("input",), "Resource matching the identifier was "
                                           "not found.", "NOT_FOUND")])
        if "taxExempt" in input and input["taxExempt"] is None:
            return rejected([UserError(("input", "taxExempt"), "Tax exempt is of unexpected "
                                       "type NilClass", "INVALID")])
        data = {k: v for k, v in input.items() if k != "id"}
        try:
            if target is None:
                customer = store.create_customer(data, prefix=prefix, identity_field=prefix)
            else:
                customer = store.update_customer(target["id"], data, prefix=prefix,
                                                 identity_field=prefix, replace_addresses=True)
        except WriteRejected as exc:
            return rejected(exc.errors)
    return {"customer": customer, "userErrors": []}


@resolves("Mutation", "customerDelete")
def _customer_delete(_: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    try:
        deleted = _ctx(info).store.delete_customer(input["id"])
    except WriteRejected as exc:
        return {"deletedCustomerId": None, "userErrors": _user_errors(exc.errors, False)}
    return {"deletedCustomerId": deleted, "userErrors": []}


def _hub(info: GraphQLResolveInfo) -> WebhookHub:
    hub = _ctx(info).webhooks
    if hub is None:
        raise error("Webhook subscriptions are not available here", "BAD_REQUEST")
    return hub


@resolves("QueryRoot", "webhookSubscriptions")
def _webhook_subscriptions(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    found = [
        s for s in _hub(info).subscriptions(args.get("topics"))
        if not args.get("uri") or s["uri"] == args["uri"]
    ]
    return connection(found, args, _ctx(info))


@resolves("Mutation", "webhookSubscriptionCreate")
def _webhook_subscription_create(_: Any, info: GraphQLResolveInfo, topic: str,
                                 webhookSubscription: dict[str, Any]) -> Any:
    uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
    created, errors = _hub(info).create(topic, uri, _ctx(info).store.now())
    return {"webhookSubscription": created, "userErrors": errors}


@resolves("Mutation", "webhookSubscriptionDelete")
def _webhook_subscription_delete(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    deleted, errors = _hub(info).delete(id)
    return {"deletedWebhookSubscriptionId": deleted, "userErrors": errors}


@resolves("Mutation", "customerSendAccountInviteEmail")
def _send_invite(_: Any, info: GraphQLResolveInfo, customerId: str,
                 email: dict[str, Any] | None = None) -> Any:
    try:
        customer = _ctx(info).store.send_invite(customerId, email)
    except WriteRejected as exc:
        return {"customer": None, "userErrors": _user_errors(exc.errors, True)}
    return {"customer": customer, "userErrors": []}


def _address_call(fn: Callable[[], Any], key: str) -> dict[str, Any]:
    try:
        result = fn()
    except LookupError as exc:
        raise error(str(exc), "RESOURCE_NOT_FOUND") from exc
    except WriteRejected as exc:
        return {key: None, "userErrors": _user_errors(exc.errors, False)}
    return {key: result, "userErrors": []}


@resolves("Mutation", "customerAddressCreate")
def _address_create(_: Any, info: GraphQLResolveInfo, customerId: str, address: dict[str, Any],
                    setAsDefault: bool | None = None) -> Any:
    store = _ctx(info).store
    return _address_call(lambda: store.add_address(customerId, address, bool(setAsDefault)),
                         "address")


@resolves("Mutation", "customerAddressUpdate")
def _address_update(_: Any, info: GraphQLResolveInfo, customerId: str, addressId: str,
                    address: dict[str, Any], setAsDefault: bool | None = None) -> Any:
    store = _ctx(info).store
    return _address_call(
        lambda: store.update_address(customerId, addressId, address, bool(setAsDefault)),
        "address")


@resolves("Mutation", "customerAddressDelete")
def _address_delete(_: Any, info: GraphQLResolveInfo, customerId: str, addressId: str) -> Any:
    store = _ctx(info).store
    return _address_call(lambda: store.delete_address(customerId, addressId), "deletedAddressId")


@resolves("Mutation", "customerUpdateDefaultAddress")
def _update_default(_: Any, info: GraphQLResolveInfo, customerId: str, addressId: str) -> Any:
    store = _ctx(info).store
    return _address_call(lambda: store.set_default_address(customerId, addressId), "customer")


@resolves("Mutation", "stagedUploadsCreate")
def _staged_uploads(_: Any, info: GraphQLResolveInfo, input: list[dict[str, Any]]) -> Any:
    bulk = _ctx(info).bulk
    if bulk is None:
        raise error("staged uploads are not available", "INTERNAL_SERVER_ERROR")
    return bulk.staged_uploads(input)


@resolves("Mutation", "bulkOperationRunQuery")
def _bulk_run_query(_: Any, info: GraphQLResolveInfo, query: str,
                    groupObjects: bool = False) -> Any:
    bulk = _ctx(info).bulk
    if bulk is None:
        raise error("bulk operations are not available", "INTERNAL_SERVER_ERROR")
    return bulk.run_query(query)


@resolves("Mutation", "bulkOperationRunMutation")
def _bulk_run_mutation(_: Any, info: GraphQLResolveInfo, mutation: str, stagedUploadPath: str,
                       **_args: Any) -> Any:
    bulk = _ctx(info).bulk
    if bulk is None:
        raise error("bulk operations are not available", "INTERNAL_SERVER_ERROR")
    return bulk.run_mutation(mutation, stagedUploadPath)


@resolves("Mutation", "bulkOperationCancel")
def _bulk_cancel(_: Any, info: GraphQLResolveInfo, id: str) -> Any:
    bulk = _ctx(info).bulk
    if bulk is None:
        raise error("bulk operations are not available", "INTERNAL_SERVER_ERROR")
    return bulk.cancel(id)


# ---------------------------------------------------------------------------- execution


def field_resolver(parent: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
    resolver = RESOLVERS.get((info.parent_type.name, info.field_name))
    if resolver is not None:
        return resolver(parent, info, **args)
    if isinstance(parent, Mapping):
        return parent.get(info.field_name)
    return getattr(parent, info.field_name, None)


def type_resolver(value: Any, info: GraphQLResolveInfo, abstract_type: Any) -> str | None:
    kind = gid_type(value.get("id")) if isinstance(value, Mapping) else None
    if kind in _DELIVERY_TYPES:
        return kind
    return {"Customer": "Customer", "Order": "Order", "MailingAddress": "MailingAddress",
            "BulkOperation": "BulkOperation", "Shop": "Shop"}.get(kind or "")


def execute(
    document: graphql.DocumentNode,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    ctx: Context,
) -> graphql.ExecutionResult:
    result = graphql.execute(
        schema(),
        document,
        context_value=ctx,
        variable_values=dict(variables or {}),
        operation_name=operation_name,
        field_resolver=field_resolver,
        type_resolver=type_resolver,
    )
    if not isinstance(result, graphql.ExecutionResult):  # pragma: no cover - no async here
        raise RuntimeError("async execution is not supported")
    return result
