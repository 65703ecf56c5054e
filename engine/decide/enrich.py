"""Per-record facts: one flat dict per record and direction, named as in vocabulary.py.

Everything a rule may read is computed here in Python from the record, the shop and the
:class:`~.world.World` indexes. Empty values (``None``, ``""``) are left out: a fact that is
not in the dict is *absent* (``present: false``). The dicts are built per record and dropped
after its decision; nothing here is cached per record.

Facts are grouped by the part of their name before the first dot (``lookup``, ``phone``, ...).
The engine asks for *lazy* facts: groups that cost something (index lookups, a phone parse,
name building) are computed on the first read of any of their facts, so a record skipped by
an early decision never pays for what only later decisions read. The values are the same
either way; :func:`import_facts` and :func:`export_facts` return every group computed unless
``lazy=True``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar, Self

from ..model import (
    ERP_CUSTOMER_FIELDS,
    CompanyInfo,
    ErpCustomer,
    Link,
    ShopContext,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
    ShopSettings,
    TaxArea,
)
from . import names, phones
from .world import World, bill_to_key

#: a deliberately plain check: one @, no spaces or separators, a dot in the domain
_EMAIL = re.compile(r"^[^@\s;,<>()\[\]\"]+@[^@\s;,<>()\[\]\"]+\.[^@\s;,<>()\[\]\".]+$")
_EMAIL_SPLIT = re.compile(r"[;,]")

_ADDRESS_FIELDS = tuple(f.name for f in dataclasses.fields(ShopifyAddress) if f.name != "default")
_ADDRESS_FACTS = tuple((f"address.{name}", name) for name in _ADDRESS_FIELDS)
_ERP_FACTS = tuple((f"erp.{name}", name) for name in ERP_CUSTOMER_FIELDS)


def put(facts: dict[str, Any], name: str, value: Any) -> None:
    """Set a fact, leaving empty values out (durable-rules counts None and "" as present)."""
    if value is None:
        return
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return
    facts[name] = value


def group_of(name: str) -> str:
    """The group of a fact: its name up to the first dot."""
    return name.partition(".")[0]


_ABSENT: Any = object()


class Facts(dict[str, Any]):
    """The flat facts of one record; some groups may still be *deferred*.

    A deferred group is computed on the first ``get``, ``[]`` or ``in`` of any of its facts
    (or by :meth:`require` / :meth:`complete`). Iterating, ``len`` and copying see only the
    groups computed so far: call :meth:`complete` first when every fact is wanted.
    """

    __slots__ = ("_pending",)

    #: group -> the method computing it (subclasses); one method may compute several groups
    LOADERS: ClassVar[Mapping[str, Callable[[Any], None]]] = {}
    #: group -> every group its loader computes (derived from LOADERS)
    _SIBLINGS: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._SIBLINGS = {
            group: tuple(g for g, f in cls.LOADERS.items() if f is loader)
            for group, loader in cls.LOADERS.items()
        }

    def __init__(self, facts: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        super().__init__(facts)
        self._pending: set[str] = set()

    @classmethod
    def deferring(cls, facts: Mapping[str, Any], groups: Iterable[str]) -> Self:
        """Facts holding a copy of ``facts``, with ``groups`` deferred (what ``cls(facts)``
        and :meth:`defer` do, in one step: made once per record)."""
        made = dict.__new__(cls)
        dict.update(made, facts)
        made._pending = set(groups)
        return made

    # --- deferred groups -----------------------------------------------------------------------

    def defer(self, *groups: str) -> None:
        """Mark groups to be computed on first use (each must have a loader)."""
        self._pending.update(groups)

    def _load(self, group: str) -> None:
        # every group this loader computes is done, even if it reads facts of its own
        siblings = self._SIBLINGS[group]
        self._pending.difference_update(siblings)
        try:
            self.LOADERS[group](self)
        except BaseException:
            # still to compute: a later read fails the same way instead of seeing a part
            self._pending.update(siblings)
            raise

    def require(self, groups: Iterable[str]) -> None:
        """Compute the deferred ones of ``groups`` now (:meth:`_load` written out: the
        evaluator asks before every decision)."""
        pending = self._pending
        if pending:
            for group in groups:
                if group in pending:
                    done = self._SIBLINGS[group]
                    pending.difference_update(done)
                    try:
                        self.LOADERS[group](self)
                    except BaseException:
                        pending.update(done)
                        raise

    def complete(self) -> Self:
        """Compute every deferred group; returns the facts themselves."""
        while self._pending:
            self._load(next(iter(self._pending)))
        return self

    # --- mapping access that computes deferred groups -------------------------------------------

    def _wanted(self, name: object) -> None:
        if isinstance(name, str):
            group = name.partition(".")[0]
            if group in self._pending:
                self._load(group)

    def get(self, name: str, default: Any = None) -> Any:
        # a fact that is there is final: groups are computed whole, never in part
        value = dict.get(self, name, _ABSENT)
        if value is not _ABSENT:
            return value
        if self._pending:
            self._wanted(name)
        return dict.get(self, name, default)

    def __getitem__(self, name: str) -> Any:
        if self._pending:
            self._wanted(name)
        return dict.__getitem__(self, name)

    def __contains__(self, name: object) -> bool:
        if self._pending:
            self._wanted(name)
        return dict.__contains__(self, name)


# ---------------------------------------------------------------------------------------------
# per shop (computed once)
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def settings_facts(settings: ShopSettings) -> Mapping[str, Any]:
    facts: dict[str, Any] = {}
    for spec in dataclasses.fields(settings):
        put(facts, f"settings.{spec.name}", getattr(settings, spec.name))
    return facts


@lru_cache(maxsize=64)
def company_facts(company: CompanyInfo) -> Mapping[str, Any]:
    facts: dict[str, Any] = {}
    put(facts, "company.name", company.name)
    put(facts, "company.country_code", company.country_code)
    return facts


#: (settings, company) -> their facts, by identity: hashing two frozen records field by
#: field on every record costs more than building the facts
_BASES: dict[tuple[int, int], tuple[ShopSettings, CompanyInfo, Mapping[str, Any]]] = {}


def _base(settings: ShopSettings, company: CompanyInfo) -> Mapping[str, Any]:
    key = (id(settings), id(company))
    known = _BASES.get(key)
    if known is not None and known[0] is settings and known[1] is company:
        return known[2]
    facts = dict(settings_facts(settings))
    facts.update(company_facts(company))
    if len(_BASES) >= 64:
        _BASES.clear()
    _BASES[key] = (settings, company, facts)
    return facts


def base_facts(world: World, shop: ShopContext) -> Facts:
    return Facts(_base(shop.settings, world.reference.company))


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def first_email(value: str | None) -> str:
    """The part before the first ';' or ',' (a field holding several addresses)."""
    if not value:
        return ""
    if ";" not in value and "," not in value:
        return value.strip()
    return _EMAIL_SPLIT.split(value, maxsplit=1)[0].strip()


def email_valid(value: str) -> bool:
    return bool(value) and len(value) <= 254 and _EMAIL.match(value) is not None


#: (id of a tax area table, what was looked up) -> (the table, the answer): the tables live as
#: long as their shop and hold a few rows, looked up with a few distinct values
_AREA_ANSWERS: dict[tuple[int, bool, str, str], tuple[tuple[TaxArea, ...], Any]] = {}
_AREA_ANSWERS_SIZE = 4096


def _remember(areas: tuple[TaxArea, ...], key: tuple[int, bool, str, str], answer: Any) -> Any:
    if len(_AREA_ANSWERS) >= _AREA_ANSWERS_SIZE:
        _AREA_ANSWERS.clear()
    _AREA_ANSWERS[key] = (areas, answer)
    return answer


def tax_area_for_province(
    areas: tuple[TaxArea, ...], province: str, province_code: str
) -> TaxArea | None:
    """The tax area row of a province: by its name (ignoring case), else by its code."""
    if not areas:
        return None
    key = (id(areas), False, province, province_code)
    known = _AREA_ANSWERS.get(key)
    if known is not None and known[0] is areas:
        found: TaxArea | None = known[1]
        return found
    return _remember(areas, key, _tax_area_for_province(areas, province, province_code))


def _tax_area_for_province(
    areas: tuple[TaxArea, ...], province: str, province_code: str
) -> TaxArea | None:
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


def _fields_putter(
    fields: tuple[tuple[str, str], ...],
) -> Callable[[dict[str, Any], Any], None]:
    """``(facts, record) -> None``: ``put`` of each ``(fact, attribute)`` of a record, as one
    straight-line function (generated once per field list: the address and ERP customer
    groups put a dozen fields per record, and a loop spends as much as the puts)."""
    lines = ["def put_fields(facts, record, str=str):"]
    for name, attribute in fields:
        if not attribute.isidentifier():
            raise ValueError(f"not an attribute name: {attribute!r}")
        lines += [
            f"    value = record.{attribute}",
            "    if value:",
            "        if isinstance(value, str):",
            "            value = value.strip()",
            "            if value:",
            f"                facts[{name!r}] = value",
            "        else:",
            f"            facts[{name!r}] = value",
            '    elif value is not None and value != "":',
            f"        facts[{name!r}] = value  # a falsy non-text value (0, False) is a value",
        ]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines) + "\n", namespace)  # attribute names checked, fact names repr'd
    function: Callable[[dict[str, Any], Any], None] = namespace["put_fields"]
    return function


#: ``put`` of a Shopify address's fields as ``address.*`` facts, of an ERP customer's as ``erp.*``
_put_address_fields = _fields_putter(_ADDRESS_FACTS)
_put_erp_fields = _fields_putter(_ERP_FACTS)


# ---------------------------------------------------------------------------------------------
# import (and the customer part of an order)
# ---------------------------------------------------------------------------------------------


def address_facts(
    facts: dict[str, Any], world: World, shop: ShopContext, address: ShopifyAddress | None
) -> None:
    """``address.*`` and the mapped values of the import field mapping (§5)."""
    if address is None:
        return
    _put_address_fields(facts, address)
    iso = address.country_code.strip().upper()
    put(facts, "mapped.country_code", world.erp_country_for_iso(iso))
    area = tax_area_for_province(shop.tax_areas(iso), address.province, address.province_code)
    if shop.settings.county_source == "name":
        county = address.province or (area.county if area is not None else "")
    else:
        county = address.province_code or (area.county_code if area is not None else "")
    put(facts, "mapped.county", county)
    facts["mapped.has_tax_area"] = area is not None
    if area is not None:
        put(facts, "mapped.tax_area_code", area.tax_area_code)
        facts["mapped.tax_liable"] = bool(area.tax_liable)
        put(facts, "mapped.vat_bus_posting_group", area.vat_bus_posting_group)


class ImportFacts(Facts):
    """Facts of a Shopify customer for the import decisions (see :func:`import_facts`)."""

    __slots__ = ("_address", "_chosen", "_customer", "_erp", "_shop", "_world", "link")
    _address: ShopifyAddress | None
    _chosen: ShopifyAddress | None
    _customer: ShopifyCustomer
    _erp: ErpCustomer | None
    _shop: ShopContext
    _world: World
    #: the stored link of the Shopify customer (looked up once per record)
    link: Link | None

    def _lookups(self) -> None:
        world, customer, chosen = self._world, self._customer, self._chosen
        if customer.email:
            found = world.erp_by_email(customer.email)
            if found is not None:
                put(self, "lookup.email_customer_no", found)
        phone = customer.phone or (chosen.phone if chosen is not None else "")
        if phone:
            region = (chosen.country_code if chosen is not None else "") or None
            found = world.erp_by_e164(phones.match_e164(phone, region))
            if found is not None:
                put(self, "lookup.phone_e164_customer_no", found)
            found = world.erp_by_phone_digits(phone)
            if found is not None:
                put(self, "lookup.phone_digits_customer_no", found)

    def _setups(self) -> None:
        shop, customer, address = self._shop, self._customer, self._address
        default = customer.default_address
        first = customer.addresses[0] if customer.addresses else None
        for prefix, source in (
            ("default_country_setup", default),
            ("first_country_setup", first),
        ):
            setup = shop.setup(source.country_code) if source is not None else None
            self[f"{prefix}.exists"] = setup is not None
            if setup is not None:
                put(self, f"{prefix}.customer_template_code", setup.customer_template_code)
        if address is not None:  # an order's address: its country counts as the default one
            setup = shop.setup(address.country_code)
            self["default_country_setup.exists"] = setup is not None
            if setup is not None:
                put(
                    self,
                    "default_country_setup.customer_template_code",
                    setup.customer_template_code,
                )

    def _names(self) -> None:
        chosen, settings = self._chosen, self._shop.settings
        first, last = _person(chosen, self._customer)
        company = chosen.company if chosen is not None else ""
        sources = (settings.name_source, settings.name_2_source, settings.contact_source)
        for fact, name in zip(
            _NAMES_FACTS, names.ns_each(sources, first, last, company), strict=True
        ):
            if name:  # cleaned: single blanks, none around
                self[fact] = name

    def _mapped(self) -> None:
        chosen = self._chosen
        address_facts(self, self._world, self._shop, chosen)
        put(
            self,
            "mapped.phone",
            (chosen.phone if chosen is not None else "") or self._customer.phone,
        )

    def _erp_facts(self) -> None:
        add_erp_facts(self, self._erp)

    def matched(self, erp: ErpCustomer) -> None:
        """The record matched ``erp``: add its ``erp.*`` facts (computed on first use)."""
        self._erp = erp
        self._pending.add("erp")

    LOADERS: ClassVar[Mapping[str, Callable[[Any], None]]] = {
        "lookup": _lookups,
        "default_country_setup": _setups,
        "first_country_setup": _setups,
        "names": _names,
        "address": _mapped,
        "mapped": _mapped,
        "erp": _erp_facts,
    }


#: the names the name sources give, in the order name, name 2, contact source
_NAMES_FACTS = ("names.by_name_source", "names.by_name_2_source", "names.by_contact_source")
#: the Shopify customer's own facts (put when filled)
_SHOPIFY_FACTS = tuple(
    (f"shopify.{name}", name)
    for name in ("id", "email", "phone", "first_name", "last_name", "state")
)
#: import groups computed on first use: lookups, per-country setups, names and mapped values
_IMPORT_DEFERRED = tuple(group for group in ImportFacts.LOADERS if group != "erp")


def import_facts(
    world: World,
    shop: ShopContext,
    customer: ShopifyCustomer,
    *,
    caller_template: str | None = None,
    allow_create: bool | None = None,
    address: ShopifyAddress | None = None,
    lazy: bool = False,
) -> ImportFacts:
    """Facts of a Shopify customer for the import decisions. ``address`` overrides the chosen
    address (an order's bill-to); ``allow_create`` is set by an order mapping."""
    facts = ImportFacts.deferring(_base(shop.settings, world.reference.company), _IMPORT_DEFERRED)
    facts._world, facts._shop, facts._customer, facts._address = world, shop, customer, address
    facts._erp = None
    for name, attribute in _SHOPIFY_FACTS:  # put() of the filled ones, written out
        value = getattr(customer, attribute)
        if value:
            if isinstance(value, str):
                value = value.strip()
                if not value:
                    continue
            facts[name] = value
    addresses = customer.addresses
    facts["shopify.address_count"] = len(addresses) + (
        1 if address is not None and address not in addresses else 0
    )
    default = customer.default_address
    chosen = address if address is not None else (default or (addresses[0] if addresses else None))
    facts._chosen = chosen
    facts["shopify.has_address"] = chosen is not None
    for name, source in (
        ("default_address.country_code", default),
        ("first_address.country_code", addresses[0] if addresses else None),
        ("default_address.country_code", address),  # an order's address: the default one
    ):
        if source is not None:  # put() of the upper-case code, written out
            code = source.country_code.upper().strip()
            if code:
                facts[name] = code
    # --- link and selection -------------------------------------------------------------------
    link = facts.link = world.link_for_shopify(shop.name, customer.id)
    linked = link is not None and world.erp_customer(link.erp_no) is not None
    facts["link.exists"] = linked
    facts["link.dropped"] = link is not None and not linked
    updated = customer.updated_at
    if link is not None and linked:
        put(facts, "link.customer_no", link.erp_no)
        facts["shopify.changed_since_import"] = (
            link.last_import_at is None or updated is None or updated > link.last_import_at
        )
        own = link.own_write_shopify_updated_at
        facts["shopify.own_write_echo"] = own is not None and updated is not None and updated <= own
    else:
        facts["shopify.changed_since_import"] = True
        facts["shopify.own_write_echo"] = False
    # --- the caller (an order mapping) --------------------------------------------------------
    if caller_template is not None:
        put(facts, "caller.template_code", caller_template)
    if allow_create is not None:
        facts["caller.allow_create"] = bool(allow_create)
    # (lookups, per-country setups, names and mapped values (§5) are deferred: on first use)
    return facts if lazy else facts.complete()


def add_erp_facts(facts: dict[str, Any], customer: ErpCustomer | None) -> None:
    """``erp.*`` of the matched (import) or exported ERP customer."""
    facts["erp.exists"] = customer is not None
    if customer is None:
        return
    _put_erp_fields(facts, customer)


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
        _put_address_fields(facts, order.bill_to)
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
    if not county or not areas:
        return None, None, None
    key = (id(areas), True, county, "")
    known = _AREA_ANSWERS.get(key)
    if known is not None and known[0] is areas:
        rows: tuple[TaxArea | None, TaxArea | None, TaxArea | None] = known[1]
        return rows
    return _remember(areas, key, _find_province_rows(areas, county))


def _province_values(areas: tuple[TaxArea, ...], county: str) -> Mapping[str, Any]:
    """The ``province.*`` facts of an ERP County (remembered with the rows: many customers
    share a county)."""
    if not county or not areas:
        return _NO_FACTS
    key = (id(areas), True, county, "facts")
    known = _AREA_ANSWERS.get(key)
    if known is not None and known[0] is areas:
        found: Mapping[str, Any] = known[1]
        return found
    values: dict[str, Any] = {}
    for (code, name), row in zip(_PROVINCE_FACTS, _province_rows(areas, county), strict=True):
        if row is not None:
            put(values, code, row.county_code)
            put(values, name, row.county)
    return _remember(areas, key, values)  # shared: never changed after this


_NO_FACTS: Mapping[str, Any] = {}


def _find_province_rows(
    areas: tuple[TaxArea, ...], county: str
) -> tuple[TaxArea | None, TaxArea | None, TaxArea | None]:
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
    return _export_target(world, shop, customer, email, lambda: phones.normal_e164(e164))


def _export_target(
    world: World,
    shop: ShopContext,
    customer: ErpCustomer,
    email: str,
    e164: Callable[[], str | None],
) -> tuple[str | None, str | None, str | None, str | None]:
    """:func:`export_target`; the phone is read only when the e-mail finds nobody."""
    link = world.link_for_erp(shop.name, customer.no)
    linked_id = link.shopify_id if link is not None else None
    match_id: str | None = None
    match_by: str | None = None
    if email:
        match_id = world.shopify_by_email(email)
        match_by = "email" if match_id else None
    if match_id is None:
        phone = e164()
        if phone:
            match_id = world.shopify_by_e164(phone)
            match_by = "phone" if match_id else None
    linked_to: str | None = None
    if match_id is not None:
        match_link = world.link_for_shopify(shop.name, match_id)
        linked_to = match_link.erp_no if match_link is not None else None
    return linked_id, match_id, match_by, linked_to


_UNREAD: Any = object()
#: the province facts of the rows found by code, by name and by name prefix
_PROVINCE_FACTS = tuple(
    (f"province.{kind}_code", f"province.{kind}_name")
    for kind in ("by_code", "by_name", "by_prefix")
)


class ExportFacts(Facts):
    """Facts of an ERP customer for the export decisions (see :func:`export_facts`)."""

    __slots__ = ("_country", "_customer", "_e164", "_email", "_iso", "_shop", "_target", "_world")
    _customer: ErpCustomer
    _e164: Any  # str | None once read, _UNREAD before
    _email: str
    _iso: str
    _country: tuple[str, str, bool]  # World.customer_country
    _shop: ShopContext
    _target: tuple[str | None, str | None, str | None, str | None] | None
    _world: World

    @property
    def first_email(self) -> str:
        """The customer's e-mail before the first ``;`` or ``,`` (:func:`first_email`)."""
        return self._email

    def _email_facts(self) -> None:
        email = self._email  # stripped by first_email
        if email:
            self["email.first"] = email
        self["email.valid"] = email_valid(email)

    def _country_facts(self) -> None:
        code, iso, from_company = self._country  # stripped
        if code:
            self["country.code"] = code
        if iso:
            self["country.iso_code"] = iso
        self["country.from_company"] = from_company

    def _phone_e164(self) -> str | None:
        """The phone in E.164 when valid (parsed once per record, on first use)."""
        if self._e164 is _UNREAD:
            raw = self._customer.phone.strip()
            self._e164 = phones.to_e164(raw, self._iso or None) if raw else None
        found: str | None = self._e164
        return found

    def _target_of(self) -> tuple[str | None, str | None, str | None, str | None]:
        if self._target is None:
            self._target = _export_target(
                self._world, self._shop, self._customer, self._email, self._phone_e164
            )
        return self._target

    def _match_facts(self) -> None:
        customer = self._customer
        linked_id, match_id, match_by, linked_to = self._target_of()
        self["shopify_link.exists"] = linked_id is not None
        if linked_id is not None:
            put(self, "shopify_link.shopify_id", linked_id)
        if match_id is not None:  # found by e-mail or phone, else nothing to put
            put(self, "shopify_match.id", match_id)
            put(self, "shopify_match.by", match_by)
        if linked_to is not None:
            put(self, "shopify_match.linked_to", linked_to)
        self["shopify_match.linked_elsewhere"] = linked_to is not None and linked_to != customer.no

    def _phone_facts(self) -> None:
        world, customer = self._world, self._customer
        self["phone.present"] = bool(customer.phone.strip())
        e164 = self._phone_e164()
        self["phone.valid"] = e164 is not None
        if e164:  # "+" and digits (phones.to_e164)
            self["phone.e164"] = e164
            linked_id, match_id, _, linked_to = self._target_of()
            target = linked_id or (
                match_id if linked_to is None or linked_to == customer.no else None
            )
            target_customer = world.shopify_customer(target)
            has_it = (
                target_customer is not None and phones.normal_e164(target_customer.phone) == e164
            )
            owner = world.shopify_by_e164(e164)
            self["phone.duplicate_in_shopify"] = owner is not None and owner != target
            other = world.phone_owner(customer, e164)
            self["phone.duplicate_in_batch"] = other is not None and not has_it
        else:
            self["phone.duplicate_in_shopify"] = False
            self["phone.duplicate_in_batch"] = False

    def _province_facts(self) -> None:
        county = self._customer.county.strip()
        self["county.length"] = len(county)
        areas = self._shop.tax_areas(self._iso)
        self["county.tax_areas_exist"] = bool(areas)
        self.update(_province_values(areas, county))

    def _erp_facts(self) -> None:
        add_erp_facts(self, self._customer)

    LOADERS: ClassVar[Mapping[str, Callable[[Any], None]]] = {
        "email": _email_facts,
        "country": _country_facts,
        "shopify_link": _match_facts,
        "shopify_match": _match_facts,
        "phone": _phone_facts,
        "county": _province_facts,
        "province": _province_facts,
        "erp": _erp_facts,
    }


#: every export group but ``export.requested`` is computed on first use
_EXPORT_DEFERRED = tuple(ExportFacts.LOADERS)


def export_facts(
    world: World,
    shop: ShopContext,
    customer: ErpCustomer,
    *,
    requested: bool = False,
    lazy: bool = False,
) -> ExportFacts:
    facts = ExportFacts.deferring(_base(shop.settings, world.reference.company), _EXPORT_DEFERRED)
    facts._world, facts._shop, facts._customer = world, shop, customer
    facts._email = first_email(customer.email)
    facts._country = world.customer_country(customer)
    facts._iso = facts._country[1]
    facts._e164 = _UNREAD
    facts._target = None
    facts["export.requested"] = bool(requested)
    return facts if lazy else facts.complete()


def source_version_of(value: datetime | None) -> str | None:
    return _iso(value)
