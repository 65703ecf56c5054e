"""Compile a :class:`~.rulefile.RuleSet` into durable-rules ruleset definitions.

One durable-rules ruleset per decision. Every rule becomes one durable rule named ``r<N>``
(N = its position in the decision's best-first order) with ``pri = N + 1`` (durable-rules fires
the lowest ``pri`` first), so "highest priority wins, ties by file order" is exactly the
engine's own conflict resolution. Provenance is kept in :attr:`CompiledDecision.by_key`.

Operators map as follows (``k`` = the fact's message key):

========================  ==============================================================
``eq: v`` / scalar        ``{k: v}``
``ne: v``                 ``$or: [$nex k, $neq k v]`` (holds when the fact is absent, too)
``in: [a, b]``            ``$or: [{k: a}, {k: b}]``
``not_in: [a, b]``        ``$or: [$nex k, $and: [$neq k a, $neq k b]]``
``present: true|false``   ``$ex`` / ``$nex``
``lt|lte|gt|gte: n``      ``$lt`` / ``$lte`` / ``$gt`` / ``$gte``
``any: [...]``            ``$or`` of ``$and`` groups
========================  ==============================================================

Every rule also carries the positive discriminator ``{"decision__": <decision>}``: a rule made
only of negative conditions would otherwise match durable-rules' own state object and loop.

The limits of durable-rules 2.0.28 are checked here, at load time (design.md): at most
:data:`MAX_FACTS_PER_DECISION` facts per message, at most :data:`MAX_ALTERNATIVES` values in
one ``in``/``not_in`` list, no regular expressions at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .rulefile import Condition, Group, Rule, RuleSet
from .vocabulary import BOOL, DECISIONS, FACTS, INT, STRING

#: the discriminator property every message and every rule carries
DISCRIMINATOR = "decision__"
#: durable-rules rejects messages with more than 252 properties; keep room for ours (and sid)
MAX_FACTS_PER_DECISION = 240
#: 512 or more equality alternatives on one property hang ``set_rulesets``; stay far below
MAX_ALTERNATIVES = 256

_COMPARISONS = {"lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
_VERSION = itertools.count(1)


def fact_key(name: str) -> str:
    """The message property for a fact: durable-rules reads dots as nesting."""
    return name.replace(".", "__")


@dataclass(frozen=True, slots=True)
class CompiledDecision:
    """One decision compiled for durable-rules, with what the evaluator needs around it."""

    name: str
    kind: str  # choice | collect | assign
    ruleset: str  # durable-rules ruleset name (versioned, unique per process)
    definition: Mapping[str, Any]  # durable-rules ruleset definition (without actions)
    rules: tuple[Rule, ...]  # best first
    by_key: Mapping[str, Rule]  # durable rule name -> Rule (provenance)
    facts: tuple[str, ...]  # the facts the conditions read, sorted
    presence_only: frozenset[str]  # of those, the ones whose value does not matter
    always: tuple[Rule, ...] = ()  # rules without conditions (they always hold)


def _where(rule: Rule, condition: Condition | None = None) -> str:
    location = condition.location if condition is not None else rule.location
    return f"{location}: rule {rule.id!r}"


def _coerce(rule: Rule, condition: Condition, value: Any) -> Any:
    """A condition value in the fact's type, so "1" and 1 never silently differ."""
    spec = FACTS.get(condition.fact)
    if spec is None:
        raise ConfigError(
            f"{_where(rule, condition)}: unknown fact {condition.fact!r}",
            rule=rule.id,
        )
    if isinstance(value, list | tuple | dict) or value is None:
        raise ConfigError(
            f"{_where(rule, condition)}: {condition.fact} {condition.op} needs a single value",
            rule=rule.id,
        )
    if spec.type == STRING:
        if isinstance(value, bool):
            raise ConfigError(
                f"{_where(rule, condition)}: {condition.fact} is a text, not true/false",
                rule=rule.id,
            )
        return str(value)
    if spec.type == BOOL:
        if not isinstance(value, bool):
            raise ConfigError(
                f"{_where(rule, condition)}: {condition.fact} is true or false, not {value!r}",
                rule=rule.id,
            )
        return value
    if spec.type == INT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"{_where(rule, condition)}: {condition.fact} is a number, not {value!r}",
                rule=rule.id,
            )
        return value
    return value  # pragma: no cover - the vocabulary has no other types


def _never(key: str) -> dict[str, Any]:
    return {"$and": [{"$ex": {key: 1}}, {"$nex": {key: 1}}]}


def _condition(rule: Rule, condition: Condition) -> dict[str, Any]:
    key = fact_key(condition.fact)
    op, value = condition.op, condition.value
    if op == "present":
        if not isinstance(value, bool):
            raise ConfigError(f"{_where(rule, condition)}: present takes true or false")
        return {"$ex" if value else "$nex": {key: 1}}
    if op in ("in", "not_in"):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{_where(rule, condition)}: {op} takes a list of values")
        if len(value) > MAX_ALTERNATIVES:
            raise ConfigError(
                f"{_where(rule, condition)}: {op} lists {len(value)} values; at most "
                f"{MAX_ALTERNATIVES} are supported (durable-rules hangs on long lists)",
                rule=rule.id,
            )
        values = list(dict.fromkeys(_coerce(rule, condition, item) for item in value))
        if op == "in":
            if not values:
                return _never(key)
            equal = [{key: item} for item in values]
            return equal[0] if len(equal) == 1 else {"$or": equal}
        if not values:
            return {"$or": [{"$nex": {key: 1}}, {"$ex": {key: 1}}]}
        differ = [{"$neq": {key: item}} for item in values]
        return {"$or": [{"$nex": {key: 1}}, differ[0] if len(differ) == 1 else {"$and": differ}]}
    if op == "eq":
        return {key: _coerce(rule, condition, value)}
    if op == "ne":
        return {"$or": [{"$nex": {key: 1}}, {"$neq": {key: _coerce(rule, condition, value)}}]}
    if op in _COMPARISONS:
        spec = FACTS.get(condition.fact)
        if spec is not None and spec.type != INT:
            raise ConfigError(
                f"{_where(rule, condition)}: {op} compares numbers; {condition.fact} is not one",
                rule=rule.id,
            )
        return {_COMPARISONS[op]: {key: _coerce(rule, condition, value)}}
    raise ConfigError(f"{_where(rule, condition)}: unknown operator {op!r}", rule=rule.id)


def _group(rule: Rule, group: Group) -> dict[str, Any] | None:
    """A group as one durable expression; None for an empty ``all`` (always holds)."""
    parts: list[dict[str, Any]] = []
    for item in group.items:
        if isinstance(item, Group):
            compiled = _group(rule, item)
            if compiled is None:
                if group.mode == "any":
                    return None  # one alternative always holds: the whole group holds
                continue
            parts.append(compiled)
        else:
            parts.append(_condition(rule, item))
    if not parts:
        if group.mode == "any" and group.items == ():
            return {"$and": [{DISCRIMINATOR: "\x00never"}]}  # any of nothing never holds
        return None
    if len(parts) == 1:
        return parts[0]
    return {"$and" if group.mode == "all" else "$or": parts}


def _reads(group: Group, into: dict[str, bool]) -> None:
    """Collect fact -> presence-only flag for every condition in ``group``."""
    for item in group.items:
        if isinstance(item, Group):
            _reads(item, into)
        else:
            into[item.fact] = into.get(item.fact, True) and item.op == "present"


def compile_decision(name: str, rules: tuple[Rule, ...], version: int) -> CompiledDecision:
    spec = DECISIONS.get(name)
    if spec is None:
        where = f"{rules[0].location}: " if rules else ""
        raise ConfigError(f"{where}unknown decision {name!r}")
    definition: dict[str, Any] = {}
    by_key: dict[str, Rule] = {}
    reads: dict[str, bool] = {}
    always: list[Rule] = []
    for index, rule in enumerate(rules):
        key = f"r{index}"
        expression = _group(rule, rule.when)
        conditions: list[dict[str, Any]] = [{DISCRIMINATOR: name}]
        if expression is not None:
            conditions.append(expression)
        else:
            always.append(rule)
        _reads(rule.when, reads)
        definition[key] = {
            "all": [{"m": conditions[0] if len(conditions) == 1 else {"$and": conditions}}],
            "pri": index + 1,
            "run": key,
        }
        by_key[key] = rule
    if len(reads) > MAX_FACTS_PER_DECISION:
        raise ConfigError(
            f"decision {name!r}: its rules read {len(reads)} facts; durable-rules takes at most "
            f"{MAX_FACTS_PER_DECISION} per record"
        )
    facts = tuple(sorted(reads))
    return CompiledDecision(
        name=name,
        kind=spec.kind,
        ruleset=f"custsync_{version}_{name}",
        definition=definition,
        rules=rules,
        by_key=by_key,
        facts=facts,
        presence_only=frozenset(fact for fact, only in reads.items() if only),
        always=tuple(always),
    )


def compile_rule_set(rule_set: RuleSet) -> dict[str, CompiledDecision]:
    """Every decision of ``rule_set`` compiled; ruleset names are unique in this process, so
    any number of engines (and rebuilt ones) can coexist."""
    version = next(_VERSION)
    return {
        name: compile_decision(name, rules, version)
        for name, rules in rule_set.decisions.items()
        if rules
    }
