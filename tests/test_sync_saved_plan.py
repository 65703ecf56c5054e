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
from custsync.engine.run.state import open_store

from sync_world import export_world

ANN = ErpCustomer(no="C00001", name="Ann Lee", email="ann@example.com", country_code="NL")
BOB = ErpCustomer(no="C00002", name="Bob Ray", email="bob@example.com", country_code="NL")


@pytest.fixture
def config(tmp_path: Path, shopify_double: ShopifyDouble) -> Path:
    return export_world(tmp_path, shopify_double, [ANN, BOB])


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
    assert result["status"] == "refused"
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


def _erp_update(config: Path, no: str, fields: dict[str, Any]) -> None:
    erp = open_writer(f"sqlite:///{config.parent / 'erp.db'}")
    try:
        assert erp.update_customer(no, fields).ok
    finally:
        erp.close()


def test_a_stale_plan_is_recorded_as_refused_not_failed_and_moves_no_cursor(
    config: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    state_url = f"sqlite:///{config.parent / 'state.db'}"
    assert _sync(config) == exitcodes.OK  # both customers exported; both cursors set
    store = open_store(state_url)
    try:
        cursors = {d: store.cursor("main", d) for d in ("import", "export")}
        before = [run.id for run in store.runs("main")]
    finally:
        store.close()
    assert None not in cursors.values() and len(before) == 2

    # a plan with one export update, then the world moves on before it is applied
    _erp_update(config, "C00001", {"email": "ann.lee@example.com"})
    plan_file = config.parent / "plan.json"
    _plan(config, plan_file)
    assert '"action": "update"' in plan_file.read_text(encoding="utf-8")
    _erp_update(config, "C00001", {"email": "ann.smith@example.com"})
    shop_before = shopify_double.store.customers()
    capsys.readouterr()

    assert _sync(config, "--plan", str(plan_file)) == exitcodes.ERROR  # README: exit 1
    out = capsys.readouterr().out
    assert "Sync main: refused." in out
    assert "reason: the plan is stale" in out and "export C00001 (source changed)" in out
    assert shopify_double.store.customers() == shop_before

    store = open_store(state_url)
    try:
        refused = [run for run in store.runs("main") if run.id not in before]
        assert {cursor: store.cursor("main", cursor) for cursor in cursors} == cursors
        health = {h.direction: h for h in store.health("main")}
    finally:
        store.close()
    assert sorted(run.direction for run in refused) == ["export", "import"]
    for run in refused:
        assert run.status == "refused" and run.finished_at is not None
        assert run.error.startswith("the plan is stale: its records changed since it was made")
        assert "export C00001 (source changed)" in run.error
        assert not any(run.counts.values())
    for direction in ("import", "export"):
        assert health[direction].last_failure is None
        assert health[direction].consecutive_failures == 0
        assert health[direction].last_success is not None
        assert health[direction].last_success.id in before

    # `custsync runs` shows the refusal with its reason
    assert main(["runs", "-c", str(config), "-o", "json"]) == exitcodes.OK
    newest = json.loads(capsys.readouterr().out)["runs"][:2]
    assert [r["status"] for r in newest] == ["refused", "refused"]
    assert all("the plan is stale" in r["error"] for r in newest)
    assert main(["runs", "-c", str(config)]) == exitcodes.OK
    row = capsys.readouterr().out.splitlines()[1].split()
    assert "refused" in row and "stale:" in row

    # `custsync status` does not count it as a failure: healthy even at --max-failures 1
    assert main(["status", "-c", str(config), "--max-failures", "1", "-o", "json"]) == (
        exitcodes.OK
    )
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is True
    assert [(j["consecutive_failures"], j["last_failure"]) for j in report["jobs"]] == [
        (0, None),
        (0, None),
    ]

    # the refusal changed nothing: a fresh plan of the same change applies
    _plan(config, plan_file)
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.OK
    assert _emails(shopify_double) == ["ann.smith@example.com", "bob@example.com"]


def test_refusals_before_a_run_starts_leave_no_run_log_entry(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid plan file, a plan for shops this config lacks and a held lease are
    refused before a run starts: exit code and stderr only, no run, no cursor."""
    plan_file = config.parent / "plan.json"
    _plan(config, plan_file)
    broken = config.parent / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    other = config.parent / "other.json"
    data = json.loads(plan_file.read_text(encoding="utf-8"))
    data["shops"] = ["other"]
    for decision in data["decisions"]:
        decision["shop"] = "other"
    other.write_text(json.dumps(data), encoding="utf-8")
    state_url = f"sqlite:///{config.parent / 'state.db'}"
    store = open_store(state_url)
    try:
        assert store.acquire_lease("shop:main", "elsewhere:1:abcd", 600)
    finally:
        store.close()
    capsys.readouterr()

    assert _sync(config, "--plan", str(broken)) == exitcodes.ERROR
    assert _sync(config, "--plan", str(other)) == exitcodes.ERROR
    assert _sync(config, "--plan", str(plan_file)) == exitcodes.LOCKED
    assert "being synced by elsewhere:1:abcd" in capsys.readouterr().err

    store = open_store(state_url)
    try:
        assert store.runs() == []
        assert store.cursor("main", "import") is None and store.cursor("main", "export") is None
    finally:
        store.close()
