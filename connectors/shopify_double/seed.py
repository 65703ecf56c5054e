"""Seed the double from files or records, and persist it back to a file.

A seed file is JSON or YAML: either a list of customers, or a mapping with ``customers``,
optional ``orders`` and optional ``shop``. Customers are written in snake_case like
:class:`custsync.engine.model.ShopifyCustomer` (``first_name``, ``addresses[].country_code``)
or in the API's camelCase (``firstName``, ``addresses[].countryCode``); both may be mixed.
The first address (or the one with ``default: true``) is the default address.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from custsync.engine.errors import ConfigError
from custsync.engine.files import write_private
from custsync.engine.rules.load import YamlSyntaxError, load_yaml

from .delivery import ZoneProblem, zones_from_seed
from .store import ADDRESS_GID, CUSTOMER_GID, ORDER_GID, Store, WriteRejected, parse_iso

if TYPE_CHECKING:
    from custsync.engine.model import ShopifyCustomer

log = logging.getLogger("custsync.sandbox")

_CUSTOMER_KEYS = {
    "id": "id",
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "phone": "phone",
    "state": "state",
    "tags": "tags",
    "note": "note",
    "locale": "locale",
    "tax_exempt": "taxExempt",
    "tax_exemptions": "taxExemptions",
    "verified_email": "verifiedEmail",
    "updated_at": "updatedAt",
    "created_at": "createdAt",
    "addresses": "addresses",
}
_ADDRESS_KEYS = {
    "id": "id",
    "default": "default",
    "company": "company",
    "first_name": "firstName",
    "last_name": "lastName",
    "address1": "address1",
    "address2": "address2",
    "zip": "zip",
    "city": "city",
    "country_code": "countryCode",
    "country": "country",
    "province_code": "provinceCode",
    "province": "province",
    "phone": "phone",
}
_ORDER_KEYS = {
    "id": "id",
    "name": "name",
    "email": "email",
    "phone": "phone",
    "customer_id": "customerId",
    "customer_email": "customerEmail",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "billing_address": "billingAddress",
    "shipping_address": "shippingAddress",
}
_SHOP_KEYS = {
    "id": "id",
    "contact_email": "contactEmail",
    "iana_timezone": "ianaTimezone",
    "name": "name",
    "email": "email",
    "currency_code": "currencyCode",
    "country_code": "countryCode",
    "ships_to_countries": "shipsToCountries",
    "shipping_zones": "shippingZones",
    "myshopify_domain": "myshopifyDomain",
}


class SeedError(ValueError):
    """A seed record that is not understood; ``where`` is a JSON pointer."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def _camel(
    record: Any, keys: Mapping[str, str], where: str, problems: list[str] | None = None
) -> dict[str, Any]:
    """``record`` with camelCase keys. An unknown field is a SeedError, or, given
    ``problems``, noted there and left out, so the record's other problems are found too."""
    if not isinstance(record, Mapping):
        raise SeedError(where, f"expected a mapping, got {type(record).__name__}")
    allowed = set(keys) | set(keys.values())
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key not in allowed:
            error = SeedError(f"{where}/{key}", f"unknown field {key!r} (known: "
                              f"{', '.join(sorted(keys))})")
            if problems is None:
                raise error
            problems.append(str(error))
            continue
        out[keys.get(key, key)] = value
    return out


def _datetime_text(value: Any, where: str) -> str:
    """A date-time as text with its offset (UTC when none is given: the store compares it
    with aware times); a text that is no date-time (``next tuesday``) is a problem here, not
    an error of every later search by date."""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):  # YAML reads an unquoted 2026-03-01 as a date
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = parse_iso(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise SeedError(where, f"{value!r} is not an ISO 8601 date-time "
                        "(e.g. 2026-03-01T12:00:00Z)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _seed_id(value: Any, prefix: str, where: str, field: str = "id") -> Any:
    """An id as a gid: ``1001`` and ``"1001"`` become ``gid://shopify/<Type>/1001`` (the
    world-in-files format writes numbers); anything else but a gid text is a problem of
    ``{where}/{field}``."""
    if value is None or value == "":
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return f"{prefix}{value}"
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and int(text) > 0:
            return f"{prefix}{int(text)}"
        if text.startswith("gid://shopify/"):
            return text
    raise SeedError(f"{where}/{field}", "expected a positive number or a gid like "
                    f"{prefix}1001, got {value!r}")


def _dates(data: dict[str, Any], where: str, warnings: list[str] | None) -> None:
    """``updatedAt``/``createdAt`` as texts the store can compare. With ``warnings``, a date
    that is none (the example world's ``updated_at: next tuesday``) is left out (the record
    gets the time of seeding) and said there; without, it is a SeedError."""
    for key in ("updatedAt", "createdAt"):
        if data.get(key) in (None, ""):
            continue
        try:
            data[key] = _datetime_text(data[key], f"{where}/{key}")
        except SeedError as exc:
            if warnings is None:
                raise
            warnings.append(f"{exc}; seeded with the time of seeding instead")
            del data[key]


def customer_record(
    record: Any,
    where: str = "",
    warnings: list[str] | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    """One customer (snake_case, camelCase or a ShopifyCustomer) as camelCase input
    (``problems``: see :func:`_camel`)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        record = dataclasses.asdict(record)
        record.pop("default_address", None)
        if not record.get("id"):
            record.pop("id", None)
    data = _camel(record, _CUSTOMER_KEYS, where, problems)
    if "id" in data:
        data["id"] = _seed_id(data["id"], CUSTOMER_GID, where)
    _dates(data, where, warnings)
    if data.get("tags") is not None:
        tags = data["tags"]
        data["tags"] = [tags] if isinstance(tags, str) else list(tags)
    for key in [k for k, v in data.items() if v is None or v == ""]:
        if key != "note":
            data.pop(key)
    addresses = []
    for i, item in enumerate(data.get("addresses") or []):
        address = _camel(item, _ADDRESS_KEYS, f"{where}/addresses/{i}", problems)
        if "id" in address:
            address["id"] = _seed_id(address["id"], ADDRESS_GID, f"{where}/addresses/{i}")
        address = {k: v for k, v in address.items() if v not in (None, "")}
        addresses.append(address)
    if addresses:
        addresses.sort(key=lambda a: not a.get("default", False))
        for address in addresses:
            address.pop("default", None)
        data["addresses"] = addresses
    else:
        data.pop("addresses", None)
    return data


def customers_from_any(records: Iterable[Any], where: str = "") -> list[dict[str, Any]]:
    return [customer_record(r, f"{where}/{i}") for i, r in enumerate(records)]


def order_record(
    record: Any,
    where: str = "",
    warnings: list[str] | None = None,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    data = _camel(record, _ORDER_KEYS, where, problems)
    if "id" in data:
        data["id"] = _seed_id(data["id"], ORDER_GID, where)
    if "customerId" in data:
        data["customerId"] = _seed_id(data["customerId"], CUSTOMER_GID, where, "customer_id")
    _dates(data, where, warnings)
    for key in ("billingAddress", "shippingAddress"):
        if data.get(key) is not None:
            address = _camel(data[key], _ADDRESS_KEYS, f"{where}/{key}", problems)
            address.pop("default", None)
            data[key] = address
    return data


def _shop_record(record: Any) -> dict[str, Any]:
    """The shop settings; seeded shipping zones are checked, and the countries the shop
    ships to follow them unless given too (in Shopify they are the zones' countries)."""
    shop = _camel(record, _SHOP_KEYS, "/shop")
    if shop.get("shippingZones") is not None:
        shop["shippingZones"] = zones_from_seed(shop["shippingZones"])
        if shop.get("shipsToCountries") is None:
            shop["shipsToCountries"] = [country["code"] for zone in shop["shippingZones"]
                                        for country in zone["countries"]]
    return shop


def seed_store(store: Store, document: Any, source: str = "seed") -> None:
    """Load a parsed seed document; every problem is reported at once as a ConfigError."""
    if isinstance(document, list):
        document = {"customers": document}
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"{source}: expected a list of customers or a mapping with "
                          "'customers', 'orders', 'shop'")
    unknown = set(document) - {"customers", "orders", "shop"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))} "
                          "(known: customers, orders, shop)")
    problems: list[str] = []
    if document.get("shop") is not None:
        try:
            store.shop.update(_shop_record(document["shop"]))
        except (SeedError, ZoneProblem) as exc:
            problems.append(str(exc))
    warnings: list[str] = []
    for kind, convert in (("customers", customer_record), ("orders", order_record)):
        items = document.get(kind) or []
        if not isinstance(items, list):
            problems.append(f"/{kind}: expected a list")
            continue
        for i, item in enumerate(items):
            where = f"/{kind}/{i}"
            # every problem of the record: its unknown fields are left out (and listed), so
            # an invalid e-mail beside one is reported too
            found: list[str] = []
            try:
                record = convert(item, where, warnings, found)
                if kind == "customers":
                    store.load([record])
                else:
                    store.load([], [record])
            except SeedError as exc:
                found.append(str(exc))
            except WriteRejected as exc:
                for err in exc.errors:
                    field = "/".join(err.field) if err.field else ""
                    found.append(f"{where}{'/' + field if field else ''}: {err.message}")
            problems.extend(found)
    for warning in warnings:
        log.warning("%s: %s", source, warning)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        detail = "\n".join(f"  {source}: {p}" for p in problems)
        raise ConfigError(f"{source}: {problems[0]}{more}\n{detail}", problems=problems)


def read_seed_file(path: str | Path) -> Any:
    """Parse a JSON or YAML seed file (a ConfigError names the file and the position)."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        try:
            document = load_yaml(path)  # YAML 1.2 scalars: NO and ON stay text
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read seed file: {exc.strerror or exc}") from exc
        except YamlSyntaxError as exc:
            where = f"{path}:{exc.position.line}:{exc.position.column}"
            if exc.code == "encoding":
                raise ConfigError(f"{where}: {exc.message}") from None
            problem = exc.message.removeprefix("YAML syntax: ").removeprefix("YAML: ")
            raise ConfigError(f"{where}: invalid YAML: {problem}") from None
        for pointer, position, message in document.problems:
            raise ConfigError(f"{path}:{position.line}:{position.column}: {pointer}: {message}")
        return document.data
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read seed file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at byte "
                          f"offset {exc.start}); save the file as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc


def load_seed_file(store: Store, path: str | Path) -> None:
    seed_store(store, read_seed_file(path), str(path))


def save_store(store: Store, path: str | Path) -> None:
    """Write the store atomically (JSON, or YAML for ``.yaml``/``.yml``)."""
    path = Path(path)
    document = store.dump()
    if path.suffix.lower() in (".yaml", ".yml"):
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    write_private(path, text)


def seed_from_models(target: Any, customers: Iterable[ShopifyCustomer]) -> list[str]:
    """Add :class:`ShopifyCustomer` records to a double (or its store); returns their gids.

    Ids of the records are kept when they are Shopify gids and still free; otherwise the
    double assigns new ones (for the demo, seed with ``id=""``).
    """
    store: Store = getattr(target, "store", target)
    ids = []
    for i, customer in enumerate(customers):
        created = store.load([customer_record(customer, f"/{i}")])
        ids.append(str(created[0]["id"]))
    return ids
