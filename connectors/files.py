"""A world kept in files: ERP and Shopify read from a folder, to try rules before connecting.

URL ``files:./world`` (``files:/abs/world``, ``files:///abs/world`` or a plain path). The folder
holds, each optional (see docs/plan.md for the formats)::

    erp_customers.yaml | .jsonl | .csv      ERP customers (core and template fields)
    countries.yaml | .csv                   ERP countries: code, iso_code, name
    company.yaml                            the ERP company: name, country_code
    templates.yaml                          customer templates: code, description, fields
    shopify_customers.yaml | .jsonl | .csv  Shopify customers with their addresses
    links.yaml | .csv                       stored links: shop, shopify_id, erp_no
    orders.yaml | .jsonl                    Shopify orders, for order mapping

A file that cannot be read as a whole (not UTF-8, YAML syntax, an unknown or missing CSV
column) is a :class:`ConfigError` naming the file and line. A single bad record is skipped and
reported through ``problems()`` (``file:line: message``), so the others still plan.

The connector is read-only: ``open_writer`` refuses with a ConfigError.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from custsync.engine.collector import collector_paused
from custsync.engine.errors import ConfigError
from custsync.engine.model import (
    ERP_CUSTOMER_FIELDS,
    ERP_TEMPLATE_FIELDS,
    CompanyInfo,
    Country,
    CustomerTemplate,
    ErpCustomer,
    ErpReference,
    Link,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
    erp_code,
)
from custsync.engine.ports import SourceProblem
from custsync.engine.rules.load import LoadedDocument, YamlSyntaxError, load_yaml
from custsync.engine.rules.validate import display_path as _shown

__all__ = [
    "FILE_KINDS",
    "FilesErpReader",
    "FilesShopifyReader",
    "LoadResult",
    "erp",
    "find_file",
    "load_links",
    "load_orders",
    "shopify",
    "world_path",
]

T = TypeVar("T")

#: file base name -> (allowed extensions, the list key a YAML mapping may hold)
FILE_KINDS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "erp_customers": (("yaml", "yml", "jsonl", "csv"), "customers"),
    "countries": (("yaml", "yml", "csv"), "countries"),
    "company": (("yaml", "yml"), "company"),
    "templates": (("yaml", "yml"), "templates"),
    "shopify_customers": (("yaml", "yml", "jsonl", "csv"), "customers"),
    "links": (("yaml", "yml", "csv"), "links"),
    "orders": (("yaml", "yml", "jsonl", "json"), "orders"),
}

_READ_ONLY = "the files connector is read-only; use it with plan"


# --------------------------------------------------------------------------------------------
# Locating the world
# --------------------------------------------------------------------------------------------


def world_path(url: str | Path, base_dir: str | Path | None = None) -> Path:
    """The folder of ``files:./world`` (or a plain path), relative paths against ``base_dir``."""
    text = str(url)
    if text.startswith("files:"):
        text = text[len("files:") :]
        if text.startswith("//"):
            text = text[2:]
    if not text:
        raise ConfigError(f"files connector URL {str(url)!r} names no folder (e.g. files:./world)")
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def _world_dir(url: str | Path, base_dir: str | Path | None) -> Path:
    path = world_path(url, base_dir)
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"world folder {path} {what} (files connector URL {str(url)!r})")
    return path


def find_file(folder: Path, kind: str) -> Path | None:
    """The one file of ``kind`` in ``folder`` (any allowed extension), or None; two is an error."""
    extensions, _ = FILE_KINDS[kind]
    found = [folder / f"{kind}.{ext}" for ext in extensions if (folder / f"{kind}.{ext}").is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ConfigError(f"{folder}: both {names} exist; keep one {kind} file")
    return found[0] if found else None


# --------------------------------------------------------------------------------------------
# Reading rows from YAML, JSON Lines and CSV with their positions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    location: str  # "path:line"
    data: Any  # a mapping when well-formed


@dataclass(frozen=True, slots=True)
class LoadResult(Generic[T]):
    """Records read from a file, and the bad records skipped on the way."""

    records: tuple[T, ...] = ()
    problems: tuple[SourceProblem, ...] = ()


def _yaml_message(path: Path, exc: YamlSyntaxError) -> str:
    return f"{_shown(path)}:{exc.position.line}:{exc.position.column}: {exc.message}"


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            f"{_shown(path)}:{line}:{column}: not UTF-8 (byte 0x{raw[exc.start]:02x}); "
            "save the file as UTF-8",
            file=str(path),
            line=line,
        ) from None


def _yaml_rows(path: Path, list_key: str) -> list[_Row]:
    try:
        doc: LoadedDocument = load_yaml(path)
    except YamlSyntaxError as exc:
        raise ConfigError(
            _yaml_message(path, exc), file=str(path), line=exc.position.line
        ) from None
    for pointer, position, message in doc.problems:
        raise ConfigError(f"{_shown(path)}:{position.line}:{position.column}: {pointer}: {message}")
    data, prefix = doc.data, ""
    if data is None:
        return []
    if isinstance(data, dict) and set(data) == {list_key}:
        data, prefix = data[list_key], f"/{list_key}"
    if data is None:
        return []
    if not isinstance(data, list):
        line = doc.position(prefix).line
        raise ConfigError(
            f"{_shown(path)}:{line}: expected a list of records (or a mapping with one key "
            f"{list_key!r} holding that list)",
            file=str(path),
        )
    shown = _shown(path)
    return [
        _Row(f"{shown}:{doc.position(f'{prefix}/{index}').line}", item)
        for index, item in enumerate(data)
    ]


def _decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines (number, text with its line end ``\\n``), decoded as they are read:
    a large file is never held whole. A byte that is not UTF-8 is a ConfigError naming line
    and column."""
    with path.open(encoding="utf-8-sig", newline="\n") as handle:
        try:
            yield from enumerate(handle, start=1)
        except UnicodeDecodeError:
            pass
        else:
            return
    _raise_not_utf8(path)


def _raise_not_utf8(path: Path) -> None:
    """The ConfigError of the first byte of ``path`` that is not UTF-8 (its line and column)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    f"{_shown(path)}:{number}:{exc.start + 1}: not UTF-8 "
                    f"(byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                    file=str(path),
                    line=number,
                ) from None
    raise ConfigError(f"{_shown(path)}: not UTF-8; save the file as UTF-8", file=str(path))


def _jsonl_rows(path: Path, problems: list[SourceProblem], kind: str) -> Iterator[_Row]:
    shown = _shown(path)
    for number, line in _decoded_lines(path):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(
                SourceProblem(
                    kind,
                    f"{shown}:{number}",
                    f"not valid JSON ({exc.msg}, column {exc.colno})",
                )
            )
            continue
        yield _Row(f"{shown}:{number}", data)


def _json_rows(path: Path, list_key: str) -> list[_Row]:
    try:
        data = json.loads(_decode(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{_shown(path)}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    if isinstance(data, dict) and set(data) == {list_key}:
        data = data[list_key]
    if not isinstance(data, list):
        raise ConfigError(
            f"{_shown(path)}: expected a JSON list of records (or {{{list_key!r}: [...]}})"
        )
    # JSON carries no line numbers once parsed; the record's index is the position.
    shown = _shown(path)
    return [_Row(f"{shown}:[{index}]", item) for index, item in enumerate(data)]


def _csv_rows(
    path: Path,
    columns: Sequence[str],
    required: Sequence[str],
    problems: list[SourceProblem],
    kind: str,
) -> Iterator[_Row]:
    shown = _shown(path)
    reader = csv.reader(_csv_lines(path), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [name.strip() for name in header]
        unknown = [name for name in header if name not in columns]
        if unknown:
            headless = len(unknown) == len(header) > 1  # a first record, not a header row
            raise ConfigError(
                f"{_shown(path)}:1: "
                + ("the first line must name the columns; " if headless else "")
                + f"unknown column{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; known columns: {', '.join(columns)}",
                file=str(path),
                line=1,
            )
        missing = [name for name in required if name not in header]
        if missing:
            raise ConfigError(
                f"{_shown(path)}:1: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))}",
                file=str(path),
                line=1,
            )
        duplicated = sorted({name for name in header if header.count(name) > 1})
        if duplicated:
            raise ConfigError(
                f"{_shown(path)}:1: column {duplicated[0]!r} appears twice", file=str(path)
            )
        start = reader.line_num + 1
        for values in reader:
            location = f"{shown}:{start}"
            start = reader.line_num + 1
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                problems.append(
                    SourceProblem(
                        kind,
                        location,
                        f"the row has {len(values)} values, the header has {len(header)} columns",
                    )
                )
                continue
            yield _Row(location, dict(zip(header, values, strict=True)))
    except csv.Error as exc:
        raise ConfigError(f"{shown}:{reader.line_num}: CSV: {exc}", file=str(path)) from None


def _csv_lines(path: Path) -> Iterator[str]:
    """The file's lines with their line ends (as ``csv`` wants them), decoded one by one."""
    for _, text in _decoded_lines(path):
        yield text


def _rows(
    path: Path,
    kind: str,
    columns: Sequence[str],
    required: Sequence[str],
    problems: list[SourceProblem],
    record_kind: str,
) -> Iterable[_Row]:
    """The file's rows; JSON Lines and CSV are read row by row as they are consumed."""
    _, list_key = FILE_KINDS[kind]
    suffix = path.suffix.lower().lstrip(".")
    with _readable(path):
        if suffix in ("yaml", "yml"):
            return _yaml_rows(path, list_key)
        if suffix == "jsonl":
            return _guarded(path, _jsonl_rows(path, problems, record_kind))
        if suffix == "json":
            return _json_rows(path, list_key)
        if suffix == "csv":
            return _guarded(path, _csv_rows(path, columns, required, problems, record_kind))
    raise ConfigError(f"{_shown(path)}: unsupported file type .{suffix} for {kind}")


def _guarded(path: Path, rows: Iterator[_Row]) -> Iterator[_Row]:
    with _readable(path):
        yield from rows


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """A file of the world that cannot be read (permissions) is a ConfigError naming it."""
    try:
        yield
    except OSError as exc:
        raise ConfigError(
            f"{_shown(path)}: cannot read the file: {exc.strerror or exc}", file=str(path)
        ) from None


# --------------------------------------------------------------------------------------------
# Field conversion: every garbage value becomes a message naming the field
# --------------------------------------------------------------------------------------------


class _Bad(Exception):
    """A record-level problem (the message names the field)."""


#: fields whose values repeat from record to record (places, names): read as one shared
#: string per value (``sys.intern``), so a world of a million records costs what its distinct
#: values cost, not a copy per record (e-mails, phones and keys are not shared)
_SHARED_TEXT = frozenset(
    {
        "name",
        "name_2",
        "contact",
        "address",
        "address_2",
        "address1",
        "address2",
        "city",
        "post_code",
        "zip",
        "county",
        "country_code",
        "province",
        "province_code",
        "first_name",
        "last_name",
        "company",
    }
)


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Bad(f"field {name!r}: expected text, got {type(value).__name__} {_show(value)}")
    text = value if isinstance(value, str) else str(value)
    return sys.intern(text) if name in _SHARED_TEXT else text




_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off", ""}


def _bool(value: Any, name: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(f"field {name!r}: expected true or false, got {_show(value)}")


def _datetime(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):  # YAML reads an unquoted 2026-03-01 as a date
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _Bad(
                f"field {name!r}: {_show(value)} is not an ISO 8601 date-time "
                "(e.g. 2026-03-01T12:00:00Z)"
            ) from None
    else:
        raise _Bad(f"field {name!r}: expected an ISO 8601 date-time, got {_show(value)}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _list(value: Any, name: str) -> tuple[str, ...]:
    """A YAML/JSON list of texts, or one text separated by ``;`` or ``,`` (CSV)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in re.split(r"[;,]", value) if part.strip())
    if isinstance(value, list):
        return tuple(_text(item, name) for item in value)
    raise _Bad(f"field {name!r}: expected a list, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _gid(value: Any, name: str, resource: str) -> str:
    """``123`` -> ``gid://shopify/<resource>/123``; a gid is kept as is."""
    text = _text(value, name).strip()
    if text.isdigit():
        return f"gid://shopify/{resource}/{text}"
    if text and not text.startswith("gid://shopify/"):
        raise _Bad(
            f"field {name!r}: {_show(text)} is neither a number nor gid://shopify/{resource}/..."
        )
    return text


def _check_keys(data: Any, allowed: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Bad(f"expected a mapping of fields for {what}, got {_show(data)}")
    unknown = [str(key) for key in data if key not in allowed]
    if unknown:
        raise _Bad(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
            f"for {what}"
        )
    return data


class _Fields:
    """Collects every field problem of one record, then raises them together."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: list[str] = []

    def get(self, name: str, convert: Callable[[Any, str], Any], default: Any = None) -> Any:
        try:
            return convert(self.data.get(name), name)
        except _Bad as exc:
            self.errors.append(str(exc))
            return default

    def required(self, name: str, convert: Callable[[Any, str], Any]) -> Any:
        value = self.get(name, convert, "")
        if value in ("", None) and not any(name in error for error in self.errors):
            self.errors.append(f"field {name!r} is required")
        return value

    def done(self) -> None:
        if self.errors:
            raise _Bad("; ".join(self.errors))


# --------------------------------------------------------------------------------------------
# Record parsers
# --------------------------------------------------------------------------------------------

_ERP_COLUMNS = (*ERP_CUSTOMER_FIELDS, *ERP_TEMPLATE_FIELDS, "modified_at", "etag")
_COUNTRY_COLUMNS = ("code", "iso_code", "name")
_TEMPLATE_KEYS = ("code", "description", "fields")
_ADDRESS_FIELDS = tuple(ShopifyAddress.__dataclass_fields__)
_CUSTOMER_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "state",
    "tags",
    "note",
    "updated_at",
)
_SHOPIFY_KEYS = (*_CUSTOMER_FIELDS, "addresses")
_SHOPIFY_CSV_COLUMNS = (*_CUSTOMER_FIELDS, *(f"address_{name}" for name in _ADDRESS_FIELDS))
_LINK_COLUMNS = (
    "shop",
    "shopify_id",
    "erp_no",
    "address_ids",
    "last_import_at",
    "last_export_at",
    "own_write_shopify_updated_at",
    "own_write_erp_etag",
)
_ORDER_KEYS = ("id", "name", "email", "phone", "customer", "bill_to", "ship_to")


#: what the fast readers of the common record accept without the per-field checks
_ERP_COLUMN_SET = frozenset(_ERP_COLUMNS)
_ERP_CORE_SET = frozenset(ERP_CUSTOMER_FIELDS)
_ERP_TEXT_FIELDS = tuple(
    (name, name in _SHARED_TEXT) for name in ERP_CUSTOMER_FIELDS if name != "no"
)
_SHOPIFY_KEY_SET = frozenset(_SHOPIFY_KEYS)
_ADDRESS_KEY_SET = frozenset(_ADDRESS_FIELDS)
_ADDRESS_TEXT_FIELDS = tuple(
    (name, name in _SHARED_TEXT) for name in _ADDRESS_FIELDS if name not in ("id", "default")
)
_intern = sys.intern


def _erp_customer(data: Any) -> ErpCustomer:
    """An ERP customer row: the common row (known fields, texts) read directly; any other
    row, and every bad one, through the checks that name each problem (the same record)."""
    try:
        customer = _plain_erp_customer(data)
    except _Bad:  # a bad value: the checked path names it (and any other)
        customer = None
    return customer if customer is not None else _checked_erp_customer(data)


def _plain_erp_customer(data: Any) -> ErpCustomer | None:
    """The row as :func:`_checked_erp_customer` reads it when every value is a text (or
    absent) and nothing is wrong; None for any other row (a world of a million rows spends
    its reading time here)."""
    if type(data) is not dict or not data.keys() <= _ERP_COLUMN_SET:
        return None
    for value in data.values():
        if type(value) is not str:
            return None
    get = data.get
    no = get("no", "")
    if not no or "tax_liable" in data:
        return None  # a missing key or a flag: the checked path
    modified_at = _datetime(get("modified_at"), "modified_at")  # _Bad: the checked path
    values: dict[str, Any] = {}
    for name, shared in _ERP_TEXT_FIELDS:
        value = get(name, "")
        values[name] = _intern(value) if shared else value
    extra: dict[str, Any] = {}
    if not data.keys() <= _ERP_CORE_SET:  # template fields, a time or an etag
        for name in ERP_TEMPLATE_FIELDS:
            value = get(name)
            if value:
                extra[name] = value
    return ErpCustomer(
        no=erp_code(no),
        extra=extra,
        modified_at=modified_at,
        etag=get("etag") or None,
        **values,
    )



def _checked_erp_customer(data: Any) -> ErpCustomer:
    fields = _Fields(_check_keys(data, _ERP_COLUMNS, "an ERP customer"))
    core = {name: fields.get(name, _text, "") for name in ERP_CUSTOMER_FIELDS if name != "no"}
    no = erp_code(fields.required("no", _text))
    extra: dict[str, Any] = {}
    for name in ERP_TEMPLATE_FIELDS:
        if name in fields.data and fields.data[name] not in (None, ""):
            extra[name] = fields.get(name, _bool if name == "tax_liable" else _text)
    modified_at = fields.get("modified_at", _datetime)
    etag = fields.get("etag", _text) or None
    fields.done()
    return ErpCustomer(no=no, extra=extra, modified_at=modified_at, etag=etag, **core)


def _country(data: Any) -> Country:
    fields = _Fields(_check_keys(data, _COUNTRY_COLUMNS, "a country"))
    code = fields.required("code", _text).strip()
    iso = fields.get("iso_code", _text, "").strip().upper()
    name = fields.get("name", _text, "")
    fields.done()
    return Country(code=code, iso_code=iso, name=name)


def _template(data: Any) -> CustomerTemplate:
    fields = _Fields(_check_keys(data, _TEMPLATE_KEYS, "a customer template"))
    code = fields.required("code", _text).strip()
    description = fields.get("description", _text, "")
    values = fields.data.get("fields") or {}
    if not isinstance(values, dict):
        fields.errors.append(f"field 'fields': expected a mapping, got {_show(values)}")
        values = {}
    for key, value in values.items():
        if isinstance(value, dict | list):
            fields.errors.append(f"field 'fields.{key}': expected a single value")
    fields.done()
    return CustomerTemplate(code=code, description=description, fields=dict(values))


def _address(data: Any, where: str) -> ShopifyAddress:
    fields = _Fields(_check_keys(data, _ADDRESS_FIELDS, where))
    values: dict[str, Any] = {}
    for name in _ADDRESS_FIELDS:
        if name == "id":
            values[name] = fields.get(name, lambda v, n: _gid(v, n, "MailingAddress"), "")
        elif name == "default":
            values[name] = fields.get(name, _bool, False)
        else:
            values[name] = fields.get(name, _text, "")
    fields.done()
    return ShopifyAddress(**values)


def _customer_fields(fields: _Fields) -> dict[str, Any]:
    return {
        "id": fields.required("id", lambda v, n: _gid(v, n, "Customer")),
        "first_name": fields.get("first_name", _text, ""),
        "last_name": fields.get("last_name", _text, ""),
        "email": fields.get("email", _text, ""),
        "phone": fields.get("phone", _text, ""),
        "state": fields.get("state", _text, ""),
        "tags": fields.get("tags", _list, ()),
        "note": fields.get("note", _text, ""),
        "updated_at": fields.get("updated_at", _datetime),
    }


def _shopify_customer(data: Any) -> ShopifyCustomer:
    """A Shopify customer record: the common one read directly (see :func:`_erp_customer`)."""
    try:
        customer = _plain_shopify_customer(data)
    except _Bad:
        customer = None
    return customer if customer is not None else _checked_shopify_customer(data)


def _plain_gid(value: Any, resource: str) -> str | None:
    """:func:`_gid` of a text or a number that is fine; None for anything else."""
    kind = type(value)
    if kind is int:
        return f"gid://shopify/{resource}/{value}" if value >= 0 else None
    if kind is not str:
        return None
    if value.startswith("gid://shopify/") and value == value.strip():
        return value
    text = value.strip()
    return f"gid://shopify/{resource}/{text}" if text.isdigit() else None


def _plain_address(data: Any) -> ShopifyAddress | None:
    if type(data) is not dict or not data.keys() <= _ADDRESS_KEY_SET:
        return None
    get = data.get
    raw_id = get("id")
    address_id = "" if raw_id is None else _plain_gid(raw_id, "MailingAddress")
    default = get("default", False)
    if address_id is None or type(default) is not bool:
        return None
    values: dict[str, Any] = {}
    for name, shared in _ADDRESS_TEXT_FIELDS:
        value = get(name, "")
        if type(value) is not str:
            return None
        values[name] = _intern(value) if shared else value
    return ShopifyAddress(id=address_id, default=default, **values)


def _plain_shopify_customer(data: Any) -> ShopifyCustomer | None:
    """The record as :func:`_checked_shopify_customer` reads it when its values are texts
    (an id may be a number, ``default`` a boolean) and nothing is wrong; else None."""
    if type(data) is not dict or not data.keys() <= _SHOPIFY_KEY_SET:
        return None
    get = data.get
    customer_id = _plain_gid(get("id"), "Customer")
    if not customer_id or "tags" in data:
        return None  # no id or a list: the checked path
    updated_at = _datetime(get("updated_at"), "updated_at")  # _Bad: the checked path
    first_name, last_name = get("first_name", ""), get("last_name", "")
    email, phone = get("email", ""), get("phone", "")
    state, note = get("state", ""), get("note", "")
    for value in (first_name, last_name, email, phone, state, note):
        if type(value) is not str:
            return None
    raw_addresses = get("addresses") or ()
    if type(raw_addresses) is not list and raw_addresses != ():
        return None
    addresses = []
    for item in raw_addresses:
        address = _plain_address(item)
        if address is None:
            return None
        addresses.append(address)
    return ShopifyCustomer(
        id=customer_id,
        first_name=_intern(first_name),
        last_name=_intern(last_name),
        email=email,
        phone=phone,
        state=state,
        note=note,
        updated_at=updated_at,
        addresses=tuple(addresses),
    )


def _checked_shopify_customer(data: Any) -> ShopifyCustomer:
    fields = _Fields(_check_keys(data, _SHOPIFY_KEYS, "a Shopify customer"))
    values = _customer_fields(fields)
    raw_addresses = fields.data.get("addresses") or []
    addresses: list[ShopifyAddress] = []
    if not isinstance(raw_addresses, list):
        fields.errors.append(f"field 'addresses': expected a list, got {_show(raw_addresses)}")
    else:
        for index, item in enumerate(raw_addresses):
            try:
                addresses.append(_address(item, f"address {index + 1}"))
            except _Bad as exc:
                fields.errors.append(f"addresses[{index}]: {exc}")
    fields.done()
    return ShopifyCustomer(addresses=tuple(addresses), **values)


def _shopify_csv_customer(
    data: dict[str, Any], previous: ShopifyCustomer | None
) -> ShopifyCustomer:
    """One CSV row: customer columns plus ``address_*`` columns for one address.

    A further row with the same id adds an address to ``previous`` (its customer columns may
    be left empty)."""
    address_data = {
        name: data[f"address_{name}"] for name in _ADDRESS_FIELDS if f"address_{name}" in data
    }
    has_address = any(str(value).strip() for value in address_data.values())
    fields = _Fields({name: data.get(name) for name in _CUSTOMER_FIELDS})
    values = _customer_fields(fields)
    address = None
    if has_address:
        try:
            address = _address(address_data, "the address columns")
        except _Bad as exc:
            fields.errors.append(str(exc))
    fields.done()
    if previous is not None:
        extra = (address,) if address else ()
        return ShopifyCustomer(
            **{name: getattr(previous, name) for name in _CUSTOMER_FIELDS},
            addresses=previous.addresses + extra,
        )
    return ShopifyCustomer(addresses=(address,) if address else (), **values)


def _link(data: Any) -> Link:
    fields = _Fields(_check_keys(data, _LINK_COLUMNS, "a link"))
    shop = fields.required("shop", _text).strip()
    shopify_id = fields.required("shopify_id", lambda v, n: _gid(v, n, "Customer"))
    erp_no = erp_code(fields.required("erp_no", _text))
    address_ids = tuple(
        _gid(item, "address_ids", "MailingAddress")
        for item in fields.get("address_ids", _list, ())
        if item
    )
    link = Link(
        shop=shop,
        shopify_id=shopify_id,
        erp_no=erp_no,
        address_ids=address_ids,
        last_import_at=fields.get("last_import_at", _datetime),
        last_export_at=fields.get("last_export_at", _datetime),
        own_write_shopify_updated_at=fields.get("own_write_shopify_updated_at", _datetime),
        own_write_erp_etag=fields.get("own_write_erp_etag", _text, None) or None,
    )
    fields.done()
    return link


def _order(data: Any) -> ShopifyOrder:
    fields = _Fields(_check_keys(data, _ORDER_KEYS, "an order"))
    order_id = fields.required("id", lambda v, n: _gid(v, n, "Order"))
    raw_customer = fields.data.get("customer")
    customer: ShopifyCustomer | None = None
    if isinstance(raw_customer, dict):
        try:
            customer = _shopify_customer(raw_customer)
        except _Bad as exc:
            fields.errors.append(f"customer: {exc}")
    elif raw_customer not in (None, ""):
        # a reference to a Shopify customer by id; the reader resolves it
        customer_id = fields.get("customer", lambda v, n: _gid(v, n, "Customer"), "")
        customer = ShopifyCustomer(id=customer_id) if customer_id else None
    addresses: dict[str, ShopifyAddress | None] = {}
    for name in ("bill_to", "ship_to"):
        raw = fields.data.get(name)
        addresses[name] = None
        if raw not in (None, ""):
            try:
                addresses[name] = _address(raw, f"the order's {name}")
            except _Bad as exc:
                fields.errors.append(f"{name}: {exc}")
    order = ShopifyOrder(
        id=order_id,
        name=fields.get("name", _text, ""),
        email=fields.get("email", _text, ""),
        phone=fields.get("phone", _text, ""),
        customer=customer,
        bill_to=addresses["bill_to"],
        ship_to=addresses["ship_to"],
    )
    fields.done()
    return order


def _record_key(data: Any, key: str, resource: str | None = None) -> str:
    """The record's key for a problem report, when it can be read at all."""
    if not isinstance(data, dict):
        return ""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    if resource and text.isdigit():
        return f"gid://shopify/{resource}/{text}"
    return text


def _parse_all(
    rows: Iterable[_Row],
    parse: Callable[[Any], T],
    kind: str,
    key: Callable[[T], str],
    raw_key: Callable[[Any], str],
    problems: list[SourceProblem],
) -> list[T]:
    records: list[T] = []
    first_seen: dict[str, str] = {}
    for row in rows:
        try:
            record = parse(row.data)
        except _Bad as exc:
            problems.append(SourceProblem(kind, row.location, str(exc), raw_key(row.data)))
            continue
        identity = key(record)
        if identity in first_seen:
            problems.append(
                SourceProblem(
                    kind,
                    row.location,
                    f"duplicate {identity!r} (first at {first_seen[identity]}); skipped",
                    identity,
                )
            )
            continue
        first_seen[identity] = row.location
        records.append(record)
    return records


def _load(
    path: Path,
    kind: str,
    record_kind: str,
    parse: Callable[[Any], T],
    key: Callable[[T], str],
    raw_key: Callable[[Any], str],
    columns: Sequence[str] = (),
    required: Sequence[str] = (),
) -> LoadResult[T]:
    problems: list[SourceProblem] = []
    rows = _rows(path, kind, columns, required, problems, record_kind)
    with collector_paused():  # records hold no cycles: no rescanning them as they come
        records = _parse_all(rows, parse, record_kind, key, raw_key, problems)
    return LoadResult(tuple(records), tuple(problems))


# --------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------


def _file_or_kind(path: str | Path, kind: str) -> Path | None:
    target = Path(path)
    if target.is_dir():
        return find_file(target, kind)
    if not target.is_file():
        raise ConfigError(f"{target}: no such file")
    return target


def load_links(path: str | Path) -> LoadResult[Link]:
    """Links from ``links.yaml|csv`` (a file, or a world folder; none there = no links)."""
    target = _file_or_kind(path, "links")
    if target is None:
        return LoadResult()
    return _load(
        target,
        "links",
        "link",
        _link,
        key=lambda link: f"{link.shop}/{link.shopify_id}",
        raw_key=lambda data: _record_key(data, "shopify_id", "Customer"),
        columns=_LINK_COLUMNS,
        required=("shop", "shopify_id", "erp_no"),
    )


def load_orders(path: str | Path) -> LoadResult[ShopifyOrder]:
    """Shopify orders from YAML, JSON Lines or a JSON list (a file, or a world folder).

    An order's ``customer`` may be a full customer or a Shopify customer id; an id gives a
    stub ``ShopifyCustomer(id=...)`` that the caller resolves against its Shopify reader.
    """
    target = _file_or_kind(path, "orders")
    if target is None:
        return LoadResult()
    if target.suffix.lower() not in (".yaml", ".yml", ".jsonl", ".json"):
        raise ConfigError(f"{target}: orders must be .yaml, .jsonl or .json")
    return _load(
        target,
        "orders",
        "order",
        _order,
        key=lambda order: order.id,
        raw_key=lambda data: _record_key(data, "id", "Order"),
    )


def _load_shopify_customers(path: Path) -> LoadResult[ShopifyCustomer]:
    if path.suffix.lower() != ".csv":
        return _load(
            path,
            "shopify_customers",
            "shopify_customer",
            _shopify_customer,
            key=lambda customer: customer.id,
            raw_key=lambda data: _record_key(data, "id", "Customer"),
        )
    problems: list[SourceProblem] = []
    rows = _guarded(
        path, _csv_rows(path, _SHOPIFY_CSV_COLUMNS, ("id",), problems, "shopify_customer")
    )
    by_id: dict[str, ShopifyCustomer] = {}
    bad: dict[str, str] = {}  # id -> where its first bad row is
    for row in rows:
        identity = _record_key(row.data, "id", "Customer")
        if identity in bad:
            # the customer is skipped as a whole: a further row must not plan a part of it
            message = f"another row of this customer is bad ({bad[identity]})"
            problems.append(SourceProblem("shopify_customer", row.location, message, identity))
            continue
        try:
            by_id[identity] = _shopify_csv_customer(row.data, by_id.get(identity))
        except _Bad as exc:
            problems.append(SourceProblem("shopify_customer", row.location, str(exc), identity))
            if identity:
                bad[identity] = row.location
                by_id.pop(identity, None)
    return LoadResult(tuple(by_id.values()), tuple(problems))


def _load_company(path: Path) -> CompanyInfo:
    try:
        with _readable(path):
            data = load_yaml(path).data
    except YamlSyntaxError as exc:
        raise ConfigError(_yaml_message(path, exc), file=str(path)) from None
    if data is None:
        return CompanyInfo()
    if isinstance(data, dict) and set(data) == {"company"}:
        data = data["company"]
    try:
        fields = _Fields(_check_keys(data, ("name", "country_code"), "the company"))
        company = CompanyInfo(
            name=fields.get("name", _text, ""), country_code=fields.get("country_code", _text, "")
        )
        fields.done()
    except _Bad as exc:
        raise ConfigError(f"{_shown(path)}:1: {exc}", file=str(path)) from None
    return company


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------


class FilesErpReader:
    """An :class:`~custsync.engine.ports.ErpReader` over a world folder (read once, at open)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._problems: list[SourceProblem] = []
        customers_file = find_file(folder, "erp_customers")
        customers: tuple[ErpCustomer, ...] = ()
        if customers_file is not None:
            loaded = _load(
                customers_file,
                "erp_customers",
                "erp_customer",
                _erp_customer,
                key=lambda customer: customer.no,
                raw_key=lambda data: _record_key(data, "no"),
                columns=_ERP_COLUMNS,
                required=("no",),
            )
            customers, problems = loaded.records, loaded.problems
            self._problems.extend(problems)
        self._customers = sorted(customers, key=lambda customer: customer.no)
        self._by_no = {customer.no: customer for customer in self._customers}
        self._reference = ErpReference(
            countries=self._load_countries(),
            company=self._company(),
            templates=self._load_templates(),
        )

    def _load_countries(self) -> tuple[Country, ...]:
        path = find_file(self.folder, "countries")
        if path is None:
            return ()
        loaded = _load(
            path,
            "countries",
            "country",
            _country,
            key=lambda country: country.code,
            raw_key=lambda data: _record_key(data, "code"),
            columns=_COUNTRY_COLUMNS,
            required=("code",),
        )
        self._problems.extend(loaded.problems)
        return loaded.records

    def _company(self) -> CompanyInfo:
        path = find_file(self.folder, "company")
        return _load_company(path) if path else CompanyInfo()

    def _load_templates(self) -> tuple[CustomerTemplate, ...]:
        path = find_file(self.folder, "templates")
        if path is None:
            return ()
        loaded = _load(
            path,
            "templates",
            "template",
            _template,
            key=lambda template: template.code,
            raw_key=lambda data: _record_key(data, "code"),
        )
        self._problems.extend(loaded.problems)
        return loaded.records

    def reference(self) -> ErpReference:
        return self._reference

    def iter_customers(self, changed_since: datetime | None = None) -> Iterator[ErpCustomer]:
        for customer in self._customers:
            if changed_since is None or (
                customer.modified_at is not None and customer.modified_at > changed_since
            ):
                yield customer

    def get_customer(self, no: str) -> ErpCustomer | None:
        return self._by_no.get(no)

    def problems(self) -> Sequence[SourceProblem]:
        return tuple(self._problems)

    def close(self) -> None:
        """Nothing to release: the files were read at open."""


_EPOCH = datetime.min.replace(tzinfo=UTC)


def _phone_key(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit() or ch == "+")


class FilesShopifyReader:
    """A :class:`~custsync.engine.ports.ShopifyReader` over a world folder (read at open)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._problems: list[SourceProblem] = []
        customers: tuple[ShopifyCustomer, ...] = ()
        path = find_file(folder, "shopify_customers")
        if path is not None:
            loaded = _load_shopify_customers(path)
            customers = loaded.records
            self._problems.extend(loaded.problems)
        self._customers = sorted(
            customers, key=lambda customer: (customer.updated_at or _EPOCH, customer.id)
        )
        self._by_id = {customer.id: customer for customer in customers}
        self._orders: dict[str, ShopifyOrder] | None = None

    def iter_customers(self, updated_since: datetime | None = None) -> Iterator[ShopifyCustomer]:
        for customer in self._customers:
            if updated_since is None or (
                customer.updated_at is not None and customer.updated_at > updated_since
            ):
                yield customer

    def get_customer(self, customer_id: str) -> ShopifyCustomer | None:
        return self._by_id.get(customer_id)

    def get_customers(self, customer_ids: Iterable[str]) -> dict[str, ShopifyCustomer | None]:
        return {customer_id: self._by_id.get(customer_id) for customer_id in customer_ids}

    def find_by_email(self, email: str) -> ShopifyCustomer | None:
        wanted = email.strip().lower()
        if not wanted:
            return None
        for customer in self._customers:
            if customer.email.strip().lower() == wanted:
                return customer
        return None

    def find_by_phone(self, phone_e164: str) -> ShopifyCustomer | None:
        wanted = _phone_key(phone_e164)
        if not wanted:
            return None
        for customer in self._customers:
            if customer.phone and _phone_key(customer.phone) == wanted:
                return customer
        return None

    def _load_orders(self) -> dict[str, ShopifyOrder]:
        if self._orders is None:
            loaded = load_orders(self.folder)
            self._problems.extend(loaded.problems)
            self._orders = {order.id: self.resolve_order(order) for order in loaded.records}
        return self._orders

    def resolve_order(self, order: ShopifyOrder) -> ShopifyOrder:
        """Replace a customer given by id only with the full customer of this world."""
        customer = order.customer
        if customer is not None and not customer.email and not customer.addresses:
            known = self._by_id.get(customer.id)
            if known is not None:
                return ShopifyOrder(
                    id=order.id,
                    name=order.name,
                    email=order.email,
                    phone=order.phone,
                    customer=known,
                    bill_to=order.bill_to,
                    ship_to=order.ship_to,
                )
        return order

    def get_order(self, order_id: str) -> ShopifyOrder | None:
        orders = self._load_orders()
        key = f"gid://shopify/Order/{order_id}" if order_id.isdigit() else order_id
        return orders.get(key)

    def iter_orders(self) -> Iterator[ShopifyOrder]:
        """Every order of ``orders.*``, in file order."""
        yield from self._load_orders().values()

    def shipping_countries(self) -> Sequence[str]:
        """The countries of the customers' addresses (a files world has no shipping zones)."""
        return sorted(
            {
                address.country_code.upper()
                for customer in self._customers
                for address in customer.addresses
                if address.country_code
            }
        )

    def problems(self) -> Sequence[SourceProblem]:
        return tuple(self._problems)

    def close(self) -> None:
        """Nothing to release: the files were read at open."""


# --------------------------------------------------------------------------------------------
# Entry points (custsync.erp_connectors / custsync.shopify_connectors, scheme "files")
# --------------------------------------------------------------------------------------------


def _open_erp_reader(url: str, **options: Any) -> FilesErpReader:
    with collector_paused():  # the records and their indexes: no cycles
        return FilesErpReader(_world_dir(url, options.get("base_dir")))


def _open_shopify_reader(url: str, **options: Any) -> FilesShopifyReader:
    with collector_paused():
        return FilesShopifyReader(_world_dir(url, options.get("base_dir")))


def _refuse_writer(url: str, **options: Any) -> Any:
    raise ConfigError(_READ_ONLY, url=url)


#: ``open_reader(url, base_dir=None)``: relative folders resolve against ``base_dir``.
erp = SimpleNamespace(open_reader=_open_erp_reader, open_writer=_refuse_writer)
shopify = SimpleNamespace(
    open_reader=_open_shopify_reader,
    open_writer=_refuse_writer,
    load_orders=load_orders,
    load_links=load_links,
)
