"""The SQL state store on real SQLite files and PostgreSQL: links, cursors, run log, intents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from custsync.engine.errors import FatalError
from custsync.engine.model import Link
from custsync.engine.ports import StateStore
from custsync.engine.run.state import LinkConflictError, Outcome, SqlStateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStateStore]:
    with SqlStateStore.open(db_url) as opened:
        yield opened


def test_implements_the_port(store: SqlStateStore) -> None:
    assert isinstance(store, StateStore)


def test_schema_is_created_once_and_reopens(db_url: str) -> None:
    with SqlStateStore.open(db_url) as first:
        first.advance_cursor("main", "import", T0)
    with SqlStateStore.open(db_url) as second:
        assert second.cursor("main", "import") == T0


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    SqlStateStore.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE state_schema SET version = 99")
    engine.dispose()
    with pytest.raises(FatalError, match="schema version 99"):
        SqlStateStore.open(url)


# ---- links -----------------------------------------------------------------------------------


def test_link_round_trip_with_addresses_and_times(store: SqlStateStore) -> None:
    link = Link(
        "main",
        "gid://shopify/Customer/1",
        "C00001",
        address_ids=("gid://shopify/MailingAddress/11",),
        last_import_at=T0,
        own_write_shopify_updated_at=T0 + timedelta(seconds=5),
    )
    store.save_link(link)
    assert store.link_for_shopify("main", "gid://shopify/Customer/1") == link
    assert store.link_for_erp("main", "C00001") == link
    assert list(store.links("main")) == [link]
    assert list(store.links("other")) == []
    assert store.link_for_address("main", "gid://shopify/MailingAddress/11") == "C00001"


def test_saving_a_bare_link_keeps_stored_times(store: SqlStateStore) -> None:
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00001", last_export_at=T0))
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00001"))
    found = store.link_for_shopify("main", "gid://shopify/Customer/1")
    assert found is not None and found.last_export_at == T0


def test_relinking_to_another_erp_customer_resets_times(store: SqlStateStore) -> None:
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00001", last_export_at=T0))
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00002"), replaces="C00001")
    found = store.link_for_shopify("main", "gid://shopify/Customer/1")
    assert found is not None and found.erp_no == "C00002" and found.last_export_at is None
    assert store.link_for_erp("main", "C00001") is None


def test_a_shopify_customer_linked_elsewhere_is_not_taken_over(store: SqlStateStore) -> None:
    """Saving a second ERP customer's link for the same Shopify customer used to move the
    link silently: the first ERP customer lost its link and nothing said so."""
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00010", last_import_at=T0))
    for replaces in (None, "C00999"):  # not naming the ERP customer it is linked to
        with pytest.raises(LinkConflictError, match="already linked to ERP customer C00010"):
            store.save_link(Link("main", "gid://shopify/Customer/1", "C00120"), replaces=replaces)
    found = store.link_for_shopify("main", "gid://shopify/Customer/1")
    assert found is not None and (found.erp_no, found.last_import_at) == ("C00010", T0)
    assert store.link_for_erp("main", "C00120") is None
    run_id = store.start_run("main", "export", T0)
    intent = store.begin_intent(run_id, "C00120", "shopify.create", "main:C00120")
    with pytest.raises(LinkConflictError) as exc:
        store.complete_intent(intent, "x", Link("main", "gid://shopify/Customer/1", "C00120"))
    assert exc.value.reason_code == "shopify-customer-linked-elsewhere"
    assert [i.id for i in store.pending_intents()] == [intent]
    assert store.link_for_shopify("main", "gid://shopify/Customer/1") == found


def test_erp_customer_linked_to_two_shopify_customers_is_refused(store: SqlStateStore) -> None:
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00001"))
    with pytest.raises(LinkConflictError, match="already linked") as exc:
        store.save_link(Link("main", "gid://shopify/Customer/2", "C00001"))
    assert exc.value.reason_code == "erp-customer-linked-elsewhere"
    # another shop may link the same ERP customer
    store.save_link(Link("outlet", "gid://shopify/Customer/2", "C00001"))
    assert store.link_for_erp("outlet", "C00001") is not None


def test_drop_link_removes_its_address_links(store: SqlStateStore) -> None:
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00001", address_ids=("gid://a/1",)))
    store.save_address_link("main", "gid://a/2", "C00009", "gid://shopify/Customer/1")
    assert store.address_links("main") == {"gid://a/1": "C00001", "gid://a/2": "C00009"}
    store.drop_link("main", "gid://shopify/Customer/1")
    assert store.link_for_shopify("main", "gid://shopify/Customer/1") is None
    assert store.address_links("main") == {}


# ---- cursors ---------------------------------------------------------------------------------


def test_cursor_never_moves_backwards(store: SqlStateStore) -> None:
    assert store.cursor("main", "import") is None
    store.advance_cursor("main", "import", T0)
    store.advance_cursor("main", "import", T0 - timedelta(hours=1))
    assert store.cursor("main", "import") == T0
    store.advance_cursor("main", "import", T0 + timedelta(microseconds=1))
    assert store.cursor("main", "import") == T0 + timedelta(microseconds=1)
    assert store.cursor("main", "export") is None
    store.reset_cursor("main", "import")
    assert store.cursor("main", "import") is None


def test_naive_times_are_a_programming_error(store: SqlStateStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.advance_cursor("main", "import", datetime(2026, 1, 1))


# ---- run log ---------------------------------------------------------------------------------


def test_run_log_records_runs_and_outcomes(store: SqlStateStore) -> None:
    run_id = store.start_run("main", "import", T0)
    store.record_outcome(run_id, "gid://shopify/Customer/1", "create", "ok", rules=["r1", "r2"])
    store.record_outcome(run_id, "gid://shopify/Customer/2", "update", "failed", "etag-changed")
    store.record_outcomes([Outcome(run_id, "gid://shopify/Customer/3", "skip", "skipped", "no")])
    store.finish_run(run_id, "failed", {"created": 1, "failed": 1}, "1 record failed")

    (run,) = store.runs("main")
    assert (run.id, run.status, run.counts, run.error) == (
        run_id,
        "failed",
        {"created": 1, "failed": 1},
        "1 record failed",
    )
    assert run.started_at == T0 and run.finished_at is not None
    assert [o.record for o in store.outcomes(run_id)] == [
        "gid://shopify/Customer/1",
        "gid://shopify/Customer/2",
        "gid://shopify/Customer/3",
    ]
    assert store.outcomes(run_id)[0].rules == ("r1", "r2")
    (failure,) = store.failures(run_id)
    assert (failure.record, failure.reason) == ("gid://shopify/Customer/2", "etag-changed")
    assert store.run(run_id) == run
    assert store.run(run_id + 100) is None


def test_runs_are_newest_first_and_filtered(store: SqlStateStore) -> None:
    ids = [store.start_run("main", "import", T0 + timedelta(minutes=i)) for i in range(3)]
    store.start_run("outlet", "export", T0)
    assert [r.id for r in store.runs("main")] == ids[::-1]
    assert [r.id for r in store.runs("main", limit=2)] == ids[:0:-1]
    assert len(store.runs()) == 4
    assert [r.shop for r in store.runs(direction="export")] == ["outlet"]
    assert len(store.runs(status="running")) == 4


def test_invalid_statuses_are_refused(store: SqlStateStore) -> None:
    run_id = store.start_run("main", "import", T0)
    with pytest.raises(ValueError, match="status"):
        store.finish_run(run_id, "running", {})
    with pytest.raises(ValueError, match="status"):
        store.record_outcome(run_id, "x", "create", "maybe")


def test_health_counts_consecutive_failures_since_last_success(store: SqlStateStore) -> None:
    def run(minute: int, status: str) -> int:
        run_id = store.start_run("main", "import", T0 + timedelta(minutes=minute))
        if status != "running":
            store.finish_run(run_id, status, {}, "boom" if status == "failed" else "")
        return run_id

    run(0, "failed")
    ok = run(1, "succeeded")
    store.advance_cursor("main", "import", T0 + timedelta(minutes=1))
    run(2, "partial")  # some records failed: the cursor waits, as after a failed run
    last_failed = run(3, "failed")
    running = run(4, "running")
    store.start_run("main", "export", T0)

    health = {(h.shop, h.direction): h for h in store.health()}
    imp = health[("main", "import")]
    assert imp.last_success is not None and imp.last_success.id == ok
    assert imp.last_failure is not None and imp.last_failure.id == last_failed
    assert imp.consecutive_failures == 2
    assert imp.running is not None and imp.running.id == running
    assert imp.cursor == T0 + timedelta(minutes=1)
    exp = health[("main", "export")]
    assert exp.last_success is None and exp.consecutive_failures == 0
    assert store.health("nope") == []


def test_refused_runs_are_neither_failures_nor_successes(store: SqlStateStore) -> None:
    def run(minute: int, status: str, error: str = "") -> int:
        run_id = store.start_run("main", "export", T0 + timedelta(minutes=minute))
        store.finish_run(run_id, status, {}, error)
        return run_id

    ok = run(0, "succeeded")
    failed = run(1, "failed", "HTTP 503")
    refused = run(2, "refused", "the plan is stale: its records changed since it was made")
    run(3, "abandoned", "SIGTERM")
    run(4, "refused", "the plan is stale: ...")

    (health,) = store.health("main")
    assert health.last_success is not None and health.last_success.id == ok
    assert health.consecutive_failures == 2  # failed + abandoned: the refusals do not count
    assert health.last_failure is not None and health.last_failure.status == "abandoned"
    assert failed in {r.id for r in store.runs("main", status="failed")}
    (first_refusal, _) = sorted(store.runs("main", status="refused"), key=lambda r: r.id)
    assert (first_refusal.id, first_refusal.error) == (
        refused,
        "the plan is stale: its records changed since it was made",
    )
    assert first_refusal.finished_at is not None


def test_abandon_running_marks_only_running_runs(store: SqlStateStore) -> None:
    done = store.start_run("main", "import", T0)
    store.finish_run(done, "succeeded", {})
    stuck = store.start_run("main", "import", T0 + timedelta(minutes=1))
    other = store.start_run("outlet", "import", T0)
    assert store.abandon_running("main") == [stuck]
    assert store.run(stuck) is not None and store.run(stuck).status == "abandoned"  # type: ignore[union-attr]
    assert store.run(other).status == "running"  # type: ignore[union-attr]
    assert store.health("main")[0].consecutive_failures == 1


# ---- intents ---------------------------------------------------------------------------------


def test_intent_journal_resumes_half_applied_records(store: SqlStateStore) -> None:
    crashed = store.start_run("main", "import", T0)
    first = store.begin_intent(crashed, "gid://shopify/Customer/1", "create", "gid-1")
    second = store.begin_intent(crashed, "gid://shopify/Customer/2", "create", "gid-2")
    store.complete_intent(
        first, target="C00001", link=Link("main", "gid://shopify/Customer/1", "C00001")
    )
    # the process dies here: the second intent stays pending
    store.abandon_running("main")

    (pending,) = store.pending_intents("main", "import")
    assert (pending.id, pending.record, pending.idempotency_key, pending.status) == (
        second,
        "gid://shopify/Customer/2",
        "gid-2",
        "pending",
    )
    assert store.pending_intents("outlet") == []
    assert store.link_for_erp("main", "C00001") is not None

    store.complete_intent(second, target="C00002")
    assert store.pending_intents() == []
    found = store.intent_for_key("gid-2")
    assert found is not None and (found.status, found.target) == ("done", "C00002")

    resumed = store.start_run("main", "import", T0 + timedelta(hours=1))
    failed = store.begin_intent(resumed, "gid://shopify/Customer/3", "create", "gid-3")
    store.fail_intent(failed, "unknown template")
    found = store.intent_for_key("gid-3")
    assert found is not None and (found.status, found.error) == ("failed", "unknown template")
    assert store.intent_for_key("nope") is None


def test_complete_intent_with_conflicting_link_changes_nothing(store: SqlStateStore) -> None:
    run_id = store.start_run("main", "import", T0)
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00001"))
    intent = store.begin_intent(run_id, "gid://shopify/Customer/2", "create", "k")
    with pytest.raises(LinkConflictError):
        store.complete_intent(intent, "C00001", Link("main", "gid://shopify/Customer/2", "C00001"))
    assert [i.id for i in store.pending_intents()] == [intent]


def test_a_read_only_sqlite_file_says_what_sqlite_needs(tmp_path: Path) -> None:
    """`custsync runs` as a user who may only read the state file said "attempt to write a
    readonly database" (SQLite creates -wal/-shm files next to it even to read) and nothing
    about what to change. Reproduced with SQLite's own read-only open (tests run as root)."""
    from custsync.engine.run.state import database_errors

    path = tmp_path / "state.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with (
        pytest.raises(FatalError) as raised,
        database_errors("reading runs", engine.url),
        engine.begin() as connection,
    ):
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    assert raised.value.render() == (
        f"reading runs: database sqlite:///{path}: attempt to write a readonly database "
        f"(SQLite keeps state.db-wal and state.db-shm next to the file, also to read it: this "
        f"user needs write access to {path} and its folder {tmp_path}, or run the command as "
        "the user that syncs)"
    )


def _open_and_read(url: str) -> str:
    try:
        for _ in range(5):
            store = SqlStateStore.open(url)
            try:
                store.runs(shop="main")
            finally:
                store.close()
        return "ok"
    except Exception as exc:  # reported to the parent, which asserts on it
        return f"{type(exc).__name__}: {exc}"


def test_processes_opening_a_new_state_database_at_once_queue_instead_of_failing(
    tmp_path: Path,
) -> None:
    """A scheduler starting while `custsync runs` opens the same new file: creating the tables
    in a deferred transaction failed with 'database is locked' (the read could not become a
    write); one write transaction from the start makes the others wait."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'state{trial}.db'}"
        with context.Pool(6) as pool:
            results = pool.map(_open_and_read, [url] * 6)
        assert results == ["ok"] * 6
