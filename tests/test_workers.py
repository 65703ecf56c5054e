"""Celery workers (issue 13) against the real brokers and PostgreSQL, with real worker processes.

Each test has its own queue (``queue_name``), PostgreSQL schema (``pg_url``), ERP file and
Shopify double; worker processes are started with ``custsync worker`` and stopped (or killed)
by the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.config import require_config
from custsync.engine.model import ErpCustomer
from custsync.engine.run.dispatch import DispatchLedger, DispatchRow
from custsync.engine.run.state import open_store
from custsync.engine.run.workers import celery_app, config_fingerprint, queue_depths, send_job

from fixtures_brokers import PASSWORD_ENV, PrivateRabbit, free_port
from sync_world import EXPORT_SETTINGS, make_erp, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CUSTSYNC = str(Path(sys.executable).with_name("custsync"))


def _wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


class Fleet:
    """A shop (SQLite ERP with N customers to export, the Shopify double), a PostgreSQL state
    and a broker queue; starts ``custsync worker`` processes."""

    def __init__(
        self,
        folder: Path,
        double: ShopifyDouble,
        state_url: str,
        broker: str,
        queue: str,
        **worker_options: Any,
    ) -> None:
        self.worker_options = worker_options  # more keys of the workers: section
        self.folder = folder
        self.double = double
        self.state_url = state_url
        self.broker = broker
        self.queue = queue
        self.erp_url = f"sqlite:///{folder / 'erp.db'}"
        self.workers: list[subprocess.Popen[str]] = []
        self.output: list[str] = []  # what stopped workers printed (for failure messages)
        self.config_path = self.write_config(folder)

    def write_config(self, folder: Path, **changes: Any) -> Path:
        path = write_config(
            folder,
            shop_url=self.double.url,
            erp_url=self.erp_url,
            state_url=self.state_url,
            settings=EXPORT_SETTINGS,
            token=self.double.token,
        )
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        document["shops"][0]["schedule"] = {
            "export": "* * * * *",
            "retries": 1,
            "retry_backoff_seconds": 0.1,
        }
        workers: dict[str, Any] = {"broker_url": self.broker, "queue": self.queue}
        workers["lease_retry_seconds"] = 0.5
        if "amqp" in self.broker:
            workers["broker_password_env"] = PASSWORD_ENV
        document["workers"] = {**workers, **self.worker_options}
        for key, value in changes.items():
            document[key] = value
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def customers(self, n: int) -> None:
        make_erp(
            self.erp_url,
            [
                ErpCustomer(
                    no=f"C{i:05d}", name=f"Person {i}", email=f"p{i}@example.com", country_code="NL"
                )
                for i in range(1, n + 1)
            ],
        )

    def start_worker(
        self, config: Path | None = None, concurrency: int = 1
    ) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [
                CUSTSYNC,
                "worker",
                "-c",
                str(config or self.config_path),
                "--concurrency",
                str(concurrency),
                "--lease-ttl",
                "5",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.workers.append(process)
        return process

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            self.output.append(process.communicate(timeout=30)[0])
        self.workers = []

    def ledger(self) -> DispatchLedger:
        return DispatchLedger(self.state_url)

    def dispatch(self, direction: str = "export") -> int:
        """Send one job as ``sync --executor celery`` does; its dispatch row id."""
        config = require_config(self.config_path)
        app = celery_app(config)
        ledger = self.ledger()
        try:
            row_id = ledger.claim(
                "main", direction, datetime.now(UTC), kind="manual", queue=self.queue
            )
            assert row_id is not None
            row = ledger.get(row_id)
            assert row is not None
            ledger.mark_sent(row_id, send_job(app, row, config_fingerprint(config)))
            return row_id
        finally:
            ledger.close()
            app.close()

    def row(self, row_id: int) -> DispatchRow:
        ledger = self.ledger()
        try:
            row = ledger.get(row_id)
        finally:
            ledger.close()
        assert row is not None
        return row

    def rows(self) -> list[DispatchRow]:
        ledger = self.ledger()
        try:
            return ledger.rows()
        finally:
            ledger.close()

    def wait_done(self, row_id: int, timeout: float = 90.0) -> DispatchRow:
        return _wait_for(
            f"dispatch {row_id} to finish",
            lambda: (r := self.row(row_id)).done and r,
            timeout,
        )

    def delete_queue(self) -> None:
        app = celery_app(require_config(self.config_path))
        try:
            with app.connection_for_write() as conn:
                conn.default_channel.queue_delete(self.queue)
        except Exception:  # a leftover queue of a test is harmless
            pass
        finally:
            app.close()


@pytest.fixture
def fleet_factory(
    tmp_path: Path, shopify_double: ShopifyDouble, pg_url: str, queue_name: str
) -> Iterator[Callable[..., Fleet]]:
    made: list[Fleet] = []

    def make(broker: str, **worker_options: Any) -> Fleet:
        fleet = Fleet(tmp_path, shopify_double, pg_url, broker, queue_name, **worker_options)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.stop()
        fleet.delete_queue()


def _links(state_url: str) -> dict[str, str]:
    store = open_store(state_url)
    try:
        return {link.erp_no: link.shopify_id for link in store.links("main")}
    finally:
        store.close()


def _runs(state_url: str) -> list[Any]:
    store = open_store(state_url)
    try:
        return store.runs(shop="main", limit=50)
    finally:
        store.close()


# --------------------------------------------------------------------------------------------
# A job through the queue, on both brokers
# --------------------------------------------------------------------------------------------


def test_sync_executor_celery_runs_the_job_on_a_worker_like_sync(
    fleet_factory: Callable[..., Fleet], broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_factory(broker_url)
    fleet.customers(5)
    worker = fleet.start_worker()

    code = main(
        [
            "sync",
            "-c",
            str(fleet.config_path),
            "--executor",
            "celery",
            "--shop",
            "main",
            "--direction",
            "export",
            "--wait",
            "--wait-timeout",
            "90",
        ]
    )

    out = capsys.readouterr().out
    assert code == exitcodes.OK, out
    assert "queued shop=main direction=export" in out
    assert "status=succeeded" in out
    emails = sorted(c["email"] for c in fleet.double.store.customers())
    assert emails == [f"p{i}@example.com" for i in range(1, 6)]
    assert len(_links(fleet.state_url)) == 5
    [run] = _runs(fleet.state_url)
    assert (run.direction, run.status, run.counts.get("created")) == ("export", "succeeded", 5)
    [row] = fleet.rows()
    # the holder is the worker process: host:pid:random, the pid a child of the worker
    host, pid, _ = str(row.holder).split(":")
    assert host == socket.gethostname()
    assert int(pid) != worker.pid and row.deliveries == 1
    # status: the queue is empty and the worker consumes it; runs shows the worker's run
    assert main(["status", "-c", str(fleet.config_path), "-o", "json"]) == exitcodes.OK
    status = json.loads(capsys.readouterr().out)
    consumers = None if broker_url.startswith("redis") else 1  # Redis does not know them
    assert status["queues"] == {fleet.queue: {"messages": 0, "consumers": consumers}}
    # runs: the worker process ran it (the holder column, in text and JSON)
    assert run.holder == row.holder
    assert main(["runs", "-c", str(fleet.config_path), "-o", "json"]) == exitcodes.OK
    [shown] = json.loads(capsys.readouterr().out)["runs"]
    assert (shown["status"], shown["holder"]) == ("succeeded", row.holder)
    assert main(["runs", "-c", str(fleet.config_path)]) == exitcodes.OK
    header, line = capsys.readouterr().out.splitlines()
    assert header.split()[7] == "HOLDER" and line.split()[7] == row.holder


# --------------------------------------------------------------------------------------------
# Dispatch: one send per slot, durable queue, persistent messages
# --------------------------------------------------------------------------------------------


def test_two_dispatchers_send_a_due_slot_once_and_the_message_is_durable(
    fleet_factory: Callable[..., Fleet], rabbitmq_url: str
) -> None:
    fleet = fleet_factory(rabbitmq_url)
    fleet.customers(1)
    monthly = yaml.safe_load(fleet.config_path.read_text(encoding="utf-8"))
    monthly["shops"][0]["schedule"]["export"] = "0 0 1 * *"  # no new slot during the test
    fleet.config_path.write_text(yaml.safe_dump(monthly, sort_keys=False), encoding="utf-8")
    # a run long ago: the job is due now (one catch-up slot), for both dispatchers at once
    store = open_store(fleet.state_url)
    store.finish_run(
        store.start_run("main", "export", datetime(2026, 1, 1, tzinfo=UTC)), "succeeded", {}
    )
    store.close()
    command = [CUSTSYNC, "schedule", "-c", str(fleet.config_path), "--executor", "celery", "--once"]
    dispatchers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in dispatchers]
    assert [p.returncode for p in dispatchers] == [0, 0], outputs
    joined = "\n".join(outputs)
    assert joined.count(" sent queue=") == 1, joined
    assert "was sent by another dispatcher" in joined or joined.count("nothing due") == 1, joined
    [row] = fleet.rows()
    assert row.status == "sent" and row.slot == datetime(2026, 2, 1, tzinfo=UTC)

    # the queue is durable and the message persistent: a broker restart keeps both
    config = require_config(fleet.config_path)
    app = celery_app(config)
    assert queue_depths(app, [fleet.queue])[fleet.queue]["messages"] == 1
    with app.connection_for_write() as conn:
        channel = conn.channel()
        message = channel.basic_get(fleet.queue, no_ack=False)
        assert message.delivery_info["routing_key"] == fleet.queue
        assert message.properties["delivery_mode"] == 2  # persistent
        channel.basic_reject(message.delivery_tag, requeue=True)
        channel.close()
        probe = conn.channel()
        with pytest.raises(Exception, match="durable"):  # declared durable: a non-durable
            probe.queue_declare(fleet.queue, durable=False)  # re-declaration is refused
    assert queue_depths(app, [fleet.queue])[fleet.queue]["messages"] == 1

    # a second --once finds nothing due: the slot is not sent again
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and " sent " not in again.stdout, again.stdout


def test_a_broker_restart_loses_no_due_job(
    private_rabbitmq: PrivateRabbit, fleet_factory: Callable[..., Fleet]
) -> None:
    fleet = fleet_factory(private_rabbitmq.url)
    fleet.customers(3)
    document = yaml.safe_load(fleet.config_path.read_text(encoding="utf-8"))
    document["shops"][0]["schedule"]["export"] = "0 0 1 * *"  # no new slot during the test
    fleet.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    store = open_store(fleet.state_url)  # a run long ago: a slot is due now
    store.finish_run(
        store.start_run("main", "export", datetime(2026, 1, 1, tzinfo=UTC)), "succeeded", {}
    )
    store.close()
    command = [CUSTSYNC, "schedule", "-c", str(fleet.config_path), "--executor", "celery", "--once"]
    sent = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert sent.returncode == 0 and " sent queue=" in sent.stdout, sent.stdout + sent.stderr
    [row] = fleet.rows()
    assert row.status == "sent"

    private_rabbitmq.stop()  # the broker goes down with the job in its queue, nobody consuming
    private_rabbitmq.start()

    app = celery_app(require_config(fleet.config_path))
    try:  # the queue (durable) and the job (persistent, confirmed) came back with it
        assert queue_depths(app, [fleet.queue])[fleet.queue] == {"messages": 1, "consumers": 0}
    finally:
        app.close()
    fleet.start_worker()
    done = fleet.wait_done(row.id)
    assert done.status == "succeeded" and done.deliveries == 1
    assert sorted(c["email"] for c in fleet.double.store.customers()) == [
        f"p{i}@example.com" for i in range(1, 4)
    ]
    assert [r.status for r in _runs(fleet.state_url)] == ["succeeded", "succeeded"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and " sent " not in again.stdout, again.stdout  # sent once


# --------------------------------------------------------------------------------------------
# Guarantees
# --------------------------------------------------------------------------------------------


def test_a_task_for_a_shop_whose_lease_is_held_is_deferred_then_run(
    fleet_factory: Callable[..., Fleet], rabbitmq_url: str
) -> None:
    fleet = fleet_factory(rabbitmq_url)
    fleet.customers(2)
    store = open_store(fleet.state_url)
    try:
        assert store.acquire_lease("shop:main", "other-host:1:abcd", 120)
        fleet.start_worker()
        row_id = fleet.dispatch()
        _wait_for("the task to be deferred", lambda: fleet.row(row_id).status == "deferred")
        time.sleep(1.5)  # tried again (every 0.5 s) and still deferred, never dropped
        row = fleet.row(row_id)
        assert row.status == "deferred" and "other-host:1:abcd" in str(row.error)
        assert fleet.double.store.count() == 0 and _runs(fleet.state_url) == []
        store.release_lease("shop:main", "other-host:1:abcd")
    finally:
        store.close()
    row = fleet.wait_done(row_id)
    assert row.status == "succeeded"
    assert fleet.double.store.count() == 2 and len(_links(fleet.state_url)) == 2


def test_a_job_delivered_twice_runs_once_and_status_shows_the_worker_as_holder(
    fleet_factory: Callable[..., Fleet], rabbitmq_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_factory(rabbitmq_url)
    fleet.customers(8)
    fleet.double.inject(Fault("delay", times=10_000, seconds=0.3, operation="customerCreate"))
    fleet.start_worker(concurrency=2)
    row_id = fleet.dispatch()
    # the same job once more, as a broker redelivering it while it runs would
    config = require_config(fleet.config_path)
    app = celery_app(config)
    try:
        send_job(app, fleet.row(row_id), config_fingerprint(config))
    finally:
        app.close()
    holder = _wait_for("the run to start", lambda: fleet.row(row_id).holder)
    _wait_for(
        "the run in the run log",
        lambda: [r for r in _runs(fleet.state_url) if r.status == "running"],
    )
    assert main(["status", "-c", str(fleet.config_path), "-o", "json"]) == exitcodes.OK
    [job] = json.loads(capsys.readouterr().out)["jobs"]
    assert job["lease_holder"] == holder and job["running"]["holder"] == holder
    assert main(["status", "-c", str(fleet.config_path)]) == exitcodes.OK
    assert holder in capsys.readouterr().out  # the LEASE column
    _wait_for(
        "the second delivery to be deferred",
        lambda: fleet.row(row_id).status == "deferred" or fleet.row(row_id).done,
    )

    row = fleet.wait_done(row_id)

    time.sleep(1.5)  # the deferred copy comes back, finds the slot done and does nothing
    assert fleet.row(row_id).status == "succeeded" and row.deliveries == 1
    [run] = _runs(fleet.state_url)  # one run, never two at once
    assert run.status == "succeeded" and run.counts.get("created") == 8
    assert run.holder == holder
    assert fleet.double.store.count() == 8
    fleet.stop()
    log = "".join(fleet.output)
    assert "deferred shop=main" in log and "is being synced by " + holder in log, log[-3000:]
    assert "already succeeded" in log, log[-3000:]


def test_a_worker_killed_mid_run_leaves_a_run_another_worker_completes(
    fleet_factory: Callable[..., Fleet], rabbitmq_url: str
) -> None:
    fleet = fleet_factory(rabbitmq_url)
    n = 24
    fleet.customers(n)
    # slow creates: the run lasts long enough to be killed in the middle
    fleet.double.inject(Fault("delay", times=10_000, seconds=0.15, operation="customerCreate"))
    first = fleet.start_worker()
    row_id = fleet.dispatch()
    _wait_for("the first worker to be half-way", lambda: fleet.double.store.count() >= 5, 60)
    holder = fleet.row(row_id).holder
    assert holder is not None
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its child, mid-run, no warning
    first.communicate(timeout=30)
    created_before = fleet.double.store.count()
    assert created_before < n
    fleet.start_worker()  # another worker: the broker gives the unacknowledged task to it

    row = fleet.wait_done(row_id, timeout=120)

    assert row.status == "succeeded" and row.deliveries == 2 and row.holder != holder
    emails = [c["email"] for c in fleet.double.store.customers()]
    assert len(emails) == n and len(set(emails)) == n  # no duplicate customer
    links = _links(fleet.state_url)
    assert sorted(links) == [f"C{i:05d}" for i in range(1, n + 1)]  # no lost link
    assert len(set(links.values())) == n
    runs = {r.status: r.holder for r in _runs(fleet.state_url)}
    assert runs == {"abandoned": holder, "succeeded": row.holder}  # each by its worker


def test_redis_redelivers_the_task_of_a_killed_worker_after_the_visibility_timeout(
    fleet_factory: Callable[..., Fleet], redis_url: str, queue_name: str
) -> None:
    # a key prefix of its own: the unacknowledged-task keys are per database, and a worker
    # restores every task older than its visibility timeout there, other users' too
    prefix = f"{queue_name}:"
    visibility = 6.0
    fleet = fleet_factory(
        redis_url, visibility_timeout_seconds=visibility, redis_key_prefix=prefix
    )
    n = 24
    fleet.customers(n)
    fleet.double.inject(Fault("delay", times=10_000, seconds=0.15, operation="customerCreate"))
    client = redis.Redis.from_url(redis_url)
    try:
        first = fleet.start_worker()
        row_id = fleet.dispatch()
        _wait_for("the first worker to be half-way", lambda: fleet.double.store.count() >= 5, 60)
        holder = fleet.row(row_id).holder
        assert holder is not None
        os.killpg(first.pid, signal.SIGKILL)  # mid-run: the task is never acknowledged
        first.communicate(timeout=30)
        killed_at = time.monotonic()
        # the task waits, unacknowledged, under the prefix: not back in the queue yet
        assert client.hlen(f"{prefix}unacked") == 1
        assert client.llen(f"{prefix}{fleet.queue}") == 0
        fleet.start_worker()  # already running when the visibility timeout expires

        row = fleet.wait_done(row_id, timeout=120)

        assert row.status == "succeeded" and row.deliveries == 2 and row.holder != holder
        runs = {r.status: r for r in _runs(fleet.state_url)}
        assert set(runs) == {"abandoned", "succeeded"}
        assert runs["abandoned"].holder == holder and runs["succeeded"].holder == row.holder
        # given back when the visibility timeout (from the workers: section) had passed
        # since the first delivery, not at once, and soon after (workers look every 1-60 s)
        redelivered_after = (
            runs["succeeded"].started_at - runs["abandoned"].started_at
        ).total_seconds()
        assert visibility - 1.0 <= redelivered_after <= visibility + 20, redelivered_after
        assert time.monotonic() - killed_at < visibility + 60
        emails = [c["email"] for c in fleet.double.store.customers()]
        assert len(emails) == n and len(set(emails)) == n  # no duplicate customer
        links = _links(fleet.state_url)
        assert sorted(links) == [f"C{i:05d}" for i in range(1, n + 1)]  # no lost link
        assert len(set(links.values())) == n
        assert client.hlen(f"{prefix}unacked") == 0  # acknowledged at last
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def test_a_worker_with_other_rules_or_shops_refuses_the_task(
    fleet_factory: Callable[..., Fleet], rabbitmq_url: str, tmp_path: Path
) -> None:
    fleet = fleet_factory(rabbitmq_url)
    fleet.customers(1)
    other = tmp_path / "other"
    other.mkdir()
    rules = other / "rules"
    rules.mkdir()
    (rules / "local.yaml").write_text(
        "decision: import_match\ndisable: [match-by-phone-digits]\nrules: []\n", encoding="utf-8"
    )
    different = fleet.write_config(other, rules=[str(rules)])
    check = subprocess.run(
        [CUSTSYNC, "validate", "-c", str(different)], capture_output=True, text=True
    )
    if check.returncode != 0:  # the rule above must be valid for this test to mean anything
        pytest.fail(check.stdout + check.stderr)
    fleet.start_worker(config=different)
    row_id = fleet.dispatch()
    row = fleet.wait_done(row_id)
    assert row.status == "refused"
    assert "differs from the dispatcher's" in str(row.error)
    assert fleet.double.store.count() == 0 and _runs(fleet.state_url) == []
    fleet.stop()

    # a worker whose config lacks the shop says so
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    lacking = fleet.write_config(renamed)
    document = yaml.safe_load(lacking.read_text(encoding="utf-8"))
    document["shops"][0]["name"] = "outlet"
    lacking.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    fleet.start_worker(config=lacking)
    row = fleet.wait_done(fleet.dispatch())
    assert row.status == "refused"
    assert "has no shop named 'main'" in str(row.error)
    assert fleet.double.store.count() == 0 and _runs(fleet.state_url) == []


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_an_unreachable_broker_is_a_clear_error_with_the_password_masked(
    tmp_path: Path,
    shopify_double: ShopifyDouble,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    fleet = Fleet(tmp_path, shopify_double, pg_url, f"amqp://custsync@127.0.0.1:{port}/fleet", "q")
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pw")
    for argv in (
        ["sync", "--executor", "celery", "--shop", "main"],
        ["schedule", "--executor", "celery", "--once"],
        ["worker"],
    ):
        code = main([*argv, "-c", str(fleet.config_path)])
        err = capsys.readouterr().err
        assert code == exitcodes.ERROR, err
        assert f"amqp://custsync:***@127.0.0.1:{port}/fleet" in err, err
        assert "s3cret-pw" not in err


def test_sqlite_state_is_refused_for_celery(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = Fleet(
        tmp_path, shopify_double, f"sqlite:///{tmp_path / 'state.db'}", "redis://127.0.0.1:9/0", "q"
    )
    for argv in (
        ["worker"],
        ["schedule", "--executor", "celery"],
        ["sync", "--executor", "celery", "--shop", "main"],
    ):
        assert main([*argv, "-c", str(fleet.config_path)]) == exitcodes.ERROR
        err = capsys.readouterr().err
        assert "SQLite file" in err and "use PostgreSQL" in err, err
