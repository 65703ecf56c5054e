"""Reading a shop's changed records and deciding them into a Plan (read-only).

``custsync plan`` (:func:`build_plan`) and ``custsync sync`` (:func:`plan_incremental`) both
read through :func:`read_inputs` and decide through :func:`plan_shop`, so a dry run shows
exactly what a sync would apply. Nothing here receives or builds a writer.

Reading is incremental: Shopify customers updated after the import cursor, ERP customers
modified after the export cursor (our own writes are not echoed back), and for those the
Shopify counterparts the export rules need (the linked customer by id, an unlinked one by
e-mail and phone) — API calls proportional to the changes, not to the store's size.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar

from ..decide.engine import Engine
from ..decide.enrich import first_email
from ..decide.phones import suffix_keys
from ..decide.world import World
from ..errors import ConfigError
from ..model import (
    Action,
    Decision,
    Direction,
    ErpCustomer,
    Link,
    ShopContext,
    ShopifyCustomer,
    ShopifyOrder,
)
from ..ports import (
    ErpCandidateReader,
    ErpFieldLimits,
    ErpReader,
    ReadProgress,
    ReportsReadProgress,
    ShopifyReader,
    SourceProblem,
)
from ..progress import Progress
from ..rules.rulefile import RuleSet
from .plan import (
    DIRECTION_ORDER,
    Plan,
    PlanTally,
    PlanWarning,
    bad_record_decisions,
    decision_sort_key,
    reader_problems,
)

__all__ = [
    "FULL_READ_THRESHOLD",
    "SyncInputs",
    "build_plan",
    "iter_shop_decisions",
    "plan_incremental",
    "plan_shop",
    "read_inputs",
    "stream_plan",
]


T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def _digest(items: Iterable[Any]) -> str:
    """A short stable digest of records (their reprs are deterministic: frozen dataclasses)."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(repr(item).encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()[:32]


#: above this many export candidates without a cursor, read the whole store once (bulk)
#: instead of looking each customer up by e-mail and phone
FULL_READ_THRESHOLD = 500


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
    retry: Mapping[str, Sequence[str]] | None = None,
    progress: Progress | None = None,
    overlap_seconds: float = 0.0,
    parked: Mapping[str, Mapping[str, datetime]] | None = None,
) -> SyncInputs:
    """Read the changed records and the counterparts their rules need (read-only).

    ``retry`` names records per direction (Shopify ids for the import, ERP numbers for the
    export) to read and decide whatever the cursors say: records on the attention list a
    person asked to retry.

    With cursors for every wanted direction, an ERP that can answer
    :class:`~.ports.ErpCandidateReader` and a ``link_source`` with ``links_for`` (the state
    store), only the records the changes can touch are read: the World then holds the changed
    customers, every ERP customer sharing an e-mail or a phone key with them, and their links,
    so the rules see exactly what a full read would show them. Otherwise everything is read.
    ``progress`` counts the records read (a phase per source).

    Changes are read from ``overlap_seconds`` before each cursor (the shop's
    ``sync.overlap_seconds``): a change stamped before the previous run started but committed
    (or indexed by Shopify) after it read is read now. What is read again is decided again and
    comes out unchanged (no write), or is left out as our own write (echo checks).
    """
    import_since = None if full else _read_from(cursors.get(Direction.IMPORT.value), overlap_seconds)
    export_since = None if full else _read_from(cursors.get(Direction.EXPORT.value), overlap_seconds)
    want_import = Direction.IMPORT in directions
    want_export = Direction.EXPORT in directions
    # a reader reports every bad record it met in its life: keep those met from here on
    erp_seen, shopify_seen = len(reader_problems(erp)), len(reader_problems(shopify))
    imports = (
        _read_all(
            shopify,
            lambda: shopify.iter_customers(updated_since=import_since),
            progress,
            f"read shop {shop.name}",
        )
        if want_import
        else []
    )
    retry_imports = list((retry or {}).get(Direction.IMPORT.value, ())) if want_import else []
    retry_exports = list((retry or {}).get(Direction.EXPORT.value, ())) if want_export else []
    # the import read every customer of the store: the export's counterparts are all known
    # (kept apart: the parked ones left out below are not decided, but are counterparts)
    whole_store = want_import and import_since is None
    not_decided: list[ShopifyCustomer] = []
    parked_imports = (parked or {}).get(Direction.IMPORT.value, {})
    if parked_imports and not full:
        # parked and unchanged since (read again only by the overlap window): still parked
        kept = []
        for c in imports:
            if _still_parked(c.id, c.updated_at, parked_imports, retry_imports):
                not_decided.append(c)
            else:
                kept.append(c)
        imports = kept
    if retry_imports:
        have = {customer.id for customer in imports}
        missing = [gid for gid in dict.fromkeys(retry_imports) if gid not in have]
        reread = shopify.get_customers(missing) if missing else {}
        imports.extend(found for gid in missing if (found := reread.get(gid)) is not None)

    narrow: _Narrow | None = None
    if (
        isinstance(erp, ErpCandidateReader)
        and link_source is not None
        and (not want_import or import_since is not None)
        and (not want_export or export_since is not None)
    ):
        narrow = _narrow_read(
            shop, erp, link_source, imports, export_since, want_export, retry_exports
        )
    if narrow is None:
        shop_links = [link for link in links if link.shop == shop.name]
        if link_source is not None and not shop_links:
            shop_links = list(link_source.links(shop.name))
        erp_customers = _read_all(erp, erp.iter_customers, progress, "read ERP")
        again = set(retry_exports)
        changed = [
            c
            for c in erp_customers
            if export_since is None
            or c.modified_at is None
            or c.modified_at > export_since
            or c.no in again
        ]
        narrow = _Narrow(erp_customers, changed if want_export else [], shop_links)

    reference = erp.reference()
    world = World(narrow.erp_customers, reference, imports, narrow.links)
    inputs = SyncInputs(world=world, imports=imports)
    if want_export:
        by_erp = {link.erp_no: link for link in narrow.links}
        parked_exports = (parked or {}).get(Direction.EXPORT.value, {})
        for customer in narrow.changed:
            if not full and _still_parked(
                customer.no, customer.modified_at, parked_exports, retry_exports
            ):
                continue  # parked on the attention list and unchanged since
            if (
                not full
                and customer.no not in retry_exports
                and _own_import_echo(customer, by_erp.get(customer.no))
            ):
                continue  # its latest version is our own import's write: do not echo it back
            inputs.exports.append(customer)
        _prefetch_counterparts(
            inputs,
            shopify,
            by_erp,
            first_run=export_since is None,
            whole_store=not_decided if whole_store else None,
            progress=progress,
            label=f"shop {shop.name}",
        )
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


def _read_all(
    reader: object, read: Callable[[], Iterable[T]], progress: Progress | None, label: str
) -> list[T]:
    """Every record ``read()`` gives, shown on ``progress``: as the reader tells how it goes
    (pages, a bulk job's objects, rows of how many: :class:`~..ports.ReportsReadProgress`),
    each step a phase ``label: step``; a reader that does not tell is counted here."""
    if progress is None or not isinstance(reader, ReportsReadProgress):
        return list(_counted(read(), progress, label, "customers"))

    def tell(report: ReadProgress) -> None:
        phase = f"{label}: {report.step}"
        if progress.label != phase:
            progress.start(report.total, phase, unit=report.unit)
        elif report.total != progress.total:
            progress.set_total(report.total)
        progress.update(report.done, note=report.note or None)

    reader.watch_reads(tell)
    try:
        return list(read())
    finally:
        reader.watch_reads(None)


def _counted(
    items: Iterable[Any], progress: Progress | None, label: str, unit: str
) -> Iterator[Any]:
    """``items`` as they come, counted on ``progress`` (a phase of unknown length)."""
    if progress is None:
        yield from items
        return
    progress.start(None, label, unit=unit)
    for item in items:
        progress.advance()
        yield item


def _still_parked(
    record: str,
    changed_at: datetime | None,
    parked: Mapping[str, datetime],
    retry: Sequence[str],
) -> bool:
    """A parked record (attention list) not asked to retry and not changed since it was
    parked: the overlap window reads it again, but it must not be tried again by itself."""
    parked_at = parked.get(record)
    if parked_at is None or record in retry or changed_at is None:
        return False
    return changed_at <= parked_at


def _read_from(cursor: datetime | None, overlap_seconds: float) -> datetime | None:
    return None if cursor is None else cursor - timedelta(seconds=max(0.0, overlap_seconds))


def _own_import_echo(customer: ErpCustomer, link: Link | None) -> bool:
    """Whether the ERP customer's current version is the one our own import wrote (its etag
    is the one stored on the link after that write). An import that only linked wrote nothing
    and stored no etag, and any later ERP edit changes the etag: both are exported.
    ``--full`` plans every record and does not ask."""
    return (
        link is not None
        and link.own_write_erp_etag is not None
        and bool(customer.etag)
        and customer.etag == link.own_write_erp_etag
    )


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
    retry_exports: Sequence[str] = (),
) -> _Narrow | None:
    """The ERP customers and links an incremental run can touch, or None (read all)."""
    reader: Any = erp
    changed = list(reader.iter_customers(changed_since=export_since)) if want_export else []
    have = {customer.no for customer in changed}
    for no in retry_exports:
        found = reader.get_customer(no) if no not in have else None
        if found is not None:
            changed.append(found)
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
    whole_store: Sequence[ShopifyCustomer] | None = None,
    progress: Progress | None = None,
    label: str = "shop",
) -> None:
    """The Shopify customers the export rules look at: the linked one, and one with the same
    e-mail or phone (adopt, skip as duplicate, phone used elsewhere).

    ``whole_store``: the import of this run read every customer of the store; the World holds
    them but these (parked, not decided). Then a full read is not made again: the World
    would get a second copy of every customer, as it was one read ago."""
    world = inputs.world
    if first_run and len(inputs.exports) > FULL_READ_THRESHOLD:
        # first export of a large ERP: one full read beats two searches per customer
        existing_customers = (
            _read_all(shopify, shopify.iter_customers, progress, f"read {label} (counterparts)")
            if whole_store is None
            else whole_store
        )
        for existing in existing_customers:
            world.add_shopify(existing)
        return
    # the linked customers first, in a few requests (one by one, 10,000 exports were 10,000
    # requests); the e-mail and phone look-ups below then skip what these already show
    linked = list(
        dict.fromkeys(
            link.shopify_id
            for customer in inputs.exports
            if (link := by_erp.get(customer.no)) is not None
            and world.shopify_customer(link.shopify_id) is None
        )
    )
    if linked:
        inputs.api_reads += len(linked)
        for found in shopify.get_customers(linked).values():
            if found is not None:
                world.add_shopify(found)
    if progress is not None:
        progress.start(len(inputs.exports), f"look up counterparts in {label}", unit="customers")
    for customer in inputs.exports:
        if progress is not None:
            progress.advance()
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


def note_unwritable(decisions: list[Decision], erp: object) -> list[Decision]:
    """Name on each import that would write a field the ERP cannot write now (see
    :class:`~..ports.ErpFieldLimits`) that it will not be written, and why."""
    return list(noted_unwritable(decisions, erp))


def noted_unwritable(decisions: Iterable[Decision], erp: object) -> Iterator[Decision]:
    """:func:`note_unwritable` as the decisions come (a plan streams them)."""
    limits = erp.unwritable_fields() if isinstance(erp, ErpFieldLimits) else {}
    if not limits:
        yield from decisions
        return
    for decision in decisions:
        lost = [
            change.field
            for change in decision.changes
            if change.field in limits and change.new not in (None, "")
        ]
        if lost and decision.direction is Direction.IMPORT:
            note = "; ".join(f"{name} not written: {limits[name]}" for name in lost)
            message = f"{decision.message}; {note}" if decision.message else note
            decision = dataclasses.replace(decision, message=message)
        yield decision


def plan_shop(
    engine: Engine,
    shop: ShopContext,
    inputs: SyncInputs,
    directions: Sequence[Direction],
) -> list[Decision]:
    """Every decision of :func:`iter_shop_decisions`, in a list."""
    return list(iter_shop_decisions(engine, shop, inputs, directions))


def iter_shop_decisions(
    engine: Engine,
    shop: ShopContext,
    inputs: SyncInputs,
    directions: Sequence[Direction],
) -> Iterator[Decision]:
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
    try:
        if Direction.IMPORT in directions:
            for shopify_customer in inputs.imports:
                decision = engine.decide_import(world, shop, shopify_customer)
                _note_link(world, decision)
                yield decision
        if Direction.EXPORT in directions:
            for erp_customer in sorted(inputs.exports, key=lambda customer: customer.no):
                decision = engine.decide_export(world, shop, erp_customer)
                _note_link(world, decision)
                yield decision
    finally:
        world.forget_noted_links()


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
        world.note_link(Link(decision.shop, gid, erp_no))  # positional: 0.6 us less a link


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
    retry: Mapping[str, Sequence[str]] | None = None,
    progress: Progress | None = None,
    overlap_seconds: float = 0.0,
    parked: Mapping[str, Mapping[str, datetime]] | None = None,
) -> tuple[Plan, SyncInputs]:
    """Read what changed (and the records to ``retry``) and decide it: the plan ``sync``
    would apply (read-only)."""
    inputs = read_inputs(
        shop,
        erp=erp,
        shopify=shopify,
        links=links,
        cursors=cursors,
        directions=directions,
        full=full,
        link_source=link_source,
        retry=retry,
        progress=progress,
        overlap_seconds=overlap_seconds,
        parked=parked,
    )
    if progress is not None:
        progress.start(
            len(inputs.imports) + len(inputs.exports), f"plan {shop.name}", unit="customers"
        )
    decisions = []
    for decision in noted_unwritable(
        iter_shop_decisions(engine, shop, inputs, directions), erp
    ):
        decisions.append(decision)
        if progress is not None:
            progress.advance()
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


def _resolve_order(order: ShopifyOrder, reader: ShopifyReader, missing: list[str]) -> ShopifyOrder:
    """An order whose customer is given by id only gets the full customer from the shop; a
    customer the shop does not have is dropped (and its id added to ``missing``), so that the
    order is not decided as one of a customer "without an address"."""
    customer = order.customer
    if customer is None or customer.email or customer.addresses or customer.first_name:
        return order
    found = reader.get_customer(customer.id)
    if found is None:
        missing.append(customer.id)
    return dataclasses.replace(order, customer=found)


def build_plan(
    *,
    shops: Sequence[Any],
    rules: RuleSet | None,
    erp: ErpReader,
    shopify: Mapping[str, ShopifyReader],
    links: Iterable[Link] = (),
    directions: Sequence[Direction | str] = (Direction.IMPORT, Direction.EXPORT),
    orders: Mapping[str, Sequence[ShopifyOrder]] | None = None,
    cursors: Mapping[tuple[str, str], datetime | None] | None = None,
    engine: Any = None,
    fingerprints: Mapping[str, str] | None = None,
    warnings: Iterable[PlanWarning] = (),
    now: datetime | None = None,
    full: bool = False,
    overlaps: Mapping[str, float] | None = None,
) -> Plan:
    """Decide every record of ``shops`` and return the Plan. Read-only by construction.

    ``shops`` are :class:`~custsync.engine.model.ShopContext` objects; ``shopify`` maps each
    shop name to its reader; ``links`` are all stored links (filtered per shop here).
    ``cursors`` maps (shop, direction) to the last successful run's start; records are read
    and selected exactly as ``custsync sync`` does (:func:`read_inputs`:
    Shopify customers updated after the import cursor, ERP customers modified after the
    export cursor and not just written by our own import). ``orders``
    maps shop names to orders to map (direction ``order``). ``engine`` defaults to
    ``Engine(rules)``; ``fingerprints`` adds digests the caller knows (rules, config). ``full`` reads every
    record and plans it, also one whose latest version is our own import's write.
    ``overlaps`` maps shop names to their ``sync.overlap_seconds`` (read as ``sync`` reads).

    Every decision is kept; :func:`stream_plan` hands them to a sink instead.
    """
    decisions: list[Decision] = []
    head = stream_plan(
        decisions.append,
        shops=shops,
        rules=rules,
        erp=erp,
        shopify=shopify,
        links=links,
        directions=directions,
        orders=orders,
        cursors=cursors,
        engine=engine,
        fingerprints=fingerprints,
        warnings=warnings,
        now=now,
        full=full,
        overlaps=overlaps,
    )
    return dataclasses.replace(
        head, decisions=tuple(sorted(decisions, key=decision_sort_key)), counts=None
    )


def stream_plan(
    sink: Callable[[Decision], None],
    *,
    shops: Sequence[Any],
    rules: RuleSet | None,
    erp: ErpReader,
    shopify: Mapping[str, ShopifyReader],
    links: Iterable[Link] = (),
    directions: Sequence[Direction | str] = (Direction.IMPORT, Direction.EXPORT),
    orders: Mapping[str, Sequence[ShopifyOrder]] | None = None,
    cursors: Mapping[tuple[str, str], datetime | None] | None = None,
    engine: Any = None,
    fingerprints: Mapping[str, str] | None = None,
    warnings: Iterable[PlanWarning] = (),
    now: datetime | None = None,
    progress: Progress | None = None,
    full: bool = False,
    overlaps: Mapping[str, float] | None = None,
    decided: Callable[[], None] | None = None,
) -> Plan:
    """:func:`build_plan` without keeping the decisions: each goes to ``sink`` as it is made
    (in decide order, not plan order: see :class:`~.planstream.DecisionSpool`). Returns the
    plan without decisions, with their summary counts (``Plan.counts``). Memory holds the
    World of one shop and the keys of the few bad records, not the decisions.
    ``progress`` is told about every record decided (its total set per shop); ``decided``
    is called once the last shop's records and orders are decided, before its digests (only
    the decisions of bad records may follow)."""
    if engine is None:
        from ..decide.engine import Engine

        if rules is None:
            raise ConfigError("build_plan needs the rules (or an engine)")
        engine = Engine(rules)
    wanted = tuple(Direction(direction) for direction in directions)
    customer_directions = tuple(d for d in wanted if d is not Direction.ORDER)
    cursors = cursors or {}
    all_links = list(links)
    digests: dict[str, str] = {}
    tally = PlanTally()
    problems: list[SourceProblem] = []
    missing_warnings: list[PlanWarning] = []
    # bad records become skips unless a decision exists for them: only their keys are kept
    taken: set[tuple[Direction, str, str]] = set()
    erp_problem_records: set[str] | None = None

    def emit(decision: Decision, bad_records: set[str]) -> None:
        if decision.record in bad_records:
            taken.add((decision.direction, decision.shop, decision.record))
        tally.add(decision)
        sink(decision)
        if progress is not None:
            progress.advance()

    for shop in shops:
        reader = shopify[shop.name]
        inputs = read_inputs(
            shop,
            erp=erp,
            shopify=reader,
            links=all_links,
            cursors={
                direction.value: cursors.get((shop.name, direction.value))
                for direction in (Direction.IMPORT, Direction.EXPORT)
            },
            directions=customer_directions,
            progress=progress,
            full=full,
            overlap_seconds=(overlaps or {}).get(shop.name, 0.0),
        )
        if erp_problem_records is None:
            erp_problem_records = {p.record for p in reader_problems(erp) if p.record}
        bad_records = erp_problem_records | {p.record for p in reader_problems(reader) if p.record}
        world = inputs.world
        shop_orders = (orders or {}).get(shop.name, ())
        if progress is not None:
            todo = len(shop_orders)
            todo += len(inputs.imports) if Direction.IMPORT in customer_directions else 0
            todo += len(inputs.exports) if Direction.EXPORT in customer_directions else 0
            progress.start(todo, f"plan {shop.name}", unit="customers")
        shop_decisions = iter_shop_decisions(engine, shop, inputs, customer_directions)
        for decision in noted_unwritable(shop_decisions, erp):
            emit(decision, bad_records)
        for order in shop_orders:
            missing: list[str] = []
            resolved = _resolve_order(order, reader, missing)
            missing_warnings.extend(
                PlanWarning(
                    "customer-not-found",
                    f"order {order.name or order.id}: Shopify customer {gid} is not in the "
                    "shop; the order is mapped without a Shopify customer",
                    record=order.id,
                    shop=shop.name,
                )
                for gid in missing
            )
            if resolved.customer is not None and resolved.customer.id:
                world.add_shopify(resolved.customer)
            emit(engine.decide_order(world, shop, resolved), bad_records)
        if decided is not None and shop is shops[-1]:
            decided()
        digests.setdefault("erp", _digest(world.erp.values()))
        digests.setdefault("erp_reference", _digest([world.reference]))
        digests[f"shopify:{shop.name}"] = _digest(
            world.shopify[key] for key in sorted(world.shopify)
        )
        digests[f"links:{shop.name}"] = _digest(
            sorted((link for link in all_links if link.shop == shop.name), key=repr)
        )
        problems.extend(reader_problems(reader))
        del inputs, world
    problems[:0] = reader_problems(erp)
    bad, problem_warnings = bad_record_decisions(
        _unique(problems), [shop.name for shop in shops], wanted, taken
    )
    for decision in bad:
        tally.add(decision)
        sink(decision)
    digests.update(fingerprints or {})
    planned = set(wanted) | ({Direction.ORDER} if orders else set())
    return Plan(
        created_at=(now or datetime.now(UTC)).replace(microsecond=0),
        shops=tuple(shop.name for shop in shops),
        directions=tuple(d for d in DIRECTION_ORDER if d in planned),
        decisions=(),
        warnings=(*warnings, *missing_warnings, *problem_warnings),
        fingerprints=MappingProxyType(dict(sorted(digests.items()))),
        counts=tally.summary(),
    )


def _unique(problems: Iterable[SourceProblem]) -> list[SourceProblem]:
    """Readers of several shops may share a folder: report each problem once."""
    seen: dict[tuple[str, str, str], SourceProblem] = {}
    for problem in problems:
        seen.setdefault((problem.kind, problem.location, problem.message), problem)
    return list(seen.values())
