"""The entity sets the double serves and how a row looks on the wire and is written.

API v2.0 (``api/v2.0/companies({id})/<set>``): ``customers`` (read and write),
``countriesRegions``, ``taxAreas``, ``paymentTerms``, ``paymentMethods``, ``currencies``,
``shipmentMethods`` (read). Published pages (``ODataV4/Company('<name>')/<service>``): the
Customer Card (page 21; read and PATCH, for Name 2, Contact, Mobile Phone No.), Countries/
Regions (ISO codes) and Customer Templ. (page 1381), read only. Property names of the pages
follow BC's EDMX naming (spaces -> ``_``, dots and ``/`` removed or replaced); see
``docs/business-central.md`` for what is inferred rather than recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BcError, bad_request, dialog
from .odata import EntityType, Prop
from .store import (
    BLOCKED,
    CONTACT_TYPES,
    CUSTOMER_FIELDS,
    TEMPLATE_FIELDS,
    ZERO_GUID,
    Company,
    Row,
    Store,
    blank_customer,
    check_email,
    check_phone,
    check_text,
    decimal,
    etag,
    format_timestamp,
    from_xml_name,
    xml_name,
)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")


def _p(name: str, kind: str = "text", length: int | None = None, *, ro: bool = False,
       caption: str = "") -> Prop:
    return Prop(name, kind, length, ro, caption)


CUSTOMER = EntityType("customer", "Customer", (
    _p("id", "guid", ro=True), _p("number", "code", 20, caption="No."),
    _p("displayName", "text", 100, caption="Name"), _p("type", "enum"),
    _p("addressLine1", "text", 100), _p("addressLine2", "text", 50), _p("city", "text", 30),
    _p("state", "text", 30), _p("country", "code", 10, caption="Country/Region Code"),
    _p("postalCode", "code", 20, caption="Post Code"), _p("phoneNumber", "text", 30),
    _p("email", "text", 80), _p("website", "text", 80),
    _p("salespersonCode", "code", 20, caption="Salesperson Code"),
    _p("balanceDue", "decimal", ro=True), _p("creditLimit", "decimal"),
    _p("taxLiable", "bool"), _p("taxAreaId", "guid"),
    _p("taxAreaDisplayName", "text", 100, ro=True), _p("taxRegistrationNumber", "text", 20),
    _p("currencyId", "guid"), _p("currencyCode", "code", 10, caption="Currency Code"),
    _p("paymentTermsId", "guid"), _p("shipmentMethodId", "guid"),
    _p("paymentMethodId", "guid"), _p("blocked", "enum"),
    _p("lastModifiedDateTime", "datetime", ro=True),
), ("number",))

_STAMP = _p("lastModifiedDateTime", "datetime", ro=True)
COUNTRY = EntityType("countryRegion", "Country/Region", (
    _p("id", "guid", ro=True), _p("code", "code", 10, caption="Code"),
    _p("displayName", "text", 50), _p("addressFormat", "enum"), _STAMP), ("code",))
TAX_AREA = EntityType("taxArea", "Tax Area", (
    _p("id", "guid", ro=True), _p("code", "code", 20, caption="Code"),
    _p("displayName", "text", 100), _p("taxType", "enum"), _STAMP), ("code",))
PAYMENT_TERM = EntityType("paymentTerm", "Payment Terms", (
    _p("id", "guid", ro=True), _p("code", "code", 10, caption="Code"),
    _p("displayName", "text", 100), _p("dueDateCalculation"), _p("discountDateCalculation"),
    _p("discountPercent", "decimal"), _p("calculateDiscountOnCreditMemos", "bool"), _STAMP),
    ("code",))
PAYMENT_METHOD = EntityType("paymentMethod", "Payment Method", (
    _p("id", "guid", ro=True), _p("code", "code", 10, caption="Code"),
    _p("displayName", "text", 100), _STAMP), ("code",))
SHIPMENT_METHOD = EntityType("shipmentMethod", "Shipment Method", (
    _p("id", "guid", ro=True), _p("code", "code", 10, caption="Code"),
    _p("displayName", "text", 100), _STAMP), ("code",))
CURRENCY = EntityType("currency", "Currency", (
    _p("id", "guid", ro=True), _p("code", "code", 10, caption="Code"),
    _p("displayName", "text", 30), _p("symbol", "text", 10),
    _p("amountDecimalPlaces", "text", 5), _p("amountRoundingPrecision", "decimal"), _STAMP),
    ("code",))

COMPANY_INFORMATION = EntityType("companyInformation", "Company Information", (
    _p("id", "guid", ro=True), _p("displayName", "text", 100), _p("addressLine1", "text", 100),
    _p("addressLine2", "text", 50), _p("city", "text", 30), _p("state", "text", 30),
    _p("country", "code", 10), _p("postalCode", "code", 20), _p("phoneNumber", "text", 30),
    _p("faxNumber", "text", 30), _p("email", "text", 80), _p("website", "text", 80),
    _p("taxRegistrationNumber", "text", 20), _p("currencyCode", "code", 10),
    _p("currentFiscalYearStartDate", "date"), _p("industry", "text", 30), _STAMP), ("id",))

#: Customer Card (page 21): page property -> customer row key
CARD_FIELDS: dict[str, str] = {
    "No": "number", "Name": "displayName", "Name_2": "name2", "Search_Name": "searchName",
    "Address": "addressLine1", "Address_2": "addressLine2", "Country_Region_Code": "country",
    "City": "city", "County": "state", "Post_Code": "postalCode", "Phone_No": "phoneNumber",
    "MobilePhoneNo": "mobilePhoneNo", "E_Mail": "email", "Home_Page": "website",
    "ContactName": "contact", "Primary_Contact_No": "primaryContactNo",
    "Contact_Type": "type",
    "Gen_Bus_Posting_Group": "genBusPostingGroup",
    "VAT_Bus_Posting_Group": "vatBusPostingGroup",
    "Customer_Posting_Group": "customerPostingGroup",
    "Payment_Terms_Code": "paymentTermsCode", "Payment_Method_Code": "paymentMethodCode",
    "Shipment_Method_Code": "shipmentMethodCode", "Currency_Code": "currencyCode",
    "Language_Code": "languageCode", "Tax_Area_Code": "taxAreaCode",
    "Tax_Liable": "taxLiable", "Blocked": "blocked",
}
CARD = EntityType("Customer", "Customer", (
    *(Prop(name, CUSTOMER_FIELDS[key].kind, CUSTOMER_FIELDS[key].length,
           name == "No", CUSTOMER_FIELDS[key].caption) for name, key in CARD_FIELDS.items()),
    _p("Last_Date_Modified", "date", ro=True, caption="Last Date Modified"),
), ("No",))
#: a customer's own API page standing in for the Customer Card (route 2 of the docs: BC 30
#: no longer publishes Microsoft's pages): ``PageType = API``, ``ODataKeyFields = "No."``,
#: camelCase fields; API page property -> customer row key
CUSTOM_CARD_FIELDS: dict[str, str] = {
    "id": "id", "number": "number", "displayName": "displayName", "name2": "name2",
    "contact": "contact", "genBusPostingGroup": "genBusPostingGroup",
    "customerPostingGroup": "customerPostingGroup",
    "vatBusPostingGroup": "vatBusPostingGroup", "taxAreaCode": "taxAreaCode",
    "languageCode": "languageCode",
}
CUSTOM_CARD = EntityType("customerCard", "Customer", (
    _p("id", "guid", ro=True),
    *(Prop(name, CUSTOMER_FIELDS[key].kind, CUSTOMER_FIELDS[key].length,
           name == "number", CUSTOMER_FIELDS[key].caption)
      for name, key in CUSTOM_CARD_FIELDS.items() if name != "id"),
    _STAMP,
), ("number",))
COUNTRY_PAGE = EntityType("CountriesRegions", "Country/Region", (
    _p("Code", "code", 10, caption="Code"), _p("Name", "text", 50),
    _p("ISO_Code", "code", 2, caption="ISO Code"),
    _p("ISO_Numeric_Code", "code", 3, caption="ISO Numeric Code"),
    _p("Address_Format", "enum"), _p("EU_Country_Region_Code", "code", 10)), ("Code",))
#: Customer Templ. (page 1381): page property -> template row key
TEMPLATE_PAGE_FIELDS: dict[str, str] = {
    "Code": "code", "Description": "description", "Contact_Type": "type",
    "Gen_Bus_Posting_Group": "genBusPostingGroup",
    "Customer_Posting_Group": "customerPostingGroup",
    "VAT_Bus_Posting_Group": "vatBusPostingGroup", "Tax_Area_Code": "taxAreaCode",
    "Tax_Liable": "taxLiable", "Payment_Terms_Code": "paymentTermsCode",
    "Payment_Method_Code": "paymentMethodCode", "Shipment_Method_Code": "shipmentMethodCode",
    "Currency_Code": "currencyCode", "Language_Code": "languageCode",
    "Blocked": "blocked",
}
TEMPLATE_PAGE = EntityType("CustomerTempl", "Customer Templ.", (
    _p("Code", "code", 20, caption="Code"), _p("Description", "text", 100),
    *(Prop(name, CUSTOMER_FIELDS[key].kind, CUSTOMER_FIELDS[key].length, False,
           CUSTOMER_FIELDS[key].caption)
      for name, key in TEMPLATE_PAGE_FIELDS.items() if key in CUSTOMER_FIELDS)), ("Code",))


Render = Callable[[Company, Row], dict[str, Any]]


def cached(render: Render) -> Render:
    """``render`` done once per row version (and reference data generation): listing a large
    set renders only what changed since the last listing. Callers must not change the dict."""

    def cached_render(company: Company, row: Row) -> dict[str, Any]:
        key = (row["_version"], company.reference_generation)
        cache = row.setdefault("_wire", {})
        hit = cache.get(render)
        if hit is not None and hit[0] == key:
            return hit[1]
        wire = render(company, row)
        cache[render] = (key, wire)
        return wire

    return cached_render


@dataclass(frozen=True, slots=True)
class EntitySet:
    """A set the double serves: its type, its rows and how one row looks on the wire."""

    name: str
    etype: EntityType
    rows: Callable[[Company], Iterable[Row]]
    render: Callable[[Company, Row], dict[str, Any]]
    key: str  #: the wire property that addresses one entity


def _ref_rows(entity_set: str) -> Callable[[Company], Iterable[Row]]:
    return lambda company: company.ref(entity_set).values()


def _render_ref(etype: EntityType) -> Callable[[Company, Row], dict[str, Any]]:
    def render(_company: Company, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": etag(row["id"], row["_version"])}
        for prop in etype.props:
            if prop.name == "lastModifiedDateTime":
                out[prop.name] = format_timestamp(row["_modified"])
            elif prop.kind == "enum":
                out[prop.name] = xml_name(row.get(prop.name, " ") or " ")
            elif prop.kind == "decimal":
                out[prop.name] = decimal(row.get(prop.name, 0))
            else:
                out[prop.name] = row.get(prop.name, "")
        return out

    return render


def _ref_link(company: Company, entity_set: str, code: str) -> tuple[str, str]:
    row = company.ref_by_code(entity_set, code) if code else None
    return (row["id"], row.get("displayName", "")) if row else (ZERO_GUID, "")


def tax_area_code_key(company: Company) -> str:
    """The customer field ``taxAreaId`` stands for: VAT Bus. Posting Group in VAT countries."""
    return "vatBusPostingGroup" if company.uses_vat else "taxAreaCode"


def render_customer(company: Company, row: Row) -> dict[str, Any]:
    tax_id, tax_name = _ref_link(company, "taxAreas", row[tax_area_code_key(company)])
    currency_id, _ = _ref_link(company, "currencies", row["currencyCode"])
    return {
        "@odata.etag": etag(row["id"], row["_version"]),
        "id": row["id"], "number": row["number"], "displayName": row["displayName"],
        "type": row["type"], "addressLine1": row["addressLine1"],
        "addressLine2": row["addressLine2"], "city": row["city"], "state": row["state"],
        "country": row["country"], "postalCode": row["postalCode"],
        "phoneNumber": row["phoneNumber"], "email": row["email"], "website": row["website"],
        "salespersonCode": row["salespersonCode"], "balanceDue": decimal(row["balanceDue"]),
        "creditLimit": decimal(row["creditLimit"]), "taxLiable": row["taxLiable"],
        "taxAreaId": tax_id, "taxAreaDisplayName": tax_name,
        "taxRegistrationNumber": row["taxRegistrationNumber"],
        "currencyId": currency_id, "currencyCode": row["currencyCode"] or company.lcy_code,
        "paymentTermsId": _ref_link(company, "paymentTerms", row["paymentTermsCode"])[0],
        "shipmentMethodId": _ref_link(company, "shipmentMethods",
                                      row["shipmentMethodCode"])[0],
        "paymentMethodId": _ref_link(company, "paymentMethods", row["paymentMethodCode"])[0],
        "blocked": xml_name(row["blocked"]),
        "lastModifiedDateTime": format_timestamp(row["_modified"]),
    }


def render_card(_company: Company, row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"@odata.etag": etag(row["id"], row["_version"])}
    for name, key in CARD_FIELDS.items():
        value = row[key]
        out[name] = xml_name(value) if key == "blocked" else decimal(value)
    out["Last_Date_Modified"] = row["_modified"].date().isoformat()
    return out


def render_custom_card(_company: Company, row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"@odata.etag": etag(row["id"], row["_version"])}
    for name, key in CUSTOM_CARD_FIELDS.items():
        out[name] = row[key]
    out["lastModifiedDateTime"] = format_timestamp(row["_modified"])
    return out


def render_country_page(_company: Company, row: Row) -> dict[str, Any]:
    return {"@odata.etag": etag(row["id"], row["_version"]), "Code": row["code"],
            "Name": row.get("displayName", ""), "ISO_Code": row.get("isoCode", ""),
            "ISO_Numeric_Code": row.get("isoNumericCode", ""),
            "Address_Format": xml_name(row.get("addressFormat") or " "),
            "EU_Country_Region_Code": row.get("euCode", "")}


def render_template_page(_company: Company, row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {"@odata.etag": etag(row["id"], row["_version"])}
    for name, key in TEMPLATE_PAGE_FIELDS.items():
        value = row.get(key, False if key == "taxLiable" else "")
        out[name] = xml_name(value or " ") if key == "blocked" else value
    return out


API_SETS: dict[str, EntitySet] = {
    "customers": EntitySet("customers", CUSTOMER, lambda c: c.customers.values(),
                           cached(render_customer), "id"),
    "countriesRegions": EntitySet("countriesRegions", COUNTRY, _ref_rows("countriesRegions"),
                                  _render_ref(COUNTRY), "id"),
    "taxAreas": EntitySet("taxAreas", TAX_AREA, _ref_rows("taxAreas"), _render_ref(TAX_AREA),
                          "id"),
    "paymentTerms": EntitySet("paymentTerms", PAYMENT_TERM, _ref_rows("paymentTerms"),
                              _render_ref(PAYMENT_TERM), "id"),
    "paymentMethods": EntitySet("paymentMethods", PAYMENT_METHOD, _ref_rows("paymentMethods"),
                                _render_ref(PAYMENT_METHOD), "id"),
    "shipmentMethods": EntitySet("shipmentMethods", SHIPMENT_METHOD,
                                 _ref_rows("shipmentMethods"), _render_ref(SHIPMENT_METHOD),
                                 "id"),
    "currencies": EntitySet("currencies", CURRENCY, _ref_rows("currencies"),
                            _render_ref(CURRENCY), "id"),
    "companyInformation": EntitySet("companyInformation", COMPANY_INFORMATION,
                                    _ref_rows("companyInformation"),
                                    _render_ref(COMPANY_INFORMATION), "id"),
}

#: page -> how it is served once published under some service name
PAGES: dict[str, tuple[EntityType, Callable[[Company], Iterable[Row]],
                       Callable[[Company, Row], dict[str, Any]], str]] = {
    "customer_card": (CARD, lambda c: c.customers.values(), cached(render_card), "No"),
    "countries_regions": (COUNTRY_PAGE, _ref_rows("countriesRegions"), render_country_page,
                          "Code"),
    "customer_templates": (TEMPLATE_PAGE, _ref_rows("customerTemplates"),
                           render_template_page, "Code"),
    "customer_card_api": (CUSTOM_CARD, lambda c: c.customers.values(),
                          cached(render_custom_card), "number"),
}
#: custom API pages the double serves (``api/{publisher}/{group}/{version}/companies(..)/
#: {entitySet}``) unless told otherwise: the customer's own Customer Card stand-in
DEFAULT_CUSTOM_APIS = {"contoso/custsync/v1.0/customerCards": "customer_card_api"}
#: the service names the pages are published under unless the double is told otherwise
DEFAULT_PUBLISHED = {"Customer": "customer_card", "CountriesRegions": "countries_regions",
                     "CustomerTemplates": "customer_templates"}


def page_set(service: str, page: str) -> EntitySet:
    etype, rows, render, key = PAGES[page]
    return EntitySet(service, etype, rows, render, key)


# -- writes -------------------------------------------------------------------------------

_API_READ_ONLY = {"id", "balanceDue", "taxAreaDisplayName", "lastModifiedDateTime"}
_API_PLAIN = {"number", "displayName", "addressLine1", "addressLine2", "city", "state",
              "country", "postalCode", "phoneNumber", "email", "website", "salespersonCode",
              "creditLimit", "taxLiable", "taxRegistrationNumber"}
#: guid property -> (customer row key, entity set, table caption for the error text)
_API_LINKS = {"paymentTermsId": ("paymentTermsCode", "paymentTerms", "Payment Terms"),
              "shipmentMethodId": ("shipmentMethodCode", "shipmentMethods", "Shipment Method"),
              "paymentMethodId": ("paymentMethodCode", "paymentMethods", "Payment Method"),
              "taxAreaId": ("", "taxAreas", "Tax Area")}
#: customer row key of a code field -> entity set it relates to (table relation)
_RELATIONS = {"country": ("countriesRegions", "Country/Region"),
              "paymentTermsCode": ("paymentTerms", "Payment Terms"),
              "paymentMethodCode": ("paymentMethods", "Payment Method"),
              "shipmentMethodCode": ("shipmentMethods", "Shipment Method"),
              "currencyCode": ("currencies", "Currency")}


def read_only(name: str) -> BcError:
    return BcError(400, "BadRequest_InvalidOperation", f"Control '{name}' is read-only")


def _unknown_body_property(name: str, type_name: str) -> BcError:
    return bad_request(f"The property '{name}' does not exist on type 'Microsoft.NAV."
                       f"{type_name}'. Make sure to only use property names that are defined "
                       "by the type or mark the type as open type.")


def _guid(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _GUID.match(value):
        raise bad_request(f"Cannot convert the literal '{value}' to the expected type "
                          "'Edm.Guid'.")
    return value.lower()


def _enum(key: str, value: Any, type_name: str) -> str:
    allowed = CONTACT_TYPES if key == "type" else BLOCKED
    member = from_xml_name(value) if isinstance(value, str) else value
    if member not in allowed:
        raise bad_request(f"Cannot convert the literal '{value}' to the expected type "
                          f"'Microsoft.NAV.{type_name}'.")
    return str(member)


def _table_value(company: Company, key: str, value: Any) -> Any:
    """One table field validated as BC's table and page code would (codes upper-cased)."""
    if key == "type":
        return _enum(key, value, "contactType")
    if key == "blocked":
        return _enum(key, value, "customerBlocked")
    value = check_text(key, value)
    if key in _RELATIONS and value:
        entity_set, table = _RELATIONS[key]
        if key == "currencyCode" and value == company.lcy_code:
            return ""
        if company.ref_by_code(entity_set, value) is None:
            raise BcError(400, "Internal_InvalidTableRelation",
                          f"The field {CUSTOMER_FIELDS[key].caption} of table Customer contains "
                          f"a value ({value}) that cannot be found in the related table "
                          f"({table}).")
    if key == "taxAreaCode" and value and company.ref_by_code("taxAreas", value) is None \
            and not company.uses_vat:
        raise BcError(400, "Internal_InvalidTableRelation",
                      "The field Tax Area Code of table Customer contains a value "
                      f"({value}) that cannot be found in the related table (Tax Area).")
    return value


def _api_changes(company: Company, body: Mapping[str, Any]) -> dict[str, Any]:
    """The row changes a customers POST/PATCH body asks for, validated in BC's words."""
    changes: dict[str, Any] = {}
    currency_by_id: str | None = None
    for name, value in body.items():
        if name.startswith("@odata."):
            continue
        if name in _API_READ_ONLY:
            raise read_only(name)
        if name in _API_PLAIN or name in ("type", "blocked"):
            changes[name] = _table_value(company, name, value)
        elif name in _API_LINKS:
            key, entity_set, table = _API_LINKS[name]
            guid = _guid(name, value)
            code = ""
            if guid != ZERO_GUID:
                row = company.ref(entity_set).get(guid)
                if row is None:
                    raise dialog(f'The "{name}" does not match to a {table}.')
                code = row["code"]
            changes[key or tax_area_code_key(company)] = code
        elif name == "currencyId":
            guid = _guid(name, value)
            code = ""
            if guid != ZERO_GUID:
                row = company.ref("currencies").get(guid)
                if row is None:
                    raise dialog('The "currencyId" does not match to a Currency.')
                code = row["code"]
            currency_by_id = code
        elif name == "currencyCode":
            code = check_text("currencyCode", value)
            if code and code != company.lcy_code and \
                    company.ref_by_code("currencies", code) is None:
                raise dialog('The "currencyCode" does not match to a Currency.')
            changes["currencyCode"] = "" if code == company.lcy_code else code
        else:
            raise _unknown_body_property(name, "customer")
    if currency_by_id is not None:
        if "currencyCode" in changes and changes["currencyCode"] != currency_by_id:
            raise dialog("The currency values do not match to a specific Currency.")
        changes["currencyCode"] = currency_by_id
    return changes


def _check_row(row: Row) -> None:
    for key in ("phoneNumber", "mobilePhoneNo"):
        if row[key]:
            check_phone(key, row[key], row["number"])
    if row["email"]:
        check_email(row["email"])


def _number_taken(company: Company, number: str, row_id: str | None) -> None:
    other = company.by_number(number)
    if other is not None and other["id"] != row_id:
        raise BcError(400, "Internal_EntityWithSameKeyExists",
                      "The Customer already exists. Identification fields and values: "
                      f"No.='{number}'")


def _apply(store: Store, company: Company, row: Row, changes: Mapping[str, Any]) -> None:
    old_name = row["displayName"]
    candidate = {**row, **changes}
    if "displayName" in changes and (not row["searchName"]
                                     or row["searchName"] == old_name.upper()):
        candidate["searchName"] = changes["displayName"].upper()[:100]
    _check_row(candidate)
    number = candidate.pop("number")
    row.update(candidate)
    if number != row.get("number"):
        company.renumber(row, number)
    store.touch(row)


def create_customer(store: Store, company: Company, body: Mapping[str, Any]) -> Row:
    """``POST customers``: validation, the config template's defaults, the number series."""
    changes = _api_changes(company, body)
    if not str(changes.get("displayName", "")).strip():
        raise dialog('A "displayName" must be provided.')
    row = blank_customer()
    for key, value in company.new_customer_defaults.items():
        if key in TEMPLATE_FIELDS and key not in changes:
            row[key] = value
    if changes.get("number"):
        _number_taken(company, changes["number"], None)
    else:
        changes["number"] = company.number_series.next(
            lambda n: company.by_number(n) is not None)
    row["id"] = _new_id(company)
    _apply(store, company, row, changes)
    company.add_customer(row)
    return row


def _new_id(company: Company) -> str:
    from .store import new_guid

    while True:
        candidate = new_guid()
        if candidate not in company.customers:
            return candidate


def update_customer(store: Store, company: Company, row: Row, body: Mapping[str, Any]
                    ) -> None:
    """``PATCH customers({id})`` (If-Match checked by the caller)."""
    changes = _api_changes(company, body)
    if "displayName" in changes and not changes["displayName"].strip():
        raise dialog('The blank "displayName" is not allowed.')
    if "number" in changes:
        if not changes["number"]:
            raise dialog('The blank "number" is not allowed.')
        _number_taken(company, changes["number"], row["id"])
    _apply(store, company, row, changes)


def update_card(store: Store, company: Company, row: Row, body: Mapping[str, Any], *,
                custom: bool = False) -> None:
    """``PATCH Customer('<No.>')`` on the published Customer Card, or (``custom``)
    ``PATCH customerCards('<No.>')`` on the customer's own API page."""
    changes: dict[str, Any] = {}
    fields = CUSTOM_CARD_FIELDS if custom else CARD_FIELDS
    for name, value in body.items():
        if name.startswith("@odata."):
            continue
        if name in (("id", "lastModifiedDateTime") if custom else ("Last_Date_Modified",)):
            raise read_only(name.replace("_", " "))
        key = fields.get(name)
        if key is None:
            raise _unknown_body_property(name, "customerCard" if custom else "Customer")
        if key == "number":
            if value != row["number"]:
                raise read_only("No.")
            continue
        changes[key] = _table_value(company, key, value)
    if "displayName" in changes and not changes["displayName"].strip():
        raise dialog("Name must have a value in Customer: No.=" + row["number"]
                     + ". It cannot be zero or empty.")
    _apply(store, company, row, changes)
