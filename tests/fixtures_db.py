"""Pytest fixtures for SQL databases: SQLite files and the PostgreSQL server.

* ``sqlite_url`` -- ``sqlite:///<tmp_path>/test.db`` (a real file, fresh per test).
* ``pg_url`` -- a fresh schema in the ``test`` database of the server on 127.0.0.1:5432
  (trust auth; user ``postgres``, else ``root``), selected through ``search_path`` in the URL,
  dropped after the test. No server: the test is skipped, except under ``CI=true`` where it
  fails. Mark such tests ``@pytest.mark.postgres``.
* ``db_url`` -- parametrized over ``sqlite`` and ``postgres``: the test runs on both.
* ``make_sqlite_url(tmp_path, name)`` -- a helper for tests that need several databases.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_HOST = os.environ.get("CUSTSYNC_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CUSTSYNC_TEST_PG_PORT", "5432"))
PG_DATABASE = os.environ.get("CUSTSYNC_TEST_PG_DATABASE", "test")
PG_USERS = ("postgres", "root")

_server: dict[str, str] = {}  # cached across tests: {"user": ...} or {"error": ...}


def make_sqlite_url(tmp_path: Path, name: str = "test.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def _find_server() -> dict[str, str]:
    if _server:
        return _server
    import psycopg

    errors = []
    for user in PG_USERS:
        try:
            with psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname=PG_DATABASE, connect_timeout=3
            ):
                _server["user"] = user
                return _server
        except psycopg.Error as exc:
            errors.append(f"{user}: {str(exc).strip().splitlines()[0] if str(exc) else exc}")
    _server["error"] = "; ".join(errors)
    return _server


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL not reachable on {PG_HOST}:{PG_PORT}: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return make_sqlite_url(tmp_path)


@pytest.fixture
def pg_url() -> Iterator[str]:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        _unavailable(f"psycopg is not installed ({exc})")
        raise
    server = _find_server()
    if "user" not in server:
        _unavailable(server.get("error", "no answer"))
    user = server["user"]
    schema = f"test_{secrets.token_hex(6)}"
    conninfo = {"host": PG_HOST, "port": PG_PORT, "user": user, "dbname": PG_DATABASE}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (
            f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}"
            f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            # do not hang on a session the test left open inside the schema
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return make_sqlite_url(tmp_path)
    return str(request.getfixturevalue("pg_url"))
