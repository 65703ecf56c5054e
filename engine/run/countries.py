"""Per-country setup initialisation (``custsync countries init``).

For every country the shop ships to, add a per-country setup whose tax area rows are the
country's provinces (``county`` name, ``county_code``; ``tax_area_code`` blank), so that the
county code <-> name lookups work from the start (behaviour.md §1).

Where the provinces come from:

* **the store** (authoritative: Shopify's own province codes), through the Shopify reader's
  ``shipping_countries()`` and, when the connector has it, ``shipping_provinces()``
  (``{iso: ((code, name), ...)}`` from the delivery zones);
* else **ISO 3166-2** through pycountry, for the countries whose addresses have provinces
  in Shopify (:data:`PROVINCE_COUNTRIES`); the subdivision codes lose their country prefix
  (``US-CA`` -> ``CA``; Japan keeps it: ``JP-13``, as Shopify does). ISO codes can differ from
  Shopify's for a few countries (e.g. Mexico ``CMX`` vs ``CDMX``): review them.

Where the setups are stored: in the config file itself (``shops[].countries``), edited in
place with ruamel.yaml so the user's comments, order and quoting are kept (and the spacing
of the lines it did not change: ruamel respaces them). Existing setups and
rows are never changed: only missing countries and missing county rows are added (a row is
missing when neither its code nor its name is in the setup yet).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from io import StringIO
from pathlib import Path
from typing import Any

import pycountry
import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from ..errors import ConfigError, CustsyncError

__all__ = [
    "PROVINCE_COUNTRIES",
    "CountriesReport",
    "CountryProvinces",
    "CountryResult",
    "init_config_countries",
    "iso_provinces",
    "store_provinces",
]

#: Countries whose Shopify addresses carry a province and whose ISO 3166-2 codes match
#: Shopify's closely enough to seed from (others get a setup without county rows from ISO).
PROVINCE_COUNTRIES = frozenset(
    {
        "AE", "AR", "AU", "BR", "CA", "CL", "CN", "CO", "EG", "ES", "IE", "IN", "IT", "JP",
        "MX", "NG", "NZ", "PE", "US", "UY", "ZA",
    }
)  # fmt: skip
#: countries whose Shopify provinces are ISO's lowest level (not the top-level regions)
_LEAF_LEVEL = frozenset({"ES", "IE", "IT"})
#: countries whose Shopify province codes keep the ISO country prefix
_KEEP_PREFIX = frozenset({"JP"})
#: ISO subdivision types that are not provinces of the country's addresses
_NOT_PROVINCES = frozenset({"Special administrative region"})


@dataclass(frozen=True, slots=True)
class CountryProvinces:
    """A country to set up with its provinces (code, name) and where they came from."""

    iso_code: str
    provinces: tuple[tuple[str, str], ...] = ()
    source: str = "iso"  # "store" | "iso"


@dataclass(frozen=True, slots=True)
class CountryResult:
    iso_code: str
    added_setup: bool  # the country had no setup before
    added_rows: tuple[str, ...] = ()  # county codes added
    kept_rows: int = 0  # rows that were already there
    source: str = "iso"


@dataclass(slots=True)
class CountriesReport:
    path: Path
    shop: str
    results: list[CountryResult] = field(default_factory=list)
    written: bool = False

    @property
    def changed(self) -> bool:
        return any(r.added_setup or r.added_rows for r in self.results)


# --------------------------------------------------------------------------------------------
# Provinces
# --------------------------------------------------------------------------------------------


def iso_provinces(iso_code: str) -> tuple[tuple[str, str], ...]:
    """The provinces of a country from ISO 3166-2 as (code without prefix, name), by code.

    Empty for countries outside :data:`PROVINCE_COUNTRIES` (their addresses have none).
    """
    iso_code = iso_code.upper()
    if iso_code not in PROVINCE_COUNTRIES:
        return ()
    subdivisions = list(pycountry.subdivisions.get(country_code=iso_code) or [])
    if iso_code in _LEAF_LEVEL:
        parents = {s.parent_code for s in subdivisions if s.parent_code}
        chosen = [s for s in subdivisions if s.code not in parents]
    else:
        chosen = [s for s in subdivisions if s.parent_code is None]
    result: dict[str, str] = {}
    names: set[str] = set()
    for subdivision in chosen:
        if subdivision.type in _NOT_PROVINCES:
            continue
        code = subdivision.code
        if iso_code not in _KEEP_PREFIX:
            code = code.split("-", 1)[1]
        name = str(subdivision.name)
        if name in names:  # county names must be unique within a setup
            continue
        names.add(name)
        result[code] = name
    return tuple(sorted(result.items()))


def store_provinces(
    reader: Any, countries: Iterable[str] | None = None, notes: list[str] | None = None
) -> list[CountryProvinces]:
    """Countries the shop ships to (or ``countries``) with provinces from the store where the
    connector offers ``shipping_provinces()``, else from ISO 3166-2. A country the delivery
    zones list without provinces gets none (Shopify has none for it). When the provinces
    cannot be read (e.g. no ``read_shipping`` scope), ISO is used and ``notes`` says why."""
    wanted = (
        sorted({c.upper() for c in countries})
        if countries
        else sorted({str(c).upper() for c in reader.shipping_countries()})
    )
    zones: Mapping[str, Sequence[tuple[str, str]]] = {}
    getter = getattr(reader, "shipping_provinces", None)
    if getter is not None:
        try:
            zones = getter()
        except CustsyncError as exc:
            if notes is not None:
                notes.append(f"provinces not readable from the store ({exc.render()}): using ISO")
    result = []
    for iso in wanted:
        if iso in zones:
            provinces = tuple((str(code), str(name)) for code, name in zones[iso])
            result.append(CountryProvinces(iso, provinces, "store"))
        else:
            result.append(CountryProvinces(iso, iso_provinces(iso), "iso"))
    return result


def from_iso(countries: Iterable[str]) -> list[CountryProvinces]:
    return [CountryProvinces(c.upper(), iso_provinces(c), "iso") for c in sorted(set(countries))]


def check_iso_codes(codes: Iterable[str]) -> list[str]:
    """The codes that are not ISO 3166-1 alpha-2 country codes."""
    return [c for c in codes if len(c) != 2 or pycountry.countries.get(alpha_2=c.upper()) is None]


# --------------------------------------------------------------------------------------------
# The config file
# --------------------------------------------------------------------------------------------


def _yaml(text: str) -> YAML:
    yaml = YAML()  # round trip: comments, key order, quotes and flow styles are kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    mapping, sequence, offset = _indentation(text)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _indentation(text: str) -> tuple[int, int, int]:
    """Guess the file's block indentation (``shops:\\n  - name`` -> 2, 4, 2)."""
    lines = text.splitlines()
    for index, line in enumerate(lines[1:], start=1):
        match = re.match(r"^(\s*)- \S", line)
        previous = lines[index - 1]
        if match and previous.rstrip().endswith(":") and not previous.lstrip().startswith("#"):
            parent = len(previous) - len(previous.lstrip())
            offset = max(0, len(match.group(1)) - parent)
            return 2, offset + 2, offset
    return 2, 4, 2


def init_config_countries(
    path: Path, shop: str, countries: Sequence[CountryProvinces], *, write: bool = True
) -> CountriesReport:
    """Add missing setups and county rows for ``countries`` to shop ``shop`` of the config
    file at ``path``; the file is only written when something was added and the result is a
    valid config (checked with the config loader before replacing the file atomically)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    yaml = _yaml(text)
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    shop_node = _shop_node(data, shop, path)
    setups = shop_node.get("countries")
    if not isinstance(setups, CommentedSeq):
        setups = CommentedSeq()
        shop_node["countries"] = setups
    if not setups:
        setups.fa.set_block_style()
    report = CountriesReport(path, shop)
    for country in countries:
        report.results.append(_merge_country(setups, country))
    if not report.changed or not write:
        return report
    out = StringIO()
    yaml.dump(data, out)
    new_text = _keep_spacing(text, out.getvalue())
    _check(new_text, path)
    _replace(path, new_text)
    report.written = True
    return report


def _keep_spacing(original: str, dumped: str) -> str:
    """``dumped`` with the lines it did not change taken from ``original``.

    ruamel keeps comments, key order and quotes but respaces every line it writes
    (``erp:   {url: x}`` -> ``erp: {url: x}``). A line of ``dumped`` that differs from the
    aligned ``original`` line only in blanks after the same indentation is written as the
    user had it. The result is used only when it reads as the same data as ``dumped`` (the
    guard against a blank that mattered, inside quotes)."""
    old_lines, new_lines = original.splitlines(), dumped.splitlines()
    matcher = SequenceMatcher(
        None,
        [_without_blanks(line) for line in old_lines],
        [_without_blanks(line) for line in new_lines],
        autojunk=False,  # rows repeat: every line may align
    )
    merged: list[str] = []
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        merged.extend(
            old_lines[old_start:old_end] if tag == "equal" else new_lines[new_start:new_end]
        )
    text = "\n".join(merged) + ("\n" if dumped.endswith("\n") else "")
    loader = getattr(pyyaml, "CSafeLoader", pyyaml.SafeLoader)  # both read alike: enough
    try:
        same = bool(pyyaml.load(text, Loader=loader) == pyyaml.load(dumped, Loader=loader))
    except (pyyaml.YAMLError, ValueError):  # ValueError: a date such as 2026-13-45
        same = False
    return text if same else dumped


def _without_blanks(line: str) -> str:
    """The line's indentation, then its text without blanks (``{a:  b ,c}`` -> ``{a:b,c}``)."""
    text = line.lstrip()
    return line[: len(line) - len(text)] + "".join(text.split())


def _shop_node(data: Any, shop: str, path: Path) -> CommentedMap:
    shops = data.get("shops") if isinstance(data, CommentedMap) else None
    if not isinstance(shops, CommentedSeq):
        raise ConfigError(f"{path}: no 'shops' list in the config")
    names = [s.get("name") for s in shops if isinstance(s, CommentedMap)]
    for node in shops:
        if isinstance(node, CommentedMap) and node.get("name") == shop:
            return node
    raise ConfigError(
        f"{path}: no shop named {shop!r} (the config has: {', '.join(map(str, names))})"
    )


def _merge_country(setups: CommentedSeq, country: CountryProvinces) -> CountryResult:
    existing = next(
        (
            s
            for s in setups
            if isinstance(s, CommentedMap)
            and str(s.get("iso_code", "")).upper() == country.iso_code
        ),
        None,
    )
    added_setup = existing is None
    if existing is None:
        existing = CommentedMap(
            [
                ("iso_code", country.iso_code),
                ("default_customer_no", ""),
                ("customer_template_code", ""),
                ("tax_areas", CommentedSeq()),
            ]
        )
        setups.append(existing)
    rows = existing.get("tax_areas")
    if not isinstance(rows, CommentedSeq):
        rows = CommentedSeq()
        existing["tax_areas"] = rows
    codes = {str(r.get("county_code", "")) for r in rows if isinstance(r, Mapping)}
    names = {str(r.get("county", "")) for r in rows if isinstance(r, Mapping)}
    kept = len(rows)
    added = []
    for code, name in country.provinces:
        if code in codes or name in names:
            continue
        row = CommentedMap(
            [
                ("county", _scalar(name)),
                ("county_code", _scalar(code)),
                ("tax_area_code", ""),
                ("tax_liable", False),
                ("vat_bus_posting_group", ""),
            ]
        )
        row.fa.set_flow_style()
        if not rows:
            rows.fa.set_block_style()
        rows.append(row)
        codes.add(code)
        names.add(name)
        added.append(code)
    if not rows:
        rows.fa.set_flow_style()
    return CountryResult(country.iso_code, added_setup, tuple(added), kept, country.source)


def _scalar(text: str) -> str:
    """``text``, quoted when a YAML 1.1 reader (the config loader) would not read it back as
    the same string: province codes such as ``ON``, ``NO`` or ``01``."""
    try:
        same = pyyaml.safe_load(text) == text
    except pyyaml.YAMLError:
        same = False
    return text if same else DoubleQuotedScalarString(text)


def _check(text: str, path: Path) -> None:
    from ..config import load_config_text
    from ..rules.diagnostics import has_errors

    _config, diagnostics = load_config_text(text, str(path), path.resolve().parent)
    if has_errors(diagnostics):
        first = next(d for d in diagnostics if d.is_error)
        raise ConfigError(f"{path}: not changed: the result would be invalid: {first.render()}")


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a crash leaves the old file or the new one)."""
    directory = path.resolve().parent
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            if path.exists():
                os.chmod(temp, path.stat().st_mode & 0o7777)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
