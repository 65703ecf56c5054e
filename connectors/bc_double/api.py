"""BC's OData routes as plain calls: one request in, one :class:`Reply` out.

The HTTP layer (``server.py``) and ``$batch`` both use :meth:`Api.call`, so an operation
inside a batch answers exactly as the same request sent alone (except the CorrelationId,
which BC leaves out inside batches).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from . import errors
from .entities import (
    API_SETS,
    DEFAULT_CUSTOM_APIS,
    DEFAULT_PUBLISHED,
    EntitySet,
    create_customer,
    page_set,
    update_card,
    update_customer,
)
from .errors import BcError
from .odata import compile_filter, non_negative, ordering, select
from .store import ZERO_GUID, Company, Row, Store, decimal, etag

MAX_PAGE_SIZE = 20_000
MAX_BATCH = 100
JSON_ODATA = "application/json; odata.metadata=minimal; odata.streaming=true"
_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_API_PATH = re.compile(
    r"^companies(?:\((?P<cid>[^)]*)\))?(?:/(?P<set>[A-Za-z]+)(?:\((?P<key>[^)]*)\))?)?$")
_BARE_SET = re.compile(r"^(?P<set>[A-Za-z]+)(?:\((?P<key>[^)]*)\))?$")
_PAGE_PATH = re.compile(
    r"^(?:Company\((?:'(?P<cname>(?:[^']|'')*)'|Id=(?P<cid>[^)]*))\)/)?"
    r"(?P<service>[A-Za-z0-9_]+)(?:\((?P<key>[^)]*)\))?$")
_EXPANDABLE = {"customerFinancialDetails": None, "currency": ("currencies", "currencyCode"),
               "paymentTerm": ("paymentTerms", "paymentTermsCode"),
               "paymentMethod": ("paymentMethods", "paymentMethodCode"),
               "shipmentMethod": ("shipmentMethods", "shipmentMethodCode")}


@dataclass(slots=True)
class Reply:
    """One answer: status, headers, JSON payload (None: no body)."""

    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    target: str = ""  #: the entity set or route it concerned (logs, fault matching)

    def body(self) -> bytes:
        if self.payload is None:
            return b""
        return json.dumps(self.payload, ensure_ascii=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Call:
    """One OData request: method, the path below the API or ODataV4 root, and the rest."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]  #: lower-case names
    body: bytes
    root: str  #: absolute URL of the API (or ODataV4) root, ending in ``/``
    url: str  #: the absolute request URL as the client sent it
    pages: bool = False  #: an ODataV4 page request
    #: a custom API request: ``{publisher}/{group}/{version}`` (the path is below it)
    custom_api: str = ""


def _ok(payload: Any, status: int = 200, *, content_type: str = JSON_ODATA,
        extra: Mapping[str, str] | None = None) -> Reply:
    headers = {"OData-Version": "4.0", "Content-Type": content_type}
    if content_type == "application/json":
        del headers["OData-Version"]  # recorded: BC's PATCH answer has neither
    headers.update(extra or {})
    return Reply(status, payload, headers)


def _guid_key(text: str) -> str:
    if not re.fullmatch(_GUID, text):
        raise errors.query_syntax()
    return text.lower()


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        raise errors.bad_request("Invalid Request Body") from None
    if not isinstance(parsed, dict):
        raise errors.bad_request("An unexpected 'PrimitiveValue' node was found when reading "
                                 "from the JSON reader. A 'StartObject' node was expected.")
    return parsed


class Api:
    """The routes of one environment: API v2.0 and the published pages."""

    def __init__(self, store: Store, *, published: Mapping[str, str] | None = None,
                 custom_apis: Mapping[str, str] | None = None,
                 max_page_size: int = MAX_PAGE_SIZE) -> None:
        self.store = store
        self.published = dict(DEFAULT_PUBLISHED if published is None else published)
        #: ``publisher/group/version/entitySet`` -> page kind (entities.PAGES)
        self.custom_apis = dict(DEFAULT_CUSTOM_APIS if custom_apis is None else custom_apis)
        self.max_page_size = max_page_size

    # -- dispatch ------------------------------------------------------------------------

    def call(self, call: Call) -> Reply:
        with self.store.locked():
            if call.pages:
                return self._page(call)
            if call.custom_api:
                return self._custom_api(call)
            return self._api(call)

    def _api(self, call: Call) -> Reply:
        path = call.path
        if path == "$batch":
            raise errors.no_resource(call.url)  # handled by the HTTP layer (needs the user)
        match = _API_PATH.match(path)
        if match is None:
            bare = _BARE_SET.match(path)
            company_id = call.params.get("company")
            if bare is None or bare["set"] not in API_SETS or company_id is None:
                raise errors.no_resource(call.url)
            company = self._company(company_id)
            return self._entity_set(call, company, bare["set"], bare["key"],
                                    f"companies({company.id})/{bare['set']}")
        if match["set"] is None:
            return self._companies(call, match["cid"])
        if match["cid"] is None:
            raise errors.no_resource(call.url)
        company = self._company(match["cid"])
        name = match["set"]
        if name not in API_SETS:
            raise errors.no_resource(call.url)
        return self._entity_set(call, company, name, match["key"],
                                f"companies({company.id})/{name}")

    def _company(self, key: str) -> Company:
        company = self.store.company(_guid_key(key))
        if company is None:
            raise errors.not_found_segment("companies")
        return company

    def _companies(self, call: Call, key: str | None) -> Reply:
        if call.method != "GET":
            raise errors.method_not_allowed(call.method, "companies",
                                            "Entity" if key else "Collection")
        companies = sorted(self.store.companies.values(), key=lambda c: c.name)
        if key is not None:
            company = self._company(key)
            return _ok({"@odata.context": f"{call.root}$metadata#companies/$entity",
                        **_company_json(company)})
        return _ok({"@odata.context": f"{call.root}$metadata#companies",
                    "value": [_company_json(c) for c in companies]})

    def _entity_set(self, call: Call, company: Company, name: str, key: str | None,
                    context: str) -> Reply:
        es = API_SETS[name]
        if key is None:
            if call.method == "GET":
                return self._collection(call, company, es, context)
            if call.method == "POST" and name == "customers":
                return self._create(call, company, context)
            raise errors.method_not_allowed(call.method, name, "Collection")
        row = company.customers.get(_guid_key(key)) if name == "customers" else \
            company.ref(name).get(_guid_key(key))
        if row is None:
            raise errors.not_found_segment(name)
        if call.method == "GET":
            return _ok({"@odata.context": f"{call.root}$metadata#{context}/$entity",
                        **self._expanded(call, company, es, row)})
        if name != "customers" or call.method not in ("PATCH", "DELETE"):
            raise errors.method_not_allowed(call.method, name, "Entity")
        self._check_if_match(call, row)
        if call.method == "DELETE":
            company.remove_customer(row)
            return Reply(204, None, {})
        update_customer(self.store, company, row, _json_body(call.body))
        return _ok({"@odata.context": f"{call.root}$metadata#{context}/$entity",
                    **es.render(company, row)}, content_type="application/json")

    def _create(self, call: Call, company: Company, context: str) -> Reply:
        row = create_customer(self.store, company, _json_body(call.body))
        location = f"{call.root}companies({company.id})/customers({row['id']})"
        return _ok({"@odata.context": f"{call.root}$metadata#{context}/$entity",
                    **API_SETS["customers"].render(company, row)}, 201,
                   extra={"Location": location})

    def _check_if_match(self, call: Call, row: Row) -> None:
        given = call.headers.get("if-match")
        if given is None:
            if call.method == "DELETE":
                return  # recorded: DELETE without If-Match succeeds (BC 25.4)
            raise errors.missing_if_match()
        if given.strip() == "*":
            return
        if given.strip() != etag(row["id"], row["_version"]):
            raise errors.entity_changed()

    # -- reading ------------------------------------------------------------------------

    def _expanded(self, call: Call, company: Company, es: EntitySet, row: Row
                  ) -> dict[str, Any]:
        wire = dict(es.render(company, row))
        expand = call.params.get("$expand")
        if expand:
            for name in (n.strip() for n in expand.split(",")):
                if es.name != "customers" or name not in _EXPANDABLE:
                    raise errors.unknown_property(name, es.etype.name)
                wire[name] = _expansion(company, row, name)
        chosen = select(call.params.get("$select"), es.etype)
        if chosen is not None:
            keep = {"@odata.etag", *chosen, *(expand or "").replace(" ", "").split(",")}
            wire = {k: v for k, v in wire.items() if k in keep}
        return wire

    def _collection(self, call: Call, company: Company, es: EntitySet, context: str
                    ) -> Reply:
        params = call.params
        schema_21 = params.get("$schemaversion", "") == "2.1"
        chosen = select(params.get("$select"), es.etype)
        order = ordering(params.get("$orderby"), es.etype)
        top = non_negative("top", params.get("$top"))
        skip = non_negative("skip", params.get("$skip"))
        predicate = compile_filter(params["$filter"], es.etype, schema_21=schema_21) \
            if params.get("$filter", "").strip() else None
        rows = [(row, es.render(company, row)) for row in es.rows(company)]
        if predicate is not None:
            rows = [pair for pair in rows if predicate(pair[1])]
        rows.sort(key=lambda pair: order.key(pair[1]))
        token = params.get("$skiptoken")
        if token:
            start = order.resume_index([wire for _, wire in rows], token)
            rows = rows[start:]
        if skip:
            rows = rows[skip:]
        extra: dict[str, str] = {}
        page_size = self.max_page_size
        preferred = _max_page_size(call.headers.get("prefer", ""))
        if preferred is not None:
            page_size = min(preferred, self.max_page_size)
            extra["Preference-Applied"] = f"odata.maxpagesize={page_size}"
        next_link = None
        if top is not None:
            rows = rows[:top]
        elif len(rows) > page_size:
            rows = rows[:page_size]
            next_link = _with_skiptoken(call.url, order.token(rows[-1][1]))
        expand = params.get("$expand")
        value = []
        for row, wire in rows:
            if expand:
                wire = self._expanded(call, company, es, row)
            elif chosen is not None:
                wire = {k: v for k, v in wire.items() if k == "@odata.etag" or k in chosen}
            value.append(wire)
        shape = f"({','.join(chosen)})" if chosen else ""
        payload: dict[str, Any] = {"@odata.context": f"{call.root}$metadata#{context}{shape}",
                                   "value": value}
        if next_link:
            payload["@odata.nextLink"] = next_link
        return _ok(payload, extra=extra)

    # -- published pages ------------------------------------------------------------------

    def _page(self, call: Call) -> Reply:
        match = _PAGE_PATH.match(call.path)
        if match is None:
            raise errors.no_resource(call.url)
        service = match["service"]
        page = self.published.get(service)
        if page is None or service == "Company":
            raise errors.no_resource(call.url)
        if match["cname"] is not None:
            company = self.store.company_named(match["cname"].replace("''", "'"))
        elif match["cid"] is not None:
            company = self.store.company(_guid_key(match["cid"]))
        elif "company" in call.params:
            company = self.store.company_named(call.params["company"].strip("'"))
        else:
            raise BcError(400, "Internal_CompanyNotFound",
                          "Cannot process the request because the default company can't be "
                          "found. You can specify a default company in the service "
                          "configuration file, or specify one for each tenant, or you can "
                          "add a query string in the form of 'company=[name]'.")
        if company is None:
            raise errors.not_found_segment("Company")
        es = page_set(service, page)
        context = f"{call.root}$metadata#Company('{quote(company.name)}')/{service}"
        key = match["key"]
        if key is None:
            if call.method != "GET":
                raise errors.method_not_allowed(call.method, service, "Collection")
            reply = self._collection(call, company, es, "")
            reply.payload["@odata.context"] = context + reply.payload["@odata.context"].split(
                "#", 1)[1]
            return reply
        row = self._page_row(company, es, key)
        return self._page_entity(call, company, es, row, f"{context}/$entity", service,
                                 writable=page == "customer_card", custom=False)

    # -- custom API pages -----------------------------------------------------------------

    def _custom_api(self, call: Call) -> Reply:
        """``api/{publisher}/{group}/{version}/companies({id})/{entitySet}[('<key>')]``: an
        API page of an extension (unknown ones answer as BC answers an unknown route)."""
        match = _API_PATH.match(call.path)
        if match is None or match["cid"] is None or match["set"] is None:
            raise errors.no_resource(call.url)
        page = self.custom_apis.get(f"{call.custom_api}/{match['set']}")
        if page is None:
            raise errors.no_resource(call.url)
        company = self._company(match["cid"])
        name = match["set"]
        es = page_set(name, page)
        context = f"companies({company.id})/{name}"
        key = match["key"]
        if key is None:
            if call.method != "GET":
                raise errors.method_not_allowed(call.method, name, "Collection")
            return self._collection(call, company, es, context)
        row = self._page_row(company, es, key)
        return self._page_entity(call, company, es, row,
                                 f"{call.root}$metadata#{context}/$entity", name,
                                 writable=page == "customer_card_api", custom=True)

    def _page_entity(self, call: Call, company: Company, es: EntitySet, row: Row,
                     entity_context: str, name: str, *, writable: bool, custom: bool) -> Reply:
        """One row of a published or custom API page: GET it, or PATCH it where the page is
        the Customer Card's (``If-Match`` checked, the card's fields written)."""
        if call.method == "GET":
            return _ok({"@odata.context": entity_context, **es.render(company, row)})
        if call.method != "PATCH" or not writable:
            raise errors.method_not_allowed(call.method, name, "Entity")
        self._check_if_match(call, row)
        update_card(self.store, company, row, _json_body(call.body), custom=custom)
        return _ok({"@odata.context": entity_context, **es.render(company, row)},
                   content_type="application/json")

    def _page_row(self, company: Company, es: EntitySet, key: str) -> Row:
        text = key.split("=", 1)[1] if "=" in key else key
        if not (len(text) >= 2 and text[0] == text[-1] == "'"):
            raise errors.query_syntax()
        value = text[1:-1].replace("''", "'")
        if es.key in ("No", "number"):  # a Customer Card: by the number index
            found = company.by_number(value)
            if found is not None:
                return found
        for row in es.rows(company):
            wire = es.render(company, row)
            if wire.get(es.key) == value:
                return row
        raise BcError(404, "Internal_RecordNotFound",
                      f"The {es.etype.table} does not exist. Identification fields and values: "
                      f"{es.key}='{value}'")


def _company_json(company: Company) -> dict[str, Any]:
    from .store import format_timestamp

    stamp = format_timestamp(company.created_at)
    return {"id": company.id, "systemVersion": "25.4.29661.29727", "timestamp": 47433,
            "name": company.name, "displayName": company.display_name,
            "businessProfileId": "", "systemCreatedAt": stamp,
            "systemCreatedBy": "00000000-0000-0000-0000-000000000001",
            "systemModifiedAt": stamp,
            "systemModifiedBy": "00000000-0000-0000-0000-000000000001"}


def _expansion(company: Company, row: Row, name: str) -> Any:
    link = _EXPANDABLE[name]
    if link is None:
        return {"@odata.etag": etag(row["id"], row["_version"]), "id": row["id"],
                "number": row["number"], "balance": decimal(row["balanceDue"]),
                "totalSalesExcludingTax": 0, "overdueAmount": 0}
    entity_set, key = link
    ref = company.ref_by_code(entity_set, row[key]) if row[key] else None
    if ref is None:
        return None
    return API_SETS[entity_set].render(company, ref)


def _max_page_size(prefer: str) -> int | None:
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize":
            try:
                size = int(value.strip())
            except ValueError:
                return None
            return size if size > 0 else None
    return None


def _with_skiptoken(url: str, token: str) -> str:
    base, _, query = url.partition("?")
    pairs = [(k, v) for k, v in _split_query(query) if k != "$skiptoken"]
    pairs.append(("$skiptoken", token))
    return base + "?" + urlencode(pairs, quote_via=quote, safe="$',()=:")


def _split_query(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def company_for_batch(store: Store, name: str) -> str | None:
    company = store.company_named(name)
    return company.id if company else None


__all__ = ["JSON_ODATA", "MAX_BATCH", "ZERO_GUID", "Api", "Call", "Reply"]
