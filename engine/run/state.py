"""The state store: links, cursors, own-write times, run log, leases and an intent journal.

One SQL database through SQLAlchemy Core: a SQLite file by default
(``sqlite:///custsync-state.db``), PostgreSQL by URL (``postgresql+psycopg://...``). Every
write is one transaction; the schema is created on open and carries a version
(``state_schema``). Tables (all prefixed ``state_`` so the state may share a database with the
ERP tables):

=====================  ========================================================================
``state_link``         Shopify customer <-> ERP customer per shop, unique both ways per shop,
                       with ``last_import_at``, ``last_export_at`` and
                       ``own_write_shopify_updated_at`` (Shopify ``updated_at`` right after our
                       own last write, so our exports do not come back as imports)
``state_address_link`` Shopify MailingAddress gid -> ERP customer no. per shop (bill-to links)
``state_cursor``       per shop and direction: the *start* time of the last successful run
``state_run``          one row per run: shop, direction, started/finished, status, counts, error
                       (status ``refused``: a saved plan was refused before anything was
                       applied; neither a success nor a failure)
``state_outcome``      one row per record of a run: key, action, status, reason, rule ids
``state_lease``        named leases for the scheduler (one holder, expiry)
``state_intent``       the crash-safe apply journal (see :meth:`SqlStateStore.begin_intent`)
``state_bulk``         create intents sent as one Shopify bulk job: the job's id, and
``state_bulk_item``    which intent is which input line (:meth:`SqlStateStore.begin_intents`)
=====================  ========================================================================

The small SQL helpers at the top (:func:`make_engine`, :class:`UtcDateTime`) are shared with
the SQL ERP connector: SQLite gets a busy timeout, WAL, foreign keys and ``BEGIN IMMEDIATE``
for write transactions (so two processes writing at once queue instead of deadlocking).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError

from ..clock import as_utc
from ..config import DEFAULT_PARK_AFTER
from ..errors import ConfigError, FatalError, RecordRefused, RetriableError
from ..model import Link
from ..ports import RunRecord

__all__ = [
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "Fence",
    "Health",
    "Intent",
    "LeaseLostError",
    "LinkConflictError",
    "Outcome",
    "PendingBulk",
    "SqlStateStore",
    "StateStore",
    "UtcDateTime",
    "database_errors",
    "display_url",
    "lock_schema",
    "make_engine",
    "open_store",
    "write_transaction",
]

#: 2: ``state_link.own_write_erp_etag``, ``state_lease.generation`` (added to a version-1
#: database on open)
SCHEMA_VERSION = 2
#: how long handled webhook ids are remembered against redeliveries
WEBHOOK_KEEP_DAYS = 7.0
DEFAULT_URL = "sqlite:///custsync-state.db"
#: ``refused``: the run applied nothing because its input was refused (a stale saved plan);
#: not a failure (health ignores it) and its cursor did not move. A plain string in the
#: ``status`` column: older databases need no migration.
RUN_STATUSES = ("running", "succeeded", "partial", "failed", "abandoned", "refused")
OUTCOME_STATUSES = ("ok", "failed", "skipped")
INTENT_STATUSES = ("pending", "done", "failed")
_SQLITE_BUSY_SECONDS = 30.0
_ERROR_MAX = 2000

# --------------------------------------------------------------------------------------------
# Shared SQL helpers (also used by custsync.connectors.erp_sql)
# --------------------------------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text (always with microseconds,
    so text order is time order). Reading gives aware UTC datetimes on both.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # e.g. a raw text column read through a function
            value = datetime.fromisoformat(value)
        return as_utc(value)


def display_url(url: str | URL) -> str:
    """The URL without its password, for messages (a SQLite file opened read-only is shown
    by its plain ``sqlite:///`` URL, not by the ``file:...?mode=ro`` form used to open it)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is no number
        return "<invalid database URL>"
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database.startswith("file:")
        and parsed.query.get("uri") == "true"
    ):
        parsed = parsed.set(database=database[len("file:") :], query={})
    return parsed.render_as_string(hide_password=True)


def _parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"invalid database URL {display_url(url)!r} "
            "(examples: sqlite:///erp.db, postgresql+psycopg://user@host/db)"
        ) from None
    except ValueError:  # SQLAlchemy's int() of the port; the URL may hold a password
        raise ConfigError(
            "invalid database URL: its port is not a number "
            "(examples: sqlite:///erp.db, postgresql+psycopg://user@host:5432/db)"
        ) from None


def make_engine(url: str, *, read_only: bool = False, must_exist: bool = False) -> Engine:
    """An Engine for ``url`` with custsync's settings.

    SQLite files: busy timeout, foreign keys, ``BEGIN`` per transaction (``BEGIN IMMEDIATE``
    inside :func:`write_transaction`); ``read_only`` opens the file with ``mode=ro`` (then it
    must exist); ``must_exist`` refuses a missing file instead of creating an empty database.
    Other backends get ``pool_pre_ping``.
    """
    parsed = _parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, read_only=read_only, must_exist=must_exist)
        options: dict[str, Any] = {"pool_pre_ping": True}
        if read_only and parsed.get_backend_name() == "postgresql":
            options["execution_options"] = {"postgresql_readonly": True}
        return sa.create_engine(parsed, **options)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"no database driver for {display_url(parsed)}: {exc} "
            "(PostgreSQL needs the 'postgres' extra: pip install 'custsync[postgres]')"
        ) from None


def _sqlite_engine(parsed: URL, *, read_only: bool, must_exist: bool) -> Engine:
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        path = Path(database)
        # the folder first: "run erp init" would not help while it is missing
        if not path.parent.is_dir():
            raise ConfigError(
                f"database file {database}: its folder {path.parent} is missing "
                "(create the folder, or correct the sqlite:/// URL)"
            )
        if (read_only or must_exist) and not path.is_file():
            raise ConfigError(f"database file {database} does not exist")
        if read_only:
            parsed = parsed.set(
                database=f"file:{path.resolve()}", query={"mode": "ro", "uri": "true"}
            )
    engine = sa.create_engine(parsed, connect_args={"timeout": _SQLITE_BUSY_SECONDS})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions would defer
        # the write lock and deadlock two writers instead of queueing them).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_SECONDS * 1000)}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("custsync_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction: on SQLite ``BEGIN IMMEDIATE`` (the write lock up front)."""
    with engine.connect() as connection:
        connection.execution_options(custsync_begin="IMMEDIATE")
        with connection.begin():
            yield connection


def lock_schema(conn: Connection, name: str) -> None:
    """Serialise creating (and seeding) the tables of ``name`` across processes.

    PostgreSQL's ``CREATE TABLE`` is not safe to run concurrently: several processes opening
    an empty database at once failed with ``duplicate key value violates unique constraint
    "pg_type_typname_nsp_index"``. A transaction-level advisory lock per schema makes them
    queue; each then finds the tables the first one committed (``create_all`` checks first).
    SQLite needs nothing: :func:`write_transaction` already takes the write lock up front."""
    if conn.dialect.name == "postgresql":
        conn.execute(
            sa.text(
                "SELECT pg_advisory_xact_lock(hashtext(:name || coalesce(current_schema(), '')))"
            ),
            {"name": f"custsync {name} schema in "},
        )


def enable_wal(engine: Engine) -> None:
    """SQLite files: write-ahead logging, so readers never block writers (persists in the file)."""
    if engine.dialect.name != "sqlite" or (engine.url.database or ":memory:") == ":memory:":
        return
    try:
        raw = engine.raw_connection()  # outside any transaction, as the pragma requires
        try:
            _set_wal(raw.cursor())
        finally:
            raw.close()
    except engine.dialect.loaded_dbapi.Error as exc:
        # a raw connection's errors are not wrapped by SQLAlchemy (a file that is not a
        # database, a folder that cannot be written): wrap them, so that database_errors()
        # reports them like every other driver error
        raise sa.exc.OperationalError("PRAGMA journal_mode=WAL", None, exc) from exc


def _set_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried while the file is locked: switching the mode
    of a new file fails at once with "database is locked" (SQLite's busy timeout does not
    cover it) when another process is creating it at the same moment."""
    deadline = time.monotonic() + _SQLITE_BUSY_SECONDS
    pause = 0.01
    try:
        while True:
            try:
                cursor.execute("PRAGMA journal_mode")
                if str(cursor.fetchone()[0]).lower() == "wal":
                    return
                cursor.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
    finally:
        cursor.close()


@contextmanager
def database_errors(
    what: str, url: str | URL, *, keep: tuple[type[DBAPIError], ...] = ()
) -> Iterator[None]:
    """Turn driver errors into custsync errors: lost connection / locked -> retriable,
    anything else (missing tables, permissions) -> fatal. Never shows the password.
    Errors of the ``keep`` types (e.g. ``IntegrityError``) pass through for the caller."""
    try:
        yield
    except DBAPIError as exc:
        if isinstance(exc, keep):
            raise
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        where = display_url(url)
        if exc.connection_invalidated or _is_transient(exc):
            raise RetriableError(f"{what}: database {where} unavailable: {detail}") from None
        raise FatalError(
            f"{what}: database {where}: {detail}{_read_only_hint(where, detail)}"
        ) from None


def _read_only_hint(url: str, detail: str) -> str:
    """What to do about SQLite's "attempt to write a readonly database", which also comes
    from commands that only read (``runs``, ``plan``): SQLite writes next to the file."""
    if "readonly database" not in detail:
        return ""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return ""
    path = Path(parsed.database)
    return (
        f" (SQLite keeps {path.name}-wal and {path.name}-shm next to the file, also to read it: "
        f"this user needs write access to {path} and its folder {path.parent}, or run the "
        "command as the user that syncs)"
    )


def _is_transient(exc: DBAPIError) -> bool:
    if isinstance(exc, sa.exc.OperationalError):
        text = str(exc.orig).lower()
        return any(
            word in text
            for word in ("locked", "busy", "connection", "timeout", "timed out", "server closed")
        )
    return False


def _db_now(connection: Connection) -> datetime:
    """The database server's clock (one clock for every process and machine)."""
    name = connection.dialect.name
    if name == "postgresql":
        value = connection.exec_driver_sql("SELECT clock_timestamp()").scalar_one()
        return as_utc(value)
    if name == "sqlite":
        text = connection.exec_driver_sql(
            "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
        ).scalar_one()
        return as_utc(datetime.fromisoformat(text))
    return utcnow()


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return value.astimezone(UTC)


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------

metadata = sa.MetaData()

schema_table = sa.Table(
    "state_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

link_table = sa.Table(
    "state_link",
    metadata,
    sa.Column("shop", sa.String(100), primary_key=True),
    sa.Column("shopify_id", sa.String(255), primary_key=True),
    sa.Column("erp_no", sa.String(50), nullable=False),
    sa.Column("last_import_at", UtcDateTime),
    sa.Column("last_export_at", UtcDateTime),
    sa.Column("own_write_shopify_updated_at", UtcDateTime),
    sa.Column("own_write_erp_etag", sa.String(255)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("shop", "erp_no", name="uq_state_link_erp"),
)

address_link_table = sa.Table(
    "state_address_link",
    metadata,
    sa.Column("shop", sa.String(100), primary_key=True),
    sa.Column("address_id", sa.String(255), primary_key=True),
    sa.Column("shopify_id", sa.String(255), nullable=False, server_default=""),
    sa.Column("erp_no", sa.String(50), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_state_address_link_erp", "shop", "erp_no"),
)

cursor_table = sa.Table(
    "state_cursor",
    metadata,
    sa.Column("shop", sa.String(100), primary_key=True),
    sa.Column("direction", sa.String(20), primary_key=True),
    sa.Column("value", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

run_table = sa.Table(
    "state_run",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(100), nullable=False),
    sa.Column("direction", sa.String(20), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    # who ran it: the lease holder (hostname:pid:random; a Celery worker's process)
    sa.Column("holder", sa.String(200)),
    sa.Index("ix_state_run_shop", "shop", "direction", "started_at"),
)

outcome_table = sa.Table(
    "state_outcome",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("state_run.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("record", sa.String(255), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.Index("ix_state_outcome_run", "run_id", "status"),
)

lease_table = sa.Table(
    "state_lease",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    # the fencing token: +1 each time another holder takes the lease
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
)

intent_table = sa.Table(
    "state_intent",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("state_run.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("record", sa.String(255), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("idempotency_key", sa.String(255), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("target", sa.String(255), nullable=False, server_default=""),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Index("ix_state_intent_status", "status", "run_id"),
    sa.Index("ix_state_intent_key", "idempotency_key"),
)

#: a batch of create intents sent as one Shopify bulk job: the job's id once it runs, and
#: which intent is which input line (see :meth:`SqlStateStore.begin_intents`)
bulk_table = sa.Table(
    "state_bulk",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "run_id", sa.Integer, sa.ForeignKey("state_run.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("operation", sa.String(255), nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    #: what the job writes: "" creates, "customer" updates' own fields (and updatedAt),
    #: "address" updates' addresses
    sa.Column("kind", sa.String(20), nullable=False, server_default=""),
)

bulk_item_table = sa.Table(
    "state_bulk_item",
    metadata,
    sa.Column(
        "bulk_id", sa.Integer, sa.ForeignKey("state_bulk.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column(
        "intent_id",
        sa.Integer,
        sa.ForeignKey("state_intent.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Index("ix_state_bulk_item_intent", "intent_id"),
)


webhook_table = sa.Table(
    "state_webhook",
    metadata,
    sa.Column("webhook_id", sa.String(100), primary_key=True),
    sa.Column("shop", sa.String(100), nullable=False),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Index("ix_state_webhook_received", "received_at"),
)

run_request_table = sa.Table(
    "state_run_request",
    metadata,
    sa.Column("shop", sa.String(100), primary_key=True),
    sa.Column("direction", sa.String(20), primary_key=True),
    sa.Column("first_at", UtcDateTime, nullable=False),
    sa.Column("last_at", UtcDateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False, server_default=""),
)

attention_table = sa.Table(
    "state_attention",
    metadata,
    sa.Column("shop", sa.String(100), primary_key=True),
    sa.Column("direction", sa.String(20), primary_key=True),
    sa.Column("record", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),  # failing | parked
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("permanent", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("source_version", sa.String(100), nullable=False, server_default=""),
    sa.Column("target_version", sa.String(100), nullable=False, server_default=""),
    sa.Column("label", sa.String(300), nullable=False, server_default=""),
    sa.Column("first_failed_at", UtcDateTime, nullable=False),
    sa.Column("last_failed_at", UtcDateTime, nullable=False),
    sa.Column("parked_at", UtcDateTime),
    sa.Column("last_run_id", sa.Integer),
    sa.Column("retry", sa.Boolean, nullable=False, server_default=sa.false()),
)

#: columns added after version 1, added to an older database when it is opened (nullable or
#: with a server default, so rows written before read unchanged)
_ADDED_COLUMNS: tuple[tuple[sa.Table, str], ...] = (
    (link_table, "own_write_erp_etag"),
    (lease_table, "generation"),
    (bulk_table, "kind"),
    (run_table, "holder"),
)


def _add_missing_columns(conn: Connection) -> None:
    """Bring a database made by an older custsync up to this schema (inside the open's
    write transaction; PostgreSQL's ``IF NOT EXISTS`` lets instances opening it at once race)."""
    inspector = sa.inspect(conn)
    for table, name in _ADDED_COLUMNS:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        if name in present:
            continue
        column = table.c[name]
        ddl = f"{column.name} {column.type.compile(dialect=conn.dialect)}"
        if column.server_default is not None:
            ddl += f" DEFAULT {column.server_default.arg}"  # type: ignore[attr-defined]
        if not column.nullable:
            ddl += " NOT NULL"
        guard = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {guard}{ddl}")


# --------------------------------------------------------------------------------------------
# Records returned by the query methods
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One record's outcome in a run (``custsync runs RUN_ID`` lists them)."""

    run_id: int
    record: str
    action: str
    status: str  # ok | failed | skipped
    reason: str = ""
    rules: tuple[str, ...] = ()
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """Status of one shop and direction, for ``custsync status`` / health checks."""

    shop: str
    direction: str
    cursor: datetime | None = None
    last_success: RunRecord | None = None
    last_failure: RunRecord | None = None  # failed or abandoned (a refused run is neither)
    consecutive_failures: int = 0  # failed/abandoned runs since the last success
    running: RunRecord | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """A journal entry of the crash-safe apply (see :meth:`SqlStateStore.begin_intent`)."""

    id: int
    run_id: int
    shop: str
    direction: str
    record: str
    action: str
    idempotency_key: str
    status: str  # pending | done | failed
    target: str = ""
    error: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingBulk:
    """A bulk job of create or update intents of which some are still pending (its run died).
    ``intents`` are its input lines in order (pending or not); ``operation`` is the job's id
    at Shopify, "" when the process died before the job ran."""

    id: int
    run_id: int
    operation: str
    intents: tuple[Intent, ...]
    kind: str = ""  # "" creates, "customer" or "address" (the two jobs of a bulk update)


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    generation: int = 0


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a run holds: the state writes of a store :meth:`~SqlStateStore.fenced` with
    it (links, intents, cursors) are refused once the lease is no longer exactly this one."""

    name: str
    holder: str
    generation: int


class LeaseLostError(FatalError):
    """The run's lease expired or was taken by another process: it must not write again."""


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Runs asked for outside the schedule (webhooks) and not yet run: the first and the
    latest request and how many came (a burst of webhooks is one request)."""

    shop: str
    direction: str
    first_at: datetime
    last_at: datetime
    count: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AttentionRecord:
    """A record that keeps failing. ``failing``: it still holds its direction's cursor (a
    failure may be transient); ``parked``: it failed ``park_after`` times in a row or its
    failure is permanent by nature, so it no longer holds the cursor and waits here for its
    source to change, a retry or a person."""

    shop: str
    direction: str
    record: str
    status: str
    failures: int
    permanent: bool
    reason: str
    rules: tuple[str, ...]
    source_version: str
    target_version: str
    label: str
    first_failed_at: datetime
    last_failed_at: datetime
    parked_at: datetime | None
    last_run_id: int | None
    retry: bool


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed record of a run, as :meth:`SqlStateStore.note_failures` takes it."""

    record: str
    reason: str
    permanent: bool = False
    rules: tuple[str, ...] = ()
    source_version: str = ""
    target_version: str = ""
    label: str = ""


class LinkConflictError(RecordRefused):
    """The ERP customer is already linked to another Shopify customer of the shop, or the
    Shopify customer to another ERP customer (``reason_code`` says which)."""


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class SqlStateStore:
    """SQLAlchemy implementation of :class:`custsync.engine.ports.StateStore`.

    Open with :meth:`open` (creates the schema when missing). ``clock`` gives the time for
    bookkeeping columns; lease times come from the *database* clock unless a test passes
    ``now``, so processes on different machines agree on expiry.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        lease_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._url = engine.url
        self._clock = clock
        self._lease_clock = lease_clock
        self._fence: Fence | None = None
        self._run_has_holder: bool | None = None  # see _run_columns

    # ---- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        clock: Callable[[], datetime] = utcnow,
        lease_clock: Callable[[], datetime] | None = None,
    ) -> SqlStateStore:
        """Open (and create or check the schema of) the state database at ``url``.

        ``lease_clock`` replaces the database clock for leases (a scheduler test passes its
        manual clock's ``now``)."""
        store = cls(make_engine(url), clock=clock, lease_clock=lease_clock)
        store.create_all()
        return store

    def create_all(self) -> None:
        """Create missing tables and record the schema version; refuse a newer schema."""
        with database_errors("opening the state store", self._url):
            enable_wal(self._engine)
            # one write transaction from the start (SQLite: BEGIN IMMEDIATE): processes opening
            # a new state database at once queue on the busy timeout instead of failing with
            # "database is locked" when a read turns into a write
            with write_transaction(self._engine) as conn:
                lock_schema(conn, "state")
                metadata.create_all(conn)
                _add_missing_columns(conn)
                version = conn.execute(sa.select(schema_table.c.version)).scalar()
                if version is None:
                    conn.execute(schema_table.insert().values(id=1, version=SCHEMA_VERSION))
                elif version < SCHEMA_VERSION:
                    conn.execute(schema_table.update().values(version=SCHEMA_VERSION))
                elif version > SCHEMA_VERSION:
                    raise FatalError(
                        f"state database {display_url(self._url)} has schema version {version}; "
                        f"this custsync knows up to {SCHEMA_VERSION}: upgrade custsync"
                    )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SqlStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return display_url(self._url)

    @contextmanager
    def _write(
        self, what: str, keep: tuple[type[DBAPIError], ...] = (), *, fenced: bool = False
    ) -> Iterator[Connection]:
        """A write transaction; ``fenced`` writes first check the run's lease in it."""
        with (
            database_errors(what, self._url, keep=keep),
            write_transaction(self._engine) as conn,
        ):
            if fenced and self._fence is not None:
                self._verify_fence(conn, self._fence, lock=True)
            yield conn

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        with database_errors(what, self._url), self._engine.connect() as conn:
            yield conn

    # ---- links -------------------------------------------------------------------------

    def links(self, shop: str) -> Iterator[Link]:
        """Every link of ``shop`` (in Shopify id order), with its address ids."""
        with self._read("reading links") as conn:
            addresses = self._address_ids(conn, shop)
            rows = conn.execute(
                sa.select(link_table)
                .where(link_table.c.shop == shop)
                .order_by(link_table.c.shopify_id)
            ).all()
        for row in rows:
            yield _link(row, addresses.get((row.shopify_id, row.erp_no), ()))

    def links_for(
        self, shop: str, *, shopify_ids: Iterable[str] = (), erp_nos: Iterable[str] = ()
    ) -> list[Link]:
        """The links of ``shop`` that touch any of these Shopify customers or ERP customers
        (an incremental sync reads only these, not every link of the shop)."""
        found: dict[str, Any] = {}
        with self._read("reading links") as conn:
            for column, values in (
                (link_table.c.shopify_id, sorted(set(shopify_ids))),
                (link_table.c.erp_no, sorted(set(erp_nos))),
            ):
                for start in range(0, len(values), 500):
                    chunk = values[start : start + 500]
                    for row in conn.execute(
                        sa.select(link_table).where(link_table.c.shop == shop, column.in_(chunk))
                    ):
                        found[row.shopify_id] = row
            links = []
            for shopify_id in sorted(found):
                row = found[shopify_id]
                addresses = self._address_ids(conn, shop, shopify_id)
                links.append(_link(row, addresses.get((row.shopify_id, row.erp_no), ())))
        return links

    def link_for_shopify(self, shop: str, shopify_id: str) -> Link | None:
        return self._one_link(link_table.c.shopify_id == shopify_id, shop)

    def link_for_erp(self, shop: str, erp_no: str) -> Link | None:
        return self._one_link(link_table.c.erp_no == erp_no, shop)

    def link_for_address(self, shop: str, address_id: str) -> str | None:
        """The ERP customer no. linked to a Shopify MailingAddress (bill-to link), if any."""
        with self._read("reading address links") as conn:
            return conn.execute(
                sa.select(address_link_table.c.erp_no).where(
                    address_link_table.c.shop == shop,
                    address_link_table.c.address_id == address_id,
                )
            ).scalar()

    def address_links(self, shop: str) -> dict[str, str]:
        """All address links of ``shop``: MailingAddress gid -> ERP customer no."""
        with self._read("reading address links") as conn:
            rows = conn.execute(
                sa.select(address_link_table.c.address_id, address_link_table.c.erp_no).where(
                    address_link_table.c.shop == shop
                )
            ).all()
        return {row.address_id: row.erp_no for row in rows}

    def _one_link(self, condition: Any, shop: str) -> Link | None:
        with self._read("reading links") as conn:
            row = conn.execute(
                sa.select(link_table).where(link_table.c.shop == shop, condition)
            ).first()
            if row is None:
                return None
            addresses = self._address_ids(conn, shop, row.shopify_id)
        return _link(row, addresses.get((row.shopify_id, row.erp_no), ()))

    @staticmethod
    def _address_ids(
        conn: Connection, shop: str, shopify_id: str | None = None
    ) -> dict[tuple[str, str], tuple[str, ...]]:
        query = sa.select(address_link_table).where(address_link_table.c.shop == shop)
        if shopify_id is not None:
            query = query.where(address_link_table.c.shopify_id == shopify_id)
        found: dict[tuple[str, str], list[str]] = {}
        for row in conn.execute(query.order_by(address_link_table.c.address_id)):
            found.setdefault((row.shopify_id, row.erp_no), []).append(row.address_id)
        return {key: tuple(ids) for key, ids in found.items()}

    def save_link(self, link: Link, *, replaces: str | None = None) -> None:
        """Insert or update the link of ``link.shopify_id`` in ``link.shop``.

        Timestamps that are ``None`` keep their stored value (so saving a fresh
        ``Link(shop, id, no)`` never forgets our own-write time); they are reset when the link
        moves to another ERP customer. ``address_ids`` are added as address links to
        ``link.erp_no`` (existing address links are kept; use :meth:`drop_address_link`).

        A link is never dropped by saving another one: :class:`LinkConflictError` when the
        ERP customer is linked to another Shopify customer of the shop, or the Shopify
        customer to another ERP customer. Moving a Shopify customer's link on purpose (its
        ERP customer was deleted) names the ERP customer it moves from as ``replaces``.
        """
        with self._write("saving a link", fenced=True) as conn:
            self._save_link(conn, link, replaces=replaces)

    def _save_link(self, conn: Connection, link: Link, *, replaces: str | None = None) -> None:
        """:meth:`_save_links` of one link: raises its :class:`LinkConflictError`."""
        refused = self._save_links(conn, [link], replaces=replaces)
        if refused:
            raise refused[0]

    def _save_links(
        self, conn: Connection, links: Sequence[Link], *, replaces: str | None = None
    ) -> dict[int, LinkConflictError]:
        """Save many links of one shop as :meth:`save_link` saves one; returns the refused
        ones (by index in ``links``), whose stored links stay. Every link, one or ten
        thousand, goes through this: the single apply path and the batched one (a bulk job's
        results) keep the same stamps (own-write ``updatedAt`` and ERP etag; ``None`` keeps
        the stored one) and the same refusals.

        One upsert with the refusal rules in its condition, so that processes saving at the
        same moment never trip over each other's insert (PostgreSQL raised an IntegrityError
        for the second of two check-then-insert saves): the same link twice is saved twice;
        a link the other save made first refuses this one (:class:`LinkConflictError`). A
        Shopify customer whose stored link stays with another ERP customer is read back after
        the upsert, so a refused row is found without one statement per link."""
        refused: dict[int, LinkConflictError] = {}
        if not links:
            return refused
        # the same Shopify customer twice: the later save goes after the earlier one (one
        # upsert statement must not touch a row twice)
        first: dict[str, int] = {}
        later: list[int] = []
        for index, link in enumerate(links):
            if link.shopify_id in first:
                later.append(index)
            else:
                first[link.shopify_id] = index
        # an ERP customer linked to another Shopify customer (stored, or earlier in the batch)
        holders: dict[tuple[str, str], str] = {}
        for start in range(0, len(links), 400):  # stay below SQL parameter limits
            part = links[start : start + 400]
            for shop, gid, no in conn.execute(
                sa.select(link_table.c.shop, link_table.c.shopify_id, link_table.c.erp_no).where(
                    link_table.c.shop.in_({link.shop for link in part}),
                    link_table.c.erp_no.in_({link.erp_no for link in part}),
                )
            ):
                holders[(shop, no)] = gid
        now = self._clock()
        rows: list[dict[str, Any]] = []
        sent: list[int] = []
        for index in first.values():
            link = links[index]
            holder = holders.get((link.shop, link.erp_no))
            if holder is not None and holder != link.shopify_id:
                refused[index] = _erp_linked_elsewhere(link, holder)
                continue
            holders[(link.shop, link.erp_no)] = link.shopify_id
            rows.append(_link_row(link, now))
            sent.append(index)
        if rows:
            try:
                with conn.begin_nested():
                    conn.execute(self._link_upsert(conn, replaces), rows)
            except IntegrityError:
                # uq_state_link_erp: another process linked one of these ERP customers at
                # the same moment: one by one, to refuse that one alone
                for index, row in zip(sent, rows, strict=True):
                    try:
                        with conn.begin_nested():
                            conn.execute(self._link_upsert(conn, replaces), [row])
                    except IntegrityError:
                        link = links[index]
                        refused[index] = _erp_linked_elsewhere(
                            link, _linked_shopify_id(conn, link)
                        )
            saved = self._stored_erp_nos(conn, [links[i] for i in sent if i not in refused])
            for index in sent:
                link = links[index]
                stored = saved.get((link.shop, link.shopify_id))
                if index not in refused and stored != link.erp_no:
                    refused[index] = LinkConflictError(
                        f"Shopify customer {link.shopify_id} is already linked to ERP customer "
                        f"{stored} in shop {link.shop}; not linked to {link.erp_no}",
                        record=link.shopify_id,
                        reason_code="shopify-customer-linked-elsewhere",
                    )
        addresses = [
            {"shop": link.shop, "address_id": address_id, "erp_no": link.erp_no,
             "shopify_id": link.shopify_id}
            for index, link in ((i, links[i]) for i in sent)
            if index not in refused
            for address_id in link.address_ids
        ]
        if addresses:
            self._save_address_links(conn, addresses)
        for index in later:
            problem = self._save_links(conn, [links[index]], replaces=replaces)
            if problem:
                refused[index] = problem[0]
        return refused

    @staticmethod
    def _link_upsert(conn: Connection, replaces: str | None) -> Any:
        """The link upsert (one statement, many rows): a stamp given as None keeps the stored
        one, unless the link moves (then all reset); it moves only from ``replaces``."""
        insert = _upsert(conn)(link_table)
        new = insert.excluded
        same = link_table.c.erp_no == new.erp_no
        kept = {
            name: sa.case((same, sa.func.coalesce(new[name], link_table.c[name])), else_=new[name])
            for name in _LINK_STAMPS
        }
        may_move = same if replaces is None else sa.or_(same, link_table.c.erp_no == replaces)
        return insert.on_conflict_do_update(
            index_elements=[link_table.c.shop, link_table.c.shopify_id],
            set_={"erp_no": new.erp_no, "updated_at": new.updated_at, **kept},
            where=may_move,
        )

    @staticmethod
    def _stored_erp_nos(conn: Connection, links: Sequence[Link]) -> dict[tuple[str, str], str]:
        """(shop, Shopify id) -> the ERP no. stored for it now, for ``links``."""
        found: dict[tuple[str, str], str] = {}
        for start in range(0, len(links), 400):
            part = links[start : start + 400]
            for shop, gid, no in conn.execute(
                sa.select(link_table.c.shop, link_table.c.shopify_id, link_table.c.erp_no).where(
                    link_table.c.shop.in_({link.shop for link in part}),
                    link_table.c.shopify_id.in_({link.shopify_id for link in part}),
                )
            ):
                found[(shop, gid)] = no
        return found

    def save_address_link(
        self, shop: str, address_id: str, erp_no: str, shopify_id: str = ""
    ) -> None:
        """Link a Shopify MailingAddress to an ERP customer (each bill-to its own customer)."""
        with self._write("saving an address link") as conn:
            self._save_address_link(conn, shop, address_id, erp_no, shopify_id)

    def _save_address_link(
        self, conn: Connection, shop: str, address_id: str, erp_no: str, shopify_id: str
    ) -> None:
        self._save_address_links(
            conn,
            [{"shop": shop, "address_id": address_id, "erp_no": erp_no, "shopify_id": shopify_id}],
        )

    def _save_address_links(self, conn: Connection, rows: Sequence[Mapping[str, str]]) -> None:
        """Upsert address links (``shop``, ``address_id``, ``erp_no``, ``shopify_id``)."""
        now = self._clock()
        insert = _upsert(conn)(address_link_table)
        new = insert.excluded
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[address_link_table.c.shop, address_link_table.c.address_id],
                set_={"erp_no": new.erp_no, "shopify_id": new.shopify_id, "updated_at": now},
            ),
            [{**row, "updated_at": now} for row in rows],
        )

    def drop_address_link(self, shop: str, address_id: str) -> None:
        with self._write("dropping an address link") as conn:
            conn.execute(
                address_link_table.delete().where(
                    address_link_table.c.shop == shop,
                    address_link_table.c.address_id == address_id,
                )
            )

    def drop_link(self, shop: str, shopify_id: str) -> None:
        """Remove the link (and the customer's address links), e.g. its ERP customer is gone."""
        with self._write("dropping a link") as conn:
            conn.execute(
                link_table.delete().where(
                    link_table.c.shop == shop, link_table.c.shopify_id == shopify_id
                )
            )
            conn.execute(
                address_link_table.delete().where(
                    address_link_table.c.shop == shop,
                    address_link_table.c.shopify_id == shopify_id,
                )
            )

    # ---- cursors -----------------------------------------------------------------------

    def cursor(self, shop: str, direction: str) -> datetime | None:
        """The start time of the last successful run of ``shop``/``direction``, if any."""
        with self._read("reading a cursor") as conn:
            return conn.execute(
                sa.select(cursor_table.c.value).where(
                    cursor_table.c.shop == shop, cursor_table.c.direction == direction
                )
            ).scalar()

    def advance_cursor(self, shop: str, direction: str, run_started_at: datetime) -> None:
        """Store ``run_started_at`` (the run's *start*) as the cursor; never moves backwards.

        Call it only after the run succeeded: a failed run leaves the cursor where it was.
        """
        value = _aware(run_started_at, "run_started_at")
        with self._write("advancing a cursor", fenced=True) as conn:
            key = (cursor_table.c.shop == shop, cursor_table.c.direction == direction)
            current = conn.execute(sa.select(cursor_table.c.value).where(*key)).scalar()
            if current is None:
                conn.execute(
                    cursor_table.insert().values(
                        shop=shop, direction=direction, value=value, updated_at=self._clock()
                    )
                )
            elif value > current:
                conn.execute(
                    cursor_table.update().where(*key).values(value=value, updated_at=self._clock())
                )

    def reset_cursor(self, shop: str, direction: str) -> None:
        """Forget the cursor (the next run reads everything again)."""
        with self._write("resetting a cursor") as conn:
            conn.execute(
                cursor_table.delete().where(
                    cursor_table.c.shop == shop, cursor_table.c.direction == direction
                )
            )

    # ---- run log -----------------------------------------------------------------------

    def start_run(
        self, shop: str, direction: str, started_at: datetime, holder: str = ""
    ) -> int:
        """Record a new run (status ``running``); returns its id. ``holder`` is who runs it
        (default: the holder of the lease this store is :meth:`fenced` with, if any)."""
        if not holder and self._fence is not None:
            holder = self._fence.holder
        with self._write("starting a run") as conn:
            result = conn.execute(
                run_table.insert()
                .values(
                    shop=shop,
                    direction=direction,
                    started_at=_aware(started_at, "started_at"),
                    status="running",
                    counts={},
                    error="",
                    holder=holder or None,
                )
                .returning(run_table.c.id)
            )
            return int(result.scalar_one())

    def record_outcome(
        self,
        run_id: int,
        record: str,
        action: str,
        status: str,
        reason: str = "",
        rules: Sequence[str] = (),
    ) -> None:
        """One record's outcome: ``status`` ok | failed | skipped, with reason and rule ids."""
        self.record_outcomes([Outcome(run_id, record, action, status, reason, tuple(rules))])

    def record_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Many outcomes in one transaction (faster than one call per record)."""
        now = self._clock()
        rows = []
        for item in outcomes:
            if item.status not in OUTCOME_STATUSES:
                raise ValueError(f"outcome status {item.status!r} not in {OUTCOME_STATUSES}")
            rows.append(
                {
                    "run_id": item.run_id,
                    "record": item.record,
                    "action": item.action,
                    "status": item.status,
                    "reason": item.reason,
                    "rules": list(item.rules),
                    "recorded_at": item.recorded_at or now,
                }
            )
        if rows:
            with self._write("recording outcomes") as conn:
                conn.execute(outcome_table.insert(), rows)

    def finish_run(
        self, run_id: int, status: str, counts: Mapping[str, int], error: str = ""
    ) -> None:
        """Close a run: ``succeeded``, ``failed``, ``abandoned`` or ``refused``, with counts
        and error (for ``refused``: why)."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(
                f"finish status {status!r} must be succeeded, failed, abandoned or refused"
            )
        with self._write("finishing a run") as conn:
            conn.execute(
                run_table.update()
                .where(run_table.c.id == run_id)
                .values(
                    status=status,
                    finished_at=self._clock(),
                    counts=dict(counts),
                    error=error[:_ERROR_MAX],
                )
            )

    def abandon_running(
        self,
        shop: str | None = None,
        direction: str | None = None,
        error: str = "the process running it stopped",
    ) -> list[int]:
        """Mark runs still ``running`` as ``abandoned`` (call while holding the shop's lease,
        when a previous process died); returns their ids. Their pending intents stay pending
        for the next run to finish."""
        with self._write("abandoning runs") as conn:
            query = _where_given(
                sa.select(run_table.c.id).where(run_table.c.status == "running"),
                run_table,
                shop=shop,
                direction=direction,
            )
            ids = [int(i) for i in conn.execute(query).scalars()]
            if ids:
                conn.execute(
                    run_table.update()
                    .where(run_table.c.id.in_(ids))
                    .values(status="abandoned", finished_at=self._clock(), error=error)
                )
        return ids

    def runs(
        self,
        shop: str | None = None,
        limit: int = 20,
        *,
        direction: str | None = None,
        status: str | None = None,
    ) -> list[RunRecord]:
        """The latest runs, newest first."""
        with self._read("reading runs") as conn:
            query = _where_given(
                sa.select(*self._run_columns(conn)),
                run_table,
                shop=shop,
                direction=direction,
                status=status,
            )
            query = query.order_by(run_table.c.started_at.desc(), run_table.c.id.desc())
            return [_run(row) for row in conn.execute(query.limit(limit))]

    def run(self, run_id: int) -> RunRecord | None:
        with self._read("reading a run") as conn:
            row = conn.execute(
                sa.select(*self._run_columns(conn)).where(run_table.c.id == run_id)
            ).first()
        return None if row is None else _run(row)

    def _run_columns(self, conn: Connection) -> list[sa.Column[Any]]:
        """The run log's columns, without ``holder`` in a database an older custsync wrote
        and nothing has upgraded yet (``runs`` and ``status`` open it read-only)."""
        if self._run_has_holder is None:
            present = {c["name"] for c in sa.inspect(conn).get_columns(run_table.name)}
            self._run_has_holder = "holder" in present
        return [c for c in run_table.c if self._run_has_holder or c.name != "holder"]

    def outcomes(
        self, run_id: int, status: str | None = None, limit: int | None = None
    ) -> list[Outcome]:
        """A run's record outcomes in the order recorded (``status`` filters)."""
        query = sa.select(outcome_table).where(outcome_table.c.run_id == run_id)
        if status is not None:
            query = query.where(outcome_table.c.status == status)
        query = query.order_by(outcome_table.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read("reading outcomes") as conn:
            return [
                Outcome(
                    run_id=row.run_id,
                    record=row.record,
                    action=row.action,
                    status=row.status,
                    reason=row.reason,
                    rules=tuple(row.rules or ()),
                    recorded_at=row.recorded_at,
                )
                for row in conn.execute(query)
            ]

    def failures(self, run_id: int) -> list[Outcome]:
        """The records that failed in a run."""
        return self.outcomes(run_id, status="failed")

    def health(self, shop: str | None = None) -> list[Health]:
        """Per shop and direction that ever ran: cursor, last success, last failure,
        consecutive failures since the last success, and a run in progress. Refused runs
        count as neither success nor failure (nothing was attempted)."""
        with self._read("reading run health") as conn:
            pairs_query = sa.select(run_table.c.shop, run_table.c.direction).distinct()
            if shop is not None:
                pairs_query = pairs_query.where(run_table.c.shop == shop)
            pairs = sorted((row.shop, row.direction) for row in conn.execute(pairs_query))
            result = []
            for pair_shop, pair_direction in pairs:
                result.append(self._health(conn, pair_shop, pair_direction))
        return result

    def _health(self, conn: Connection, shop: str, direction: str) -> Health:
        base = (run_table.c.shop == shop, run_table.c.direction == direction)
        newest = (run_table.c.started_at.desc(), run_table.c.id.desc())
        columns = self._run_columns(conn)

        def latest(*condition: Any) -> RunRecord | None:
            row = conn.execute(
                sa.select(*columns).where(*base, *condition).order_by(*newest).limit(1)
            ).first()
            return None if row is None else _run(row)

        failed = run_table.c.status.in_(("partial", "failed", "abandoned"))
        success = latest(run_table.c.status == "succeeded")
        count_query = sa.select(sa.func.count()).select_from(run_table).where(*base, failed)
        if success is not None:
            count_query = count_query.where(
                sa.or_(
                    run_table.c.started_at > success.started_at,
                    sa.and_(
                        run_table.c.started_at == success.started_at,
                        run_table.c.id > success.id,
                    ),
                )
            )
        cursor = conn.execute(
            sa.select(cursor_table.c.value).where(
                cursor_table.c.shop == shop, cursor_table.c.direction == direction
            )
        ).scalar()
        return Health(
            shop=shop,
            direction=direction,
            cursor=cursor,
            last_success=success,
            last_failure=latest(failed),
            consecutive_failures=int(conn.execute(count_query).scalar_one()),
            running=latest(run_table.c.status == "running"),
        )

    # ---- leases ------------------------------------------------------------------------

    def _lease_now(self, conn: Connection, now: datetime | None) -> datetime:
        if now is not None:
            return _aware(now, "now")
        if self._lease_clock is not None:
            return _aware(self._lease_clock(), "lease clock")
        return _db_now(conn)

    def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None
    ) -> bool:
        """Take the lease ``name`` for ``holder`` for ``ttl_seconds``; True when taken.

        Atomic across processes and machines: one conditional UPDATE (the lease is expired
        or already ours), else an INSERT that the primary key lets only one contender win.
        Re-acquiring a lease one holds extends it. Times are the database's clock unless
        ``now`` (or the store's ``lease_clock``) is given.
        """
        try:
            with self._write("acquiring a lease", keep=(IntegrityError,)) as conn:
                current = self._lease_now(conn, now)
                expires = current + timedelta(seconds=ttl_seconds)
                updated = conn.execute(
                    lease_table.update()
                    .where(
                        lease_table.c.name == name,
                        sa.or_(lease_table.c.expires_at <= current, lease_table.c.holder == holder),
                    )
                    .values(
                        holder=holder,
                        acquired_at=current,
                        expires_at=expires,
                        # a new holder fences the old one out (see fenced())
                        generation=sa.case(
                            (lease_table.c.holder == holder, lease_table.c.generation),
                            else_=lease_table.c.generation + 1,
                        ),
                    )
                ).rowcount
                if updated:
                    return True
                exists = conn.execute(
                    sa.select(lease_table.c.name).where(lease_table.c.name == name)
                ).first()
                if exists is not None:
                    return False
                conn.execute(
                    lease_table.insert().values(
                        name=name,
                        holder=holder,
                        acquired_at=current,
                        expires_at=expires,
                        generation=1,
                    )
                )
                return True
        except IntegrityError:  # another contender inserted it first
            return False

    def renew_lease(
        self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None
    ) -> bool:
        """Extend the lease while ``holder`` still holds it; False means it was lost (stop
        working: someone else may have taken it after it expired)."""
        with self._write("renewing a lease") as conn:
            current = self._lease_now(conn, now)
            updated = conn.execute(
                lease_table.update()
                .where(lease_table.c.name == name, lease_table.c.holder == holder)
                .values(expires_at=current + timedelta(seconds=ttl_seconds))
            ).rowcount
        return bool(updated)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up (only if ``holder`` holds it)."""
        with self._write("releasing a lease") as conn:
            conn.execute(
                lease_table.delete().where(
                    lease_table.c.name == name, lease_table.c.holder == holder
                )
            )

    def lease_holder(self, name: str, now: datetime | None = None) -> str | None:
        """Who holds ``name`` now (``None`` if nobody or the lease expired)."""
        lease = self.lease(name)
        if lease is None:
            return None
        with self._read("reading a lease") as conn:
            current = self._lease_now(conn, now)
        return lease.holder if lease.expires_at > current else None

    def lease(self, name: str) -> Lease | None:
        """The stored lease row (expired or not)."""
        with self._read("reading a lease") as conn:
            row = conn.execute(sa.select(lease_table).where(lease_table.c.name == name)).first()
        if row is None:
            return None
        return Lease(
            row.name, row.holder, row.acquired_at, row.expires_at, int(row.generation or 0)
        )

    # ---- fencing -----------------------------------------------------------------------

    def fenced(self, fence: Fence) -> SqlStateStore:
        """This store (same database connections) for a run holding ``fence``: every write of
        links, intents and cursors first checks, in its own transaction, that the lease is
        still exactly ``fence`` (same holder and generation, not expired), and
        :meth:`check_fence` lets the run check it before each write to the ERP or Shopify. A
        run whose lease was lost (paused past its TTL, another process took the shop) thus
        stops before its next write (:class:`LeaseLostError`)."""
        clone = SqlStateStore(self._engine, clock=self._clock, lease_clock=self._lease_clock)
        clone._fence = fence
        clone._run_has_holder = self._run_has_holder
        return clone

    def check_fence(self) -> None:
        """Raise :class:`LeaseLostError` unless the fenced lease is still held (no-op when
        the store is not fenced)."""
        if self._fence is None:
            return
        with self._read("checking the lease") as conn:
            self._verify_fence(conn, self._fence)

    def _verify_fence(self, conn: Connection, fence: Fence, *, lock: bool = False) -> None:
        query = sa.select(lease_table).where(lease_table.c.name == fence.name)
        if lock and conn.dialect.name == "postgresql":
            # held until the write commits: nobody takes the lease in between
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        now = self._lease_now(conn, None)
        if row is None:
            why = "it was released"
        elif row.holder != fence.holder or int(row.generation or 0) != fence.generation:
            why = f"{row.holder} holds it now"
        elif row.expires_at <= now:
            why = "it expired (the run was paused longer than the lease TTL)"
        else:
            return
        raise LeaseLostError(
            f"lease {fence.name} lost: {why}; stopped before the next write (the shop is "
            "synced by whoever holds the lease; nothing more is written by this run)"
        )

    # ---- intent journal (crash-safe apply) ---------------------------------------------

    def begin_intent(self, run_id: int, record: str, action: str, idempotency_key: str) -> int:
        """Journal a write *before* doing it; returns the intent id.

        The apply loop, per record that writes::

            intent = store.begin_intent(run_id, decision.record, "create", key)
            result = erp.create_customer(fields, template, idempotency_key=key)
            if result.ok:
                store.complete_intent(intent, target=result.no, link=Link(shop, gid, result.no))
            else:
                store.fail_intent(intent, result.message)

        ``idempotency_key`` is what the target system can be searched by afterwards (the
        Shopify gid passed to ``ErpWriter.create_customer``; for Shopify creates e.g. the ERP
        customer no. or the e-mail). After a crash, :meth:`pending_intents` lists what may be
        half applied: look the key up in the target (``ErpWriter.find_by_idempotency_key``);
        found -> :meth:`complete_intent` (with its link), not found -> redo it or
        :meth:`fail_intent`. Nothing is ever created twice.
        """
        with self._write("journaling an intent", fenced=True) as conn:
            result = conn.execute(
                intent_table.insert()
                .values(
                    run_id=run_id,
                    record=record,
                    action=action,
                    idempotency_key=idempotency_key,
                    status="pending",
                    created_at=self._clock(),
                )
                .returning(intent_table.c.id)
            )
            return int(result.scalar_one())

    def complete_intent(
        self,
        intent_id: int,
        target: str = "",
        link: Link | None = None,
        *,
        replaces: str | None = None,
    ) -> None:
        """Mark an intent done, saving ``link`` in the same transaction (so a crash leaves
        either both or neither). ``target`` is the written record's id (ERP no., gid);
        ``replaces`` as in :meth:`save_link`."""
        with self._write("completing an intent", fenced=True) as conn:
            if link is not None:
                self._save_link(conn, link, replaces=replaces)
            conn.execute(
                intent_table.update()
                .where(intent_table.c.id == intent_id)
                .values(status="done", target=target, finished_at=self._clock())
            )

    def fail_intent(self, intent_id: int, error: str) -> None:
        """Mark an intent failed: the write did not happen (a per-record failure)."""
        with self._write("failing an intent") as conn:
            conn.execute(
                intent_table.update()
                .where(intent_table.c.id == intent_id)
                .values(status="failed", error=error[:_ERROR_MAX], finished_at=self._clock())
            )

    def begin_intents(
        self,
        run_id: int,
        items: Sequence[tuple[str, str, str] | tuple[str, str, str, str]],
        *,
        bulk: bool = False,
        kind: str = "",
    ) -> tuple[int | None, list[int]]:
        """Journal a batch of writes sent together *before* sending it: one intent per
        ``(record, action, idempotency_key)``, in one transaction; a fourth item is the
        record written when it is known before (an update's Shopify customer), stored as the
        intent's ``target``. Returns the intent ids (in
        ``items`` order) and, with ``bulk`` (the batch goes as one Shopify bulk job, its input
        lines in ``items`` order), the batch id: once the job runs, :meth:`bulk_started`
        stores its id, so that after a crash :meth:`pending_bulks` can read its result back."""
        now = self._clock()
        with self._write("journaling intents", fenced=True) as conn:
            bulk_id: int | None = None
            if bulk:
                bulk_id = int(
                    conn.execute(
                        bulk_table.insert()
                        .values(run_id=run_id, operation="", created_at=now, kind=kind)
                        .returning(bulk_table.c.id)
                    ).scalar_one()
                )
            ids: list[int] = []
            if items:
                # one INSERT for the batch; RETURNING in the order of the rows given
                result = conn.execute(
                    intent_table.insert().returning(
                        intent_table.c.id, sort_by_parameter_order=True
                    ),
                    [
                        {
                            "run_id": run_id,
                            "record": record,
                            "action": action,
                            "idempotency_key": key,
                            "status": "pending",
                            "target": item[3] if len(item) > 3 else "",
                            "created_at": now,
                        }
                        for item in items
                        for record, action, key in (item[:3],)
                    ],
                )
                ids = [int(row[0]) for row in result]
            if bulk_id is not None and ids:
                conn.execute(
                    bulk_item_table.insert(),
                    [
                        {"bulk_id": bulk_id, "line": line, "intent_id": intent_id}
                        for line, intent_id in enumerate(ids)
                    ],
                )
            return bulk_id, ids

    def begin_bulk(self, run_id: int, intent_ids: Sequence[int], *, kind: str) -> int:
        """Journal one more bulk job over intents already journaled (:meth:`begin_intents`),
        its input lines in ``intent_ids`` order (the address job of a bulk update); returns
        its id for :meth:`bulk_started`."""
        with self._write("journaling a bulk job", fenced=True) as conn:
            bulk_id = int(
                conn.execute(
                    bulk_table.insert()
                    .values(run_id=run_id, operation="", created_at=self._clock(), kind=kind)
                    .returning(bulk_table.c.id)
                ).scalar_one()
            )
            if intent_ids:
                conn.execute(
                    bulk_item_table.insert(),
                    [
                        {"bulk_id": bulk_id, "line": line, "intent_id": intent_id}
                        for line, intent_id in enumerate(intent_ids)
                    ],
                )
            return bulk_id

    def bulk_started(self, bulk_id: int, operation: str) -> None:
        """The batch's bulk job runs at Shopify as ``operation`` (its gid)."""
        with self._write("journaling a bulk job") as conn:
            conn.execute(
                bulk_table.update().where(bulk_table.c.id == bulk_id).values(operation=operation)
            )

    def settle_intents(
        self,
        done: Iterable[tuple[int, str, Link | None]] = (),
        failed: Iterable[tuple[int, str]] = (),
    ) -> dict[int, str]:
        """Complete (``(intent id, target, link)``) and fail (``(intent id, error)``) many
        intents in one transaction, each as :meth:`complete_intent` / :meth:`fail_intent`.
        A link refused (:class:`LinkConflictError`) fails its intent instead; returns those
        intents' ids with the reason."""
        now = self._clock()
        refused: dict[int, str] = {}
        done = list(done)
        failed = list(failed)
        with self._write("settling intents", fenced=True) as conn:
            linked = [(intent_id, link) for intent_id, _, link in done if link is not None]
            problems = self._save_links(conn, [link for _, link in linked])
            for index, problem in problems.items():
                intent_id = linked[index][0]
                refused[intent_id] = problem.render()
                failed.append((intent_id, problem.render()))
            completed = [
                {"intent": intent_id, "target": target}
                for intent_id, target, _ in done
                if intent_id not in refused
            ]
            if completed:
                conn.execute(
                    intent_table.update()
                    .where(intent_table.c.id == sa.bindparam("intent"))
                    .values(status="done", target=sa.bindparam("target"), finished_at=now),
                    completed,
                )
            if failed:
                conn.execute(
                    intent_table.update()
                    .where(intent_table.c.id == sa.bindparam("intent"))
                    .values(status="failed", error=sa.bindparam("message"), finished_at=now),
                    [
                        {"intent": intent_id, "message": error[:_ERROR_MAX]}
                        for intent_id, error in failed
                    ],
                )
        return refused

    def pending_bulks(self, shop: str) -> list[PendingBulk]:
        """The shop's bulk batches with intents still pending (a run died), oldest first."""
        pending = sa.exists().where(
            bulk_item_table.c.bulk_id == bulk_table.c.id,
            intent_table.c.id == bulk_item_table.c.intent_id,
            intent_table.c.status == "pending",
        )
        query = (
            sa.select(bulk_table)
            .join(run_table, run_table.c.id == bulk_table.c.run_id)
            .where(run_table.c.shop == shop, pending)
            .order_by(bulk_table.c.id)
        )
        with self._read("reading bulk batches") as conn:
            batches = list(conn.execute(query))
        found = []
        for row in batches:
            intents = self._intents(
                intent_table.c.id.in_(
                    sa.select(bulk_item_table.c.intent_id).where(
                        bulk_item_table.c.bulk_id == row.id
                    )
                ),
                shop,
                None,
            )
            # intents are journaled in line order, so their ids are too
            found.append(
                PendingBulk(row.id, row.run_id, row.operation, tuple(intents), row.kind or "")
            )
        return found

    def pending_intents(
        self, shop: str | None = None, direction: str | None = None
    ) -> list[Intent]:
        """Intents never completed nor failed (their run crashed), oldest first."""
        return self._intents(intent_table.c.status == "pending", shop, direction)

    def intent_for_key(self, idempotency_key: str) -> Intent | None:
        """The newest intent with this idempotency key, whatever its status."""
        found = self._intents(intent_table.c.idempotency_key == idempotency_key, None, None)
        return found[-1] if found else None

    def _intents(self, condition: Any, shop: str | None, direction: str | None) -> list[Intent]:
        query = _where_given(
            sa.select(intent_table, run_table.c.shop, run_table.c.direction)
            .join(run_table, run_table.c.id == intent_table.c.run_id)
            .where(condition),
            run_table,
            shop=shop,
            direction=direction,
        )
        with self._read("reading intents") as conn:
            return [
                Intent(
                    id=row.id,
                    run_id=row.run_id,
                    shop=row.shop,
                    direction=row.direction,
                    record=row.record,
                    action=row.action,
                    idempotency_key=row.idempotency_key,
                    status=row.status,
                    target=row.target,
                    error=row.error,
                    created_at=row.created_at,
                )
                for row in conn.execute(query.order_by(intent_table.c.id))
            ]



    # ---- attention list ----------------------------------------------------------------------

    def note_failures(
        self,
        shop: str,
        direction: str,
        run_id: int | None,
        failures: Sequence[Failure],
        *,
        park_after: int = DEFAULT_PARK_AFTER,
    ) -> set[str]:
        """Count each failed record's failures in a row; return the records parked now or
        before (they no longer hold the cursor). A permanent failure parks at once."""
        now = self._clock()
        parked: set[str] = set()
        with self._write("noting failed records") as conn:
            for item in failures:
                key = (
                    attention_table.c.shop == shop,
                    attention_table.c.direction == direction,
                    attention_table.c.record == item.record,
                )
                row = conn.execute(sa.select(attention_table).where(*key)).first()
                count = (row.failures if row is not None else 0) + 1
                park = item.permanent or count >= park_after or (
                    row is not None and row.status == "parked"
                )
                values = {
                    "status": "parked" if park else "failing",
                    "failures": count,
                    "permanent": item.permanent,
                    "reason": item.reason[:2000],
                    "rules": list(item.rules),
                    "source_version": item.source_version[:100],
                    "target_version": item.target_version[:100],
                    "label": item.label[:300],
                    "last_failed_at": now,
                    "last_run_id": run_id,
                    "retry": False,
                }
                if park:
                    parked.add(item.record)
                    if row is None or row.parked_at is None:
                        values["parked_at"] = now
                if row is None:
                    conn.execute(attention_table.insert().values(
                        shop=shop, direction=direction, record=item.record,
                        first_failed_at=now, **values,
                    ))
                else:
                    conn.execute(attention_table.update().where(*key).values(**values))
        return parked

    def clear_attention(self, shop: str, direction: str, records: Iterable[str]) -> int:
        """Records that succeeded (or were decided without failing): off the list."""
        wanted = list(records)
        if not wanted:
            return 0
        removed = 0
        with self._write("clearing the attention list") as conn:
            for start in range(0, len(wanted), 500):
                removed += conn.execute(attention_table.delete().where(
                    attention_table.c.shop == shop,
                    attention_table.c.direction == direction,
                    attention_table.c.record.in_(wanted[start:start + 500]),
                )).rowcount
        return removed

    def attention(
        self, shop: str | None = None, *, direction: str | None = None, status: str | None = None
    ) -> list[AttentionRecord]:
        query = _where_given(
            sa.select(attention_table).order_by(
                attention_table.c.shop, attention_table.c.direction, attention_table.c.record
            ),
            attention_table,
            shop=shop,
            direction=direction,
            status=status,
        )
        with self._read("reading the attention list") as conn:
            return [_attention(row) for row in conn.execute(query)]

    def attention_record(self, shop: str, direction: str, record: str) -> AttentionRecord | None:
        found = [
            a for a in self.attention(shop, direction=direction) if a.record == record
        ]
        return found[0] if found else None

    def request_retry(self, shop: str, direction: str, record: str) -> bool:
        """The next run of the direction reads this record again, whatever its cursor."""
        with self._write("asking for a retry") as conn:
            return bool(conn.execute(attention_table.update().where(
                attention_table.c.shop == shop,
                attention_table.c.direction == direction,
                attention_table.c.record == record,
            ).values(retry=True)).rowcount)

    def retries(self, shop: str, direction: str) -> list[str]:
        """Records a person asked to retry: the next run reads them again, whatever the
        cursor says."""
        with self._read("reading retries") as conn:
            rows = conn.execute(sa.select(attention_table.c.record).where(
                attention_table.c.shop == shop,
                attention_table.c.direction == direction,
                attention_table.c.retry == sa.true(),
            ))
            return [row.record for row in rows]

    def resolve_attention(self, shop: str, direction: str, record: str) -> bool:
        """A person dealt with it: off the list (it comes back if it fails again)."""
        return self.clear_attention(shop, direction, [record]) > 0

    def count_parked(self, shop: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(attention_table).where(
            attention_table.c.status == "parked"
        )
        if shop is not None:
            query = query.where(attention_table.c.shop == shop)
        with self._read("counting parked records") as conn:
            return int(conn.execute(query).scalar_one())

    # ---- webhooks and run requests -------------------------------------------------------

    def webhook_seen(self, webhook_id: str) -> bool:
        """Whether a webhook with this ``X-Shopify-Webhook-Id`` was handled already."""
        with self._read("reading webhooks") as conn:
            found = conn.execute(
                sa.select(webhook_table.c.webhook_id).where(webhook_table.c.webhook_id == webhook_id)
            ).first()
        return found is not None

    def note_webhook(
        self, webhook_id: str, shop: str, topic: str, *, keep_days: float = WEBHOOK_KEEP_DAYS
    ) -> bool:
        """Remember a handled webhook; False when it was noted before (a redelivery). Ids
        older than ``keep_days`` are forgotten (Shopify retries a delivery for 4 hours)."""
        now = self._clock()
        with self._write("noting a webhook", keep=(IntegrityError,)) as conn:
            conn.execute(
                webhook_table.delete().where(
                    webhook_table.c.received_at < now - timedelta(days=keep_days)
                )
            )
            try:
                with conn.begin_nested():
                    conn.execute(
                        webhook_table.insert().values(
                            webhook_id=webhook_id, shop=shop, topic=topic, received_at=now
                        )
                    )
            except IntegrityError:
                return False
        return True

    def request_run(self, shop: str, direction: str, reason: str = "") -> None:
        """Ask for a run of ``shop``'s ``direction`` soon (the scheduler debounces them)."""
        now = self._clock()
        with self._write("requesting a run", keep=(IntegrityError,)) as conn:
            changed = conn.execute(
                run_request_table.update()
                .where(
                    run_request_table.c.shop == shop,
                    run_request_table.c.direction == direction,
                )
                .values(last_at=now, count=run_request_table.c.count + 1, reason=reason[:200])
            ).rowcount
            if not changed:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            run_request_table.insert().values(
                                shop=shop, direction=direction, first_at=now, last_at=now,
                                count=1, reason=reason[:200],
                            )
                        )
                except IntegrityError:  # another receiver inserted it at the same moment
                    conn.execute(
                        run_request_table.update()
                        .where(
                            run_request_table.c.shop == shop,
                            run_request_table.c.direction == direction,
                        )
                        .values(last_at=now, count=run_request_table.c.count + 1)
                    )

    def run_requests(self, shop: str | None = None) -> list[RunRequest]:
        query = sa.select(run_request_table).order_by(
            run_request_table.c.first_at, run_request_table.c.shop, run_request_table.c.direction
        )
        if shop is not None:
            query = query.where(run_request_table.c.shop == shop)
        with self._read("reading run requests") as conn:
            rows = conn.execute(query).all()
        return [
            RunRequest(r.shop, r.direction, r.first_at, r.last_at, r._mapping["count"], r.reason)
            for r in rows
        ]

    def clear_run_request(self, shop: str, direction: str, upto: datetime) -> bool:
        """Drop the request once a run that started at ``upto`` or later covered it; a
        request made after ``upto`` stays for the next run. True when it was dropped."""
        with self._write("clearing a run request") as conn:
            dropped = conn.execute(
                run_request_table.delete().where(
                    run_request_table.c.shop == shop,
                    run_request_table.c.direction == direction,
                    run_request_table.c.last_at <= upto,
                )
            ).rowcount
        return bool(dropped)

    # ---- privacy ---------------------------------------------------------------------------

    def _customer_records(
        self, conn: Connection, shop: str, shopify_id: str
    ) -> tuple[str | None, list[str], Any]:
        """The customer's linked ERP number, the record keys naming it in the run log (its
        gid, and its ERP number), and the shop's runs (a subquery)."""
        erp_no = conn.execute(
            sa.select(link_table.c.erp_no).where(
                link_table.c.shop == shop, link_table.c.shopify_id == shopify_id
            )
        ).scalar()
        records = [shopify_id] + ([erp_no] if erp_no else [])
        runs = sa.select(run_table.c.id).where(run_table.c.shop == shop)
        return erp_no, records, runs

    def customer_data(self, shop: str, shopify_id: str) -> dict[str, Any]:
        """What the state holds about one Shopify customer (``customers/data_request``): its
        link, address links, and the run log's outcomes and intents of it and of its linked
        ERP customer."""
        with self._read("reading a customer's data") as conn:
            erp_no, records, runs = self._customer_records(conn, shop, shopify_id)
            addresses = conn.execute(
                sa.select(address_link_table.c.address_id, address_link_table.c.erp_no).where(
                    address_link_table.c.shop == shop,
                    address_link_table.c.shopify_id == shopify_id,
                )
            ).all()
            outcomes = conn.execute(
                sa.select(outcome_table).where(
                    outcome_table.c.record.in_(records), outcome_table.c.run_id.in_(runs)
                ).order_by(outcome_table.c.id)
            ).all()
            intents = conn.execute(
                sa.select(intent_table).where(
                    intent_table.c.record.in_(records), intent_table.c.run_id.in_(runs)
                ).order_by(intent_table.c.id)
            ).all()
        return {
            "shop": shop,
            "shopify_id": shopify_id,
            "erp_no": erp_no,
            "address_links": [{"address_id": a.address_id, "erp_no": a.erp_no} for a in addresses],
            "outcomes": [
                {"run_id": o.run_id, "record": o.record, "action": o.action, "status": o.status,
                 "reason": o.reason, "rules": list(o.rules or ()),
                 "recorded_at": as_utc(o.recorded_at).isoformat() if o.recorded_at else None}
                for o in outcomes
            ],
            "intents": [
                {"run_id": i.run_id, "record": i.record, "action": i.action, "status": i.status,
                 "target": i.target}
                for i in intents
            ],
        }

    def forget_customer(self, shop: str, shopify_id: str) -> dict[str, int]:
        """``customers/redact``: remove what the state holds about one Shopify customer (its
        link and address links, the outcomes and intents naming it or its linked ERP
        customer). The ERP customer itself is the merchant's record and stays. Returns the
        rows removed per kind."""
        with self._write("forgetting a customer") as conn:
            _erp_no, records, runs = self._customer_records(conn, shop, shopify_id)
            removed = {
                "outcomes": conn.execute(
                    outcome_table.delete().where(
                        outcome_table.c.record.in_(records), outcome_table.c.run_id.in_(runs)
                    )
                ).rowcount,
                "intents": conn.execute(
                    intent_table.delete().where(
                        intent_table.c.record.in_(records), intent_table.c.run_id.in_(runs)
                    )
                ).rowcount,
                "address_links": conn.execute(
                    address_link_table.delete().where(
                        address_link_table.c.shop == shop,
                        address_link_table.c.shopify_id == shopify_id,
                    )
                ).rowcount,
                "links": conn.execute(
                    link_table.delete().where(
                        link_table.c.shop == shop, link_table.c.shopify_id == shopify_id
                    )
                ).rowcount,
            }
        return removed


def _attention(row: Any) -> AttentionRecord:
    return AttentionRecord(
        shop=row.shop, direction=row.direction, record=row.record, status=row.status,
        failures=row.failures, permanent=bool(row.permanent), reason=row.reason,
        rules=tuple(row.rules or ()), source_version=row.source_version,
        target_version=row.target_version, label=row.label,
        first_failed_at=row.first_failed_at, last_failed_at=row.last_failed_at,
        parked_at=row.parked_at, last_run_id=row.last_run_id, retry=bool(row.retry),
    )


def _upsert(conn: Connection) -> Any:
    """The dialect's ``insert`` with ``on_conflict_do_update`` (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


#: a link's times and own-write marks (Link fields and link_table columns of the same name)
_LINK_STAMPS = (
    "last_import_at",
    "last_export_at",
    "own_write_shopify_updated_at",
    "own_write_erp_etag",
)


def _link_row(link: Link, now: datetime) -> dict[str, Any]:
    """A link_table row for :meth:`SqlStateStore._save_links`."""
    row: dict[str, Any] = {
        "shop": link.shop,
        "shopify_id": link.shopify_id,
        "erp_no": link.erp_no,
        "created_at": now,
        "updated_at": now,
    }
    for name in _LINK_STAMPS:
        row[name] = getattr(link, name)
    return row


def _linked_shopify_id(conn: Connection, link: Link) -> str:
    """Which Shopify customer holds ``link.erp_no`` (read after a failed statement: on
    PostgreSQL the transaction is aborted then, so this asks on a fresh connection)."""
    query = sa.select(link_table.c.shopify_id).where(
        link_table.c.shop == link.shop, link_table.c.erp_no == link.erp_no
    )
    try:
        with conn.engine.connect() as fresh:
            return str(fresh.execute(query).scalar() or "another Shopify customer")
    except DBAPIError:
        return "another Shopify customer"


def _erp_linked_elsewhere(link: Link, other: str) -> LinkConflictError:
    return LinkConflictError(
        f"ERP customer {link.erp_no} is already linked to Shopify customer {other} "
        f"in shop {link.shop}",
        record=link.shopify_id,
        reason_code="erp-customer-linked-elsewhere",
    )


def _link(row: Any, address_ids: tuple[str, ...]) -> Link:
    return Link(
        shop=row.shop,
        shopify_id=row.shopify_id,
        erp_no=row.erp_no,
        address_ids=address_ids,
        last_import_at=row.last_import_at,
        last_export_at=row.last_export_at,
        own_write_shopify_updated_at=row.own_write_shopify_updated_at,
        own_write_erp_etag=row.own_write_erp_etag,
    )


def _where_given(query: Any, table: sa.Table, **equal: str | None) -> Any:
    """``query`` kept to the rows of ``table`` whose columns equal the values given (a None
    value: any)."""
    for column, value in equal.items():
        if value is not None:
            query = query.where(table.c[column] == value)
    return query


def _run(row: Any) -> RunRecord:
    counts = row.counts
    if isinstance(counts, str):  # pragma: no cover - JSON stored as text by other tools
        counts = json.loads(counts)
    return RunRecord(
        id=int(row.id),
        shop=row.shop,
        direction=row.direction,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        counts=_counts(counts),
        error=row.error or "",
        holder=getattr(row, "holder", None) or "",
    )


def _counts(counts: Any) -> dict[str, int]:
    return {str(key): int(value) for key, value in (counts or {}).items()}


def open_store(url: str = DEFAULT_URL, **options: Any) -> SqlStateStore:
    """Open the state store at ``url`` (schema created when missing)."""
    return SqlStateStore.open(url, **options)


#: The brief's spelling: ``StateStore.open(url)``.
StateStore = SqlStateStore
