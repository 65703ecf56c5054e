"""A small world to start the double with, from code or from a JSON/YAML file.

The file (``custsync bc-sandbox --seed FILE``) has the same shape :func:`seed_world` takes::

    companies:
      - name: CRONUS USA, Inc.
        id: 5d3b3a3e-...            # optional
        lcy_code: USD
        uses_vat: false
        number_series: C00000        # the last number used
        new_customer_defaults: {paymentTermsCode: 14 DAYS, customerPostingGroup: DOMESTIC}
        information: {addressLine1: ..., city: Atlanta, country: US}   # companyInformation
        countriesRegions: [{code: US, displayName: United States, isoCode: US,
                            isoNumericCode: "840", addressFormat: City+County+Post Code}]
        taxAreas: [{code: CA, displayName: California, taxType: Sales Tax}]
        paymentTerms / paymentMethods / currencies / shipmentMethods: [{code, displayName}]
        customerTemplates: [{code: US-RETAIL, description: ..., type: Person, ...}]
        customers: [{number: C00010, displayName: ..., email: ..., name2: ..., ...}]

Customer keys are the API's (``displayName``, ``addressLine1``, ...) plus the Customer Card's
``name2``, ``contact``, ``mobilePhoneNo``, posting groups and ``*Code`` fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from custsync.engine.rules.load import YamlSyntaxError, load_yaml_text

from .store import CUSTOMER_FIELDS, Company, NumberSeries, Store

REFERENCE_SETS = ("countriesRegions", "taxAreas", "paymentTerms", "paymentMethods",
                  "currencies", "shipmentMethods", "customerTemplates")
_COMPANY_KEYS = {"name", "id", "display_name", "lcy_code", "uses_vat", "number_series",
                 "new_customer_defaults", "customers", "information", *REFERENCE_SETS}
#: companyInformation's properties and their blank values
_INFORMATION = {"displayName": "", "addressLine1": "", "addressLine2": "", "city": "",
                "state": "", "country": "", "postalCode": "", "phoneNumber": "",
                "faxNumber": "", "email": "", "website": "", "taxRegistrationNumber": "",
                "currencyCode": "", "currentFiscalYearStartDate": "0001-01-01", "industry": ""}

#: the default world: one US company with the reference data custsync's rules use
DEFAULT_WORLD: dict[str, Any] = {"companies": [{
    "name": "CRONUS USA, Inc.",
    "id": "5b7a3c2e-8f4d-4e1a-9c6b-2d0e1f3a4b5c",  # stable, so configs can name it
    "lcy_code": "USD",
    "information": {"addressLine1": "7122 South Ashford Street", "city": "Atlanta",
                    "state": "GA", "country": "US", "postalCode": "31772",
                    "currentFiscalYearStartDate": "2026-01-01"},
    "number_series": "C00000",
    "new_customer_defaults": {"customerPostingGroup": "DOMESTIC",
                              "genBusPostingGroup": "DOMESTIC", "paymentTermsCode": "14 DAYS"},
    "countriesRegions": [
        {"code": "US", "displayName": "United States", "isoCode": "US",
         "isoNumericCode": "840", "addressFormat": "City+County+Post Code"},
        {"code": "CA", "displayName": "Canada", "isoCode": "CA", "isoNumericCode": "124",
         "addressFormat": "City+County+Post Code"},
        {"code": "GB", "displayName": "Great Britain", "isoCode": "GB",
         "isoNumericCode": "826", "addressFormat": "City+Post Code"},
        {"code": "DE", "displayName": "Germany", "isoCode": "DE", "isoNumericCode": "276",
         "addressFormat": "Post Code+City", "euCode": "DE"},
        {"code": "NL", "displayName": "Netherlands", "isoCode": "NL", "isoNumericCode": "528",
         "addressFormat": "Post Code+City", "euCode": "NL"},
        {"code": "EL", "displayName": "Greece", "isoCode": "GR", "isoNumericCode": "300",
         "addressFormat": "Post Code+City", "euCode": "EL"},
    ],
    "taxAreas": [
        {"code": "CA", "displayName": "California", "taxType": "Sales Tax"},
        {"code": "NY", "displayName": "New York", "taxType": "Sales Tax"},
        {"code": "NOTAX", "displayName": "No sales tax", "taxType": "Sales Tax"},
    ],
    "paymentTerms": [
        {"code": "14 DAYS", "displayName": "Net 14 days", "dueDateCalculation": "14D",
         "discountDateCalculation": "", "discountPercent": 0,
         "calculateDiscountOnCreditMemos": False},
        {"code": "COD", "displayName": "Cash on delivery", "dueDateCalculation": "0D",
         "discountDateCalculation": "", "discountPercent": 0,
         "calculateDiscountOnCreditMemos": False},
    ],
    "paymentMethods": [{"code": "CARD", "displayName": "Card payment"},
                       {"code": "BANK", "displayName": "Bank transfer"}],
    "currencies": [{"code": "EUR", "displayName": "Euro", "symbol": "€",
                    "amountDecimalPlaces": "2:2", "amountRoundingPrecision": 0.01},
                   {"code": "CAD", "displayName": "Canadian dollar", "symbol": "$",
                    "amountDecimalPlaces": "2:2", "amountRoundingPrecision": 0.01}],
    "shipmentMethods": [{"code": "EXW", "displayName": "Ex Warehouse"}],
    "customerTemplates": [
        {"code": "US-RETAIL", "description": "Retail customers in the US", "type": "Person",
         "genBusPostingGroup": "DOMESTIC", "customerPostingGroup": "DOMESTIC",
         "vatBusPostingGroup": "", "taxAreaCode": "", "taxLiable": True,
         "paymentTermsCode": "14 DAYS", "paymentMethodCode": "CARD", "currencyCode": "",
         "languageCode": "ENU"},
        {"code": "EU-RETAIL", "description": "Retail customers in the EU", "type": "Person",
         "genBusPostingGroup": "EU", "customerPostingGroup": "FOREIGN",
         "vatBusPostingGroup": "EU", "taxAreaCode": "", "taxLiable": False,
         "paymentTermsCode": "14 DAYS", "paymentMethodCode": "CARD", "currencyCode": "EUR",
         "languageCode": ""},
    ],
    "customers": [
        {"number": "C00010", "displayName": "Adatum Corporation", "type": "Company",
         "addressLine1": "192 Market Square", "city": "Atlanta", "state": "GA",
         "country": "US", "postalCode": "31772", "email": "robert.townes@contoso.com",
         "phoneNumber": "+1 425 555 0100", "contact": "Robert Townes",
         "customerPostingGroup": "DOMESTIC", "genBusPostingGroup": "DOMESTIC",
         "paymentTermsCode": "14 DAYS", "taxAreaCode": "NOTAX"},
        {"number": "C00020", "displayName": "Trey Research", "type": "Company",
         "name2": "Sales office", "addressLine1": "153 Thomas Drive", "city": "Chicago",
         "state": "IL", "country": "US", "postalCode": "61236",
         "email": "helen.ray@contoso.com", "contact": "Helen Ray",
         "customerPostingGroup": "DOMESTIC", "genBusPostingGroup": "DOMESTIC",
         "paymentTermsCode": "14 DAYS"},
        {"number": "C00030", "displayName": "Jan de Vries", "type": "Person",
         "addressLine1": "Keizersgracht 1", "city": "Amsterdam", "country": "NL",
         "postalCode": "1015 CJ", "email": "jan@example.nl", "currencyCode": "EUR",
         "customerPostingGroup": "FOREIGN", "genBusPostingGroup": "EU"},
    ],
}]}


class SeedError(ValueError):
    """A seed file or world that cannot be loaded; the message says where."""


def seed_world(store: Store, world: Mapping[str, Any]) -> list[Company]:
    """Add the companies of ``world`` (see module doc) to ``store``."""
    companies = world.get("companies")
    if not isinstance(companies, list):
        raise SeedError("companies: a list of companies is required")
    added = []
    for index, spec in enumerate(companies):
        where = f"companies[{index}]"
        if not isinstance(spec, dict) or not spec.get("name"):
            raise SeedError(f"{where}: a company needs a name")
        unknown = set(spec) - _COMPANY_KEYS
        if unknown:
            raise SeedError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        company = store.add_company(
            spec["name"], company_id=spec.get("id"),
            display_name=spec.get("display_name", ""), lcy_code=spec.get("lcy_code", "USD"),
            uses_vat=bool(spec.get("uses_vat", False)),
            number_series=NumberSeries(spec.get("number_series", "C00000")),
            new_customer_defaults=dict(spec.get("new_customer_defaults") or {}))
        information = spec.get("information") or {}
        if not isinstance(information, dict) or set(information) - set(_INFORMATION):
            raise SeedError(f"{where}.information: a mapping of "
                            f"{', '.join(_INFORMATION)}")
        store.add_reference(company, "companyInformation", {
            **_INFORMATION, "displayName": company.name, "currencyCode": company.lcy_code,
            **information})
        for entity_set in REFERENCE_SETS:
            for row in spec.get(entity_set) or []:
                if not isinstance(row, dict) or not row.get("code"):
                    raise SeedError(f"{where}.{entity_set}: every row needs a code")
                store.add_reference(company, entity_set, row)
        for position, customer in enumerate(spec.get("customers") or []):
            bad = set(customer) - set(CUSTOMER_FIELDS) - {"id", "balanceDue"}
            if bad:
                raise SeedError(f"{where}.customers[{position}]: unknown keys "
                                f"{', '.join(sorted(bad))}")
            store.insert_customer(company, customer)
        added.append(company)
    return added


def load_seed_file(store: Store, path: Path) -> list[Company]:
    """Seed from a JSON or YAML file (SeedError with the file name when it is unusable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if path.suffix.lower() != ".json":
        try:  # custsync's one YAML loader: aliases bounded, errors at file:line:col
            world = load_yaml_text(text, str(path)).data
        except YamlSyntaxError as exc:
            raise SeedError(str(exc)) from None
    else:
        try:
            world = json.loads(text)
        except ValueError as exc:
            raise SeedError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(world, dict):
        raise SeedError(f"{path}: expected a mapping with 'companies'")
    try:
        return seed_world(store, world)
    except SeedError as exc:
        raise SeedError(f"{path}: {exc}") from exc
