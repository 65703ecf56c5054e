"""BC entities <-> custsync records: the ``customers`` API fields, the Customer Card page's
fields and the OData literals used in filters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from custsync.engine.model import ErpCustomer

__all__ = [
    "API_FIELDS",
    "BLANK_GUID",
    "CARD_TEMPLATE_FIELDS",
    "CUSTOMER_SELECT",
    "PAGE_ONLY_FIELDS",
    "VAT_GROUPS",
    "api_body",
    "customer_from_api",
    "odata_datetime",
    "odata_string",
    "parse_datetime",
]

BLANK_GUID = "00000000-0000-0000-0000-000000000000"
#: the key of ``codes`` (customer_from_api) holding the ``taxAreas`` ids that are VAT Bus.
#: Posting Groups (``taxType`` VAT: a company in a VAT country)
VAT_GROUPS = "vatBusPostingGroups"

#: custsync field -> ``customers`` API property (the core fields the API has)
API_FIELDS: Mapping[str, str] = {
    "no": "number",
    "name": "displayName",
    "address": "addressLine1",
    "address_2": "addressLine2",
    "city": "city",
    "post_code": "postalCode",
    "county": "state",
    "country_code": "country",
    "phone": "phoneNumber",
    "email": "email",
}

#: the customer fields only a page has (Customer Card, or the customer's own API page)
PAGE_ONLY_FIELDS = ("name_2", "contact")
#: template fields only the Customer Card has
CARD_TEMPLATE_FIELDS = (
    "gen_bus_posting_group",
    "customer_posting_group",
    "vat_bus_posting_group",
    "language_code",
)

CUSTOMER_SELECT = ",".join(
    (
        "id",
        *API_FIELDS.values(),
        "taxLiable",
        "taxAreaId",
        "currencyId",
        "currencyCode",
        "paymentTermsId",
        "paymentMethodId",
        "lastModifiedDateTime",
    )
)


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    """A DateTimeOffset literal in UTC with milliseconds (BC keeps milliseconds)."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(entity: Mapping[str, Any], name: str) -> str:
    value = entity.get(name)
    return "" if value is None else str(value)


def customer_from_api(
    entity: Mapping[str, Any],
    card: Mapping[str, Any] | None,
    *,
    codes: Mapping[str, Mapping[str, str]],
) -> ErpCustomer:
    """An ErpCustomer from a ``customers`` entity and (when available) its page row already
    renamed to custsync field names. ``codes`` maps ids to codes per lookup entity set
    (``paymentTerms``, ``paymentMethods``, ``taxAreas``)."""
    values = {field: _text(entity, prop) for field, prop in API_FIELDS.items()}
    extra: dict[str, Any] = {"tax_liable": bool(entity.get("taxLiable"))}
    currency_id = _text(entity, "currencyId")
    # BC answers the local currency's code for an LCY customer (currencyId blank): custsync
    # (and BC's own tables) keep LCY as a blank currency code
    extra["currency_code"] = (
        "" if currency_id in ("", BLANK_GUID) else _text(entity, "currencyCode")
    )
    for field, prop, entity_set in (
        ("payment_terms_code", "paymentTermsId", "paymentTerms"),
        ("payment_method_code", "paymentMethodId", "paymentMethods"),
        ("tax_area_code", "taxAreaId", "taxAreas"),
    ):
        ident = _text(entity, prop)
        code = codes.get(entity_set, {}).get(ident, "")
        if field == "tax_area_code" and ident in codes.get(VAT_GROUPS, {}):
            # a VAT country: taxAreaId is the VAT Bus. Posting Group; the Tax Area Code (rarely
            # used there) is only on the Customer Card
            extra["vat_bus_posting_group"] = code
            continue
        if code or ident in ("", BLANK_GUID):
            extra[field] = code
    name_2 = contact = ""
    if card is not None:
        name_2 = _text(card, "name_2")
        contact = _text(card, "contact")
        for field in (
            "gen_bus_posting_group",
            "customer_posting_group",
            "vat_bus_posting_group",
            "tax_area_code",
            "language_code",
        ):
            if field in card:
                extra[field] = _text(card, field)
    return ErpCustomer(
        no=values["no"],
        name=values["name"],
        name_2=name_2,
        contact=contact,
        address=values["address"],
        address_2=values["address_2"],
        city=values["city"],
        post_code=values["post_code"],
        county=values["county"],
        country_code=values["country_code"],
        phone=values["phone"],
        email=values["email"],
        extra=extra,
        modified_at=parse_datetime(entity.get("lastModifiedDateTime")),
        etag=_text(entity, "@odata.etag") or None,
    )


def api_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``customers`` properties of custsync ``fields`` (others are left out)."""
    return {
        API_FIELDS[name]: "" if value is None else str(value)
        for name, value in fields.items()
        if name in API_FIELDS
    }
