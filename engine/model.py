"""Typed records passed between custsync's layers.

Connectors produce and consume these; the engine never hands a connector YAML, rule objects or
loose dicts. Every record is frozen: a stage that wants to change one builds a new one with
``dataclasses.replace``. Field names follow the design brief (ERP customer, Shopify customer,
address) so that facts, plan output and rule tests all speak the same words.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = [
    "ERP_CUSTOMER_FIELDS",
    "ERP_FIELD_LENGTHS",
    "ERP_TEMPLATE_FIELDS",
    "Action",
    "CompanyInfo",
    "Country",
    "CountrySetup",
    "CustomerTemplate",
    "Decision",
    "Direction",
    "ErpCustomer",
    "ErpReference",
    "FieldChange",
    "FiredRule",
    "Link",
    "ShopContext",
    "ShopSettings",
    "ShopifyAddress",
    "ShopifyCustomer",
    "ShopifyOrder",
    "TaxArea",
    "erp_code",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# --------------------------------------------------------------------------------------------
# ERP side
# --------------------------------------------------------------------------------------------

#: ERP customer fields that custsync reads and writes, in display order.
ERP_CUSTOMER_FIELDS: tuple[str, ...] = (
    "no",
    "name",
    "name_2",
    "contact",
    "address",
    "address_2",
    "city",
    "post_code",
    "county",
    "country_code",
    "phone",
    "email",
)

#: Fields that come from a customer template on create and are never touched on update.
ERP_TEMPLATE_FIELDS: tuple[str, ...] = (
    "gen_bus_posting_group",
    "customer_posting_group",
    "vat_bus_posting_group",
    "tax_area_code",
    "tax_liable",
    "payment_terms_code",
    "payment_method_code",
    "currency_code",
    "language_code",
)

#: ERP field lengths (Business Central), used to cut texts on import.
ERP_FIELD_LENGTHS: Mapping[str, int] = MappingProxyType(
    {
        "name": 100,
        "name_2": 50,
        "address": 100,
        "address_2": 50,
        "city": 30,
        "contact": 100,
        "phone": 30,
        "email": 80,
        "county": 30,
        "post_code": 20,
    }
)


def erp_code(value: str) -> str:
    """A key as Business Central's Code fields store it: trimmed, upper case (``" g001 "`` is
    customer ``G001``), so that one customer is not loaded as three."""
    return value.strip().upper()


def _code_field(record: Any, name: str) -> None:
    """A customer number of a frozen record stored as :func:`erp_code` (the ERP's form)."""
    value = getattr(record, name)
    if isinstance(value, str) and value != erp_code(value):
        object.__setattr__(record, name, erp_code(value))


@dataclass(frozen=True, slots=True)
class ErpCustomer:
    """A customer record of the ERP (Business Central field names in the docstring of each)."""

    no: str
    name: str = ""
    name_2: str = ""
    contact: str = ""
    address: str = ""
    address_2: str = ""
    city: str = ""
    post_code: str = ""
    county: str = ""
    country_code: str = ""  # ERP country code, e.g. "EL" for Greece; blank = company's country
    phone: str = ""
    email: str = ""
    #: template-managed fields (posting groups, tax area, payment terms, ...)
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    #: last modification time in the ERP (UTC), for incremental export
    modified_at: datetime | None = None
    #: opaque concurrency token (row version / OData etag); None where the ERP has none
    etag: str | None = None

    def get(self, name: str) -> Any:
        """A field by name: a core field, else a template field, else ``""``."""
        if name in ERP_CUSTOMER_FIELDS:
            return getattr(self, name)
        return self.extra.get(name, "")


@dataclass(frozen=True, slots=True)
class Country:
    """ERP country/region: its own code and its ISO 3166-1 alpha-2 code (they can differ)."""

    code: str
    iso_code: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class CompanyInfo:
    """The ERP company; its country is used for customers with a blank country."""

    name: str = ""
    country_code: str = ""


@dataclass(frozen=True, slots=True)
class CustomerTemplate:
    """An ERP customer template: default values for the fields of a created customer."""

    code: str
    description: str = ""
    fields: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class ErpReference:
    """ERP reference data the rules read: countries, company, templates."""

    countries: tuple[Country, ...] = ()
    company: CompanyInfo = field(default_factory=CompanyInfo)
    templates: tuple[CustomerTemplate, ...] = ()


# --------------------------------------------------------------------------------------------
# Shopify side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShopifyAddress:
    id: str = ""  # gid://shopify/MailingAddress/...
    default: bool = False
    company: str = ""
    first_name: str = ""
    last_name: str = ""
    address1: str = ""
    address2: str = ""
    zip: str = ""
    city: str = ""
    country_code: str = ""  # ISO 3166-1 alpha-2
    province_code: str = ""
    province: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class ShopifyCustomer:
    id: str  # gid://shopify/Customer/...
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""  # E.164 as Shopify stores it
    state: str = ""  # DISABLED, INVITED, ENABLED, DECLINED
    tags: tuple[str, ...] = ()
    note: str = ""
    updated_at: datetime | None = None
    addresses: tuple[ShopifyAddress, ...] = ()

    @property
    def default_address(self) -> ShopifyAddress | None:
        for address in self.addresses:
            if address.default:
                return address
        return None


@dataclass(frozen=True, slots=True)
class ShopifyOrder:
    """The customer-relevant part of a Shopify order, for order mapping."""

    id: str
    name: str = ""  # "#1001"
    email: str = ""
    phone: str = ""
    customer: ShopifyCustomer | None = None
    bill_to: ShopifyAddress | None = None
    ship_to: ShopifyAddress | None = None


# --------------------------------------------------------------------------------------------
# Configuration the rules read
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaxArea:
    """A tax area row of a per-country setup; also the county code <-> name table."""

    county: str = ""
    county_code: str = ""
    tax_area_code: str = ""
    tax_liable: bool = False
    vat_bus_posting_group: str = ""


@dataclass(frozen=True, slots=True)
class CountrySetup:
    """Per-country setup of a shop, keyed by ISO 3166-1 alpha-2 code."""

    iso_code: str
    default_customer_no: str = ""
    customer_template_code: str = ""
    tax_areas: tuple[TaxArea, ...] = ()

    def __post_init__(self) -> None:
        _code_field(self, "default_customer_no")


@dataclass(frozen=True, slots=True)
class ShopSettings:
    """The settings of one shop (behaviour.md §1), with their defaults."""

    customer_import: str = "with_order_import"  # none | with_order_import | all_customers
    customer_mapping_type: str = "by_email_phone"  # by_email_phone | by_bill_to | default_customer
    shopify_can_update_customers: bool = False
    can_update_shopify_customers: bool = False
    auto_create_unknown_customers: bool = False
    customer_template_code: str = ""
    default_customer_no: str = ""
    export_customers: bool = False
    name_source: str = "company_name"
    name_2_source: str = "first_and_last_name"
    contact_source: str = "first_and_last_name"
    county_source: str = "code"  # code | name
    send_invite_email: bool = False

    def __post_init__(self) -> None:
        _code_field(self, "default_customer_no")


@dataclass(frozen=True, slots=True)
class Link:
    """The stored pairing Shopify customer <-> ERP customer for one shop."""

    shop: str
    shopify_id: str
    erp_no: str
    #: Shopify MailingAddress gid -> ERP customer no., for per-address (bill-to) links
    address_ids: tuple[str, ...] = ()
    last_import_at: datetime | None = None
    last_export_at: datetime | None = None
    #: Shopify updated_at right after our own last write (so our exports do not echo back)
    own_write_shopify_updated_at: datetime | None = None
    #: the ERP customer's etag right after our own import last *wrote* it (so our imports do
    #: not echo back as exports; an import that only linked leaves it as it was)
    own_write_erp_etag: str | None = None


# --------------------------------------------------------------------------------------------
# Decisions: the only thing the engine hands to connectors
# --------------------------------------------------------------------------------------------


class Direction(enum.StrEnum):
    IMPORT = "import"  # Shopify -> ERP
    EXPORT = "export"  # ERP -> Shopify
    ORDER = "order"  # Shopify order -> ERP sell-to / bill-to customer


class Action(enum.StrEnum):
    """What applying a decision does. Plan symbols: + create, ~ update, = link, ! skip."""

    CREATE = "create"  # create the target record (and link it)
    UPDATE = "update"  # write changed fields to the linked/matched target (and link it)
    LINK = "link"  # link to an existing target, nothing to write
    SKIP = "skip"  # not processed; reason_code and message say why
    NOOP = "noop"  # linked and already equal: nothing to do

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "link": "=", "skip": "!", "noop": " "}[self.value]


@dataclass(frozen=True, slots=True)
class FiredRule:
    """A rule that contributed to a decision, with where it is written."""

    id: str
    file: str
    line: int
    decision: str = ""  # the rule file's decision, e.g. "import_match"


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Decision:
    """One record's outcome for one direction.

    ``record`` names the source record (a Shopify gid on import/order, an ERP customer no. on
    export); ``erp_no`` / ``shopify_id`` are the target ids where known (for a create, the
    target id is unknown until applied). ``changes`` are the fields to write with their old and
    new values (on create, old is ``None``). ``payload`` holds additional action parameters
    (e.g. ``template_code`` on an ERP create, ``address`` for a Shopify default address).
    """

    direction: Direction
    action: Action
    shop: str
    record: str
    erp_no: str | None = None
    shopify_id: str | None = None
    changes: tuple[FieldChange, ...] = ()
    reason_code: str | None = None
    message: str | None = None
    rules: tuple[FiredRule, ...] = ()
    new_link: bool = False
    payload: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    #: the source record's version when planned (updated_at / etag), to refuse stale plans
    source_version: str | None = None
    #: the target record's version when planned, to refuse a plan whose target changed since
    target_version: str | None = None
    label: str = ""  # human name for plan output, e.g. "Jane Doe <j***@example.com>"

    @property
    def is_change(self) -> bool:
        return self.action in (Action.CREATE, Action.UPDATE, Action.LINK)

    def change_dict(self) -> dict[str, Any]:
        return {change.field: change.new for change in self.changes}


_NO_SETUPS: Mapping[str, CountrySetup] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ShopContext:
    """One shop as the engine sees it: its name, settings and per-country setups (ISO keys)."""

    name: str
    settings: ShopSettings = field(default_factory=ShopSettings)
    country_setups: Mapping[str, CountrySetup] = field(default_factory=lambda: _NO_SETUPS)

    def setup(self, iso_code: str | None) -> CountrySetup | None:
        """The per-country setup for an ISO code (any case), or None."""
        if not iso_code:
            return None
        code = iso_code.strip().upper()
        found = self.country_setups.get(code)
        if found is None and code != iso_code:
            found = self.country_setups.get(iso_code)
        return found

    def tax_areas(self, iso_code: str | None) -> tuple[TaxArea, ...]:
        setup = self.setup(iso_code)
        return setup.tax_areas if setup is not None else ()
