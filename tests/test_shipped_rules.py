"""The shipped rule-test suite (rules/tests/*.yaml) through the real engine, one pytest case
per rule-test case; plus checks that the suite covers every numbered point of behaviour.md.

A case marked ``xfail:`` in its YAML is a known engine deviation: pytest reports it as xfail
(strict=False), the same as ``custsync rules test`` does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from custsync.engine.decide import ruletest
from custsync.engine.errors import DiagnosticsError
from custsync.engine.model import ShopSettings
from custsync.engine.resources import shipped_rules_dir
from custsync.engine.rules.load import load_yaml

SUITE = shipped_rules_dir() / "tests"
FILES = ruletest.discover([SUITE])

#: every numbered point of behaviour.md that a per-record rule test can show
BEHAVIOUR_POINTS = (
    "1", "2", "3.1", "3.2", "3.3", "3.4", "3.5", "4.1", "4.2", "4.3", "4.4", "5",
    "6.1", "6.2", "6.3", "6.4", "6.5", "6.6", "7",
)  # fmt: skip


def _load(path: Path) -> ruletest.TestFile | str:
    try:
        return ruletest.load_test_file(path)
    except DiagnosticsError as exc:
        return "\n".join(d.render() for d in exc.diagnostics)


LOADED = {path: _load(path) for path in FILES}


def _params() -> list[Any]:
    params = []
    for path, loaded in LOADED.items():
        if isinstance(loaded, str):
            params.append(pytest.param(path, None, id=f"{path.stem}:invalid"))
            continue
        for case in loaded.cases:
            marks = [pytest.mark.xfail(reason=case.xfail, strict=False)] if case.xfail else []
            params.append(
                pytest.param(path, case, id=f"{path.stem}:{case.line}:{case.name}", marks=marks)
            )
    return params


@pytest.fixture(scope="module")
def runner() -> ruletest.RuleTestRunner:
    return ruletest.RuleTestRunner()


@pytest.mark.parametrize(("path", "case"), _params())
def test_rule_case(
    runner: ruletest.RuleTestRunner, path: Path, case: ruletest.TestCase | None
) -> None:
    loaded = LOADED[path]
    if isinstance(loaded, str):
        pytest.fail(f"invalid rule-test file:\n{loaded}", pytrace=False)
    assert case is not None
    result = runner.run_case(loaded, case, verbose=True)
    if result.status.failed or result.status is ruletest.Status.XFAIL:
        pytest.fail(ruletest.render_result(result), pytrace=False)


def test_the_suite_exists() -> None:
    names = {path.name for path in FILES}
    assert {
        "import_match.yaml",
        "import_create.yaml",
        "import_fields.yaml",
        "order_mapping.yaml",
        "export_requirements.yaml",
        "export_names.yaml",
        "export_province.yaml",
        "export_action.yaml",
        "overrides.yaml",
    } <= names


def _raw_cases() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    found = []
    for path in FILES:
        data = load_yaml(path).data or {}
        world_settings = (data.get("world") or {}).get("settings") or {}
        found.extend((path, world_settings, case) for case in data.get("cases") or [])
    return found


def test_every_behaviour_point_is_covered() -> None:
    covered = {str(point) for _, _, case in _raw_cases() for point in case.get("covers") or []}
    missing = [point for point in BEHAVIOUR_POINTS if point not in covered]
    assert not missing, f"no rule-test case covers behaviour.md {', '.join(missing)}"


def test_every_setting_is_exercised_away_from_its_default() -> None:
    defaults = ShopSettings()
    seen: set[str] = set()
    for _, world_settings, case in _raw_cases():
        for settings in (world_settings, case.get("settings") or {}):
            seen.update(name for name, value in settings.items() if value != getattr(defaults, name))
    every = {f.name for f in dataclasses.fields(ShopSettings)}
    assert every - seen == set(), f"settings never changed from their default: {every - seen}"
