"""The in-memory model of rule files, and how a loaded YAML document becomes one.

A rule file (see the README's rule-file reference)::

    # yaml-language-server: $schema=../schemas/rules.schema.json
    decision: import_match
    description: Which ERP customer a Shopify customer is.
    disable: [some-shipped-rule-id]        # optional: turn off rules by id
    rules:
      - id: match-by-email
        description: E-mail equal ignoring case.
        priority: 80                       # higher wins (choice/assign decisions)
        when:                              # all must hold; omitted = always
          lookup.email_customer_no: {present: true}
          settings.customer_import: {in: [all_customers, with_order_import]}
          any:                             # at least one of the listed groups holds
            - shopify.has_address: true
            - settings.auto_create_unknown_customers: true
        then:
          action: match
          customer_no: {fact: lookup.email_customer_no}
          method: email

Condition operators: a scalar (equality), ``{eq: v}``, ``{ne: v}``, ``{in: [..]}``,
``{not_in: [..]}``, ``{present: true|false}``, ``{lt|lte|gt|gte: number}``. ``any:`` and
``all:`` take lists of condition mappings. Parameters are literals, ``{fact: name}``, or
strings with ``{fact.name}`` placeholders (messages).

This module does no validation beyond what it needs to build the model: run
:mod:`.validate` first, which reports every problem with its position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .load import LoadedDocument, Position

__all__ = [
    "GROUP_KEYS",
    "OPERATORS",
    "TEMPLATE_PLACEHOLDER",
    "Condition",
    "FactRef",
    "Group",
    "Location",
    "Param",
    "Rule",
    "RuleFile",
    "RuleSet",
    "Template",
    "build_rule_file",
    "merge_rule_files",
]

OPERATORS = ("eq", "ne", "in", "not_in", "present", "lt", "lte", "gt", "gte")
GROUP_KEYS = ("any", "all")
TEMPLATE_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+)\}")


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Condition:
    fact: str
    op: str  # one of OPERATORS
    value: Any
    location: Location


@dataclass(frozen=True, slots=True)
class Group:
    mode: str  # "all" | "any"
    items: tuple[Condition | Group, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class FactRef:
    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """A string with ``{fact.name}`` placeholders."""

    text: str

    @property
    def facts(self) -> tuple[str, ...]:
        return tuple(TEMPLATE_PLACEHOLDER.findall(self.text))


Param = FactRef | Template | str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    decision: str
    description: str
    priority: int
    when: Group
    action: str
    params: Mapping[str, Param]
    location: Location  # of the rule's mapping (its "- id:" line)
    enabled: bool = True
    pointer: str = ""  # JSON pointer of the rule inside its file

    @property
    def always_holds(self) -> bool:
        return not self.when.items


@dataclass(frozen=True, slots=True)
class RuleFile:
    path: str
    decision: str
    description: str
    rules: tuple[Rule, ...]
    disable: tuple[str, ...] = ()
    disable_locations: Mapping[str, Location] = field(default_factory=dict)


def _location(doc: LoadedDocument, pointer: str) -> Location:
    position: Position = doc.position(pointer)
    return Location(doc.path, position.line, position.column)


def _condition_items(doc: LoadedDocument, data: Any, pointer: str) -> tuple[Condition | Group, ...]:
    items: list[Condition | Group] = []
    if not isinstance(data, Mapping):
        return ()
    for key, value in data.items():
        child = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
        if key in GROUP_KEYS:
            subgroups = [
                Group(
                    "all",
                    _condition_items(doc, item, f"{child}/{index}"),
                    _location(doc, f"{child}/{index}"),
                )
                for index, item in enumerate(value or [])
            ]
            items.append(Group(str(key), tuple(subgroups), _location(doc, child)))
            continue
        if isinstance(value, Mapping):
            for op, operand in value.items():
                items.append(Condition(str(key), str(op), operand, _location(doc, child)))
        else:
            items.append(Condition(str(key), "eq", value, _location(doc, child)))
    return tuple(items)


def _param(value: Any) -> Param:
    if isinstance(value, Mapping) and set(value) == {"fact"}:
        return FactRef(str(value["fact"]))
    if isinstance(value, str) and TEMPLATE_PLACEHOLDER.search(value):
        return Template(value)
    return value  # type: ignore[no-any-return,unused-ignore]


def build_rule_file(doc: LoadedDocument) -> RuleFile:
    """Build the model from a *validated* document."""
    data = doc.data or {}
    decision = str(data.get("decision", ""))
    rules: list[Rule] = []
    for index, raw in enumerate(data.get("rules") or []):
        pointer = f"/rules/{index}"
        then = dict(raw.get("then") or {})
        action = str(then.pop("action", ""))
        rules.append(
            Rule(
                id=str(raw.get("id", "")),
                decision=decision,
                description=str(raw.get("description", "")),
                priority=int(raw.get("priority", 0)),
                when=Group(
                    "all",
                    _condition_items(doc, raw.get("when") or {}, f"{pointer}/when"),
                    _location(doc, f"{pointer}/when"),
                ),
                action=action,
                params={str(k): _param(v) for k, v in then.items()},
                location=_location(doc, pointer),
                enabled=bool(raw.get("enabled", True)),
                pointer=pointer,
            )
        )
    disable = tuple(str(item) for item in data.get("disable") or [])
    return RuleFile(
        path=doc.path,
        decision=decision,
        description=str(data.get("description", "")),
        rules=tuple(rules),
        disable=disable,
        disable_locations={
            rule_id: _location(doc, f"/disable/{index}") for index, rule_id in enumerate(disable)
        },
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The effective rules per decision after user overrides, best first.

    Order within a decision: priority descending, then load order (shipped files first, user
    folders in the order given; a replaced rule takes the place of the one it replaces).
    """

    decisions: Mapping[str, tuple[Rule, ...]]
    files: tuple[RuleFile, ...] = ()

    def rules(self, decision: str) -> tuple[Rule, ...]:
        return self.decisions.get(decision, ())


def merge_rule_files(files: list[RuleFile]) -> RuleSet:
    """Apply overrides: a later rule with the same id replaces the earlier one; ``disable``
    lists and ``enabled: false`` remove rules. Files are given shipped first."""
    by_decision: dict[str, dict[str, Rule]] = {}
    disabled: set[str] = set()
    for rule_file in files:
        disabled.update(rule_file.disable)
        bucket = by_decision.setdefault(rule_file.decision, {})
        for rule in rule_file.rules:
            bucket[rule.id] = rule  # dict keeps first insertion position: replacement in place
    decisions: dict[str, tuple[Rule, ...]] = {}
    for decision, bucket in by_decision.items():
        active = [r for r in bucket.values() if r.enabled and r.id not in disabled]
        order = {rule.id: index for index, rule in enumerate(active)}
        decisions[decision] = tuple(sorted(active, key=lambda r: (-r.priority, order[r.id])))
    return RuleSet(decisions=decisions, files=tuple(files))
