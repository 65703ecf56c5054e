"""Between Shopify's camelCase API objects and custsync's snake_case records.

Parsing is strict where a wrong value would mislead the engine (ids, timestamps) and
lenient where Shopify legitimately sends ``null`` (names, phone, note): ``null`` becomes
``""``. A node that cannot be read raises :class:`BadRecord`, which the reader reports as a
:class:`~custsync.engine.ports.SourceProblem` and skips; it never stops the run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from custsync.engine.model import ShopifyAddress, ShopifyCustomer, ShopifyOrder
from custsync.engine.ports import CustomerInput


class BadRecord(ValueError):
    """A Shopify object that cannot be turned into a record."""

    def __init__(self, message: str, record: str = "") -> None:
        super().__init__(message)
        self.record = record


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value)


def _shared(value: Any) -> str:
    """A text that repeats from customer to customer (names, places, states, tags) as one
    shared string per value (``sys.intern``): a read of a large store then holds each
    distinct value once, not a copy per customer. Ids, e-mails and phones are not shared."""
    return sys.intern(_text(value))


def parse_datetime(value: Any) -> datetime | None:
    """Shopify ``DateTime`` (ISO 8601, ``Z`` suffix) -> aware UTC datetime."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a date-time: {value!r}")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    """An aware or naive (taken as UTC) datetime in Shopify's search syntax format."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_address(node: Mapping[str, Any], default_id: str = "") -> ShopifyAddress:
    if not isinstance(node, Mapping):
        raise BadRecord("address is not an object")
    address_id = _text(node.get("id"))
    country = node.get("countryCodeV2") or node.get("countryCode") or ""
    return ShopifyAddress(
        id=address_id,
        default=bool(address_id) and address_id == default_id,
        company=_shared(node.get("company")),
        first_name=_shared(node.get("firstName")),
        last_name=_shared(node.get("lastName")),
        address1=_shared(node.get("address1")),
        address2=_shared(node.get("address2")),
        zip=_shared(node.get("zip")),
        city=_shared(node.get("city")),
        country_code=_shared(_text(country).upper()),
        province_code=_shared(node.get("provinceCode")),
        province=_shared(node.get("province")),
        phone=_text(node.get("phone")),
    )


def _address_nodes(node: Mapping[str, Any]) -> list[Any]:
    """Addresses from a list field, a connection's ``nodes`` or ``edges``, or bulk children."""
    value = node.get("addresses")
    if value is None:
        value = node.get("addressesV2")
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        if isinstance(value.get("nodes"), list):
            return list(value["nodes"])
        if isinstance(value.get("edges"), list):
            return [edge.get("node") for edge in value["edges"] if isinstance(edge, Mapping)]
    raise BadRecord("addresses is neither a list nor a connection")


def parse_customer(node: Any, extra_addresses: Iterable[Mapping[str, Any]] = ()) -> ShopifyCustomer:
    """A ``Customer`` object -> :class:`ShopifyCustomer` (raises :class:`BadRecord`)."""
    if not isinstance(node, Mapping):
        raise BadRecord("customer is not an object")
    customer_id = node.get("id")
    if not isinstance(customer_id, str) or not customer_id.startswith("gid://shopify/Customer/"):
        raise BadRecord(f"customer id {customer_id!r} is not a Customer gid")
    try:
        updated_at = parse_datetime(node.get("updatedAt"))
    except ValueError as exc:
        raise BadRecord(
            f"updatedAt {node.get('updatedAt')!r} is not a date-time", customer_id
        ) from exc
    default = node.get("defaultAddress")
    default_id = _text(default.get("id")) if isinstance(default, Mapping) else ""
    tags = node.get("tags") or []
    if not isinstance(tags, list):
        raise BadRecord("tags is not a list", customer_id)
    try:
        raw_addresses = [*_address_nodes(node), *extra_addresses]
        addresses = tuple(parse_address(a, default_id) for a in raw_addresses)
    except BadRecord as exc:
        raise BadRecord(str(exc), customer_id) from exc
    return ShopifyCustomer(
        id=customer_id,
        first_name=_shared(node.get("firstName")),
        last_name=_shared(node.get("lastName")),
        email=_text(node.get("email")),
        phone=_text(node.get("phone")),
        state=_shared(node.get("state")),
        tags=tuple(sys.intern(str(tag)) for tag in tags),
        note=_text(node.get("note")),
        updated_at=updated_at,
        addresses=addresses,
    )


def parse_order(node: Any) -> ShopifyOrder:
    if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
        raise BadRecord("order is not an object with an id")
    order_id = node["id"]
    try:
        customer = parse_customer(node["customer"]) if node.get("customer") else None
        bill_to = parse_address(node["billingAddress"]) if node.get("billingAddress") else None
        ship_to = parse_address(node["shippingAddress"]) if node.get("shippingAddress") else None
    except BadRecord as exc:
        raise BadRecord(f"order {order_id}: {exc}", order_id) from exc
    return ShopifyOrder(
        id=order_id,
        name=_text(node.get("name")),
        email=_text(node.get("email")),
        phone=_text(node.get("phone")),
        customer=customer,
        bill_to=bill_to,
        ship_to=ship_to,
    )


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

_ADDRESS_INPUT_FIELDS = (
    ("company", "company"),
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("address1", "address1"),
    ("address2", "address2"),
    ("zip", "zip"),
    ("city", "city"),
    ("phone", "phone"),
)


def address_input(address: ShopifyAddress) -> dict[str, Any]:
    """``MailingAddressInput`` for an address (its id is passed separately)."""
    result: dict[str, Any] = {api: getattr(address, attr) for attr, api in _ADDRESS_INPUT_FIELDS}
    if address.country_code:
        result["countryCode"] = address.country_code.upper()
    if address.province_code:
        result["provinceCode"] = address.province_code
    return result


def customer_input(data: CustomerInput, *, with_address: bool) -> dict[str, Any]:
    """``CustomerInput`` with only the fields ``data`` sets (``None`` = leave unchanged)."""
    result: dict[str, Any] = {}
    for attr, api in (
        ("first_name", "firstName"),
        ("last_name", "lastName"),
        ("email", "email"),
        ("phone", "phone"),
        ("note", "note"),
    ):
        value = getattr(data, attr)
        if value is not None:
            result[api] = value
    if data.tags is not None:
        result["tags"] = list(data.tags)
    if with_address and data.address is not None:
        result["addresses"] = [address_input(data.address)]
    return result


def user_error_messages(errors: Any) -> tuple[str, ...]:
    """Shopify ``userErrors`` -> their messages, exactly as Shopify wrote them."""
    messages = []
    for error in errors or ():
        if not isinstance(error, Mapping):
            continue
        message = _text(error.get("message")).strip() or "unknown error"
        messages.append(message)
    return tuple(messages)
