"""A state database written by an older custsync (schema version 1) is brought up to date
when it is opened: the columns added since are added, its rows read unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from custsync.engine.model import Link
from custsync.engine.run.state import SCHEMA_VERSION, SqlStateStore, make_engine, open_store


def test_a_version_1_state_database_gets_the_new_columns(db_url: str) -> None:
    store = open_store(db_url)
    store.save_link(Link("main", "gid://shopify/Customer/1", "C00001"))
    first = store.start_run("main", "export", datetime(2026, 1, 1, tzinfo=UTC))
    store.finish_run(first, "succeeded", {})
    store.close()
    engine = make_engine(db_url)
    with engine.begin() as conn:  # as version 1 left it
        conn.exec_driver_sql("ALTER TABLE state_link DROP COLUMN own_write_erp_etag")
        conn.exec_driver_sql("ALTER TABLE state_lease DROP COLUMN generation")
        conn.exec_driver_sql("ALTER TABLE state_run DROP COLUMN holder")
        conn.exec_driver_sql("UPDATE state_schema SET version = 1")
    engine.dispose()
    # read-only (runs, status) before anything upgraded it: the run log reads, no holder
    reader = SqlStateStore(make_engine(db_url, read_only=True, must_exist=True))
    try:
        [before] = reader.runs()
        assert (before.status, before.holder) == ("succeeded", "")
        assert reader.run(before.id) == before
        assert [h.last_success for h in reader.health()] == [before]
    finally:
        reader.close()

    store = open_store(db_url)
    try:
        [old] = list(store.links("main"))
        assert old.erp_no == "C00001" and old.own_write_erp_etag is None
        store.save_link(Link("main", "gid://shopify/Customer/1", "C00001", own_write_erp_etag="7"))
        assert store.link_for_erp("main", "C00001").own_write_erp_etag == "7"  # type: ignore[union-attr]
        assert store.acquire_lease("shop:main", "me", 30)
        assert store.lease("shop:main").generation == 1  # type: ignore[union-attr]
        new = store.start_run("main", "export", datetime(2026, 1, 2, tzinfo=UTC), "host:1:ab")
        assert [r.holder for r in store.runs()] == ["host:1:ab", ""]
        assert store.run(new).holder == "host:1:ab"  # type: ignore[union-attr]
    finally:
        store.close()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version FROM state_schema")).scalar() == SCHEMA_VERSION
    engine.dispose()
    open_store(db_url).close()  # opening it again changes nothing
