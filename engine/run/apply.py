"""Apply decisions through the connectors' writers, crash-safely.

One :class:`Applier` per shop and run. For every decision it writes the target record, saves
the link, and records the record's outcome in the run log. Writes that create a record are
journaled as *intents* in the state store before they are sent (see
``SqlStateStore.begin_intent``) and carry an idempotency key, so a run killed at any point can
be resumed by the same command without duplicates and without lost links:

* ERP creates pass ``idempotency_key = "<shop>:<shopify gid>"`` to the ERP, which stores it on
  the customer; before creating, the ERP is asked for that key, and a customer found there is
  linked instead of created again.
* Shopify creates are journaled with ``"<shop>:<erp no>"``; a pending intent (the process died
  after sending) is settled by looking the customer up by e-mail, then by phone (exact, E.164)
  before anything is re-sent. Shopify's own "Email has already been taken" / "Phone has
  already been taken" answer is settled the same way: an unlinked customer with that e-mail
  or phone is adopted, never duplicated. A pending create of a customer with neither (a shop
  whose rules allow that) cannot be looked up: its record is parked on the attention list,
  saying what to check, rather than sent a second time.

Export creates go as one batch (:meth:`Applier.apply_export_creates`): a Shopify bulk job above
the writer's threshold, whose intents are journaled together before it is submitted and whose
job id is journaled once it runs; a resumed run reads that job's result back and settles the
intents by it (lines without a result are looked up first).

Export updates above the threshold go in batches too (:meth:`Applier.apply_export_updates`),
journaled the same way (action ``shopify.update``, the Shopify customer as the intent's
target): a bulk ``customerAddressUpdate`` job for the changed addresses, then a bulk
``customerUpdate`` job for all of them, whose answer carries Shopify's ``updatedAt`` of our
writes; below the threshold, one update per customer, a few in flight. A resumed run reads a
dead run's update jobs back and records our own write (that ``updatedAt``) on each link, so
the import does not take it for a foreign change; an update without a result is not sent
again by the resume: its record is planned again.

Per-record failures (validation, ``userErrors``, a stale etag, retries exhausted) never stop
the run; a :class:`~.errors.FatalError` (authentication, schema) does.

A link is never taken over: one Shopify customer maps to one ERP customer. A decision that
would link a Shopify customer already linked to another ERP customer (or an ERP customer
already linked to another Shopify customer) fails before anything is written, naming the
other side, and the stored link stays. The one exception is a link whose ERP customer no
longer exists: it moves to the customer the import matched instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from ..decide.engine import SHOPIFY_ADDRESS_FIELDS, SHOPIFY_CUSTOMER_FIELDS
from ..decide.enrich import first_email
from ..decide.phones import to_e164
from ..errors import FatalError, RecordError, RecordRefused, RetriableError, mask_email
from ..masking import mask_phone
from ..model import Action, Decision, Direction, Link, ShopifyAddress
from ..ports import (
    CustomerInput,
    ErpBatchWriter,
    ErpCreate,
    ErpUpdate,
    ErpWriter,
    ErpWriteResult,
    ShopifyWriter,
    ShopifyWriteResult,
)
from .plan import BAD_RECORD
from .state import Failure, Outcome

log = logging.getLogger("custsync.apply")

__all__ = ["Applier", "RecordOutcome", "customer_input"]

#: outcome statuses, as the run log stores them
OK, FAILED, SKIPPED = "ok", "failed", "skipped"
#: create results settled (intents, links, run log) per transaction
_SETTLE_CHUNK = 500
_Item = TypeVar("_Item")


def _keyed_chunks(
    items: Mapping[str, _Item], results: Iterable[ShopifyWriteResult], what: str
) -> Iterator[list[tuple[_Item, ShopifyWriteResult]]]:
    """Each Shopify write result paired with its item (by the result's key), in chunks of
    ``_SETTLE_CHUNK`` to settle one transaction at a time. A result that failed because
    Shopify could not be reached ends its chunk: the run sees an outage as it happens (and
    stops after a few in a row), not after a whole batch was tried."""
    chunk: list[tuple[_Item, ShopifyWriteResult]] = []
    for result in results:
        item = items.get(result.key)
        if item is None:  # pragma: no cover - the writer keys every result
            log.warning("%s result for an unknown key %r was ignored", what, result.key)
            continue
        chunk.append((item, result))
        if len(chunk) >= _SETTLE_CHUNK or result.unreachable:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

#: Shopify's userErrors saying another customer has the e-mail / phone sent
_TAKEN_EMAIL = "Email has already been taken"
_TAKEN_PHONE = "Phone has already been taken"

#: skips that are no decision: the record could not be read (``bad-record``) or evaluated
#: (``record-error``, see decide.py); applied as failed records
_NOT_DECIDED = frozenset({BAD_RECORD, "record-error"})


@dataclass(frozen=True, slots=True)
class _LinkCheck:
    """The stored link of a Shopify customer about to be linked, and what it means for the
    link asked for (:meth:`Applier._check_link`)."""

    current: Link | None
    refused: str | None = None  # why the link cannot be made
    replaces: str | None = None  # the ERP customer (no longer existing) the link moves from


@dataclass(slots=True)
class _Create:
    """One export create of a batch: its decision, what is sent, its intent once journaled."""

    decision: Decision
    erp_no: str
    data: CustomerInput
    intent: int = 0


@dataclass(slots=True)
class _Update:
    """One export update of a batch: its decision, the Shopify customer, what is sent, the
    stored link as checked before sending, its intent once journaled (and that intent's run:
    a dead run's, when settled on resume)."""

    decision: Decision
    erp_no: str
    gid: str
    data: CustomerInput
    check: _LinkCheck
    intent: int = 0
    run_id: int = 0


@dataclass(slots=True)
class _ImportCreate:
    """One import create of a batch: its decision, the link check made before sending, its
    intent once journaled."""

    decision: Decision
    gid: str
    key: str
    check: _LinkCheck
    intent: int = 0


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """What applying one decision did."""

    decision: Decision
    status: str  # ok | failed | skipped
    message: str = ""
    erp_no: str | None = None
    shopify_id: str | None = None
    #: the failure will not go away by trying again (the target refused the record as it is:
    #: a ``RecordRefused``, a write result with ``refused``; the state refused the link because
    #: another record holds it): the record is parked at once on the attention list
    permanent: bool = False
    #: "Shopify" or "ERP" when it failed because that side could not be reached (retries
    #: exhausted on connection failures, 5xx answers, timeouts)
    unreachable: str = ""

    @property
    def counted_as(self) -> str:
        """The summary bucket: created, updated, linked, unchanged, skipped or failed."""
        if self.status == FAILED:
            return "failed"
        if self.status == SKIPPED:
            return "skipped"
        return {
            Action.CREATE: "created",
            Action.UPDATE: "updated",
            Action.LINK: "linked",
            Action.NOOP: "unchanged",
        }.get(self.decision.action, "skipped")


def _split_address_field(name: str) -> str | None:
    for prefix in ("address.", "default_address.", "address_"):
        if name.startswith(prefix) and name[len(prefix) :] in SHOPIFY_ADDRESS_FIELDS:
            return name[len(prefix) :]
    return None


def customer_input(decision: Decision) -> CustomerInput:
    """The Shopify write for an export decision: its changed fields, the address by gid.

    Customer fields are named as on the customer (``first_name``, ``email``...); default
    address fields as ``address.<field>``. A full address in ``payload["address"]`` (a mapping
    or a ShopifyAddress) is the base the changed address fields are laid over, so that an
    address update always carries the complete address Shopify validates.
    """
    values: dict[str, Any] = {}
    address_values: dict[str, Any] = {}
    for change in decision.changes:
        sub = _split_address_field(change.field)
        if sub is not None:
            address_values[sub] = "" if change.new is None else change.new
        elif change.field in SHOPIFY_CUSTOMER_FIELDS:
            values[change.field] = "" if change.new is None else change.new
    base = decision.payload.get("address")
    address: ShopifyAddress | None = None
    if isinstance(base, ShopifyAddress):
        address = replace(base, **address_values) if address_values else base
    elif isinstance(base, Mapping):
        merged = {k: v for k, v in base.items() if k in (*SHOPIFY_ADDRESS_FIELDS, "id", "default")}
        merged.update(address_values)
        address = ShopifyAddress(**merged)
    elif address_values:
        address = ShopifyAddress(**address_values)
    address_id = decision.payload.get("address_id")
    if address is not None and address_id and not address.id:
        address = replace(address, id=str(address_id))
    if address is not None and decision.action is not Action.CREATE and not address_values:
        address = None  # nothing of the address changed: do not send it
    return CustomerInput(address=address, **values)


def _now() -> datetime:
    return datetime.now(UTC)


def _e164(customer: Any) -> str | None:
    """The ERP customer's phone in E.164 as an export sends it: as written when it starts with
    ``+``, else read in the customer's country (a two-letter code); None when it does not
    parse (the planner then looks it up as the rules read it)."""
    phone = (customer.phone or "").strip()
    if not phone:
        return None
    region = (customer.country_code or "").strip().upper()
    return to_e164(phone, region if len(region) == 2 else None)


class Unreachable(RetriableError):
    """A writer's call gave up after its retries (the side could not be reached); ``side``
    names it ("Shopify", "ERP"), so that a run can stop when one side is down."""

    def __init__(self, side: str, cause: RetriableError) -> None:
        super().__init__(cause.message, retry_after=cause.retry_after)
        self.side = side


class _Side:
    """A writer whose retriable failures say which side they come from (see Unreachable)."""

    def __init__(self, target: Any, side: str) -> None:
        self._target = target
        self._side = side

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except Unreachable:
                raise
            except RetriableError as exc:
                raise Unreachable(self._side, exc) from exc

        return call


class Applier:
    """Applies one shop's decisions of one run (not thread-safe; one per run)."""

    def __init__(
        self,
        *,
        shop: str,
        run_id: int,
        state: Any,
        erp: ErpWriter | None = None,
        shopify: ShopifyWriter | None = None,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.shop = shop
        self.run_id = run_id
        self.state = state
        self.erp: ErpWriter | None = None if erp is None else cast(ErpWriter, _Side(erp, "ERP"))
        #: the ERP's batch create (None: one ``create_customer`` per record)
        self._erp_batch: ErpBatchWriter | None = (
            cast(ErpBatchWriter, _Side(erp, "ERP")) if isinstance(erp, ErpBatchWriter) else None
        )
        self.shopify: ShopifyWriter | None = (
            None if shopify is None else cast(ShopifyWriter, _Side(shopify, "Shopify"))
        )
        self._now = now

    # ---- entry points ---------------------------------------------------------------------

    def apply(self, decision: Decision) -> RecordOutcome:
        """Apply one decision and record its outcome. Raises only FatalError (among them
        LeaseLostError: the run's lease is no longer its own, checked before any write)."""
        self._check_fence()
        try:
            outcome = self._dispatch(decision)
        except FatalError:
            raise
        except Exception as exc:  # a failing record never stops the run
            outcome = self._failure(decision, exc)
        self._record(outcome)
        return outcome

    def resume_pending(self) -> list[RecordOutcome]:
        """Settle the intents of earlier runs of this shop that died mid-write."""
        settled: list[RecordOutcome] = []
        if self.shopify is not None and hasattr(self.state, "pending_bulks"):
            batches = self.state.pending_bulks(self.shop)
            # an update's address job first: a refused address fails its record before the
            # customer job's result would settle it as done
            for batch in sorted(batches, key=lambda b: (b.kind != "address", b.id)):
                if batch.operation:
                    settled.extend(self._settle_bulk(batch))
        for intent in self.state.pending_intents(shop=self.shop):
            self._check_fence()
            try:
                settled.append(self._settle(intent))
            except FatalError:
                raise
            except Exception as exc:
                self.state.fail_intent(intent.id, f"could not settle: {exc}")
        return settled

    def _check_fence(self) -> None:
        """Before anything is written to the ERP or Shopify: is the run's lease still its own
        (a fenced state store, see ``SqlStateStore.fenced``)?"""
        check = getattr(self.state, "check_fence", None)
        if check is not None:
            check()

    # ---- dispatch --------------------------------------------------------------------------

    def _dispatch(self, decision: Decision) -> RecordOutcome:
        if decision.action is Action.SKIP and decision.reason_code in _NOT_DECIDED:
            # its reader could not read it, or the engine could not evaluate it: failed, so
            # that its cursor waits for it (a skip would let the next run start after it and
            # never look at it again)
            return RecordOutcome(
                decision, FAILED, f"{decision.reason_code}: {decision.message or ''}"
            )
        if decision.action is Action.SKIP:
            if decision.new_link and decision.erp_no and decision.direction is Direction.IMPORT:
                # matched but not updatable (e.g. no address): the link is still recorded
                gid = decision.shopify_id or decision.record
                check = self._check_link(gid, decision.erp_no)
                if check.refused:
                    return RecordOutcome(decision, FAILED, check.refused, decision.erp_no, gid, permanent=True)
                self._save_link(gid, decision.erp_no, decision, check, last_import_at=self._now())
            return RecordOutcome(decision, SKIPPED, decision.message or decision.reason_code or "")
        if decision.direction is Direction.IMPORT:
            return self._apply_import(decision)
        if decision.direction is Direction.EXPORT:
            return self._apply_export(decision)
        if decision.direction is Direction.ORDER:
            return self._apply_order(decision)
        raise ValueError(f"unknown direction {decision.direction!r}")  # pragma: no cover

    # ---- import: Shopify -> ERP ------------------------------------------------------------

    def _erp(self) -> ErpWriter:
        if self.erp is None:
            raise FatalError("no ERP writer for this run")
        return self.erp

    def _apply_import(self, decision: Decision) -> RecordOutcome:
        gid = decision.shopify_id or decision.record
        if decision.action is Action.NOOP:
            return RecordOutcome(decision, OK, "no change", decision.erp_no, gid)
        if decision.action is Action.CREATE:
            return self._import_create(decision, gid)
        erp_no = decision.erp_no
        if not erp_no:
            return RecordOutcome(decision, FAILED, "decision names no ERP customer")
        check = self._check_link(gid, erp_no)
        if check.refused:  # before writing: the ERP customer is not updated for another's link
            return RecordOutcome(decision, FAILED, check.refused, erp_no, gid, permanent=True)
        written: str | None = None  # the ERP etag our write made (None: nothing written)
        if decision.action is Action.UPDATE:
            # the ERP record as planned (its etag): refuse to overwrite a newer edit
            result = self._erp().update_customer(
                erp_no, decision.change_dict(), expected_etag=decision.target_version
            )
            if not result.ok:
                return RecordOutcome(
                    decision, FAILED, result.message, erp_no, gid, permanent=result.refused
                )
            written = result.etag
        self._save_link(
            gid, erp_no, decision, check, last_import_at=self._now(), erp_etag=written
        )
        return RecordOutcome(decision, OK, "", erp_no, gid)

    def _import_create(self, decision: Decision, gid: str) -> RecordOutcome:
        erp = self._erp()
        key = f"{self.shop}:{gid}"
        existing = erp.find_by_idempotency_key(key)
        if existing is not None:
            return self._link_created_before(decision, gid, existing)
        check = self._check_link(gid, "")
        if check.refused:
            return RecordOutcome(decision, FAILED, check.refused, None, gid, permanent=True)
        template = decision.payload.get("template_code") or None
        intent = self.state.begin_intent(self.run_id, decision.record, "erp.create", key)
        result = erp.create_customer(decision.change_dict(), template, key)
        if not result.ok or not result.no:
            self.state.fail_intent(intent, result.message or "create failed")
            return RecordOutcome(
                decision,
                FAILED,
                result.message or "create failed",
                None,
                gid,
                permanent=result.refused,
            )
        self.state.complete_intent(
            intent,
            target=result.no,
            link=self._link(
                gid,
                result.no,
                decision,
                self._now(),
                existing=check.current,
                erp_etag=result.etag,
            ),
            replaces=check.replaces,
        )
        return RecordOutcome(decision, OK, "", result.no, gid)

    def apply_import_creates(self, decisions: Sequence[Decision]) -> Iterator[RecordOutcome]:
        """Import creates as one batch, one recorded outcome per decision, in order.

        Each record is first looked up by its idempotency key (created by an interrupted
        run: linked) and its link checked; the intents of the rest are journaled together
        before anything is sent, then the ERP writer's ``create_customers`` sends them
        (Business Central: ``$batch`` requests of 100) or, for a writer without it, one
        ``create_customer`` each. A record the ERP refuses fails alone. When the ERP cannot
        be reached part-way, the records without a result fail as unreachable and their
        intents stay pending: the next run settles them (``resume_pending``) by looking their
        keys up, so that nothing is created twice. Results are settled (intents, links, run
        log) a few hundred at a time, in one transaction each."""
        self._check_fence()
        erp = self._erp()
        creates: list[_ImportCreate] = []
        for decision in decisions:
            gid = decision.shopify_id or decision.record
            key = f"{self.shop}:{gid}"
            try:
                existing = erp.find_by_idempotency_key(key)
                if existing is not None:
                    outcome = self._link_created_before(decision, gid, existing)
                else:
                    check = self._check_link(gid, "")
                    if check.refused is None:
                        creates.append(_ImportCreate(decision, gid, key, check))
                        continue
                    outcome = RecordOutcome(
                        decision, FAILED, check.refused, None, gid, permanent=True
                    )
            except FatalError:
                raise
            except Exception as exc:  # a failing record never stops the run
                outcome = self._failure(decision, exc)
            self._record(outcome)
            yield outcome
        if not creates:
            return
        _, intents = self.state.begin_intents(
            self.run_id, [(c.decision.record, "erp.create", c.key) for c in creates]
        )
        for create, intent in zip(creates, intents, strict=True):
            create.intent = intent
        items = [
            ErpCreate(
                c.key, c.decision.change_dict(), c.decision.payload.get("template_code") or None
            )
            for c in creates
        ]
        if self._erp_batch is not None:
            results: Iterator[ErpWriteResult] = self._erp_batch.create_customers(items)
        else:
            results = (erp.create_customer(i.fields, i.template_code, i.key) for i in items)
        chunk: list[tuple[_ImportCreate, ErpWriteResult]] = []
        done = 0
        try:
            for create, result in zip(creates, results, strict=False):
                chunk.append((create, result))
                if len(chunk) >= _SETTLE_CHUNK:
                    yield from self._settle_import_chunk(chunk)
                    done += len(chunk)
                    chunk = []
        except FatalError:
            self._record_all(self._settle_import_list(chunk))
            raise
        except Exception as exc:
            # the ERP gave up part-way: the creates without a result may or may not exist
            # there; their intents stay pending for the next run's look-up
            yield from self._settle_import_chunk(chunk)
            done += len(chunk)
            chunk = []
            left = [self._failure(c.decision, exc, gid=c.gid) for c in creates[done:]]
            self._record_all(left)
            yield from left
            return
        yield from self._settle_import_chunk(chunk)
        done += len(chunk)
        if done < len(creates):  # pragma: no cover - a writer answers every item
            left = [
                RecordOutcome(c.decision, FAILED, "the ERP writer gave no result", None, c.gid)
                for c in creates[done:]
            ]
            self._record_all(left)
            yield from left

    def apply_import_updates(self, decisions: Sequence[Decision]) -> Iterator[RecordOutcome]:
        """Import updates (and links) of an ERP writer that sends them together
        (``ErpBatchWriter.update_customers``: Business Central ``$batch`` requests, each
        PATCH with the etag the plan read as ``If-Match``), one recorded outcome per
        decision, in order. Each link is checked before anything is written and saved after
        its customer's write; a customer changed in the ERP since it was read fails alone.
        When the ERP cannot be reached part-way, the records without a result fail as
        unreachable (the next run reads them again)."""
        self._check_fence()
        if self._erp_batch is None:
            for decision in decisions:
                yield self.apply(decision)
            return
        todo: list[tuple[Decision, str, _LinkCheck]] = []
        for decision in decisions:
            gid = decision.shopify_id or decision.record
            try:
                if not decision.erp_no:
                    outcome = RecordOutcome(decision, FAILED, "decision names no ERP customer")
                else:
                    check = self._check_link(gid, decision.erp_no)
                    if check.refused is None:
                        todo.append((decision, gid, check))
                        continue
                    outcome = RecordOutcome(
                        decision, FAILED, check.refused, decision.erp_no, gid, permanent=True
                    )
            except FatalError:
                raise
            except Exception as exc:  # a failing record never stops the run
                outcome = self._failure(decision, exc, gid=gid)
            self._record(outcome)
            yield outcome
        if not todo:
            return
        results = self._erp_batch.update_customers(
            ErpUpdate(d.erp_no or "", d.change_dict(), d.target_version) for d, _, _ in todo
        )
        done = 0
        try:
            for (decision, gid, check), result in zip(todo, results, strict=False):
                done += 1
                erp_no = decision.erp_no or ""
                if not result.ok:
                    outcome = RecordOutcome(
                        decision, FAILED, result.message, erp_no, gid, permanent=result.refused
                    )
                else:
                    try:
                        self._save_link(
                            gid,
                            erp_no,
                            decision,
                            check,
                            last_import_at=self._now(),
                            erp_etag=result.etag,
                        )
                        outcome = RecordOutcome(decision, OK, "", erp_no, gid)
                    except FatalError:
                        raise
                    except Exception as exc:
                        outcome = self._failure(decision, exc, gid=gid)
                self._record(outcome)
                yield outcome
        except FatalError:
            raise
        except Exception as exc:  # the ERP gave up part-way
            left = [self._failure(d, exc, gid=gid) for d, gid, _ in todo[done:]]
            self._record_all(left)
            yield from left

    def _failure(
        self, decision: Decision, exc: Exception, *, gid: str | None = None
    ) -> RecordOutcome:
        """The outcome of a record whose write raised: given up after retries (``unreachable``
        when a side could not be reached), refused (``RecordError``, e.g. the state refused a
        link; ``permanent`` for a ``RecordRefused``) or failed otherwise."""
        if isinstance(exc, RetriableError):
            return RecordOutcome(
                decision,
                FAILED,
                f"gave up after retries: {exc.render()}",
                None,
                gid,
                unreachable=exc.side if isinstance(exc, Unreachable) else "",
            )
        if isinstance(exc, RecordError):
            return RecordOutcome(
                decision, FAILED, exc.render(), None, gid, permanent=isinstance(exc, RecordRefused)
            )
        log.debug("applying %s failed", decision.record, exc_info=True)
        return RecordOutcome(decision, FAILED, f"{type(exc).__name__}: {exc}", None, gid)

    def _link_created_before(self, decision: Decision, gid: str, existing: Any) -> RecordOutcome:
        """The ERP customer an interrupted earlier run created for ``gid``: linked."""
        check = self._check_link(gid, existing.no)
        if check.refused:
            return RecordOutcome(decision, FAILED, check.refused, existing.no, gid, permanent=True)
        self._save_link(
            gid, existing.no, decision, check, last_import_at=self._now(), erp_etag=existing.etag
        )
        return RecordOutcome(
            decision, OK, "created by an interrupted earlier run; linked", existing.no, gid
        )

    def _settle_import_chunk(
        self, chunk: Sequence[tuple[_ImportCreate, ErpWriteResult]]
    ) -> Iterator[RecordOutcome]:
        outcomes = self._settle_import_list(chunk)
        self._record_all(outcomes)
        yield from outcomes

    def _settle_import_list(
        self, chunk: Sequence[tuple[_ImportCreate, ErpWriteResult]]
    ) -> list[RecordOutcome]:
        """Complete and fail the intents of ``chunk`` with their links, in one transaction
        (a link that moves from a deleted ERP customer: in its own)."""
        done: list[tuple[int, str, Link | None]] = []
        failed: list[tuple[int, str]] = []
        outcomes: dict[int, RecordOutcome] = {}
        now = self._now()
        for create, result in chunk:
            decision, gid = create.decision, create.gid
            if not result.ok or not result.no:
                message = result.message or "create failed"
                failed.append((create.intent, message))
                outcomes[create.intent] = RecordOutcome(
                    decision, FAILED, message, None, gid, permanent=result.refused
                )
                continue
            link = self._link(
                gid, result.no, decision, now, existing=create.check.current, erp_etag=result.etag
            )
            if create.check.replaces:
                self.state.complete_intent(
                    create.intent, target=result.no, link=link, replaces=create.check.replaces
                )
            else:
                done.append((create.intent, result.no, link))
            outcomes[create.intent] = RecordOutcome(decision, OK, "", result.no, gid)
        refused = self.state.settle_intents(done, failed) if done or failed else {}
        for intent, reason in refused.items():
            outcomes[intent] = replace(outcomes[intent], status=FAILED, message=reason)
        return [outcomes[create.intent] for create, _ in chunk]

    # ---- export: ERP -> Shopify ------------------------------------------------------------

    def _shopify(self) -> ShopifyWriter:
        if self.shopify is None:
            raise FatalError("no Shopify writer for this run")
        return self.shopify

    def _apply_export(self, decision: Decision) -> RecordOutcome:
        erp_no = decision.erp_no or decision.record
        if decision.action is Action.NOOP:
            return RecordOutcome(decision, OK, "no change", erp_no, decision.shopify_id)
        if decision.action is Action.CREATE:
            return self._export_create(decision, erp_no)
        gid = decision.shopify_id
        if not gid:
            return RecordOutcome(decision, FAILED, "decision names no Shopify customer")
        check = self._check_link(gid, erp_no)
        if check.refused:  # before writing: another ERP customer's Shopify customer is not touched
            return RecordOutcome(decision, FAILED, check.refused, erp_no, gid, permanent=True)
        updated_at: datetime | None = None
        if decision.action is Action.UPDATE and decision.changes:
            result = self._shopify().update_customer(gid, customer_input(decision))
            if not result.ok:
                return RecordOutcome(
                    decision,
                    FAILED,
                    "; ".join(result.errors),
                    erp_no,
                    gid,
                    permanent=result.refused,
                    unreachable="Shopify" if result.unreachable else "",
                )
            updated_at = result.customer.updated_at if result.customer else None
        self._save_link(
            gid, erp_no, decision, check, last_export_at=self._now(), own_write=updated_at
        )
        return RecordOutcome(decision, OK, "", erp_no, gid)

    def _export_create(self, decision: Decision, erp_no: str) -> RecordOutcome:
        shopify = self._shopify()
        key = f"{self.shop}:{erp_no}"
        data = customer_input(decision)
        intent = self.state.begin_intent(self.run_id, decision.record, "shopify.create", key)
        result = shopify.create_customer(data)
        if result.ok and result.customer is not None:
            gid = result.customer.id
            self.state.complete_intent(
                intent,
                target=gid,
                link=self._link(
                    gid,
                    erp_no,
                    decision,
                    self._now(),
                    existing=None,  # Shopify just created it
                    export=True,
                    own_write=result.customer.updated_at,
                ),
            )
            if decision.payload.get("send_invite"):
                invite = shopify.send_invite(gid)
                if not invite.ok:
                    return RecordOutcome(
                        decision,
                        OK,
                        "created; the invite e-mail failed: " + "; ".join(invite.errors),
                        erp_no,
                        gid,
                    )
            return RecordOutcome(decision, OK, "", erp_no, gid)
        message = "; ".join(result.errors) or "create failed"
        adopted = self._adopt_existing(decision, erp_no, data, message, intent)
        if adopted is not None:
            return adopted
        self.state.fail_intent(intent, message)
        return RecordOutcome(
            decision,
            FAILED,
            message,
            erp_no,
            None,
            permanent=result.refused,
            unreachable="Shopify" if result.unreachable else "",
        )

    def apply_export_creates(self, decisions: Sequence[Decision]) -> Iterator[RecordOutcome]:
        """Export creates as one batch, one recorded outcome per decision, in batches.

        The intents are journaled together before anything is sent; the writer sends the
        batch as one bulk job (above its threshold: ``bulk_writes``, ``bulk_write_threshold``)
        or one create per customer, a few in flight. The job's id is journaled as soon as it
        runs, so a run killed while it runs (or after) reads its result back on resume
        (:meth:`resume_pending`). Results are settled (intents, links, run log) a few hundred
        at a time, in one transaction each."""
        self._check_fence()
        shopify = self._shopify()
        pending: dict[str, _Create] = {}
        for decision in decisions:
            erp_no = decision.erp_no or decision.record
            try:
                data = customer_input(decision)
            except Exception as exc:  # a failing record never stops the run
                outcome = RecordOutcome(decision, FAILED, f"{type(exc).__name__}: {exc}")
                self._record(outcome)
                yield outcome
                continue
            pending[erp_no] = _Create(decision, erp_no, data)
        if not pending:
            return
        creates = list(pending.values())
        bulk = shopify.uses_bulk(len(creates))
        bulk_id, intents = self.state.begin_intents(
            self.run_id,
            [(c.decision.record, "shopify.create", f"{self.shop}:{c.erp_no}") for c in creates],
            bulk=bulk,
        )
        for create, intent in zip(creates, intents, strict=True):
            create.intent = intent

        def started(operation: str) -> None:
            if bulk_id is not None:
                self.state.bulk_started(bulk_id, operation)

        results = shopify.bulk_create_customers(
            ((c.erp_no, c.data) for c in creates), on_started=started
        )
        yield from self._settle_creates(pending, results)

    def apply_export_updates(self, decisions: Sequence[Decision]) -> Iterator[RecordOutcome]:
        """Export updates as one batch, one recorded outcome per decision.

        Each link is checked first (a refused one fails at once, nothing sent). The updates
        are journaled together and sent by bulk jobs when the writer says so
        (``bulk_writes``, ``bulk_write_threshold``): the changed addresses first
        (``customerAddressUpdate``), then ``customerUpdate`` for all, whose answer carries
        the ``updatedAt`` of our writes; else one by one, a few in flight. Updates that give
        a customer its first address go one by one after them.
        Results are settled (intents, links with our own write's ``updatedAt``, run log) a
        few hundred at a time, in one transaction each. Decisions that send nothing (no
        changes) are applied one at a time as :meth:`apply` does."""
        self._check_fence()
        shopify = self._shopify()
        batched: list[_Update] = []
        new_address: list[_Update] = []  # a first address: created one by one
        for decision in decisions:
            if (
                decision.direction is not Direction.EXPORT
                or decision.action is not Action.UPDATE
                or not decision.changes
                or not decision.shopify_id
            ):
                yield self.apply(decision)
                continue
            erp_no = decision.erp_no or decision.record
            gid = decision.shopify_id
            try:
                check = self._check_link(gid, erp_no)
                data = customer_input(decision)
            except FatalError:
                raise
            except Exception as exc:  # a failing record never stops the run
                outcome = RecordOutcome(decision, FAILED, f"{type(exc).__name__}: {exc}")
                self._record(outcome)
                yield outcome
                continue
            if check.refused:  # before writing: another ERP customer's customer is not touched
                outcome = RecordOutcome(
                    decision, FAILED, check.refused, erp_no, gid, permanent=True
                )
                self._record(outcome)
                yield outcome
                continue
            update = _Update(decision, erp_no, gid, data, check, run_id=self.run_id)
            known = data.address is None or bool(data.address.id)
            (batched if known else new_address).append(update)
        for group in (batched, new_address):
            if group:
                yield from self._send_updates(shopify, group)

    def _send_updates(
        self, shopify: ShopifyWriter, updates: Sequence[_Update]
    ) -> Iterator[RecordOutcome]:
        bulk = shopify.bulk_updatable(len(updates), (u.data for u in updates))
        bulk_id, intents = self.state.begin_intents(
            self.run_id,
            [
                (u.decision.record, "shopify.update", f"{self.shop}:{u.erp_no}", u.gid)
                for u in updates
            ],
            bulk=bulk,
            kind="customer",
        )
        for update, intent in zip(updates, intents, strict=True):
            update.intent = intent
        jobs = {"customer": bulk_id}
        moved = [u.intent for u in updates if u.data.address is not None]
        if bulk and moved:
            jobs["address"] = self.state.begin_bulk(self.run_id, moved, kind="address")

        def started(part: str, operation: str) -> None:
            job = jobs.get(part)
            if job is not None:
                self.state.bulk_started(job, operation)

        results = shopify.bulk_update_customers(
            ((str(u.intent), u.gid, u.data) for u in updates), on_started=started
        )
        yield from self._settle_updates({str(u.intent): u for u in updates}, results)

    def _settle_updates(
        self,
        updates: Mapping[str, _Update],
        results: Iterable[ShopifyWriteResult],
        *,
        resumed: bool = False,
    ) -> Iterator[RecordOutcome]:
        """Settle update results (keyed by intent id) in chunks: intents and links (our own
        write's ``updatedAt``, the export time) in one transaction, then the run log (a dead
        run's own, for the intents a resumed run settles)."""
        for chunk in _keyed_chunks(updates, results, "an update"):
            yield from self._settle_update_chunk(chunk, resumed)

    def _settle_update_chunk(
        self, chunk: Sequence[tuple[_Update, ShopifyWriteResult]], resumed: bool
    ) -> Iterator[RecordOutcome]:
        done: list[tuple[int, str, Link | None]] = []
        failed: list[tuple[int, str]] = []
        outcomes: dict[int, RecordOutcome] = {}
        now = self._now()
        note = "settled after a crash" if resumed else ""
        for update, result in chunk:
            decision = update.decision
            if not result.ok:
                message = "; ".join(result.errors) or "update failed"
                failed.append((update.intent, message))
                outcomes[update.intent] = RecordOutcome(
                    decision,
                    FAILED,
                    message,
                    update.erp_no,
                    update.gid,
                    permanent=result.refused,
                    unreachable="Shopify" if result.unreachable else "",
                )
                continue
            link = self._link(
                update.gid,
                update.erp_no,
                decision,
                now,
                existing=update.check.current,
                export=True,
                own_write=result.customer.updated_at if result.customer else None,
            )
            outcomes[update.intent] = RecordOutcome(decision, OK, note, update.erp_no, update.gid)
            if update.check.replaces:  # the link moves from a deleted ERP customer (rare)
                try:
                    self.state.complete_intent(
                        update.intent, target=update.gid, link=link, replaces=update.check.replaces
                    )
                except RecordError as exc:
                    self.state.fail_intent(update.intent, exc.render())
                    outcomes[update.intent] = RecordOutcome(
                        decision, FAILED, exc.render(), update.erp_no, update.gid, permanent=True
                    )
                continue
            done.append((update.intent, update.gid, link))
        refused = self.state.settle_intents(done, failed)
        for intent, reason in refused.items():
            outcomes[intent] = replace(outcomes[intent], status=FAILED, message=reason, permanent=True)
        ordered = [outcomes[update.intent] for update, _ in chunk]
        self._record_all(ordered, run_ids=[update.run_id for update, _ in chunk])
        yield from ordered

    def _settle_creates(
        self,
        creates: Mapping[str, _Create],
        results: Iterable[ShopifyWriteResult],
        *,
        resumed: bool = False,
    ) -> Iterator[RecordOutcome]:
        """Settle create results (keyed by ERP no.) in chunks: intents and links in one
        transaction, then the invites and the run log (not for intents of a dead run:
        ``resumed``; their records are planned again by this run when not created)."""
        for chunk in _keyed_chunks(creates, results, "a create"):
            yield from self._settle_chunk(chunk, resumed)

    def _settle_chunk(
        self, chunk: Sequence[tuple[_Create, ShopifyWriteResult]], resumed: bool
    ) -> Iterator[RecordOutcome]:
        done: list[tuple[int, str, Link | None]] = []
        failed: list[tuple[int, str]] = []
        outcomes: dict[int, RecordOutcome] = {}
        now = self._now()
        for create, result in chunk:
            decision, erp_no = create.decision, create.erp_no
            if result.ok and result.customer is not None:
                gid = result.customer.id
                link = self._link(
                    gid,
                    erp_no,
                    decision,
                    now,
                    existing=None,  # Shopify just created it
                    export=True,
                    own_write=result.customer.updated_at,
                )
                done.append((create.intent, gid, link))
                outcomes[create.intent] = RecordOutcome(decision, OK, "", erp_no, gid)
                continue
            message = "; ".join(result.errors) or "create failed"
            adopted = self._adopt_existing(decision, erp_no, create.data, message, create.intent)
            if adopted is not None:
                outcomes[create.intent] = adopted
                continue
            failed.append((create.intent, message))
            outcomes[create.intent] = RecordOutcome(
                decision,
                FAILED,
                message,
                erp_no,
                None,
                permanent=result.refused,
                unreachable="Shopify" if result.unreachable else "",
            )
        refused = self.state.settle_intents(done, failed)
        for intent, reason in refused.items():
            old = outcomes[intent]
            outcomes[intent] = replace(old, status=FAILED, message=reason, permanent=True)
        for create, _ in chunk:
            outcome = outcomes[create.intent]
            if (
                not resumed
                and outcome.status == OK
                and outcome.shopify_id
                and create.decision.payload.get("send_invite")
                and create.intent not in refused
            ):
                invite = self._shopify().send_invite(outcome.shopify_id)
                if not invite.ok:
                    outcomes[create.intent] = replace(
                        outcome,
                        message="created; the invite e-mail failed: " + "; ".join(invite.errors),
                    )
        ordered = [outcomes[create.intent] for create, _ in chunk]
        if not resumed:
            self._record_all(ordered)
        yield from ordered

    def _adopt_existing(
        self, decision: Decision, erp_no: str, data: CustomerInput, message: str, intent: int
    ) -> RecordOutcome | None:
        """Shopify says the e-mail or phone exists ("... has already been taken"): adopt that
        customer when it is linked to nobody (it may be the one an interrupted run created);
        otherwise leave the failure."""
        found = None
        what = ""
        if _TAKEN_EMAIL in message and data.email:
            found = self._shopify().find_by_email(data.email)
            what = f"e-mail {mask_email(data.email)}"
        if found is None and _TAKEN_PHONE in message and data.phone:
            found = self._shopify().find_by_phone(data.phone)
            what = f"phone {mask_phone(data.phone)}"
        if found is None:
            return None
        other = self.state.link_for_shopify(self.shop, found.id)
        if other is not None and other.erp_no != erp_no:
            return None
        self.state.complete_intent(
            intent,
            target=found.id,
            link=self._link(found.id, erp_no, decision, self._now(), existing=other, export=True),
        )
        return RecordOutcome(
            decision, OK, f"adopted the existing Shopify customer with {what}", erp_no, found.id
        )

    # ---- order mapping ---------------------------------------------------------------------

    def _apply_order(self, decision: Decision) -> RecordOutcome:
        """An order decision names its customer; a nested import decision (payload
        ``import``) creates, updates or links the order's Shopify customer first."""
        nested = decision.payload.get("import")
        if isinstance(nested, Decision) and nested.action is not Action.SKIP:
            outcome = self._apply_import(nested)
            if outcome.status != OK:
                return RecordOutcome(
                    decision, FAILED, outcome.message, permanent=outcome.permanent
                )
            return RecordOutcome(decision, OK, "", outcome.erp_no, decision.shopify_id)
        return RecordOutcome(decision, OK, "", decision.erp_no, decision.shopify_id)

    # ---- resume ----------------------------------------------------------------------------

    def _settle_bulk(self, batch: Any) -> list[RecordOutcome]:
        """Read back the result of a bulk job a dead run started and settle its pending
        intents by it (a line without a result is looked up by e-mail and phone first). When
        the result cannot be read (the job expired), they are left to :meth:`_settle`."""
        if batch.kind == "customer":
            return self._settle_bulk_updates(batch)
        if batch.kind == "address":
            return self._settle_bulk_addresses(batch)
        creates: dict[str, _Create] = {}
        items: list[tuple[str, CustomerInput]] = []
        for intent in batch.intents:
            erp_no = intent.idempotency_key.split(":", 1)[-1]
            customer = self._erp().get_customer(erp_no) if self.erp is not None else None
            data = CustomerInput(
                email=first_email(customer.email) if customer is not None else None,
                phone=None,
            )
            items.append((erp_no, data))
            if intent.status == "pending":
                decision = Decision(
                    direction=Direction.EXPORT,
                    action=Action.CREATE,
                    shop=self.shop,
                    record=intent.record,
                )
                creates[erp_no] = _Create(decision, erp_no, data, intent.id)
        log.info(
            "reading back bulk job %s of an interrupted run (%d pending creates)",
            batch.operation,
            len(creates),
        )
        try:
            results = [
                r
                for r in self._shopify().bulk_create_results(batch.operation, items)
                if r.key in creates
            ]
        except (FatalError, RetriableError) as exc:
            log.warning(
                "bulk job %s could not be read back (%s); looking its customers up one by one",
                batch.operation,
                exc.render(),
            )
            return []
        settled = []
        for outcome in self._settle_creates(creates, results, resumed=True):
            if outcome.status == OK:
                settled.append(replace(outcome, message="settled after a crash"))
            else:
                settled.append(replace(outcome, status=SKIPPED))
        return settled

    def _settle_bulk_updates(self, batch: Any) -> list[RecordOutcome]:
        """Settle a dead run's bulk update job by its result: a line Shopify applied gets
        its link (our own write's ``updatedAt``) and its intent done; a refused one (its
        ``userErrors``) fails; a line without a result fails too, not sent again: this run
        plans the record afresh. Outcomes go to the dead run's log. When the result cannot
        be read (the job expired), the intents are left to :meth:`_settle`."""
        keys = [str(intent.id) for intent in batch.intents]
        updates: dict[str, _Update] = {}
        for intent in batch.intents:
            if intent.status != "pending":
                continue
            erp_no = intent.idempotency_key.split(":", 1)[-1]
            decision = Decision(
                direction=Direction.EXPORT,
                action=Action.UPDATE,
                shop=self.shop,
                record=intent.record,
                erp_no=erp_no,
                shopify_id=intent.target,
            )
            updates[str(intent.id)] = _Update(
                decision,
                erp_no,
                intent.target,
                CustomerInput(),
                _LinkCheck(self._stored(intent.target)),
                intent.id,
                intent.run_id,
            )
        log.info(
            "reading back bulk job %s of an interrupted run (%d pending updates)",
            batch.operation,
            len(updates),
        )
        try:
            results = [
                r
                for r in self._shopify().bulk_update_results(batch.operation, keys)
                if r.key in updates
            ]
        except (FatalError, RetriableError) as exc:
            log.warning(
                "bulk job %s could not be read back (%s); its updates are planned again",
                batch.operation,
                exc.render(),
            )
            return []
        return list(self._settle_updates(updates, results, resumed=True))

    def _settle_bulk_addresses(self, batch: Any) -> list[RecordOutcome]:
        """The address job of a dead run's bulk update: a line Shopify refused fails its
        record (in the dead run's log); the others wait for the customer job's result."""
        keys = [str(intent.id) for intent in batch.intents]
        pending = {str(i.id): i for i in batch.intents if i.status == "pending"}
        try:
            results = list(self._shopify().bulk_address_results(batch.operation, keys))
        except (FatalError, RetriableError) as exc:
            log.warning("bulk job %s could not be read back (%s)", batch.operation, exc.render())
            return []
        outcomes: list[RecordOutcome] = []
        for result in results:
            intent = pending.get(result.key)
            if intent is None or result.ok:
                continue
            message = "; ".join(result.errors) or "address update failed"
            self.state.fail_intent(intent.id, message)
            decision = Decision(
                direction=Direction.EXPORT,
                action=Action.UPDATE,
                shop=self.shop,
                record=intent.record,
                shopify_id=intent.target,
            )
            outcomes.append(
                RecordOutcome(
                    decision, FAILED, message, intent.record, intent.target,
                    permanent=result.refused,
                )
            )
        if outcomes:
            run_ids = [pending[r.key].run_id for r in results if r.key in pending and not r.ok]
            self._record_all(outcomes, run_ids=run_ids)
        return outcomes

    def _settle(self, intent: Any) -> RecordOutcome:
        decision = Decision(
            direction=Direction.IMPORT if intent.action == "erp.create" else Direction.EXPORT,
            action=Action.CREATE,
            shop=self.shop,
            record=intent.record,
        )
        if intent.action == "erp.create":
            found = self._erp().find_by_idempotency_key(intent.idempotency_key)
            if found is None:
                self.state.fail_intent(intent.id, "not applied before the crash; re-planned")
                return RecordOutcome(decision, SKIPPED, "not applied before the crash")
            self.state.complete_intent(
                intent.id,
                target=found.no,
                link=self._link(
                    intent.record,
                    found.no,
                    decision,
                    self._now(),
                    existing=self._stored(intent.record),
                    erp_etag=found.etag,
                ),
            )
            return RecordOutcome(decision, OK, "settled after a crash", found.no, intent.record)
        if intent.action == "shopify.create":
            erp_no = intent.idempotency_key.split(":", 1)[-1]
            customer = self._erp().get_customer(erp_no) if self.erp is not None else None
            email = first_email(customer.email) if customer is not None else ""
            phone = _e164(customer) if customer is not None else None
            if customer is not None and not email and not phone:
                return self._park_unknown_create(intent, decision)
            created = self._shopify().find_by_email(email) if email else None
            if created is None and phone:
                created = self._shopify().find_by_phone(phone)
            if created is None:
                self.state.fail_intent(intent.id, "not applied before the crash; re-planned")
                return RecordOutcome(decision, SKIPPED, "not applied before the crash")
            self.state.complete_intent(
                intent.id,
                target=created.id,
                link=self._link(
                    created.id,
                    erp_no,
                    decision,
                    self._now(),
                    existing=self._stored(created.id),
                    export=True,
                ),
            )
            return RecordOutcome(decision, OK, "settled after a crash", erp_no, created.id)
        if intent.action == "shopify.update":
            # sent one by one (or its bulk job never ran): whether Shopify applied it is not
            # known; nothing is sent again here, this run plans the record afresh
            update = replace(decision, action=Action.UPDATE, shopify_id=intent.target or None)
            self.state.fail_intent(intent.id, "interrupted by a crash; planned again")
            return RecordOutcome(update, SKIPPED, "interrupted by a crash; planned again")
        self.state.fail_intent(intent.id, f"unknown intent action {intent.action!r}")
        return RecordOutcome(decision, SKIPPED, "unknown intent")

    def _park_unknown_create(self, intent: Any, decision: Decision) -> RecordOutcome:
        """A Shopify create an interrupted run may have sent, for a customer with neither
        e-mail nor phone: nothing identifies it in Shopify, and sending it again could create
        it twice. The record is parked (permanent) for a person to check; the planner leaves
        a parked, unchanged record alone, so this run does not send it either."""
        when = intent.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if intent.created_at else ""
        reason = (
            f"a Shopify create of this customer was sent by run {intent.run_id} (at {when}) "
            "and the run was interrupted before its answer was recorded; the customer has no "
            "e-mail or phone to look it up by. Look for it in Shopify among the customers "
            "created then: if it is there, delete it (or give both the same e-mail); then run "
            f"`custsync attention retry {intent.record}` to create it"
        )
        self.state.fail_intent(intent.id, reason)
        note = getattr(self.state, "note_failures", None)
        if note is not None:
            note(
                self.shop,
                Direction.EXPORT.value,
                self.run_id,
                [Failure(record=intent.record, reason=reason, permanent=True)],
            )
        log.warning("shop %s, ERP customer %s: %s", self.shop, intent.record, reason)
        return RecordOutcome(decision, FAILED, reason, intent.record, permanent=True)

    # ---- links and run log -----------------------------------------------------------------

    def _link(
        self,
        gid: str,
        erp_no: str,
        decision: Decision,
        when: datetime,
        *,
        existing: Link | None,
        export: bool = False,
        own_write: datetime | None = None,
        erp_etag: str | None = None,
    ) -> Link:
        """The link to save; ``existing`` is the Shopify customer's stored link (its address
        ids and times are kept when it is to the same ERP customer)."""
        base = existing if existing is not None and existing.erp_no == erp_no else None
        address_ids = tuple(base.address_ids) if base is not None else ()
        extra = decision.payload.get("address_ids") or ()
        address_ids = tuple(dict.fromkeys((*address_ids, *extra)))
        return Link(
            shop=self.shop,
            shopify_id=gid,
            erp_no=erp_no,
            address_ids=address_ids,
            last_import_at=when if not export else (base.last_import_at if base else None),
            last_export_at=when if export else (base.last_export_at if base else None),
            own_write_shopify_updated_at=own_write
            or (base.own_write_shopify_updated_at if base else None),
            own_write_erp_etag=erp_etag or (base.own_write_erp_etag if base else None),
        )

    def _save_link(
        self,
        gid: str,
        erp_no: str,
        decision: Decision,
        check: _LinkCheck,
        *,
        last_import_at: datetime | None = None,
        last_export_at: datetime | None = None,
        own_write: datetime | None = None,
        erp_etag: str | None = None,
    ) -> None:
        when = last_export_at or last_import_at or self._now()
        link = self._link(
            gid,
            erp_no,
            decision,
            when,
            existing=check.current,
            export=last_export_at is not None,
            own_write=own_write,
            erp_etag=erp_etag,
        )
        self.state.save_link(link, replaces=check.replaces)

    def _stored(self, gid: str) -> Link | None:
        return self.state.link_for_shopify(self.shop, gid)

    def _check_link(self, gid: str, erp_no: str) -> _LinkCheck:
        """Whether ``gid`` can be linked to ``erp_no`` without dropping another link, read
        once per record before anything is written. ``erp_no`` "" is an ERP customer yet to
        be created. A stored link to an ERP customer that no longer exists does not stand in
        the way: it moves (``replaces``)."""
        current = self._stored(gid)
        replaces: str | None = None
        if current is not None and current.erp_no != erp_no:
            if self.erp is not None and self.erp.get_customer(current.erp_no) is None:
                replaces = current.erp_no
            else:
                return _LinkCheck(
                    current,
                    refused=(
                        f"Shopify customer {gid} is already linked to ERP customer "
                        f"{current.erp_no}; not linked to {erp_no or 'a new ERP customer'} "
                        "(one Shopify customer maps to one ERP customer: the existing link "
                        "is kept)"
                    ),
                )
        other = self.state.link_for_erp(self.shop, erp_no) if erp_no else None
        if other is not None and other.shopify_id != gid:
            return _LinkCheck(
                current,
                refused=(
                    f"ERP customer {erp_no} is already linked to Shopify customer "
                    f"{other.shopify_id}; not linked to {gid} (the existing link is kept)"
                ),
            )
        return _LinkCheck(current, replaces=replaces)

    def _record_all(
        self, outcomes: Sequence[RecordOutcome], *, run_ids: Sequence[int] | None = None
    ) -> None:
        """The run-log rows of many outcomes, in one transaction (in this run, or each in
        its own of ``run_ids``)."""
        runs = run_ids if run_ids is not None else [self.run_id] * len(outcomes)
        self.state.record_outcomes(
            Outcome(
                run_id,
                o.decision.record,
                f"{o.decision.direction.value}.{o.decision.action.value}",
                o.status,
                o.message or o.decision.reason_code or "",
                tuple(rule.id for rule in o.decision.rules),
            )
            for o, run_id in zip(outcomes, runs, strict=True)
        )

    def _record(self, outcome: RecordOutcome) -> None:
        decision = outcome.decision
        reason = outcome.message or decision.reason_code or ""
        if decision.action is Action.SKIP and decision.reason_code:
            reason = f"{decision.reason_code}: {decision.message or ''}".rstrip(": ")
        self.state.record_outcome(
            self.run_id,
            decision.record,
            f"{decision.direction.value}.{decision.action.value}",
            outcome.status,
            reason,
            [rule.id for rule in decision.rules],
        )
