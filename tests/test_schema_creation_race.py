"""Several processes creating custsync's tables at the same moment on an empty PostgreSQL
database: each must succeed (issue 10 item 4: concurrent CREATE TABLE failed 5 of 5 rounds
with `duplicate key value violates unique constraint "pg_type_typname_nsp_index"`)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

PROCESSES = 6

#: each child waits for the same start instant, then creates the schema
_CHILD = """
import sys, time
start, kind, url = float(sys.argv[1]), sys.argv[2], sys.argv[3]
if kind == "state":
    from custsync.engine.run.state import open_store
    opened = open_store(url)
else:
    from custsync.connectors.erp_sql import open_writer
    opened = open_writer(url, create=True)
time.sleep(max(0.0, start - time.time()))
if kind == "state":
    opened.create_all()
else:
    opened.initialize()
opened.close()
"""

_CHILD_STATE_OPEN = _CHILD.replace("opened = open_store(url)", "opened = None").replace(
    "    opened.create_all()", "    opened = open_store(url)"
)


def _race(kind: str, url: str, script: str) -> list[str]:
    start = time.time() + 3.0  # all children are started and imported by then
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(start), kind, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    return [
        f"exit {child.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}"
        for child in children
        for _, err in [child.communicate(timeout=120)]
        if child.returncode != 0
    ]


@pytest.mark.postgres
def test_state_stores_opened_at_once_on_an_empty_database_all_start(pg_url: str) -> None:
    assert _race("state", pg_url, _CHILD_STATE_OPEN) == []
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM state_schema")).scalar() == 1
    engine.dispose()


@pytest.mark.postgres
def test_erp_databases_initialised_at_once_all_succeed(pg_url: str) -> None:
    assert _race("erp", pg_url, _CHILD) == []
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM erp_country")).scalar() > 0
    engine.dispose()
