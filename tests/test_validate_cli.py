"""`custsync validate`: output streams, JSON, exit codes, config discovery, the -v cap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.rules import validate

GOOD = """\
decision: import_selection
rules:
  - id: process-all
    then: {action: process}
"""
BAD = """\
decision: import_selection
rules:
  - id: process-all
    when: {shopify.emial: {present: true}}
    then: {action: proces}
"""
CONFIG = """\
erp: {url: "files:./world"}
rules: [./mine]
shops: [{name: main, shopify: {url: "files:./world"}}]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with an empty 'shipped' rules folder (independent of rules/)."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(validate, "shipped_rules_dir", lambda: shipped)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _rules(folder: Path, text: str, name: str = "r.yaml") -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_valid_rules_exit_0_with_summary_on_stdout(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rules(project / "mine", GOOD)
    assert main(["validate", "--rules", "mine"]) == exitcodes.OK
    out, err = capsys.readouterr()
    assert out == "valid: no problems (1 rule file, 1 active rule)\n"
    assert err == ""


def test_errors_exit_1_with_diagnostics_on_stderr(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rules(project / "mine", BAD)
    assert main(["validate", "--rules", "mine"]) == exitcodes.ERROR
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "mine/r.yaml:4:12: error[unknown-fact] /rules/0/when/shopify.emial: unknown fact "
        "'shopify.emial' (did you mean 'shopify.email'?)",
        "mine/r.yaml:5:20: error[unknown-action] /rules/0/then/action: unknown action 'proces' "
        "for decision import_selection; expected one of: process, skip (did you mean 'process'?)",
    ]
    assert out == "invalid: 2 errors (2 rule folders)\n"


def test_json_output(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _rules(project / "mine", BAD)
    assert main(["validate", "--rules", "mine", "-o", "json"]) == exitcodes.ERROR
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [d["code"] for d in data] == ["unknown-fact", "unknown-action"]
    assert data[0] == {
        "path": "mine/r.yaml",
        "line": 4,
        "column": 12,
        "severity": "error",
        "code": "unknown-fact",
        "pointer": "/rules/0/when/shopify.emial",
        "message": "unknown fact 'shopify.emial' (did you mean 'shopify.email'?)",
    }
    assert err.startswith("invalid: 2 errors")


def test_json_output_is_an_empty_list_when_valid(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "-o", "json"]) == exitcodes.OK
    assert json.loads(capsys.readouterr().out) == []


def test_config_in_the_working_folder_is_used_with_its_rules(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "custsync.yaml").write_text(CONFIG, encoding="utf-8")
    _rules(project / "mine", BAD)
    assert main(["validate"]) == exitcodes.ERROR
    out, err = capsys.readouterr()
    assert "mine/r.yaml:4:12: error[unknown-fact]" in err
    assert out.startswith("invalid: 2 errors (config custsync.yaml; 2 rule folders)")


def test_shipped_rules_are_checked_and_overridden(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rules(project / "shipped", GOOD)
    _rules(project / "mine", GOOD.replace("process-all", "process-all\n    priority: 5"))
    assert main(["validate", "--rules", "mine"]) == exitcodes.OK
    assert capsys.readouterr().out == "valid: no problems (2 rule files, 1 active rule)\n"


def test_missing_config_is_a_usage_error_and_a_missing_folder_a_diagnostic(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-c missing.yaml` exits 64 as on every other command (it was an io diagnostic, exit
    1); a missing rule folder stays a diagnostic among the others."""
    code = main(["validate", "--config", "nope.yaml", "--rules", "missing"])
    assert code == exitcodes.USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["custsync: error: nope.yaml: no such config file (pass -c FILE)"]
    assert main(["validate", "--rules", "missing"]) == exitcodes.ERROR
    out, err = capsys.readouterr()
    assert err.splitlines() == ["missing: error[io] /: rule folder does not exist"]
    assert "Traceback" not in out + err


def test_missing_rule_folder_of_the_config_is_reported_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "custsync.yaml").write_text(CONFIG, encoding="utf-8")
    assert main(["validate"]) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "custsync.yaml:2:9: error[io] /rules/0: rule folder './mine' does not exist"
    ]


def test_output_is_capped_without_verbose(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = "".join(
        f"  - id: r{n}\n    when: {{nope.f{n}: 1}}\n    then: {{action: process}}\n"
        for n in range(60)
    )
    _rules(project / "mine", f"decision: import_selection\nrules:\n{rules}")
    assert main(["validate", "--rules", "mine"]) == exitcodes.ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 51
    assert err[-1] == "... 10 more (10 errors); use -v to see all"
    assert main(["validate", "--rules", "mine", "-v"]) == exitcodes.ERROR
    assert len(capsys.readouterr().err.splitlines()) == 60


def test_bad_output_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate", "-o", "xml"])
    assert caught.value.code == exitcodes.USAGE
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--rules", "mine", "--rules", "mine"],
        ["--rules", "mine", "--rules", "./mine/"],
        ["--rules", "mine", "--rules", "other/../mine"],
        ["--rules", "mine", "--rules", "link"],
        ["-c", "conf.yaml", "--rules", "mine"],
    ],
)
def test_a_rule_folder_listed_twice_is_loaded_once_with_a_warning(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """The same folder twice (the config's rules: and --rules, or two spellings of one path)
    must not make every rule of it override itself."""
    (project / "conf.yaml").write_text(CONFIG, encoding="utf-8")
    (project / "other").mkdir()
    (project / "link").symlink_to(project / "mine")
    _rules(project / "mine", GOOD)

    assert main(["validate", *args]) == exitcodes.OK

    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{Path(args[-1])}: warning[listed-twice] /: this rule folder is already listed as "
        "mine; it is loaded once, at its first place"
    ]
    assert out.startswith("valid: 1 warning (")
    assert out.endswith("1 rule file, 1 active rule)\n")


def test_a_rule_file_inside_a_folder_listed_before_is_loaded_once(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rules(project / "mine", GOOD)
    assert main(["validate", "--rules", "mine", "--rules", "mine/r.yaml"]) == exitcodes.OK
    out, err = capsys.readouterr()
    assert "mine/r.yaml: warning[listed-twice] /: this rule file is already loaded from mine" in err
    assert out.endswith("1 rule file, 1 active rule)\n")


def test_the_shipped_folder_listed_as_a_user_folder_is_not_loaded_again(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rules(project / "shipped", GOOD)
    assert main(["validate", "--rules", "shipped"]) == exitcodes.OK
    out, err = capsys.readouterr()
    assert "shipped: warning[listed-twice] /: this is the shipped rules folder" in err
    assert out.endswith("1 rule file, 1 active rule)\n")


def test_rules_list_shows_no_self_override_for_a_folder_listed_twice(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _rules(project / "mine", GOOD)
    assert main(["rules", "list", "--rules", "mine", "--rules", "./mine", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    rules = [rule for decision in listed["decisions"] for rule in decision["rules"]]
    [rule] = [r for r in rules if r["id"] == "process-all"]
    assert (rule["file"], rule["overrides"]) == ("mine/r.yaml", [])


def test_a_template_the_sql_erp_does_not_have_is_an_error_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same check on a SQL ERP, which validate opens (its templates table); before
    ``erp init`` made the database there is nothing to check and nothing is said."""
    from sync_world import make_erp, write_config

    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    config = write_config(
        tmp_path,
        shop_url="http://127.0.0.1:9",
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings={"customer_template_code": "RETIAL"},
    )
    assert main(["validate", "--config", str(config), "-o", "json"]) == exitcodes.OK
    assert json.loads(capsys.readouterr().out) == []
    make_erp(erp_url)
    assert main(["validate", "--config", str(config), "-o", "json"]) == exitcodes.ERROR
    (finding,) = json.loads(capsys.readouterr().out)
    assert finding["code"] == "unknown-template"
    assert finding["pointer"] == "/shops/0/settings/customer_template_code"
    assert "'RETIAL' is not one of the ERP's (" in finding["message"]
    assert "RETAIL" in finding["message"].split("(", 1)[1]
