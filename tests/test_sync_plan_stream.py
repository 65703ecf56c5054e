"""`custsync sync --plan FILE` reads the plan streaming (issue 11, item 2): the whole file is
checked before anything is applied, a malformed or truncated file is reported with its line
and column, a plan made from another configuration is refused, and the one-decision-a-line
layout of large plans applies like the indented one. (Memory: `bench/cli.py --scenario
sync-plan`.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.errors import ConfigError
from custsync.engine.model import ErpCustomer
from custsync.engine.resources import shipped_rules_dir
from custsync.engine.run import plan as plan_module
from custsync.engine.run.planread import open_saved_plan
from custsync.engine.run.state import open_store

from sync_world import export_world

CUSTOMERS = [
    ErpCustomer(no=f"C{i:05d}", name=f"Person {i}", email=f"p{i}@example.com", country_code="NL")
    for i in range(1, 7)
]


@pytest.fixture
def config(tmp_path: Path, shopify_double: ShopifyDouble) -> Path:
    return export_world(tmp_path, shopify_double, CUSTOMERS)


def _plan(config: Path, *, lines: bool = False, monkeypatch: pytest.MonkeyPatch | None = None
          ) -> Path:
    """A saved plan of the six creates; ``lines``: in the one-decision-a-line layout that
    plans of more than 10,000 decisions have."""
    out = config.parent / "plan.json"
    if lines:
        assert monkeypatch is not None
        monkeypatch.setattr(plan_module, "PRETTY_DECISIONS", 0)
    code = main(["plan", "-c", str(config), "--direction", "export", "--out", str(out)])
    assert code == exitcodes.OK
    return out


def _sync(config: Path, plan_file: Path) -> int:
    return main(["sync", "-c", str(config), "--no-progress", "--plan", str(plan_file)])


def _nothing_applied(config: Path, double: ShopifyDouble) -> None:
    assert double.store.customers() == []
    state = config.parent / "state.db"
    if state.exists():
        store = open_store(f"sqlite:///{state}")
        try:
            assert store.runs() == []
            assert list(store.links("main")) == []
        finally:
            store.close()


def _refused(config: Path, double: ShopifyDouble, plan_file: Path, text: str,
             capsys: pytest.CaptureFixture[str]) -> str:
    """Save ``text`` as the plan, apply it: refused with exit 1 and nothing applied; the
    error on stderr."""
    plan_file.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert _sync(config, plan_file) == exitcodes.ERROR
    err = capsys.readouterr().err
    _nothing_applied(config, double)
    return err


def _line_of(text: str, needle: str, start: int = 0) -> tuple[int, int]:
    """1-based line and column of ``needle`` in ``text``."""
    at = text.index(needle, start)
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


def test_a_plan_in_the_one_decision_a_line_layout_applies(
    config: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan_file = _plan(config, lines=True, monkeypatch=monkeypatch)
    text = plan_file.read_text(encoding="utf-8")
    items = [line for line in text.splitlines() if line.startswith('    {"direction"')]
    assert len(items) == 6  # one line per decision
    capsys.readouterr()
    code = main(["sync", "-c", str(config), "--no-progress", "--plan", str(plan_file), "-v"])
    assert code == exitcodes.OK
    out = capsys.readouterr().out
    assert "6 created" in out
    # -v prints the saved plan first, read from the file like the decisions it applies
    assert out.startswith("custsync plan: shop main; export\n")
    assert all(f"+ shopify customer (new) <- erp {c.no} " in out for c in CUSTOMERS)
    assert "Plan: 6 to create, 0 to update, 0 to link, 0 skipped." in out
    emails = sorted(c["email"] for c in shopify_double.store.customers())
    assert emails == sorted(c.email for c in CUSTOMERS)


def test_a_malformed_decision_late_in_the_file_is_named_and_nothing_is_applied(
    config: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan_file = _plan(config, lines=True, monkeypatch=monkeypatch)
    text = plan_file.read_text(encoding="utf-8")
    fifth = text.rfind("\n", 0, text.index('"record": "C00005"')) + 1  # its line
    bad = text[:fifth] + text[fifth:].replace('"action": "create"', '"action": "crate"', 1)
    err = _refused(config, shopify_double, plan_file, bad, capsys)
    line, column = _line_of(bad, '{"direction"', fifth)
    assert f"{plan_file}:{line}:{column}: /decisions/4/action: 'crate' is not one of" in err


def test_a_json_syntax_error_is_named_by_line_and_column(
    config: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = _plan(config)
    text = plan_file.read_text(encoding="utf-8")
    spot = text.index('"record": "C00006"')
    bad = text[:spot] + '"record" "C00006"' + text[spot + len('"record": "C00006"'):]
    err = _refused(config, shopify_double, plan_file, bad, capsys)
    line, column = _line_of(bad, '"C00006"')
    # the decoder names the spot after the member name, where ':' was expected
    assert f"{plan_file}:{line}:{column}: not valid JSON (Expecting ':' delimiter)" in err


@pytest.mark.parametrize("lines", [False, True])
def test_a_truncated_plan_file_is_refused_with_where_it_ends(
    config: Path, shopify_double: ShopifyDouble, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], lines: bool,
) -> None:
    plan_file = _plan(config, lines=lines, monkeypatch=monkeypatch)
    data = plan_file.read_text(encoding="utf-8")
    text = data[: data.index('"record": "C00004"')]  # a copy that stopped in the middle
    err = _refused(config, shopify_double, plan_file, text, capsys)
    assert "the file ends early (truncated?)" in err
    line, column = _line_of(text, "{", text.rfind("{"))  # the decision the file ends in
    assert f"{plan_file}:{line}:{column}:" in err


def test_a_plan_made_with_another_configuration_is_refused(
    config: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = _plan(config)
    other = config.parent / "other.yaml"
    other.write_text(config.read_text(encoding="utf-8") + "# another configuration\n",
                     encoding="utf-8")
    capsys.readouterr()
    code = main(["sync", "-c", str(other), "--no-progress", "--plan", str(plan_file)])
    assert code == exitcodes.ERROR
    err = capsys.readouterr().err
    assert "the plan was made with another configuration" in err and "make a new plan" in err
    _nothing_applied(config, shopify_double)

    # with other rules (a user folder the plan did not have), too
    rules = config.parent / "my-rules"
    rules.mkdir()
    shipped = shipped_rules_dir() / "export_action.yaml"
    (rules / shipped.name).write_bytes(shipped.read_bytes())  # the same rules, once more
    code = main(["sync", "-c", str(config), "--no-progress", "--plan", str(plan_file),
                 "--rules", str(rules)])
    assert code == exitcodes.ERROR
    assert "the plan was made with other rules than this sync uses" in capsys.readouterr().err
    _nothing_applied(config, shopify_double)


def test_a_plan_file_changed_while_it_is_applied_is_noticed(config: Path) -> None:
    plan_file = _plan(config)
    with open_saved_plan(plan_file) as saved:
        assert saved.head.summary.counts["create"] == 6
        assert [d.record for d in saved.decisions()] == [c.no for c in CUSTOMERS]
        text = plan_file.read_text(encoding="utf-8")
        with plan_file.open("r+", encoding="utf-8") as same_file:  # rewritten in place
            same_file.write(text.replace("Person 3", "Person X"))
        with pytest.raises(ConfigError, match="the plan file changed while it was being applied"):
            list(saved.decisions())


def test_the_reader_reads_what_plan_from_json_reads(config: Path) -> None:
    """Any layout of the same document (here jq-like compact JSON on one line) reads the
    same as the in-memory reader reads it."""
    plan_file = _plan(config)
    whole = plan_module.plan_from_json(plan_file.read_bytes())
    compact = config.parent / "compact.json"
    compact.write_text(json.dumps(json.loads(plan_file.read_text(encoding="utf-8"))))
    for path in (plan_file, compact):
        with open_saved_plan(path) as saved:
            assert tuple(saved.decisions()) == whole.decisions
            assert saved.head.summary == whole.summary
            assert saved.created_at == whole.created_at
            assert dict(saved.fingerprints) == dict(whole.fingerprints)


def _mutations(item: dict[str, Any]) -> list[Any]:
    """``item`` spoilt in every way one member at a time: gone, of each other JSON type,
    an unknown member beside it; the same one level down in a change and a rule."""
    odd: list[Any] = [None, True, 0, -1, 1.5, "", "x", [], {}, ["x"], {"x": 1}]
    spoilt: list[Any] = [[], "x", None]
    for key in list(item):
        spoilt.append({k: v for k, v in item.items() if k != key})
        spoilt += [{**item, key: value} for value in odd]
    spoilt.append({**item, "unknown": 1})
    for key, template in (("changes", {"field": "email", "old": None, "new": "a"}),
                          ("rules", {"id": "r", "decision": "d", "file": "f", "line": 3})):
        for name in template:
            spoilt.append({**item, key: [{k: v for k, v in template.items() if k != name}]})
            spoilt += [{**item, key: [{**template, name: value}]} for value in odd]
        spoilt.append({**item, key: [{**template, "unknown": 1}]})
        spoilt += [{**item, key: value} for value in odd]
    return spoilt


def test_the_fast_check_of_a_decision_never_lets_through_what_the_schema_refuses(
    project_root: Path,
) -> None:
    """Checking each decision with jsonschema took a millisecond (minutes for a large plan):
    a plain check runs first and the schema only to say what is wrong. It must not accept
    anything the schema refuses, and it must accept what custsync writes."""
    from custsync.engine.run.planread import _plainly_valid

    validator = plan_module.plan_validator("decision")
    written = [
        decision
        for path in (project_root / "tests" / "golden" / "plan").glob("*.json")
        for decision in json.loads(path.read_text(encoding="utf-8"))["decisions"]
    ]
    assert len(written) > 20 and all(_plainly_valid(decision) for decision in written)
    checked = 0
    for decision in written[:5]:
        for spoilt in _mutations(decision):
            if _plainly_valid(spoilt):
                assert validator.is_valid(spoilt), spoilt
            checked += 1
    assert checked > 500
