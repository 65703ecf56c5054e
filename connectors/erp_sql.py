"""The SQL ERP connector: a Business Central-shaped customer database through SQLAlchemy.

URLs: ``sqlite:///erp.db`` (a file; the default), ``postgresql+psycopg://user@host/db`` or any
SQLAlchemy URL. The schema is in :mod:`.erp_sql_schema`; ``custsync erp init`` creates it.

* :func:`open_reader` -> :class:`SqlErpReader` (``ErpReader``): no write methods; SQLite files
  are opened read-only. A customer row with a value it cannot read (garbage another program
  left in a SQLite column) is skipped and reported through ``problems()``.
* :func:`open_writer` -> :class:`SqlErpWriter` (``ErpWriter``): creates customers from a
  template with a number from the number series (allocated inside the create transaction,
  so concurrent creates never collide), updates only the given fields with an etag check,
  and finds a customer it created before a crash by its idempotency key. Per-record problems
  (unknown template, text too long, stale etag) come back as ``ErpWriteResult(ok=False)``,
  with ``refused`` when the record's own values are refused (parked at once);
  only database trouble raises (``RetriableError`` when the database is unreachable or locked,
  ``FatalError`` otherwise).

Etag semantics (kept compatible with Business Central's OData etags): the etag is an opaque
string that changes on every write of the record (here the row version); ``modified_at`` is
the UTC time of the last write (BC: ``lastModifiedDateTime``) and ``changed_since`` selects
records with ``modified_at`` strictly after it.
"""

from __future__ import annotations

import functools
import logging
import operator
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pycountry
import sqlalchemy as sa
from custsync.engine.decide import phones
from custsync.engine.errors import ConfigError, FatalError
from custsync.engine.model import (
    ERP_CUSTOMER_FIELDS,
    ERP_TEMPLATE_FIELDS,
    CompanyInfo,
    Country,
    CustomerTemplate,
    ErpCustomer,
    ErpReference,
    erp_code,
)
from custsync.engine.ports import ErpWriteResult, LoadRowProblem, ReadProgress, SourceProblem
from custsync.engine.run.state import (
    database_errors,
    display_url,
    enable_wal,
    lock_schema,
    make_engine,
    utcnow,
    write_transaction,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from . import erp_sql_schema as schema

__all__ = [
    "InitReport",
    "LoadProblem",
    "LoadReport",
    "LoadRow",
    "SqlErpReader",
    "SqlErpWriter",
    "open_reader",
    "open_writer",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_STREAM_BATCH = 500
#: customers between two progress reports of a read (:meth:`SqlErpReader.watch_reads`)
_REPORT_EVERY = 1000
#: customer rows checked and written at a time by ``load`` (inside its one transaction)
LOAD_BATCH = 5_000
_MAX_NUMBER_TRIES = 1000
_MAX_NUMBER_WINDOW = 4096  # numbers looked at per try when many are taken
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0", ""})


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


#: control characters refused in texts: C0 (but tab, line feed, carriage return), DEL, C1
_CONTROLS = frozenset((*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)))

#: key columns that are Business Central Code fields (trimmed, upper case)
_CODE_KEYS = frozenset({"no", "code"})


def _with_codes(row: LoadRow) -> LoadRow:
    """``row`` with its key normalised as a Code field (``g001`` and `` G001 `` are G001)."""
    if not any(isinstance(row.values.get(key), str) for key in _CODE_KEYS):
        return row
    values = {
        name: erp_code(value) if name in _CODE_KEYS and isinstance(value, str) else value
        for name, value in row.values.items()
    }
    return LoadRow(row.line, values)


def coerce_value(name: str, value: Any) -> tuple[Any, str | None]:
    """``(value, None)`` ready for the column ``name``, or ``(None, problem)``."""
    if name in schema.BOOLEAN_FIELDS:
        if isinstance(value, bool):
            return value, None
        text = "" if value is None else str(value).strip().lower()
        if text in _TRUE:
            return True, None
        if text in _FALSE:
            return False, None
        return None, "not a boolean (use true/false, yes/no or 1/0)"
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, f"must be text, not {type(value).__name__}"
    text = erp_code(str(value)) if name in _CODE_KEYS else str(value)
    if "\x00" in text:  # PostgreSQL refuses it for the whole batch; SQLite would keep it
        return None, "contains a NUL character (0x00)"
    if not text.isprintable():
        control = next((c for c in text if ord(c) in _CONTROLS), None)
        if control is not None:  # a terminal escape would reach whoever reads erp export
            return None, f"contains a control character (0x{ord(control):02x})"
    limit = schema.FIELD_LENGTHS.get(name)
    if limit is not None and len(text) > limit:
        return None, f"too long ({len(text)} characters, max {limit})"
    return text, None


#: the customer columns read, texts first, then the flags, ``modified_at``, ``row_version``;
#: flags are read raw (SQLite keeps any value in them: SQLAlchemy's Boolean would read the
#: text 'false' as true), so that :func:`_customer` can tell 0/1 from garbage
_TEXT_FIELDS: tuple[str, ...] = tuple(
    name for name in schema.CUSTOMER_WRITABLE if name not in schema.BOOLEAN_FIELDS
)
_FLAG_FIELDS: tuple[str, ...] = tuple(
    name for name in schema.CUSTOMER_WRITABLE if name in schema.BOOLEAN_FIELDS
)
_READ_FIELDS: tuple[str, ...] = (*_TEXT_FIELDS, *_FLAG_FIELDS, "modified_at", "row_version")
_N_CORE = len(ERP_CUSTOMER_FIELDS)
_N_TEXT = len(_TEXT_FIELDS)
_N_FLAGS = _N_TEXT + len(_FLAG_FIELDS)
#: the template fields of a read row, in their own order
_template_values = operator.itemgetter(*(_READ_FIELDS.index(name) for name in ERP_TEMPLATE_FIELDS))
_ONLY_TEXT = frozenset({str})
_BITS = frozenset({0, 1})
_READ_COLUMNS: tuple[Any, ...] = tuple(
    sa.type_coerce(schema.customer.c[name], sa.Integer).label(name)
    if name in schema.BOOLEAN_FIELDS
    else schema.customer.c[name]
    for name in _READ_FIELDS
)
_SELECT_CUSTOMERS = sa.select(*_READ_COLUMNS)
assert _READ_FIELDS[0] == "no" and _TEXT_FIELDS[:_N_CORE] == ERP_CUSTOMER_FIELDS


#: core fields whose values repeat from customer to customer (names, places): read as one
#: shared string per value (``sys.intern``), so a plan over a large ERP holds each distinct
#: value once, not a copy per row; numbers, phones and e-mails are not shared
_SHARED_CORE = tuple(
    index
    for index, name in enumerate(ERP_CUSTOMER_FIELDS)
    if name
    in ("name", "name_2", "contact", "address", "address_2", "city", "post_code", "county", "country_code")
)


@functools.lru_cache(maxsize=4096)
def _shared_extra(values: tuple[Any, ...]) -> Mapping[str, Any]:
    """The template fields of a row as a mapping shared by every customer with the same
    values (templates give most customers the same few combinations); read-only."""
    extra: dict[str, Any] = dict(zip(ERP_TEMPLATE_FIELDS, values, strict=True))
    for name in _FLAG_FIELDS:
        extra[name] = bool(extra[name])
    return extra


def _customer(values: Sequence[Any]) -> ErpCustomer | None:
    """The customer of a row of :data:`_SELECT_CUSTOMERS`; None when a value has the wrong
    type (SQLite keeps what another program writes: a BLOB in a text column, a text in a flag
    or the row version), :func:`_value_problem` says which. One cheap check per row."""
    texts = values[:_N_TEXT]
    flags = values[_N_TEXT:_N_FLAGS]
    version = values[-1]
    if not (
        _ONLY_TEXT.issuperset(map(type, texts))
        and _BITS.issuperset(flags)
        and type(version) is int
    ):
        return None
    core = list(texts[:_N_CORE])
    for index in _SHARED_CORE:
        core[index] = sys.intern(core[index])
    extra = _shared_extra(_template_values(values))
    return ErpCustomer(*core, extra, values[-2], str(version))


def _value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` read from the customer column ``name`` is unusable, or None."""
    if name in schema.BOOLEAN_FIELDS:
        return None if _BITS.issuperset((value,)) else "is not a boolean (0 or 1)"
    if name == "row_version":
        return None if type(value) is int else "is not an integer"
    if name == "modified_at":
        return None if isinstance(value, datetime) else "is not a date-time"
    if isinstance(value, str):
        return None
    if isinstance(value, bytes):
        return "holds binary data (a BLOB), not text"
    return "is not text"


def _read_problem(name: str) -> str:
    """Why the column ``name`` could not be read at all (the driver or the type raised)."""
    if name == "modified_at":
        return "is not a date-time"
    if name in _TEXT_FIELDS:
        return "is not valid UTF-8 text"
    return "cannot be read"


#: what reading an unreadable value raises (checked further by :func:`_unreadable_value`)
_READ_ERRORS = (ValueError, TypeError, OverflowError, DBAPIError)


def _unreadable_value(exc: Exception) -> bool:
    """True when ``exc`` comes from a value the driver or a column type cannot convert (not
    from the database itself: those keep propagating): SQLite's "Could not decode to UTF-8",
    a ``modified_at`` text that is no date-time, a PostgreSQL ``infinity`` timestamp."""
    if not isinstance(exc, DBAPIError):
        return True
    return isinstance(exc, DataError) or "could not decode" in str(exc.orig).lower()


def _template(row: Any) -> CustomerTemplate:
    values = row._mapping
    defaults = {
        name: values[name] for name in ERP_TEMPLATE_FIELDS if values[name] not in ("", None, False)
    }
    return CustomerTemplate(code=values["code"], description=values["description"], fields=defaults)


class _Refused(Exception):
    """A per-record refusal inside a write transaction (rolls it back). ``for_good``: the
    record's own values are refused (too long, unknown code or field): the same write fails
    until the record changes (``ErpWriteResult.refused``). Not for a record changed since it
    was read, nor for the database's setup (number series, template), which a fix outside
    the record clears."""

    def __init__(self, message: str, *, for_good: bool = True) -> None:
        super().__init__(message)
        self.for_good = for_good


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


class SqlErpReader:
    """``ErpReader`` over the SQL ERP schema. Use as a context manager or call :meth:`close`."""

    def __init__(self, engine: Engine, *, check_schema: bool = True) -> None:
        self._engine = engine
        self._url = engine.url
        self._problems: list[SourceProblem] = []
        self._watch: Callable[[ReadProgress], None] | None = None
        if check_schema:
            try:
                self._check_schema()
            except BaseException:
                engine.dispose()
                raise

    @property
    def url(self) -> str:
        """The database URL without its password."""
        return display_url(self._url)

    def __enter__(self) -> SqlErpReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine.dispose()

    def watch_reads(self, callback: Callable[[ReadProgress], None] | None) -> None:
        """Tell ``callback`` how reads of customers come along: rows read of how many."""
        self._watch = callback

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        with database_errors(what, self._url), self._engine.connect() as conn:
            yield conn

    def _check_schema(self) -> None:
        hint = f"run `custsync erp init --erp {self.url}` first"
        try:
            with self._read("opening the ERP database") as conn:
                version = conn.execute(sa.select(schema.schema_table.c.version)).scalar()
        except FatalError as exc:
            if "no such table" in exc.message or "does not exist" in exc.message:
                raise ConfigError(
                    f"ERP database {self.url} has no custsync schema: {hint}"
                ) from None
            raise
        if version is None:
            raise ConfigError(f"ERP database {self.url} has no custsync schema: {hint}")
        if version > schema.SCHEMA_VERSION:
            raise FatalError(
                f"ERP database {self.url} has schema version {version}; this custsync knows "
                f"up to {schema.SCHEMA_VERSION}: upgrade custsync"
            )

    # ---- ErpReader ---------------------------------------------------------------------

    def reference(self) -> ErpReference:
        """Countries (by code), the company and the customer templates (by code)."""
        with self._read("reading ERP reference data") as conn:
            countries = tuple(
                Country(row.code, row.iso_code, row.name)
                for row in conn.execute(sa.select(schema.country).order_by(schema.country.c.code))
            )
            row = conn.execute(sa.select(schema.company).where(schema.company.c.id == 1)).first()
            company = CompanyInfo(row.name, row.country_code) if row else CompanyInfo()
            templates = tuple(
                _template(t)
                for t in conn.execute(
                    sa.select(schema.customer_template).order_by(schema.customer_template.c.code)
                )
            )
        return ErpReference(countries=countries, company=company, templates=templates)

    def iter_customers(self, changed_since: datetime | None = None) -> Iterator[ErpCustomer]:
        """Customers in number order, streamed in batches; with ``changed_since`` only those
        whose ``modified_at`` is after it. A row with an unreadable value is skipped and
        reported (:meth:`problems`); every other row is read."""
        conditions = []
        if changed_since is not None:
            if changed_since.tzinfo is None:
                raise ValueError("changed_since must be timezone-aware (UTC)")
            conditions.append(schema.customer.c.modified_at > changed_since)
        with self._read("reading ERP customers") as conn:
            watch = self._watch
            if watch is None:
                yield from self._stream(conn, conditions)
                return
            total = conn.execute(
                sa.select(sa.func.count()).select_from(schema.customer).where(*conditions)
            ).scalar()
            done = 0
            watch(ReadProgress("customers", 0, "rows", total))
            for customer in self._stream(conn, conditions):
                done += 1
                if done % _REPORT_EVERY == 0:
                    watch(ReadProgress("customers", done, "rows", total))
                yield customer
            watch(ReadProgress("customers", done, "rows", total))

    def _stream(self, conn: Connection, conditions: Sequence[Any]) -> Iterator[ErpCustomer]:
        """One streaming query while every value converts; a value the driver or a column
        type cannot convert fails its whole batch, so the rest is then read by key, and the
        batches that fail row by row (:meth:`_by_keys`)."""
        no = schema.customer.c.no
        last: Any = None
        result = conn.execution_options(yield_per=_STREAM_BATCH).execute(
            _SELECT_CUSTOMERS.where(*conditions).order_by(no)
        )
        try:
            for row in result:
                last = row[0]  # raw: SQLite orders a BLOB number after the texts, as here
                customer = _customer(row)
                if customer is None:
                    self._report_values(row)
                else:
                    yield customer
            return
        except _READ_ERRORS as exc:
            if not _unreadable_value(exc):
                raise
        finally:
            result.close()
        rest = [*conditions] if last is None else [*conditions, no > last]
        yield from self._by_keys(conn, sa.and_(sa.true(), *rest))

    def get_customer(self, no: str) -> ErpCustomer | None:
        """The customer numbered ``no``; None also when its row is unreadable (reported)."""
        return self._one(schema.customer.c.no == no)

    def find_by_idempotency_key(self, key: str) -> ErpCustomer | None:
        """The customer created with this idempotency key (e.g. the Shopify gid), if any."""
        if not key:
            return None
        return self._one(schema.customer.c.idempotency_key == key)

    def _one(self, condition: Any) -> ErpCustomer | None:
        with self._read("reading an ERP customer") as conn:
            found = self._where(conn, condition)
        return found[0] if found else None

    # ---- unreadable rows -------------------------------------------------------------------
    # SQLite does not enforce column types: another program can leave a text that is no
    # date-time in modified_at, a text in a flag or the row version, a BLOB or invalid UTF-8 in
    # a text column. Such a row is skipped and reported (not read with the field empty: an
    # emptied name or address would be exported as a change); the other rows are read.

    def _key(self) -> Any:
        """What identifies a row even when its number is unreadable (SQLite: the rowid)."""
        if self._engine.dialect.name == "sqlite":
            return sa.literal_column("rowid", sa.Integer)
        return schema.customer.c.no

    def _where(self, conn: Connection, condition: Any) -> list[ErpCustomer]:
        """The readable customers matching ``condition`` (a few: fetched at once), in number
        order."""
        try:
            rows = conn.execute(
                _SELECT_CUSTOMERS.where(condition).order_by(schema.customer.c.no)
            ).all()
        except _READ_ERRORS as exc:
            if not _unreadable_value(exc):
                raise
            return list(self._by_keys(conn, condition))
        return self._convert(rows)

    def _by_keys(self, conn: Connection, condition: Any) -> Iterator[ErpCustomer]:
        """The customers matching ``condition`` in number order, read by key in chunks; a
        chunk that cannot be read is read row by row, an unreadable row is reported."""
        key = self._key()
        keys = list(
            conn.execute(
                sa.select(key)
                .select_from(schema.customer)
                .where(condition)
                .order_by(schema.customer.c.no)
            ).scalars()
        )
        for chunk in _chunks(keys):
            try:
                rows = conn.execute(
                    _SELECT_CUSTOMERS.where(key.in_(chunk)).order_by(schema.customer.c.no)
                ).all()
            except _READ_ERRORS as exc:
                if not _unreadable_value(exc):
                    raise
            else:
                yield from self._convert(rows)
                continue
            for one in chunk:
                try:
                    row = conn.execute(_SELECT_CUSTOMERS.where(key == one)).first()
                except _READ_ERRORS as exc:
                    if not _unreadable_value(exc):
                        raise
                    self._report_key(conn, key, one)
                    continue
                if row is not None:
                    yield from self._convert([row])

    def _convert(self, rows: Sequence[Any]) -> list[ErpCustomer]:
        customers = []
        for row in rows:
            customer = _customer(row)
            if customer is None:
                self._report_values(row)
            else:
                customers.append(customer)
        return customers

    def _report_values(self, values: Sequence[Any]) -> None:
        """Report a row that was read but has values of the wrong type."""
        unreadable = {
            name: problem
            for name, value in zip(_READ_FIELDS, values, strict=True)
            if (problem := _value_problem(name, value)) is not None
        }
        self._report(values[0], unreadable, None)

    def _report_key(self, conn: Connection, key: Any, one: Any) -> None:
        """Report a row that cannot be read, finding its bad columns one by one."""
        unreadable: dict[str, str] = {}
        no: Any = None
        for name, column in zip(_READ_FIELDS, _READ_COLUMNS, strict=True):
            try:
                value = conn.execute(sa.select(column).where(key == one)).scalar()
            except _READ_ERRORS as exc:
                if not _unreadable_value(exc):
                    raise
                unreadable[name] = _read_problem(name)
                continue
            if name == "no":
                no = value
            problem = _value_problem(name, value)
            if problem is not None:
                unreadable[name] = problem
        self._report(no, unreadable, one)

    def _report(self, no: Any, unreadable: Mapping[str, str], key: Any) -> None:
        """Add the problem of a skipped row (the values are not shown: they may be personal
        data)."""
        record = no if isinstance(no, str) and "no" not in unreadable else ""
        if record:
            location = f"{schema.customer.name} {record}"
        elif key is not None and self._engine.dialect.name == "sqlite":
            location = f"{schema.customer.name} rowid {key}"
        else:
            location = schema.customer.name
        columns = "; ".join(f"column {name} {problem}" for name, problem in unreadable.items())
        self._problems.append(
            SourceProblem(
                "erp_customer",
                location,
                f"{columns or 'a value cannot be read'}; skipped until it is corrected",
                record,
            )
        )
        log.info("ERP customer skipped: %s: %s", location, columns)

    def candidates(
        self,
        *,
        emails: Sequence[str] = (),
        phone_keys: Sequence[str] = (),
        post_codes: Sequence[str] = (),
        nos: Sequence[str] = (),
    ) -> list[ErpCustomer] | None:
        """The customers an incremental sync's changed records can match, in number order:
        those with one of the e-mails (ignoring case), phone suffix keys or post codes, and
        those numbered ``nos``. None when this database has no lookup keys yet (created by
        an older custsync: `custsync erp init` builds them); the caller then reads all."""
        table, keys = schema.customer, schema.customer_key
        wanted: set[str] = {no for no in nos if no}
        with self._read("reading ERP customers by key") as conn:
            if not sa.inspect(conn).has_table(keys.name):
                return None
            has_keys = conn.execute(sa.select(keys.c.no).limit(1)).first() is not None
            if not has_keys and conn.execute(sa.select(table.c.no).limit(1)).first():
                return None
            for kind, values in (
                ("email", sorted({e.strip().casefold() for e in emails if e.strip()})),
                ("phone", sorted(set(phone_keys) - {""})),
                ("post_code", sorted({p.strip() for p in post_codes if p.strip()})),
            ):
                for chunk in _chunks(values):
                    wanted.update(
                        conn.execute(
                            sa.select(keys.c.no).where(keys.c.kind == kind, keys.c.key.in_(chunk))
                        ).scalars()
                    )
            found: list[ErpCustomer] = []
            for chunk in _chunks(sorted(wanted)):
                found.extend(self._where(conn, table.c.no.in_(chunk)))
        return sorted(found, key=lambda customer: customer.no)

    def problems(self) -> Sequence[SourceProblem]:
        """``ReportsProblems``: the customer rows skipped so far as unreadable (every read
        that meets one reports it again)."""
        return tuple(self._problems)

    def count_customers(self) -> int:
        with self._read("counting ERP customers") as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(schema.customer)).scalar_one()
            )


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadRow:
    """One data row of a load file: its line number and its values by column."""

    line: int
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LoadProblem:
    line: int
    column: str
    message: str


@dataclass(slots=True)
class LoadReport:
    """What ``load`` did: nothing at all when ``problems`` is not empty."""

    kind: str
    problems: list[LoadProblem] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0


@dataclass(frozen=True, slots=True)
class InitReport:
    countries_added: int
    template_added: bool
    series: str


class SqlErpWriter(SqlErpReader):
    """``ErpWriter`` over the SQL ERP schema, plus the admin operations of ``custsync erp``."""

    def __init__(
        self,
        engine: Engine,
        *,
        number_series: str = schema.CUSTOMER_SERIES,
        clock: Callable[[], datetime] = utcnow,
        check_schema: bool = True,
    ) -> None:
        super().__init__(engine, check_schema=check_schema)
        self._series = number_series
        self._clock = clock

    @contextmanager
    def _write(self, what: str, keep: tuple[type[DBAPIError], ...] = ()) -> Iterator[Connection]:
        with (
            database_errors(what, self._url, keep=keep),
            write_transaction(self._engine) as conn,
        ):
            yield conn

    # ---- ErpWriter ---------------------------------------------------------------------

    def create_customer(
        self, fields: Mapping[str, Any], template_code: str | None, idempotency_key: str
    ) -> ErpWriteResult:
        """Create a customer: the template's defaults, then ``fields``; the number is
        ``fields["no"]`` if given, else the next of the number series. A customer already
        created with ``idempotency_key`` is returned as is (ok, nothing written)."""
        try:
            with self._write("creating an ERP customer", keep=(IntegrityError,)) as conn:
                if idempotency_key:
                    existing = conn.execute(
                        sa.select(schema.customer.c.no, schema.customer.c.row_version).where(
                            schema.customer.c.idempotency_key == idempotency_key
                        )
                    ).first()
                    if existing is not None:
                        return ErpWriteResult(
                            True,
                            existing.no,
                            "already created (same idempotency key)",
                            str(existing.row_version),
                        )
                values = self._customer_values(conn, fields)
                if template_code:
                    template = conn.execute(
                        sa.select(schema.customer_template).where(
                            schema.customer_template.c.code == template_code
                        )
                    ).first()
                    if template is None:
                        raise _Refused(
                            f"unknown customer template {template_code!r}", for_good=False
                        )
                    defaults = {name: template._mapping[name] for name in ERP_TEMPLATE_FIELDS}
                    values = {**defaults, **values}
                no = values.pop("no", "") or self._next_number(conn)
                if _exists(conn, no):
                    raise _Refused(f"customer {no} already exists")
                conn.execute(
                    schema.customer.insert().values(
                        no=no,
                        **values,
                        template_code=template_code or "",
                        idempotency_key=idempotency_key or None,
                        modified_at=self._clock(),
                        row_version=1,
                    )
                )
                _refresh_keys(conn, [no])
                return ErpWriteResult(True, no, "created", "1")
        except _Refused as exc:
            return ErpWriteResult(False, message=str(exc), refused=exc.for_good)
        except IntegrityError:
            # a concurrent create with the same idempotency key or number won the race
            found = self.find_by_idempotency_key(idempotency_key)
            if found is not None:
                return ErpWriteResult(
                    True, found.no, "already created (same idempotency key)", found.etag
                )
            return ErpWriteResult(False, message="customer number already taken, retry")

    def update_customer(
        self, no: str, changes: Mapping[str, Any], expected_etag: str | None = None
    ) -> ErpWriteResult:
        """Write only ``changes`` (bumping the row version and ``modified_at``); refused when
        ``expected_etag`` is given and the customer changed since."""
        try:
            with self._write("updating an ERP customer") as conn:
                if "no" in changes and changes["no"] != no:
                    raise _Refused("the customer number cannot be changed")
                values = self._customer_values(
                    conn, {k: v for k, v in changes.items() if k != "no"}
                )
                table = schema.customer
                current = conn.execute(
                    sa.select(table.c.row_version).where(table.c.no == no)
                ).scalar()
                if current is None:
                    raise _Refused(f"customer {no} does not exist")
                if type(current) is not int:  # written by another program (SQLite)
                    raise _Refused(f"customer {no} has a row_version that is not an integer")
                if expected_etag is not None and expected_etag != str(current):
                    raise _Refused(
                        f"customer {no} was changed in the ERP since it was read "
                        f"(etag {current}, expected {expected_etag})",
                        for_good=False,
                    )
                if not values:
                    return ErpWriteResult(True, no, "nothing to change", str(current))
                new_version = conn.execute(
                    table.update()
                    .where(table.c.no == no, table.c.row_version == current)
                    .values(**values, row_version=current + 1, modified_at=self._clock())
                    .returning(table.c.row_version)
                ).scalar()
                if new_version is None:  # pragma: no cover - the row is locked by the tx
                    raise _Refused(f"customer {no} was changed concurrently", for_good=False)
                if {"email", "phone", "post_code"} & set(values):
                    _refresh_keys(conn, [no])
                return ErpWriteResult(True, no, "updated", str(new_version))
        except _Refused as exc:
            return ErpWriteResult(False, no, str(exc), refused=exc.for_good)

    def _customer_values(self, conn: Connection, fields: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(schema.CUSTOMER_WRITABLE))
        if unknown:
            raise _Refused(f"unknown customer field(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        problems = []
        for name, raw in fields.items():
            value, problem = coerce_value(name, raw)
            if problem:
                problems.append(f"{name}: {problem}")
            values[name] = value
        if problems:
            raise _Refused("; ".join(problems))
        country_code = values.get("country_code")
        if country_code and country_code not in _country_codes(conn):
            raise _Refused(f"country_code: unknown country/region code {country_code!r}")
        return values

    def _next_number(self, conn: Connection) -> str:
        return self._next_numbers(conn, 1)[0]

    def _next_numbers(self, conn: Connection, count: int) -> list[str]:
        """The next ``count`` free numbers of the series, skipping numbers already used.

        The counter moves inside the caller's transaction: the series row stays locked until
        commit (concurrent creates queue) and a rollback gives the numbers back. Numbers
        loaded from a file may fill long stretches of the series: each try looks twice as far
        ahead as the last (one query per window, not one per taken number) and the counter
        ends at the last number handed out."""
        series = schema.number_series
        found: list[str] = []
        window = count
        for _ in range(_MAX_NUMBER_TRIES):
            need = count - len(found)
            if need <= 0:
                return found
            window = min(max(window, need), max(need, _MAX_NUMBER_WINDOW))
            row = conn.execute(
                series.update()
                .where(series.c.code == self._series)
                .values(last_no=series.c.last_no + window)
                .returning(series.c.prefix, series.c.width, series.c.last_no)
            ).first()
            if row is None:
                raise _Refused(
                    f"number series {self._series!r} does not exist (run custsync erp init)",
                    for_good=False,
                )
            candidates = [
                (n, f"{row.prefix}{n:0{row.width}d}")
                for n in range(row.last_no - window + 1, row.last_no + 1)
            ]
            taken = _existing_keys(conn, schema.customer.c.no, [no for _, no in candidates])
            free = [(n, no) for n, no in candidates if no not in taken][:need]
            if free and len(free[-1][1]) > schema.FIELD_LENGTHS["no"]:
                raise _Refused(
                    f"number series {self._series!r} is exhausted ({free[-1][1]} too long)",
                    for_good=False,
                )
            if len(free) == need and free[-1][0] < row.last_no:
                conn.execute(  # give back the rest of the window
                    series.update()
                    .where(series.c.code == self._series)
                    .values(last_no=free[-1][0])
                )
            found += [no for _, no in free]
            window *= 2
        raise _Refused(f"number series {self._series!r}: no free number found", for_good=False)

    # ---- admin: custsync erp init / load ----------------------------------------------

    def initialize(
        self,
        *,
        with_defaults: bool = False,
        number_prefix: str | None = None,
        number_width: int | None = None,
        company_name: str | None = None,
        company_country: str | None = None,
    ) -> InitReport:
        """Create missing tables and seed countries and the number series (idempotent: never
        overwrites rows, except the series' prefix/width and the company when given)."""
        with database_errors("creating the ERP schema", self._url):
            enable_wal(self._engine)
            with write_transaction(self._engine) as conn:  # see SqlStateStore.create_all
                lock_schema(conn, "erp")
                schema.metadata.create_all(conn)
        with self._write("seeding the ERP database") as conn:
            lock_schema(conn, "erp")  # processes seeding at once: one after the other
            version = conn.execute(sa.select(schema.schema_table.c.version)).scalar()
            if version is None:
                conn.execute(
                    schema.schema_table.insert().values(id=1, version=schema.SCHEMA_VERSION)
                )
            existing = _country_codes(conn)
            added = 0
            for code, iso in schema.SEED_COUNTRIES:
                if code not in existing:
                    found = pycountry.countries.get(alpha_2=iso)
                    name = getattr(found, "name", iso)[:50]
                    conn.execute(schema.country.insert().values(code=code, iso_code=iso, name=name))
                    added += 1
            series = schema.number_series
            row = conn.execute(sa.select(series).where(series.c.code == self._series)).first()
            if row is None:
                conn.execute(
                    series.insert().values(
                        code=self._series,
                        prefix="C" if number_prefix is None else number_prefix,
                        width=5 if number_width is None else number_width,
                        last_no=0,
                    )
                )
            elif number_prefix is not None or number_width is not None:
                conn.execute(
                    series.update()
                    .where(series.c.code == self._series)
                    .values(
                        prefix=row.prefix if number_prefix is None else number_prefix,
                        width=row.width if number_width is None else number_width,
                    )
                )
            if company_name is not None or company_country is not None:
                current = conn.execute(sa.select(schema.company)).first()
                values = {
                    "name": (current.name if current else "")
                    if company_name is None
                    else company_name,
                    "country_code": (current.country_code if current else "")
                    if company_country is None
                    else company_country,
                }
                if current is None:
                    conn.execute(schema.company.insert().values(id=1, **values))
                else:
                    conn.execute(schema.company.update().values(**values))
            template_added = False
            if with_defaults:
                template = schema.customer_template
                code = str(schema.DEFAULT_TEMPLATE["code"])
                if (
                    conn.execute(sa.select(template.c.code).where(template.c.code == code)).first()
                    is None
                ):
                    conn.execute(template.insert().values(**schema.DEFAULT_TEMPLATE))
                    template_added = True
            keys = schema.customer_key
            if conn.execute(sa.select(keys.c.no).limit(1)).first() is None:
                # a database from before lookup keys existed: build them once
                all_nos = list(conn.execute(sa.select(schema.customer.c.no)).scalars())
                _refresh_keys(conn, all_nos)
        return InitReport(added, template_added, self._series)

    def load(
        self,
        kind: str,
        rows: Iterable[LoadRow | LoadRowProblem | tuple[int, Mapping[str, str]]],
        *,
        update: bool = False,
        check_only: bool = False,
        batch_size: int = LOAD_BATCH,
        on_rows: Callable[[int], None] | None = None,
    ) -> LoadReport:
        """Validate every row and write them in one transaction: all of them, or nothing.

        ``kind`` is ``customers``, ``countries`` or ``templates``; rows (``LoadRow`` or
        ``(line, values)``) carry only the columns of the file (an update writes only those).
        An existing key is a problem unless ``update``. A customer row with a blank ``no`` gets
        the next number of the series. ``check_only`` reports the problems and writes nothing.
        A ``LoadRowProblem`` among the rows is one the file's reader found (a malformed row):
        it is reported with the others and refuses the load.

        Customers are read, checked and written ``batch_size`` rows at a time inside the one
        transaction, so memory holds a batch, not the file (plus each number's first line, to
        report duplicates, and the rows without a number, numbered at the end so that the
        series skips the numbers the file gives). ``on_rows(count)`` follows the progress.
        """
        if kind not in schema.LOAD_COLUMNS:
            raise ConfigError(f"unknown load kind {kind!r} (customers, countries or templates)")
        report = LoadReport(kind)
        checked = _load_rows(rows, report, on_rows)
        try:
            with self._write(f"loading {kind}") as conn:
                if kind == "customers":
                    self._load_customers(conn, checked, update, report, check_only, batch_size)
                elif kind == "countries":
                    self._load_keyed(conn, schema.country, list(checked), update, report)
                else:
                    self._load_keyed(conn, schema.customer_template, list(checked), update, report)
                if report.problems or check_only:
                    raise _Refused("rolled back")
        except _Refused:
            report.inserted = report.updated = 0
        return report

    def _check_row(
        self, row: LoadRow, columns: Sequence[str], report: LoadReport
    ) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        ok = True
        for name, raw in row.values.items():
            if name not in columns:
                report.problems.append(LoadProblem(row.line, name, "unknown column"))
                ok = False
                continue
            value, problem = coerce_value(name, raw)
            if problem:
                report.problems.append(LoadProblem(row.line, name, problem))
                ok = False
            values[name] = value
        return values if ok else None

    def _load_customers(
        self,
        conn: Connection,
        rows: Iterable[LoadRow],
        update: bool,
        report: LoadReport,
        check_only: bool,
        batch_size: int,
    ) -> None:
        table = schema.customer
        columns = schema.LOAD_COLUMNS["customers"]
        countries = _country_codes(conn)
        seen: dict[str, int] = {}
        blank: list[dict[str, Any]] = []
        now = self._clock()
        for batch in _batches(rows, batch_size):
            wanted = [r.values.get("no", "") for r in batch if r.values.get("no")]
            existing = _existing_keys(conn, table.c.no, [no for no in wanted if no not in seen])
            checked: list[dict[str, Any]] = []
            for row in batch:
                values = self._check_row(row, columns, report)
                no = row.values.get("no", "")
                if no:
                    if no in seen:
                        report.problems.append(
                            LoadProblem(row.line, "no", f"customer {no} is also on line {seen[no]}")
                        )
                    elif no in existing and not update:
                        report.problems.append(
                            LoadProblem(
                                row.line,
                                "no",
                                f"customer {no} already exists (use --update to update it)",
                            )
                        )
                    seen.setdefault(no, row.line)
                country_code = row.values.get("country_code", "")
                if country_code and country_code not in countries:
                    report.problems.append(
                        LoadProblem(
                            row.line,
                            "country_code",
                            f"unknown country/region code {country_code!r}",
                        )
                    )
                if values is not None:
                    checked.append(values)
            if report.problems or check_only:
                continue  # nothing more is written (it is rolled back); the rest is checked
            updates = [v for v in checked if v.get("no", "") in existing]
            explicit = [v for v in checked if v.get("no", "") and v["no"] not in existing]
            blank.extend(v for v in checked if not v.get("no", ""))
            _execute_grouped(
                conn,
                table.update()
                .where(table.c.no == sa.bindparam("_key"))
                .values(row_version=table.c.row_version + 1, modified_at=now),
                [
                    {**{k: v for k, v in values.items() if k != "no"}, "_key": values["no"]}
                    for values in updates
                ],
            )
            _execute_grouped(
                conn,
                table.insert(),
                [{**values, "modified_at": now, "row_version": 1} for values in explicit],
            )
            _refresh_keys(conn, [v["no"] for v in updates] + [v["no"] for v in explicit])
            report.updated += len(updates)
            report.inserted += len(explicit)
        if report.problems or check_only or not blank:
            return
        # the rows without a number last, so that the series skips every number of the file
        try:
            numbers = self._next_numbers(conn, len(blank))
        except _Refused as exc:
            report.problems.append(LoadProblem(0, "no", str(exc)))
            return
        numbered = [
            {**values, "no": no, "modified_at": now, "row_version": 1}
            for values, no in zip(blank, numbers, strict=True)
        ]
        for start in range(0, len(numbered), batch_size):
            _execute_grouped(conn, table.insert(), numbered[start : start + batch_size])
        _refresh_keys(conn, numbers)
        report.inserted += len(blank)

    def _load_keyed(
        self,
        conn: Connection,
        table: sa.Table,
        rows: Sequence[LoadRow],
        update: bool,
        report: LoadReport,
    ) -> None:
        key = table.c.code
        columns = [c.name for c in table.columns]
        noun = "country" if table is schema.country else "template"
        existing = _existing_keys(conn, key, [r.values.get("code", "") for r in rows])
        seen: dict[str, int] = {}
        checked = []
        for row in rows:
            values = self._check_row(row, columns, report)
            if values is not None and not _fits(table, row, values, report):
                values = None
            code = row.values.get("code", "")
            if not code:
                report.problems.append(LoadProblem(row.line, "code", "missing (required)"))
            elif code in seen:
                report.problems.append(
                    LoadProblem(row.line, "code", f"{noun} {code} is also on line {seen[code]}")
                )
            elif code in existing and not update:
                report.problems.append(
                    LoadProblem(
                        row.line,
                        "code",
                        f"{noun} {code} already exists (use --update to update it)",
                    )
                )
            seen.setdefault(code, row.line)
            iso = row.values.get("iso_code", "")
            if table is schema.country and iso and pycountry.countries.get(alpha_2=iso) is None:
                report.problems.append(
                    LoadProblem(row.line, "iso_code", f"{iso!r} is not an ISO 3166-1 alpha-2 code")
                )
            if values is not None:
                checked.append(values)
        if report.problems:
            return
        for values in checked:
            code = values["code"]
            if code in existing:
                changes = {k: v for k, v in values.items() if k != "code"}
                if changes:
                    conn.execute(table.update().where(key == code).values(**changes))
                report.updated += 1
            else:
                conn.execute(table.insert().values(**values))
                report.inserted += 1


def _fits(table: sa.Table, row: LoadRow, values: Mapping[str, Any], report: LoadReport) -> bool:
    """Texts within the table's own column lengths (a country's code and name are shorter
    than a customer's): PostgreSQL refuses the whole load naming no row, SQLite keeps them."""
    ok = True
    for name, value in values.items():
        limit = getattr(table.c[name].type, "length", None)
        if isinstance(value, str) and limit is not None and len(value) > limit:
            problem = f"too long ({len(value)} characters, max {limit})"
            report.problems.append(LoadProblem(row.line, name, problem))
            ok = False
    return ok


def _load_rows(
    rows: Iterable[LoadRow | LoadRowProblem | tuple[int, Mapping[str, str]]],
    report: LoadReport,
    on_rows: Callable[[int], None] | None,
) -> Iterator[LoadRow]:
    """The rows as LoadRows; problems the file's reader found go to the report."""
    for row in rows:
        if isinstance(row, LoadRowProblem):
            report.problems.append(LoadProblem(row.line, row.column, row.message))
            continue
        yield _with_codes(row if isinstance(row, LoadRow) else LoadRow(*row))
        if on_rows is not None:
            on_rows(1)


def _batches(rows: Iterable[LoadRow], size: int) -> Iterator[list[LoadRow]]:
    batch: list[LoadRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _execute_grouped(conn: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """executemany, grouped by the set of columns (each group compiles once)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        conn.execute(statement, group)


_KEY_CHUNK = 500


def _chunks(values: Sequence[T], size: int = _KEY_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def customer_keys(email: str, phone: str, post_code: str) -> list[tuple[str, str]]:
    """The lookup keys of a customer, as the engine's World indexes them: the whole e-mail
    ignoring case, the phone's digit suffixes, the post code."""
    keys: list[tuple[str, str]] = []
    if email.strip():
        keys.append(("email", email.strip().casefold()[:255]))
    keys.extend(("phone", key) for key in sorted(phones.suffix_keys(phone)))
    if post_code.strip():
        keys.append(("post_code", post_code.strip()))
    return keys


def _refresh_keys(conn: Connection, nos: Sequence[str]) -> None:
    """Rewrite the lookup keys of customers ``nos`` (inside the writing transaction)."""
    table, keys = schema.customer, schema.customer_key
    for chunk in _chunks(sorted(set(nos))):
        conn.execute(keys.delete().where(keys.c.no.in_(chunk)))
        rows = conn.execute(
            sa.select(table.c.no, table.c.email, table.c.phone, table.c.post_code).where(
                table.c.no.in_(chunk)
            )
        )
        inserts = [
            {"no": row.no, "kind": kind, "key": key}
            for row in rows
            for kind, key in customer_keys(row.email, row.phone, row.post_code)
        ]
        if inserts:
            conn.execute(keys.insert(), inserts)


def _exists(conn: Connection, no: str) -> bool:
    return (
        conn.execute(sa.select(schema.customer.c.no).where(schema.customer.c.no == no)).first()
        is not None
    )


def _country_codes(conn: Connection) -> set[str]:
    return set(conn.execute(sa.select(schema.country.c.code)).scalars())


def _existing_keys(conn: Connection, column: Any, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    wanted = sorted({k for k in keys if k})
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
    return found


# --------------------------------------------------------------------------------------------
# Factories (entry points ``custsync.erp_connectors``: sqlite, postgresql)
# --------------------------------------------------------------------------------------------


def open_reader(url: str, *, read_only: bool = True, **options: Any) -> SqlErpReader:
    """A reader (no write methods). SQLite files open read-only and must exist."""
    _ignore(options)
    return SqlErpReader(_engine(url, read_only=read_only, must_exist=True))


def open_writer(
    url: str,
    *,
    number_series: str = schema.CUSTOMER_SERIES,
    clock: Callable[[], datetime] = utcnow,
    create: bool = False,
    **options: Any,
) -> SqlErpWriter:
    """A writer. ``create=True`` (``custsync erp init``) allows a database without the schema
    (and a new SQLite file); call :meth:`SqlErpWriter.initialize` then."""
    _ignore(options)
    engine = _engine(url, must_exist=not create)
    return SqlErpWriter(engine, number_series=number_series, clock=clock, check_schema=not create)


def _engine(url: str, *, read_only: bool = False, must_exist: bool) -> Engine:
    try:
        return make_engine(url, read_only=read_only, must_exist=must_exist)
    except ConfigError as exc:
        if "does not exist" in exc.message:
            raise ConfigError(
                f"ERP {exc.message}: run `custsync erp init --erp {display_url(url)}` first"
            ) from None
        if exc.message.startswith("database file"):
            raise ConfigError(f"ERP {exc.message}") from None
        raise


def _ignore(options: Mapping[str, Any]) -> None:
    if options:
        log.debug("erp_sql: ignoring options %s", ", ".join(sorted(options)))
