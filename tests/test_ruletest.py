"""The rule-test runner: file format, partial matching, diff, statuses, CLI exit codes.

The engine is replaced by a fake that returns scripted decisions, so these tests check the
runner alone; tests/test_shipped_rules.py runs the shipped suite through the real engine.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.decide import ruletest
from custsync.engine.errors import DiagnosticsError
from custsync.engine.model import (
    Action,
    Decision,
    Direction,
    ErpCustomer,
    FieldChange,
    FiredRule,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
)

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _decision(**fields: Any) -> Decision:
    base: dict[str, Any] = {
        "direction": Direction.IMPORT,
        "action": Action.LINK,
        "shop": "main",
        "record": "gid://shopify/Customer/1",
    }
    base.update(fields)
    return Decision(**base)


class FakeEngine:
    """Decides by a script: record id -> Decision (or an exception to raise)."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.calls: list[tuple[str, Any, Any]] = []

    def _answer(self, key: str) -> Decision:
        answer = self.script[key]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, Decision)
        return answer

    def decide_import(
        self,
        world: Any,
        shop: Any,
        customer: ShopifyCustomer,
        *,
        caller_template: str | None = None,
    ) -> Decision:
        self.calls.append(("import", customer, caller_template))
        return self._answer(customer.id)

    def decide_order(self, world: Any, shop: Any, order: ShopifyOrder) -> Decision:
        self.calls.append(("order", order, shop))
        return self._answer(order.id)

    def decide_export(self, world: Any, shop: Any, customer: ErpCustomer) -> Decision:
        self.calls.append(("export", customer, shop))
        return self._answer(customer.no)


def _runner(engine: FakeEngine) -> ruletest.RuleTestRunner:
    return ruletest.RuleTestRunner(
        engine_provider=lambda dirs: engine,
        world_factory=lambda spec: spec,
        shop_factory=lambda spec, settings: settings,
    )


def _write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


SUITE = """
world:
  settings: {customer_import: all_customers}
  erp_customers:
    - {no: C00010, name: Adatum, email: a@example.com}
  shopify_customers:
    - id: 1
      email: A@example.com
      addresses: [{default: true, country_code: US, zip: 94105}]
  links:
    - {shopify_id: 1, erp_no: C00010}
cases:
  - name: passes
    import: 1
    expect: {action: link, erp_no: C00010}
  - name: fails
    settings: {shopify_can_update_customers: true}
    import: {customer: 1, caller_template: T}
    expect: {action: update}
  - name: known bug
    xfail: the engine links instead of updating
    import: 1
    expect: {action: update}
  - name: export one
    export: C00010
    expect: {action: create}
"""


# ---------------------------------------------------------------------------------------------
# partial matching
# ---------------------------------------------------------------------------------------------


def test_only_listed_keys_are_checked() -> None:
    decision = _decision(erp_no="C1", reason_code="x", message="anything")
    mismatches, expected, actual = ruletest.compare({"action": "link"}, decision)
    assert mismatches == []
    assert expected == actual == {"action": "link"}


def test_scalar_mismatches_name_the_key_and_both_values() -> None:
    decision = _decision(action=Action.SKIP, erp_no=None, reason_code="no-template")
    mismatches, _, actual = ruletest.compare(
        {"action": "create", "erp_no": None, "reason_code": "no-address"}, decision
    )
    assert mismatches == [
        "action: expected 'create', got 'skip'",
        "reason_code: expected 'no-address', got 'no-template'",
    ]
    assert actual == {"action": "skip", "erp_no": None, "reason_code": "no-template"}


def test_null_expects_none() -> None:
    mismatches, _, _ = ruletest.compare({"erp_no": None}, _decision(erp_no="C1"))
    assert mismatches == ["erp_no: expected null, got 'C1'"]


def test_message_contains_ignores_case() -> None:
    decision = _decision(message="No template applies to the customer")
    assert ruletest.compare({"message_contains": "no TEMPLATE"}, decision)[0] == []
    mismatches, _, actual = ruletest.compare({"message_contains": "address"}, decision)
    assert mismatches and "'address' not in" in mismatches[0]
    assert actual["message_contains"] == "No template applies to the customer"


def test_changes_check_listed_fields_and_null_means_unchanged() -> None:
    decision = _decision(
        action=Action.UPDATE,
        changes=(
            FieldChange("name", "Old", "New"),
            FieldChange("name_2", "Keep", ""),
            FieldChange("post_code", "1", "94105"),
            FieldChange("contact", None, ""),  # a create that sets "" changes nothing
        ),
    )
    ok = {"name": "New", "post_code": 94105, "contact": None, "city": None}
    assert ruletest.compare({"changes": ok}, decision)[0] == []
    mismatches, _, actual = ruletest.compare(
        {"changes": {"name": "Other", "name_2": None, "city": "Paris"}}, decision
    )
    assert mismatches == [
        "changes.name: expected 'Other', got 'New'",
        "changes.name_2: expected unchanged, got ''",
        "changes.city: expected 'Paris', got unchanged",
    ]
    assert actual["changes"] == {"name": "New", "name_2": "", "city": None}


def test_empty_changes_means_nothing_changes() -> None:
    assert ruletest.compare({"changes": {}}, _decision(action=Action.NOOP))[0] == []
    decision = _decision(changes=(FieldChange("phone", "1", "2"),))
    mismatches, _, actual = ruletest.compare({"changes": {}}, decision)
    assert mismatches == ["changes: expected none, got phone"]
    assert actual["changes"] == {"phone": "2"}


def test_rules_must_be_among_the_fired_rules() -> None:
    fired = (FiredRule("match-by-email", "rules/import_match.yaml", 12), FiredRule("b", "f", 1))
    decision = _decision(rules=fired)
    assert ruletest.compare({"rules": ["match-by-email"]}, decision)[0] == []
    mismatches, _, actual = ruletest.compare({"rules": ["match-by-phone"]}, decision)
    assert mismatches == ["rules: match-by-phone did not fire (fired: match-by-email, b)"]
    assert actual["rules"] == ["match-by-email", "b"]
    assert ruletest.compare({"not_rules": ["b"]}, decision)[0] == ["not_rules: b fired"]


def test_payload_nested_partial_match() -> None:
    address = ShopifyAddress(company="Adatum", city="Reno", country_code="US")
    decision = _decision(payload={"address": address, "template_code": "US", "send_invite": False})
    expect = {"payload": {"address": {"city": "Reno", "province": None}, "template_code": "US"}}
    assert ruletest.compare(expect, decision)[0] == []
    assert ruletest.compare({"payload": {"send_invite": None}}, decision)[0] == []
    mismatches, _, actual = ruletest.compare(
        {"payload": {"address": {"city": "Paris", "company": "Adatum"}}}, decision
    )
    assert len(mismatches) == 1 and mismatches[0].startswith("payload.address: expected")
    assert actual["payload"] == {"address": {"city": "Reno", "company": "Adatum"}}


def test_numeric_expectation_matches_text() -> None:
    decision = _decision(changes=(FieldChange("post_code", None, "02101"),))
    assert ruletest.compare({"changes": {"post_code": "02101"}}, decision)[0] == []
    assert ruletest.compare({"changes": {"post_code": 2101}}, decision)[0] != []


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def test_load_builds_records_and_cases(tmp_path: Path) -> None:
    test_file = ruletest.load_test_file(_write(tmp_path, SUITE))
    world = test_file.world
    assert world.shop == "main"
    assert world.erp_customers[0] == ErpCustomer(no="C00010", name="Adatum", email="a@example.com")
    customer = world.shopify_customers[0]
    assert customer.id == "gid://shopify/Customer/1"
    assert customer.addresses[0].zip == "94105"  # a YAML number is a text field
    assert world.links[0].shopify_id == "gid://shopify/Customer/1"
    first, second, third, fourth = test_file.cases
    assert (first.kind, first.line, first.name) == ("import", 12, "passes")
    assert first.settings.customer_import == "all_customers"
    assert first.settings.shopify_can_update_customers is False
    assert second.settings.shopify_can_update_customers is True
    assert second.caller_template == "T"
    assert third.xfail == "the engine links instead of updating"
    assert fourth.erp_customer is not None and fourth.erp_customer.no == "C00010"


def test_order_case_and_inline_customer(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        world:
          shopify_customers: [{id: 7, email: x@example.com}]
        cases:
          - name: order
            order:
              id: 55
              customer: 7
              bill_to: {first_name: Pat, country_code: US}
              ship_to: {country_code: CA}
            expect: {action: link}
          - name: guest
            order: {customer: null, email: guest@example.com}
            expect: {action: skip}
          - name: inline
            import: {customer: {email: new@example.com, updated_at: 2026-01-02T03:04:05Z}}
            expect: {action: skip}
        """,
    )
    order, guest, inline = ruletest.load_test_file(path).cases
    assert order.order is not None
    assert order.order.id == "gid://shopify/Order/55"
    assert order.order.customer is not None and order.order.customer.email == "x@example.com"
    assert order.order.ship_to == ShopifyAddress(country_code="CA")
    assert guest.order is not None and guest.order.customer is None
    assert guest.order.id == "gid://shopify/Order/2"
    assert inline.customer is not None
    assert inline.customer.id == ruletest.INLINE_CUSTOMER_ID
    assert inline.customer.updated_at is not None and inline.customer.updated_at.hour == 3


def _problems(path: Path) -> list[str]:
    with pytest.raises(DiagnosticsError) as exc:
        ruletest.load_test_file(path)
    return [d.render() for d in exc.value.diagnostics]


def test_schema_errors_have_positions_and_pointers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        world:
          settings: {customer_import: everything}
        cases:
          - name: bad action
            import: 1
            expect: {action: destroy}
        """,
    )
    problems = _problems(path)
    assert (
        f"{path}:2:31: error[schema] /world/settings/customer_import: 'everything'" in problems[0]
    )
    assert problems[1].startswith(f"{path}:6:22: error[schema] /cases/0/expect/action: 'destroy'")


def test_a_case_needs_exactly_one_kind(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        cases:
          - name: two kinds
            import: 1
            export: C1
            expect: {action: skip}
          - name: no kind
            expect: {action: skip}
        """,
    )
    # it said "expected a different value, got mapping"
    assert _problems(path) == [
        f"{path}:2:5: error[schema] /cases/0: give exactly one of import, order, export "
        "(found import, export)",
        f"{path}:6:5: error[schema] /cases/1: give exactly one of import, order, export "
        "(found none)",
    ]


def test_customer_numbers_in_a_world_are_codes(tmp_path: Path) -> None:
    """g1 and " G1 " are customer G1, as in Business Central (issue 10 item 12)."""
    path = _write(
        tmp_path,
        """
        world:
          erp_customers: [{no: g1}, {no: " G1 "}]
        cases:
          - name: lower case
            export: g1
            expect: {action: skip}
        """,
    )
    assert _problems(path) == [
        f"{path}:2:34: error[duplicate] /world/erp_customers/1/no: duplicate customer no.",
    ]


def test_unknown_references_are_located(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        world:
          erp_customers: [{no: C1}, {no: C1}]
        cases:
          - name: unknown shopify
            import: 99
            expect: {action: skip}
          - name: unknown erp
            export: C2
            expect: {action: skip}
          - name: unknown erp
            settings: {shopify_can_update_customers: true, can_update_shopify_customers: true}
            export: C1
            expect: {action: skip}
        """,
    )
    problems = _problems(path)
    assert problems == [
        f"{path}:2:34: error[duplicate] /world/erp_customers/1/no: duplicate customer no.",
        f"{path}:5:13: error[unknown-customer] /cases/0/import: "
        "no Shopify customer gid://shopify/Customer/99 in world",
        f"{path}:8:13: error[unknown-customer] /cases/1/export: no ERP customer C2 in world",
        f"{path}:10:11: error[duplicate] /cases/2/name: duplicate case name 'unknown erp'",
        f"{path}:11:15: error[settings] /cases/2/settings: shopify_can_update_customers and "
        "can_update_shopify_customers are mutually exclusive; set at most one of them to true",
    ]


def test_yaml_syntax_error_is_a_located_diagnostic(tmp_path: Path) -> None:
    path = _write(tmp_path, "cases:\n  - name: [unclosed\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:3:1: error[yaml] /: YAML syntax")


def test_missing_rule_folder_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "rules: [./nope]\ncases:\n  - {name: a, export: C1, expect: {action: skip}}\n"
    )
    problems = _problems(path)
    assert f"{path}:1:9: error[rules-folder] /rules/0: no such rule folder: ./nope" in problems


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------


def _script() -> dict[str, Any]:
    linked = _decision(erp_no="C00010", rules=(FiredRule("match-by-link", "r.yaml", 3),))
    return {
        "gid://shopify/Customer/1": linked,
        "C00010": RuntimeError("boom"),
    }


def test_runner_statuses(tmp_path: Path) -> None:
    engine = FakeEngine(_script())
    test_file = ruletest.load_test_file(_write(tmp_path, SUITE))
    results = list(_runner(engine).run_file(test_file))
    assert [r.status for r in results] == [
        ruletest.Status.PASS,
        ruletest.Status.FAIL,
        ruletest.Status.XFAIL,
        ruletest.Status.ERROR,
    ]
    assert results[1].mismatches == ("action: expected 'update', got 'link'",)
    assert results[3].error == "RuntimeError: boom"  # one broken case does not stop the rest
    assert engine.calls[1][2] == "T"  # caller_template passed through
    assert ruletest.summarize(results) == {
        "passed": 1,
        "failed": 2,
        "xfailed": 1,
        "xpassed": 0,
        "file_errors": 0,
    }


def test_xfail_case_that_passes_is_xpass(tmp_path: Path) -> None:
    script = _script()
    script["gid://shopify/Customer/1"] = _decision(action=Action.UPDATE, erp_no="C00010")
    test_file = ruletest.load_test_file(_write(tmp_path, SUITE))
    results = list(_runner(FakeEngine(script)).run_file(test_file, select="known"))
    assert [r.status for r in results] == [ruletest.Status.XPASS]
    assert not results[0].status.failed


def test_failure_text_has_reasons_decision_and_diff(tmp_path: Path) -> None:
    test_file = ruletest.load_test_file(_write(tmp_path, SUITE))
    results = list(_runner(FakeEngine(_script())).run_file(test_file))
    text = ruletest.render_text(results)
    lines = text.splitlines()
    assert lines[0] == f"PASS {tmp_path / 'suite.yaml'}:12 passes"
    assert lines[1] == f"FAIL {tmp_path / 'suite.yaml'}:15 fails"
    assert "  action: expected 'update', got 'link'" in lines
    assert "  decision: link erp_no=C00010" in lines
    assert "    rules: match-by-link (r.yaml:3)" in lines
    assert "  --- expected" in lines and "  +++ actual" in lines
    assert "  -action: update" in lines and "  +action: link" in lines
    assert any(line.startswith("XFAIL ") and "(xfail: the engine links" in line for line in lines)
    assert "  engine error: RuntimeError: boom" in lines
    assert lines[-1] == "1 passed, 2 failed, 1 xfailed"


def test_json_rendering(tmp_path: Path) -> None:
    test_file = ruletest.load_test_file(_write(tmp_path, SUITE))
    results = list(_runner(FakeEngine(_script())).run_file(test_file))
    document = json.loads(ruletest.render_json(results))
    assert document["format_version"] == ruletest.FORMAT_VERSION
    assert document["summary"]["failed"] == 2
    first = document["results"][0]
    assert first["status"] == "PASS" and first["line"] == 12
    assert first["decision"]["action"] == "link"
    assert first["decision"]["rules"][0] == {
        "id": "match-by-link",
        "file": "r.yaml",
        "line": 3,
        "decision": "",
    }


# ---------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    engine = FakeEngine(_script())
    monkeypatch.setattr(ruletest, "_default_engine", lambda dirs: engine)
    return engine


def test_cli_failure_exits_1_and_prints_summary(
    tmp_path: Path, fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SUITE)
    assert main(["rules", "test", str(path)]) == exitcodes.ERROR
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "1 passed, 2 failed, 1 xfailed"


def test_cli_passing_suite_exits_0(
    tmp_path: Path, fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SUITE)
    assert main(["rules", "test", str(path), "-k", "passes"]) == exitcodes.OK
    assert capsys.readouterr().out.splitlines() == [
        f"PASS {path}:12 passes",
        "1 passed, 0 failed",
    ]


def test_cli_json_output(
    tmp_path: Path, fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, SUITE)
    assert main(["rules", "test", str(tmp_path), "-o", "json"]) == exitcodes.ERROR
    document = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in document["results"]] == ["PASS", "FAIL", "XFAIL", "ERROR"]
    assert document["results"][0]["file"] == str(path)


def test_cli_bad_file_is_reported_and_others_still_run(
    tmp_path: Path, fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "cases: []\n", name="a_bad.yaml")
    _write(tmp_path, SUITE, name="b_good.yaml")
    assert main(["rules", "test", str(tmp_path), "-k", "passes"]) == exitcodes.ERROR
    captured = capsys.readouterr()
    assert "a_bad.yaml:1:8: error[schema] /cases: needs at least 1 item(s)" in captured.err
    assert captured.out.splitlines()[-1] == "1 passed, 0 failed, 1 file with errors"


def test_cli_missing_path_and_usage(
    tmp_path: Path, fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "test", str(tmp_path / "missing.yaml")]) == exitcodes.ERROR
    assert "missing.yaml: no such file or folder" in capsys.readouterr().err
    assert main(["rules"]) == exitcodes.USAGE
    assert main(["rules", "test", "--rules", str(tmp_path / "nope"), str(tmp_path)]) == (
        exitcodes.USAGE
    )


def test_cli_no_cases_is_an_error(
    tmp_path: Path, fake_engine: FakeEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "test", str(tmp_path)]) == exitcodes.ERROR
    assert "no rule-test cases found" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# rules list / show
# ---------------------------------------------------------------------------------------------

_RULE_FILE = """
decision: import_match
description: Test rules.
rules:
  - id: zz-test-by-email
    description: E-mail.
    priority: 80
    when:
      lookup.email_customer_no: {present: true}
    then:
      action: match
      customer_no: {fact: lookup.email_customer_no}
      method: email
"""

_OVERRIDE_FILE = """
decision: import_match
description: Override.
rules:
  - id: zz-test-by-email
    description: E-mail, preferred.
    priority: 95
    when:
      lookup.email_customer_no: {present: true}
    then:
      action: match
      customer_no: {fact: lookup.email_customer_no}
      method: email
"""


@pytest.fixture
def rule_folders(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _write(first, _RULE_FILE, name="match.yaml")
    _write(second, _OVERRIDE_FILE, name="match.yaml")
    return first, second


def test_rules_list_shows_overrides_with_file_and_line(
    rule_folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = rule_folders
    argv = ["rules", "list", "--rules", str(first), "--rules", str(second)]
    assert main([*argv, "--decision", "import_match"]) == exitcodes.OK
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "zz-test-by-email" in row)
    assert line.split()[:3] == ["95", "zz-test-by-email", "match"]
    assert f"{second / 'match.yaml'}:4" in line
    assert f"(overrides {first / 'match.yaml'}:4)" in line
    assert main([*argv, "-o", "json"]) == exitcodes.OK
    document = json.loads(capsys.readouterr().out)
    match = next(d for d in document["decisions"] if d["name"] == "import_match")
    rule = next(r for r in match["rules"] if r["id"] == "zz-test-by-email")
    assert rule["priority"] == 95 and rule["overrides"] == [f"{first / 'match.yaml'}:4"]


def test_rules_show_prints_when_and_then(
    rule_folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = rule_folders
    assert main(["rules", "show", "zz-test-by-email", "--rules", str(first)]) == exitcodes.OK
    out = capsys.readouterr().out
    assert out.startswith("rule zz-test-by-email\n  decision:    import_match (choice)\n")
    assert f"  file:        {first / 'match.yaml'}:4\n" in out
    assert "  when:\n    lookup.email_customer_no:\n      present: true\n" in out
    assert "    method: email\n" in out
    assert main(["rules", "show", "zz-test-by-emial", "--rules", str(first)]) == exitcodes.ERROR
    assert "did you mean zz-test-by-email" in capsys.readouterr().err


def test_rules_list_reports_invalid_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    _write(folder, "decision: import_match\nrules: 5\n", name="bad.yaml")
    assert main(["rules", "list", "--rules", str(folder)]) == exitcodes.ERROR
    assert "bad.yaml:2:8: error[" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the documented example runs as documented, through the real engine
# ---------------------------------------------------------------------------------------------


def test_documented_example_passes(project_root: Path, tmp_path: Path) -> None:
    text = (project_root / "docs" / "rule-tests.md").read_text(encoding="utf-8")
    start = text.index("```yaml\n# yaml-language-server") + len("```yaml\n")
    example = _write(tmp_path, text[start : text.index("```", start)], name="example.yaml")
    test_file = ruletest.load_test_file(example)
    results = list(ruletest.RuleTestRunner().run_file(test_file))
    statuses = [result.status.value for result in results]
    assert statuses == ["PASS", "PASS", "PASS", "PASS", "XFAIL"], ruletest.render_text(results)


def test_default_run_is_the_shipped_suite_plus_configured_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    user = tmp_path / "my-rules"
    (user / "tests").mkdir(parents=True)
    _write(user, _RULE_FILE, name="match.yaml")
    _write(
        user / "tests",
        """
        world:
          erp_customers: [{no: C1, email: a@example.com}]
        cases:
          - name: my rule matches by e-mail
            import: {customer: {email: A@example.com, addresses: [{country_code: US}]}}
            settings: {customer_import: all_customers}
            expect: {erp_no: C1, rules: [match-by-email]}
        """,
        name="mine.yaml",
    )
    (tmp_path / "custsync.yaml").write_text("rules: [./my-rules]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["rules", "test", "-k", "e-mail"]) == exitcodes.OK
    lines = capsys.readouterr().out.splitlines()
    shipped = [line for line in lines if "rules/tests/import_match.yaml:" in line]
    assert shipped and all(line.startswith("PASS ") for line in shipped)
    assert "PASS my-rules/tests/mine.yaml:4 my rule matches by e-mail" in lines


def test_cli_schema_problems_use_validate_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Empty files and unknown keys are said like `custsync validate` says them (they were
    jsonschema's raw "None is not of type 'object'" / "Additional properties ...")."""
    _write(tmp_path, "", name="empty.yaml")
    _write(
        tmp_path, "cases:\n  - name: x\n    export: {customer: C1}\n    expec: {}\n", name="k.yaml"
    )
    assert main(["rules", "test", str(tmp_path)]) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert (
        "empty.yaml:1:1: error[empty] /: the file is empty; a rule-test file needs 'cases'" in err
    )
    assert "k.yaml:4:5: error[schema] /cases/0/expec: unknown property 'expec' (did you mean" in err
    assert "Traceback" not in err


def test_cli_shipped_suite_is_shown_where_it_can_be_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like `rules list` and plans (issue 11): from outside the installation, by the real
    path of the shipped file (``rules/tests/...`` did not open from here)."""
    from custsync.engine.resources import shipped_rules_dir

    monkeypatch.chdir(tmp_path)
    assert main(["rules", "test", "-k", "ignores case"]) == exitcodes.OK
    out = capsys.readouterr().out
    suite = shipped_rules_dir().resolve() / "tests" / "import_match.yaml"
    found = re.search(rf"^PASS {re.escape(str(suite))}:(\d+) e-mail match ignores case$", out, re.M)
    assert found, out
    line = suite.read_text(encoding="utf-8").splitlines()[int(found.group(1)) - 1]
    assert "ignores case" in line


def test_discover_lists_each_test_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user folder named twice (the config's rules: and --rules) runs its tests once."""
    tests = tmp_path / "mine" / "tests"
    tests.mkdir(parents=True)
    (tests / "a.yaml").write_text("cases: []\n", encoding="utf-8")
    (tests / "b.yaml").write_text("cases: []\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    found = ruletest.discover(["mine/tests", "./mine/tests/", tests, "mine/tests/a.yaml"])
    assert found == [Path("mine/tests/a.yaml"), Path("mine/tests/b.yaml")]
