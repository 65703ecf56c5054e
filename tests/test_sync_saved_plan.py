"""`custsync sync --plan FILE`: a saved plan applies once, only to what it covers, and never
moves a cursor past changes it did not see (regressions found by using the CLI)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.erp_sql import open_writer
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer
from custsync.engine.state import open_store

from sync_world import EXPORT_SETTINGS, make_erp, write_config

ANN = ErpCustomer(no="C00001", name="Ann Lee", email="ann@example.com", country_code="NL")
BOB = ErpCustomer(no="C00002", name="Bob Ray", email="bob@example.com", country_code="NL")


@pytest.fixture
def config(tmp_path: Path, shopify_double: ShopifyDouble) -> Path:
    make_erp(f"sqlite:///{tmp_path / 'erp.db'}", [ANN, BOB])
    return write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=f"sqlite:///{tmp_path / 'erp.db'}",
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings=EXPORT_SETTINGS,
        token=shopify_double.token,
    )


def _plan(config: Path, out: Path, *extra: str) -> None:
    assert main(["plan", "-c", str(config), "--out", str(out), *extra]) == exitcodes.OK


def _sync(config: Path, *extra: str) -> int:
    return main(["sync", "-c", str(config), "--no-progress", *extra])


def _emails(double: ShopifyDouble) -> list[str]:
    return sorted(str(c["email"]) for c in double.store.customers())


def test_a_plan_applied_twice_is_stale_and_creates_nothing_the_second_time(
    config: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = config.parent / "plan.json"
    _plan(config, plan_file)
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.OK
    assert _emails(shopify_double) == ["ann@example.com", "bob@example.com"]
    capsys.readouterr()

    # the same plan again: its creates happened; it must not report "2 created" again
    assert _sync(config, "--plan", str(plan_file), "-o", "json") == exitcodes.ERROR
    result = json.loads(capsys.readouterr().out)[0]
    assert result["counts"]["created"] == 0
    assert "stale" in result["error"] and "already linked" in result["error"]
    assert _emails(shopify_double) == ["ann@example.com", "bob@example.com"]


def test_a_plan_whose_source_changed_since_is_stale(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = config.parent / "plan.json"
    _plan(config, plan_file)
    erp = open_writer(f"sqlite:///{config.parent / 'erp.db'}")
    try:
        assert erp.update_customer("C00001", {"email": "ann.lee@example.com"}).ok
    finally:
        erp.close()
    capsys.readouterr()
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.ERROR
    out = capsys.readouterr().out
    assert "stale" in out and "export C00001 (source changed)" in out


def test_a_plan_for_another_shop_is_refused_not_silently_ignored(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = config.parent / "plan.json"
    _plan(config, plan_file)
    data = json.loads(plan_file.read_text(encoding="utf-8"))
    data["shops"] = ["other"]
    for decision in data["decisions"]:
        decision["shop"] = "other"
    plan_file.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()

    assert _sync(config, "--plan", str(plan_file)) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert "the plan is for shop(s) other" in err and "configured: main" in err


def test_a_saved_plan_moves_only_its_directions_cursors_and_not_past_its_own_time(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = config.parent / "plan.json"
    before = datetime.now(UTC).replace(microsecond=0)
    _plan(config, plan_file, "--direction", "export")
    made = datetime.fromisoformat(json.loads(plan_file.read_text(encoding="utf-8"))["created_at"])
    assert before <= made <= datetime.now(UTC)

    # asking for a direction the plan does not have is a usage error
    assert _sync(config, "--plan", str(plan_file), "--direction", "import") == exitcodes.USAGE
    assert "the plan has no import direction" in capsys.readouterr().err

    # `sync` defaults to both directions: only the planned one may count as done
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.OK
    store = open_store(f"sqlite:///{config.parent / 'state.db'}")
    try:
        assert store.cursor("main", "import") is None
        cursor = store.cursor("main", "export")
        assert cursor is not None and cursor <= made + timedelta(seconds=1)
        assert [run.direction for run in store.runs("main")] == ["export"]
    finally:
        store.close()


def test_a_saved_plan_with_a_broken_time_is_reported_not_a_traceback(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = config.parent / "plan.json"
    _plan(config, plan_file)
    data: dict[str, Any] = json.loads(plan_file.read_text(encoding="utf-8"))
    data["created_at"] = "yesterday"
    plan_file.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.ERROR
    assert "/created_at: 'yesterday' is not an ISO 8601 time" in capsys.readouterr().err
