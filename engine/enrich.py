"""Per-record facts: one flat dict per record and direction, named as in vocabulary.py.

Everything a rule may read is computed here in Python from the record, the shop and the
:class:`~.world.World` indexes. Empty values (``None``, ``""``) are left out: a fact that is
not in the dict is *absent* (``present: false``). The dicts are built per record and dropped
after its decision; nothing here is cached per record.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from . import names, phones
from .model import (
    CompanyInfo,
    ErpCustomer,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
    ShopSettings,
    TaxArea,
)
from .world import ShopContext, World, bill_to_key

Facts = dict[str, Any]

#: a deliberately plain check: one @, no spaces or separators, a dot in the domain
_EMAIL = re.compile(r"^[^@\s;,<>()\[\]\"]+@[^@\s;,<>()\[\]\"]+\.[^@\s;,<>()\[\]\".]+$")
_EMAIL_SPLIT = re.compile(r"[;,]")

_ADDRESS_FIELDS = tuple(f.name for f in dataclasses.fields(ShopifyAddress) if f.name != "default")
_ERP_FACT_FIELDS = (
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


def put(facts: Facts, name: str, value: Any) -> None:
    """Set a fact, leaving empty values out (durable-rules counts None and "" as present)."""
    if value is None:
        return
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return
    facts[name] = value


@lru_cache(maxsize=64)
def settings_facts(settings: ShopSettings) -> Mapping[str, Any]:
    facts: Facts = {}
    for spec in dataclasses.fields(settings):
        put(facts, f"settings.{spec.name}", getattr(settings, spec.name))
    return facts


@lru_cache(maxsize=64)
def company_facts(company: CompanyInfo) -> Mapping[str, Any]:
    facts: Facts = {}
    put(facts, "company.name", company.name)
    put(facts, "company.country_code", company.country_code)
    return facts


def base_facts(world: World, shop: ShopContext) -> Facts:
    facts = dict(settings_facts(shop.settings))
    facts.update(company_facts(world.reference.company))
    return facts


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def chosen_address(customer: ShopifyCustomer) -> ShopifyAddress | None:
    """The default address, else the first one."""
    default = customer.default_address
    if default is not None:
        return default
    return customer.addresses[0] if customer.addresses else None


def first_email(value: str | None) -> str:
    """The part before the first ';' or ',' (a field holding several addresses)."""
    return _EMAIL_SPLIT.split(value or "", maxsplit=1)[0].strip()


def email_valid(value: str) -> bool:
    return bool(value) and len(value) <= 254 and _EMAIL.match(value) is not None


def tax_area_for_province(
    areas: tuple[TaxArea, ...], province: str, province_code: str
) -> TaxArea | None:
    """The tax area row of a province: by its name (ignoring case), else by its code."""
    name = province.strip().casefold()
    if name:
        for area in areas:
            if area.county.strip().casefold() == name:
                return area
    code = province_code.strip().casefold()
    if code:
        for area in areas:
            if area.county_code.strip().casefold() == code:
                return area
    return None


def _person(address: ShopifyAddress | None, customer: ShopifyCustomer | None) -> tuple[str, str]:
    """First and last name: the address's when it carries one, else the customer's."""
    if address is not None and (address.first_name.strip() or address.last_name.strip()):
        return address.first_name, address.last_name
    if customer is not None:
        return customer.first_name, customer.last_name
    return "", ""


def import_name(settings: ShopSettings, first: str, last: str, company: str) -> str:
    """ERP Name as the import field mapping builds it (§5), for name comparisons."""
    name = names.ns(settings.name_source, first, last, company)
    if not name:
        name = names.ns(settings.name_2_source, first, last, company)
    if not name:
        name = names.ns(settings.contact_source, first, last, company)
    return name


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------------------------------------
# import (and the customer part of an order)
# ---------------------------------------------------------------------------------------------


def address_facts(
    facts: Facts, world: World, shop: ShopContext, address: ShopifyAddress | None
) -> None:
    """``address.*`` and the mapped values of the import field mapping (§5)."""
    settings = shop.settings
    if address is None:
        return
    for name in _ADDRESS_FIELDS:
        put(facts, f"address.{name}", getattr(address, name))
    iso = address.country_code.strip().upper()
    put(facts, "mapped.country_code", world.erp_country_for_iso(iso))
    areas = shop.tax_areas(iso)
    area = tax_area_for_province(areas, address.province, address.province_code)
    if settings.county_source == "name":
        county = address.province or (area.county if area is not None else "")
    else:
        county = address.province_code or (area.county_code if area is not None else "")
    put(facts, "mapped.county", county)
    facts["mapped.has_tax_area"] = area is not None
    if area is not None:
        put(facts, "mapped.tax_area_code", area.tax_area_code)
        facts["mapped.tax_liable"] = bool(area.tax_liable)
        put(facts, "mapped.vat_bus_posting_group", area.vat_bus_posting_group)


def import_facts(
    world: World,
    shop: ShopContext,
    customer: ShopifyCustomer,
    *,
    caller_template: str | None = None,
    allow_create: bool | None = None,
    address: ShopifyAddress | None = None,
) -> Facts:
    """Facts of a Shopify customer for the import decisions. ``address`` overrides the chosen
    address (an order's bill-to); ``allow_create`` is set by an order mapping."""
    facts = base_facts(world, shop)
    settings = shop.settings
    put(facts, "shopify.id", customer.id)
    put(facts, "shopify.email", customer.email)
    put(facts, "shopify.phone", customer.phone)
    put(facts, "shopify.first_name", customer.first_name)
    put(facts, "shopify.last_name", customer.last_name)
    put(facts, "shopify.state", customer.state)
    facts["shopify.address_count"] = len(customer.addresses) + (
        1 if address is not None and address not in customer.addresses else 0
    )
    chosen = address if address is not None else chosen_address(customer)
    facts["shopify.has_address"] = chosen is not None
    default = customer.default_address
    if default is not None:
        put(facts, "default_address.country_code", default.country_code.upper())
    if customer.addresses:
        put(facts, "first_address.country_code", customer.addresses[0].country_code.upper())
    # --- link and selection -------------------------------------------------------------------
    link = world.link_for_shopify(shop.name, customer.id)
    linked = link is not None and world.erp_customer(link.erp_no) is not None
    facts["link.exists"] = linked
    facts["link.dropped"] = link is not None and not linked
    if link is not None and linked:
        put(facts, "link.customer_no", link.erp_no)
    updated = customer.updated_at
    if link is not None and linked:
        facts["shopify.changed_since_import"] = (
            link.last_import_at is None or updated is None or updated > link.last_import_at
        )
        own = link.own_write_shopify_updated_at
        facts["shopify.own_write_echo"] = own is not None and updated is not None and updated <= own
    else:
        facts["shopify.changed_since_import"] = True
        facts["shopify.own_write_echo"] = False
    # --- lookups ------------------------------------------------------------------------------
    put(facts, "lookup.email_customer_no", world.erp_by_email(customer.email))
    phone = customer.phone or (chosen.phone if chosen is not None else "")
    region = (chosen.country_code if chosen is not None else "") or None
    if phone:
        e164 = phones.match_e164(phone, region)
        put(facts, "lookup.phone_e164_customer_no", world.erp_by_e164(e164))
        put(facts, "lookup.phone_digits_customer_no", world.erp_by_phone_digits(phone))
    # --- templates and per-country setups -----------------------------------------------------
    put(facts, "caller.template_code", caller_template)
    if allow_create is not None:
        facts["caller.allow_create"] = bool(allow_create)
    for prefix, source in (
        ("default_country_setup", default),
        ("first_country_setup", customer.addresses[0] if customer.addresses else None),
    ):
        setup = shop.setup(source.country_code) if source is not None else None
        facts[f"{prefix}.exists"] = setup is not None
        if setup is not None:
            put(facts, f"{prefix}.customer_template_code", setup.customer_template_code)
    if address is not None:  # an order's address: its country counts as the default one
        setup = shop.setup(address.country_code)
        put(facts, "default_address.country_code", address.country_code.upper())
        facts["default_country_setup.exists"] = setup is not None
        if setup is not None:
            put(facts, "default_country_setup.customer_template_code", setup.customer_template_code)
    # --- names and mapped values (§5) --------------------------------------------------------
    first, last = _person(chosen, customer)
    company = chosen.company if chosen is not None else ""
    put(facts, "names.by_name_source", names.ns(settings.name_source, first, last, company))
    put(facts, "names.by_name_2_source", names.ns(settings.name_2_source, first, last, company))
    put(facts, "names.by_contact_source", names.ns(settings.contact_source, first, last, company))
    address_facts(facts, world, shop, chosen)
    put(facts, "mapped.phone", (chosen.phone if chosen is not None else "") or customer.phone)
    return facts


def add_erp_facts(facts: Facts, customer: ErpCustomer | None) -> None:
    """``erp.*`` of the matched (import) or exported ERP customer."""
    facts["erp.exists"] = customer is not None
    if customer is None:
        return
    for name in _ERP_FACT_FIELDS:
        put(facts, f"erp.{name}", getattr(customer, name))


# ---------------------------------------------------------------------------------------------
# orders
# ---------------------------------------------------------------------------------------------


def _has_name(address: ShopifyAddress | None) -> bool:
    return address is not None and any(
        part.strip() for part in (address.first_name, address.last_name, address.company)
    )


def order_country(order: ShopifyOrder) -> str:
    """The order's ship-to country; the bill-to's when it has no ship-to (digital goods)."""
    for address in (order.ship_to, order.bill_to):
        if address is not None and address.country_code.strip():
            return address.country_code.strip().upper()
    return ""


def bill_to_match(
    world: World, shop: ShopContext, order: ShopifyOrder
) -> tuple[ShopifyAddress | None, str | None, str | None]:
    """(the customer's address equal to the bill-to, the ERP customer linked to it, the ERP
    customer with exactly the bill-to's name and address)."""
    bill_to = order.bill_to
    if bill_to is None:
        return None, None, None
    settings = shop.settings
    first, last = _person(bill_to, order.customer)
    name = import_name(settings, first, last, bill_to.company)
    key = bill_to_key(
        name, bill_to.address1, bill_to.address2, bill_to.zip, bill_to.city, bill_to.country_code
    )
    equal: ShopifyAddress | None = None
    if order.customer is not None:
        for candidate in order.customer.addresses:
            c_first, c_last = _person(candidate, order.customer)
            candidate_name = import_name(settings, c_first, c_last, candidate.company)
            candidate_key = bill_to_key(
                candidate_name,
                candidate.address1,
                candidate.address2,
                candidate.zip,
                candidate.city,
                candidate.country_code,
            )
            if candidate_key == key:
                equal = candidate
                break
    linked = world.address_link(shop.name, equal.id) if equal is not None else None
    if linked is not None and world.erp_customer(linked) is None:
        linked = None
    by_name = world.erp_by_name_and_address(key) if name else None
    return equal, linked, by_name


def order_facts(world: World, shop: ShopContext, order: ShopifyOrder) -> Facts:
    facts = base_facts(world, shop)
    put(facts, "order.id", order.id)
    facts["order.has_name"] = _has_name(order.bill_to) or _has_name(order.ship_to)
    facts["order.has_customer"] = order.customer is not None
    country = order_country(order)
    put(facts, "order.ship_to_country_code", country)
    if order.bill_to is not None:
        put(facts, "order.bill_to_country_code", order.bill_to.country_code.upper())
    setup = shop.setup(country)
    facts["order_country_setup.exists"] = setup is not None
    if setup is not None:
        put(facts, "order_country_setup.default_customer_no", setup.default_customer_no)
    customer = order.customer
    if customer is not None:
        put(facts, "shopify.id", customer.id)
        put(facts, "shopify.email", customer.email or order.email)
        put(facts, "shopify.phone", customer.phone or order.phone)
        put(facts, "shopify.first_name", customer.first_name)
        put(facts, "shopify.last_name", customer.last_name)
        facts["shopify.address_count"] = len(customer.addresses)
        facts["shopify.has_address"] = bool(customer.addresses)
        link = world.link_for_shopify(shop.name, customer.id)
        linked = link is not None and world.erp_customer(link.erp_no) is not None
        facts["link.exists"] = linked
        facts["link.dropped"] = link is not None and not linked
        if link is not None and linked:
            put(facts, "link.customer_no", link.erp_no)
    if order.bill_to is not None:
        for name in _ADDRESS_FIELDS:
            put(facts, f"address.{name}", getattr(order.bill_to, name))
        _, linked_no, by_name = bill_to_match(world, shop, order)
        put(facts, "lookup.bill_to_customer_no", linked_no)
        put(facts, "lookup.bill_to_name_customer_no", by_name)
    return facts


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------


def _province_rows(
    areas: tuple[TaxArea, ...], county: str
) -> tuple[TaxArea | None, TaxArea | None, TaxArea | None]:
    """Tax area rows for an ERP County: by code, by exact name, by name prefix (any case)."""
    wanted = county.strip().casefold()
    if not wanted:
        return None, None, None
    by_code = next((a for a in areas if a.county_code.strip().casefold() == wanted), None)
    by_name = next((a for a in areas if a.county.strip().casefold() == wanted), None)
    by_prefix = next((a for a in areas if a.county.strip().casefold().startswith(wanted)), None)
    return by_code, by_name, by_prefix


def export_target(
    world: World, shop: ShopContext, customer: ErpCustomer, email: str, e164: str | None
) -> tuple[str | None, str | None, str | None, str | None]:
    """(linked Shopify id, matched Shopify id, matched by, ERP no. the match is linked to)."""
    link = world.link_for_erp(shop.name, customer.no)
    linked_id = link.shopify_id if link is not None else None
    match_id: str | None = None
    match_by: str | None = None
    if email:
        match_id = world.shopify_by_email(email)
        match_by = "email" if match_id else None
    if match_id is None and e164:
        match_id = world.shopify_by_phone(e164)
        match_by = "phone" if match_id else None
    linked_to: str | None = None
    if match_id is not None:
        match_link = world.link_for_shopify(shop.name, match_id)
        linked_to = match_link.erp_no if match_link is not None else None
    return linked_id, match_id, match_by, linked_to


def export_facts(
    world: World, shop: ShopContext, customer: ErpCustomer, *, requested: bool = False
) -> Facts:
    facts = base_facts(world, shop)
    add_erp_facts(facts, customer)
    facts["export.requested"] = bool(requested)
    # e-mail
    email = first_email(customer.email)
    put(facts, "email.first", email)
    facts["email.valid"] = email_valid(email)
    # country
    code, iso, from_company = world.customer_country(customer)
    put(facts, "country.code", code)
    put(facts, "country.iso_code", iso)
    facts["country.from_company"] = from_company
    # phone
    raw_phone = customer.phone.strip()
    facts["phone.present"] = bool(raw_phone)
    e164 = phones.to_e164(raw_phone, iso or None) if raw_phone else None
    facts["phone.valid"] = e164 is not None
    put(facts, "phone.e164", e164)
    # the Shopify side
    linked_id, match_id, match_by, linked_to = export_target(world, shop, customer, email, e164)
    facts["shopify_link.exists"] = linked_id is not None
    put(facts, "shopify_link.shopify_id", linked_id)
    put(facts, "shopify_match.id", match_id)
    put(facts, "shopify_match.by", match_by)
    put(facts, "shopify_match.linked_to", linked_to)
    facts["shopify_match.linked_elsewhere"] = linked_to is not None and linked_to != customer.no
    target = linked_id or (match_id if linked_to is None or linked_to == customer.no else None)
    if e164:
        target_customer = world.shopify_customer(target)
        has_it = target_customer is not None and phones.normal_e164(target_customer.phone) == e164
        owner = world.shopify_by_phone(e164)
        facts["phone.duplicate_in_shopify"] = owner is not None and owner != target
        other = world.phone_owner(customer, e164)
        facts["phone.duplicate_in_batch"] = other is not None and not has_it
    else:
        facts["phone.duplicate_in_shopify"] = False
        facts["phone.duplicate_in_batch"] = False
    # county and province
    county = customer.county.strip()
    facts["county.length"] = len(county)
    areas = shop.tax_areas(iso)
    facts["county.tax_areas_exist"] = bool(areas)
    by_code, by_name, by_prefix = _province_rows(areas, county)
    for prefix, row in (("by_code", by_code), ("by_name", by_name), ("by_prefix", by_prefix)):
        if row is not None:
            put(facts, f"province.{prefix}_code", row.county_code)
            put(facts, f"province.{prefix}_name", row.county)
    return facts


def source_version_of(value: datetime | None) -> str | None:
    return _iso(value)
