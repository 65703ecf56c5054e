"""Compiling rules to durable-rules: operators, groups, types, limits, provenance."""

from __future__ import annotations

from typing import Any

import pytest
from custsync.engine.errors import ConfigError
from custsync.engine.rules.compile import (
    DISCRIMINATOR,
    MAX_ALTERNATIVES,
    compile_rule_set,
    fact_key,
)
from custsync.engine.rules.evaluate import Evaluator
from custsync.engine.rules.load import load_yaml_text
from custsync.engine.rules.rulefile import RuleSet, build_rule_file, merge_rule_files


def rule_set(text: str, path: str = "rules/test.yaml") -> RuleSet:
    return merge_rule_files([build_rule_file(load_yaml_text(text, path))])


def one_rule(when: str, decision: str = "export_requirements") -> Evaluator:
    text = f"""
decision: {decision}
description: test
rules:
  - id: probe
    description: probe
    priority: 10
    when: {when}
    then: {{action: skip, reason: probe, message: probe}}
"""
    return Evaluator(compile_rule_set(rule_set(text)))


def holds(evaluator: Evaluator, facts: dict[str, Any]) -> bool:
    return [r.id for r in evaluator.fired("export_requirements", facts)] == ["probe"]


def test_fact_names_become_flat_keys() -> None:
    assert fact_key("settings.customer_import") == "settings__customer_import"


def test_equality_and_booleans() -> None:
    ev = one_rule("{phone.valid: false, country.code: US}")
    assert holds(ev, {"phone.valid": False, "country.code": "US"})
    assert not holds(ev, {"phone.valid": True, "country.code": "US"})
    assert not holds(ev, {"phone.valid": False})


def test_ne_holds_for_an_absent_fact() -> None:
    ev = one_rule("{country.code: {ne: US}}")
    assert holds(ev, {"country.code": "DE"})
    assert holds(ev, {})
    assert not holds(ev, {"country.code": "US"})


def test_in_and_not_in() -> None:
    ev = one_rule("{country.code: {in: [US, CA]}}")
    assert holds(ev, {"country.code": "CA"})
    assert not holds(ev, {"country.code": "DE"})
    assert not holds(ev, {})
    ev = one_rule("{country.code: {not_in: [US, CA]}}")
    assert holds(ev, {"country.code": "DE"})
    assert holds(ev, {})
    assert not holds(ev, {"country.code": "US"})


def test_present() -> None:
    ev = one_rule("{email.first: {present: true}}")
    assert holds(ev, {"email.first": "a@b.c"})
    assert not holds(ev, {})
    ev = one_rule("{email.first: {present: false}}")  # negative only: must not loop
    assert holds(ev, {})
    assert not holds(ev, {"email.first": "a@b.c"})


def test_empty_values_count_as_absent() -> None:
    ev = one_rule("{email.first: {present: false}}")
    assert holds(ev, {"email.first": ""})
    assert holds(ev, {"email.first": None})


def test_number_comparisons() -> None:
    ev = one_rule("{county.length: {gt: 10}}")
    assert holds(ev, {"county.length": 11})
    assert not holds(ev, {"county.length": 10})
    ev = one_rule("{county.length: {lte: 2}}")
    assert holds(ev, {"county.length": 2})
    assert not holds(ev, {"county.length": 3})


def test_any_groups() -> None:
    ev = one_rule(
        "{phone.present: true, any: [{phone.valid: false}, {phone.duplicate_in_batch: true}]}"
    )
    assert holds(ev, {"phone.present": True, "phone.valid": False})
    assert holds(ev, {"phone.present": True, "phone.valid": True, "phone.duplicate_in_batch": True})
    assert not holds(ev, {"phone.present": True, "phone.valid": True})
    assert not holds(ev, {"phone.present": False, "phone.valid": False})


def test_a_rule_without_conditions_always_holds() -> None:
    text = """
decision: export_company
description: t
rules:
  - {id: always, description: d, priority: 1, then: {action: no_company}}
"""
    ev = Evaluator(compile_rule_set(rule_set(text)))
    assert [r.id for r in ev.fired("export_company", {})] == ["always"]


def test_compiled_rules_carry_discriminator_and_priority_order() -> None:
    text = """
decision: export_company
description: t
rules:
  - {id: low, description: d, priority: 1, then: {action: no_company}}
  - {id: high, description: d, priority: 50, when: {erp.name: {present: true}}, then: {action: no_company}}
"""
    compiled = compile_rule_set(rule_set(text))["export_company"]
    assert [rule.id for rule in compiled.rules] == ["high", "low"]
    assert compiled.definition["r0"]["pri"] == 1
    assert compiled.by_key["r0"].id == "high"
    assert compiled.by_key["r0"].location.line == 6
    first = compiled.definition["r0"]["all"][0]["m"]["$and"][0]
    assert first == {DISCRIMINATOR: "export_company"}
    assert compiled.facts == ("erp.name",)
    assert compiled.presence_only == frozenset({"erp.name"})


def test_values_take_the_fact_type() -> None:
    ev = one_rule("{erp.post_code: 12345}")
    assert holds(ev, {"erp.post_code": "12345"})


@pytest.mark.parametrize(
    ("when", "words"),
    [
        ("{phone.valid: yes-please}", "true or false"),
        ("{county.length: {gt: many}}", "number"),
        ("{country.code: true}", "text"),
        ("{no.such_fact: 1}", "unknown fact"),
        ("{country.code: {lt: 3}}", "compares numbers"),
        ("{country.code: {in: US}}", "list"),
    ],
)
def test_type_errors_are_config_errors_with_location(when: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        one_rule(when)
    assert words in caught.value.render()
    assert "rules/test.yaml:" in caught.value.render()
    assert "probe" in caught.value.render()


def test_long_alternative_lists_are_rejected_at_load_time() -> None:
    values = ", ".join(f"C{i}" for i in range(MAX_ALTERNATIVES + 1))
    with pytest.raises(ConfigError, match="at most"):
        one_rule(f"{{country.code: {{in: [{values}]}}}}")


def test_two_compilations_coexist() -> None:
    text = """
decision: export_company
description: t
rules:
  - {id: a, description: d, priority: 1, then: {action: no_company}}
"""
    first = compile_rule_set(rule_set(text))
    second = compile_rule_set(rule_set(text))
    assert first["export_company"].ruleset != second["export_company"].ruleset
    Evaluator(first)
    Evaluator(second)
