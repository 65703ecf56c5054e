"""The double's data: companies, their customers (table 18) and reference tables.

One row per customer holds every table field the API page or the Customer Card page shows;
the API (``customers``) and the published pages render it their way. Reference rows
(countries, tax areas, payment terms and methods, currencies, shipment methods, customer
templates) are plain dicts in their API wire names plus the page-only fields.

Rows carry a version: every change gives a new ETag (BC's form, ``W/"<base64>"``) and a new
``lastModifiedDateTime``. All access goes through :class:`Store` under one lock.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import BcError, dialog, string_too_long

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
BLANK_ENUM = "_x0020_"
Row = dict[str, Any]


def xml_name(member: str) -> str:
    """An enum member as OData sends it: ``" "`` -> ``_x0020_``, ``Adjmt.`` -> ``Adjmt_x002E_``."""
    return "".join(c if c.isalnum() or c == "_" else f"_x{ord(c):04X}_" for c in member)


def from_xml_name(text: str) -> str:
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


def format_timestamp(moment: datetime) -> str:
    """UTC, milliseconds, trailing zeros dropped: ``2025-02-23T13:34:29.94Z`` (recorded)."""
    moment = moment.astimezone(UTC)
    millis = moment.microsecond // 1000
    fraction = f".{millis:03d}".rstrip("0") if millis else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def etag(row_id: str, version: int) -> str:
    """BC's weak ETag: base64 of ``'<len>;<19-20 digits>1;00;'`` (recorded form)."""
    digest = hashlib.blake2b(f"{row_id}:{version}".encode(), digest_size=8).digest()
    number = str(int.from_bytes(digest, "big") | (1 << 63))
    raw = f"'{len(number)};{number}1;00;'"
    return 'W/"' + base64.b64encode(raw.encode()).decode() + '"'


def new_guid() -> str:
    return str(uuid.uuid4())


def decimal(value: Any) -> Any:
    """Decimals as BC sends them: no trailing zeros (``2311.3``, ``0``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class TableField:
    """A writable field of table 18 (Customer): kind, length and caption."""

    kind: str
    length: int | None
    caption: str


#: customer row key -> table field (lengths from table 18, see api-facts §2.1)
CUSTOMER_FIELDS: dict[str, TableField] = {
    "number": TableField("code", 20, "No."),
    "displayName": TableField("text", 100, "Name"),
    "name2": TableField("text", 50, "Name 2"),
    "searchName": TableField("code", 100, "Search Name"),
    "contact": TableField("text", 100, "Contact"),
    "type": TableField("enum", None, "Contact Type"),
    "addressLine1": TableField("text", 100, "Address"),
    "addressLine2": TableField("text", 50, "Address 2"),
    "city": TableField("text", 30, "City"),
    "state": TableField("text", 30, "County"),
    "country": TableField("code", 10, "Country/Region Code"),
    "postalCode": TableField("code", 20, "Post Code"),
    "phoneNumber": TableField("text", 30, "Phone No."),
    "mobilePhoneNo": TableField("text", 30, "Mobile Phone No."),
    "email": TableField("text", 80, "E-Mail"),
    "website": TableField("text", 80, "Home Page"),
    "salespersonCode": TableField("code", 20, "Salesperson Code"),
    "creditLimit": TableField("decimal", None, "Credit Limit (LCY)"),
    "taxLiable": TableField("bool", None, "Tax Liable"),
    "taxRegistrationNumber": TableField("text", 20, "VAT Registration No."),
    "blocked": TableField("enum", None, "Blocked"),
    "primaryContactNo": TableField("code", 20, "Primary Contact No."),
    "genBusPostingGroup": TableField("code", 20, "Gen. Bus. Posting Group"),
    "vatBusPostingGroup": TableField("code", 20, "VAT Bus. Posting Group"),
    "customerPostingGroup": TableField("code", 20, "Customer Posting Group"),
    "taxAreaCode": TableField("code", 20, "Tax Area Code"),
    "paymentTermsCode": TableField("code", 10, "Payment Terms Code"),
    "paymentMethodCode": TableField("code", 10, "Payment Method Code"),
    "shipmentMethodCode": TableField("code", 10, "Shipment Method Code"),
    "currencyCode": TableField("code", 10, "Currency Code"),
    "languageCode": TableField("code", 10, "Language Code"),
}
CONTACT_TYPES = ("Company", "Person")
BLOCKED = (" ", "Ship", "Invoice", "All")
#: template (and config template) fields a new customer takes when the request left them out
TEMPLATE_FIELDS = ("genBusPostingGroup", "customerPostingGroup", "vatBusPostingGroup",
                   "taxAreaCode", "taxLiable", "paymentTermsCode", "paymentMethodCode",
                   "shipmentMethodCode", "currencyCode", "languageCode", "type", "blocked")
_EMAIL = re.compile(r"^[^@\s;,<>\"()]+@[^@\s;,<>\"()]+\.[^@\s;,<>\"().]+$")


def blank_customer() -> Row:
    row: Row = {}
    for key, spec in CUSTOMER_FIELDS.items():
        row[key] = {"decimal": 0, "bool": False}.get(spec.kind, "")
    row["type"] = "Company"
    row["blocked"] = " "
    row["balanceDue"] = 0
    return row


def check_text(key: str, value: Any) -> Any:
    """A table field's value as BC stores it (codes upper-cased and trimmed), or a BcError."""
    spec = CUSTOMER_FIELDS[key]
    if spec.kind in ("text", "code", "enum"):
        if not isinstance(value, str):
            raise BcError(400, "BadRequest", "Cannot convert a primitive value to the expected "
                          "type 'Edm.String'. See the inner exception for more details.")
        if spec.kind == "code":
            value = value.strip().upper()
        if spec.length is not None and len(value) > spec.length:
            raise string_too_long(value, spec.length)
    elif spec.kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BcError(400, "BadRequest", "Cannot convert a primitive value to the expected "
                          "type 'Edm.Decimal'. See the inner exception for more details.")
    elif spec.kind == "bool" and not isinstance(value, bool):
        raise BcError(400, "BadRequest", "Cannot convert a primitive value to the expected "
                      "type 'Edm.Boolean'. See the inner exception for more details.")
    return value


def check_phone(key: str, value: str, number: str) -> None:
    if any(c.isalpha() for c in value):
        caption = CUSTOMER_FIELDS[key].caption
        raise BcError(400, "Application_FieldValidationException",
                      f"{caption} must not contain letters in Customer No.='{number}'.")


def check_email(value: str) -> None:
    """Mail Management's check: one or more addresses separated by ``;``."""
    for address in value.split(";"):
        address = address.strip()
        if address and not _EMAIL.match(address):
            raise dialog(f'The email address "{address}" is not valid.')


@dataclass
class NumberSeries:
    """The customer number series: the last number used, increased by one each time."""

    last: str = "C00000"

    def next(self, taken: Callable[[str], bool]) -> str:
        match = re.match(r"^(.*?)(\d+)$", self.last)
        if match is None:
            raise dialog(f"The number series cannot increase the number {self.last}.")
        prefix, digits = match[1], match[2]
        number = int(digits)
        while True:
            number += 1
            candidate = f"{prefix}{number:0{len(digits)}d}"
            if not taken(candidate):
                self.last = candidate
                return candidate


@dataclass
class Company:
    """One BC company: its customers, reference tables and setup."""

    id: str
    name: str
    display_name: str = ""
    lcy_code: str = "USD"
    uses_vat: bool = False  #: taxAreaId points to VAT Bus. Posting Groups (VAT countries)
    number_series: NumberSeries = field(default_factory=NumberSeries)
    #: the Config. Template the API applies on create (fields left out of the request)
    new_customer_defaults: dict[str, Any] = field(default_factory=dict)
    customers: dict[str, Row] = field(default_factory=dict)  #: id -> row
    #: entity set -> id -> row (countriesRegions, taxAreas, paymentTerms, paymentMethods,
    #: currencies, shipmentMethods, customerTemplates)
    reference: dict[str, dict[str, Row]] = field(default_factory=dict)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: customer number -> id (kept by add_customer, remove_customer, renumber, reindex)
    numbers: dict[str, str] = field(default_factory=dict)
    #: bumped when reference rows change, so cached renderings of customers are redone
    reference_generation: int = 0

    def by_number(self, number: str) -> Row | None:
        row_id = self.numbers.get(number)
        return self.customers.get(row_id) if row_id is not None else None

    def add_customer(self, row: Row) -> None:
        self.customers[row["id"]] = row
        self.numbers[row["number"]] = row["id"]

    def remove_customer(self, row: Row) -> None:
        del self.customers[row["id"]]
        self.numbers.pop(row["number"], None)

    def renumber(self, row: Row, number: str) -> None:
        self.numbers.pop(row["number"], None)
        row["number"] = number
        self.numbers[number] = row["id"]

    def reindex(self) -> None:
        self.numbers = {row["number"]: row_id for row_id, row in self.customers.items()}

    def ref(self, entity_set: str) -> dict[str, Row]:
        return self.reference.setdefault(entity_set, {})

    def ref_by_code(self, entity_set: str, code: str) -> Row | None:
        for row in self.ref(entity_set).values():
            if row["code"] == code:
                return row
        return None


class Clock:
    """UTC time for ``lastModifiedDateTime``, never going back (injectable for tests)."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._last = datetime(2000, 1, 1, tzinfo=UTC)

    def tick(self) -> datetime:
        moment = self._now().astimezone(UTC)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if moment < self._last:
            moment = self._last
        self._last = moment
        return moment

    def advance(self, seconds: float) -> None:
        """Move the clock forward (tests of incremental reads)."""
        base = self._now

        def later() -> datetime:
            return base() + timedelta(seconds=seconds)

        self._now = later


class Store:
    """All companies of the double's one environment, behind one lock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.companies: dict[str, Company] = {}
        self.clock = clock or Clock()
        self.lock = threading.RLock()

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self.lock:
            yield

    def add_company(self, name: str, *, company_id: str | None = None, **setup: Any
                    ) -> Company:
        with self.lock:
            company = Company(id=company_id or new_guid(), name=name, **setup)
            self.companies[company.id] = company
            return company

    def company(self, company_id: str) -> Company | None:
        return self.companies.get(company_id.lower())

    def company_named(self, name: str) -> Company | None:
        for company in self.companies.values():
            if company.name == name:
                return company
        return None

    def touch(self, row: Row) -> None:
        """A change: a new version (so a new ETag) and a new modification time."""
        row["_version"] = row.get("_version", 0) + 1
        row["_modified"] = self.clock.tick()

    def add_reference(self, company: Company, entity_set: str, values: Mapping[str, Any]
                      ) -> Row:
        with self.lock:
            row: Row = {"id": new_guid(), **values}
            self.touch(row)
            company.ref(entity_set)[row["id"]] = row
            company.reference_generation += 1
            return row

    def insert_customer(self, company: Company, values: Mapping[str, Any]) -> Row:
        """A seeded customer (no API validation; a blank number comes from the number series)."""
        with self.lock:
            row = blank_customer()
            row.update(values)
            row.setdefault("id", new_guid())
            if not row["number"]:
                row["number"] = company.number_series.next(
                    lambda n: company.by_number(n) is not None)
            if not row["searchName"]:
                row["searchName"] = row["displayName"].upper()[:100]
            self.touch(row)
            company.add_customer(row)
            return row

    def snapshot(self, company: Company) -> tuple[dict[str, Row], str]:
        """A copy to roll a failed ``Isolation: snapshot`` batch back to."""
        return ({k: dict(v) for k, v in company.customers.items()},
                company.number_series.last)

    def restore(self, company: Company, snapshot: tuple[dict[str, Row], str]) -> None:
        company.customers = snapshot[0]
        company.number_series.last = snapshot[1]
        company.reindex()
