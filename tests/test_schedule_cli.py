"""``custsync schedule`` as a command: --once, errors, and SIGTERM on a real process.

The SIGTERM tests run ``custsync schedule`` in a subprocess whose job is a stub (patched in
through ``custsync.engine.cli.schedule.make_job``, test-only) that works through slow
"records" and checks the stop token between them, as the real sync job does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.cli import schedule as schedule_cli
from custsync.engine.model import ShopifyAddress, ShopifyCustomer
from custsync.engine.run.schedule import RunOutcome, StopToken
from custsync.engine.run.state import SqlStateStore

from sync_world import IMPORT_SETTINGS, make_erp
from sync_world import write_config as write_sync_config

CONFIG = """\
erp: {{url: "sqlite:///erp.db"}}
state: {{url: "sqlite:///state.db"}}
shops:
  - name: main
    shopify: {{url: "http://127.0.0.1:9"}}
    schedule: {{import: "{cron}", retries: {retries}, retry_backoff_seconds: 0.01}}
  - name: outlet
    shopify: {{url: "http://127.0.0.1:9"}}
"""

#: runs ``custsync schedule`` with a stub job: RECORDS records of 50 ms each, checking the
#: stop token between records (argv[1] = "ignore-stop" makes it ignore the token)
SCHEDULE_WITH_STUB_JOB = textwrap.dedent(
    """
    import sys, time
    from custsync.engine.cli import main, schedule as schedule_cli
    from custsync.engine.run.schedule import RunOutcome

    def make_job(config, state):
        def job(shop, direction, stop):
            print("working", flush=True)
            done = 0
            for _ in range(400):
                if stop.is_set() and sys.argv[1] != "ignore-stop":
                    return RunOutcome("abandoned", {"updated": done})
                time.sleep(0.05)
                done += 1
            return RunOutcome("succeeded", {"updated": done})
        return job

    schedule_cli.make_job = make_job  # test-only stub: no ERP/Shopify behind this config
    sys.exit(main(["schedule", "-c", sys.argv[2], *sys.argv[3:]]))
    """
)


def write_config(folder: Path, cron: str = "*/15 * * * *", retries: int = 0) -> Path:
    path = folder / "custsync.yaml"
    path.write_text(CONFIG.format(cron=cron, retries=retries), encoding="utf-8")
    return path


def seed_run(folder: Path, started: datetime, status: str = "succeeded") -> None:
    store = SqlStateStore.open(f"sqlite:///{folder / 'state.db'}")
    try:
        store.finish_run(store.start_run("main", "import", started), status, {})
    finally:
        store.close()


def stored_runs(folder: Path) -> list[Any]:
    store = SqlStateStore.open(f"sqlite:///{folder / 'state.db'}")
    try:
        return [(r.status, r.error, dict(r.counts)) for r in store.runs("main")]
    finally:
        store.close()


def lease_of(folder: Path) -> Any:
    store = SqlStateStore.open(f"sqlite:///{folder / 'state.db'}")
    try:
        return store.lease("shop:main")
    finally:
        store.close()


# ---- --once and errors (in process) ---------------------------------------------------------


def test_once_runs_due_jobs_and_logs_one_line_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    calls: list[tuple[str, str]] = []

    def job(shop: Any, direction: str, stop: StopToken) -> RunOutcome:
        calls.append((shop.name, direction))
        return RunOutcome("succeeded", {"created": 3, "updated": 1, "skipped": 2})

    monkeypatch.setattr(schedule_cli, "make_job", lambda config, state: job)
    assert main(["schedule", "-c", str(config), "--once"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert calls == [("main", "import")]  # outlet has no schedule
    assert (
        " shop=main direction=import status=succeeded created=3 updated=1 skipped=2 "
        "failed=0 duration=" in out
    )
    assert [r[0] for r in stored_runs(tmp_path)] == ["succeeded"]

    # just ran: the next --once has nothing due
    assert main(["schedule", "-c", str(config), "--once"]) == exitcodes.OK
    assert "nothing due" in capsys.readouterr().out
    assert len(calls) == 1


def test_once_exit_code_reports_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, retries=2)
    attempts: list[int] = []

    def job(shop: Any, direction: str, stop: StopToken) -> RunOutcome:
        attempts.append(1)
        return RunOutcome("failed", error="Shopify answered 503 for jane@example.com")

    monkeypatch.setattr(schedule_cli, "make_job", lambda config, state: job)
    assert main(["schedule", "-c", str(config), "--once"]) == exitcodes.ERROR
    out = capsys.readouterr().out
    assert len(attempts) == 3
    assert "retry 1/2 in" in out and "gave up after 3 attempts" in out
    assert "jane@example.com" not in out and "j***@example.com" in out
    assert lease_of(tmp_path) is None


def test_once_with_the_real_sync_job_reports_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The wiring to run_sync: no ERP database -> a failed run, not retried (config error)."""
    config = write_config(tmp_path, retries=3)
    assert main(["schedule", "-c", str(config), "--once"]) == exitcodes.ERROR
    out, err = capsys.readouterr()
    assert "shop=main direction=import status=failed" in out, err
    assert "erp.db does not exist" in out
    assert "retry" not in out
    assert [r[0] for r in stored_runs(tmp_path)] == ["failed"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--shop", "nope"], exitcodes.USAGE, "--shop nope: no such shop; configured: main, outlet"),
        (["--shop", "outlet"], exitcodes.ERROR, "no shop has a schedule"),
    ],
)
def test_schedule_config_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    config = write_config(tmp_path)
    assert main(["schedule", "-c", str(config), *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_schedule_without_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a missing config file is a usage error (64), as for every other command
    assert main(["schedule", "-c", str(tmp_path / "missing.yaml")]) == exitcodes.USAGE
    assert "missing.yaml: no such config file (pass -c FILE)" in capsys.readouterr().err


def test_schedule_bad_cron_in_config_names_the_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, cron="every 15 minutes")
    assert main(["schedule", "-c", str(config), "--once"]) == exitcodes.ERROR
    err = capsys.readouterr().err
    assert "custsync.yaml" in err and "every 15 minutes" in err


def test_bad_lease_ttl_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["schedule", "--lease-ttl", "0"])
    assert exc.value.code == exitcodes.USAGE


# ---- signals (real process) -------------------------------------------------------------------


def _start(tmp_path: Path, mode: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCHEDULE_WITH_STUB_JOB,
            mode,
            str(tmp_path / "custsync.yaml"),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _read_until(proc: subprocess.Popen[str], marker: str, lines: list[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(
                f"process ended before {marker!r}: {''.join(lines)}"
                f"{proc.stderr.read() if proc.stderr else ''}"
            )
        lines.append(line)
        if marker in line:
            return
    raise AssertionError(f"no {marker!r} within 60 s")


def test_sigterm_during_a_run_finishes_the_record_and_exits_0(tmp_path: Path) -> None:
    write_config(tmp_path)
    seed_run(tmp_path, datetime.now(UTC) - timedelta(hours=1))  # one catch-up run is due
    proc = _start(tmp_path, "honour-stop")
    lines: list[str] = []
    _read_until(proc, "working", lines)
    time.sleep(0.2)  # a few records in
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    output = "".join(lines) + out
    assert proc.returncode == exitcodes.OK, err
    assert "SIGTERM received: stopping after the current record" in output
    assert "shop=main direction=import status=abandoned" in output
    assert 'reason="SIGTERM"' in output
    assert "scheduler stopped (SIGTERM)" in output
    assert "Traceback" not in err
    status, _error, counts = stored_runs(tmp_path)[0]
    assert status == "abandoned" and counts.get("updated", 0) < 400
    assert lease_of(tmp_path) is None


def test_sigterm_while_idle_exits_at_once(tmp_path: Path) -> None:
    write_config(tmp_path, cron="0 0 1 1 *")  # next run months away
    proc = _start(tmp_path, "honour-stop")
    lines: list[str] = []
    _read_until(proc, "next shop=main direction=import at=", lines)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == exitcodes.OK, err
    assert time.monotonic() - started < 10
    assert "scheduler stopped (SIGINT)" in out
    assert stored_runs(tmp_path) == []


def test_second_signal_aborts_with_130_and_leaves_a_truthful_log(tmp_path: Path) -> None:
    write_config(tmp_path)
    seed_run(tmp_path, datetime.now(UTC) - timedelta(hours=1))
    proc = _start(tmp_path, "ignore-stop")
    lines: list[str] = []
    _read_until(proc, "working", lines)
    proc.send_signal(signal.SIGTERM)
    _read_until(proc, "SIGTERM received", lines)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == exitcodes.INTERRUPTED
    assert "custsync: interrupted" in err and "Traceback" not in err
    assert stored_runs(tmp_path)[0][:2] == ("abandoned", "interrupted")
    assert lease_of(tmp_path) is None


# ---- end to end with the real sync job --------------------------------------------------------


def test_once_syncs_a_real_shop_and_runs_status_and_runs_see_it(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url)
    address = ShopifyAddress(
        default=True,
        first_name="Jane",
        last_name="Doe",
        address1="1 Main Street",
        zip="1011AB",
        city="Amsterdam",
        country_code="NL",
    )
    seed_from_models(
        shopify_double,
        [
            ShopifyCustomer(
                id="",
                first_name="Jane",
                last_name="Doe",
                email="jane@example.com",
                addresses=(address,),
            ),
            ShopifyCustomer(
                id="",
                first_name="Joe",
                last_name="Bloggs",
                email="joe@example.com",
                addresses=(address,),
            ),
        ],
    )
    config = write_sync_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings=IMPORT_SETTINGS,
        token=shopify_double.token,
    )

    assert main(["schedule", "-c", str(config), "--once"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "shop=main direction=import status=succeeded created=2" in out
    assert "shop=main direction=export status=succeeded" in out
    assert shopify_double.token not in out

    assert main(["status", "-c", str(config), "--max-lag", "3600", "-o", "json"]) == 0
    jobs = json.loads(capsys.readouterr().out)["jobs"]
    assert [(j["direction"], j["consecutive_failures"], j["lease_holder"]) for j in jobs] == [
        ("import", 0, None),
        ("export", 0, None),
    ]
    assert all(j["lag_seconds"] is not None and j["lag_seconds"] < 600 for j in jobs)

    assert main(["runs", "-c", str(config), "-o", "json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert sorted((r["direction"], r["status"]) for r in runs) == [
        ("export", "succeeded"),
        ("import", "succeeded"),
    ]


def test_an_unexpected_error_of_the_real_sync_job_is_one_run_log_entry(
    tmp_path: Path,
    shopify_double: ShopifyDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """sync_shop records its run as failed and re-raises; the scheduler adds no second
    entry for the same attempt."""
    from custsync.engine.run import sync

    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url)
    config = write_sync_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings=IMPORT_SETTINGS,
        token=shopify_double.token,
    )
    document = yaml.safe_load(config.read_text(encoding="utf-8"))
    document["shops"][0]["schedule"] = {
        "import": "*/5 * * * *",
        "retries": 1,
        "retry_backoff_seconds": 0.01,
    }
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    attempts: list[int] = []

    def broken_plan(*args: Any, **kwargs: Any) -> Any:
        attempts.append(1)
        raise RuntimeError("planning broke")

    monkeypatch.setattr(sync, "plan_incremental", broken_plan)

    assert main(["schedule", "-c", str(config), "--once"]) == exitcodes.ERROR
    out = capsys.readouterr().out
    assert len(attempts) == 2
    assert out.count("direction=import status=failed created=") == 2
    assert stored_runs(tmp_path) == [
        ("failed", "RuntimeError: planning broke", {}),
        ("failed", "RuntimeError: planning broke", {}),
    ]
