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

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .apply import FAILED, Applier, RecordOutcome
from .decide import Engine
from .enrich import first_email
from .errors import ConfigError, FatalError, RetriableError, StalePlanError
from .model import Action, Decision, Direction, ErpCustomer, Link, ShopifyCustomer
from .phones import suffix_keys
from .plan import (
    DIRECTION_ORDER,
    Plan,
    bad_record_decisions,
    decision_sort_key,
    reader_problems,
)
from .ports import ErpCandidateReader, ErpReader, ShopifyReader, SourceProblem
from .world import ShopContext, World

log = logging.getLogger("custsync.sync")

__all__ = [
    "SyncInputs",
    "SyncResult",
    "plan_incremental",
    "plan_shop",
    "read_inputs",
    "run_sync",
    "sync_shop",
]

#: above this many export candidates without a cursor, read the whole store once (bulk)
#: instead of looking each customer up by e-mail and phone
FULL_READ_THRESHOLD = 500

SUCCEEDED, PARTIAL, FAILED_RUN, ABANDONED = "succeeded", "partial", "failed", "abandoned"
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
# Reading
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SyncInputs:
    """What one run of one shop decides over."""

    world: World
    imports: list[ShopifyCustomer] = field(default_factory=list)
    exports: list[ErpCustomer] = field(default_factory=list)
    api_reads: int = 0
    #: records the readers could not read while reading these inputs (their problems())
    problems: list[SourceProblem] = field(default_factory=list)


def read_inputs(
    shop: ShopContext,
    *,
    erp: ErpReader,
    shopify: ShopifyReader,
    links: Iterable[Link] = (),
    cursors: Mapping[str, datetime | None],
    directions: Sequence[Direction],
    full: bool = False,
    link_source: Any = None,
) -> SyncInputs:
    """Read the changed records and the counterparts their rules need (read-only).

    With cursors for every wanted direction, an ERP that can answer
    :class:`~.ports.ErpCandidateReader` and a ``link_source`` with ``links_for`` (the state
    store), only the records the changes can touch are read: the World then holds the changed
    customers, every ERP customer sharing an e-mail or a phone key with them, and their links,
    so the rules see exactly what a full read would show them. Otherwise everything is read.
    """
    import_since = None if full else cursors.get(Direction.IMPORT.value)
    export_since = None if full else cursors.get(Direction.EXPORT.value)
    want_import = Direction.IMPORT in directions
    want_export = Direction.EXPORT in directions
    # a reader reports every bad record it met in its life: keep those met from here on
    erp_seen, shopify_seen = len(reader_problems(erp)), len(reader_problems(shopify))
    imports = list(shopify.iter_customers(updated_since=import_since)) if want_import else []

    narrow: _Narrow | None = None
    if (
        isinstance(erp, ErpCandidateReader)
        and link_source is not None
        and (not want_import or import_since is not None)
        and (not want_export or export_since is not None)
    ):
        narrow = _narrow_read(shop, erp, link_source, imports, export_since, want_export)
    if narrow is None:
        shop_links = [link for link in links if link.shop == shop.name]
        if link_source is not None and not shop_links:
            shop_links = list(link_source.links(shop.name))
        erp_customers = list(erp.iter_customers())
        changed = [
            c
            for c in erp_customers
            if export_since is None or c.modified_at is None or c.modified_at > export_since
        ]
        narrow = _Narrow(erp_customers, changed if want_export else [], shop_links)

    reference = erp.reference()
    world = World(narrow.erp_customers, reference, imports, narrow.links)
    inputs = SyncInputs(world=world, imports=imports)
    if want_export:
        by_erp = {link.erp_no: link for link in narrow.links}
        for customer in narrow.changed:
            link = by_erp.get(customer.no)
            if (
                link is not None
                and link.last_import_at is not None
                and customer.modified_at is not None
                and customer.modified_at <= link.last_import_at
            ):
                continue  # our own import wrote this change: do not echo it back
            inputs.exports.append(customer)
        _prefetch_counterparts(inputs, shopify, by_erp, first_run=export_since is None)
        if link_source is not None and narrow.partial:
            # links of the Shopify customers found for the exports (adopt or skip rules)
            extra = link_source.links_for(shop.name, shopify_ids=list(world.shopify))
            known = {link.shopify_id for link in narrow.links}
            more = [link for link in extra if link.shopify_id not in known]
            if more:
                inputs.world = World(
                    narrow.erp_customers,
                    reference,
                    world.shopify.values(),
                    [*narrow.links, *more],
                )
    inputs.problems = [
        *reader_problems(erp)[erp_seen:],
        *reader_problems(shopify)[shopify_seen:],
    ]
    return inputs


@dataclass(slots=True)
class _Narrow:
    erp_customers: list[ErpCustomer]
    changed: list[ErpCustomer]
    links: list[Link]
    partial: bool = False  # only the records the changes can touch


def _narrow_read(
    shop: ShopContext,
    erp: ErpCandidateReader,
    link_source: Any,
    imports: Sequence[ShopifyCustomer],
    export_since: datetime | None,
    want_export: bool,
) -> _Narrow | None:
    """The ERP customers and links an incremental run can touch, or None (read all)."""
    reader: Any = erp
    changed = list(reader.iter_customers(changed_since=export_since)) if want_export else []
    shop_links = link_source.links_for(
        shop.name,
        shopify_ids=[customer.id for customer in imports],
        erp_nos=[customer.no for customer in changed],
    )
    phone_texts = [c.phone for c in changed]
    for customer in imports:
        phone_texts.append(customer.phone)
        phone_texts.extend(address.phone for address in customer.addresses)
    defaults = [shop.settings.default_customer_no] + [
        setup.default_customer_no for setup in shop.country_setups.values()
    ]
    subset = erp.candidates(
        emails=[customer.email for customer in imports],
        phone_keys=sorted({key for text in phone_texts for key in suffix_keys(text)}),
        nos=[link.erp_no for link in shop_links] + [no for no in defaults if no],
    )
    if subset is None:
        return None
    by_no = {customer.no: customer for customer in subset}
    by_no.update((customer.no, customer) for customer in changed)
    customers = [by_no[no] for no in sorted(by_no)]
    return _Narrow(customers, changed, list(shop_links), partial=True)


def _prefetch_counterparts(
    inputs: SyncInputs,
    shopify: ShopifyReader,
    by_erp: Mapping[str, Link],
    *,
    first_run: bool,
) -> None:
    """The Shopify customers the export rules look at: the linked one, and one with the same
    e-mail or phone (adopt, skip as duplicate, phone used elsewhere)."""
    world = inputs.world
    if first_run and len(inputs.exports) > FULL_READ_THRESHOLD:
        # first export of a large ERP: one full read beats two searches per customer
        for existing in shopify.iter_customers():
            world.add_shopify(existing)
        return
    for customer in inputs.exports:
        link = by_erp.get(customer.no)
        if link is not None and world.shopify_customer(link.shopify_id) is None:
            inputs.api_reads += 1
            found = shopify.get_customer(link.shopify_id)
            if found is not None:
                world.add_shopify(found)
        email = first_email(customer.email)
        if email and "@" in email and world.shopify_by_email(email) is None:
            inputs.api_reads += 1
            by_email = shopify.find_by_email(email)
            if by_email is not None:
                world.add_shopify(by_email)
        e164 = world.erp_e164(customer)
        if e164 and world.shopify_by_phone(e164) is None:
            inputs.api_reads += 1
            by_phone = shopify.find_by_phone(e164)
            if by_phone is not None:
                world.add_shopify(by_phone)


def plan_shop(
    engine: Engine,
    shop: ShopContext,
    inputs: SyncInputs,
    directions: Sequence[Direction],
) -> list[Decision]:
    """Decide the run's records in the order they are applied: imports, then exports in
    ERP number order.

    One Shopify customer maps to one ERP customer: the link each decision makes is noted in
    the world for the decisions after it, so an ERP customer whose Shopify match was linked
    earlier in the run (by its import, or by the export of a lower-numbered ERP customer with
    the same e-mail or phone) is skipped as ``already-exists``, exactly as one linked in the
    state is, instead of taking the link over when applied. So is one whose e-mail a
    lower-numbered ERP customer's export creates in Shopify in this run.
    """
    world = inputs.world
    decisions: list[Decision] = []
    try:
        if Direction.IMPORT in directions:
            for shopify_customer in inputs.imports:
                decision = engine.decide_import(world, shop, shopify_customer)
                decisions.append(decision)
                _note_link(world, decision)
        if Direction.EXPORT in directions:
            for erp_customer in sorted(inputs.exports, key=lambda customer: customer.no):
                decision = engine.decide_export(world, shop, erp_customer)
                decisions.append(decision)
                _note_link(world, decision)
    finally:
        world.forget_noted_links()
    return decisions


#: the ERP side of a link an import create makes (its number is given when applied)
NEW_ERP_CUSTOMER = "(new)"


def _note_link(world: World, decision: Decision) -> None:
    """Note in ``world`` the link applying ``decision`` will save (see :func:`plan_shop`)."""
    action = decision.action
    if decision.direction is Direction.IMPORT:
        gid = decision.shopify_id or decision.record
        if action is Action.CREATE:
            erp_no: str | None = NEW_ERP_CUSTOMER
        elif action in (Action.UPDATE, Action.LINK, Action.NOOP) or decision.new_link:
            erp_no = decision.erp_no
        else:
            erp_no = None
    elif decision.direction is Direction.EXPORT:
        if action is Action.CREATE:
            email = next((c.new for c in decision.changes if c.field == "email"), None)
            if email:
                world.note_created(decision.shop, str(email), decision.erp_no or decision.record)
            return
        gid = decision.shopify_id or ""
        linking = action in (Action.UPDATE, Action.LINK, Action.NOOP)
        erp_no = (decision.erp_no or decision.record) if linking else None
    else:
        return
    if gid and erp_no:
        world.note_link(Link(shop=decision.shop, shopify_id=gid, erp_no=erp_no))


def plan_incremental(
    shop: ShopContext,
    *,
    engine: Engine,
    erp: ErpReader,
    shopify: ShopifyReader,
    cursors: Mapping[str, datetime | None],
    directions: Sequence[Direction],
    links: Iterable[Link] = (),
    link_source: Any = None,
    full: bool = False,
    now: datetime | None = None,
) -> tuple[Plan, SyncInputs]:
    """Read what changed and decide it: the plan ``sync`` would apply (read-only)."""
    inputs = read_inputs(
        shop,
        erp=erp,
        shopify=shopify,
        links=links,
        cursors=cursors,
        directions=directions,
        full=full,
        link_source=link_source,
    )
    decisions = plan_shop(engine, shop, inputs, directions)
    # records the readers could not read: skips in the plan (as ``custsync plan`` shows
    # them), failed records when applied
    taken = {(decision.direction, decision.shop, decision.record) for decision in decisions}
    bad, warnings = bad_record_decisions(inputs.problems, [shop.name], directions, taken)
    plan = Plan(
        created_at=(now or _now()).replace(microsecond=0),
        shops=(shop.name,),
        directions=tuple(d for d in DIRECTION_ORDER if d in directions),
        decisions=tuple(sorted([*decisions, *bad], key=decision_sort_key)),
        warnings=tuple(warnings),
    )
    return plan, inputs


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------


class Progress:
    """A rich progress bar on a terminal, a log line every few seconds otherwise."""

    def __init__(self, total: int, label: str, *, enabled: bool = True) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self._last = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        if enabled and total and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)

    def advance(self) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif time.monotonic() - self._last >= 5.0:
            self._last = time.monotonic()
            log.info("%s: %d/%d records", self.label, self.done, self.total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


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


def _apply_order(decision: Decision) -> tuple[int, int]:
    """Import first, then export updates, then export creates (behaviour.md §7)."""
    if decision.direction is Direction.IMPORT:
        return (0, 0)
    if decision.direction is Direction.EXPORT:
        return (1, 1 if decision.action is Action.CREATE else 0)
    return (2, 0)


def check_plan_current(
    plan: Plan,
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
    for decision in plan.decisions:
        if not decision.is_change or (shop is not None and decision.shop != shop):
            continue
        if directions is not None and decision.direction not in directions:
            continue
        why = _stale_reason(decision, erp, shopify, state)
        if why:
            stale.append(f"{decision.direction.value} {decision.record} ({why})")
    if stale:
        more = f" (and {len(stale) - 5} more)" if len(stale) > 5 else ""
        raise StalePlanError(
            "the plan is stale: its records changed since it was made: "
            + ", ".join(stale[:5])
            + more
            + "; make a new plan"
        )


def _stale_reason(
    decision: Decision, erp: ErpReader, shopify: ShopifyReader, state: Any
) -> str | None:
    """Why ``decision`` no longer applies, or None when it still does."""
    direction = decision.direction
    if direction not in (Direction.IMPORT, Direction.EXPORT):
        return None
    if decision.target_version is not None:
        if direction is Direction.IMPORT and decision.erp_no:
            current = _erp_version(erp.get_customer(decision.erp_no))
        elif direction is Direction.EXPORT and decision.shopify_id:
            current = _shopify_version(shopify.get_customer(decision.shopify_id))
        else:
            current = decision.target_version
        if current != decision.target_version:
            return "target changed"
    if decision.source_version is not None:
        if direction is Direction.IMPORT:
            source = _shopify_version(shopify.get_customer(decision.record))
        else:
            source = _erp_version(erp.get_customer(decision.record))
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
    plan: Plan | None = None,
    full: bool = False,
    progress: bool = True,
    now: Callable[[], datetime] = _now,
    on_planned: Callable[[Plan], None] | None = None,
) -> SyncResult:
    """Run one shop's sync with the given writers; see the module docstring.

    ``plan`` applies a saved plan instead of planning; a stale one is refused (status
    ``refused``, the reason in ``error``, nothing applied, no cursor moved). ``stop`` is an
    Event-like object checked between records: when set, the run ends after the current
    record as ``abandoned`` and no cursor moves.
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
            )
            api_reads = inputs.api_reads
        else:
            check_plan_current(plan, erp, shopify, state, shop.name, wanted)
        if on_planned is not None:
            on_planned(plan)
        ordered = sorted(
            (d for d in plan.decisions if d.shop == shop.name and d.direction in wanted),
            key=_apply_order,
        )
        bar = Progress(len(ordered), f"sync {shop.name}", enabled=progress)
        try:
            for decision in ordered:
                if stop is not None and stop.is_set():
                    status = ABANDONED
                    error = getattr(stop, "reason", "") or "stop requested"
                    break
                outcome = appliers[decision.direction].apply(decision)
                bucket = counts[decision.direction]
                bucket[outcome.counted_as] = bucket.get(outcome.counted_as, 0) + 1
                if outcome.status == FAILED:
                    failures.append(outcome)
                bar.advance()
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
        for d in wanted:
            state.finish_run(run_ids[d], "failed", counts[d], f"{type(exc).__name__}: {exc}")
        raise
    finished_status = status
    for d in wanted:
        failed_here = [f for f in failures if f.decision.direction is d]
        if status == SUCCEEDED and failed_here:
            run_status, run_error = "failed", f"{len(failed_here)} record(s) failed"
            finished_status = PARTIAL
        elif status == SUCCEEDED:
            run_status, run_error = "succeeded", ""
            state.advance_cursor(shop.name, d.value, cursor_at)
        elif status == ABANDONED:
            run_status, run_error = "abandoned", error
        elif status == REFUSED:
            run_status, run_error = "refused", error
        else:
            run_status, run_error = "failed", error
        state.finish_run(run_ids[d], run_status, counts[d], run_error)
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
        plan=plan,
        api_reads=api_reads,
        retriable=retriable,
    )


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

    def find_by_email(self, email: str) -> ShopifyCustomer | None:
        self._check()
        return self._shopify.find_by_email(email)

    def find_by_phone(self, phone_e164: str) -> ShopifyCustomer | None:
        self._check()
        return self._shopify.find_by_phone(phone_e164)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shopify, name)


def _shopify_options(shop_config: Any) -> dict[str, Any]:
    return {
        "token_env": shop_config.access_token_env or None,
        "api_version": shop_config.api_version,
        "timeout": shop_config.timeout_seconds,
        **dict(getattr(shop_config, "retry_options", {}) or {}),
    }


def open_shopify_writer_for(shop_config: Any) -> Any:
    from .registry import open_shopify_writer

    return open_shopify_writer(shop_config.shopify_url, **_shopify_options(shop_config))


def open_shopify_reader_for(shop_config: Any) -> Any:
    """A read-only Shopify client for a configured shop (``plan`` uses only these)."""
    from .registry import open_shopify_reader

    return open_shopify_reader(shop_config.shopify_url, **_shopify_options(shop_config))


def run_sync(
    config: Any,
    shop_name: str,
    direction: str = "both",
    *,
    state: Any,
    stop: Any = None,
    rules: Any = None,
    plan: Plan | None = None,
    full: bool = False,
    progress: bool = False,
    on_planned: Callable[[Plan], None] | None = None,
) -> SyncResult:
    """One run of a configured shop: opens the ERP and Shopify writers named in ``config``
    and calls :func:`sync_shop`. The caller holds the shop lease (``sync`` and ``schedule``
    both do)."""
    from .registry import open_erp_writer
    from .validate import require_rule_set

    shop_config = next((s for s in config.shops if s.name == shop_name), None)
    if shop_config is None:
        raise ConfigError(f"no shop named {shop_name!r} in the configuration")
    if rules is None:
        rules = require_rule_set(list(config.rule_dirs))
    erp = open_erp_writer(config.erp_url)
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
