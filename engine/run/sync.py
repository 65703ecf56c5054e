"""A shop's sync run: read incrementally, plan, apply, remember.

``custsync sync``, ``custsync schedule`` and ``custsync demo`` all run :func:`run_sync`. One
run of one shop:

1. note the run's start time; settle intents a crashed earlier run left pending;
2. read what changed: Shopify customers updated after the import cursor, ERP customers
   modified after the export cursor (our own writes are not echoed back), and for those the
   Shopify counterparts the export rules need (the linked customer by id, an unlinked one by
   e-mail and phone) — API calls proportional to the changes, not to the store's size;
3. plan with the rule engine (exactly what ``custsync plan`` shows);
4. apply in the reference connector's order: import, export updates, export creates; a
   failing record is reported and the run goes on. A record its reader could not read (a
   Shopify customer with a bad ``updatedAt``, see the readers' ``problems()``) is a failed
   record of its direction (reason ``bad-record``), not only a log line;
5. advance each direction's cursor to the run's start time (a saved plan's: the time it was
   made) only when every record of that direction succeeded and the run was not stopped, so
   the next run reads the failed (and unreadable) records again.

A stale saved plan is refused before anything is applied: the run is recorded as
``refused`` with the reason, which is not a failure (nothing was attempted).
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..decide.engine import Engine
from ..errors import ConfigError, CustsyncError, FatalError, RetriableError, StalePlanError
from ..masking import mask_text
from ..model import Action, Decision, Direction, ErpCustomer, ShopContext, ShopifyCustomer
from ..ports import ErpBatchWriter, ErpCandidateReader, ErpReader, ShopifyReader
from ..progress import Progress
from .apply import FAILED, Applier, RecordOutcome
from .plan import (
    Plan,
)
from .planner import plan_incremental
from .planread import SavedPlan
from .render import mask_label

log = logging.getLogger("custsync.sync")

__all__ = [
    "SyncResult",
    "run_sync",
    "sync_shop",
]

SUCCEEDED, PARTIAL, FAILED_RUN, ABANDONED = "succeeded", "partial", "failed", "abandoned"
#: after this many records in a row failed because one side (Shopify or the ERP) could not be
#: reached even after the connector's retries (connection failures, 5xx, timeouts), the run
#: stops: cursor kept, lease released, the scheduler retries it with its backoff
UNREACHABLE_AFTER = 3
#: a saved plan refused as stale: nothing applied, no cursor moved, not a failure
REFUSED = "refused"


def _now() -> datetime:
    return datetime.now(UTC)


def shop_context(shop_config: Any) -> ShopContext:
    return ShopContext(
        name=shop_config.name,
        settings=shop_config.settings,
        country_setups=shop_config.country_setups,
    )


def directions_for(direction: str) -> tuple[Direction, ...]:
    if direction in ("both", "all"):
        return (Direction.IMPORT, Direction.EXPORT)
    try:
        return (Direction(direction),)
    except ValueError:
        raise ConfigError(f"unknown direction {direction!r}; use import, export or both") from None


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncResult:
    shop: str
    status: str  # succeeded | partial | failed | abandoned | refused
    counts: Mapping[str, int]
    error: str = ""
    run_ids: tuple[int, ...] = ()
    failures: tuple[RecordOutcome, ...] = ()
    plan: Plan | None = None
    api_reads: int = 0
    #: False when retrying cannot help (configuration, authentication, a stale plan)
    retriable: bool = True

    @property
    def ok(self) -> bool:
        return self.status == SUCCEEDED

    @property
    def run_id(self) -> int | None:
        """The run-log entry, when the run had one direction (the scheduler's case)."""
        return self.run_ids[0] if len(self.run_ids) == 1 else None


#: most export creates (or updates) sent as one bulk job (a job's input file stays far below
#: Shopify's 100 MB limit, and a crash leaves at most this many writes to read back)
BULK_BATCH = 10_000
#: export creates and updates sent one by one (a few in flight) per batch: the stop token is
#: checked between batches. An outage stops a batch of updates after UNREACHABLE_AFTER of
#: them in a row (a batch of creates is finished first: a create whose send is not known
#: would be looked up, or parked, by the next run).
EACH_BATCH = 32
#: decisions of a saved plan checked for staleness together (their Shopify customers read in
#: one ``get_customers`` call: one request per 250)
STALE_CHECK_BATCH = 1000


#: import creates per batch for an ERP writer that sends creates together
#: (``ErpBatchWriter``: Business Central's ``$batch`` of 100): the stop token is checked
#: between batches, and a crash leaves at most this many creates to look up
IMPORT_BATCH = 500


def _is_export_create(decision: Decision) -> bool:
    return decision.direction is Direction.EXPORT and decision.action is Action.CREATE


def _is_export_update(decision: Decision) -> bool:
    """An export update that sends something to Shopify (batched: bulk or a few in flight)."""
    return (
        decision.direction is Direction.EXPORT
        and decision.action is Action.UPDATE
        and bool(decision.changes)
        and bool(decision.shopify_id)
    )


def _is_import_create(decision: Decision) -> bool:
    return decision.direction is Direction.IMPORT and decision.action is Action.CREATE


def _is_import_update(decision: Decision) -> bool:
    return decision.direction is Direction.IMPORT and decision.action is Action.UPDATE


#: the groups of decisions in apply order (behaviour.md §7): the import decisions applied one
#: by one, import updates, import creates; the export decisions applied one by one, export
#: updates, export creates; order mappings
(_IMPORTS, _IMPORT_UPDATES, _IMPORT_CREATES, _EXPORTS, _UPDATES, _CREATES, _ORDERS) = range(7)


def _apply_group(decision: Decision) -> int:
    if decision.direction is Direction.IMPORT:
        if _is_import_create(decision):
            return _IMPORT_CREATES
        return _IMPORT_UPDATES if _is_import_update(decision) else _IMPORTS
    if decision.direction is Direction.EXPORT:
        if _is_export_create(decision):
            return _CREATES
        return _UPDATES if _is_export_update(decision) else _EXPORTS
    return _ORDERS


def _apply_batches(
    ordered: Iterable[Decision], groups: Mapping[int, int], shopify: Any, erp: Any = None
) -> Iterator[list[Decision]]:
    """The decisions (in apply order, by :func:`_apply_group`; ``groups`` says how many of
    each) one per batch, except the writes a writer sends together. Export updates and
    creates: bulk jobs of up to :data:`BULK_BATCH` when the Shopify writer uses bulk for them
    (``uses_bulk``), else in batches of :data:`EACH_BATCH` (sent one by one, a few in
    flight).
    Import updates and creates: for an ERP writer that sends them together
    (``ErpBatchWriter``: Business Central's ``$batch``) in batches of :data:`IMPORT_BATCH`;
    else creates in batches of :data:`EACH_BATCH` (one ``create_customer`` each) and updates
    one by one. One batch is held at a time (``ordered`` may be read from a file)."""
    batching = isinstance(erp, ErpBatchWriter)
    sizes = {
        _IMPORT_UPDATES: IMPORT_BATCH if batching else 1,
        _IMPORT_CREATES: IMPORT_BATCH if batching else EACH_BATCH,
        _UPDATES: _batch_size(groups.get(_UPDATES, 0), shopify, each=EACH_BATCH),
        _CREATES: _batch_size(groups.get(_CREATES, 0), shopify, each=EACH_BATCH),
    }
    batch: list[Decision] = []
    batch_group = -1
    for decision in ordered:
        group = _apply_group(decision)
        if batch and (group != batch_group or len(batch) == sizes.get(group, 1)):
            yield batch
            batch = []
        batch.append(decision)
        batch_group = group
    if batch:
        yield batch


def _batch_size(writes: int, shopify: Any, each: int) -> int:
    if writes and shopify.uses_bulk(writes):
        batches = -(-writes // BULK_BATCH)
        return -(-writes // batches)  # even batches, each still above the threshold
    return each


def _in_apply_order(
    plan: Plan | SavedPlan, shop: str, wanted: Sequence[Direction]
) -> tuple[Counter[int], Iterable[Decision]]:
    """How many decisions of each :func:`_apply_group` ``shop`` applies, and the decisions in
    apply order: sorted in memory for a plan just made, read from the file group by group for
    a saved one (memory bounded by a batch, not by the plan)."""

    def mine(decision: Decision) -> bool:
        return decision.shop == shop and decision.direction in wanted

    if isinstance(plan, SavedPlan):
        groups = Counter(map(_apply_group, plan.decisions(mine)))

        def group(number: int) -> Iterator[Decision]:
            return plan.decisions(lambda d: mine(d) and _apply_group(d) == number)

        return groups, itertools.chain.from_iterable(map(group, sorted(groups)))
    ordered = sorted(filter(mine, plan.decisions), key=_apply_group)
    return Counter(map(_apply_group, ordered)), ordered


def plan_decisions(plan: Plan | SavedPlan) -> Iterable[Decision]:
    """A plan's decisions: held in memory, or read again from a saved plan's file."""
    return plan.decisions() if isinstance(plan, SavedPlan) else plan.decisions


def check_plan_current(
    plan: Plan | SavedPlan,
    erp: ErpReader,
    shopify: ShopifyReader,
    state: Any = None,
    shop: str | None = None,
    directions: Sequence[Direction] | None = None,
) -> None:
    """Refuse a saved plan whose records changed since it was made (Terraform ``-out``).

    A change is stale when its target changed (its version differs), when its source changed
    (the planned values are no longer what the source says) or, with ``state``, when a record
    it creates or links has been linked to another record since (a plan applied twice, or
    after a sync, must not report creates that already happened). ``shop`` and
    ``directions`` limit the check to the decisions about to be applied."""
    stale: list[str] = []
    count = 0
    checked = (
        decision
        for decision in plan_decisions(plan)
        if decision.is_change
        and (shop is None or decision.shop == shop)
        and (directions is None or decision.direction in directions)
    )
    while chunk := list(itertools.islice(checked, STALE_CHECK_BATCH)):
        # the customers of a chunk in a few requests, not one request a decision
        customers = shopify.get_customers(_records_checked(chunk, Direction.EXPORT))
        erp_customer = _erp_customers_checked(erp, chunk)
        for decision in chunk:
            why = _stale_reason(decision, erp_customer, customers.get, state)
            if why:
                count += 1
                if len(stale) < 5:  # the first few are named; the rest only counted
                    stale.append(f"{decision.direction.value} {decision.record} ({why})")
    if stale:
        more = f" (and {count - 5} more)" if count > 5 else ""
        raise StalePlanError(
            "the plan is stale: its records changed since it was made: "
            + ", ".join(stale)
            + more
            + "; make a new plan"
        )


def _records_checked(decisions: Iterable[Decision], side: Direction) -> list[str]:
    """The records :func:`_stale_reason` reads on one side for ``decisions`` (``side``: the
    direction whose target that side is, EXPORT for Shopify, IMPORT for the ERP): each
    change's target there when its version was read, and its source there."""
    ids: list[str] = []
    for decision in decisions:
        if decision.direction is side:
            target = decision.shopify_id if side is Direction.EXPORT else decision.erp_no
            if decision.target_version is not None and target:
                ids.append(target)
        elif (
            decision.direction in (Direction.IMPORT, Direction.EXPORT)
            and decision.source_version is not None
        ):
            ids.append(decision.record)
    return ids


def _erp_customers_checked(
    erp: ErpReader, decisions: Sequence[Decision]
) -> Callable[[str], ErpCustomer | None]:
    """How :func:`_stale_reason` reads the ERP customers of ``decisions`` (an import's
    target, an export's source): together where the ERP reads customers by number in a few
    requests (``ErpCandidateReader`` with ``nos``: Business Central 20 a request, where a
    read each would spend its request budget on the check), else one by one."""
    nos = _records_checked(decisions, Direction.IMPORT)
    if nos and isinstance(erp, ErpCandidateReader):
        found = erp.candidates(nos=nos)
        if found is not None:
            return {customer.no: customer for customer in found}.get
    return erp.get_customer


def _stale_reason(
    decision: Decision,
    erp_customer: Callable[[str], ErpCustomer | None],
    shopify_customer: Callable[[str], ShopifyCustomer | None],
    state: Any,
) -> str | None:
    """Why ``decision`` no longer applies, or None when it still does (``erp_customer`` and
    ``shopify_customer``: the current customers by number and by id, as read for
    :func:`_erp_customers_checked` and :func:`_records_checked`)."""
    direction = decision.direction
    if direction not in (Direction.IMPORT, Direction.EXPORT):
        return None
    if decision.target_version is not None:
        if direction is Direction.IMPORT and decision.erp_no:
            current = _erp_version(erp_customer(decision.erp_no))
        elif direction is Direction.EXPORT and decision.shopify_id:
            current = _shopify_version(shopify_customer(decision.shopify_id))
        else:
            current = decision.target_version
        if current != decision.target_version:
            return "target changed"
    if decision.source_version is not None:
        if direction is Direction.IMPORT:
            source = _shopify_version(shopify_customer(decision.record))
        else:
            source = _erp_version(erp_customer(decision.record))
        if source != decision.source_version:
            return "source changed"
    if state is not None:
        if direction is Direction.IMPORT:
            link = state.link_for_shopify(decision.shop, decision.record)
            if link is not None and link.erp_no != decision.erp_no:
                return f"already linked to ERP customer {link.erp_no}"
        else:
            link = state.link_for_erp(decision.shop, decision.record)
            if link is not None and link.shopify_id != decision.shopify_id:
                return f"already linked to Shopify customer {link.shopify_id}"
            if decision.shopify_id and link is None:
                # the Shopify customer it adopts has been linked to another ERP customer since
                other = state.link_for_shopify(decision.shop, decision.shopify_id)
                if other is not None and other.erp_no != decision.record:
                    return (
                        f"Shopify customer {decision.shopify_id} already linked to ERP "
                        f"customer {other.erp_no}"
                    )
    return None


def _erp_version(customer: ErpCustomer | None) -> str | None:
    if customer is None:
        return None
    if customer.etag:
        return customer.etag
    return customer.modified_at.isoformat() if customer.modified_at else None


def _shopify_version(customer: ShopifyCustomer | None) -> str | None:
    if customer is None or customer.updated_at is None:
        return None
    return customer.updated_at.isoformat()


def sync_shop(
    shop_config: Any,
    direction: str = "both",
    *,
    rules: Any,
    state: Any,
    erp: Any,
    shopify: Any,
    stop: Any = None,
    plan: Plan | SavedPlan | None = None,
    full: bool = False,
    progress: bool = True,
    now: Callable[[], datetime] = _now,
    on_planned: Callable[[Plan | SavedPlan], None] | None = None,
    unreachable_after: int = UNREACHABLE_AFTER,
) -> SyncResult:
    """Run one shop's sync with the given writers; see the module docstring.

    ``plan`` applies a saved plan instead of planning; a stale one is refused (status
    ``refused``, the reason in ``error``, nothing applied, no cursor moved). ``stop`` is an
    Event-like object checked between records: when set, the run ends after the current
    record as ``abandoned`` and no cursor moves. After ``unreachable_after`` records in a row
    failed because Shopify (or the ERP) could not be reached, the run stops as ``failed``
    ("stopped: Shopify unreachable ...", retriable) instead of walking through the rest.
    """
    shop = shop_context(shop_config)
    wanted = directions_for(direction)
    saved = plan
    if saved is not None:
        # a saved plan covers only its own shops and directions: a direction it did not plan
        # must not be marked done (its cursor would skip the changes nobody looked at)
        wanted = tuple(d for d in wanted if d in saved.directions)
        if shop.name not in saved.shops or not wanted:
            raise ConfigError(
                f"the saved plan has nothing for shop {shop.name!r} in direction {direction!r} "
                f"(it covers shops {', '.join(saved.shops) or '(none)'}, directions "
                f"{', '.join(d.value for d in saved.directions) or '(none)'})"
            )
    started = now()
    # what the cursors may move to: a saved plan saw the sources when it was made, so changes
    # after that (and before this run) are not in it and must be read by the next run
    cursor_at = started if saved is None else min(started, saved.created_at)
    run_ids: dict[Direction, int] = {
        d: state.start_run(shop.name, d.value, started) for d in wanted
    }
    counts: dict[Direction, dict[str, int]] = {d: {} for d in wanted}
    failures: list[RecordOutcome] = []
    #: records applied without failing, per direction (off the attention list)
    went_through: dict[Direction, list[str]] = {d: [] for d in wanted}
    appliers = {
        d: Applier(
            shop=shop.name, run_id=run_ids[d], state=state, erp=erp, shopify=shopify, now=now
        )
        for d in wanted
    }
    status = SUCCEEDED
    error = ""
    retriable = True
    api_reads = 0
    bar = Progress(enabled=progress)  # reading, planning, applying: one bar, phase by phase
    try:
        for d in wanted:
            for settled in appliers[d].resume_pending():
                log.info(
                    "settled %s %s after an interrupted run: %s",
                    d.value,
                    settled.decision.record,
                    settled.message,
                )
        if plan is None:
            cursors = {d.value: state.cursor(shop.name, d.value) for d in wanted}
            retries = getattr(state, "retries", None)
            retry = {d.value: retries(shop.name, d.value) for d in wanted} if retries else None
            parked_reader = getattr(state, "attention", None)
            parked_at: dict[str, dict[str, datetime]] = {}
            for record in parked_reader(shop.name, status="parked") if parked_reader else ():
                if record.parked_at is not None:
                    parked_at.setdefault(record.direction, {})[record.record] = record.parked_at
            reads: Any = shopify if stop is None else _StoppableReads(shopify, stop)
            plan, inputs = plan_incremental(
                shop,
                engine=Engine(rules),
                erp=erp,
                shopify=reads,
                link_source=state,
                cursors=cursors,
                directions=wanted,
                full=full,
                now=started,
                retry=retry,
                parked=parked_at,
                progress=bar,
                overlap_seconds=float(getattr(shop_config, "overlap_seconds", 0.0) or 0.0),
            )
            api_reads = inputs.api_reads
        else:
            check_plan_current(plan, erp, shopify, state, shop.name, wanted)
        if on_planned is not None:
            on_planned(plan)
        groups, ordered = _in_apply_order(plan, shop.name, wanted)
        planned = sum(groups.values())
        bar.start(planned, f"sync {shop.name}", unit="customers")
        unreachable: list[RecordOutcome] = []  # the latest records failed by one side's outage
        applied = 0
        try:
            for batch in _apply_batches(ordered, groups, shopify, erp):
                if stop is not None and stop.is_set():
                    status = ABANDONED
                    error = getattr(stop, "reason", "") or "stop requested"
                    break
                applier = appliers[batch[0].direction]
                if _is_import_create(batch[0]):
                    outcomes: Iterable[RecordOutcome] = applier.apply_import_creates(batch)
                elif _is_import_update(batch[0]) and isinstance(erp, ErpBatchWriter):
                    outcomes = applier.apply_import_updates(batch)
                elif _is_export_create(batch[0]):
                    outcomes = applier.apply_export_creates(batch)
                elif _is_export_update(batch[0]):
                    outcomes = applier.apply_export_updates(batch)
                else:
                    outcomes = (applier.apply(batch[0]),)
                seen = 0
                for outcome in outcomes:
                    seen += 1
                    bucket = counts[outcome.decision.direction]
                    bucket[outcome.counted_as] = bucket.get(outcome.counted_as, 0) + 1
                    if outcome.status == FAILED:
                        failures.append(outcome)
                    else:
                        went_through[outcome.decision.direction].append(outcome.decision.record)
                    bar.advance()
                    if not outcome.unreachable or (
                        unreachable and unreachable[-1].unreachable != outcome.unreachable
                    ):
                        unreachable.clear()
                    if outcome.unreachable:
                        unreachable.append(outcome)
                    if (
                        len(unreachable) >= unreachable_after
                        and seen < len(batch)
                        and _is_export_update(batch[0])
                    ):
                        # updates sent a few at a time: stop mid-batch; the ones not sent are
                        # not started, and those whose answers are not recorded stay journaled
                        # as pending: the next run plans them again (nothing is lost)
                        close = getattr(outcomes, "close", None)
                        if close is not None:
                            close()
                        break
                applied += seen
                if len(unreachable) >= unreachable_after and applied < planned:
                    # (after the last record there is nothing left to stop: the run ends)
                    last = unreachable[-1]
                    status = FAILED_RUN
                    error = (
                        f"stopped: {last.unreachable} unreachable: {len(unreachable)} "
                        f"records in a row failed after retries (last: {last.message}); "
                        "the cursor stays, the next run carries on"
                    )
                    break
        finally:
            bar.close()
    except _Stopped as exc:  # stopped while reading: nothing was applied
        status, error = ABANDONED, str(exc)
    except StalePlanError as exc:  # raised before the first record: nothing was attempted
        status, error, retriable = REFUSED, exc.render(), False
    except (FatalError, ConfigError) as exc:
        status, error, retriable = FAILED_RUN, exc.render(), False
    except RetriableError as exc:
        status, error = FAILED_RUN, exc.render()
    except Exception as exc:  # never leave a run "running": record it as failed, then raise
        bar.close()
        for d in wanted:
            try:
                state.finish_run(run_ids[d], "failed", counts[d], f"{type(exc).__name__}: {exc}")
            except Exception:  # the state is failing too: the error that stopped us counts
                log.warning("run %s could not be finished in the run log", run_ids[d])
        raise
    bar.close()  # a run stopped while reading or planning: the bar goes too
    finished_status = status
    unrecorded = ""  # why the run log could not be finished (a full disk, the database gone)
    for d in wanted:
        failed_here = [f for f in failures if f.decision.direction is d]
        parked = _note_attention(
            state, shop_config, d, run_ids[d], failed_here, went_through[d]
        )
        if status == SUCCEEDED and failed_here:
            run_status, run_error = PARTIAL, f"{len(failed_here)} record(s) failed"
            finished_status = PARTIAL
            if all(f.decision.record in parked for f in failed_here):
                # every failure is parked on the attention list: it no longer holds the
                # cursor (it comes back when its record changes, or on `attention retry`)
                run_error += f", all parked ({ATTENTION_HINT})"
                state.advance_cursor(shop.name, d.value, cursor_at)
            elif parked:
                run_error += f", {len(parked)} of them parked ({ATTENTION_HINT})"
        elif status == SUCCEEDED:
            run_status, run_error = "succeeded", ""
            try:
                state.advance_cursor(shop.name, d.value, cursor_at)
            except CustsyncError as exc:  # the cursor stays: the next run reads it all again
                run_status, run_error = "failed", f"the cursor could not be moved: {exc.render()}"
                finished_status, error = FAILED_RUN, error or run_error
        elif status == ABANDONED:
            run_status, run_error = "abandoned", error
        elif status == REFUSED:
            run_status, run_error = "refused", error
        else:
            run_status, run_error = "failed", error
        try:
            state.finish_run(run_ids[d], run_status, counts[d], run_error)
        except CustsyncError as exc:
            # keep the error that ended the run; the next run that takes the lease marks this
            # one abandoned
            unrecorded = unrecorded or exc.render()
    if unrecorded:
        if finished_status in (SUCCEEDED, PARTIAL):
            finished_status = FAILED_RUN
        note = f"the run log could not be updated: {unrecorded}"
        error = f"{error}; {note}" if error else note
    total: dict[str, int] = {}
    for bucket in counts.values():
        for key, value in bucket.items():
            total[key] = total.get(key, 0) + value
    return SyncResult(
        shop=shop.name,
        status=finished_status,
        counts=total,
        error=error,
        run_ids=tuple(run_ids.values()),
        failures=tuple(failures),
        plan=plan.head if isinstance(plan, SavedPlan) else plan,
        api_reads=api_reads,
        retriable=retriable,
    )


ATTENTION_HINT = "custsync attention list"


def _note_attention(
    state: Any,
    shop_config: Any,
    direction: Direction,
    run_id: int,
    failed: Sequence[RecordOutcome],
    settled: Sequence[str],
) -> set[str]:
    """Count the run's failures on the attention list and take the records that went through
    off it; returns the records parked (a state store without the list parks nothing)."""
    note = getattr(state, "note_failures", None)
    if note is None:
        return set()
    from ..config import DEFAULT_PARK_AFTER
    from .state import Failure

    schedule = getattr(shop_config, "schedule", None)
    park_after = int(getattr(schedule, "park_after", 0) or DEFAULT_PARK_AFTER)
    parked: set[str] = set()
    if failed:
        parked = note(
            shop_config.name,
            direction.value,
            run_id,
            [
                Failure(
                    record=outcome.decision.record,
                    reason=mask_text(outcome.message or outcome.decision.reason_code or ""),
                    permanent=outcome.permanent,
                    rules=tuple(rule.id for rule in outcome.decision.rules),
                    source_version=outcome.decision.source_version or "",
                    target_version=outcome.decision.target_version or "",
                    label=mask_label(outcome.decision.label or ""),
                )
                for outcome in failed
            ],
            park_after=park_after,
        )
    state.clear_attention(shop_config.name, direction.value, settled)
    return parked


class _Stopped(Exception):
    """The stop token was set while the run was still reading."""


class _StoppableReads:
    """The Shopify client as a run's read phase sees it: the stop token is checked at every
    customer read and look-up, so SIGTERM during a long read (a first run over a large,
    throttled store) ends the run within a page, not after the whole read."""

    def __init__(self, shopify: Any, stop: Any) -> None:
        self._shopify = shopify
        self._stop = stop

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Stopped(getattr(self._stop, "reason", "") or "stop requested")

    def iter_customers(self, updated_since: datetime | None = None) -> Iterator[ShopifyCustomer]:
        for customer in self._shopify.iter_customers(updated_since=updated_since):
            self._check()
            yield customer

    def get_customer(self, customer_id: str) -> ShopifyCustomer | None:
        self._check()
        return self._shopify.get_customer(customer_id)

    def get_customers(self, customer_ids: Iterable[str]) -> Mapping[str, ShopifyCustomer | None]:
        self._check()
        return self._shopify.get_customers(customer_ids)

    def find_by_email(self, email: str) -> ShopifyCustomer | None:
        self._check()
        return self._shopify.find_by_email(email)

    def find_by_phone(self, phone_e164: str) -> ShopifyCustomer | None:
        self._check()
        return self._shopify.find_by_phone(phone_e164)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shopify, name)


def open_shopify_writer_for(shop_config: Any) -> Any:
    from ..registry import open_shopify_writer

    return open_shopify_writer(shop_config.shopify_url, **shop_config.shopify_options(writer=True))


def open_shopify_reader_for(shop_config: Any) -> Any:
    """A read-only Shopify client for a configured shop (``plan`` uses only these)."""
    from ..registry import open_shopify_reader

    return open_shopify_reader(
        shop_config.shopify_url, **shop_config.shopify_options(writer=False)
    )


def run_sync(
    config: Any,
    shop_name: str,
    direction: str = "both",
    *,
    state: Any,
    stop: Any = None,
    rules: Any = None,
    plan: Plan | SavedPlan | None = None,
    full: bool = False,
    progress: bool = False,
    on_planned: Callable[[Plan | SavedPlan], None] | None = None,
    fence: Any = None,
) -> SyncResult:
    """One run of a configured shop: opens the ERP and Shopify writers named in ``config``
    and calls :func:`sync_shop`. The caller holds the shop lease (``sync`` and ``schedule``
    both do); with its ``fence`` (a :class:`~.state.Fence`) every write of the run checks
    that the lease is still the caller's, and the run stops before the next write when not."""
    from ..registry import open_erp_writer
    from ..rules.validate import require_rule_set

    shop_config = next((s for s in config.shops if s.name == shop_name), None)
    if shop_config is None:
        raise ConfigError(f"no shop named {shop_name!r} in the configuration")
    if rules is None:
        rules = require_rule_set(list(config.rule_dirs))
    if fence is not None and hasattr(state, "fenced"):
        state = state.fenced(fence)
    erp = open_erp_writer(config.erp_url, **config.erp_options)
    try:
        shopify = open_shopify_writer_for(shop_config)
        try:
            return sync_shop(
                shop_config,
                direction,
                rules=rules,
                state=state,
                erp=erp,
                shopify=shopify,
                stop=stop,
                plan=plan,
                full=full,
                progress=progress,
                on_planned=on_planned,
            )
        finally:
            shopify.close()
    finally:
        erp.close()
