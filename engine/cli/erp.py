"""`custsync erp init | load | export`: set up, fill and dump the SQL ERP database.

The ERP is opened through the connector registry (by URL scheme), so these commands work with
any ERP connector that offers the admin operations (``initialize``, ``load``); the shipped SQL
connector does. The URL comes from ``--erp``, else ``$CUSTSYNC_ERP_URL``, else ``erp.url`` of
the config file (``--config``, default ``./custsync.yaml`` when it exists).

Exit codes: 0 ok, 1 error (bad rows: nothing was loaded), 64 usage.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from .. import exitcodes, registry
from ..errors import ConfigError, UsageError
from ..files import private_file
from ..model import ERP_CUSTOMER_FIELDS, ERP_TEMPLATE_FIELDS, ErpCustomer
from ..ports import LoadRowProblem
from ..progress import Progress
from .options import add_output_option

DEFAULT_CONFIG = "custsync.yaml"
ENV_URL = "CUSTSYNC_ERP_URL"
KINDS = ("customers", "countries", "templates")
#: the columns `erp load` accepts per kind (the SQL connector's writable fields)
LOAD_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ERP_CUSTOMER_FIELDS + ERP_TEMPLATE_FIELDS,
    "countries": ("code", "iso_code", "name"),
    "templates": ("code", "description", *ERP_TEMPLATE_FIELDS),
}
_KEY_COLUMN = {"countries": "code", "templates": "code"}
#: columns `erp load` reads past without loading, and why: ``modified_at`` (the files world's
#: ERP has it) is what incremental exports select by; the ERP sets it to the time of the load,
#: as on every write, since a time from the file may be before the last export's cursor and
#: the loaded customers would then never be exported
IGNORED_COLUMNS: dict[str, dict[str, str]] = {
    "customers": {
        "modified_at": "ignored: the ERP sets it to the time of the load, so that the next "
        "export sees the loaded customers",
    },
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "erp",
        help="set up, load and export the SQL ERP database",
        description=(
            "Create the ERP database schema, load customers/countries/templates from CSV, "
            "export customers. Exit codes: 0 ok, 1 error, 64 usage."
        ),
    )
    commands = parser.add_subparsers(dest="erp_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: _usage(parser))

    init = commands.add_parser(
        "init",
        help="create the schema (idempotent) and seed countries and the number series",
        description=(
            "Create the ERP tables if missing, seed common countries (ERP code -> ISO code, "
            "e.g. EL -> GR) and the customer number series. Existing rows are kept."
        ),
    )
    _common(init)
    init.add_argument(
        "--with-defaults",
        action="store_true",
        help="also add a customer template DEFAULT with typical posting groups",
    )
    init.add_argument("--number-prefix", metavar="TEXT", help="customer number prefix (default: C)")
    init.add_argument(
        "--number-width", metavar="N", type=int, help="digits of customer numbers (default: 5)"
    )
    init.add_argument("--company-name", metavar="NAME", help="set the company name")
    init.add_argument(
        "--company-country", metavar="CODE", help="set the company's country (ERP code)"
    )
    init.set_defaults(handler=_init)

    load = commands.add_parser(
        "load",
        help="load rows from a CSV file (all or nothing)",
        description=(
            "Load a CSV file with a header row of field names. Every row is checked first; any "
            "bad row is reported as FILE:LINE: COLUMN: problem and nothing is written."
        ),
    )
    _common(load)
    load.add_argument("file", metavar="FILE", help="CSV file (UTF-8, header row)")
    load.add_argument("--kind", choices=KINDS, default="customers", help="what the file holds (default: customers)")
    load.add_argument(
        "--update",
        action="store_true",
        help="update existing records (only the file's columns); without it they are errors",
    )
    load.add_argument(
        "--delimiter", metavar="CHAR", default=",", help="field delimiter (default: ,)"
    )
    load.set_defaults(handler=_load)

    export = commands.add_parser(
        "export",
        help="write the customers out as CSV or JSON lines",
        description="Write the ERP customers in number order (CSV loads back with `erp load`).",
    )
    _common(export)
    add_output_option(export, ("csv", "jsonl"))
    export.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    export.add_argument(
        "--changed-since",
        metavar="TIME",
        help="only customers modified after TIME (ISO 8601 with time zone, e.g. 2026-03-01T00:00Z)",
    )
    export.set_defaults(handler=_export)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--erp", metavar="URL", help=f"ERP database URL (default: ${ENV_URL}, else the config)"
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"config file whose erp.url applies (default: ./{DEFAULT_CONFIG} when it exists)",
    )


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


def erp_url(args: argparse.Namespace) -> str:
    """``--erp``, else ``$CUSTSYNC_ERP_URL``, else ``erp.url`` of the config file."""
    if getattr(args, "erp", None):
        return str(args.erp)
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    path = Path(args.config) if getattr(args, "config", None) else Path(DEFAULT_CONFIG)
    if args.config or path.is_file():
        from ..config import config_file, require_config

        return require_config(config_file(path)).erp_url
    raise UsageError(
        f"no ERP database given: use --erp URL (e.g. sqlite:///erp.db), set {ENV_URL}, "
        f"or run where {DEFAULT_CONFIG} names erp.url"
    )


# --------------------------------------------------------------------------------------------
# init
# --------------------------------------------------------------------------------------------


def _init(args: argparse.Namespace) -> int:
    url = erp_url(args)
    if args.number_width is not None and not 1 <= args.number_width <= 15:
        raise UsageError("--number-width must be between 1 and 15")
    with _opened(registry.open_erp_writer(url, create=True)) as writer:
        initialize = _capability(writer, "initialize", url, "erp init")
        report = initialize(
            with_defaults=args.with_defaults,
            number_prefix=args.number_prefix,
            number_width=args.number_width,
            company_name=args.company_name,
            company_country=args.company_country,
        )
        where = getattr(writer, "url", url)
    parts = [f"{report.countries_added} countries added"]
    if report.template_added:
        parts.append("template DEFAULT added")
    print(f"ERP database {where} ready ({', '.join(parts)}; number series {report.series})")
    return exitcodes.OK


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class CsvFile:
    """A load file read as a stream: its header at once (:func:`read_csv`), its data rows as
    they are consumed (:meth:`rows`: ``(line, values)``, or a ``LoadRowProblem`` for a row
    that is not well-formed), so that a million rows are never held in memory."""

    path: Path
    kind: str
    delimiter: str = ","
    columns: tuple[str, ...] = ()
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # line, column, message
    notes: list[tuple[int, str, str]] = field(default_factory=list)  # columns read past
    _reader: Any = None
    _lines: Any = None
    _last_line: int = 0

    def rows(self) -> Iterator[tuple[int, dict[str, str]] | LoadRowProblem]:
        if self._reader is None:
            return
        reader, last_line = self._reader, self._last_line
        ignored = [name for _, name, _ in self.notes]
        try:
            for record in reader:
                line, last_line = last_line + 1, reader.line_num
                if not record or all(not value.strip() for value in record):
                    continue
                if len(record) != len(self.columns):
                    yield LoadRowProblem(
                        line,
                        "",
                        f"row has {len(record)} values, the header has {len(self.columns)}",
                    )
                    continue
                values = dict(zip(self.columns, map(csv_value, record), strict=True))
                for name in ignored:
                    del values[name]
                yield line, values
        except csv.Error as exc:
            yield LoadRowProblem(reader.line_num, "", f"not valid CSV: {exc}")
        except _NotUtf8 as exc:
            yield LoadRowProblem(exc.line, "", exc.message)
        finally:
            self.close()

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()
            self._lines = None


class _NotUtf8(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _decoded(handle: IO[bytes]) -> Iterator[str]:
    """The file's lines decoded one by one (a BOM dropped); a byte that is not UTF-8 stops
    the reading with the line and the byte offset."""
    offset = 0
    for number, raw in enumerate(handle, start=1):
        skip = 3 if number == 1 and raw.startswith(b"\xef\xbb\xbf") else 0
        try:
            text = raw[skip:].decode("utf-8")
        except UnicodeDecodeError as exc:
            at = offset + skip + exc.start
            raise _NotUtf8(
                number,
                f"not UTF-8 (byte 0x{raw[skip + exc.start]:02x} at byte offset {at}); "
                "save the file as UTF-8",
            ) from None
        offset += len(raw)
        yield text


def read_csv(path: Path, kind: str, delimiter: str = ",") -> CsvFile:
    """Open a load file and read and check its header (values are checked by the connector;
    the data rows come from ``rows()`` as they are consumed)."""
    result = CsvFile(path, kind, delimiter)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = _decoded(handle)
    result._lines = handle
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    allowed = LOAD_COLUMNS[kind]
    last_line = 0
    try:
        for record in reader:
            line, last_line = last_line + 1, reader.line_num
            if not record or all(not value.strip() for value in record):
                continue
            result.columns = _header(record, line, kind, allowed, result)
            break
    except csv.Error as exc:
        result.problems.append((reader.line_num, "", f"not valid CSV: {exc}"))
    except _NotUtf8 as exc:
        result.problems.append((exc.line, "", exc.message))
    if not result.columns and not result.problems:
        result.problems.append((1, "", "the file is empty (a header row is required)"))
    if result.problems:
        result.close()
    else:
        result._reader, result._last_line = reader, last_line
    return result


def _header(
    record: list[str], line: int, kind: str, allowed: tuple[str, ...], result: CsvFile
) -> tuple[str, ...]:
    columns = tuple(name.strip() for name in record)
    if len(columns) > 1 and not any(name in allowed for name in columns):
        # a file without a header row: one problem, not one per value of its first record
        result.problems.append(
            (
                line,
                "",
                f"the first line must name the columns; none of {', '.join(columns[:3])}"
                f"{', ...' if len(columns) > 3 else ''} is a column for {kind} "
                f"(known: {', '.join(allowed)})",
            )
        )
        return columns
    seen: set[str] = set()
    ignored = IGNORED_COLUMNS.get(kind, {})
    for index, name in enumerate(columns, start=1):
        if not name:
            result.problems.append((line, "", f"column {index} has no name in the header"))
        elif name in seen:
            result.problems.append((line, name, "column appears twice in the header"))
        elif name in ignored:
            result.notes.append((line, name, ignored[name]))
        elif name not in allowed:
            other = next((d for d in ";\t|" if len(columns) == 1 and d in name), None)
            hint = (
                f"; the file seems separated by {other!r}: use --delimiter {other!r}"
                if other
                else f" (known: {', '.join(allowed)})"
            )
            result.problems.append((line, name, f"unknown column for {kind}{hint}"))
        seen.add(name)
    key = _KEY_COLUMN.get(kind)
    if key and key not in columns:
        result.problems.append((line, key, f"missing column (required for {kind})"))
    return columns


def _load(args: argparse.Namespace) -> int:
    """Stream the file's rows into the connector's ``load`` (one transaction, all or
    nothing): every problem of the file is reported in one run, malformed rows and values."""
    path = Path(args.file)
    if len(args.delimiter) != 1:
        raise UsageError("--delimiter must be one character")
    parsed = read_csv(path, args.kind, args.delimiter)
    name = args.file
    try:
        for line, column, note in parsed.notes:
            print(f"{name}:{line}: {column}: {note}", file=sys.stderr)
        if parsed.problems:
            return _report_problems(name, parsed.problems)
        url = erp_url(args)
        with (
            _opened(registry.open_erp_writer(url)) as writer,
            Progress(None, f"erp load {name}", unit="rows") as progress,
        ):
            load = _capability(writer, "load", url, "erp load")
            options = {"on_rows": progress.advance} if _accepts(load, "on_rows") else {}
            report = load(args.kind, parsed.rows(), update=args.update, **options)
            where = getattr(writer, "url", url)
    finally:
        parsed.close()
    if report.problems:
        return _report_problems(name, [(p.line, p.column, p.message) for p in report.problems])
    print(
        f"{name}: loaded {report.inserted + report.updated} {args.kind} "
        f"({report.inserted} new, {report.updated} updated) into {where}"
    )
    return exitcodes.OK


def _accepts(function: Any, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(function).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin
        return False


def _report_problems(name: str, problems: list[tuple[int, str, str]]) -> int:
    for line, column, message in sorted(problems, key=lambda p: p[0]):
        where = f"{name}:{line}: " if line else f"{name}: "
        print(f"{where}{column + ': ' if column else ''}{message}", file=sys.stderr)
    count = len(problems)
    print(
        f"{name}: {count} problem{'s' if count != 1 else ''}; nothing was loaded", file=sys.stderr
    )
    return exitcodes.ERROR


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    since = _parse_time(args.changed_since) if args.changed_since else None
    url = erp_url(args)
    write = write_csv if args.output == "csv" else write_jsonl
    with _opened(registry.open_erp_reader(url)) as reader, _output(args.out) as out:
        count = write(out, reader.iter_customers(changed_since=since))
    if args.out:
        print(f"{count} customers written to {args.out}", file=sys.stderr)
    return exitcodes.OK


_EXPORT_COLUMNS = ERP_CUSTOMER_FIELDS + ERP_TEMPLATE_FIELDS


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


#: cells a spreadsheet would read as a formula (=HYPERLINK(...), +cmd|..., @SUM(...)), except
#: numbers and phone numbers (digits, blanks, ( ) . - /), which call nothing
_FORMULA = re.compile(r"[=+\-@\t\r]")
_NUMBER_LIKE = re.compile(r"[+-]?[0-9 ().\-/]*")


def csv_cell(text: str) -> str:
    """``text`` safe for a spreadsheet: a cell starting like a formula gets a leading ``'``
    (OWASP's CSV injection advice); ``erp load`` takes that quote off again."""
    if text[:1] and _FORMULA.match(text) and not _NUMBER_LIKE.fullmatch(text):
        return "'" + text
    return text


def csv_value(text: str) -> str:
    """A loaded CSV value: the ``'`` that :func:`csv_cell` put before a formula removed."""
    if text[:1] == "'" and _FORMULA.match(text, 1):
        return text[1:]
    return text


def write_csv(out: IO[str], customers: Iterator[ErpCustomer]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_EXPORT_COLUMNS)
    count = 0
    for customer in customers:
        writer.writerow([csv_cell(_text(customer.get(name))) for name in _EXPORT_COLUMNS])
        count += 1
    return count


def write_jsonl(out: IO[str], customers: Iterator[ErpCustomer]) -> int:
    count = 0
    for customer in customers:
        record: dict[str, Any] = {name: customer.get(name) for name in _EXPORT_COLUMNS}
        record["modified_at"] = customer.modified_at.isoformat() if customer.modified_at else None
        record["etag"] = customer.etag
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--changed-since {text!r} is not an ISO 8601 time (e.g. 2026-03-01T00:00:00Z)"
        ) from None
    if value.tzinfo is None:
        raise UsageError(f"--changed-since {text!r} needs a time zone (e.g. Z or +01:00)")
    return value


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if not path:
        yield sys.stdout
        return
    try:
        with private_file(path, newline="") as handle:  # full contact data: 0600
            yield handle
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------------------------


@contextmanager
def _opened(connector: Any) -> Iterator[Any]:
    try:
        yield connector
    finally:
        connector.close()


def _capability(connector: Any, name: str, url: str, command: str) -> Any:
    method = getattr(connector, name, None)
    if method is None:
        scheme = registry.scheme_of(url)
        raise ConfigError(
            f"`custsync {command}` needs a SQL ERP database; the {scheme!r} connector has no "
            f"{name} operation"
        )
    return method
