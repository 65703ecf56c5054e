"""What the console shows and does, without HTTP: the pages call these and render the result.

Reads come from the state store (run log, health, links) and the config (shops, schedules,
rules); the two actions are the ones the CLI has: a dry run of a shop (the plan ``sync``
would apply, saved as JSON like ``plan --out``) and its approval, which applies exactly that
saved plan under the shop's lease with the stale-plan check of ``sync --plan``.
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, CustsyncError, UsageError
from ..files import write_private
from ..masking import mask_text
from ..model import Decision, Direction
from ..ports import RunRecord
from ..rules.rulefile import Rule, RuleSet
from ..rules.validate import display_path
from ..run.plan import Plan, plan_from_json, plan_to_json

__all__ = ["ConsoleService", "JobRow", "OutcomeRow", "RuleRow"]

#: plan ids are random tokens of this form (they name files: nothing else is accepted)
_PLAN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


@dataclass(frozen=True, slots=True)
class JobRow:
    """One shop and direction on the overview."""

    shop: str
    direction: str
    health: str  # ok | failing | running | never run
    last_run: RunRecord | None
    next_slot: datetime | None
    lag_seconds: float | None  # since the cursor (the last successful run's start)
    consecutive_failures: int = 0


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    record: str
    action: str
    status: str
    reason: str
    rules: tuple[str, ...]  # "id (file:line)"


@dataclass(frozen=True, slots=True)
class RuleRow:
    id: str
    decision: str
    priority: int
    action: str
    description: str
    where: str
    overrides: tuple[str, ...] = ()
    fired: int = 0


@dataclass
class PlanView:
    """A saved plan with the decisions a filter keeps."""

    plan_id: str
    plan: Plan
    decisions: list[Decision] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


class ConsoleService:
    """``config`` is the loaded Config, ``state`` the state store; ``plans_dir`` holds the
    dry runs made from the console (files readable by their owner only)."""

    def __init__(
        self,
        config: Any,
        state: Any,
        *,
        plans_dir: Path,
        rules: RuleSet | None = None,
        clock: Any = None,
    ) -> None:
        self.config = config
        self.state = state
        self.plans_dir = plans_dir
        self._rules = rules
        self._clock = clock or (lambda: datetime.now(UTC))

    # ---- reading ---------------------------------------------------------------------------

    @property
    def shops(self) -> list[str]:
        return [shop.name for shop in self.config.shops]

    def rules(self) -> RuleSet:
        if self._rules is None:
            from ..rules.validate import require_rule_set

            self._rules = require_rule_set(list(self.config.rule_dirs))
        return self._rules

    def overview(self) -> list[JobRow]:
        from ..run.schedule import jobs_from_config, next_slot

        now = self._clock()
        crons = {(spec.shop, spec.direction): spec.cron for spec in jobs_from_config(self.config)}
        rows = []
        for health in self.state.health():
            last = health.running or _newest(health.last_success, health.last_failure)
            if health.running is not None:
                status = "running"
            elif health.consecutive_failures:
                status = "failing"
            elif health.last_success is None:
                status = "never run"
            else:
                status = "ok"
            cron = crons.get((health.shop, health.direction))
            base = last.started_at if last is not None else now
            rows.append(
                JobRow(
                    shop=health.shop,
                    direction=health.direction,
                    health=status,
                    last_run=last,
                    next_slot=next_slot(cron, max(base, now)) if cron else None,
                    lag_seconds=(now - health.cursor).total_seconds() if health.cursor else None,
                    consecutive_failures=health.consecutive_failures,
                )
            )
        configured = {(row.shop, row.direction) for row in rows}
        for (shop, direction), cron in sorted(crons.items()):
            if (shop, direction) not in configured:
                rows.append(JobRow(shop, direction, "never run", None, next_slot(cron, now), None))
        return sorted(rows, key=lambda row: (row.shop, row.direction))

    def runs(
        self,
        *,
        shop: str | None = None,
        direction: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        found = self.state.runs(shop=shop or None, direction=direction or None, limit=limit * 4)
        return [run for run in found if not status or run.status == status][:limit]

    def run(self, run_id: int) -> tuple[RunRecord, list[OutcomeRow]] | None:
        record = self.state.run(run_id)
        if record is None:
            return None
        where = self._rule_locations()
        rows = [
            OutcomeRow(
                record=outcome.record,
                action=outcome.action,
                status=outcome.status,
                reason=mask_text(outcome.reason),
                rules=tuple(f"{rule} ({where[rule]})" if rule in where else rule
                            for rule in outcome.rules),
            )
            for outcome in self.state.outcomes(run_id)
        ]
        return record, rows

    def rule_rows(self, runs: int = 50) -> tuple[list[RuleRow], list[tuple[str, str]]]:
        """The effective rules with file:line, what each overrides and how often it fired in
        the last ``runs`` runs; and the disabled rules (id, where)."""
        rule_set = self.rules()
        fired: Counter[str] = Counter()
        for run in self.state.runs(limit=runs):
            for outcome in self.state.outcomes(run.id):
                fired.update(outcome.rules)
        definitions: dict[str, list[Rule]] = {}
        for rule_file in rule_set.files:
            for rule in rule_file.rules:
                definitions.setdefault(rule.id, []).append(rule)
        rows = [
            RuleRow(
                id=rule.id,
                decision=rule.decision,
                priority=rule.priority,
                action=rule.action,
                description=rule.description,
                where=_where(rule),
                overrides=tuple(_where(old) for old in definitions.get(rule.id, [])[:-1]),
                fired=fired.get(rule.id, 0),
            )
            for decision in sorted(rule_set.decisions)
            for rule in rule_set.rules(decision)
        ]
        disabled = [
            (rule_id, display_path(Path(rule_file.path)))
            for rule_file in rule_set.files
            for rule_id in rule_file.disable
        ]
        disabled += [(rule.id, _where(rule)) for f in rule_set.files for rule in f.rules
                     if not rule.enabled]
        return rows, disabled

    def _rule_locations(self) -> dict[str, str]:
        try:
            rule_set = self.rules()
        except CustsyncError:
            return {}
        return {
            rule.id: _where(rule)
            for decision in rule_set.decisions
            for rule in rule_set.rules(decision)
        }

    # ---- attention -------------------------------------------------------------------------

    def attention(self, status: str = "") -> list[Any]:
        reader = getattr(self.state, "attention", None)
        return list(reader(status=status or None)) if reader else []

    def attention_action(self, action: str, shop: str, direction: str, record: str) -> str:
        """``retry`` | ``resolve`` | ``unlink`` one record of the list; returns what was done.
        A record no longer on the list (it changed meanwhile) is said, and nothing is done."""
        self._shop(shop)
        found = self.state.attention_record(shop, direction, record)
        if found is None:
            raise UsageError(f"{record} is no longer on the attention list of {shop}/{direction} "
                             "(it went through or was resolved meanwhile); nothing was done")
        if action == "retry":
            self.state.request_retry(shop, direction, record)
            return f"{record}: the next run reads it again"
        if action == "resolve":
            self.state.resolve_attention(shop, direction, record)
            return f"{record}: off the list"
        if action == "unlink":
            gid = record if direction == "import" else None
            link = self.state.link_for_shopify(shop, gid) if gid else self.state.link_for_erp(
                shop, record
            )
            if link is None:
                raise UsageError(f"{record} has no link to drop; nothing was done")
            self.state.drop_link(shop, link.shopify_id)
            self.state.request_retry(shop, direction, record)
            return f"{record}: unlinked from {link.shopify_id if gid is None else link.erp_no}"
        raise UsageError(f"unknown action {action!r}")

    # ---- plans -----------------------------------------------------------------------------

    def make_plan(self, shop_name: str, direction: str) -> str:
        """A dry run of one shop (what ``sync`` would apply now), saved; returns its id."""
        from ..decide.engine import Engine
        from ..registry import open_erp_reader
        from ..run.planner import plan_incremental
        from ..run.sync import directions_for, open_shopify_reader_for

        shop = self._shop(shop_name)
        wanted = directions_for(direction)
        erp = open_erp_reader(self.config.erp_url, **self.config.erp_options)
        try:
            shopify = open_shopify_reader_for(shop)
            try:
                plan, _inputs = plan_incremental(
                    shop.context(),
                    engine=Engine(self.rules()),
                    erp=erp,
                    shopify=shopify,
                    link_source=self.state,
                    cursors={d.value: self.state.cursor(shop.name, d.value) for d in wanted},
                    directions=wanted,
                    now=self._clock(),
                )
            finally:
                shopify.close()
        finally:
            erp.close()
        plan_id = secrets.token_hex(8)
        write_private(self._plan_path(plan_id), plan_to_json(plan))
        return plan_id

    def plan(
        self,
        plan_id: str,
        *,
        action: str = "",
        reason: str = "",
        rule: str = "",
        direction: str = "",
    ) -> PlanView:
        path = self._plan_path(plan_id)
        try:
            plan = plan_from_json(path.read_bytes(), f"plan {plan_id}")
        except FileNotFoundError:
            raise UsageError(f"no plan {plan_id}") from None
        view = PlanView(plan_id, plan)
        view.reasons = sorted({d.reason_code for d in plan.decisions if d.reason_code})
        view.rules = sorted({r.id for d in plan.decisions for r in d.rules})
        view.decisions = [
            d
            for d in plan.decisions
            if (not action or d.action.value == action)
            and (not reason or d.reason_code == reason)
            and (not rule or any(r.id == rule for r in d.rules))
            and (not direction or d.direction.value == direction)
        ]
        return view

    def approve(self, plan_id: str) -> Any:
        """Apply exactly the saved plan (``sync --plan``): under the shop's lease, refused as
        stale when a record changed since it was made. Returns the SyncResult."""
        from ..run.schedule import (
            LEASE_TTL_SECONDS,
            ShopBusy,
            StopToken,
            make_holder_id,
            shop_lease,
        )
        from ..run.sync import run_sync

        saved = self.plan(plan_id).plan
        if len(saved.shops) != 1:
            raise UsageError("a console plan is for one shop")
        shop = self._shop(saved.shops[0])
        directions = [d for d in saved.directions if d is not Direction.ORDER]
        direction = "both" if len(directions) > 1 else directions[0].value
        stop = StopToken()
        try:
            with shop_lease(
                self.state, shop.name, make_holder_id(), LEASE_TTL_SECONDS, stop
            ) as fence:
                return run_sync(self.config, shop.name, direction, state=self.state,
                                rules=self.rules(), plan=saved, stop=stop, fence=fence)
        except ShopBusy as busy:
            raise ConfigError(f"{busy}; try again in a moment") from None

    def _plan_path(self, plan_id: str) -> Path:
        if not plan_id or len(plan_id) > 32 or not set(plan_id) <= _PLAN_ID_CHARS:
            raise UsageError("not a plan id")
        return self.plans_dir / f"{plan_id}.json"

    def _shop(self, name: str) -> Any:
        shop = next((s for s in self.config.shops if s.name == name), None)
        if shop is None:
            raise UsageError(f"no shop named {name!r}")
        return shop


def _newest(a: RunRecord | None, b: RunRecord | None) -> RunRecord | None:
    if a is None or b is None:
        return a or b
    return a if a.started_at >= b.started_at else b


def _where(rule: Rule) -> str:
    return f"{display_path(Path(rule.location.file))}:{rule.location.line}"


def counts_of(runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Per run (oldest first): created, updated, skipped, failed, for the overview's chart."""
    rows = []
    for run in sorted(runs, key=lambda r: r.started_at):
        counts = dict(run.counts or {})
        rows.append({
            "id": run.id,
            "label": f"{run.shop}/{run.direction} #{run.id}",
            "created": int(counts.get("created", 0)),
            "updated": int(counts.get("updated", 0)),
            "skipped": int(counts.get("skipped", 0)),
            "failed": int(counts.get("failed", 0)),
        })
    return rows


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
