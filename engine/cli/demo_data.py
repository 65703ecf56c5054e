"""A realistic demo world: ERP customers, reference data and overlapping Shopify customers.

Deterministic for a given seed. The mix is deliberate: clean records that export and match,
and problem records that show the rules' skip reasons (invalid e-mail, phone too short, no
country, duplicate phone, county code too long, POS customers without an address, a Greek
customer whose ERP country code ``EL`` differs from ISO ``GR``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from ..model import (
    CompanyInfo,
    Country,
    CountrySetup,
    CustomerTemplate,
    ErpCustomer,
    ErpReference,
    ShopifyAddress,
    ShopifyCustomer,
    TaxArea,
)

__all__ = [
    "DemoWorld",
    "demo_country_setups",
    "demo_reference",
    "generate",
]


@dataclass(frozen=True, slots=True)
class _CountryData:
    erp_code: str
    iso_code: str
    name: str
    calling_prefix: str
    phone_digits: int  # national significant number length
    cities: tuple[tuple[str, str, str, str], ...]  # (city, post code, county code, county name)
    streets: tuple[str, ...]


_COUNTRIES: tuple[_CountryData, ...] = (
    _CountryData(
        "US",
        "US",
        "United States",
        "1",
        10,
        (
            ("San Francisco", "94103", "CA", "California"),
            ("Austin", "73301", "TX", "Texas"),
            ("Brooklyn", "11201", "NY", "New York"),
            ("Seattle", "98101", "WA", "Washington"),
        ),
        ("Market Street", "Congress Avenue", "Atlantic Avenue", "Pine Street"),
    ),
    _CountryData(
        "CA",
        "CA",
        "Canada",
        "1",
        10,
        (
            ("Toronto", "M5V 2T6", "ON", "Ontario"),
            ("Vancouver", "V6B 1A1", "BC", "British Columbia"),
            ("Montreal", "H2Y 1C6", "QC", "Quebec"),
        ),
        ("King Street West", "Granville Street", "Rue Saint-Paul"),
    ),
    _CountryData(
        "NL",
        "NL",
        "Netherlands",
        "31",
        9,
        (("Amsterdam", "1012 AB", "", ""), ("Utrecht", "3511 AA", "", "")),
        ("Damrak", "Oudegracht", "Prinsengracht"),
    ),
    _CountryData(
        "DE",
        "DE",
        "Germany",
        "49",
        10,
        (("Berlin", "10115", "", ""), ("München", "80331", "", "")),
        ("Friedrichstraße", "Marienplatz", "Unter den Linden"),
    ),
    _CountryData(
        "EL",
        "GR",
        "Greece",
        "30",
        10,
        (("Athens", "105 57", "", ""), ("Thessaloniki", "546 24", "", "")),
        ("Ermou", "Tsimiski"),
    ),
    _CountryData(
        "GB",
        "GB",
        "United Kingdom",
        "44",
        10,
        (("London", "EC1A 1BB", "", ""), ("Manchester", "M1 1AE", "", "")),
        ("Baker Street", "Deansgate"),
    ),
)

_FIRST = (
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Sophie",
    "Lucas",
    "Mila",
    "Daan",
    "Anna",
    "Jonas",
    "Eleni",
    "Nikos",
    "Chloé",
    "Mateo",
    "Aisha",
    "Yuki",
    "Hannah",
    "Oliver",
    "Zoë",
    "Finn",
)
_LAST = (
    "Jansen",
    "de Vries",
    "Smith",
    "Müller",
    "Papadopoulos",
    "Tremblay",
    "García",
    "O'Brien",
    "Bakker",
    "Schmidt",
    "Johnson",
    "Nguyen",
    "Visser",
    "Roy",
    "Georgiou",
    "Brown",
)
_COMPANIES = (
    "Northwind Traders",
    "Contoso Bikes",
    "Fabrikam Outdoor",
    "Adventure Works",
    "Tailspin Toys",
    "Litware Coffee",
    "Proseware Garden",
    "Wide World Importers",
)


@dataclass(slots=True)
class DemoWorld:
    erp_customers: list[ErpCustomer] = field(default_factory=list)
    reference: ErpReference = field(default_factory=ErpReference)
    shopify_customers: list[ShopifyCustomer] = field(default_factory=list)
    country_setups: dict[str, CountrySetup] = field(default_factory=dict)
    #: what each generated record is meant to show, by ERP no. or Shopify e-mail
    notes: dict[str, str] = field(default_factory=dict)


def demo_reference() -> ErpReference:
    countries = tuple(Country(c.erp_code, c.iso_code, c.name) for c in _COUNTRIES)
    templates = (
        CustomerTemplate(
            "RETAIL",
            "Retail customers (domestic)",
            {
                "gen_bus_posting_group": "DOMESTIC",
                "customer_posting_group": "DOMESTIC",
                "vat_bus_posting_group": "DOMESTIC",
                "payment_terms_code": "14 DAYS",
            },
        ),
        CustomerTemplate(
            "EU-RETAIL",
            "Retail customers (EU)",
            {
                "gen_bus_posting_group": "EU",
                "customer_posting_group": "EU",
                "vat_bus_posting_group": "EU",
                "payment_terms_code": "14 DAYS",
            },
        ),
        CustomerTemplate(
            "US-RETAIL",
            "Retail customers (US, sales tax)",
            {
                "gen_bus_posting_group": "EXPORT",
                "customer_posting_group": "FOREIGN",
                "tax_liable": True,
                "payment_terms_code": "COD",
            },
        ),
    )
    return ErpReference(
        countries=countries, company=CompanyInfo("CRONUS Demo", "NL"), templates=templates
    )


def demo_country_setups() -> dict[str, CountrySetup]:
    us = next(c for c in _COUNTRIES if c.iso_code == "US")
    ca = next(c for c in _COUNTRIES if c.iso_code == "CA")
    return {
        "US": CountrySetup(
            "US",
            customer_template_code="US-RETAIL",
            tax_areas=tuple(
                TaxArea(county=name, county_code=code, tax_area_code=f"US-{code}", tax_liable=True)
                for _, _, code, name in us.cities
            ),
        ),
        "CA": CountrySetup(
            "CA",
            tax_areas=tuple(
                TaxArea(county=name, county_code=code, tax_area_code=f"CA-{code}", tax_liable=True)
                for _, _, code, name in ca.cities
            ),
        ),
        "DE": CountrySetup("DE", customer_template_code="EU-RETAIL"),
        "GR": CountrySetup("GR", customer_template_code="EU-RETAIL"),
    }


def _national_number(rng: random.Random, country: _CountryData) -> str:
    if country.iso_code in ("US", "CA"):
        area = rng.choice(("415", "512", "718", "206", "416", "604", "514"))
        return f"{area}{rng.randint(200, 999)}{rng.randint(1000, 9999)}"
    if country.iso_code == "NL":
        return f"6{rng.randint(10000000, 99999999)}"
    if country.iso_code == "DE":
        return f"151{rng.randint(1000000, 9999999)}"
    if country.iso_code == "GR":
        return f"69{rng.randint(10000000, 99999999)}"
    return f"7{rng.randint(100000000, 999999999)}"


def _erp_phone(rng: random.Random, country: _CountryData, national: str) -> str:
    """The same number the way people type it into an ERP: with or without prefix."""
    style = rng.randrange(4)
    if style == 0:
        return f"+{country.calling_prefix} {national}"
    if style == 1 and country.iso_code in ("US", "CA"):
        return f"({national[:3]}){national[3:6]}-{national[6:]}"
    if style == 2:
        return national if country.iso_code in ("US", "CA") else f"0{national}"
    return f"+{country.calling_prefix}{national}"


def _email(first: str, last: str, index: int) -> str:
    local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
    local = local.encode("ascii", "ignore").decode() or "customer"
    return f"{local}{index}@example.com"


def generate(n_erp: int = 300, seed: int = 7) -> DemoWorld:
    """Build a demo world with about ``n_erp`` ERP customers and overlapping Shopify ones."""
    rng = random.Random(seed)
    world = DemoWorld(reference=demo_reference(), country_setups=demo_country_setups())
    shop_id = 1000
    for index in range(1, n_erp + 1):
        country = _COUNTRIES[rng.randrange(len(_COUNTRIES))]
        city, post_code, county_code, _county_name = rng.choice(country.cities)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        business = rng.random() < 0.3
        national = _national_number(rng, country)
        customer = ErpCustomer(
            no=f"C{index:05d}",
            name=rng.choice(_COMPANIES) if business else f"{first} {last}",
            name_2="",
            contact=f"{first} {last}" if business else "",
            address=f"{rng.randint(1, 250)} {rng.choice(country.streets)}",
            city=city,
            post_code=post_code,
            county=county_code,
            country_code=country.erp_code,
            phone=_erp_phone(rng, country, national),
            email=_email(first, last, index),
        )
        roll = rng.random()
        if roll < 0.04:
            customer = replace(customer, email=customer.email.replace("@", "(at)"))
            world.notes[customer.no] = "invalid e-mail: skipped on export"
        elif roll < 0.07:
            customer = replace(customer, phone="12")
            world.notes[customer.no] = "phone too short: skipped on export"
        elif roll < 0.09:
            customer = replace(customer, country_code="", county="")
            world.notes[customer.no] = "blank country: the company's country (NL) is used"
        elif roll < 0.11:
            customer = replace(customer, email="")
            world.notes[customer.no] = "no e-mail: cannot be created in Shopify"
        elif roll < 0.12 and country.iso_code in ("US", "CA"):
            customer = replace(customer, county="CALIFORNIA-NORTH")
            world.notes[customer.no] = "county code longer than 10: skipped on export"
        elif roll < 0.13:
            customer = replace(customer, email=f"{customer.email}; billing@example.com")
            world.notes[customer.no] = "two e-mails in one field: the first is exported"
        world.erp_customers.append(customer)

        # About a third of the ERP customers already exist in Shopify (same person, typed
        # differently), so import matches them and export adopts or skips them.
        if rng.random() < 0.33 and customer.email and "@" in customer.email:
            shop_id += 1
            email = customer.email.split(";")[0].strip()
            if rng.random() < 0.5:
                email = email.upper()  # matching ignores case
            world.shopify_customers.append(
                _shopify_customer(
                    shop_id,
                    first,
                    last,
                    email,
                    country,
                    national,
                    city,
                    post_code,
                    county_code,
                    customer.address,
                )
            )

    # Duplicate phone inside the ERP: two customers share one number.
    if len(world.erp_customers) > 20:
        a, b = world.erp_customers[10], world.erp_customers[11]
        world.erp_customers[11] = replace(b, phone=a.phone, country_code=a.country_code)
        world.notes[b.no] = f"same phone as {a.no}: the second is skipped on export"

    # Shopify-only customers: new people to import (some from POS without an address).
    for index in range(max(10, n_erp // 6)):
        shop_id += 1
        country = _COUNTRIES[rng.randrange(len(_COUNTRIES))]
        city, post_code, county_code, _ = rng.choice(country.cities)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = _email(first, last, 90000 + index)
        if index % 7 == 0:
            world.shopify_customers.append(
                ShopifyCustomer(
                    id=f"gid://shopify/Customer/{shop_id}",
                    first_name=first,
                    last_name=last,
                    email=email,
                )
            )
            world.notes[email] = "POS customer without address: not created in the ERP"
            continue
        world.shopify_customers.append(
            _shopify_customer(
                shop_id,
                first,
                last,
                email,
                country,
                _national_number(rng, country),
                city,
                post_code,
                county_code,
                f"{rng.randint(1, 250)} {rng.choice(country.streets)}",
            )
        )
    return world


def _shopify_customer(
    shop_id: int,
    first: str,
    last: str,
    email: str,
    country: _CountryData,
    national: str,
    city: str,
    post_code: str,
    county_code: str,
    street: str,
) -> ShopifyCustomer:
    phone = f"+{country.calling_prefix}{national}"
    address = ShopifyAddress(
        id=f"gid://shopify/MailingAddress/{shop_id}?model_name=CustomerAddress",
        default=True,
        first_name=first,
        last_name=last,
        address1=street,
        zip=post_code,
        city=city,
        country_code=country.iso_code,
        province_code=county_code,
        phone=phone,
    )
    return ShopifyCustomer(
        id=f"gid://shopify/Customer/{shop_id}",
        first_name=first,
        last_name=last,
        email=email,
        phone=phone,
        addresses=(address,),
    )
