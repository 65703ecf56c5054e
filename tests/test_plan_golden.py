"""Golden plan text and JSON of the example world (examples/custsync.yaml + examples/world).

They change when the shipped rules or the example world change: rerun with
``CUSTSYNC_UPDATE_GOLDEN=1`` and review ``git diff tests/golden/plan``.
"""

from __future__ import annotations

import json

import pytest
from custsync.engine.cli import main

from plan_helpers import ROOT, check_golden, schema_errors

CONFIG = "examples/custsync.yaml"


@pytest.fixture(autouse=True)
def _in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("NO_COLOR", raising=False)


def _normalised_json(text: str) -> str:
    """The JSON plan without what changes from run to run or with every rule edit."""
    data = json.loads(text)
    assert schema_errors(data) == []
    data["created_at"] = "<created_at>"
    data["fingerprints"]["rules"] = "<rules>"
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def test_example_world_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--config", CONFIG]) == 0
    check_golden("example_world.txt", capsys.readouterr().out)


def test_example_world_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--config", CONFIG, "-o", "json"]) == 0
    check_golden("example_world.json", _normalised_json(capsys.readouterr().out))


def test_example_world_orders_text(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--config", CONFIG, "--orders", "examples/world/orders.yaml"])
    assert code == 0
    check_golden("example_world_orders.txt", capsys.readouterr().out)


def test_plans_are_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for _ in range(2):
        assert main(["plan", "--config", CONFIG, "-o", "json"]) == 0
        outputs.append(_normalised_json(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
