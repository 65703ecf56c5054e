"""The narrow interfaces between the engine and its connectors.

The engine depends on these Protocols only; concrete connectors live in
``custsync.connectors`` and are found by URL scheme through entry points
(``custsync.erp_connectors``, ``custsync.shopify_connectors``), see :mod:`.registry`.

Reading and writing are separate interfaces: ``custsync plan`` only ever obtains the
``*Reader`` side, so a dry run cannot write by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .model import (
    ErpCustomer,
    ErpReference,
    Link,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
)

__all__ = [
    "ChecksConnection",
    "ConnectionFinding",
    "CustomerInput",
    "ErpBatchWriter",
    "ErpCandidateReader",
    "ErpCreate",
    "ErpFieldLimits",
    "ErpReader",
    "ErpUpdate",
    "ErpWriteResult",
    "ErpWriter",
    "LoadRowProblem",
    "ReadProgress",
    "ReportsProblems",
    "ReportsReadProgress",
    "RunRecord",
    "ShopifyReader",
    "ShopifyWriteResult",
    "ShopifyWriter",
    "SourceProblem",
    "StateStore",
]

# --------------------------------------------------------------------------------------------
# ERP
# --------------------------------------------------------------------------------------------


@runtime_checkable
class ErpReader(Protocol):
    def reference(self) -> ErpReference:
        """Countries, company information and customer templates."""
        ...

    def iter_customers(self, changed_since: datetime | None = None) -> Iterator[ErpCustomer]:
        """All customers in number order, or those modified after ``changed_since``."""
        ...

    def get_customer(self, no: str) -> ErpCustomer | None: ...

    def close(self) -> None: ...


@runtime_checkable
class ErpCandidateReader(Protocol):
    """Optional reader capability: the customers an incremental sync's changed records can
    match, so that a run reads in proportion to the changes instead of the whole ERP.

    Returns every customer with one of the e-mails (whole value, ignoring case), phone suffix
    keys (:func:`custsync.engine.decide.phones.suffix_keys`) or post codes, plus customers ``nos``,
    in number order; None when the ERP cannot answer (the caller then reads everything).
    """

    def candidates(
        self,
        *,
        emails: Sequence[str] = (),
        phone_keys: Sequence[str] = (),
        post_codes: Sequence[str] = (),
        nos: Sequence[str] = (),
    ) -> list[ErpCustomer] | None: ...


@runtime_checkable
class ErpFieldLimits(Protocol):
    """Optional reader capability: customer fields this ERP cannot write now, each with why
    (Business Central's API has no Name 2 or Contact; a page that provides them may be
    missing). The plan notes the reason on every decision that would write one."""

    def unwritable_fields(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class ConnectionFinding:
    """What ``custsync validate`` found when it reached the ERP. ``option`` is where in the
    ERP's config it belongs: ``url``, or a key of its options section (``company``,
    ``client_id``, ``pages.customer_card``); ``error`` False is a warning."""

    option: str
    message: str
    error: bool = True


@runtime_checkable
class ChecksConnection(Protocol):
    """Optional reader capability: reach the system with the configured settings (sign-in,
    environment, company, extra sources) and say what does not work, without raising."""

    def check_connection(self) -> Sequence[ConnectionFinding]: ...


@dataclass(frozen=True, slots=True)
class ErpWriteResult:
    """Outcome of one ERP write. ``ok`` False means a per-record failure (run continues)."""

    ok: bool
    no: str | None = None
    message: str = ""
    etag: str | None = None
    #: the ERP refused the record as it is (a validation error): it fails the same way until
    #: it changes, so it is parked at once (see ``errors.RecordRefused``); False for a failure
    #: that may go away (a record changed since it was read, a number taken by a race)
    refused: bool = False


@runtime_checkable
class ErpWriter(ErpReader, Protocol):
    def create_customer(
        self, fields: Mapping[str, Any], template_code: str | None, idempotency_key: str
    ) -> ErpWriteResult:
        """Create a customer from a template plus ``fields``; numbers come from the number
        series. ``idempotency_key`` (e.g. the Shopify gid) lets a resumed run find a customer
        it created before a crash instead of creating it twice."""
        ...

    def update_customer(
        self, no: str, changes: Mapping[str, Any], expected_etag: str | None = None
    ) -> ErpWriteResult:
        """Write only ``changes``; refuse when ``expected_etag`` is given and differs."""
        ...

    def find_by_idempotency_key(self, key: str) -> ErpCustomer | None: ...


@dataclass(frozen=True, slots=True)
class ErpCreate:
    """One create of :meth:`ErpBatchWriter.create_customers`: as the arguments of
    :meth:`ErpWriter.create_customer` (``key`` is the idempotency key)."""

    key: str
    fields: Mapping[str, Any]
    template_code: str | None = None


@dataclass(frozen=True, slots=True)
class ErpUpdate:
    """One update of :meth:`ErpBatchWriter.update_customers`: as the arguments of
    :meth:`ErpWriter.update_customer`."""

    no: str
    changes: Mapping[str, Any]
    expected_etag: str | None = None


@runtime_checkable
class ErpBatchWriter(Protocol):
    """Optional writer capability: many creates (and updates) sent together (Business
    Central: JSON ``$batch`` requests of up to 100), so that a large import costs a few
    requests instead of one or more per customer. A writer without it gets one
    ``create_customer`` / ``update_customer`` per record."""

    def create_customers(self, items: Iterable[ErpCreate]) -> Iterator[ErpWriteResult]:
        """One result per item, in order; a per-record refusal is ``ok`` False with the ERP's
        message and the others go on. Each item's idempotency key is journaled before it is
        sent, as for ``create_customer``: a create sent before a crash is found again by
        ``find_by_idempotency_key``. Raises RetriableError (the ERP cannot be reached) or
        FatalError like ``create_customer``; the results not yet yielded are then unknown."""
        ...

    def update_customers(self, items: Iterable[ErpUpdate]) -> Iterator[ErpWriteResult]:
        """One result per item, in order, each as ``update_customer`` would give it (a
        customer changed since its ``expected_etag`` was read fails alone)."""
        ...


# --------------------------------------------------------------------------------------------
# Shopify
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerInput:
    """What custsync writes to a Shopify customer; ``None`` means "leave unchanged"."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    #: the default address; its ``id`` set means "update that MailingAddress"
    address: ShopifyAddress | None = None
    tags: tuple[str, ...] | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ShopifyWriteResult:
    """Outcome of one Shopify write; ``errors`` are Shopify's userErrors messages."""

    ok: bool
    customer: ShopifyCustomer | None = None
    errors: tuple[str, ...] = ()
    #: a key identifying the input in a bulk mutation (the ERP customer no.)
    key: str = ""
    #: failed because Shopify could not be reached: retries exhausted on connection failures,
    #: 5xx answers or timeouts (a run stops after a few of these in a row)
    unreachable: bool = False
    #: Shopify refused the record as it is (``userErrors``: a value it rejects, an e-mail or
    #: phone already taken): parked at once (see ``errors.RecordRefused``)
    refused: bool = False


@runtime_checkable
class ShopifyReader(Protocol):
    def iter_customers(self, updated_since: datetime | None = None) -> Iterator[ShopifyCustomer]:
        """All customers, or those updated after ``updated_since``, oldest update first."""
        ...

    def get_customer(self, customer_id: str) -> ShopifyCustomer | None: ...

    def get_customers(self, customer_ids: Iterable[str]) -> Mapping[str, ShopifyCustomer | None]:
        """Several customers by id in a few requests: every id asked maps to its customer, or
        to ``None`` when the shop does not have it (deleted, merged away)."""
        ...

    def find_by_email(self, email: str) -> ShopifyCustomer | None:
        """Exact match ignoring case (Shopify search is tokenised: results are re-checked)."""
        ...

    def find_by_phone(self, phone_e164: str) -> ShopifyCustomer | None:
        """Exact match on ``+`` and digits."""
        ...

    def get_order(self, order_id: str) -> ShopifyOrder | None: ...

    def shipping_countries(self) -> Sequence[str]:
        """ISO codes of the countries the shop ships to (for ``countries init``)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ShopifyWriter(ShopifyReader, Protocol):
    def create_customer(self, data: CustomerInput) -> ShopifyWriteResult: ...

    def update_customer(self, customer_id: str, data: CustomerInput) -> ShopifyWriteResult: ...

    def send_invite(self, customer_id: str) -> ShopifyWriteResult: ...

    def bulk_create_customers(
        self,
        items: Iterable[tuple[str, CustomerInput]],
        *,
        on_started: Callable[[str], None] | None = None,
    ) -> Iterator[ShopifyWriteResult]:
        """Create many customers (key, input); one result per item, keyed. A batch sent as
        one bulk job calls ``on_started(job id)`` once the job runs, before its results."""
        ...

    def uses_bulk(self, creates: int) -> bool:
        """Whether a batch of ``creates`` customers goes through one bulk job."""
        ...

    def bulk_create_results(
        self, operation_id: str, items: Sequence[tuple[str, CustomerInput]]
    ) -> Iterator[ShopifyWriteResult]:
        """The results of the bulk job ``operation_id`` (started by an earlier process) for
        its input lines ``items``, in line order; waits while it still runs."""
        ...

    def bulk_updatable(self, count: int, data: Iterable[CustomerInput]) -> bool:
        """Whether a batch of ``count`` updates (their inputs ``data``) goes by bulk jobs."""
        ...

    def bulk_update_customers(
        self,
        items: Iterable[tuple[str, str, CustomerInput]],
        *,
        on_started: Callable[[str, str], None] | None = None,
    ) -> Iterator[ShopifyWriteResult]:
        """Update many customers (key, Shopify id, input); one result per item, keyed. A
        batch sent by bulk jobs calls ``on_started(part, job id)`` as each job runs: part
        "address" (the changed addresses, one line per item with an address, in item
        order), then "customer" (one line per item)."""
        ...

    def bulk_update_results(
        self, operation_id: str, keys: Sequence[str]
    ) -> Iterator[ShopifyWriteResult]:
        """The results of the "customer" bulk update job ``operation_id`` (started by an
        earlier process), one per input line (``keys`` in line order); waits while it runs."""
        ...

    def bulk_address_results(
        self, operation_id: str, keys: Sequence[str]
    ) -> Iterator[ShopifyWriteResult]:
        """As :meth:`bulk_update_results`, for an "address" job; lines without a result
        are left out."""
        ...


# --------------------------------------------------------------------------------------------
# State store
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    shop: str
    direction: str
    started_at: datetime
    finished_at: datetime | None = None
    #: running | succeeded | partial (some records failed) | failed | abandoned | refused
    status: str = "running"
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str = ""
    #: who ran it: the shop lease's holder, ``hostname:pid:random`` ("" when not recorded)
    holder: str = ""


#: the counts of a sync run (RunRecord.counts, ``sync``'s summary), in the order shown: every
#: applied record is in exactly one of them
RUN_COUNTS = ("created", "updated", "linked", "unchanged", "skipped", "failed")


@runtime_checkable
class StateStore(Protocol):
    """Links, cursors, own-write times, run log and leases. Writes are transactional."""

    def links(self, shop: str) -> Iterator[Link]: ...

    def link_for_shopify(self, shop: str, shopify_id: str) -> Link | None: ...

    def link_for_erp(self, shop: str, erp_no: str) -> Link | None: ...

    def save_link(self, link: Link, *, replaces: str | None = None) -> None: ...

    def drop_link(self, shop: str, shopify_id: str) -> None: ...

    def cursor(self, shop: str, direction: str) -> datetime | None: ...

    def advance_cursor(self, shop: str, direction: str, run_started_at: datetime) -> None: ...

    def start_run(
        self, shop: str, direction: str, started_at: datetime, holder: str = ""
    ) -> int: ...

    def record_outcome(
        self,
        run_id: int,
        record: str,
        action: str,
        status: str,
        reason: str = "",
        rules: Sequence[str] = (),
    ) -> None: ...

    def finish_run(
        self, run_id: int, status: str, counts: Mapping[str, int], error: str = ""
    ) -> None: ...

    def runs(self, shop: str | None = None, limit: int = 20) -> list[RunRecord]: ...

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> bool: ...

    def renew_lease(self, name: str, holder: str, ttl_seconds: float) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...


# --------------------------------------------------------------------------------------------
# Per-record problems a reader found in its source (bad rows are reported, not fatal)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadRowProblem:
    """A row of a load file its reader could not take (malformed CSV, not UTF-8). Given to an
    ERP connector's ``load`` among the rows (``custsync erp load`` streams them): reported
    with the value problems, and the load writes nothing."""

    line: int
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A record a reader could not read and skipped, with where it is.

    ``kind`` names the record kind (``erp_customer``, ``shopify_customer``, ``link``, ``order``,
    ``country``, ``template``); ``record`` is the record's key when it could be read (an ERP
    customer no., a Shopify gid), else ``""``; ``location`` is ``file:line`` or similar.
    """

    kind: str
    location: str
    message: str
    record: str = ""


@runtime_checkable
class ReportsProblems(Protocol):
    """Optional reader capability: the bad records it skipped so far (plan shows them)."""

    def problems(self) -> Sequence[SourceProblem]: ...


# --------------------------------------------------------------------------------------------
# How a long read is coming along (shown as progress while the run waits for it)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadProgress:
    """Where a reader is in a long read, told as it goes (a step starts at ``done`` 0).

    ``step`` names what is being read (``customers (pages)``, ``bulk export``, ``bulk result
    download``); ``done`` counts ``unit`` so far, of ``total`` when known; ``note`` adds a
    detail (``12 pages``, the bulk job's status)."""

    step: str
    done: int
    unit: str = "customers"
    total: int | None = None
    note: str = ""


@runtime_checkable
class ReportsReadProgress(Protocol):
    """Optional reader capability: tells ``callback`` how its reads come along (pages read,
    a bulk job's object count, rows read), or stops telling with None."""

    def watch_reads(self, callback: Callable[[ReadProgress], None] | None) -> None: ...
