"""Writing customers to Business Central (``ErpWriter``).

* **Create**: ``POST customers`` with the given fields and the API-side values of the
  customer template (tax liable, currency, payment terms and method, tax area: codes turned
  into BC's ids); BC takes the number from its number series. Then, when the Customer Card
  source is available, one ``PATCH`` of the card for what only the card has (Name 2, Contact,
  the template's posting groups and language). ``create_customers`` sends many creates in
  JSON ``$batch`` requests of up to 100 (below).
* **Update**: ``PATCH customers({id})`` with ``If-Match`` = the etag read; BC answers 409
  ``Request_EntityChanged`` when the customer changed since: that record fails with "changed
  in Business Central since it was read" and the next run reads it again.
  ``update_customers`` sends many in ``$batch`` requests, each PATCH with its own
  ``If-Match``.
* **Batches** (``create_customers``, ``update_customers``): per 100 customers one API
  ``$batch`` of the POSTs/PATCHes, then one ``$batch`` of Customer Card PATCHes on the
  card's own service (it is another OData service, and addressed by the number BC gives a
  new customer, so it cannot depend on the POST inside the first batch) and one API
  ``$batch`` of GETs for the etags BC has after the card write.
* **No duplicates after a crash**: see journal.py.

Per-record refusals of BC (400 with its code and message, 404, 409) come back as
``ErpWriteResult(ok=False)`` naming BC's code, message and correlation id; those of the
record's own values (400 ``BadRequest``/``Application_*``/``Internal_*`` validation, 404: the
customer is gone, 413) are ``refused``: parked at once. A 409/412 (changed since it was read)
is not: the next run reads the record again. Authentication and configuration problems raise
``FatalError``; BC unreachable raises ``RetriableError``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

import httpx
from custsync.engine.errors import RecordError, RecordRefused, RetriableError
from custsync.engine.masking import mask_text
from custsync.engine.model import CustomerTemplate, ErpCustomer
from custsync.engine.ports import ErpCreate, ErpUpdate, ErpWriteResult

from .client import BcClient, BcHttpError, OutcomeUnknown, split_correlation
from .journal import CREATED, FAILED, POSTED, CreateJournal
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
_T = TypeVar("_T")

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
_CARD_DUE = "Business Central kept refusing the Customer Card write (429/5xx)"
_TRUE = frozenset({"true", "yes", "y", "1"})
#: answers that refuse the record as it is (validation, gone, too large): see RecordRefused
_REFUSED_STATUS = frozenset({400, 404, 413})


#: one create of :meth:`BcErpWriter.create_customers` (the port's record)
CreateItem: TypeAlias = ErpCreate


@dataclass(slots=True)
class _Prepared:
    item: CreateItem
    body: dict[str, Any]
    card: dict[str, Any]
    notes: list[str]


@dataclass(slots=True)
class _Update:
    """One update of :meth:`BcErpWriter.update_customers`: the API changes, the card values,
    the customer's id; ``etag`` once written."""

    item: ErpUpdate
    no: str
    ident: str
    body: dict[str, Any]
    card: dict[str, Any]
    notes: list[str]
    etag: str | None


@dataclass(slots=True)
class _Created:
    """A customer BC created for a :class:`_Prepared`; ``card_done`` once its Customer Card
    values are written (or it has none)."""

    p: _Prepared
    no: str
    etag: str | None
    card_done: bool


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
        for chunk in _batches(items, self.settings.batch_size):
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
                posted = {i: self._post_one(p)}
            else:
                posted = self._post_batch(prepared)
            created = {i: r for i, r in posted.items() if isinstance(r, _Created)}
            results.update({i: r for i, r in posted.items() if isinstance(r, ErpWriteResult)})
            results.update(self._finish_creates(created))
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
            target = self._api_target(name)
            if target is not None:
                prop, entity_set = target
                body[prop] = self._template_value(name, value, entity_set)
            elif name in PAGE_ONLY_FIELDS or name in _TEMPLATE_CARD or name in _TEMPLATE_API:
                card[name] = "" if value is None else value
        return body, card

    def _api_target(self, name: str) -> tuple[str, str | None] | None:
        """The ``customers`` property (and its look-up entity set) that carries template or
        customer field ``name``; None where only the Customer Card has it. In a VAT company
        BC's ``taxAreaId`` is the VAT Bus. Posting Group (its ``taxAreas`` are VAT groups, as
        the reader reads it), so ``vat_bus_posting_group`` goes there and the Tax Area Code
        to the card; elsewhere ``taxAreaId`` is the tax area."""
        if name in ("tax_area_code", "vat_bus_posting_group") and self._vat_groups():
            return ("taxAreaId", "taxAreas") if name == "vat_bus_posting_group" else None
        return _TEMPLATE_API.get(name)

    def _prepare(self, item: CreateItem) -> _Prepared:
        notes: list[str] = []
        body, card = self._split(item.fields)
        card = {k: v for k, v in card.items() if v}
        if item.template_code:
            template = self._template(item.template_code, notes)
            if template is not None:
                for name, value in template.fields.items():
                    target = self._api_target(name)
                    if target is not None:
                        prop, entity_set = target
                        if prop not in body:
                            body[prop] = self._template_value(name, value, entity_set)
                    elif name in _TEMPLATE_CARD:
                        card.setdefault(name, value)
                    elif name in _TEMPLATE_API and value not in (None, ""):
                        card.setdefault(name, value)  # a VAT company's Tax Area Code
        return _Prepared(item, body, self._card_or_note(card, notes), notes)

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

    def _post_one(self, p: _Prepared) -> _Created | ErpWriteResult:
        path = self._company_path("customers")
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                response = self.client.request("POST", path, json_body=p.body)
            except OutcomeUnknown as exc:
                found = self._recover(p.item.key)
                if found is not None:
                    return _Created(p, found.no, found.etag, card_done=True)
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
            return self._posted(p, response.json())
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_batch(
        self, prepared: Mapping[int, _Prepared]
    ) -> dict[int, _Created | ErpWriteResult]:
        """One JSON ``$batch`` (no snapshot isolation: each create stands alone); creates
        the batch answers 429/5xx for are sent again in the next batch."""
        results: dict[int, _Created | ErpWriteResult] = {}
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
                    found = self._recover_one(p)
                    if found is not None:
                        results[i] = found
                        del pending[i]
                if attempt >= self.settings.max_attempts and pending:
                    raise RetriableError(
                        f"{exc.message}; gave up after {attempt} attempts"
                    ) from exc
                continue
            retry: dict[int, _Prepared] = {}
            for i, r in _by_request(list(pending), responses).items():
                p = pending[i]
                status = int(r.get("status", 0)) if r else 0
                if r is None or status in (408, 429, 502, 503, 504) or status == 0:
                    if status in (408, 502, 504) or r is None:
                        found = self._recover_one(p)
                        if found is not None:
                            results[i] = found
                            continue
                    if status == 429:
                        self.client._count("throttled")
                    retry[i] = p
                elif status < 300:
                    results[i] = self._posted(p, r.get("body") or {})
                else:
                    self.journal.settle(p.item.key, FAILED)
                    refused = status in _REFUSED_STATUS
                    results[i] = ErpWriteResult(
                        False, message=_inner_error(r, answer), refused=refused
                    )
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

    def _recover_one(self, p: _Prepared) -> _Created | ErpWriteResult | None:
        """A create of a batch whose answer was lost, looked up (see :meth:`_recover`); a
        look-up that matches several customers fails that record alone."""
        try:
            found = self._recover(p.item.key)
        except RecordError as exc:
            return ErpWriteResult(
                False, message=exc.message, refused=isinstance(exc, RecordRefused)
            )
        return None if found is None else _Created(p, found.no, found.etag, card_done=True)

    def _posted(self, p: _Prepared, entity: Mapping[str, Any]) -> _Created:
        """BC created the customer: its number is journaled (the card may still be due)."""
        self.remember(entity)
        no = str(entity.get("number") or "")
        etag = str(entity.get("@odata.etag") or "") or None
        if p.item.key:
            self.journal.settle(p.item.key, POSTED if p.card else CREATED, no)
        return _Created(p, no, etag, card_done=not p.card)

    def _finish_creates(self, created: Mapping[int, _Created]) -> dict[int, ErpWriteResult]:
        """Write what only the card has (one PATCH each for a single create, else one
        ``$batch`` of card PATCHes and one of GETs for the new etags), then the results."""
        due = {i: c for i, c in created.items() if not c.card_done}
        notes: dict[int, str] = {}
        if len(due) == 1 or (due and self._card_batch_root() is None):
            for i, c in due.items():
                try:
                    self._patch_card(c.no, c.p.card)
                    c.etag = self._etag(c.no)
                except BcHttpError as exc:
                    notes[i] = f"{', '.join(sorted(c.p.card))} not written: {exc.brief}"
                self._card_settled(c)
        elif due:
            refused, still_due = self._patch_cards({i: (c.no, c.p.card) for i, c in due.items()})
            for i, c in due.items():
                if i in still_due:
                    notes[i] = _CARD_DUE
                    continue
                if i in refused:
                    notes[i] = f"{', '.join(sorted(c.p.card))} not written: {refused[i][0]}"
                self._card_settled(c)
            written = [c for i, c in due.items() if i not in notes]
            etags = self._etags([c.no for c in written])
            for c in written:
                c.etag = etags.get(c.no, c.etag)
        results = {}
        for i, c in created.items():
            if notes.get(i) == _CARD_DUE:
                # the customer exists, its card values are still due: failed, so that the
                # next run's look-up (journal: posted) writes them and links it
                results[i] = ErpWriteResult(
                    False,
                    c.no,
                    f"created in Business Central as {c.no}, but "
                    f"{', '.join(sorted(c.p.card))} could not be written yet ({_CARD_DUE}); "
                    "the next run writes them and links the customer",
                )
                continue
            extra = [notes[i]] if i in notes else []
            results[i] = ErpWriteResult(
                True, c.no, "; ".join(["created", *c.p.notes, *extra]), c.etag
            )
        return results

    def _card_settled(self, c: _Created) -> None:
        if c.p.item.key:
            self.journal.settle(c.p.item.key, CREATED, c.no)

    def _card_batch_root(self) -> tuple[str, str] | None:
        """The ``$batch`` URL of the service the Customer Card source is on and the card's
        URL relative to that service (``ODataV4/$batch``, ``Company('...')/Customer``);
        None when the source's path names no company segment."""
        source = self.settings.pages["customer_card"]
        path = source.url_path(str(self.company.get("name", "")), str(self.company["id"]))
        parts = path.split("/")
        for n, part in enumerate(parts):
            if part.startswith(("Company(", "companies(")) and n > 0:
                return "/".join(parts[:n]) + "/$batch", "/".join(parts[n:])
        return None

    def _patch_cards(
        self, values: Mapping[int, tuple[str, Mapping[str, Any]]]
    ) -> tuple[dict[int, tuple[str, bool]], set[int]]:
        """Customer Card PATCHes (number, card values) as ``$batch`` requests of
        ``batch_size`` on the card's service (a PATCH with ``If-Match: *`` can be sent again
        safely). Returns BC's refusals (its code and message, and whether the record is
        refused as it is: 400/404/413) and those still refused with 429/5xx after the
        retries (still due); the others were written."""
        root = self._card_batch_root()
        assert root is not None
        batch_url, card_url = root
        fields = self.settings.pages["customer_card"].fields
        refused: dict[int, tuple[str, bool]] = {}
        pending = dict(values)
        size = self.settings.batch_size
        for attempt in range(1, self.settings.max_attempts + 1):
            retry: dict[int, tuple[str, Mapping[str, Any]]] = {}
            keys = list(pending)
            for start in range(0, len(keys), size):
                part = keys[start : start + size]
                requests = [
                    {
                        "id": str(i),
                        "method": "PATCH",
                        "url": f"{card_url}({odata_string(pending[i][0])})",
                        "headers": {"Content-Type": "application/json", "If-Match": "*"},
                        "body": {fields[k]: v for k, v in pending[i][1].items() if k in fields},
                    }
                    for i in part
                ]
                try:
                    answer = self.client.request(
                        "POST", batch_url, json_body={"requests": requests}, write=True
                    )
                    responses = answer.json().get("responses", [])
                except OutcomeUnknown as exc:
                    log.warning("%s; the card writes are sent again", exc.message)
                    retry.update({i: pending[i] for i in part})
                    continue
                for i, r in _by_request(part, responses).items():
                    status = int(r.get("status", 0)) if r else 0
                    if r is None or status in (0, 408, 429, 500, 502, 503, 504):
                        retry[i] = pending[i]
                    elif status >= 300:
                        refused[i] = (_inner_error(r, answer), status in _REFUSED_STATUS)
            pending = retry
            if not pending:
                break
            self.client._backoff(attempt, None)
        return refused, set(pending)

    def _etags(self, numbers: list[str]) -> dict[str, str]:
        """The current etags of customers just written, by number: ``$batch`` GETs of
        ``batch_size``. A customer missing from the answer keeps the etag it had."""
        found: dict[str, str] = {}
        size = self.settings.batch_size
        with_ids = [no for no in numbers if no in self._ids]
        for start in range(0, len(with_ids), size):
            part = with_ids[start : start + size]
            requests = [
                {
                    "id": str(n),
                    "method": "GET",
                    "url": self._company_path(f"customers({self._ids[no]})") + "?$select=id,number",
                }
                for n, no in enumerate(part)
            ]
            try:
                answer = self.client.request(
                    "POST", "$batch", json_body={"requests": requests}, write=False
                )
            except (BcHttpError, RetriableError) as exc:
                log.warning("the etags of %d new customers were not read: %s", len(part), exc)
                continue
            responses = answer.json().get("responses", [])
            for n, r in _by_request(list(range(len(part))), responses).items():
                body = r.get("body") if r and int(r.get("status", 0)) < 300 else None
                if isinstance(body, Mapping) and body.get("@odata.etag"):
                    found[part[n]] = str(body["@odata.etag"])
        return found

    # ---- update ----------------------------------------------------------------------------

    def update_customer(
        self, no: str, changes: Mapping[str, Any], expected_etag: str | None = None
    ) -> ErpWriteResult:
        prepared = self._prepare_update(ErpUpdate(no, changes, expected_etag))
        if isinstance(prepared, ErpWriteResult):
            return prepared
        ident, body, card, notes = prepared.ident, prepared.body, prepared.card, prepared.notes
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

    def update_customers(self, items: Iterable[ErpUpdate]) -> Iterator[ErpWriteResult]:
        """Update many customers, one result per item in order: a single update as
        :meth:`update_customer`, more in ``$batch`` requests of ``batch_size`` (each PATCH
        with its own ``If-Match``; a customer whose only changes are card values is checked
        by a GET of its etag in the same batch), then one ``$batch`` of card PATCHes and one
        of etag GETs for those with card values."""
        for chunk in _batches(items, self.settings.batch_size):
            yield from self._update_chunk(chunk)

    def _update_chunk(self, items: list[ErpUpdate]) -> Iterator[ErpWriteResult]:
        if len(items) == 1 or (
            self._card_batch_root() is None and any(self._has_card(item) for item in items)
        ):
            for item in items:
                yield self.update_customer(item.no, item.changes, item.expected_etag)
            return
        results: dict[int, ErpWriteResult] = {}
        pending: dict[int, _Update] = {}
        for i, item in enumerate(items):
            prepared = self._prepare_update(item)
            if isinstance(prepared, ErpWriteResult):
                results[i] = prepared
            else:
                pending[i] = prepared
        self._send_updates(pending, results)
        due = {i: u for i, u in pending.items() if i not in results and u.card}
        if due:
            refused, still_due = self._patch_cards({i: (u.no, u.card) for i, u in due.items()})
            for i, u in due.items():
                fields = ", ".join(sorted(u.card))
                if i in refused:
                    message, is_refused = refused[i]
                    results[i] = ErpWriteResult(
                        False, u.no, f"{fields}: {message}", refused=is_refused
                    )
                elif i in still_due:
                    results[i] = ErpWriteResult(
                        False, u.no, f"{fields} not written: {_CARD_DUE}; retried next run"
                    )
            written = [u for i, u in due.items() if i not in results]
            etags = self._etags([u.no for u in written])
            for u in written:
                u.etag = etags.get(u.no, u.etag)
        for i, u in pending.items():
            if i not in results:
                changed = u.body or u.card
                message = "; ".join(["updated", *u.notes]) if changed else "nothing to change"
                results[i] = ErpWriteResult(True, u.no, message, u.etag)
        for i in range(len(items)):
            yield results[i]

    def _has_card(self, item: ErpUpdate) -> bool:
        card_fields = (*PAGE_ONLY_FIELDS, *_TEMPLATE_CARD, *_TEMPLATE_API)
        return any(k in card_fields and self._api_target(k) is None for k in item.changes)

    def _prepare_update(self, item: ErpUpdate) -> _Update | ErpWriteResult:
        no, changes = item.no, item.changes
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
        card = self._card_or_note(card, notes)
        return _Update(item, no, ident, body, card, notes, item.expected_etag)

    def _card_or_note(self, card: dict[str, Any], notes: list[str]) -> dict[str, Any]:
        """``card`` where the Customer Card can be written; else nothing, and a note saying
        which values were not written and why."""
        if card and not self.has_source("customer_card"):
            notes.append(
                f"{', '.join(sorted(card))} not written: "
                + self.unavailable().get("customer_card", "Customer Card unavailable")
            )
            return {}
        return card

    def _send_updates(
        self, pending: Mapping[int, _Update], results: dict[int, ErpWriteResult]
    ) -> None:
        """The API ``$batch`` of an update chunk: a PATCH with ``If-Match`` (the etag read, or
        ``*``) per customer with API changes, a GET of the etag per customer whose only
        changes are card values and whose etag was read. 409 fails that record ("changed in
        Business Central since it was read"); 429/5xx answers are sent again in the next
        batch; a batch whose answer is lost fails its records (whether a PATCH took effect is
        read again by the next run, which plans it again or finds nothing to change)."""
        ops = {
            i: u
            for i, u in pending.items()
            if u.body or (u.card and u.item.expected_etag is not None)
        }
        for attempt in range(1, self.settings.max_attempts + 1):
            if not ops:
                return
            requests = []
            for i, u in ops.items():
                path = self._company_path(f"customers({u.ident})")
                if u.body:
                    requests.append(
                        {
                            "id": str(i),
                            "method": "PATCH",
                            "url": path,
                            "headers": {
                                "Content-Type": "application/json",
                                "If-Match": u.item.expected_etag or "*",
                            },
                            "body": u.body,
                        }
                    )
                else:
                    requests.append({"id": str(i), "method": "GET", "url": f"{path}?$select=id"})
            try:
                answer = self.client.request(
                    "POST", "$batch", json_body={"requests": requests}, write=True
                )
                responses = answer.json().get("responses", [])
            except OutcomeUnknown as exc:
                for i, u in ops.items():
                    results[i] = ErpWriteResult(
                        False,
                        u.no,
                        f"{exc.message}; whether the update of customer {u.no} took effect is "
                        "read again by the next run",
                    )
                return
            retry: dict[int, _Update] = {}
            for i, r in _by_request(list(ops), responses).items():
                u = ops[i]
                status = int(r.get("status", 0)) if r else 0
                body = r.get("body") if r else None
                code = ""
                if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
                    code = str(body["error"].get("code") or "")
                if r is None or status in (0, 408, 429, 500, 502, 503, 504):
                    retry[i] = u
                elif status == 409 or code == "Request_EntityChanged":
                    results[i] = ErpWriteResult(
                        False, u.no, f"customer {u.no} was {_CHANGED} ({_inner_error(r, answer)})"
                    )
                elif status >= 300:
                    results[i] = ErpWriteResult(
                        False, u.no, _inner_error(r, answer), refused=status in _REFUSED_STATUS
                    )
                else:
                    etag = str(body.get("@odata.etag") or "") if isinstance(body, Mapping) else ""
                    if u.body:
                        u.etag = etag or None
                    elif etag != u.item.expected_etag:
                        results[i] = ErpWriteResult(False, u.no, f"customer {u.no} was {_CHANGED}")
            ops = retry
            if ops:
                self.client._backoff(attempt, None)
        for i, u in ops.items():
            results[i] = ErpWriteResult(
                False,
                u.no,
                "Business Central kept refusing the batch (429/5xx); retried next run",
            )

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
        if entry.status == POSTED and entry.number:
            # created, its card values not yet written (the run stopped between the two)
            if entry.card and self.has_source("customer_card"):
                self._patch_card(entry.number, entry.card)
            self.journal.settle(key, CREATED, entry.number)
            return self.get_customer(entry.number)
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


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """``items`` in lists of ``size`` (the last one shorter), read as they are needed."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _by_request(ids: list[int], responses: list[Any]) -> dict[int, dict[str, Any] | None]:
    """The answer of each request of a ``$batch`` by its id (answers without ids: by
    position, as BC sends them sometimes); None for a request BC did not answer."""
    by_id = {str(r.get("id")): r for r in responses if isinstance(r, dict) and r.get("id")}
    found: dict[int, dict[str, Any] | None] = {}
    for position, i in enumerate(ids):
        r = by_id.get(str(i))
        if r is None and position < len(responses):
            candidate = responses[position]
            if isinstance(candidate, dict) and not candidate.get("id"):
                r = candidate
        found[i] = r
    return found


def _inner_error(response: Mapping[str, Any], batch: httpx.Response | None = None) -> str:
    """BC's code and message of one failed operation of a ``$batch``, with its correlation
    id: BC leaves it out of errors inside a batch, so the batch request's own (its
    ``request-id``) is named instead."""
    body = response.get("body")
    error = body.get("error") if isinstance(body, Mapping) else None
    status = response.get("status")
    if isinstance(error, Mapping):
        message, correlation = split_correlation(mask_text(str(error.get("message") or "")))
        if not correlation and batch is not None:
            correlation = batch.headers.get("request-id", "")
        where = f" (correlation id {correlation})" if correlation else ""
        return f"{error.get('code') or f'HTTP{status}'}: {message}{where}"
    return f"HTTP {status} in $batch"
