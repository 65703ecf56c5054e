"""``custsync runs`` and ``custsync status`` on a real SQLite state database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.run.state import SqlStateStore

CONFIG = """\
erp: {url: "sqlite:///erp.db"}
state: {url: "sqlite:///state.db"}
shops:
  - name: main
    shopify: {url: "http://127.0.0.1:9"}
    schedule: {import: "*/15 * * * *", export: "0 * * * *"}
  - name: outlet
    shopify: {url: "http://127.0.0.1:9"}
    schedule: {export: "30 2 * * *"}
"""

@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A config and a state database with a few runs of shop main (times relative to now:
    taken here, not at import, as the suite may reach these tests minutes after collecting)."""
    now = datetime.now(UTC).replace(microsecond=0)
    (tmp_path / "custsync.yaml").write_text(CONFIG, encoding="utf-8")
    now = datetime.now(UTC).replace(microsecond=0)  # at the test's start, not at collection
    store = SqlStateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        ok = store.start_run("main", "import", now - timedelta(hours=2))
        store.finish_run(
            ok,
            "succeeded",
            {"created": 3, "updated": 1, "linked": 2, "unchanged": 4, "skipped": 2},
        )
        bad = store.start_run("main", "import", now - timedelta(minutes=20))
        store.record_outcome(bad, "gid://shopify/Customer/1", "create", "ok")
        store.record_outcome(
            bad,
            "gid://shopify/Customer/2",
            "create",
            "failed",
            "ERP refused: e-mail jane@example.com too long",
            ["import_match.by_email"],
        )
        store.finish_run(bad, "failed", {"created": 1, "failed": 1}, "1 record(s) failed")
        exp = store.start_run("main", "export", now - timedelta(minutes=10), "host-b:77:ef01")
        store.finish_run(exp, "succeeded", {"updated": 4})
        assert store.acquire_lease("shop:main", "host-a:123:abcd", 3600)
    finally:
        store.close()
    return tmp_path


def run(world: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([args[0], "-c", str(world / "custsync.yaml"), *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_lists_history_newest_first(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(world, capsys, "runs")
    assert code == exitcodes.OK
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN",
        "SHOP",
        "DIRECTION",
        "STARTED",
        "(UTC)",
        "DURATION",
        "STATUS",
        "HOLDER",
        "CREATED",
        "UPDATED",
        "LINKED",
        "UNCHANGED",
        "SKIPPED",
        "FAILED",
        "ERROR",
    ]
    assert [line.split()[0] for line in lines[1:]] == ["3", "2", "1"]
    # who ran each run: the lease holder (hostname:pid:random), "-" where none was recorded
    assert [line.split()[7] for line in lines[1:]] == ["host-b:77:ef01", "-", "-"]
    # every count of `sync`'s summary, linked and unchanged too
    assert lines[3].split()[-6:] == ["3", "1", "2", "4", "2", "0"]
    second = lines[2].split()
    assert second[1:3] == ["main", "import"] and "failed" in second
    assert "1 record(s) failed" in lines[2]


def test_runs_filters_and_json(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(world, capsys, "runs", "--direction", "import", "--limit", "1", "-o", "json")
    assert code == exitcodes.OK
    data = json.loads(out)
    assert data["format_version"] == 1
    [only] = data["runs"]
    assert (only["id"], only["status"], only["counts"]) == (
        2,
        "failed",
        {"created": 1, "failed": 1},
    )
    assert only["started_at"].endswith("Z") and only["duration_seconds"] is not None
    assert only["holder"] is None

    code, out, _ = run(world, capsys, "runs", "--direction", "export", "-o", "json")
    assert [r["holder"] for r in json.loads(out)["runs"]] == ["host-b:77:ef01"]

    code, out, _ = run(world, capsys, "runs", "--shop", "outlet")
    assert (code, out.strip()) == (exitcodes.OK, "No runs.")


def test_runs_failures_of_a_run(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(world, capsys, "runs", "--failures", "2")
    assert code == exitcodes.OK
    assert "Run 2: main import, failed" in out
    assert "gid://shopify/Customer/2" in out and "gid://shopify/Customer/1" not in out
    assert "j***@example.com" in out and "jane@example.com" not in out
    assert "import_match.by_email" in out
    assert out.rstrip().endswith("1 failed record.")

    code, out, _ = run(world, capsys, "runs", "--failures", "2", "-o", "json")
    data = json.loads(out)
    assert data["run"]["id"] == 2
    assert data["failures"] == [
        {
            "record": "gid://shopify/Customer/2",
            "action": "create",
            "reason": "ERP refused: e-mail j***@example.com too long",
            "rules": ["import_match.by_email"],
        }
    ]


def test_runs_failures_of_an_unknown_run(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(world, capsys, "runs", "--failures", "99")
    assert code == exitcodes.USAGE
    assert "no run 99 in the state database" in err


def test_runs_with_a_missing_state_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["runs", "--state", f"sqlite:///{tmp_path / 'nope.db'}"])
    err = capsys.readouterr().err
    assert code == exitcodes.ERROR
    assert "nope.db" in err and "Traceback" not in err
    assert not (tmp_path / "nope.db").exists()  # reading never creates a database


def test_status_json_for_monitoring(world: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(world, capsys, "status", "-o", "json")
    assert code == exitcodes.OK
    data = json.loads(out)
    assert data["healthy"] is True
    jobs = {(j["shop"], j["direction"]): j for j in data["jobs"]}
    assert set(jobs) == {("main", "import"), ("main", "export"), ("outlet", "export")}
    imp = jobs[("main", "import")]
    assert 7200 <= imp["lag_seconds"] < 7200 + 120
    assert imp["consecutive_failures"] == 1
    assert imp["last_failure"]["run_id"] == 2
    assert imp["last_failure"]["error"] == "1 record(s) failed"
    assert imp["lease_holder"] == "host-a:123:abcd"
    assert imp["next_run"].endswith("Z") and imp["cron"] == "*/15 * * * *"
    pending = jobs[("outlet", "export")]
    assert pending["last_success"] is None and pending["lag_seconds"] is None
    assert pending["healthy"] is True and pending["lease_holder"] is None


def test_status_is_unhealthy_beyond_max_lag(
    world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(world, capsys, "status", "--max-lag", "3600", "-o", "json")
    assert code == exitcodes.ERROR
    data = json.loads(out)
    assert data["healthy"] is False
    problems = {(j["shop"], j["direction"]): j["problems"] for j in data["jobs"]}
    assert problems[("main", "import")][0].startswith("last success 72")
    assert problems[("main", "export")] == []

    code, out, _ = run(world, capsys, "status", "--max-failures", "1")
    assert code == exitcodes.ERROR
    assert "1 consecutive failures" in out and out.rstrip().endswith("UNHEALTHY")

    code, out, _ = run(world, capsys, "status", "--shop", "main", "--max-lag", "9000")
    assert code == exitcodes.OK
    assert out.rstrip().endswith("healthy") and "outlet" not in out
