"""The Business Central double over plain HTTP: every route and the error answers BC gives."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from custsync.connectors.bc_double import SCOPE, BcDouble

from fixtures_bc import bc_company, bc_token

ETAG = re.compile(r'^W/"[A-Za-z0-9+/=]+"$')
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Bc:
    """A tiny client for the tests: token, company URL, JSON calls."""

    def __init__(self, double: BcDouble, http: httpx.Client) -> None:
        self.double = double
        self.http = http
        self.token = bc_token(double, http)
        self.company = bc_company(double)
        self.base = double.company_url(self.company.id)

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
             **kwargs: Any) -> httpx.Response:
        url = path if path.startswith("http") else f"{self.base}/{path}"
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.http.request(method, url, headers=sent, **kwargs)

    def customers(self, **params: str) -> list[dict[str, Any]]:
        answer = self.call("GET", "customers", params=params)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["value"])

    def create(self, **body: Any) -> dict[str, Any]:
        answer = self.call("POST", "customers", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        yield client


@pytest.fixture
def bc(bc_double: BcDouble, http: httpx.Client) -> Bc:
    return Bc(bc_double, http)


def assert_error(answer: httpx.Response, status: int, code: str, *, correlation: bool = True
                 ) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    message = str(error["message"])
    if correlation:
        assert message.endswith(f"  CorrelationId:  {answer.headers['request-id']}.")
    else:
        assert "CorrelationId" not in message
    return message


# -- token endpoint -----------------------------------------------------------------------


def _token(double: BcDouble, http: httpx.Client, tenant: str | None = None,
           **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": double.client_id,
            "client_secret": double.client_secret, "scope": SCOPE, **form}
    url = double.token_url if tenant is None else double.token_url.replace(
        double.tenant, tenant)
    return http.post(url, data=data)


def test_token_endpoint_issues_a_bearer_token(bc_double: BcDouble, http: httpx.Client) -> None:
    answer = _token(bc_double, http)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["access_token"].count(".") == 2


@pytest.mark.parametrize(("tenant", "form", "status", "error", "code"), [
    ("wrong-tenant.onmicrosoft.com", {}, 400, "invalid_request", 90002),
    (None, {"client_id": "11111111-2222-3333-4444-555555555555"}, 400, "unauthorized_client",
     700016),
    (None, {"client_secret": "not-it"}, 401, "invalid_client", 7000215),
    (None, {"client_secret": ""}, 401, "invalid_client", 7000218),
    (None, {"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 1002012),
    (None, {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
])
def test_token_refusals_answer_as_entra_id(bc_double: BcDouble, http: httpx.Client,
                                           tenant: str | None, form: dict[str, str],
                                           status: int, error: str, code: int) -> None:
    answer = _token(bc_double, http, tenant, **form)
    assert answer.status_code == status
    body = answer.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "Trace ID: " in body["error_description"]
    assert bc_double.client_secret not in answer.text


def test_bad_missing_and_expired_tokens_are_401(bc: Bc) -> None:
    for headers in ({"Authorization": "Bearer nonsense"}, {"Authorization": ""}):
        answer = bc.http.get(f"{bc.base}/customers", headers=headers)
        assert_error(answer, 401, "Authentication_InvalidCredentials")
    assert bc.call("GET", "customers").status_code == 200
    bc.double.expire_tokens()
    assert_error(bc.call("GET", "customers"), 401, "Authentication_InvalidCredentials")
    bc.token = bc_token(bc.double, bc.http)
    assert bc.call("GET", "customers").status_code == 200


def test_token_of_another_tenant_in_the_url_is_401(bc: Bc) -> None:
    url = bc.base.replace(bc.double.tenant, "other-tenant.onmicrosoft.com")
    assert_error(bc.call("GET", f"{url}/customers"), 401, "Authentication_InvalidCredentials")


def test_common_endpoint_takes_the_tenant_from_the_token(bc: Bc) -> None:
    url = f"{bc.double.url}/v2.0/{bc.double.environment}/api/v2.0/companies"
    answer = bc.call("GET", url)
    assert answer.status_code == 200
    assert [c["name"] for c in answer.json()["value"]] == ["CRONUS USA, Inc."]


def test_unknown_environment_is_not_found(bc: Bc) -> None:
    url = bc.base.replace(f"/{bc.double.environment}/", "/NoSuchEnv/")
    assert_error(bc.call("GET", f"{url}/customers"), 404, "BadRequest_NotFound",
                 correlation=False)


# -- companies and routing ----------------------------------------------------------------


def test_companies_list_has_bc_company_shape(bc: Bc) -> None:
    answer = bc.call("GET", f"{bc.double.api_url}/companies")
    assert answer.status_code == 200
    assert answer.headers["odata-version"] == "4.0"
    assert answer.headers["content-type"].startswith("application/json; odata.metadata=minimal")
    assert GUID.match(answer.headers["request-id"])
    body = answer.json()
    assert body["@odata.context"] == f"{bc.double.api_url}/$metadata#companies"
    assert set(body["value"][0]) == {
        "id", "systemVersion", "timestamp", "name", "displayName", "businessProfileId",
        "systemCreatedAt", "systemCreatedBy", "systemModifiedAt", "systemModifiedBy"}


def test_unknown_company_unknown_entity_and_bad_keys(bc: Bc) -> None:
    missing = f"{bc.double.api_url}/companies(11111111-2222-3333-4444-555555555555)/customers"
    message = assert_error(bc.call("GET", missing), 404, "BadRequest_ResourceNotFound")
    assert message.startswith("Resource not found for the segment 'companies'.")
    message = assert_error(bc.call("GET", "vendorsAndFriends"), 404, "BadRequest_NotFound",
                           correlation=False)
    assert "No HTTP resource was found that matches the request URI" in message
    assert_error(bc.call("GET", "customers(None)"), 404, "BadRequest_NotFound")
    gone = "customers(11111111-2222-3333-4444-555555555555)"
    message = assert_error(bc.call("GET", gone), 404, "BadRequest_ResourceNotFound")
    assert message.startswith("Resource not found for the segment 'customers'.")


def test_wrong_verbs_are_405(bc: Bc) -> None:
    assert_error(bc.call("PATCH", "customers", json={}), 405, "BadRequest_MethodNotAllowed")
    assert_error(bc.call("POST", "countriesRegions", json={"code": "XX"}), 405,
                 "BadRequest_MethodNotAllowed")


@pytest.mark.parametrize("entity_set", ["countriesRegions", "taxAreas", "paymentTerms",
                                        "paymentMethods", "currencies", "shipmentMethods"])
def test_reference_entity_sets(bc: Bc, entity_set: str) -> None:
    answer = bc.call("GET", entity_set)
    assert answer.status_code == 200
    rows = answer.json()["value"]
    assert rows
    codes = [r["code"] for r in rows]
    assert codes == sorted(codes)
    for row in rows:
        assert ETAG.match(row["@odata.etag"])
        assert GUID.match(row["id"])
        assert row["lastModifiedDateTime"].endswith("Z")
    one = bc.call("GET", f"{entity_set}({rows[0]['id']})")
    assert one.status_code == 200
    assert one.json()["@odata.context"].endswith(f"/{entity_set}/$entity")


def test_country_address_format_is_an_xml_encoded_enum(bc: Bc) -> None:
    rows = bc.call("GET", "countriesRegions", params={"$filter": "code eq 'US'"}).json()["value"]
    assert rows[0]["addressFormat"] == "City_x002B_County_x002B_Post_x0020_Code"


# -- customers: reading -------------------------------------------------------------------


def test_customers_come_in_number_order_with_bc_shape(bc: Bc) -> None:
    rows = bc.customers()
    assert [r["number"] for r in rows] == ["C00010", "C00020", "C00030"]
    first = rows[0]
    assert list(first)[:4] == ["@odata.etag", "id", "number", "displayName"]
    assert list(first)[-2:] == ["blocked", "lastModifiedDateTime"]
    assert first["blocked"] == "_x0020_"
    assert first["currencyCode"] == "USD"
    assert first["currencyId"] == "00000000-0000-0000-0000-000000000000"
    assert first["taxAreaDisplayName"] == "No sales tax"
    raw = base64.b64decode(first["@odata.etag"][3:-1]).decode()
    assert re.fullmatch(r"'(\d\d);(\d{19,20})1;00;'", raw)


@pytest.mark.parametrize(("expression", "numbers"), [
    ("country eq 'US'", ["C00010", "C00020"]),
    ("country ne 'US'", ["C00030"]),
    ("number gt 'C00010'", ["C00020", "C00030"]),
    ("number ge 'C00020' and number le 'C00020'", ["C00020"]),
    ("number lt 'C00020'", ["C00010"]),
    ("city eq 'Chicago' or city eq 'Atlanta'", ["C00010", "C00020"]),
    ("startswith(displayName,'Trey')", ["C00020"]),
    ("contains(displayName,'Corp')", ["C00010"]),
    ("endswith(email,'.nl')", ["C00030"]),
    ("displayName eq 'trey research'", []),  # case-sensitive
    ("tolower(displayName) eq 'trey research'", ["C00020"]),
    ("(country eq 'NL') and currencyCode eq 'EUR'", ["C00030"]),
])
def test_filters(bc: Bc, expression: str, numbers: list[str]) -> None:
    assert [r["number"] for r in bc.customers(**{"$filter": expression})] == numbers


def _stamp(entity: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entity["lastModifiedDateTime"].replace("Z", "+00:00"))


@pytest.mark.parametrize("step_ms", [0, 1], ids=["real-clock", "1ms-per-change"])
def test_filter_on_last_modified(bc_double_factory: Callable[..., BcDouble],
                                 http: httpx.Client, step_ms: int) -> None:
    # 1ms-per-change: every seeded customer gets its own millisecond, the case that made this
    # test fail about one run in three when the real clock happened to tick between seeds
    moments = iter(range(10_000))
    now = (lambda: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=next(moments))) \
        if step_ms else None
    bc = Bc(bc_double_factory(now=now), http)
    bc.double.store.clock.advance(1)
    created = bc.create(displayName="Later")
    # the newest stamp before the create: the series gives C00001, which sorts *first*, so no
    # position in number order is "the last seeded customer" (picking one by position made
    # this fail whenever the seeds' stamps fell in different milliseconds)
    before = [r for r in bc.customers() if r["number"] != created["number"]]
    stamp = max(before, key=_stamp)["lastModifiedDateTime"]
    later = bc.customers(**{"$filter": f"lastModifiedDateTime gt {stamp}"})
    assert [r["number"] for r in later] == [created["number"]]
    assert all(_stamp(r) > _stamp({"lastModifiedDateTime": stamp}) for r in later)
    same = bc.customers(**{"$filter": f"lastModifiedDateTime ge {stamp}"})
    assert len(same) >= 2


@pytest.mark.parametrize(("expression", "code", "text"), [
    ("country eq 'US' or city eq 'Chicago'", "BadRequest",
     "The 'OR' operator is not supported on distinct fields on an OData filter."),
    ("nosuchfield eq 'x'", "BadRequest",
     "Could not find a property named 'nosuchfield' on type 'Microsoft.NAV.customer'."),
    ("country eqq 'US'", "BadRequest", "Syntax error at position 8"),
    ("number eq 5", "BadRequest", "A binary operator with incompatible types"),
    ("number eq 'C000000000000000000000'", "Application_FilterErrorException",
     "The length of the string is 22, but it must be less than or equal to 20 characters."),
    ("contains(tolower(displayName),'trey')", "BadRequest", "$schemaversion=2.1"),
    ("country in ('US','NL')", "BadRequest", "Syntax error"),
])
def test_bad_filters_are_refused_as_bc_refuses_them(bc: Bc, expression: str, code: str,
                                                    text: str) -> None:
    answer = bc.call("GET", "customers", params={"$filter": expression})
    assert text in assert_error(answer, 400, code)


def test_schema_21_allows_in_and_nested_calls(bc: Bc) -> None:
    rows = bc.customers(**{"$filter": "country in ('US','NL')", "$schemaversion": "2.1"})
    assert len(rows) == 3
    rows = bc.customers(**{"$filter": "contains(tolower(displayName),'trey')",
                           "$schemaversion": "2.1"})
    assert [r["number"] for r in rows] == ["C00020"]


def test_select_orderby_top_skip(bc: Bc) -> None:
    answer = bc.call("GET", "customers", params={"$select": "number,displayName",
                                                 "$orderby": "displayName desc", "$top": "2"})
    body = answer.json()
    assert body["@odata.context"].endswith("/customers(number,displayName)")
    assert [set(r) for r in body["value"]] == [{"@odata.etag", "number", "displayName"}] * 2
    assert [r["displayName"] for r in body["value"]] == ["Trey Research", "Jan de Vries"]
    assert "@odata.nextLink" not in body
    rows = bc.customers(**{"$skip": "1"})
    assert [r["number"] for r in rows] == ["C00020", "C00030"]
    assert_error(bc.call("GET", "customers", params={"$select": "nope"}), 400, "BadRequest")
    assert_error(bc.call("GET", "customers", params={"$top": "-1"}), 400, "BadRequest")


def test_expand_financial_details_is_an_object(bc: Bc) -> None:
    rows = bc.customers(**{"$expand": "customerFinancialDetails,paymentTerm"})
    assert isinstance(rows[0]["customerFinancialDetails"], dict)
    assert rows[0]["customerFinancialDetails"]["number"] == "C00010"
    assert rows[0]["paymentTerm"]["code"] == "14 DAYS"
    assert_error(bc.call("GET", "customers", params={"$expand": "nothing"}), 400, "BadRequest")


def test_server_driven_paging_follows_next_links(bc_double_factory: Callable[..., BcDouble],
                                                 http: httpx.Client) -> None:
    double = bc_double_factory(max_page_size=2)
    bc = Bc(double, http)
    for i in range(5):
        bc.create(displayName=f"Paged {i}")
    seen: list[str] = []
    url: str | None = f"{bc.base}/customers?$filter=startswith(displayName,'Paged')"
    pages = 0
    while url:
        answer = bc.call("GET", url)
        assert answer.status_code == 200
        assert "preference-applied" not in answer.headers
        body = answer.json()
        seen += [r["displayName"] for r in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert seen == [f"Paged {i}" for i in range(5)]
    assert pages == 3


def test_prefer_maxpagesize_is_applied_and_echoed(bc: Bc) -> None:
    answer = bc.call("GET", "customers", headers={"Prefer": "odata.maxpagesize=1"})
    assert answer.headers["preference-applied"] == "odata.maxpagesize=1"
    body = answer.json()
    assert len(body["value"]) == 1
    assert "$skiptoken='C00010'" in body["@odata.nextLink"]
    second = bc.call("GET", body["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=1"})
    assert second.json()["value"][0]["number"] == "C00020"


def test_paging_does_not_skip_a_customer_created_meanwhile(bc: Bc) -> None:
    first = bc.call("GET", "customers", headers={"Prefer": "odata.maxpagesize=2"}).json()
    bc.create(displayName="Late", number="C00011")
    rest = bc.call("GET", first["@odata.nextLink"]).json()
    numbers = [r["number"] for r in first["value"] + rest["value"]]
    assert numbers == ["C00010", "C00020", "C00030"]  # C00011 sorts before the token


# -- customers: writing -------------------------------------------------------------------


def test_create_takes_number_series_and_defaults(bc: Bc) -> None:
    answer = bc.call("POST", "customers", json={"displayName": "Ulm Falcons",
                                                "type": "Company"})
    assert answer.status_code == 201
    body = answer.json()
    assert answer.headers["location"] == f"{bc.base}/customers({body['id']})"
    assert body["@odata.context"].endswith("/customers/$entity")
    assert list(body)[:3] == ["@odata.context", "@odata.etag", "id"]
    assert body["number"] == "C00001"
    assert body["paymentTermsId"] == bc.company.ref_by_code("paymentTerms", "14 DAYS")["id"]
    again = bc.create(displayName="Second")
    assert again["number"] == "C00002"
    fetched = bc.call("GET", f"customers({body['id']})").json()
    assert fetched["@odata.etag"] == body["@odata.etag"]


@pytest.mark.parametrize(("body", "code", "text"), [
    ({"type": "Person"}, "Application_DialogException", 'A "displayName" must be provided.'),
    ({"displayName": "x" * 101}, "Application_StringExceededLength",
     "The length of the string is 101, but it must be less than or equal to 100 characters."),
    ({"displayName": "A", "phoneNumber": "call me"}, "Application_FieldValidationException",
     "Phone No. must not contain letters"),
    ({"displayName": "A", "email": "not-an-email"}, "Application_DialogException",
     'The email address "not-an-email" is not valid.'),
    ({"displayName": "A", "currencyCode": "XYZ"}, "Application_DialogException",
     'The "currencyCode" does not match to a Currency.'),
    ({"displayName": "A", "paymentTermsId": "11111111-2222-3333-4444-555555555555"},
     "Application_DialogException", 'The "paymentTermsId" does not match to a Payment Terms.'),
    ({"displayName": "A", "country": "ZZ"}, "Internal_InvalidTableRelation",
     "cannot be found in the related table (Country/Region)"),
    ({"displayName": "A", "number": "C00010"}, "Internal_EntityWithSameKeyExists",
     "No.='C00010'"),
    ({"displayName": "A", "nickname": "x"}, "BadRequest",
     "The property 'nickname' does not exist on type 'Microsoft.NAV.customer'."),
    ({"displayName": "A", "balanceDue": 5}, "BadRequest_InvalidOperation",
     "Control 'balanceDue' is read-only"),
    ({"displayName": "A", "type": "Robot"}, "BadRequest", "Microsoft.NAV.contactType"),
])
def test_create_validation_texts(bc: Bc, body: dict[str, Any], code: str, text: str) -> None:
    before = len(bc.company.customers)
    assert text in assert_error(bc.call("POST", "customers", json=body), 400, code)
    assert len(bc.company.customers) == before


def test_code_fields_are_upper_cased_and_blocked_blank_accepted(bc: Bc) -> None:
    body = bc.create(displayName="Codes", number=" c-77 ", country="nl", blocked=" ")
    assert (body["number"], body["country"], body["blocked"]) == ("C-77", "NL", "_x0020_")
    body = bc.create(displayName="Blocked", blocked="All", currencyCode="EUR")
    assert body["blocked"] == "All"
    assert body["currencyCode"] == "EUR"
    assert body["currencyId"] == bc.company.ref_by_code("currencies", "EUR")["id"]


def test_patch_needs_a_current_if_match(bc: Bc) -> None:
    created = bc.create(displayName="Patch me")
    url = f"customers({created['id']})"
    message = assert_error(bc.call("PATCH", url, json={"displayName": "New"}), 400,
                           "BadRequest_InvalidToken")
    assert message.startswith("Could not validate the client concurrency token")
    # the ETag in the body instead of the header is the same error
    assert_error(bc.call("PATCH", url, json={"displayName": "New",
                                             "@odata.etag": created["@odata.etag"]}),
                 400, "BadRequest_InvalidToken")
    answer = bc.call("PATCH", url, json={"displayName": "New"},
                     headers={"If-Match": created["@odata.etag"]})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    updated = answer.json()
    assert updated["displayName"] == "New"
    assert updated["@odata.etag"] != created["@odata.etag"]
    assert _stamp(updated) >= _stamp(created)
    stale = bc.call("PATCH", url, json={"displayName": "Again"},
                    headers={"If-Match": created["@odata.etag"]})
    assert "Another user has already changed the record." in assert_error(
        stale, 409, "Request_EntityChanged")
    star = bc.call("PATCH", url, json={"city": "Ulm"}, headers={"If-Match": "*"})
    assert star.status_code == 200
    assert star.json()["displayName"] == "New"  # left-out properties keep their values
    blank = bc.call("PATCH", url, json={"displayName": ""}, headers={"If-Match": "*"})
    assert 'The blank "displayName" is not allowed.' in assert_error(
        blank, 400, "Application_DialogException")


def test_delete_then_get_is_404(bc: Bc) -> None:
    created = bc.create(displayName="Delete me")
    url = f"customers({created['id']})"
    stale = bc.call("DELETE", url, headers={"If-Match": 'W/"JzE5OzE7MDA7Jw=="'})
    assert_error(stale, 409, "Request_EntityChanged")
    answer = bc.call("DELETE", url)  # recorded: no If-Match needed
    assert answer.status_code == 204
    assert answer.content == b""
    assert_error(bc.call("GET", url), 404, "BadRequest_ResourceNotFound")


def test_read_only_intent_is_refused_on_writes(bc: Bc) -> None:
    answer = bc.call("POST", "customers", json={"displayName": "X"},
                     headers={"Data-Access-Intent": "ReadOnly"})
    assert_error(answer, 400, "BadRequest")
    assert bc.call("GET", "customers", headers={"Data-Access-Intent": "ReadOnly"}
                   ).status_code == 200


# -- published pages ---------------------------------------------------------------------


def test_customer_card_page_reads_and_patches_name_2_and_contact(bc: Bc) -> None:
    card = f"{bc.double.odata_url}/Company('CRONUS%20USA%2C%20Inc.')/Customer"
    rows = bc.call("GET", card, params={"$filter": "No eq 'C00020'"}).json()["value"]
    assert rows[0]["Name_2"] == "Sales office"
    assert rows[0]["ContactName"] == "Helen Ray"
    one = bc.call("GET", f"{card}('C00020')")
    assert one.status_code == 200
    record = one.json()
    assert record["@odata.context"].endswith("/Customer/$entity")
    assert_error(bc.call("PATCH", f"{card}('C00020')", json={"Name_2": "x"}), 400,
                 "BadRequest_InvalidToken")
    answer = bc.call("PATCH", f"{card}('C00020')", json={"Name_2": "Head office",
                                                          "ContactName": "Ann Lee"},
                     headers={"If-Match": record["@odata.etag"]})
    assert answer.status_code == 200, answer.text
    api_row = bc.customers(**{"$filter": "number eq 'C00020'"})[0]
    assert api_row["@odata.etag"] == answer.json()["@odata.etag"]
    assert_error(bc.call("PATCH", f"{card}('C00020')", json={"Last_Date_Modified": "x"},
                         headers={"If-Match": "*"}), 400, "BadRequest_InvalidOperation")
    assert_error(bc.call("GET", f"{card}('NOPE')"), 404, "Internal_RecordNotFound")


def test_country_and_template_pages(bc: Bc) -> None:
    company = f"{bc.double.odata_url}/Company(Id={bc.company.id})"
    greece = bc.call("GET", f"{company}/CountriesRegions('EL')").json()
    assert (greece["Code"], greece["ISO_Code"], greece["ISO_Numeric_Code"]) == ("EL", "GR",
                                                                                 "300")
    templates = bc.call("GET", f"{bc.double.odata_url}/CustomerTemplates",
                        params={"company": "'CRONUS USA, Inc.'"}).json()["value"]
    assert [t["Code"] for t in templates] == ["EU-RETAIL", "US-RETAIL"]
    assert templates[1]["Payment_Terms_Code"] == "14 DAYS"


def test_unpublished_page_is_not_found(bc_double_factory: Callable[..., BcDouble],
                                       http: httpx.Client) -> None:
    double = bc_double_factory(published={"Customer": "customer_card"})
    bc = Bc(double, http)
    url = f"{double.odata_url}/Company('CRONUS USA, Inc.')/CustomerTemplates"
    assert_error(bc.call("GET", url), 404, "BadRequest_NotFound", correlation=False)
    assert bc.call("GET", url.replace("CustomerTemplates", "Customer")).status_code == 200


# -- $batch ------------------------------------------------------------------------------


def _batch(bc: Bc, requests: list[dict[str, Any]], **headers: str) -> httpx.Response:
    return bc.call("POST", f"{bc.double.api_url}/$batch", json={"requests": requests},
                   headers=headers)


def test_batch_runs_each_operation_and_answers_per_operation(bc: Bc) -> None:
    path = f"companies({bc.company.id})/customers"
    answer = _batch(bc, [
        {"id": "1", "method": "POST", "url": path, "body": {"displayName": "B1"},
         "headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "POST", "url": path, "body": {"type": "Person"}},
        {"id": "3", "method": "GET", "url": "customers?$filter=displayName eq 'B1'",
         "headers": {"Company": "CRONUS USA, Inc."}},
        {"id": "4", "method": "GET", "url": f"{path}(None)"},
    ])
    assert answer.status_code == 200
    responses = answer.json()["responses"]
    assert [r["id"] for r in responses] == ["1", "2", "3", "4"]
    assert [r["status"] for r in responses] == [201, 400, 200, 404]
    assert all(GUID.match(r["atomicityGroup"]) for r in responses)
    assert responses[1]["body"]["error"]["message"] == 'A "displayName" must be provided.'
    assert responses[2]["body"]["value"][0]["displayName"] == "B1"
    assert responses[3]["body"] == {"error": {"code": "BadRequest_NotFound",
                                              "message": "Bad Request - Error in query syntax."}}
    assert bc.double.requests[-1].operations == 4


def test_batch_snapshot_isolation_rolls_back_on_failure(bc: Bc) -> None:
    path = f"companies({bc.company.id})/customers"
    before = len(bc.company.customers)
    answer = _batch(bc, [
        {"id": "1", "method": "POST", "url": path, "body": {"displayName": "Kept?"}},
        {"id": "2", "method": "POST", "url": path, "body": {"displayName": ""}},
    ], Isolation="snapshot")
    statuses = [r["status"] for r in answer.json()["responses"]]
    assert statuses == [201, 400]
    assert len(bc.company.customers) == before


def test_batch_over_100_operations_is_refused(bc: Bc) -> None:
    ops = [{"id": str(i), "method": "GET", "url": f"companies({bc.company.id})/customers"}
           for i in range(101)]
    message = assert_error(_batch(bc, ops), 500, "Unknown")
    assert "maximum number of '100' query operations" in message
    assert _batch(bc, ops[:100]).status_code == 200


def test_company_information(bc: Bc) -> None:
    rows = bc.call("GET", "companyInformation").json()["value"]
    assert len(rows) == 1
    assert (rows[0]["displayName"], rows[0]["country"], rows[0]["currencyCode"]) == (
        "CRONUS USA, Inc.", "US", "USD")
    assert rows[0]["currentFiscalYearStartDate"] == "2026-01-01"


def test_entity_set_with_company_parameter(bc: Bc) -> None:
    url = f"{bc.double.api_url}/customers"
    answer = bc.call("GET", url, params={"company": bc.company.id, "$select": "number"})
    assert answer.status_code == 200
    assert [r["number"] for r in answer.json()["value"]] == ["C00010", "C00020", "C00030"]


def test_snapshot_batch_failing_first_operation_answers_once(bc: Bc) -> None:
    path = f"companies({bc.company.id})/customers"
    answer = _batch(bc, [
        {"id": "1", "method": "POST", "url": path, "body": {"displayName": ""}},
        {"id": "2", "method": "POST", "url": path, "body": {"displayName": "Never"}},
    ], Isolation="snapshot")
    assert [r["id"] for r in answer.json()["responses"]] == ["1"]
    assert "Never" not in [r["displayName"] for r in bc.company.customers.values()]


def test_atomicity_groups_share_one_guid(bc: Bc) -> None:
    path = f"companies({bc.company.id})/customers"
    answer = _batch(bc, [
        {"id": "a", "atomicityGroup": "g1", "method": "POST", "url": path,
         "body": {"displayName": "G1"}},
        {"id": "b", "atomicityGroup": "g1", "method": "POST", "url": path,
         "body": {"displayName": "G2"}},
        {"id": "c", "method": "POST", "url": path, "body": {"displayName": "G3"}},
    ])
    groups = [r["atomicityGroup"] for r in answer.json()["responses"]]
    assert groups[0] == groups[1] != groups[2]


def test_rename_keeps_the_number_index(bc: Bc) -> None:
    created = bc.create(displayName="Renamed", number="R1")
    answer = bc.call("PATCH", f"customers({created['id']})", json={"number": "r2"},
                     headers={"If-Match": "*"})
    assert answer.json()["number"] == "R2"
    assert [r["id"] for r in bc.customers(**{"$filter": "number eq 'R2'"})] == [created["id"]]
    assert bc.customers(**{"$filter": "number eq 'R1'"}) == []
    card = f"{bc.double.odata_url}/Company('CRONUS USA, Inc.')/Customer('R2')"
    assert bc.call("GET", card).json()["Name"] == "Renamed"
    taken = bc.call("PATCH", f"customers({created['id']})", json={"number": "C00010"},
                    headers={"If-Match": "*"})
    assert_error(taken, 400, "Internal_EntityWithSameKeyExists")


def test_changes_to_reference_data_show_in_customers(bc: Bc) -> None:
    before = bc.customers(**{"$filter": "number eq 'C00010'"})[0]
    assert before["taxAreaDisplayName"] == "No sales tax"
    row = bc.company.ref_by_code("taxAreas", "NOTAX")
    assert row is not None
    row["displayName"] = "Tax free"
    # adding reference rows (seeding) renders customers anew
    bc.double.store.add_reference(bc.company, "taxAreas",
                                  {"code": "NOTAX2", "displayName": "Other"})
    after = bc.customers(**{"$filter": "number eq 'C00010'"})[0]
    assert after["taxAreaDisplayName"] == "Tax free"
