"""The durable-rules wrapper: choice/collect semantics, the signature cache, no leftovers."""

from __future__ import annotations

from typing import Any

import pytest
from custsync.engine.rules.compile import compile_rule_set
from custsync.engine.rules.evaluate import Evaluator
from custsync.engine.rules.load import load_yaml_text
from custsync.engine.rules.rulefile import build_rule_file, merge_rule_files
from durable import engine as durable_engine

CHOICE = """
decision: export_province
description: t
rules:
  - id: by-code
    description: d
    priority: 90
    when: {province.by_code_code: {present: true}, settings.county_source: code}
    then: {action: no_province}
  - id: tie-first
    description: d
    priority: 50
    when: {county.tax_areas_exist: true}
    then: {action: no_province}
  - id: tie-second
    description: d
    priority: 50
    when: {county.tax_areas_exist: true}
    then: {action: no_province}
  - id: fallback
    description: d
    priority: 0
    when: {settings.county_source: {present: true}}
    then: {action: no_province}
"""

COLLECT = """
decision: export_requirements
description: t
rules:
  - {id: a, description: d, priority: 10, when: {email.valid: false}, then: {action: skip, reason: a, message: a}}
  - {id: b, description: d, priority: 20, when: {phone.valid: false}, then: {action: skip, reason: b, message: b}}
  - {id: c, description: d, priority: 5, when: {country.code: {present: false}}, then: {action: skip, reason: c, message: c}}
"""


def evaluator(*texts: str, cache_size: int = 1000) -> Evaluator:
    files = [build_rule_file(load_yaml_text(t, f"rules/t{i}.yaml")) for i, t in enumerate(texts)]
    return Evaluator(compile_rule_set(merge_rule_files(files)), cache_size=cache_size)


def ids(rules: Any) -> list[str]:
    return [rule.id for rule in rules]


def test_choice_gives_the_highest_priority_rule_that_holds() -> None:
    ev = evaluator(CHOICE)
    facts = {"province.by_code_code": "CA", "settings.county_source": "code"}
    assert ids(ev.fired("export_province", {**facts, "county.tax_areas_exist": True})) == [
        "by-code"
    ]
    assert ids(ev.fired("export_province", {"settings.county_source": "name"})) == ["fallback"]


def test_choice_ties_go_to_file_order() -> None:
    ev = evaluator(CHOICE)
    facts = {"county.tax_areas_exist": True, "settings.county_source": "name"}
    assert ids(ev.fired("export_province", facts)) == ["tie-first"]


def test_choice_without_any_rule_holding_is_empty() -> None:
    assert evaluator(CHOICE).fired("export_province", {}) == ()


def test_collect_gives_every_rule_that_holds_best_first() -> None:
    ev = evaluator(COLLECT)
    fired = ev.fired("export_requirements", {"email.valid": False, "phone.valid": False})
    assert ids(fired) == ["b", "a", "c"]
    assert (
        ev.fired(
            "export_requirements", {"email.valid": True, "phone.valid": True, "country.code": "US"}
        )
        == ()
    )


def test_unknown_decision_is_empty() -> None:
    assert evaluator(COLLECT).fired("import_match", {}) == ()


def test_the_engine_really_calls_durable_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original_post = durable_engine.Host.post
    original_assert = durable_engine.Host.assert_fact

    def post(self: Any, ruleset: str, message: Any, complete: Any = None) -> Any:
        calls.append(f"post:{ruleset}")
        return original_post(self, ruleset, message, complete)

    def assert_fact(self: Any, ruleset: str, fact: Any, complete: Any = None) -> Any:
        calls.append(f"assert:{ruleset}")
        return original_assert(self, ruleset, fact, complete)

    monkeypatch.setattr(durable_engine.Host, "post", post)
    monkeypatch.setattr(durable_engine.Host, "assert_fact", assert_fact)
    ev = evaluator(CHOICE, COLLECT)
    ev.fired("export_province", {"settings.county_source": "name"})
    ev.fired("export_requirements", {"email.valid": False})
    assert [c.split(":")[0] for c in calls] == ["post", "assert"]
    assert calls[0].endswith("_export_province")
    assert ev.stats.engine_calls == 2


def test_signature_cache_only_asks_durable_for_new_signatures() -> None:
    ev = evaluator(CHOICE)
    for code in ("CA", "TX", "NY"):  # presence-only: the value does not matter
        fired = ev.fired(
            "export_province", {"province.by_code_code": code, "settings.county_source": "code"}
        )
        assert ids(fired) == ["by-code"]
    assert ev.stats.engine_calls == 1
    assert ev.stats.cache_hits == 2
    ev.fired("export_province", {"settings.county_source": "name"})  # compared value differs
    assert ev.stats.engine_calls == 2
    assert ev.stats.engine_seconds > 0


def test_facts_not_read_by_conditions_do_not_split_the_cache() -> None:
    ev = evaluator(COLLECT)
    ev.fired("export_requirements", {"email.valid": False, "erp.name": "A"})
    ev.fired("export_requirements", {"email.valid": False, "erp.name": "B"})
    assert (ev.stats.engine_calls, ev.stats.cache_hits) == (1, 1)


def test_cache_is_bounded() -> None:
    ev = evaluator(CHOICE, cache_size=10)
    for index in range(50):
        ev.fired("export_province", {"settings.county_source": f"s{index}"})
    assert len(ev._cache) <= 10
    assert ev.stats.engine_calls == 50


def test_without_cache_every_call_reaches_durable() -> None:
    ev = evaluator(COLLECT, cache_size=0)
    for _ in range(3):
        ev.fired("export_requirements", {"email.valid": False})
    assert ev.stats.engine_calls == 3


def test_nothing_stays_in_the_engine() -> None:
    ev = evaluator(COLLECT, cache_size=0)
    for index in range(300):
        ev.fired("export_requirements", {"email.valid": index % 2 == 0, "phone.valid": False})
        ev.fired(
            "export_requirements", {"email.valid": True, "phone.valid": True, "country.code": "US"}
        )
    assert ev.live_facts("export_requirements") == 0


def test_a_forked_process_gets_its_own_durable_host() -> None:
    import os

    ev = evaluator(CHOICE, cache_size=0)
    parent_host = ev._host
    assert ids(ev.fired("export_province", {"settings.county_source": "code"})) == ["fallback"]
    by_code = {"province.by_code_code": "CA", "settings.county_source": "code"}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: evaluate, report, leave without running pytest's teardown
        try:
            fired = ev.fired("export_province", by_code)
            ok = ev._host is not parent_host and ids(fired) == ["by-code"]
            os.write(write, b"ok" if ok else b"bad")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 10) == b"ok"
    os.waitpid(pid, 0)
    assert ev._host is parent_host  # the parent keeps its own
    assert ids(ev.fired("export_province", by_code)) == ["by-code"]


PERSON = """
decision: export_person_name
description: t
rules:
  - {id: contact, description: d, priority: 10, when: {erp.contact: {present: true}}, then: {action: split}}
  - {id: ca, description: d, priority: 5, when: {province.by_code_code: CA}, then: {action: no_split}}
  - {id: none, description: d, priority: 0, when: {settings.name_source: none}, then: {action: no_split}}
"""


def test_decisions_read_together_answer_as_each_alone() -> None:
    ev = evaluator(CHOICE, PERSON)
    names = ("export_province", "export_person_name")
    cases = [
        {"settings.county_source": "code", "province.by_code_code": "CA"},
        {"county.tax_areas_exist": True, "erp.contact": "Jane Doe", "settings.name_source": "x"},
        {"settings.name_source": "none"},
        {},
    ]
    for facts in cases:
        alone = tuple(ev.fired(name, facts) for name in names)
        assert ev.fired_together(names, facts) == alone
    calls = ev.stats.engine_calls
    # another contact and another province code: the same joint signature, nothing asked
    again = {"county.tax_areas_exist": True, "erp.contact": "Max M", "settings.name_source": "x"}
    assert ids(ev.fired_together(names, again)[1]) == ["contact"]
    assert ev.stats.engine_calls == calls
    # a fact one decision compares and the other only checks for presence keeps its value
    ca = {"settings.county_source": "code", "province.by_code_code": "CA"}
    tx = {"settings.county_source": "code", "province.by_code_code": "TX"}
    assert [ids(r) for r in ev.fired_together(names, ca)] == [["by-code"], ["ca"]]
    assert [ids(r) for r in ev.fired_together(names, tx)] == [["by-code"], []]


def test_reading_together_falls_back_for_unknown_decisions_and_other_types() -> None:
    ev = evaluator(CHOICE)
    together = ev.fired_together(("export_province", "export_company"), {"county.length": 3})
    assert together == (ev.fired("export_province", {"county.length": 3}), ())
    odd = {"settings.county_source": ["code"]}  # not a fact type: compared as its text
    assert ev.fired_together(("export_province",), odd) == (ev.fired("export_province", odd),)
