"""The double's in-memory shop: customers, addresses, orders, with Shopify's write rules.

Records are plain dicts in the API's camelCase (``id``, ``firstName``, ``updatedAt``, ...), so
what a test reads from :meth:`Store.customers` looks like what the API returns. Every write
goes through this class, under one lock, with the validation messages Shopify answers with
(captured live, see ``../shared/shopify/captures``).
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from . import normalize
from .search import compile_query

CUSTOMER_GID = "gid://shopify/Customer/"
ADDRESS_GID = "gid://shopify/MailingAddress/"
ORDER_GID = "gid://shopify/Order/"
ADDRESS_SUFFIX = "?model_name=CustomerAddress"

_ADDRESS_FIELDS = (
    "firstName",
    "lastName",
    "company",
    "address1",
    "address2",
    "city",
    "province",
    "provinceCode",
    "country",
    "countryCode",
    "zip",
    "phone",
)

Clock = Callable[[], datetime]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class UserError:
    """One userError: ``field`` is the input path (``None`` for the record as a whole)."""

    field: tuple[str, ...] | None
    message: str
    code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": list(self.field) if self.field is not None else None,
            "message": self.message,
            "code": self.code,
        }


class WriteRejected(Exception):
    """A write refused with userErrors; nothing was changed."""

    def __init__(self, errors: list[UserError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def iso(moment: datetime) -> str:
    """Shopify's DateTime format: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def gid_number(gid: str | None) -> int | None:
    """``gid://shopify/Customer/42`` -> 42 (``?model_name=...`` ignored); ``None`` if not one."""
    if not gid:
        return None
    match = re.fullmatch(r"gid://shopify/[A-Za-z]+/(\d+)(\?.*)?", gid.strip())
    return int(match.group(1)) if match else None


def gid_type(gid: str | None) -> str | None:
    match = re.fullmatch(r"gid://shopify/([A-Za-z]+)/\d+(\?.*)?", (gid or "").strip())
    return match.group(1) if match else None


def address_gid(number: int) -> str:
    return f"{ADDRESS_GID}{number}{ADDRESS_SUFFIX}"


class Store:
    """Customers and orders of one shop; thread-safe (one re-entrant lock).

    Stores of 100,000 customers are served without work in proportion to their size per
    request: customers are kept in id order, e-mails, phones and address ids are indexed, and
    sorted views (for pagination) are remembered until the next write (:meth:`view`).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        shop: Mapping[str, Any] | None = None,
        first_id: int = 1001,
    ) -> None:
        self.lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._ids = itertools.count(first_id)
        self._customers: dict[int, dict[str, Any]] = {}
        self._in_order = True  #: ``_customers`` iterates in id order (re-sorted when not)
        #: unique e-mail key / E.164 phone -> customer number, kept on every write (large
        #: stores: uniqueness checks and lookups must not scan every customer)
        self._email_index: dict[str, int] = {}
        self._phone_index: dict[str, int] = {}
        #: MailingAddress number -> owning customer number
        self._address_owner: dict[int, int] = {}
        self._orders: dict[int, dict[str, Any]] = {}
        #: customer gid -> numbers of the orders placed by that customer
        self._orders_by_customer: dict[str, list[int]] = {}
        #: bumped on every change to a customer; :meth:`view` results live until it moves
        self._version = 0
        self._views: dict[str, Any] = {}
        self.invites: list[dict[str, Any]] = []  #: account invites "sent" (customer id, email)
        #: called with (topic, record) after every change a webhook reports (not for seeding)
        self.listeners: list[Callable[[str, Mapping[str, Any]], None]] = []
        self.shop: dict[str, Any] = {
            "id": "gid://shopify/Shop/1",
            "name": "custsync sandbox",
            "email": "shop@example.com",
            "contactEmail": "shop@example.com",
            "myshopifyDomain": "custsync-sandbox.myshopify.com",
            "currencyCode": "USD",
            "ianaTimezone": "Etc/UTC",
            "countryCode": "US",
            "shipsToCountries": ["US", "CA", "GB", "NL", "BE", "DE", "FR"],
        }
        if shop:
            self.shop.update(shop)

    # ------------------------------------------------------------------ reading (public API)

    def now(self) -> datetime:
        return self._clock()

    def customers(self) -> list[dict[str, Any]]:
        """All customers as stored (deep copies), in id order, each with its ``defaultAddress``."""
        with self.lock:
            return [self._public(c) for c in self.all_customers()]

    def customer(self, gid: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.get_customer(gid)
            return self._public(found) if found else None

    def count(self) -> int:
        with self.lock:
            return len(self._customers)

    def orders(self) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(o) for _, o in sorted(self._orders.items())]

    def _public(self, customer: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(customer))
        out["defaultAddress"] = copy.deepcopy(self.default_address(customer))
        return out

    # ------------------------------------------------------------------ internal reads

    def get_customer(self, gid: str | None) -> dict[str, Any] | None:
        if gid_type(gid) != "Customer":
            return None
        number = gid_number(gid)
        return self._customers.get(number) if number is not None else None

    def get_order(self, gid: str | None) -> dict[str, Any] | None:
        if gid_type(gid) != "Order":
            return None
        number = gid_number(gid)
        return self._orders.get(number) if number is not None else None

    def find_address(self, gid: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(customer, address) owning a MailingAddress gid."""
        number = gid_number(gid)
        if number is None or gid_type(gid) != "MailingAddress":
            return None
        customer = self._customers.get(self._address_owner.get(number, -1))
        if customer is None:
            return None
        for address in customer["addresses"]:
            if gid_number(address["id"]) == number:
                return customer, address
        return None

    def all_customers(self) -> list[dict[str, Any]]:
        """The stored customers (live records, not copies) in id order. Call under the lock."""
        if not self._in_order:  # a seed inserted an id below an existing one
            self._customers = dict(sorted(self._customers.items()))
            self._in_order = True
        return list(self._customers.values())

    @property
    def version(self) -> int:
        """Moves on every write to a customer (create, update, delete, address changes)."""
        return self._version

    def view(self, name: str, build: Callable[[], T]) -> T:
        """``build()``, remembered under ``name`` until the next write to a customer: e.g. the
        customers sorted by ``updatedAt``, built once for all the pages of a read instead of
        once per page. Call under the lock; the result must not be changed by the caller."""
        with self.lock:
            if name not in self._views:
                self._views[name] = build()
            value: T = self._views[name]
            return value

    def _changed(self) -> None:
        self._version += 1
        self._views.clear()

    def _put(self, number: int, customer: dict[str, Any]) -> None:
        """Store a new customer with its index entries."""
        if self._customers and number < next(reversed(self._customers)):
            self._in_order = False
        self._customers[number] = customer
        self._index(number, customer)
        self._index_addresses(number, customer["addresses"])
        self._changed()

    def _drop(self, number: int, customer: Mapping[str, Any]) -> None:
        """Remove a customer and its index entries."""
        self._unindex(number, customer)
        self._unindex_addresses(number, customer["addresses"])
        del self._customers[number]
        self._changed()

    def _index_addresses(self, number: int, addresses: Iterable[Mapping[str, Any]]) -> None:
        for address in addresses:
            address_number = gid_number(address.get("id"))
            if address_number is not None:
                self._address_owner.setdefault(address_number, number)

    def _unindex_addresses(self, number: int, addresses: Iterable[Mapping[str, Any]]) -> None:
        for address in addresses:
            address_number = gid_number(address.get("id"))
            if address_number is not None and self._address_owner.get(address_number) == number:
                del self._address_owner[address_number]

    def _index(self, number: int, customer: Mapping[str, Any]) -> None:
        key = normalize.email_key(customer.get("email"))
        if key:
            self._email_index[key] = number
        if customer.get("phone"):
            self._phone_index[str(customer["phone"])] = number

    def _unindex(self, number: int, customer: Mapping[str, Any]) -> None:
        key = normalize.email_key(customer.get("email"))
        if key and self._email_index.get(key) == number:
            del self._email_index[key]
        phone = customer.get("phone")
        if phone and self._phone_index.get(str(phone)) == number:
            del self._phone_index[str(phone)]

    def all_orders(self) -> list[dict[str, Any]]:
        return [o for _, o in sorted(self._orders.items())]

    def default_address(self, customer: Mapping[str, Any]) -> dict[str, Any] | None:
        for address in customer["addresses"]:
            if address["id"] == customer.get("defaultAddressId"):
                return dict(address)
        return None

    def orders_of(self, customer: Mapping[str, Any]) -> list[dict[str, Any]]:
        numbers = self._orders_by_customer.get(customer["id"], ())
        return [self._orders[n] for n in sorted(numbers)]

    def by_email(self, email: str | None) -> dict[str, Any] | None:
        key = normalize.email_key(email)
        if not key:
            return None
        customer = self._customers.get(self._email_index.get(key, -1))
        if customer is not None and normalize.email_key(customer.get("email")) == key:
            return customer
        return None

    def by_phone(self, phone: str | None) -> dict[str, Any] | None:
        if not phone:
            return None
        wanted = normalize.e164(phone, self.shop["countryCode"]) or phone
        customer = self._customers.get(self._phone_index.get(wanted, -1))
        if customer is not None and customer.get("phone") == wanted:
            return customer
        return None

    def search_customers(
        self, query: str | None, warnings: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """The customers matching a search ``query``, in id order."""
        predicate = self.customer_filter(query, warnings)
        if predicate is None:
            return self.all_customers()
        return [c for c in self.all_customers() if predicate(c)]

    def customer_filter(
        self, query: str | None, warnings: list[str] | None = None
    ) -> Callable[[Mapping[str, Any]], bool] | None:
        """The predicate of a customer search ``query``; ``None`` when it matches everyone."""
        if not (query or "").strip():
            return None
        return compile_query(
            query,
            {
                "email": lambda c: c.get("email"),
                "phone": lambda c: [c.get("phone")]
                + [a.get("phone") for a in c["addresses"] if a.get("phone")],
                "first_name": lambda c: c.get("firstName"),
                "last_name": lambda c: c.get("lastName"),
                "tag": lambda c: c.get("tags"),
                "state": lambda c: c.get("state"),
                "country": lambda c: [a.get("countryCode") for a in c["addresses"]]
                + [a.get("country") for a in c["addresses"]],
                "company": lambda c: [a.get("company") for a in c["addresses"]],
                "city": lambda c: [a.get("city") for a in c["addresses"]],
                "note": lambda c: c.get("note"),
            },
            time_fields={
                "updated_at": lambda c: parse_iso(c.get("updatedAt")),
                "created_at": lambda c: parse_iso(c.get("createdAt")),
                "customer_date": lambda c: parse_iso(c.get("createdAt")),
            },
            numeric_fields={
                "id": lambda c: gid_number(c["id"]),
                "orders_count": lambda c: len(self.orders_of(c)),
            },
            now=self.now(),
            warnings=warnings,
        )

    def search_orders(
        self, query: str | None, warnings: list[str] | None = None
    ) -> list[dict[str, Any]]:
        predicate = compile_query(
            query,
            {
                "name": lambda o: o.get("name"),
                "email": lambda o: o.get("email"),
                "phone": lambda o: o.get("phone"),
            },
            time_fields={
                "updated_at": lambda o: parse_iso(o.get("updatedAt")),
                "created_at": lambda o: parse_iso(o.get("createdAt")),
            },
            numeric_fields={
                "id": lambda o: gid_number(o["id"]),
                "customer_id": lambda o: gid_number(o.get("customerId")),
            },
            now=self.now(),
            warnings=warnings,
        )
        return [o for o in self.all_orders() if predicate(o)]

    # ------------------------------------------------------------------ writes

    def _stamp(self, customer: dict[str, Any]) -> None:
        """``updatedAt`` moves on every write: at least one second past its previous value
        (Shopify's DateTime has whole seconds; a cursor on it must see every write)."""
        now = self.now().replace(microsecond=0)
        previous = parse_iso(customer.get("updatedAt"))
        if previous is not None and now <= previous:
            now = previous + timedelta(seconds=1)
        customer["updatedAt"] = iso(now)
        self._changed()
        self._emit("customers/update", customer)

    def _emit(self, topic: str, record: Mapping[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(topic, record)

    def _check_unique(
        self, errors: list[UserError], prefix: tuple[str, ...], email: str | None,
        phone: str | None, own_id: str | None,
    ) -> None:
        other = self.by_email(email) if email else None
        if other is not None and other["id"] != own_id:
            errors.append(UserError((*prefix, "email"), "Email has already been taken", "TAKEN"))
        other = self.by_phone(phone) if phone else None
        if other is not None and other["id"] != own_id:
            errors.append(UserError((*prefix, "phone"), "Phone has already been taken", "TAKEN"))

    def _scalars(
        self, data: Mapping[str, Any], prefix: tuple[str, ...], errors: list[UserError]
    ) -> dict[str, Any]:
        """Normalise the scalar fields present in ``data``; problems go to ``errors``."""
        out: dict[str, Any] = {}
        if "firstName" in data:
            out["firstName"] = normalize.blank_to_none(data["firstName"])
        if "lastName" in data:
            out["lastName"] = normalize.blank_to_none(data["lastName"])
        if "note" in data:
            out["note"] = data["note"]
        for field, message in normalize.name_problems(
            out.get("firstName"), out.get("lastName"), out.get("note")
        ):
            errors.append(UserError((*prefix, field), message, "TOO_LONG"))
        if "email" in data:
            value, problems = normalize.email(data["email"])
            out["email"] = value
            errors.extend(UserError((*prefix, f), m, "INVALID") for f, m in problems)
        if "phone" in data:
            value, problems = normalize.phone(data["phone"], self.shop["countryCode"])
            out["phone"] = value
            errors.extend(UserError((*prefix, f), m, "INVALID") for f, m in problems)
        if "tags" in data:
            tag_list, problems = normalize.tags(data["tags"])
            out["tags"] = tag_list if tag_list is not None else []
            errors.extend(UserError((*prefix, f), m, "INVALID") for f, m in problems)
        if "locale" in data and data["locale"] is not None:
            if not normalize.locale_ok(str(data["locale"])):
                errors.append(UserError((*prefix, "locale"), "Locale is invalid", "INVALID"))
            out["locale"] = data["locale"]
        if "taxExempt" in data and data["taxExempt"] is not None:
            out["taxExempt"] = bool(data["taxExempt"])
        if "taxExemptions" in data and data["taxExemptions"] is not None:
            out["taxExemptions"] = list(data["taxExemptions"])
        return out

    def _address(
        self,
        data: Mapping[str, Any],
        prefix: tuple[str, ...],
        errors: list[UserError],
        base: Mapping[str, Any] | None = None,
        owner: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A stored address from input ``data`` over ``base`` (for updates)."""
        address: dict[str, Any] = {k: (base or {}).get(k) for k in _ADDRESS_FIELDS}
        for key in ("firstName", "lastName", "company", "address1", "address2", "city", "zip"):
            if key in data:
                address[key] = normalize.blank_to_none(data[key])
                if address[key] and len(address[key]) > normalize.MAX_TEXT:
                    errors.append(UserError((*prefix, key), f"{_label(key)} is too long "
                                            "(maximum is 255 characters)", "TOO_LONG"))
        if "phone" in data:
            value, problems = normalize.phone(data["phone"], self.shop["countryCode"])
            address["phone"] = value
            errors.extend(UserError((*prefix, f), m, "INVALID") for f, m in problems)
        country_input = data.get("countryCode") or data.get("country")
        if "countryCode" in data or "country" in data:
            if country_input:
                found = normalize.country(str(country_input))
                if found is None:
                    errors.append(UserError((*prefix, "country"), "Country is invalid", "INVALID"))
                    address["countryCode"] = address["country"] = None
                else:
                    address["countryCode"], address["country"] = found
            else:
                address["countryCode"] = address["country"] = None
        province_input = data.get("provinceCode") or data.get("province")
        if "provinceCode" in data or "province" in data:
            address["provinceCode"] = address["province"] = None
            if province_input and address.get("countryCode"):
                found_province = normalize.province(address["countryCode"], str(province_input))
                if found_province is False:
                    errors.append(
                        UserError((*prefix, "province"), "Province is invalid", "INVALID")
                    )
                elif isinstance(found_province, tuple):
                    address["provinceCode"], address["province"] = found_province
        if owner is not None:  # Shopify fills a blank address name from the customer
            address["firstName"] = address.get("firstName") or owner.get("firstName")
            address["lastName"] = address.get("lastName") or owner.get("lastName")
        return address

    def _identity_ok(self, customer: Mapping[str, Any]) -> bool:
        return any(customer.get(k) for k in ("firstName", "lastName", "email", "phone"))

    def create_customer(
        self, data: Mapping[str, Any], *, prefix: tuple[str, ...] = (),
        identity_field: tuple[str, ...] | None = None, created_at: str | None = None,
        updated_at: str | None = None, seeding: bool = False,
    ) -> dict[str, Any]:
        """customerCreate. Raises :class:`WriteRejected` with userErrors."""
        with self.lock:
            errors: list[UserError] = []
            if data.get("id"):
                errors.append(UserError((*prefix, "id"), "Cannot specify ID on creation",
                                        "INVALID"))
            fields = self._scalars(data, prefix, errors)
            customer: dict[str, Any] = {
                "id": "",
                "firstName": None,
                "lastName": None,
                "email": None,
                "phone": None,
                "locale": "en",
                "note": None,
                "state": "DISABLED",
                "tags": [],
                "taxExempt": False,
                "taxExemptions": [],
                "verifiedEmail": True,
                "createdAt": "",
                "updatedAt": "",
                "addresses": [],
                "defaultAddressId": None,
            }
            customer.update(fields)
            if not self._identity_ok(customer):
                errors.append(UserError(identity_field, "A name, phone number, or email address "
                                        "must be present", "INVALID"))
            self._check_unique(errors, prefix, customer["email"], customer["phone"], None)
            addresses = []
            for i, item in enumerate(data.get("addresses") or []):
                path = (*prefix, "addresses", str(i))
                if item.get("id") and not seeding:
                    errors.append(UserError((*path, "id"), "Cannot specify address ID on "
                                            "creation", "INVALID"))
                addresses.append(self._address(item, path, errors, owner=customer))
            if errors:
                raise WriteRejected(errors)
            number = next(self._ids)
            customer["id"] = f"{CUSTOMER_GID}{number}"
            for address in addresses:
                address["id"] = address_gid(next(self._ids))
            customer["addresses"] = addresses
            customer["defaultAddressId"] = addresses[0]["id"] if addresses else None
            stamp = iso(self.now())
            customer["createdAt"] = created_at or stamp
            customer["updatedAt"] = updated_at or stamp
            self._put(number, customer)
            if not seeding:
                self._emit("customers/create", customer)
            return customer

    def update_customer(
        self, gid: str | None, data: Mapping[str, Any], *, prefix: tuple[str, ...] = (),
        identity_field: tuple[str, ...] | None = None, replace_addresses: bool = False,
        not_found: UserError | None = None,
    ) -> dict[str, Any]:
        """customerUpdate (and customerSet's update). Unchanged on any error."""
        with self.lock:
            customer = self.get_customer(gid)
            if customer is None:
                raise WriteRejected([not_found or UserError(("id",), "Customer does not exist",
                                                           "NOT_FOUND")])
            errors: list[UserError] = []
            fields = self._scalars(data, prefix, errors)
            merged = {**customer, **fields}
            if not self._identity_ok(merged):
                errors.append(UserError(identity_field, "A name, phone number, or email address "
                                        "must be present", "INVALID"))
            self._check_unique(errors, prefix, fields.get("email"), fields.get("phone"),
                               customer["id"])
            addresses = [dict(a) for a in customer["addresses"]]
            if data.get("addresses") is not None:
                addresses = self._replaced_addresses(
                    addresses, data["addresses"], prefix, errors, merged,
                    keep_ids=not replace_addresses)
            if errors:
                raise WriteRejected(errors)
            for address in addresses:
                if not address["id"]:
                    address["id"] = address_gid(next(self._ids))
            default_id = customer.get("defaultAddressId")
            if default_id not in {a["id"] for a in addresses}:
                default_id = addresses[0]["id"] if addresses else None
            number = gid_number(customer["id"])
            assert number is not None
            self._unindex(number, customer)
            self._unindex_addresses(number, customer["addresses"])
            customer.update(fields)
            self._index(number, customer)
            customer["addresses"] = addresses
            self._index_addresses(number, addresses)
            customer["defaultAddressId"] = default_id
            self._stamp(customer)
            return customer

    def _replaced_addresses(
        self, current: list[dict[str, Any]], items: Sequence[Mapping[str, Any]],
        prefix: tuple[str, ...], errors: list[UserError], owner: Mapping[str, Any], *,
        keep_ids: bool,
    ) -> list[dict[str, Any]]:
        """The customer's addresses after an input address list, which replaces them (as
        captured for customerUpdate and customerSet): an entry with the id of one of the
        customer's addresses updates it in place (customerUpdate; customerSet creates a new
        one), an entry without id is a new address (id ``""`` until assigned), addresses not
        listed are deleted, and repeats of the same address are kept once. An unknown id is
        a userError. (The caller keeps the default address when it is listed, else makes the
        first one the default.)"""
        by_number = {gid_number(a["id"]): a for a in current}
        result: list[dict[str, Any]] = []
        seen: dict[tuple[Any, ...], int] = {}  # address content -> position in result
        for i, item in enumerate(items):
            path = (*prefix, "addresses", str(i))
            existing = by_number.get(gid_number(item.get("id"))) if keep_ids else None
            if item.get("id") and keep_ids and existing is None:
                errors.append(UserError((*path, "id"), "Customer address does not exist",
                                        "NOT_FOUND"))
                continue
            if existing is not None:
                address = {**existing, **self._address(item, path, errors, base=existing)}
            else:
                address = {**self._address(item, path, errors, owner=owner), "id": ""}
            content = tuple(address.get(k) for k in _ADDRESS_FIELDS)
            if content in seen:
                if address["id"] and not result[seen[content]]["id"]:
                    result[seen[content]] = address  # keep the existing one, not a new copy
                continue
            seen[content] = len(result)
            result.append(address)
        return result

    def delete_customer(self, gid: str | None) -> str:
        with self.lock:
            customer = self.get_customer(gid)
            if customer is None:
                raise WriteRejected([UserError(("id",), "Customer can't be found", "NOT_FOUND")])
            if self.orders_of(customer):
                raise WriteRejected([UserError(
                    ("id",), "Customer can\u2019t be deleted because they have associated orders",
                    "INVALID")])
            number = gid_number(customer["id"])
            assert number is not None
            self._drop(number, customer)
            self._emit("customers/delete", customer)
            return str(customer["id"])

    def send_invite(self, gid: str | None, email: Mapping[str, Any] | None) -> dict[str, Any]:
        with self.lock:
            customer = self.get_customer(gid)
            if customer is None:
                raise WriteRejected([UserError(("customerId",), "Customer can't be found",
                                               "NOT_FOUND")])
            email = email or {}
            if "subject" in email and not (email.get("subject") or "").strip():
                raise WriteRejected([UserError(("email", "subject"), "Subject can't be blank",
                                               "INVALID")])
            to = email.get("to") or customer.get("email")
            if email.get("to") and normalize.email(email["to"])[1]:
                raise WriteRejected([UserError(("email", "to"), "To is invalid", "INVALID")])
            if email.get("from") and normalize.email(email["from"])[1]:
                raise WriteRejected([UserError(("email", "from"), "From Sender is invalid",
                                               "INVALID")])
            bcc = list(email.get("bcc") or [])
            if any(normalize.email(address)[1] for address in bcc):
                # Shopify rejects every bcc address once one is invalid (captured)
                raise WriteRejected([UserError(("email", "bcc"), "Bcc " + " and ".join(
                    f"{address} is not a valid bcc address" for address in bcc), "INVALID")])
            if not to:
                raise WriteRejected([UserError(("customerId",), "Error sending account invite "
                                               "to customer.", "INVALID")])
            if customer["state"] != "ENABLED":
                customer["state"] = "INVITED"
            self._stamp(customer)
            self.invites.append({"customerId": customer["id"], "to": to,
                                 "subject": email.get("subject")})
            return customer

    def add_address(
        self, customer_gid: str | None, data: Mapping[str, Any], set_default: bool
    ) -> dict[str, Any]:
        with self.lock:
            customer = self.get_customer(customer_gid)
            if customer is None:
                raise WriteRejected([UserError(("customerId",), "Customer does not exist",
                                               "NOT_FOUND")])
            errors: list[UserError] = []
            address = self._address(data, ("address",), errors, owner=customer)
            if errors:
                raise WriteRejected(errors)
            address["id"] = address_gid(next(self._ids))
            customer["addresses"].append(address)
            owner_number = gid_number(customer["id"])
            assert owner_number is not None
            self._index_addresses(owner_number, [address])
            if set_default or not customer.get("defaultAddressId"):
                customer["defaultAddressId"] = address["id"]
            self._stamp(customer)
            return address

    def _customer_and_address(
        self, customer_gid: str | None, address_gid_: str | None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(customer, the address's owner, address); raises LookupError for an unknown
        address id (Shopify: top-level "invalid id"), a userError for an unknown customer."""
        found = self.find_address(address_gid_)
        if found is None:
            raise LookupError("invalid id")
        customer = self.get_customer(customer_gid)
        if customer is None:
            raise WriteRejected([UserError(("customerId",), "Customer does not exist",
                                           "NOT_FOUND")])
        owner, address = found
        return customer, owner, address

    def _owned_address(
        self, customer_gid: str | None, address_gid_: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(customer, address) when the address belongs to the customer; else as
        :meth:`_customer_and_address`, or a userError for another customer's address."""
        customer, owner, address = self._customer_and_address(customer_gid, address_gid_)
        if owner is not customer:
            raise WriteRejected([UserError(("addressId",), "Address does not exist",
                                           "NOT_FOUND")])
        return customer, address

    def update_address(
        self, customer_gid: str | None, address_gid_: str | None, data: Mapping[str, Any],
        set_default: bool,
    ) -> dict[str, Any]:
        """Raises LookupError for an unknown address id (Shopify: top-level "invalid id")."""
        with self.lock:
            customer, address = self._owned_address(customer_gid, address_gid_)
            if "id" in data and gid_number(data.get("id")) != gid_number(address_gid_):
                raise WriteRejected([UserError(("addressId",), "The id of the address does not "
                                               "match the id in the input", "INVALID")])
            errors: list[UserError] = []
            updated = self._address(data, ("address",), errors, base=address)
            if errors:
                raise WriteRejected(errors)
            address.update(updated)
            if set_default:
                customer["defaultAddressId"] = address["id"]
            self._stamp(customer)
            return address

    def delete_address(self, customer_gid: str | None, address_gid_: str | None) -> str:
        with self.lock:
            customer, address = self._owned_address(customer_gid, address_gid_)
            customer["addresses"] = [a for a in customer["addresses"] if a is not address]
            owner_number = gid_number(customer["id"])
            assert owner_number is not None
            self._unindex_addresses(owner_number, [address])
            if customer.get("defaultAddressId") == address["id"]:
                remaining = customer["addresses"]
                customer["defaultAddressId"] = remaining[0]["id"] if remaining else None
            self._stamp(customer)
            return str(address["id"])

    def set_default_address(self, customer_gid: str | None, address_gid_: str | None
                            ) -> dict[str, Any]:
        with self.lock:
            # another customer's address changes nothing: the customer is answered as it is
            customer, owner, address = self._customer_and_address(customer_gid, address_gid_)
            if owner is customer:
                customer["defaultAddressId"] = address["id"]
                self._stamp(customer)
            return customer

    # ------------------------------------------------------------------ seeding

    def add_order(self, data: Mapping[str, Any], *, seeding: bool = False) -> dict[str, Any]:
        """Add an order (the API offers no order writes to the connector); a new order is
        reported as ``orders/create`` unless it is seeding."""
        with self.lock:
            number = gid_number(data.get("id")) or 0
            if number in self._orders or gid_type(data.get("id")) != "Order":
                number = next(self._ids)
            else:
                self._bump(number)
            now = iso(self.now())
            errors: list[UserError] = []
            order: dict[str, Any] = {
                "id": f"{ORDER_GID}{number}",
                "name": data.get("name") or f"#{1000 + len(self._orders) + 1}",
                "email": data.get("email"),
                "phone": normalize.phone(data.get("phone"), self.shop["countryCode"])[0],
                "customerId": data.get("customerId"),
                "createdAt": data.get("createdAt") or now,
                "updatedAt": data.get("updatedAt") or now,
                "billingAddress": None,
                "shippingAddress": None,
            }
            for key in ("billingAddress", "shippingAddress"):
                if data.get(key):
                    address = self._address(data[key], (key,), errors)
                    address["id"] = f"{ADDRESS_GID}{next(self._ids)}?model_name=Address"
                    order[key] = address
            if errors:
                raise WriteRejected(errors)
            self._orders[number] = order
            if order["customerId"]:
                self._orders_by_customer.setdefault(order["customerId"], []).append(number)
            if not seeding:
                self._emit("orders/create", order)
            return order

    def load(self, customers: Iterable[Mapping[str, Any]],
             orders: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        """Seed camelCase records; a record that breaks Shopify's rules raises WriteRejected.
        Returns the customers created."""
        created: list[dict[str, Any]] = []
        with self.lock:
            for data in customers:
                payload = {k: v for k, v in data.items()
                           if k not in ("id", "createdAt", "updatedAt", "state", "verifiedEmail")}
                customer = self.create_customer(payload, created_at=data.get("createdAt"),
                                                updated_at=data.get("updatedAt"), seeding=True)
                if data.get("state"):
                    customer["state"] = data["state"]
                if "verifiedEmail" in data:
                    customer["verifiedEmail"] = bool(data["verifiedEmail"])
                own = gid_number(customer["id"])
                assert own is not None
                self._unindex_addresses(own, customer["addresses"])
                for address, item in zip(customer["addresses"], data.get("addresses") or [],
                                         strict=False):
                    seeded = gid_number(item.get("id"))
                    if seeded is not None:
                        address["id"] = address_gid(seeded)
                        self._bump(seeded)
                self._index_addresses(own, customer["addresses"])
                if customer["addresses"]:
                    customer["defaultAddressId"] = customer["addresses"][0]["id"]
                created.append(customer)
                number = gid_number(data.get("id"))
                if number is not None and number not in self._customers:
                    self._drop(own, customer)
                    customer["id"] = f"{CUSTOMER_GID}{number}"
                    self._put(number, customer)
                    self._bump(number)
            for data in orders:
                order = dict(data)
                if order.get("customerEmail") and not order.get("customerId"):
                    owner = self.by_email(order["customerEmail"])
                    order["customerId"] = owner["id"] if owner else None
                self.add_order(order, seeding=True)
            self._changed()
        return created

    def _bump(self, number: int) -> None:
        """Keep generated ids above seeded ones."""
        current = next(self._ids)
        self._ids = itertools.count(max(current, number + 1))

    def dump(self) -> dict[str, Any]:
        """Everything as one JSON-able document (the ``--persist`` format)."""
        with self.lock:
            customers = []
            for customer in self.all_customers():
                out = copy.deepcopy(customer)
                default = out.pop("defaultAddressId", None)
                out["addresses"].sort(key=lambda a: a["id"] != default)
                customers.append(out)
            orders = copy.deepcopy(self.all_orders())
            return {"shop": dict(self.shop), "customers": customers, "orders": orders}


def _label(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z0-9])", r" \1", key).capitalize()
