"""A tiny in-process Business Central for the connector's unit tests (httpx.MockTransport).

Only what the unit tests of client behaviour need (token, companies, customers with etags and
paging, ``$batch``, a Customer Card page) with hooks to inject answers. The tests of the
connector's behaviour against BC run against the BC double (tests/fixtures_bc.py).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

COMPANY_ID = "11111111-2222-3333-4444-555555555555"
BASE = "http://bc.test/v2.0/tenant1/sandbox"
URL = "bc+http://bc.test/v2.0/tenant1/sandbox"
OPTIONS = {"company": "CRONUS", "client_id": "app1", "client_secret_env": "BC_SECRET"}
ENV = {"BC_SECRET": "s3cret-value"}

Hook = Callable[[httpx.Request], httpx.Response | None]


def _error(status: int, code: str, message: str, request_id: str = "") -> httpx.Response:
    rid = request_id or str(uuid.uuid4())
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": f"{message}  CorrelationId:  {rid}."}},
        headers={"request-id": rid},
    )


class FakeBc:
    def __init__(self) -> None:
        self.customers: dict[str, dict[str, Any]] = {}
        self.cards: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.hooks: list[Hook] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        self.clock = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        self._numbers = itertools.count(1)
        self.page_size = 2
        self.card_published = True

    # -- data ------------------------------------------------------------------------------

    def tick(self) -> str:
        self.clock += timedelta(seconds=1)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def add(self, **values: Any) -> dict[str, Any]:
        ident = str(uuid.uuid4())
        number = values.pop("number", "") or f"C{next(self._numbers):05d}"
        entity = {
            "id": ident,
            "number": number,
            "displayName": "",
            "addressLine1": "",
            "addressLine2": "",
            "city": "",
            "state": "",
            "country": "",
            "postalCode": "",
            "phoneNumber": "",
            "email": "",
            "taxLiable": False,
            "taxAreaId": "00000000-0000-0000-0000-000000000000",
            "currencyId": "00000000-0000-0000-0000-000000000000",
            "currencyCode": "USD",
            "paymentTermsId": "00000000-0000-0000-0000-000000000000",
            "paymentMethodId": "00000000-0000-0000-0000-000000000000",
            **values,
        }
        self._touch(entity)
        self.customers[ident] = entity
        self.cards[number] = {"No": number, "Name_2": "", "ContactName": ""}
        return entity

    def _touch(self, entity: dict[str, Any]) -> None:
        entity["lastModifiedDateTime"] = self.tick()
        entity["@odata.etag"] = f'W/"{uuid.uuid4().hex}"'

    def by_number(self, number: str) -> dict[str, Any]:
        return next(e for e in self.customers.values() if e["number"] == number)

    # -- transport ---------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for hook in list(self.hooks):
            answer = hook(request)
            if answer is not None:
                return answer
        path = unquote(request.url.path)
        if path.endswith("/oauth2/v2.0/token"):
            form = parse_qs(request.content.decode())
            if form.get("client_secret") != [ENV["BC_SECRET"]]:
                return httpx.Response(
                    401, json={"error": "invalid_client", "error_description": "AADSTS7000215"}
                )
            self.tokens_issued += 1
            token = f"token{self.tokens_issued}"
            self.valid_tokens.add(token)
            return httpx.Response(200, json={"access_token": token, "expires_in": 3599})
        if request.headers.get("Authorization", "")[7:] not in self.valid_tokens:
            return _error(401, "Authentication_InvalidCredentials", "The server has rejected")
        api = "/v2.0/tenant1/sandbox/api/v2.0/"
        if path == api + "companies":
            return self._collection([{"id": COMPANY_ID, "name": "CRONUS"}], request)
        prefix = f"{api}companies({COMPANY_ID})/"
        if path == api + "$batch":
            return self._batch(request)
        if path.startswith(prefix):
            return self._company(
                request, path[len(prefix) :], json.loads(request.content or b"null")
            )
        if "/ODataV4/" in path and self.card_published:
            return self._card(request, path)
        return _error(404, "BadRequest_NotFound", f"No HTTP resource was found for '{path}'.")

    def _collection(self, rows: list[dict[str, Any]], request: httpx.Request) -> httpx.Response:
        query = parse_qs(urlsplit(str(request.url)).query)
        skip = int(query.get("$skiptoken", ["0"])[0])
        page = rows[skip : skip + self.page_size]
        body: dict[str, Any] = {"value": page}
        if skip + self.page_size < len(rows):
            url = request.url.copy_remove_param("$skiptoken").copy_add_param(
                "$skiptoken", str(skip + self.page_size)
            )
            body["@odata.nextLink"] = str(url)
        return httpx.Response(200, json=body)

    def _company(self, request: httpx.Request, rest: str, body: Any) -> httpx.Response:
        if rest == "companyInformation":
            return self._collection([{"displayName": "CRONUS USA", "country": "US"}], request)
        if rest in ("paymentTerms", "paymentMethods", "taxAreas", "countriesRegions"):
            return self._collection(
                [{"id": "pt-1", "code": "14 DAYS", "displayName": "US"}], request
            )
        if rest == "customers" and request.method == "GET":
            rows = sorted(self.customers.values(), key=lambda e: e["number"])
            flt = parse_qs(urlsplit(str(request.url)).query).get("$filter", [""])[0]
            return self._collection([r for r in rows if _matches(r, flt)], request)
        if rest == "customers" and request.method == "POST":
            if not body.get("displayName"):
                return _error(
                    400, "Application_DialogException", 'A "displayName" must be provided.'
                )
            entity = self.add(**body)
            return httpx.Response(201, json=entity)
        found = re.fullmatch(r"customers\(([^)]+)\)", rest)
        if found and request.method == "PATCH":
            entity = self.customers.get(found.group(1))
            if entity is None:
                return _error(404, "BadRequest_ResourceNotFound", "Resource not found")
            match = request.headers.get("If-Match")
            if not match:
                return _error(400, "BadRequest_InvalidToken", "Could not validate the token.")
            if match != "*" and match != entity["@odata.etag"]:
                return _error(
                    409, "Request_EntityChanged", "Another user has already changed the record."
                )
            entity.update(body)
            self._touch(entity)
            return httpx.Response(200, json=entity)
        return _error(404, "BadRequest_NotFound", "No HTTP resource")

    def _card(self, request: httpx.Request, path: str) -> httpx.Response:
        keyed = re.search(r"/Customer\('([^']*)'\)$", path)
        if keyed and request.method == "PATCH":
            card = self.cards[keyed.group(1)]
            card.update(json.loads(request.content))
            self._touch(self.by_number(keyed.group(1)))
            return httpx.Response(200, json=card)
        flt = parse_qs(urlsplit(str(request.url)).query).get("$filter", [""])[0]
        rows = [c for _, c in sorted(self.cards.items()) if _matches(c, flt)]
        return self._collection(rows, request)

    def _batch(self, request: httpx.Request) -> httpx.Response:
        answers = []
        for inner in json.loads(request.content)["requests"]:
            fake = httpx.Request(
                inner["method"],
                f"{BASE}/api/v2.0/{inner['url']}",
                headers={
                    **inner.get("headers", {}),
                    "Authorization": request.headers["Authorization"],
                },
                content=json.dumps(inner.get("body")).encode(),
            )
            answer = self.handle(fake)
            self.requests.pop()
            answers.append({"id": inner["id"], "status": answer.status_code, "body": answer.json()})
        return httpx.Response(200, json={"responses": answers})


def _matches(row: dict[str, Any], flt: str) -> bool:
    if not flt:
        return True
    for alternative in flt.split(" or "):
        ok = True
        for clause in alternative.split(" and "):
            field, op, literal = clause.strip().split(" ", 2)
            value = literal[1:-1].replace("''", "'") if literal.startswith("'") else literal
            have = str(row.get(field, ""))
            ok = (
                ok
                and {
                    "eq": have == value,
                    "gt": have > value,
                    "ge": have >= value,
                    "le": have <= value,
                    "lt": have < value,
                }[op]
            )
        if ok:
            return True
    return False
