"""Writing customers to Business Central (``ErpWriter``).

* **Create**: ``POST customers`` with the given fields and the API-side values of the
  customer template (tax liable, currency, payment terms and method, tax area: codes turned
  into BC's ids); BC takes the number from its number series. Then, when the Customer Card
  source is available, one ``PATCH`` of the card for what only the card has (Name 2, Contact,
  the template's posting groups and language). ``create_customers`` sends many creates in
  JSON ``$batch`` requests of up to 100.
* **Update**: ``PATCH customers({id})`` with ``If-Match`` = the etag read; BC answers 409
  ``Request_EntityChanged`` when the customer changed since: that record fails with "changed
  in Business Central since it was read" and the next run reads it again.
* **No duplicates after a crash**: see journal.py.

Per-record refusals of BC (400 with its code and message, 404, 409) come back as
``ErpWriteResult(ok=False)`` naming BC's code, message and correlation id; those of the
record's own values (400 ``BadRequest``/``Application_*``/``Internal_*`` validation, 404: the
customer is gone, 413) are ``refused``: parked at once. A 409/412 (changed since it was read)
is not: the next run reads the record again. Authentication and configuration problems raise
``FatalError``; BC unreachable raises ``RetriableError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from custsync.engine.errors import RecordError, RecordRefused, RetriableError
from custsync.engine.masking import mask_text
from custsync.engine.model import CustomerTemplate, ErpCustomer
from custsync.engine.ports import ErpWriteResult

from .client import BcClient, BcHttpError, OutcomeUnknown, split_correlation
from .journal import CREATED, FAILED, CreateJournal
from .mapping import (
    API_FIELDS,
    BLANK_GUID,
    CARD_TEMPLATE_FIELDS,
    CUSTOMER_SELECT,
    PAGE_ONLY_FIELDS,
    api_body,
    odata_datetime,
    odata_string,
)
from .reader import BcErpReader

__all__ = ["BcErpWriter", "CreateItem"]

log = logging.getLogger("custsync.bc")

#: template field -> (customers property, lookup entity set or None)
_TEMPLATE_API = {
    "tax_liable": ("taxLiable", None),
    "currency_code": ("currencyCode", None),
    "payment_terms_code": ("paymentTermsId", "paymentTerms"),
    "payment_method_code": ("paymentMethodId", "paymentMethods"),
    "tax_area_code": ("taxAreaId", "taxAreas"),
}
_TEMPLATE_CARD = CARD_TEMPLATE_FIELDS
_CHANGED = "changed in Business Central since it was read"
_TRUE = frozenset({"true", "yes", "y", "1"})
#: answers that refuse the record as it is (validation, gone, too large): see RecordRefused
_REFUSED_STATUS = frozenset({400, 404, 413})


@dataclass(frozen=True, slots=True)
class CreateItem:
    """One create of :meth:`BcErpWriter.create_customers`."""

    key: str
    fields: Mapping[str, Any]
    template_code: str | None = None


@dataclass(slots=True)
class _Prepared:
    item: CreateItem
    body: dict[str, Any]
    card: dict[str, Any]
    notes: list[str]


class BcErpWriter(BcErpReader):
    def __init__(
        self, client: BcClient, journal: CreateJournal, now: Callable[[], datetime] | None = None
    ) -> None:
        super().__init__(client)
        self.journal = journal
        self._now = now or (lambda: datetime.now(UTC))
        self._templates: dict[str, CustomerTemplate] | None = None

    def close(self) -> None:
        try:
            self.journal.close()
        finally:
            super().close()

    # ---- create ----------------------------------------------------------------------------

    def create_customer(
        self, fields: Mapping[str, Any], template_code: str | None, idempotency_key: str
    ) -> ErpWriteResult:
        return next(self.create_customers([CreateItem(idempotency_key, fields, template_code)]))

    def create_customers(self, items: Iterable[CreateItem]) -> Iterator[ErpWriteResult]:
        """Create many customers, one result per item in order: single POSTs for one,
        ``$batch`` requests of ``batch_size`` for more."""
        chunk: list[CreateItem] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= self.settings.batch_size:
                yield from self._create_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._create_chunk(chunk)

    def _create_chunk(self, items: list[CreateItem]) -> Iterator[ErpWriteResult]:
        results: dict[int, ErpWriteResult] = {}
        prepared: dict[int, _Prepared] = {}
        for i, item in enumerate(items):
            done = self._already_created(item.key) if item.key else None
            if done is not None:
                results[i] = done
                continue
            try:
                prepared[i] = self._prepare(item)
            except RecordError as exc:
                refused = isinstance(exc, RecordRefused)
                results[i] = ErpWriteResult(False, message=exc.message, refused=refused)
        if prepared:
            keyed = [p for p in prepared.values() if p.item.key]
            self.journal.sent(
                {p.item.key: p.item.fields for p in keyed},
                self._now(),
                {p.item.key: p.card for p in keyed},
            )
            if len(prepared) == 1:
                ((i, p),) = prepared.items()
                results[i] = self._post_one(p)
            else:
                results.update(self._post_batch(prepared))
        for i in range(len(items)):
            yield results[i]

    def _already_created(self, key: str) -> ErpWriteResult | None:
        found = self.find_by_idempotency_key(key)
        if found is None:
            return None
        return ErpWriteResult(True, found.no, "already created (same idempotency key)", found.etag)

    def _split(self, fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``customers`` properties and the Customer Card values of custsync ``fields``
        (template fields included: codes become BC's ids); RecordError for an unknown field
        or a code BC does not have."""
        unknown = sorted(
            set(fields)
            - set(API_FIELDS)
            - set(PAGE_ONLY_FIELDS)
            - set(_TEMPLATE_API)
            - set(_TEMPLATE_CARD)
        )
        if unknown:
            raise RecordRefused(f"unknown customer field(s): {', '.join(unknown)}")
        body = api_body({k: v for k, v in fields.items() if k != "no" or v})
        card: dict[str, Any] = {}
        for name, value in fields.items():
            if name in _TEMPLATE_API:
                prop, entity_set = _TEMPLATE_API[name]
                body[prop] = self._template_value(name, value, entity_set)
            elif name in PAGE_ONLY_FIELDS or name in _TEMPLATE_CARD:
                card[name] = "" if value is None else value
        return body, card

    def _prepare(self, item: CreateItem) -> _Prepared:
        notes: list[str] = []
        body, card = self._split(item.fields)
        card = {k: v for k, v in card.items() if v}
        if item.template_code:
            template = self._template(item.template_code, notes)
            if template is not None:
                for name, value in template.fields.items():
                    if name in _TEMPLATE_API:
                        prop, entity_set = _TEMPLATE_API[name]
                        if prop not in body:
                            body[prop] = self._template_value(name, value, entity_set)
                    elif name in _TEMPLATE_CARD:
                        card.setdefault(name, value)
        if card and not self.has_source("customer_card"):
            notes.append(
                f"{', '.join(sorted(card))} not written: "
                + self.unavailable().get("customer_card", "Customer Card unavailable")
            )
            card = {}
        return _Prepared(item, body, card, notes)

    def _template(self, code: str, notes: list[str]) -> CustomerTemplate | None:
        if self._templates is None:
            self._templates = {t.code: t for t in self.reference().templates}
        if not self.has_source("customer_templates"):
            notes.append(
                f"template {code!r} not applied ("
                + self.unavailable().get("customer_templates", "templates unavailable")
                + "); BC applied its own Config. Template selection"
            )
            return None
        template = self._templates.get(code)
        if template is None:
            raise RecordError(
                f"unknown customer template {code!r} (not in Business Central's Customer Templ.)"
            )
        return template

    def _template_value(self, name: str, value: Any, entity_set: str | None) -> Any:
        if entity_set is None:
            if name == "tax_liable":
                return value if isinstance(value, bool) else str(value).lower() in _TRUE
            return "" if value is None else str(value)
        if value in (None, ""):
            return BLANK_GUID
        ids = {code: ident for ident, code in self.lookup_codes(entity_set).items()}
        if str(value) not in ids:
            raise RecordError(
                f"template value {name} {value!r} does not exist in Business Central ({entity_set})"
            )
        return ids[str(value)]

    def _post_one(self, p: _Prepared) -> ErpWriteResult:
        path = self._company_path("customers")
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                response = self.client.request("POST", path, json_body=p.body)
            except OutcomeUnknown as exc:
                found = self._recover(p.item.key)
                if found is not None:
                    return self._after_create(p, found.no, found.etag)
                if attempt >= self.settings.max_attempts:
                    raise RetriableError(
                        f"{exc.message}; gave up after {attempt} attempts"
                    ) from exc
                log.warning("%s; not created, sending again", exc.message)
                continue
            except BcHttpError as exc:
                if exc.status in (400, 404, 409, 412, 413):
                    self.journal.settle(p.item.key, FAILED)
                    refused = exc.status in _REFUSED_STATUS
                    return ErpWriteResult(False, message=exc.brief, refused=refused)
                raise
            return self._after_create(p, *self._created(response.json()))
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_batch(self, prepared: Mapping[int, _Prepared]) -> dict[int, ErpWriteResult]:
        """One JSON ``$batch`` (no snapshot isolation: each create stands alone); creates
        the batch answers 429/5xx for are sent again in the next batch."""
        results: dict[int, ErpWriteResult] = {}
        pending = dict(prepared)
        path = self._company_path("customers")
        for attempt in range(1, self.settings.max_attempts + 1):
            requests = [
                {
                    "id": str(i),
                    "method": "POST",
                    "url": path,
                    "headers": {"Content-Type": "application/json"},
                    "body": p.body,
                }
                for i, p in pending.items()
            ]
            try:
                answer = self.client.request("POST", "$batch", json_body={"requests": requests})
                responses = answer.json().get("responses", [])
            except OutcomeUnknown as exc:
                log.warning("%s; looking the batch's creates up", exc.message)
                for i, p in list(pending.items()):
                    found = self._recover(p.item.key)
                    if found is not None:
                        results[i] = self._after_create(p, found.no, found.etag)
                        del pending[i]
                if attempt >= self.settings.max_attempts and pending:
                    raise RetriableError(
                        f"{exc.message}; gave up after {attempt} attempts"
                    ) from exc
                continue
            by_id = {str(r.get("id")): r for r in responses if isinstance(r, dict)}
            ordered = list(pending)
            retry: dict[int, _Prepared] = {}
            for position, i in enumerate(ordered):
                r = by_id.get(str(i))
                if r is None and position < len(responses) and not responses[position].get("id"):
                    r = responses[position]  # answers without ids: by position
                p = pending[i]
                status = int(r.get("status", 0)) if r else 0
                if r is None or status in (408, 429, 502, 503, 504) or status == 0:
                    if status in (408, 502, 504) or r is None:
                        found = self._recover(p.item.key)
                        if found is not None:
                            results[i] = self._after_create(p, found.no, found.etag)
                            continue
                    if status == 429:
                        self.client._count("throttled")
                    retry[i] = p
                elif status < 300:
                    results[i] = self._after_create(p, *self._created(r.get("body") or {}))
                else:
                    self.journal.settle(p.item.key, FAILED)
                    refused = status in _REFUSED_STATUS
                    results[i] = ErpWriteResult(False, message=_inner_error(r), refused=refused)
            pending = retry
            if not pending:
                return results
            self.client._backoff(attempt, None)
        for i, p in pending.items():
            results[i] = ErpWriteResult(
                False,
                message="Business Central kept refusing the batch (429/5xx); retried next run",
            )
            self.journal.settle(p.item.key, FAILED)
        return results

    def _created(self, entity: Mapping[str, Any]) -> tuple[str, str | None]:
        """The number and etag of a customer BC just created (its id is remembered)."""
        self.remember(entity)
        return str(entity.get("number") or ""), str(entity.get("@odata.etag") or "") or None

    def _after_create(self, p: _Prepared, no: str, etag: str | None) -> ErpWriteResult:
        """Record the create, then write what only the card has."""
        if p.item.key:
            self.journal.settle(p.item.key, CREATED, no)
        notes = list(p.notes)
        if p.card:
            try:
                self._patch_card(no, p.card)
                etag = self._etag(no)
            except BcHttpError as exc:
                notes.append(f"{', '.join(sorted(p.card))} not written: {exc.brief}")
        return ErpWriteResult(True, no, "; ".join(["created", *notes]), etag)

    # ---- update ----------------------------------------------------------------------------

    def update_customer(
        self, no: str, changes: Mapping[str, Any], expected_etag: str | None = None
    ) -> ErpWriteResult:
        if "no" in changes and changes["no"] != no:
            return ErpWriteResult(False, no, "the customer number cannot be changed", refused=True)
        try:
            body, card = self._split({k: v for k, v in changes.items() if k != "no"})
        except RecordError as exc:
            return ErpWriteResult(False, no, exc.message, refused=isinstance(exc, RecordRefused))
        ident = self._ids.get(no)
        if ident is None:
            entity = self._entity_by_number(no)
            if entity is None:
                return ErpWriteResult(
                    False, no, f"customer {no} does not exist in Business Central", refused=True
                )
            ident = str(entity["id"])
        notes: list[str] = []
        if card and not self.has_source("customer_card"):
            notes.append(
                f"{', '.join(sorted(card))} not written: "
                + self.unavailable().get("customer_card", "Customer Card unavailable")
            )
            card = {}
        etag = expected_etag
        if body:
            path = self._company_path(f"customers({ident})")
            headers = {"If-Match": expected_etag or "*"}
            try:
                response = self.client.request("PATCH", path, json_body=body, headers=headers)
            except OutcomeUnknown:
                response = None  # sent, answer lost: compare what BC has now
            except BcHttpError as exc:
                if exc.status == 409 or exc.code == "Request_EntityChanged":
                    return ErpWriteResult(False, no, f"customer {no} was {_CHANGED} ({exc.brief})")
                if exc.status in (400, 404, 412):
                    return ErpWriteResult(
                        False, no, exc.brief, refused=exc.status in _REFUSED_STATUS
                    )
                raise
            if response is None:
                current = self.get_customer(no)
                if current is None or any(
                    str(current.get(k)) != str(v) for k, v in changes.items() if k in API_FIELDS
                ):
                    raise RetriableError(
                        f"Business Central: the update of customer {no} was sent and its "
                        "answer lost; it did not take effect"
                    )
                etag = current.etag
            else:
                etag = str(response.json().get("@odata.etag") or "") or None
        elif expected_etag is not None and card:
            current_etag = self._etag(no)
            if current_etag != expected_etag:
                return ErpWriteResult(False, no, f"customer {no} was {_CHANGED}")
        if card:
            try:
                self._patch_card(no, card)
            except BcHttpError as exc:
                return ErpWriteResult(
                    False,
                    no,
                    f"{', '.join(sorted(card))}: {exc.brief}",
                    refused=exc.status in _REFUSED_STATUS,
                )
            etag = self._etag(no)
        message = "; ".join(["updated", *notes]) if body or card else "nothing to change"
        return ErpWriteResult(True, no, message, etag)

    # ---- the Customer Card --------------------------------------------------------------

    def _patch_card(self, no: str, values: Mapping[str, Any]) -> None:
        source = self.settings.pages["customer_card"]
        path = source.url_path(str(self.company.get("name", "")), str(self.company["id"]))
        body = {source.fields[k]: v for k, v in values.items() if k in source.fields}
        self.client.request(
            "PATCH", f"{path}({odata_string(no)})", json_body=body, headers={"If-Match": "*"}
        )

    def _etag(self, no: str) -> str | None:
        entity = self._entity_by_number(no)
        return str(entity.get("@odata.etag") or "") or None if entity else None

    # ---- crash recovery ------------------------------------------------------------------

    def _matching(self, params: Mapping[str, str], want: Mapping[str, str]) -> list[dict[str, Any]]:
        matches = []
        for entity in self.client.iter_collection(self._company_path("customers"), params):
            got = {name: str(entity.get(API_FIELDS[name]) or "").strip() for name in want}
            if all(got[n].casefold() == want[n].casefold() for n in want):
                matches.append(entity)
        return matches

    def find_by_idempotency_key(self, key: str) -> ErpCustomer | None:
        """The customer created with ``key`` (see journal.py); asks BC only for keys that
        were sent."""
        entry = self.journal.get(key) if key else None
        if entry is None or entry.status == FAILED:
            return None
        if entry.status == CREATED:
            return self.get_customer(entry.number) if entry.number else None
        return self._recover(key)

    def _recover(self, key: str) -> ErpCustomer | None:
        """Look a create whose answer was lost up in BC by its fingerprint."""
        entry = self.journal.get(key) if key else None
        if entry is None:
            return None
        want = entry.fingerprint
        since = entry.sent_at - timedelta(seconds=max(self.settings.modified_overlap_seconds, 60))
        filters = [f"lastModifiedDateTime ge {odata_datetime(since)}"]
        if want.get("name"):
            filters.append(f"displayName eq {odata_string(want['name'])}")
        params = {"$select": CUSTOMER_SELECT, "$filter": " and ".join(filters)}
        matches = self._matching(params, want)
        in_flight = entry.sent_at + timedelta(seconds=self.settings.timeout_seconds)
        if not matches and self._now() < in_flight:
            # the POST may still be running in BC (its client died or gave up): look again
            # once BC must have finished it
            self.client._sleep(max(0.0, (in_flight - self._now()).total_seconds()))
            matches = self._matching(params, want)
        if not matches:
            self.journal.settle(key, FAILED)
            return None
        if len(matches) > 1:
            numbers = ", ".join(str(m.get("number")) for m in matches)
            raise RecordRefused(  # a person must pick one: parked at once
                f"a create sent before an interruption matches several Business Central "
                f"customers ({numbers}): link the right one by hand",
                record=key,
            )
        no = str(matches[0].get("number"))
        self.remember(matches[0])
        if entry.card and self.has_source("customer_card"):
            self._patch_card(no, entry.card)  # the crash may have come before it
        self.journal.settle(key, CREATED, no)
        return self.get_customer(no) if entry.card else self._one(matches[0])


def _inner_error(response: Mapping[str, Any]) -> str:
    body = response.get("body")
    error = body.get("error") if isinstance(body, Mapping) else None
    status = response.get("status")
    if isinstance(error, Mapping):
        message, correlation = split_correlation(mask_text(str(error.get("message") or "")))
        where = f" (correlation id {correlation})" if correlation else ""
        return f"{error.get('code') or f'HTTP{status}'}: {message}{where}"
    return f"HTTP {status} in $batch"
