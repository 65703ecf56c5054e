"""Rule locations can be opened (issue 11, item 6): plans, `rules show` and `orders map` named
shipped rules as `rules/import_match.yaml:19`, relative to the installed package, which does
not exist where the user runs custsync. They show the shipped file's real path (a user's rule
file as given), and the line is the rule's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main


def _rule_line(path: Path, line: int) -> str:
    return path.read_text(encoding="utf-8").splitlines()[line - 1].strip()


def test_plan_rule_locations_open_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, project_root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = project_root / "examples" / "custsync.yaml"
    mine = tmp_path / "my-rules"
    mine.mkdir()
    (mine / "import_match.yaml").write_text(
        (project_root / "rules" / "import_match.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert main(["plan", "-c", str(config), "--rules", str(mine), "-o", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    fired = [rule for decision in plan["decisions"] for rule in decision["rules"]]
    files = {rule["file"] for rule in fired}
    assert str(mine / "import_match.yaml") in files  # a user's file: as given
    assert not any(name.startswith("rules/") for name in files)
    for rule in fired:
        path = Path(rule["file"])
        assert path.is_absolute() and path.is_file(), rule
        assert _rule_line(path, rule["line"]) == f"- id: {rule['id']}", rule

    assert main(["plan", "-c", str(config), "--rules", str(mine)]) == 0
    text = capsys.readouterr().out
    shown = re.findall(r"\((/[^():]+\.yaml):(\d+)\)", text)
    assert shown, text
    for file, line in shown:
        assert Path(file).is_file() and _rule_line(Path(file), int(line)).startswith("- id: ")

    # `rules show` names the same place
    assert main(["rules", "show", "match-by-email"]) == exitcodes.OK
    out = capsys.readouterr().out
    where = re.search(r"(/\S+/import_match\.yaml):(\d+)", out)
    assert where, out
    assert _rule_line(Path(where.group(1)), int(where.group(2))) == "- id: match-by-email"


def test_inside_the_working_folder_locations_stay_short(
    monkeypatch: pytest.MonkeyPatch, project_root: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """From the checkout (the shipped rules below the working folder) they read as before."""
    monkeypatch.chdir(project_root)
    assert main(["plan", "-c", "examples/custsync.yaml", "-o", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    files = {rule["file"] for decision in plan["decisions"] for rule in decision["rules"]}
    assert files and all(name.startswith("rules/") and Path(name).is_file() for name in files)
