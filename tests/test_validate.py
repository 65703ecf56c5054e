"""Rule validation (engine/rules/validate.py, engine/rules/diagnostics.py): schema, semantic checks, merge."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest
from custsync.engine.cli.schemagen import generated_schemas, reference_markdown, updated_docs
from custsync.engine.errors import DiagnosticsError
from custsync.engine.resources import schema_path, shipped_rules_dir
from custsync.engine.rules import validate, vocabulary
from custsync.engine.rules.diagnostics import (
    Diagnostic,
    Severity,
    raise_on_errors,
    render_json,
    render_text,
    sort_diagnostics,
    summary,
)
from custsync.engine.rules.load import load_yaml_text
from custsync.engine.rules.rulefile import FactRef, Template
from custsync.engine.rules.validate import (
    load_rule_set,
    require_rule_set,
    rules_schema,
    validate_rule_document,
)
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "run: python -m custsync.engine.cli.schemagen --write-schema"


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _codes(diagnostics: list[Diagnostic]) -> list[str]:
    return [d.code for d in diagnostics]


def _check(text: str) -> list[Diagnostic]:
    return validate_rule_document(load_yaml_text(text, "r.yaml"))


# --- the schema and the vocabulary ------------------------------------------------------------


@pytest.mark.parametrize("name", ["rules", "config"])
def test_committed_schemas_are_up_to_date(name: str) -> None:
    committed = schema_path(name).read_text(encoding="utf-8")
    assert committed == generated_schemas()[name], (
        f"schemas/{name}.schema.json is stale; {REGENERATE}"
    )


@pytest.mark.parametrize("name", ["rules", "config"])
def test_schemas_are_valid_2020_12(name: str) -> None:
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]


def test_schema_decisions_actions_and_params_equal_the_vocabulary() -> None:
    schema = json.loads(schema_path("rules").read_text(encoding="utf-8"))
    defs = schema["$defs"]
    assert schema["properties"]["decision"]["enum"] == list(vocabulary.DECISIONS)
    for name, decision in vocabulary.DECISIONS.items():
        assert defs[f"then_{name}"]["properties"]["action"]["enum"] == list(decision.actions)
        for action, spec in decision.actions.items():
            action_def = defs[f"action_{name}_{action}"]
            params = {k for k in action_def["properties"] if k != "action"}
            assert params == {p.name for p in spec.params}, (name, action)
            required = set(action_def["required"]) - {"action"}
            assert required == {p.name for p in spec.params if p.required}, (name, action)
    facts = set(defs["when"]["properties"]) - {"any", "all"}
    assert facts == set(vocabulary.FACTS)


def test_schema_accepts_a_complete_rule_file() -> None:
    assert (
        _check(
            """
decision: import_match
description: Matching.
disable: [some-shipped-rule]
rules:
  - id: match-by-email
    description: E-mail equal ignoring case.
    priority: 80
    enabled: true
    when:
      lookup.email_customer_no: {present: true}
      settings.customer_import: {in: [all_customers, with_order_import]}
      shopify.address_count: {gte: 1, lt: 10}
      any:
        - shopify.has_address: true
        - all:
            - settings.auto_create_unknown_customers: true
            - shopify.state: {ne: DISABLED, not_in: [DECLINED]}
    then:
      action: match
      customer_no: {fact: lookup.email_customer_no}
      method: email
  - id: no-match
    then: {action: no_match}
"""
        )
        == []
    )


def test_facts_added_to_the_vocabulary_are_accepted_without_code_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "decision: import_match\nrules:\n  - id: a\n    when: {shopify.vip: true}\n    then: {action: no_match}\n"
    assert _codes(_check(text)) == ["unknown-fact", "no-fallback"][:1]
    facts = dict(vocabulary.FACTS)
    facts["shopify.vip"] = vocabulary.FactSpec("shopify.vip", vocabulary.BOOL, "VIP customer")
    monkeypatch.setattr(vocabulary, "FACTS", MappingProxyType(facts))
    assert _check(text) == []


# --- per-document checks (the golden corpus shows the messages) ------------------------------


def test_condition_checks() -> None:
    diagnostics = _check(
        """
decision: export_requirements
rules:
  - id: r
    when:
      email.valid: "false"
      county.length: {gt: ten}
      settings.county_source: names
      lookup.email_customer_no: {present: true}
      shopify.unknown_thing: 1
    then: {action: skip, reason: email-invalid, message: "E-mail {email.first} is invalid"}
"""
    )
    by_pointer = {d.pointer: d for d in diagnostics}
    assert by_pointer["/rules/0/when/email.valid"].code == "fact-type"
    assert by_pointer["/rules/0/when/county.length/gt"].code == "schema"
    assert by_pointer["/rules/0/when/settings.county_source"].code == "fact-value"
    assert by_pointer["/rules/0/when/lookup.email_customer_no"].code == "fact-scope"
    assert by_pointer["/rules/0/when/shopify.unknown_thing"].code == "unknown-fact"
    assert all(d.severity is Severity.ERROR for d in diagnostics)


@pytest.mark.parametrize(("count", "ok"), [(100, True), (101, False)])
def test_in_lists_are_limited(count: int, ok: bool) -> None:
    values = ", ".join(f"C{n}" for n in range(count))
    diagnostics = _check(
        f"decision: import_update\nrules:\n  - id: r\n    when: {{link.customer_no: {{not_in: [{values}]}}}}\n    then: {{action: update}}\n"
    )
    assert ("in-too-long" not in _codes(diagnostics)) is ok


def test_param_checks() -> None:
    diagnostics = _check(
        """
decision: order_fallback
rules:
  - id: r
    then: {action: use_customer, customer_no: {fact: lookup.nothing}}
  - id: s
    then: {action: skip, reason: unmapped, message: "Order {order.id} of {erp.no} {not a placeholder}"}
"""
    )
    assert [(d.pointer, d.code) for d in diagnostics] == [
        ("/rules/0/then/customer_no/fact", "unknown-fact"),
        ("/rules/1/then/message", "fact-scope"),
        ("/rules/1/then/message", "placeholder"),
    ]


def test_enum_param_from_a_narrowed_fact_is_fine() -> None:
    base = """
decision: export_person_name
rules:
  - id: r
    when: {{erp.name: {{present: true}}, settings.name_source: {narrow}}}
    then: {{action: split, text: {{fact: erp.name}}, source: {{fact: settings.name_source}}}}
"""
    assert _codes(_check(base.format(narrow="{in: [first_and_last_name, none]}"))) == []
    assert _codes(_check(base.format(narrow="{ne: company_name}"))) == []
    assert _codes(_check(base.format(narrow="{ne: none}"))) == ["param-value"]


def test_a_bad_rule_does_not_hide_the_others() -> None:
    diagnostics = _check(
        """
decision: import_create
rules:
  - just text
  - id: a
    then: {action: creat}
  - id: b
    when: {shopify.emial: x}
    then: {action: create, template: X}
"""
    )
    assert _codes(diagnostics) == ["schema", "unknown-action", "unknown-fact"]


# --- sets of files ------------------------------------------------------------------------------

MATCH = """\
decision: import_match
rules:
  - id: match-by-link
    priority: 100
    when: {link.exists: true}
    then: {action: match, customer_no: {fact: link.customer_no}, method: link}
  - id: match-by-email
    priority: 80
    when: {lookup.email_customer_no: {present: true}}
    then: {action: match, customer_no: {fact: lookup.email_customer_no}, method: email}
  - id: no-match
    then: {action: no_match}
"""


def test_user_folder_overrides_and_disables(tmp_path: Path) -> None:
    _write(tmp_path / "shipped", "import_match.yaml", MATCH)
    _write(
        tmp_path / "user",
        "mine.yaml",
        """\
decision: import_match
disable: [match-by-link]
rules:
  - id: match-by-email
    priority: 90
    when: {lookup.email_customer_no: {present: true}, shopify.has_address: true}
    then: {action: match, customer_no: {fact: lookup.email_customer_no}, method: email}
""",
    )
    rule_set, diagnostics = load_rule_set(
        [tmp_path / "shipped", tmp_path / "user"], include_shipped=False
    )
    assert diagnostics == []
    assert rule_set is not None
    rules = rule_set.rules("import_match")
    assert [r.id for r in rules] == ["match-by-email", "no-match"]
    assert rules[0].location.file.endswith("mine.yaml")
    assert rules[0].priority == 90
    assert isinstance(rules[0].params["customer_no"], FactRef)


def test_a_typo_in_the_id_of_an_override_is_a_warning(tmp_path: Path) -> None:
    """`id: match-by-emial` meant to replace match-by-email but added a second rule, with no
    word from validate (a typo in `disable:` already had one)."""
    _write(tmp_path / "shipped", "import_match.yaml", MATCH)
    _write(
        tmp_path / "user",
        "mine.yaml",
        "decision: import_match\n"
        "rules:\n"
        "  - id: match-by-emial\n"
        "    priority: 80\n"
        "    when: {lookup.email_customer_no: {present: true}, shopify.has_address: true}\n"
        "    then: {action: match, customer_no: {fact: lookup.email_customer_no}, method: email}\n"
        "  - id: match-by-email-2\n"  # a new rule named after one: no warning
        "    when: {lookup.email_customer_no: {present: true}}\n"
        "    then: {action: match, customer_no: {fact: lookup.email_customer_no}, method: email}\n"
        "  - id: no-match\n"  # a real override: none either
        "    then: {action: no_match}\n",
    )
    rule_set, diagnostics = load_rule_set(
        [tmp_path / "shipped", tmp_path / "user"], include_shipped=False
    )
    assert rule_set is not None
    near = [d for d in diagnostics if d.code == "near-override"]
    assert [(d.line, d.column, d.severity, d.pointer) for d in near] == [
        (3, 9, Severity.WARNING, "/rules/0/id")
    ]
    shipped = tmp_path / "shipped" / "import_match.yaml"
    assert near[0].message == (
        f"rule 'match-by-emial' is added next to 'match-by-email' ({shipped}:7), "
        "not in its place: a rule replaces another only with the same id"
    )


def test_disabling_by_enabled_false_in_a_later_folder(tmp_path: Path) -> None:
    _write(tmp_path / "a", "m.yaml", MATCH)
    _write(
        tmp_path / "b",
        "m.yaml",
        "decision: import_match\nrules:\n  - id: match-by-link\n    enabled: false\n    then: {action: no_match}\n",
    )
    rule_set, diagnostics = load_rule_set([tmp_path / "a", tmp_path / "b"], include_shipped=False)
    assert diagnostics == [] and rule_set is not None
    assert [r.id for r in rule_set.rules("import_match")] == ["match-by-email", "no-match"]


def test_same_id_in_another_decision_is_an_error_even_in_a_later_folder(tmp_path: Path) -> None:
    _write(tmp_path / "a", "m.yaml", MATCH)
    _write(
        tmp_path / "b",
        "u.yaml",
        "decision: import_update\nrules:\n  - id: no-match\n    then: {action: update}\n",
    )
    rule_set, diagnostics = load_rule_set([tmp_path / "a", tmp_path / "b"], include_shipped=False)
    assert rule_set is None
    assert _codes(diagnostics) == ["duplicate-id"]
    assert "import_match" in diagnostics[0].message


def test_same_id_in_two_files_of_one_folder_is_an_error(tmp_path: Path) -> None:
    _write(tmp_path / "a", "m1.yaml", MATCH)
    _write(tmp_path / "a", "m2.yaml", MATCH.replace("no-match", "no-match-2"))
    rule_set, diagnostics = load_rule_set([tmp_path / "a"], include_shipped=False)
    assert rule_set is None
    assert _codes(diagnostics) == ["duplicate-id", "duplicate-id"]
    assert all(d.path.endswith("m2.yaml") for d in diagnostics)


def test_unreachable_and_no_fallback_are_warnings(tmp_path: Path) -> None:
    _write(
        tmp_path / "a",
        "m.yaml",
        MATCH.replace("  - id: no-match\n", "  - id: no-match\n    priority: 90\n"),
    )
    rule_set, diagnostics = load_rule_set([tmp_path / "a"], include_shipped=False)
    assert rule_set is not None  # warnings only
    assert [(d.code, d.severity) for d in diagnostics] == [("unreachable", Severity.WARNING)]
    assert "'match-by-email'" in diagnostics[0].message
    _write(
        tmp_path / "b",
        "m.yaml",
        MATCH.replace("  - id: no-match\n    then: {action: no_match}\n", ""),
    )
    rule_set, diagnostics = load_rule_set([tmp_path / "b"], include_shipped=False)
    assert rule_set is not None
    assert _codes(diagnostics) == ["no-fallback"]


def test_too_many_facts_for_one_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "MAX_FACTS_PER_DECISION", 2)
    _write(tmp_path / "a", "m.yaml", MATCH)
    rule_set, diagnostics = load_rule_set([tmp_path / "a"], include_shipped=False)
    assert rule_set is None
    assert _codes(diagnostics) == ["too-many-facts"]
    # link.exists, link.customer_no, lookup.email_customer_no (read twice, counted once)
    assert "reads 3 facts" in diagnostics[0].message


def test_bad_files_do_not_stop_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    _write(folder, "1-bad.yaml", "decision: [\n")
    _write(folder, "2-empty.yaml", "")
    (folder / "3-binary.yaml").write_bytes(b"\xff\xfe\x00")
    _write(folder, "4-good.yaml", MATCH.replace("shopify", "x"))
    _write(folder, "5-facts.yaml", MATCH.replace("link.exists", "link.exist"))
    (folder / "tests").mkdir()
    _write(folder / "tests", "ignored.yaml", "not: [valid\n")
    _write(folder, "notes.txt", "ignored")
    rule_set, diagnostics = load_rule_set([folder], include_shipped=False)
    assert rule_set is None
    assert sorted((Path(d.path).name, d.code) for d in diagnostics) == [
        ("1-bad.yaml", "yaml"),
        ("2-empty.yaml", "empty"),
        ("3-binary.yaml", "encoding"),
        ("5-facts.yaml", "duplicate-id"),
        ("5-facts.yaml", "duplicate-id"),
        ("5-facts.yaml", "duplicate-id"),
        ("5-facts.yaml", "unknown-fact"),
    ]


def test_a_single_file_and_missing_paths(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.yaml", MATCH)
    rule_set, diagnostics = load_rule_set([path], include_shipped=False)
    assert diagnostics == [] and rule_set is not None
    rule_set, diagnostics = load_rule_set([tmp_path / "nope"], include_shipped=False)
    assert rule_set is None
    assert [(d.code, d.line, d.message) for d in diagnostics] == [
        ("io", 0, "rule folder does not exist")
    ]


def test_read_document_reports_a_folder(tmp_path: Path) -> None:
    doc, diagnostics = validate.read_document(tmp_path)
    assert doc is None
    assert _codes(diagnostics) == ["io"]


def test_require_rule_set_raises_with_diagnostics(tmp_path: Path) -> None:
    _write(tmp_path / "a", "m.yaml", "decision: nope\n")
    with pytest.raises(DiagnosticsError) as caught:
        require_rule_set([tmp_path / "a"], include_shipped=False)
    assert caught.value.diagnostics[0].code == "unknown-decision"
    assert "m.yaml:1:11: error[unknown-decision] /decision" in caught.value.render()


def test_templates_are_parsed_for_messages(tmp_path: Path) -> None:
    _write(
        tmp_path / "a",
        "s.yaml",
        "decision: import_selection\nrules:\n  - id: s\n    then: {action: skip, reason: r, message: 'Hi {shopify.email}'}\n",
    )
    rule_set, _diagnostics = load_rule_set([tmp_path / "a"], include_shipped=False)
    assert rule_set is not None
    message = rule_set.rules("import_selection")[0].params["message"]
    assert isinstance(message, Template) and message.facts == ("shopify.email",)


def test_shipped_rules_have_no_errors() -> None:
    if not any(shipped_rules_dir().glob("*.yaml")):
        pytest.skip("rules/ has no rule files yet")
    rule_set, diagnostics = load_rule_set([], include_shipped=True)
    errors = [d.render() for d in diagnostics if d.is_error]
    assert errors == []
    assert rule_set is not None


def test_shipped_rule_tests_folder_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "rules"
    _write(shipped, "m.yaml", MATCH)
    _write(shipped / "tests", "t.yaml", "cases: []\n")
    monkeypatch.setattr(validate, "shipped_rules_dir", lambda: shipped)
    rule_set, diagnostics = load_rule_set([])
    assert diagnostics == [] and rule_set is not None
    # shipped files are shown by their real path (outside the working folder)
    assert [f.path for f in rule_set.files] == [str((shipped / "m.yaml").resolve())]


# --- diagnostics ------------------------------------------------------------------------------


def _diag(path: str, line: int, severity: Severity = Severity.ERROR, code: str = "x") -> Diagnostic:
    return Diagnostic(path, line, 3, severity, code, f"/rules/{line}", f"message {line}")


def test_render_and_json() -> None:
    d = _diag("r.yaml", 4)
    assert d.render() == "r.yaml:4:3: error[x] /rules/4: message 4"
    assert (
        Diagnostic("dir", 0, 0, Severity.WARNING, "io", "", "m").render() == "dir: warning[io] /: m"
    )
    assert d.as_json() == {
        "path": "r.yaml",
        "line": 4,
        "column": 3,
        "severity": "error",
        "code": "x",
        "pointer": "/rules/4",
        "message": "message 4",
    }
    assert render_json([d, d]) == [d.as_json()]


def test_sorting_cap_and_summary() -> None:
    diagnostics = [_diag("b.yaml", 1), _diag("a.yaml", 9, Severity.WARNING), _diag("a.yaml", 2)]
    assert [d.path + str(d.line) for d in sort_diagnostics(diagnostics)] == [
        "a.yaml2",
        "a.yaml9",
        "b.yaml1",
    ]
    lines = render_text(diagnostics, limit=1)
    assert lines[0].startswith("a.yaml:2:3")
    assert lines[1] == "... 2 more (1 error, 1 warning); use -v to see all"
    assert len(render_text(diagnostics)) == 3
    assert summary(diagnostics, "3 files") == "invalid: 2 errors, 1 warning (3 files)"
    assert summary([_diag("a", 1, Severity.WARNING)]) == "valid: 1 warning"
    assert summary([]) == "valid: no problems"


def test_raise_on_errors_ignores_warnings() -> None:
    raise_on_errors([_diag("a", 1, Severity.WARNING)])
    with pytest.raises(DiagnosticsError):
        raise_on_errors([_diag("a", 1)])


# --- generated reference ------------------------------------------------------------------------


def test_reference_lists_every_decision_action_and_fact() -> None:
    text = reference_markdown()
    for name, decision in vocabulary.DECISIONS.items():
        assert f"`{name}`" in text
        for action in decision.actions:
            assert f"| `{action}` |" in text
    for fact in vocabulary.FACTS:
        assert f"| `{fact}` |" in text


def test_docs_reference_is_up_to_date() -> None:
    docs = ROOT / "docs" / "rules-and-config.md"
    text = docs.read_text(encoding="utf-8")
    assert updated_docs(text) == text, (
        "docs/rules-and-config.md is stale; run: python -m custsync.engine.cli.schemagen "
        "--update-docs docs/rules-and-config.md"
    )


def test_schema_builder_is_deterministic() -> None:
    first: Mapping[str, object] = rules_schema()
    assert json.dumps(first, sort_keys=False) == json.dumps(rules_schema(), sort_keys=False)
