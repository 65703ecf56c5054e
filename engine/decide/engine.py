"""The decide API: per record and direction, one :class:`~.model.Decision`.

``Engine(rules)`` compiles the rule set once (one durable-rules Host); then

* :meth:`Engine.decide_import` - a Shopify customer -> create / update / link / skip / noop of
  an ERP customer (decisions import_selection, import_match, import_update or import_create,
  import_fields);
* :meth:`Engine.decide_order` - a Shopify order -> its sell-to/bill-to ERP customer
  (order_method, order_fallback, and for a customer it imports the nested import decision);
* :meth:`Engine.decide_export` - an ERP customer -> create / adopt / update / skip of a Shopify
  customer (export_action, export_requirements, export_person_name, export_company,
  export_province);
* :meth:`Engine.plan_shop` - every record of a world for the given directions.

Python only computes facts (enrich.py) and carries out the winning rules' actions; *which*
rule wins is always durable-rules' answer. A record for which no rule of a choice decision
holds is a skip with reason ``no-rule``. A record that cannot be evaluated at all is a skip
with reason ``record-error``; it never stops the others.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from ..masking import EMAIL, PHONE, mask_contact, mask_text, mask_values
from ..model import (
    ERP_CUSTOMER_FIELDS,
    ERP_FIELD_LENGTHS,
    Action,
    Decision,
    Direction,
    ErpCustomer,
    FieldChange,
    FiredRule,
    ShopContext,
    ShopifyCustomer,
    ShopifyOrder,
)
from ..rules.compile import compile_rule_set
from ..rules.evaluate import DEFAULT_CACHE_SIZE, EvalStats, Evaluator
from ..rules.rulefile import FactRef, Rule, RuleSet, Template
from ..rules.vocabulary import FACTS, STRING
from . import enrich, names
from .enrich import ExportFacts, Facts, ImportFacts
from .world import World

__all__ = ["SHOPIFY_ADDRESS_FIELDS", "SHOPIFY_CUSTOMER_FIELDS", "Engine", "ShopContext", "World"]

#: Shopify customer fields an export writes
SHOPIFY_CUSTOMER_FIELDS = ("first_name", "last_name", "email", "phone")
#: default-address fields an export writes (reported as ``address.<field>`` changes)
SHOPIFY_ADDRESS_FIELDS = (
    "company",
    "first_name",
    "last_name",
    "address1",
    "address2",
    "zip",
    "city",
    "country_code",
    "province_code",
    "province",
    "phone",
)
#: Shopify's limit for address first/last names as the reference connector cuts them
ADDRESS_NAME_LENGTH = 50
#: Shopify refuses a customer's first or last name and an address's company over 255
#: characters ("is too long (maximum is 255 characters)", recorded in the captures): cut, as
#: the reference connector cuts names to its fields, instead of a failed create
SHOPIFY_TEXT_LENGTH = 255

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+)\}")

#: the reason of an import matched to an ERP customer linked to another Shopify customer
LINKED_ELSEWHERE = "linked-to-another"


def _contact_kind(name: str) -> str | None:
    """EMAIL or PHONE for a text fact holding a customer's e-mail or phone (``erp.email``,
    ``email.first``, ``phone.e164``, ``address.phone``, ...), else None."""
    group, _, last = name.partition(".")
    last = last.rsplit(".", 1)[-1]
    for kind in (EMAIL, PHONE):
        if kind in (group, last):
            return kind
    return None


#: contact facts -> their kind: masked by value wherever a message template shows them
_CONTACT_FACTS: dict[str, str] = {
    name: kind
    for name, spec in FACTS.items()
    if spec.type == STRING and (kind := _contact_kind(name)) is not None
}


def _change_factory() -> Callable[[str, Any, Any], FieldChange]:
    """``FieldChange(field, old, new)`` without the frozen dataclass ``__init__``, which sets
    each slot through ``object.__setattr__``: the slots are filled by their descriptors, so
    the object is the same (equal, same hash, same repr) at ~40 % less cost. Falls back to
    the class itself should FieldChange ever stop being slotted as (field, old, new)."""
    slots = tuple(getattr(FieldChange, "__slots__", ()))
    if slots != ("field", "old", "new"):
        return FieldChange
    allocate = object.__new__
    set_field, set_old, set_new = (getattr(FieldChange, name).__set__ for name in slots)

    def change(field: str, old: Any, new: Any) -> FieldChange:
        made: FieldChange = allocate(FieldChange)
        set_field(made, field)
        set_old(made, old)
        set_new(made, new)
        return made

    return change


#: builds FieldChange records (see :func:`_change_factory`); used on every changed field
_change = _change_factory()

#: what generated code fills a FieldChange's slots with (see :func:`_append_change`)
_CHANGE_PARTS: dict[str, Any] = (
    {
        "allocate": object.__new__,
        "FieldChange": FieldChange,
        **{f"set_{name}": getattr(FieldChange, name).__set__ for name in ("field", "old", "new")},
    }
    if _change is not FieldChange
    else {"change": _change}
)


def _append_change(indent: str, field: str, old: str, new: str) -> list[str]:
    """Lines of generated code appending ``FieldChange(field, old, new)`` (source
    expressions) to ``changes``: :func:`_change` written out, its call saved (a dozen per
    created record); the call itself where FieldChange is not slotted as expected."""
    if "change" in _CHANGE_PARTS:
        return [f"{indent}changes.append(change({field}, {old}, {new}))"]
    return [
        f"{indent}made = allocate(FieldChange)",
        f"{indent}set_field(made, {field})",
        f"{indent}set_old(made, {old})",
        f"{indent}set_new(made, {new})",
        f"{indent}changes.append(made)",
    ]


def _new_values_function(names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], list[FieldChange]]:
    """``values -> changes``: ``FieldChange(name, None, value)`` of each filled value (in the
    order of ``names``), as one straight-line function (what a create sends)."""
    lines = ["def created(values):", "    changes = []"]
    for index, name in enumerate(names):
        lines += [f"    new = values[{index}]", "    if new:"]
        lines += _append_change("        ", repr(name), "None", "new")
    lines.append("    return changes")
    namespace = dict(_CHANGE_PARTS)
    exec("\n".join(lines) + "\n", namespace)  # names written with repr
    function: Callable[[tuple[Any, ...]], list[FieldChange]] = namespace["created"]
    return function


def _decision_factory() -> Callable[..., Decision]:
    """``Decision(**fields)`` without the frozen dataclass ``__init__`` (see
    :func:`_change_factory`): a function generated from Decision's own fields, defaults and
    default factories, which fills the slots through their descriptors. Falls back to the
    class itself when Decision is not a plain slotted dataclass."""
    fields = dataclasses.fields(Decision)
    names = tuple(spec.name for spec in fields)
    if (
        tuple(getattr(Decision, "__slots__", ())) != names
        or hasattr(Decision, "__post_init__")
        or not all(spec.init for spec in fields)
    ):
        return Decision
    missing = dataclasses.MISSING
    namespace: dict[str, Any] = {
        "allocate": object.__new__,
        "Decision": Decision,
        "MISSING": missing,
    }
    params: list[str] = []
    body = ["    made = allocate(Decision)"]
    for spec in fields:
        name = spec.name
        namespace[f"set_{name}"] = getattr(Decision, name).__set__
        if spec.default is not missing:
            namespace[f"default_{name}"] = spec.default
            params.append(f"{name}=default_{name}")
        elif spec.default_factory is not missing:
            namespace[f"factory_{name}"] = spec.default_factory
            params.append(f"{name}=MISSING")
            body.append(f"    if {name} is MISSING:\n        {name} = factory_{name}()")
        else:
            params.append(name)
        body.append(f"    set_{name}(made, {name})")
    source = f"def decision({', '.join(params)}):\n" + "\n".join(body) + "\n    return made\n"
    exec(source, namespace)  # field names come from the dataclass itself
    function: Callable[..., Decision] = namespace["decision"]
    return function


#: builds Decision records (see :func:`_decision_factory`); one per record
_decision = _decision_factory()


_FIRED: dict[int, tuple[Rule, FiredRule]] = {}


def fired_rule(rule: Rule) -> FiredRule:
    """The provenance record of a rule (memoised: rules are immutable and long-lived)."""
    known = _FIRED.get(id(rule))
    if known is not None and known[0] is rule:
        return known[1]
    fired = FiredRule(rule.id, rule.location.file, rule.location.line, rule.decision)
    if len(_FIRED) > 10_000:
        _FIRED.clear()
    _FIRED[id(rule)] = (rule, fired)
    return fired


@dataclass(slots=True)
class _Trail:
    """The rules that contributed to one decision, in the order they were applied."""

    rules: list[FiredRule]

    def add(self, rule: Rule) -> None:
        known = _FIRED.get(id(rule))  # fired_rule's memo, read here: once or more per record
        self.rules.append(known[1] if known is not None and known[0] is rule else fired_rule(rule))

    def extend(self, rules: tuple[Rule, ...]) -> None:
        for rule in rules:
            self.add(rule)

    def frozen(self) -> tuple[FiredRule, ...]:
        return tuple(self.rules)


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    """What a set of fired import_fields rules does, worked out once per set (the evaluator
    hands out the same tuple for the same signature): the rules in the trail, and per field
    set (in ERP field order) the value parameter and the length limit."""

    trail: tuple[FiredRule, ...]
    #: (field, fact read or None, the parameter when not a plain fact reference, limit, whether
    #: the field is a core ERP field read by attribute)
    fields: tuple[tuple[str, str | None, Any, int | None, bool], ...]
    #: fact groups the fact references read
    groups: tuple[str, ...]
    #: ``facts -> changes`` of a create and ``(facts, erp) -> changes`` of an update, both
    #: generated from ``fields`` (see :func:`_field_mapping`)
    create: Callable[[Mapping[str, Any]], tuple[FieldChange, ...]]
    update: Callable[[Mapping[str, Any], ErpCustomer], tuple[FieldChange, ...]]


def _field_mapping(
    fields: tuple[tuple[str, str | None, Any, int | None, bool], ...],
) -> tuple[Callable[..., tuple[FieldChange, ...]], Callable[..., tuple[FieldChange, ...]]]:
    """The create and the update mapping of a field plan as straight-line functions.

    Per field, what a loop over ``fields`` would do: the fact read straight from the dict
    (or the parameter resolved), :func:`_field_value`, and on update the ERP value and
    :func:`_unchanged`. Generated once per plan: an import maps a dozen fields, and a loop
    spends about as much on unpacking its entries as on the values. Field and fact names
    are written with ``repr``, limits as numbers; parameters are passed in.
    """
    namespace: dict[str, Any] = {"dict_get": dict.get, "resolve": resolve, **_CHANGE_PARTS}
    namespace["unchanged"] = _unchanged
    namespace["printable"] = printable
    create: list[str] = []
    update: list[str] = []
    for index, (field, fact, param, limit, core) in enumerate(fields):
        namespace[f"param{index}"] = param
        read = f"get(facts, {fact!r})" if fact is not None else f"resolve(param{index}, facts)"
        value = [
            f"    new = {read}",
            "    if new is None:",
            '        new = ""',
            "    elif isinstance(new, str):",
            '        new = " ".join(new.split())',
            "        if not new.isprintable():",
            "            new = printable(new)",
        ]
        if limit:
            value.append(f"        if len(new) > {int(limit)}:")
            value.append(f"            new = new[:{int(limit)}].rstrip()")
        create += value
        create.append('    if new != "":')
        create += _append_change("        ", repr(field), "None", "new")
        if not core:  # ErpCustomer.get of a template field
            old = f"erp.extra.get({field!r}, '')"
        else:
            old = f"erp.{field}" if field.isidentifier() else f"erp.get({field!r})"
        update += value
        update.append(f"    old = {old}")
        update.append("    if (old != new or type(old) is not str or type(new) is not str) and (")
        update.append(f"        not unchanged({field!r}, old, new)")
        update.append("    ):")
        update += _append_change("        ", repr(field), "old", "new")
    defaults = "get=dict_get, resolve=resolve, unchanged=unchanged, printable=printable"
    lines = [f"def create(facts, {defaults}):", "    changes = []", *create]
    lines += ["    return tuple(changes)", f"def update(facts, erp, {defaults}):"]
    lines += ["    changes = []", *update, "    return tuple(changes)", ""]
    source = "\n".join(lines)
    exec(source, namespace)
    return namespace["create"], namespace["update"]


#: a terminal escape sequence: CSI (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \\),
#: or ESC and one character
_ESCAPE_SEQUENCE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.?)")
#: control characters (C0, DEL, C1) that are not blanks; blanks are folded by str.split
_CONTROLS = dict.fromkeys(
    code for code in (*range(0x20), *range(0x7F, 0xA0)) if not chr(code).isspace()
)


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and control characters.

    Shopify names are typed by anyone: ``"Eve\x1b[2J"`` would clear the terminal of whoever
    reads ``erp export`` or a log. The import mapping writes text through this, so a plan
    shows what will be stored."""
    cleaned = _ESCAPE_SEQUENCE.sub("", text).translate(_CONTROLS)
    return " ".join(cleaned.split())


def _field_limit(field: str, rule: Rule) -> int | None:
    limit = ERP_FIELD_LENGTHS.get(field)
    max_length = rule.params.get("max_length")
    if isinstance(max_length, int) and not isinstance(max_length, bool):
        limit = min(limit, max_length) if limit else max_length
    return limit


def _field_plan(fired: tuple[Rule, ...]) -> _FieldPlan | None:
    """The plan of fired import_fields rules; None when a rule names its field by a fact."""
    trail: list[FiredRule] = []
    chosen: dict[str, tuple[Any, int | None]] = {}
    decided: set[str] = set()
    for rule in fired:
        param = rule.params.get("field")
        if isinstance(param, FactRef | Template):
            return None
        field = str(param or "")
        if not field or field in decided:
            continue
        decided.add(field)
        trail.append(fired_rule(rule))
        if rule.action == "set":
            chosen[field] = (rule.params.get("value"), _field_limit(field, rule))
    order = {name: index for index, name in enumerate(ERP_CUSTOMER_FIELDS)}
    fields = []
    for field in sorted(chosen, key=lambda f: (order.get(f, len(order)), f)):
        param, limit = chosen[field]
        fact = param.name if isinstance(param, FactRef) else None
        fields.append((field, fact, param, limit, field in ERP_CUSTOMER_FIELDS))
    groups = tuple(dict.fromkeys(enrich.group_of(f[1]) for f in fields if f[1] is not None))
    create, update = _field_mapping(tuple(fields))
    return _FieldPlan(tuple(trail), tuple(fields), groups, create, update)


def _field_value(value: Any, limit: int | None) -> Any:
    """A value as the import writes it: texts with single spaces, cut to the field length."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = " ".join(value.split())
        if not value.isprintable():
            value = printable(value)
        if limit and len(value) > limit:
            value = value[:limit].rstrip()
    return value


#: the export decisions after export_action, in order: every record not skipped by the
#: requirements goes through all of them
_EXPORT_CHECKS = (
    "export_requirements",
    "export_person_name",
    "export_company",
    "export_province",
)


class _NoRule(Exception):
    def __init__(self, decision: str) -> None:
        super().__init__(decision)
        self.decision = decision


def _winner(fired: tuple[Rule, ...], decision: str) -> Rule:
    """The winning rule of a choice decision; no rule holding is :class:`_NoRule`."""
    if not fired:
        raise _NoRule(decision)
    return fired[0]


class Engine:
    """Decides what to do with each record, by the rules of ``rules``."""

    def __init__(self, rules: RuleSet, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.rules = rules
        self._evaluator = Evaluator(compile_rule_set(rules), cache_size=cache_size)
        #: id(fired import_fields tuple) -> (that tuple, its plan); bounded, see _import_changes
        self._field_plans: dict[int, tuple[tuple[Rule, ...], _FieldPlan | None]] = {}

    # --- introspection ---------------------------------------------------------------------

    @property
    def stats(self) -> EvalStats:
        """Engine calls, cache hits and time inside durable-rules (for benchmarks)."""
        return self._evaluator.stats

    @property
    def evaluator(self) -> Evaluator:
        return self._evaluator

    def fired(self, decision: str, facts: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The rules of ``decision`` that fire for ``facts`` (winner only for a choice)."""
        return self._evaluator.fired(decision, facts)

    def _choice(self, decision: str, facts: Mapping[str, Any]) -> Rule:
        fired = self._evaluator.fired(decision, facts)
        if not fired:
            raise _NoRule(decision)
        return fired[0]

    def _fired_in_turn(
        self, decisions: tuple[str, ...], facts: Facts
    ) -> Callable[[int], tuple[Rule, ...]]:
        """``index -> fired rules`` of decisions a record goes through one after the other
        (the caller asks for them in that order and may stop early), answered from one joint
        signature (:meth:`Evaluator.fired_together`): one look-up for all of them. Should a
        fact group of any of them fail to compute, each is evaluated when asked, as before,
        so the record fails (or is skipped) where it did."""
        try:
            return self._evaluator.fired_together(decisions, facts).__getitem__
        except Exception:
            return lambda index: self._evaluator.fired(decisions[index], facts)

    # --- public API ------------------------------------------------------------------------

    def decide_import(
        self,
        world: World,
        shop: ShopContext,
        customer: ShopifyCustomer,
        *,
        caller_template: str | None = None,
    ) -> Decision:
        """What the customer sync does with one Shopify customer (behaviour.md §3, §5)."""
        try:
            return self._import(world, shop, customer, caller_template=caller_template)
        except Exception as exc:  # one bad record never stops the run
            return _error(Direction.IMPORT, shop, customer.id, exc, customer)

    def decide_order(self, world: World, shop: ShopContext, order: ShopifyOrder) -> Decision:
        """Which ERP customer gets a Shopify order (behaviour.md §4)."""
        try:
            return self._order(world, shop, order)
        except Exception as exc:
            return _error(Direction.ORDER, shop, order.id, exc, order)

    def decide_export(
        self, world: World, shop: ShopContext, customer: ErpCustomer, *, requested: bool = False
    ) -> Decision:
        """What the export does with one ERP customer (behaviour.md §6). ``requested``: a user
        named this customer (created even when ``export_customers`` is off)."""
        try:
            return self._export(world, shop, customer, requested=requested)
        except Exception as exc:
            return _error(Direction.EXPORT, shop, customer.no, exc, customer)

    def plan_shop(
        self,
        world: World,
        shop: ShopContext,
        directions: Sequence[str] = ("import", "export"),
    ) -> list[Decision]:
        """Decisions for every record of ``world`` (behaviour.md §7).

        import: every Shopify customer of the world (the selection rules decide which are
        processed); export: linked ERP customers when ``can_update_shopify_customers``, unlinked
        ones when ``export_customers``, in number order.
        """
        decisions: list[Decision] = []
        wanted = {str(direction) for direction in directions}
        if "import" in wanted:
            decisions.extend(
                self.decide_import(world, shop, customer) for customer in world.shopify.values()
            )
        if "export" in wanted:
            settings = shop.settings
            for customer in world.erp.values():
                linked = world.link_for_erp(shop.name, customer.no) is not None
                if (linked and settings.can_update_shopify_customers) or (
                    not linked and settings.export_customers
                ):
                    decisions.append(self.decide_export(world, shop, customer))
        return decisions

    # --- import ------------------------------------------------------------------------------

    def _import(
        self,
        world: World,
        shop: ShopContext,
        customer: ShopifyCustomer,
        *,
        caller_template: str | None,
        select: bool = True,
        allow_create: bool | None = None,
        direction: Direction = Direction.IMPORT,
    ) -> Decision:
        facts = enrich.import_facts(
            world,
            shop,
            customer,
            caller_template=caller_template,
            allow_create=allow_create,
            lazy=True,
        )
        trail = _Trail([])
        base = _Base(
            direction=direction,
            shop=shop.name,
            record=customer.id,
            erp_no=facts.get("link.customer_no"),
            shopify_id=customer.id,
            source_version=enrich.source_version_of(customer.updated_at),
            label=_shopify_label(customer),
            source=customer,
        )
        try:
            if select:
                rule = self._choice("import_selection", facts)
                trail.add(rule)
                if rule.action == "skip":
                    return base.skip(rule, facts, trail)
            rule = self._choice("import_match", facts)
            trail.add(rule)
            if rule.action == "match":
                return self._import_matched(world, shop, customer, facts, rule, trail, base)
            return self._import_create(facts, trail, base)
        except _NoRule as missing:
            return base.no_rule(missing.decision, trail)

    def _import_matched(
        self,
        world: World,
        shop: ShopContext,
        customer: ShopifyCustomer,
        facts: ImportFacts,
        match: Rule,
        trail: _Trail,
        base: _Base,
    ) -> Decision:
        erp_no = str(resolve(match.params.get("customer_no"), facts) or "")
        erp = world.erp_customer(erp_no)
        if erp is None:
            return base.make(
                Action.SKIP,
                trail,
                reason_code="match-unknown-customer",
                message=f"rule {match.id} matched ERP customer {erp_no!r}, which does not exist",
            )
        method = str(resolve(match.params.get("method"), facts) or "")
        facts.matched(erp)
        link = facts.link  # the Shopify customer's stored link
        new_link = link is None or link.erp_no != erp.no
        other = world.linked_elsewhere(shop.name, erp.no, customer.id) if new_link else None
        if other is not None:
            # one ERP customer, one Shopify customer: known now, so a planned skip with its
            # own reason (the state would refuse the link when applied)
            return base.make(
                Action.SKIP,
                trail,
                reason_code=LINKED_ELSEWHERE,
                message=(
                    f"rule {match.id} matched ERP customer {erp.no}, which is linked to Shopify "
                    f"customer {other}; merge the two Shopify customers, or unlink the other "
                    "one (custsync attention unlink) to link this one"
                ),
                erp_no=erp.no,
                target_version=_erp_version(erp),
            )
        common: dict[str, Any] = {
            "erp_no": erp.no,
            "new_link": new_link,
            "target_version": _erp_version(erp),
            "payload": _payload(match_method=method),
        }
        rule = self._choice("import_update", facts)
        trail.add(rule)
        if rule.action == "skip":
            return base.skip(rule, facts, trail, **common)
        if new_link:
            common["message"] = _ambiguous_email(world, customer, erp)
        if rule.action == "update":
            changes = self._import_changes(facts, trail, erp)
            if changes:
                return base.make(Action.UPDATE, trail, changes=changes, **common)
        return base.make(Action.LINK if new_link else Action.NOOP, trail, **common)

    def _import_create(
        self,
        facts: Facts,
        trail: _Trail,
        base: _Base,
        *,
        extra_payload: Mapping[str, Any] | None = None,
    ) -> Decision:
        rule = self._choice("import_create", facts)
        trail.add(rule)
        if rule.action == "skip":
            return base.skip(rule, facts, trail)
        template = str(resolve(rule.params.get("template"), facts) or "").strip()
        if not template:
            return base.make(
                Action.SKIP,
                trail,
                reason_code="no-template",
                message=f"not created: rule {rule.id} chose an empty template",
            )
        changes = self._import_changes(facts, trail, None)
        payload = {"template_code": template, **(extra_payload or {})}
        address_id = facts.get("address.id")
        if address_id:
            payload["address_id"] = address_id
        return base.make(
            Action.CREATE, trail, changes=changes, new_link=True, payload=_payload(**payload)
        )

    def _import_changes(
        self, facts: Facts, trail: _Trail, erp: ErpCustomer | None
    ) -> tuple[FieldChange, ...]:
        """The ERP fields per the import_fields rules: per field, the best rule wins."""
        fired = self._evaluator.fired("import_fields", facts)
        known = self._field_plans.get(id(fired))
        if known is None or known[0] is not fired:
            if len(self._field_plans) > 10_000:
                self._field_plans.clear()
            known = self._field_plans[id(fired)] = (fired, _field_plan(fired))
        plan = known[1]
        if plan is None:
            return self._import_changes_by_rule(facts, trail, erp, fired)
        trail.rules.extend(plan.trail)
        facts.require(plan.groups)  # then the mapping reads the facts straight from the dict
        return plan.create(facts) if erp is None else plan.update(facts, erp)

    def _import_changes_by_rule(
        self,
        facts: Facts,
        trail: _Trail,
        erp: ErpCustomer | None,
        fired: tuple[Rule, ...],
    ) -> tuple[FieldChange, ...]:
        """:meth:`_import_changes` when a rule names its field by a fact (no plan)."""
        chosen: dict[str, Any] = {}
        decided: set[str] = set()
        for rule in fired:
            field = str(resolve(rule.params.get("field"), facts) or "")
            if not field or field in decided:
                continue
            decided.add(field)
            trail.add(rule)
            if rule.action != "set":
                continue
            chosen[field] = _field_value(
                resolve(rule.params.get("value"), facts), _field_limit(field, rule)
            )
        changes: list[FieldChange] = []
        order = {name: index for index, name in enumerate(ERP_CUSTOMER_FIELDS)}
        for field in sorted(chosen, key=lambda f: (order.get(f, len(order)), f)):
            new = chosen[field]
            if erp is None:
                if new not in ("", None):
                    changes.append(_change(field, None, new))
                continue
            old = erp.get(field)
            if not _unchanged(field, old, new):
                changes.append(_change(field, old, new))
        return tuple(changes)

    # --- orders ------------------------------------------------------------------------------

    def _order(self, world: World, shop: ShopContext, order: ShopifyOrder) -> Decision:
        facts = enrich.order_facts(world, shop, order)
        trail = _Trail([])
        customer = order.customer
        base = _Base(
            direction=Direction.ORDER,
            shop=shop.name,
            record=order.id,
            shopify_id=customer.id if customer is not None else None,
            label=order.name or order.id,
            source=order,
        )
        try:
            rule = self._choice("order_method", facts)
            trail.add(rule)
            method = rule.action
            nested: Decision | None = None
            found: str | None = None
            why = ""
            if rule.action == "skip":
                return base.skip(rule, facts, trail)
            if rule.action == "use_customer":
                wanted = str(resolve(rule.params.get("customer_no"), facts) or "").strip()
                found, why = _existing(world, wanted, rule)
            elif rule.action == "by_email_phone":
                allow = bool(resolve(rule.params.get("allow_create"), facts))
                if customer is None:
                    why = "the order has no Shopify customer"
                else:
                    nested = self._import(
                        world,
                        shop,
                        customer,
                        caller_template=_order_template(shop, order),
                        select=False,
                        allow_create=allow,
                        direction=Direction.IMPORT,
                    )
                    found = nested.erp_no
                    why = nested.message or ""
            elif rule.action == "by_bill_to":
                allow = bool(resolve(rule.params.get("allow_create"), facts))
                found = facts.get("lookup.bill_to_customer_no") or facts.get(
                    "lookup.bill_to_name_customer_no"
                )
                if found is None:
                    nested = self._bill_to_create(world, shop, order, allow)
                    why = nested.message or ""
            if nested is not None:
                trail.rules.extend(nested.rules)
            if nested is not None and nested.action is Action.CREATE:
                # the order creates its customer: the create's fields and template, and the
                # nested import decision itself, travel with the order decision
                return base.make(
                    Action.CREATE,
                    trail,
                    new_link=True,
                    changes=nested.changes,
                    payload=_payload(method=method, **dict(nested.payload), **{"import": nested}),
                )
            if found:
                return base.make(
                    Action.LINK,
                    trail,
                    erp_no=found,
                    payload=_order_payload(method, found, nested),
                )
            # --- fallback --------------------------------------------------------------------
            facts["order.method"] = method
            fallback = self._choice("order_fallback", facts)
            trail.add(fallback)
            if fallback.action == "use_customer":
                wanted = str(resolve(fallback.params.get("customer_no"), facts) or "").strip()
                found, why_not = _existing(world, wanted, fallback)
                if found:
                    return base.make(
                        Action.LINK,
                        trail,
                        erp_no=found,
                        payload=_order_payload("fallback", found, nested),
                    )
                return base.make(Action.SKIP, trail, reason_code="order-unmapped", message=why_not)
            decision = base.skip(fallback, facts, trail)
            if why and decision.message:
                decision = _with_message(decision, f"{decision.message} ({why})", base)
            return decision
        except _NoRule as missing:
            return base.no_rule(missing.decision, trail)

    def _bill_to_create(
        self, world: World, shop: ShopContext, order: ShopifyOrder, allow: bool
    ) -> Decision:
        """Create an ERP customer from the order's bill-to (by_bill_to, nothing found)."""
        customer = order.customer or ShopifyCustomer(
            id=order.id, email=order.email, phone=order.phone
        )
        bill_to = order.bill_to
        facts = enrich.import_facts(
            world,
            shop,
            customer,
            caller_template=_order_template(shop, order),
            allow_create=allow,
            address=bill_to,
            lazy=True,
        )
        trail = _Trail([])
        base = _Base(
            direction=Direction.IMPORT,
            shop=shop.name,
            record=customer.id,
            shopify_id=order.customer.id if order.customer is not None else None,
            label=_shopify_label(customer),
            source=order,
        )
        try:
            return self._import_create(
                facts,
                trail,
                base,
                extra_payload={"bill_to_address_id": bill_to.id} if bill_to and bill_to.id else {},
            )
        except _NoRule as missing:
            return base.no_rule(missing.decision, trail)

    # --- export ------------------------------------------------------------------------------

    def _export(
        self, world: World, shop: ShopContext, customer: ErpCustomer, *, requested: bool
    ) -> Decision:
        facts = enrich.export_facts(world, shop, customer, requested=requested, lazy=True)
        trail = _Trail([])
        base = _Base(
            direction=Direction.EXPORT,
            shop=shop.name,
            record=customer.no,
            erp_no=customer.no,
            source_version=_erp_version(customer),
            label=_erp_label(customer, facts.first_email),
            source=customer,
        )
        try:
            action_rule = self._choice("export_action", facts)
            trail.add(action_rule)
            if action_rule.action == "skip":
                return base.skip(
                    action_rule, facts, trail, shopify_id=facts.get("shopify_match.id")
                )
            fired = self._fired_in_turn(_EXPORT_CHECKS, facts)
            requirements = fired(0)
            if requirements:
                trail.extend(requirements)
                reasons = [
                    str(resolve(rule.params.get("reason"), facts) or rule.id)
                    for rule in requirements
                ]
                messages = [_message(rule, facts) for rule in requirements]
                return base.make(
                    Action.SKIP,
                    trail,
                    reason_code=reasons[0],
                    message="; ".join(m for m in messages if m),
                    payload=_payload(reasons=tuple(reasons)),
                )
            person = _winner(fired(1), _EXPORT_CHECKS[1])
            trail.add(person)
            split: tuple[str, str] | None = None
            if person.action == "split":
                text = str(resolve(person.params.get("text"), facts) or "")
                source = str(resolve(person.params.get("source"), facts) or "")
                split = names.split(text, source)
            company_rule = _winner(fired(2), _EXPORT_CHECKS[2])
            trail.add(company_rule)
            company = ""
            if company_rule.action == "set_company":
                company = str(resolve(company_rule.params.get("value"), facts) or "").strip()
            province_rule = _winner(fired(3), _EXPORT_CHECKS[3])
            trail.add(province_rule)
            if province_rule.action == "skip":
                return base.skip(province_rule, facts, trail)
            province_code = province_name = ""
            if province_rule.action == "set_province":
                province_code = str(resolve(province_rule.params.get("code"), facts) or "")
                province_name = str(resolve(province_rule.params.get("name"), facts) or "")
            desired = _desired_shopify(
                customer, facts, split, company, province_code, province_name
            )
            decision = self._export_action(
                world, shop, customer, facts, action_rule, desired, trail, base
            )
            if province_rule.params.get("note") and province_rule.action == "no_province":
                # why the address goes without a province (its decision has no message)
                note = base.message(_message(province_rule, facts, "note"))
                decision = dataclasses.replace(decision, message=note)
            return decision
        except _NoRule as missing:
            return base.no_rule(missing.decision, trail)

    def _export_action(
        self,
        world: World,
        shop: ShopContext,
        customer: ErpCustomer,
        facts: ExportFacts,
        rule: Rule,
        desired: _Desired,
        trail: _Trail,
        base: _Base,
    ) -> Decision:
        invite = bool(facts.get("settings.send_invite_email"))
        if rule.action == "create":
            changes, address = desired.changes(None)
            return base.make(
                Action.CREATE,
                trail,
                changes=changes,
                new_link=True,
                payload=MappingProxyType(  # _payload: no None values (invite is a bool)
                    {"send_invite": invite}
                    if address is None
                    else {"address": address, "send_invite": invite}
                ),
            )
        if rule.action == "adopt":
            target_id = str(resolve(rule.params.get("shopify_id"), facts) or "")
            allowed = bool(resolve(rule.params.get("update"), facts))
            target = world.shopify_customer(target_id)
            common: dict[str, Any] = {
                "shopify_id": target_id,
                "new_link": True,
                "target_version": _shopify_version(target),
            }
            by = str(facts.get("shopify_match.by") or "")
            if allowed:
                changes, address = desired.changes(target)
                if changes:
                    return base.make(
                        Action.UPDATE,
                        trail,
                        changes=changes,
                        payload=_payload(adopt=True, matched_by=by, address=address),
                        **common,
                    )
            return base.make(
                Action.LINK, trail, payload=_payload(adopt=True, matched_by=by), **common
            )
        # update a linked customer
        target_id = str(facts.get("shopify_link.shopify_id") or "")
        target = world.shopify_customer(target_id)
        changes, address = desired.changes(target)
        common = {"shopify_id": target_id, "target_version": _shopify_version(target)}
        if not changes:
            return base.make(Action.NOOP, trail, **common)
        return base.make(
            Action.UPDATE, trail, changes=changes, payload=_payload(address=address), **common
        )


# ---------------------------------------------------------------------------------------------
# building decisions
# ---------------------------------------------------------------------------------------------


#: "the base's own value" for :meth:`_Base.make`'s targets (None is a value there)
_BASE: Any = object()
#: a Decision's payload when none is given (its field's default)
_NO_PAYLOAD: Mapping[str, Any] = next(
    spec.default_factory()
    for spec in dataclasses.fields(Decision)
    if spec.name == "payload" and spec.default_factory is not dataclasses.MISSING
)


class _Base:
    """What every decision of one record shares (a plain class: one is made per record)."""

    __slots__ = (
        "direction",
        "erp_no",
        "label",
        "record",
        "shop",
        "shopify_id",
        "source",
        "source_version",
    )

    def __init__(
        self,
        direction: Direction,
        shop: str,
        record: str,
        erp_no: str | None = None,
        shopify_id: str | None = None,
        source_version: str | None = None,
        label: str = "",
        source: _Record | None = None,
    ) -> None:
        self.direction = direction
        self.shop = shop
        self.record = record
        self.erp_no = erp_no
        self.shopify_id = shopify_id
        self.source_version = source_version
        self.label = label
        #: the record decided on: its own e-mails and phones are masked in every message
        self.source = source

    def message(self, text: str) -> str:
        """``text`` fit for a decision message: see :func:`_masked_message`."""
        return _masked_message(text, self.source)

    def make(
        self,
        action: Action,
        trail: _Trail,
        *,
        changes: tuple[FieldChange, ...] = (),
        reason_code: str | None = None,
        message: str | None = None,
        new_link: bool = False,
        payload: Mapping[str, Any] | None = None,
        target_version: str | None = None,
        erp_no: Any = _BASE,
        shopify_id: Any = _BASE,
    ) -> Decision:
        """The record's decision; ``erp_no`` / ``shopify_id`` default to the base's."""
        return _decision(
            direction=self.direction,
            action=action,
            shop=self.shop,
            record=self.record,
            erp_no=self.erp_no if erp_no is _BASE else erp_no,
            shopify_id=self.shopify_id if shopify_id is _BASE else shopify_id,
            changes=changes,
            reason_code=reason_code,
            message=self.message(str(message)) if message else message,
            rules=tuple(trail.rules),
            new_link=new_link,
            payload=_NO_PAYLOAD if payload is None else payload,
            source_version=self.source_version,
            target_version=target_version,
            label=self.label,
        )

    def skip(self, rule: Rule, facts: Mapping[str, Any], trail: _Trail, **fields: Any) -> Decision:
        reason = str(resolve(rule.params.get("reason"), facts) or rule.id)
        return self.make(
            Action.SKIP, trail, reason_code=reason, message=_message(rule, facts), **fields
        )

    def no_rule(self, decision: str, trail: _Trail) -> Decision:
        return self.make(
            Action.SKIP,
            trail,
            reason_code="no-rule",
            message=f"no rule of decision {decision} holds for this record",
            payload=_payload(decision=decision),
        )


def _error(
    direction: Direction, shop: ShopContext, record: str, exc: Exception, source: _Record
) -> Decision:
    try:
        text = _masked_message(str(exc), source)[:300]
    except Exception:  # the record is too broken to read its contact data
        text = mask_text(str(exc))[:300]
    return Decision(
        direction=direction,
        action=Action.SKIP,
        shop=shop.name,
        record=record,
        reason_code="record-error",
        message=f"could not evaluate this record: {type(exc).__name__}: {text}",
    )


#: a record a decision is made for
_Record = ErpCustomer | ShopifyCustomer | ShopifyOrder


def _masked_message(text: str, source: _Record | None) -> str:
    """A message with the record's own e-mails and phones masked wherever they stand (by
    value: valid or garbage, with or without ``@``), then anything else that looks like an
    e-mail or a phone (by pattern: e.g. exception texts)."""
    if source is not None:
        text = mask_values(text, _contact_values(source))
    masked = _MASKED_TEXTS.get(text)
    if masked is None:
        masked = mask_text(text)
        if len(_MASKED_TEXTS) >= 4096:
            _MASKED_TEXTS.clear()
        _MASKED_TEXTS[text] = masked
    return masked


#: text -> mask_text(text), bounded: most skip messages are a rule's fixed text, the same for
#: every record it skips (a record's own values are masked before, by value)
_MASKED_TEXTS: dict[str, str] = {}


def _contact_values(record: _Record) -> list[tuple[str, str]]:
    """The raw e-mails and phones of a record, its addresses and (an order) its customer."""
    found: list[tuple[str, str]] = []
    if isinstance(record, ShopifyOrder):
        addresses = [record.bill_to, record.ship_to]
        if record.customer is not None:
            found += _contact_values(record.customer)
    elif isinstance(record, ShopifyCustomer):
        addresses = list(record.addresses)
    else:
        addresses = []
    email = record.email.strip()
    if email:
        found.append((email, EMAIL))
        if ";" in email or "," in email:  # a field with several: each one on its own too
            found += [(part.strip(), EMAIL) for part in re.split(r"[;,]", email)]
    found.append((record.phone.strip(), PHONE))
    found += [(address.phone.strip(), PHONE) for address in addresses if address is not None]
    return found


def _with_message(decision: Decision, message: str, base: _Base) -> Decision:
    from dataclasses import replace

    return replace(decision, message=base.message(message))


def _payload(**values: Any) -> Mapping[str, Any]:
    return MappingProxyType({k: v for k, v in values.items() if v is not None})


def _order_payload(method: str, erp_no: str, nested: Decision | None) -> Mapping[str, Any]:
    values: dict[str, Any] = {"method": method, "sell_to": erp_no, "bill_to": erp_no}
    if nested is not None:
        values["import"] = nested
    return _payload(**values)


def _existing(world: World, wanted: str, rule: Rule) -> tuple[str | None, str]:
    if not wanted:
        return None, f"rule {rule.id} names no customer (the setting is blank)"
    if world.erp_customer(wanted) is None and world.erp:
        return None, f"customer {wanted} named by rule {rule.id} does not exist in the ERP"
    return wanted, ""


def _order_template(shop: ShopContext, order: ShopifyOrder) -> str | None:
    """The template an order passes to its customer import: its country's template."""
    setup = shop.setup(enrich.order_country(order))
    return (setup.customer_template_code or None) if setup is not None else None


def resolve(param: Any, facts: Mapping[str, Any]) -> Any:
    """A rule parameter's value: a fact reference, a ``{fact.name}`` template, a literal."""
    if isinstance(param, FactRef):
        return facts.get(param.name)
    if isinstance(param, Template):
        return render(param.text, facts)
    return param


def render(text: str, facts: Mapping[str, Any], *, message: bool = False) -> str:
    """Fill ``{fact.name}`` placeholders (absent facts render as ``(none)``). For a
    ``message`` contact facts are masked by value (:func:`_contact_fact`); data (a field's
    value, a name, a company) is written as it is: masking it would write ``j***@...`` into
    the ERP or Shopify."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = facts.get(name)
        if found is None or found == "":
            return "(none)"
        if isinstance(found, bool):
            return "true" if found else "false"
        if message:
            return _contact_fact(name, found)
        return str(found)

    return _PLACEHOLDER.sub(value, text)


def _contact_fact(name: str, value: Any) -> str:
    """A fact's value for a message: a customer's e-mail or phone masked whatever it holds
    (``john doe@example.com``, ``john.example.com`` and ``12`` are contact data too)."""
    kind = _CONTACT_FACTS.get(name)
    return mask_contact(str(value), kind) if kind is not None else str(value)


def _message(rule: Rule, facts: Mapping[str, Any], name: str = "message") -> str:
    """A rule's message (or its parameter ``name``), unmasked by pattern yet:
    :meth:`_Base.make` does that."""
    param = rule.params.get(name)
    if isinstance(param, Template):
        return render(param.text, facts, message=True) or rule.description
    if isinstance(param, FactRef):
        found = facts.get(param.name)
        return _contact_fact(param.name, found) if found else rule.description
    return str(param) if param else rule.description


def _same(old: Any, new: Any) -> bool:
    if type(old) is str and type(new) is str:
        return old == new
    if isinstance(new, bool) or isinstance(old, bool):
        return bool(old) == bool(new)
    return (old if old is not None else "") == (new if new is not None else "")


#: ERP fields an import does not rewrite for a difference of case or surrounding blanks only
_IMPORT_CASELESS_FIELDS = frozenset({"email"})


def _unchanged(field: str, old: Any, new: Any) -> bool:
    """Whether an import leaves the ERP ``field`` as it is: equal, or an e-mail differing only
    in case or surrounding blanks (Shopify compares addresses without case; rewriting the ERP
    one for case alone would churn)."""
    if _same(old, new):
        return True
    return (
        field in _IMPORT_CASELESS_FIELDS
        and type(old) is str
        and type(new) is str
        and old.strip().casefold() == new.strip().casefold()
    )


def _erp_version(customer: ErpCustomer | None) -> str | None:
    if customer is None:
        return None
    if customer.etag:
        return customer.etag
    return customer.modified_at.isoformat() if customer.modified_at is not None else None


def _shopify_version(customer: ShopifyCustomer | None) -> str | None:
    if customer is None or customer.updated_at is None:
        return None
    return customer.updated_at.isoformat()


def _ambiguous_email(world: World, customer: ShopifyCustomer, chosen: ErpCustomer) -> str | None:
    """When the e-mail lookup chose ``chosen`` among several ERP customers with the e-mail
    ignoring case: which, and the others (masked), instead of choosing silently."""
    if world.erp_by_email(customer.email) != chosen.no:
        return None
    others = [world.erp[no] for no in world.erp_email_namesakes(customer.email)]
    if not others:
        return None
    listed = ", ".join(f"{other.no} {_erp_label(other, other.email.strip())}" for other in others)
    return (
        f"ambiguous e-mail: {len(others) + 1} ERP customers have it (ignoring case); chose "
        f"{chosen.no} {_erp_label(chosen, chosen.email.strip())}, the first in number order, "
        f"over {listed}"
    )


def _label(name: str, email: str, fallback: str = "") -> str:
    """``Name <j***@example.com>``; ``<j***@example.com>`` without a name (not with a blank
    before it); the name alone without an e-mail; ``fallback`` without either."""
    if email:
        masked = f"<{mask_contact(email, EMAIL)}>"
        return f"{name} {masked}" if name else masked
    return name or fallback


def _shopify_label(customer: ShopifyCustomer) -> str:
    first, last = customer.first_name.strip(), customer.last_name.strip()
    name = f"{first} {last}" if first and last else first or last
    return _label(name, customer.email.strip(), customer.id)


def _erp_label(customer: ErpCustomer, email: str) -> str:
    """``Name <j***@example.com>`` of an ERP customer (``email``: its first e-mail)."""
    return _label(customer.name.strip()[:60], email)


# ---------------------------------------------------------------------------------------------
# the Shopify customer an export wants
# ---------------------------------------------------------------------------------------------


#: the names of address changes, per address field
_ADDRESS_CHANGE_NAMES = tuple(f"address.{field}" for field in SHOPIFY_ADDRESS_FIELDS)
#: the changes of a create: customer fields, address fields (see :func:`_new_values_function`)
_new_customer_values = _new_values_function(SHOPIFY_CUSTOMER_FIELDS)
_new_address_values = _new_values_function(_ADDRESS_CHANGE_NAMES)
#: fields compared ignoring case: codes, and the e-mail (Shopify keeps the case it is sent and
#: compares addresses without it, as matching does here: a case-only difference is no change)
_CASELESS_FIELDS = frozenset({"country_code", "province_code", "email"})


class _Desired(NamedTuple):
    """The Shopify customer an export wants, in the order of SHOPIFY_CUSTOMER_FIELDS ("" =
    leave as is) and SHOPIFY_ADDRESS_FIELDS ("" = clear). (A named tuple: one per exported
    record, made without a frozen dataclass's per-field ``object.__setattr__``.)"""

    customer: tuple[str, ...]
    address: tuple[str, ...]

    def changes(
        self, target: ShopifyCustomer | None
    ) -> tuple[tuple[FieldChange, ...], Mapping[str, Any] | None]:
        """Changes against ``target`` (None: a create, every filled field) and the address
        payload (the whole desired default address, with the id of the one to update)."""
        changes: list[FieldChange]
        if target is None:  # a create: every filled field, nothing to compare with
            changes = _new_customer_values(self.customer)
            address_changes = _new_address_values(self.address)
            address_changed = bool(address_changes)
            changes += address_changes
            current = None
        else:
            changes = []
            for field, new in zip(SHOPIFY_CUSTOMER_FIELDS, self.customer, strict=True):
                if not new:
                    continue  # an empty ERP value never clears a Shopify customer field
                old = getattr(target, field)
                if not _shopify_equal(field, old, new):
                    changes.append(_change(field, old, new))
            current = target.default_address
            address_changed = False
            for field, name, new in zip(
                SHOPIFY_ADDRESS_FIELDS, _ADDRESS_CHANGE_NAMES, self.address, strict=True
            ):
                old = getattr(current, field) if current is not None else None
                if not _shopify_equal(field, old, new):
                    changes.append(_change(name, old, new))
                    address_changed = True
        if not address_changed:
            return tuple(changes), None
        address: dict[str, Any] = dict(zip(SHOPIFY_ADDRESS_FIELDS, self.address, strict=True))
        if current is not None and current.id:
            address["id"] = current.id
        return tuple(changes), MappingProxyType(address)


def _shopify_equal(field: str, old: Any, new: str) -> bool:
    old_text = str(old).strip() if old else ""
    if old_text == new:
        return True
    return field in _CASELESS_FIELDS and old_text.casefold() == new.casefold()


def _desired_shopify(
    customer: ErpCustomer,
    facts: Mapping[str, Any],
    split: tuple[str, str] | None,
    company: str,
    province_code: str,
    province_name: str,
) -> _Desired:
    first, last = split if split is not None else ("", "")
    if len(first) > SHOPIFY_TEXT_LENGTH or len(last) > SHOPIFY_TEXT_LENGTH:
        first = first[:SHOPIFY_TEXT_LENGTH].rstrip()
        last = last[:SHOPIFY_TEXT_LENGTH].rstrip()
    if len(company) > SHOPIFY_TEXT_LENGTH:
        company = company[:SHOPIFY_TEXT_LENGTH].rstrip()
    phone = str(facts.get("phone.e164") or "")
    wanted = (first, last, str(facts.get("email.first") or ""), phone)
    address = (
        company,
        first[:ADDRESS_NAME_LENGTH].rstrip(),
        last[:ADDRESS_NAME_LENGTH].rstrip(),
        customer.address.strip(),
        customer.address_2.strip(),
        customer.post_code.strip(),
        customer.city.strip(),
        str(facts.get("country.iso_code") or ""),
        province_code,
        province_name,
        phone,
    )
    return _Desired(wanted, address)
