"""Rule unit tests: YAML files with a small world and cases, run through the real Engine.

A rule-test file (schema ``schemas/ruletest.schema.json``, reference in docs/rule-tests.md)
holds a ``world`` (shop settings, ERP customers and reference data, per-country setups,
Shopify customers, links) and ``cases``. Each case is one ``import``, ``order`` or ``export``
decision, with an ``expect``: a *partial* match against the :class:`~.model.Decision`
(only the keys given are checked).

The module is split like the pipeline it tests: :func:`load_test_file` (YAML with positions,
JSON Schema, semantic checks -> :class:`TestFile` or located :class:`Diagnostic` s),
:class:`RuleTestRunner` (world + engine -> :class:`CaseResult`), :func:`compare` (the partial
match), and renderers that compute nothing (:func:`render_text`, :func:`render_json`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import enum
import json
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from ..errors import ConfigError, DiagnosticsError
from ..model import (
    ERP_CUSTOMER_FIELDS,
    CompanyInfo,
    Country,
    CountrySetup,
    CustomerTemplate,
    Decision,
    ErpCustomer,
    ErpReference,
    Link,
    ShopContext,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
    ShopSettings,
    TaxArea,
    erp_code,
)
from ..resources import schema_path
from ..rules.diagnostics import Diagnostic, Severity
from ..rules.load import LoadedDocument, YamlSyntaxError, load_yaml
from ..rules.rulefile import RuleSet
from ..rules.validate import load_rule_set
from .engine import Engine
from .world import World

__all__ = [
    "FORMAT_VERSION",
    "CaseResult",
    "RuleTestRunner",
    "Status",
    "TestCase",
    "TestFile",
    "compare",
    "discover",
    "load_rules",
    "load_test_file",
    "render_json",
    "render_text",
    "summarize",
    "summary_line",
]

FORMAT_VERSION = 1
DEFAULT_SHOP = "main"
CUSTOMER_GID = "gid://shopify/Customer/"
ADDRESS_GID = "gid://shopify/MailingAddress/"
ORDER_GID = "gid://shopify/Order/"
INLINE_CUSTOMER_ID = CUSTOMER_GID + "0"
KINDS = ("import", "order", "export")


# ---------------------------------------------------------------------------------------------
# Located problems of a test file
# ---------------------------------------------------------------------------------------------


def _problem(doc: LoadedDocument, pointer: str, code: str, message: str) -> Diagnostic:
    position = doc.position(pointer)
    return Diagnostic(
        doc.path, position.line, position.column, Severity.ERROR, code, pointer, message
    )


# ---------------------------------------------------------------------------------------------
# The loaded model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorldSpec:
    """The records of a test file's world, as engine records."""

    shop: str
    settings: Mapping[str, Any]
    erp_customers: tuple[ErpCustomer, ...]
    reference: ErpReference
    country_setups: Mapping[str, CountrySetup]
    shopify_customers: tuple[ShopifyCustomer, ...]
    links: tuple[Link, ...]


@dataclass(frozen=True, slots=True)
class TestCase:
    """One case: the record to decide, the settings overrides, and the expectation."""

    file: str
    line: int
    index: int
    name: str
    kind: str  # import | order | export
    settings: ShopSettings
    expect: Mapping[str, Any]
    customer: ShopifyCustomer | None = None  # import
    caller_template: str | None = None  # import
    order: ShopifyOrder | None = None  # order
    erp_customer: ErpCustomer | None = None  # export
    xfail: str | None = None

    __test__ = False  # not a pytest class

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class TestFile:
    path: str
    world: WorldSpec
    rule_dirs: tuple[Path, ...]  # extra folders of the file's ``rules:``, absolute
    cases: tuple[TestCase, ...]

    __test__ = False


class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # the engine raised; counts as failed
    XFAIL = "XFAIL"  # failed as expected (``xfail:``)
    XPASS = "XPASS"  # marked xfail but passed; not a failure

    @property
    def failed(self) -> bool:
        return self in (Status.FAIL, Status.ERROR)


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: TestCase
    status: Status
    mismatches: tuple[str, ...] = ()
    expected: Mapping[str, Any] = field(default_factory=dict)
    actual: Mapping[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    error: str = ""  # for ERROR: what the engine raised
    traceback: str = ""

    @property
    def diff(self) -> str:
        """Unified diff of the expectation and the decision, in YAML (empty when equal)."""
        if self.expected == self.actual:
            return ""
        lines = difflib.unified_diff(
            _yaml(self.expected).splitlines(),
            _yaml(self.actual).splitlines(),
            "expected",
            "actual",
            lineterm="",
            n=3,
        )
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(schema_path("ruletest").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _jsonable(value: Any) -> Any:
    """YAML timestamps become ISO strings so that the JSON Schema sees JSON data."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _unquoted_no_keys(doc: LoadedDocument) -> None:
    """YAML 1.1 reads the key ``no`` as ``false``: give ERP customers their ``no`` back, so
    ``- {no: C00010}`` works as written (positions included)."""
    world = doc.data.get("world") if isinstance(doc.data, dict) else None
    customers = world.get("erp_customers") if isinstance(world, dict) else None
    for index, item in enumerate(customers if isinstance(customers, list) else ()):
        if isinstance(item, dict) and False in item and "no" not in item:
            item["no"] = item.pop(False)
            base = f"/world/erp_customers/{index}"
            if f"{base}/False" in doc.positions:
                doc.positions[f"{base}/no"] = doc.positions[f"{base}/False"]


def _schema_problems(doc: LoadedDocument) -> list[Diagnostic]:
    """Schema problems in the words `custsync validate` uses for rule files (unknown
    property with a did-you-mean, expected types, allowed values)."""
    from ..rules.validate import schema_diagnostics

    if doc.data is None:
        return [_problem(doc, "", "empty", "the file is empty; a rule-test file needs 'cases'")]
    problems = schema_diagnostics(doc, _validator())
    problems.sort(key=lambda p: (p.line, p.column, p.message))
    return problems


def _gid(value: Any, prefix: str) -> str:
    """A number is shorthand for a gid; a string is taken as it is."""
    if isinstance(value, bool):  # pragma: no cover - the schema rejects it
        return str(value)
    if isinstance(value, int):
        return f"{prefix}{value}"
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _time(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


_ERP_TEXT = ERP_CUSTOMER_FIELDS


def _address_fields() -> tuple[str, ...]:
    # imported here: the CLI loads this module for every command, the engine only for tests
    from .engine import SHOPIFY_ADDRESS_FIELDS

    return SHOPIFY_ADDRESS_FIELDS


class _Builder:
    """Turns validated file data into engine records, collecting located problems."""

    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.problems: list[Diagnostic] = []

    def fail(self, pointer: str, code: str, message: str) -> None:
        self.problems.append(_problem(self.doc, pointer, code, message))

    def time(self, data: Mapping[str, Any], key: str, pointer: str) -> dt.datetime | None:
        try:
            return _time(data.get(key))
        except (TypeError, ValueError):
            self.fail(f"{pointer}/{key}", "value", f"{data.get(key)!r} is not an ISO 8601 time")
            return None

    def address(self, data: Mapping[str, Any]) -> ShopifyAddress:
        return ShopifyAddress(
            id=_gid(data["id"], ADDRESS_GID) if "id" in data else "",
            default=bool(data.get("default", False)),
            **{key: _text(data.get(key)) for key in _address_fields()},
        )

    def shopify_customer(self, data: Mapping[str, Any], pointer: str) -> ShopifyCustomer:
        return ShopifyCustomer(
            id=_gid(data["id"], CUSTOMER_GID) if "id" in data else INLINE_CUSTOMER_ID,
            first_name=_text(data.get("first_name")),
            last_name=_text(data.get("last_name")),
            email=_text(data.get("email")),
            phone=_text(data.get("phone")),
            state=_text(data.get("state")),
            tags=tuple(str(tag) for tag in data.get("tags") or ()),
            note=_text(data.get("note")),
            updated_at=self.time(data, "updated_at", pointer),
            addresses=tuple(self.address(item) for item in data.get("addresses") or ()),
        )

    def erp_customer(self, data: Mapping[str, Any]) -> ErpCustomer:
        values: dict[str, Any] = {key: _text(data.get(key)) for key in _ERP_TEXT if key in data}
        if "no" in values:
            values["no"] = erp_code(values["no"])  # as Business Central stores it
        return ErpCustomer(extra=dict(data.get("extra") or {}), **values)

    def world(self, data: Mapping[str, Any]) -> WorldSpec:
        erp: list[ErpCustomer] = []
        seen: set[str] = set()
        for index, item in enumerate(data.get("erp_customers") or ()):
            customer = self.erp_customer(item)
            if customer.no in seen:
                self.fail(f"/world/erp_customers/{index}/no", "duplicate", "duplicate customer no.")
            seen.add(customer.no)
            erp.append(customer)
        shopify: list[ShopifyCustomer] = []
        seen = set()
        for index, item in enumerate(data.get("shopify_customers") or ()):
            pointer = f"/world/shopify_customers/{index}"
            shopify_customer = self.shopify_customer(item, pointer)
            if shopify_customer.id in seen:
                message = f"duplicate Shopify customer {shopify_customer.id}"
                self.fail(f"{pointer}/id", "duplicate", message)
            seen.add(shopify_customer.id)
            shopify.append(shopify_customer)
        shop = str(data.get("shop") or DEFAULT_SHOP)
        links = []
        for index, item in enumerate(data.get("links") or ()):
            pointer = f"/world/links/{index}"
            links.append(
                Link(
                    shop=shop,
                    shopify_id=_gid(item["shopify_id"], CUSTOMER_GID),
                    erp_no=erp_code(str(item["erp_no"])),
                    address_ids=tuple(_gid(a, ADDRESS_GID) for a in item.get("address_ids") or ()),
                    last_import_at=self.time(item, "last_import_at", pointer),
                    last_export_at=self.time(item, "last_export_at", pointer),
                    own_write_shopify_updated_at=self.time(
                        item, "own_write_shopify_updated_at", pointer
                    ),
                )
            )
        company = data.get("company") or {}
        reference = ErpReference(
            countries=tuple(
                Country(str(c["code"]), _text(c.get("iso_code")), _text(c.get("name")))
                for c in data.get("countries") or ()
            ),
            company=CompanyInfo(_text(company.get("name")), _text(company.get("country_code"))),
            templates=tuple(
                CustomerTemplate(
                    str(t["code"]), _text(t.get("description")), dict(t.get("fields") or {})
                )
                for t in data.get("templates") or ()
            ),
        )
        setups: dict[str, CountrySetup] = {}
        for index, item in enumerate(data.get("country_setups") or ()):
            iso = str(item["iso_code"])
            if iso in setups:
                self.fail(
                    f"/world/country_setups/{index}/iso_code", "duplicate", f"duplicate {iso}"
                )
            setups[iso] = CountrySetup(
                iso_code=iso,
                default_customer_no=_text(item.get("default_customer_no")),
                customer_template_code=_text(item.get("customer_template_code")),
                tax_areas=tuple(
                    TaxArea(
                        county=_text(row.get("county")),
                        county_code=_text(row.get("county_code")),
                        tax_area_code=_text(row.get("tax_area_code")),
                        tax_liable=bool(row.get("tax_liable", False)),
                        vat_bus_posting_group=_text(row.get("vat_bus_posting_group")),
                    )
                    for row in item.get("tax_areas") or ()
                ),
            )
        return WorldSpec(
            shop=shop,
            settings=dict(data.get("settings") or {}),
            erp_customers=tuple(erp),
            reference=reference,
            country_setups=setups,
            shopify_customers=tuple(shopify),
            links=tuple(links),
        )

    def settings(
        self, world: WorldSpec, overrides: Mapping[str, Any], pointer: str
    ) -> ShopSettings:
        values = {**world.settings, **overrides}
        settings = ShopSettings(**values)
        if settings.shopify_can_update_customers and settings.can_update_shopify_customers:
            self.fail(
                pointer,
                "settings",
                "shopify_can_update_customers and can_update_shopify_customers are mutually "
                "exclusive; set at most one of them to true",
            )
        return settings

    def customer_ref(
        self, ref: Any, world: Mapping[str, ShopifyCustomer], pointer: str
    ) -> ShopifyCustomer | None:
        if isinstance(ref, Mapping):
            return self.shopify_customer(ref, pointer)
        gid = _gid(ref, CUSTOMER_GID)
        found = world.get(gid)
        if found is None:
            self.fail(pointer, "unknown-customer", f"no Shopify customer {gid} in world")
        return found

    def case(self, data: Mapping[str, Any], index: int, world: WorldSpec) -> TestCase | None:
        pointer = f"/cases/{index}"
        position = self.doc.position(pointer)
        settings = self.settings(world, data.get("settings") or {}, f"{pointer}/settings")
        kind = next(k for k in KINDS if k in data)
        spec = data[kind]
        common: dict[str, Any] = {
            "file": self.doc.path,
            "line": position.line,
            "index": index,
            "name": str(data["name"]),
            "kind": kind,
            "settings": settings,
            "expect": _normalize_expect(data["expect"]),
            "xfail": data.get("xfail"),
        }
        by_id = {customer.id: customer for customer in world.shopify_customers}
        if kind == "import":
            spec = spec if isinstance(spec, Mapping) else {"customer": spec}
            customer = self.customer_ref(spec["customer"], by_id, f"{pointer}/import")
            if customer is None:
                return None
            return TestCase(
                **common, customer=customer, caller_template=spec.get("caller_template")
            )
        if kind == "order":
            order_customer = None
            if spec.get("customer") is not None:
                order_customer = self.customer_ref(
                    spec["customer"], by_id, f"{pointer}/order/customer"
                )
                if order_customer is None:
                    return None
            order = ShopifyOrder(
                id=_gid(spec["id"], ORDER_GID) if "id" in spec else f"{ORDER_GID}{index + 1}",
                name=_text(spec.get("name")) or f"#{1001 + index}",
                email=_text(spec.get("email")),
                phone=_text(spec.get("phone")),
                customer=order_customer,
                bill_to=self.address(spec["bill_to"]) if "bill_to" in spec else None,
                ship_to=self.address(spec["ship_to"]) if "ship_to" in spec else None,
            )
            return TestCase(**common, order=order)
        number = spec["customer"] if isinstance(spec, Mapping) else spec
        erp = next((c for c in world.erp_customers if c.no == erp_code(str(number))), None)
        if erp is None:
            self.fail(f"{pointer}/export", "unknown-customer", f"no ERP customer {number} in world")
            return None
        return TestCase(**common, erp_customer=erp)


def _normalize_expect(expect: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(expect)
    if isinstance(result.get("shopify_id"), int):
        result["shopify_id"] = _gid(result["shopify_id"], CUSTOMER_GID)
    return result


def load_test_file(path: str | Path) -> TestFile:
    """Load, validate and build one rule-test file; raise DiagnosticsError with every problem."""
    from ..rules.validate import display_path

    shown = display_path(Path(path))  # the shipped suite as rules/tests/<file>, like rules
    try:
        doc = load_yaml(path)
    except YamlSyntaxError as exc:
        pos = exc.position
        raise DiagnosticsError(
            [Diagnostic(shown, pos.line, pos.column, Severity.ERROR, "yaml", "", exc.message)]
        ) from None
    except OSError as exc:
        message = f"cannot read: {exc.strerror or exc}"
        raise DiagnosticsError(
            [Diagnostic(shown, 0, 0, Severity.ERROR, "io", "", message)]
        ) from None
    doc.path = shown
    problems = [
        Diagnostic(doc.path, pos.line, pos.column, Severity.ERROR, "yaml", pointer, message)
        for pointer, pos, message in doc.problems
    ]
    _unquoted_no_keys(doc)
    doc.data = _jsonable(doc.data)
    problems += _schema_problems(doc)
    if problems:
        raise DiagnosticsError(problems)
    builder = _Builder(doc)
    data: Mapping[str, Any] = doc.data
    world = builder.world(data.get("world") or {})
    base = Path(path).resolve().parent
    rule_dirs = []
    for index, folder in enumerate(data.get("rules") or ()):
        resolved = (base / folder).resolve()
        if not resolved.is_dir():
            builder.fail(f"/rules/{index}", "rules-folder", f"no such rule folder: {folder}")
        rule_dirs.append(resolved)
    cases = []
    names: set[str] = set()
    for index, raw in enumerate(data["cases"]):
        if raw["name"] in names:
            builder.fail(
                f"/cases/{index}/name", "duplicate", f"duplicate case name {raw['name']!r}"
            )
        names.add(raw["name"])
        case = builder.case(raw, index, world)
        if case is not None:
            cases.append(case)
    if builder.problems:
        raise DiagnosticsError(builder.problems)
    return TestFile(doc.path, world, tuple(rule_dirs), tuple(cases))


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """The test files under ``paths``: files as given, folders' ``*.yaml``/``*.yml`` sorted;
    each file once (a folder given twice, e.g. by the config and ``--rules``, runs once)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.exists():
            found.append(path)
        else:
            raise ConfigError(f"{raw}: no such file or folder")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


# ---------------------------------------------------------------------------------------------
# Comparing a decision with an expectation
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Decision values as YAML/JSON data: enums by value, records as mappings."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _matches(actual: Any, expected: Any) -> bool:
    """Partial match: mappings check only the expected keys (``null`` = absent, empty or
    false),
    lists match element by element, a number matches its text."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return False
        for key, want in expected.items():
            if want is None:
                if not _empty(actual.get(key)) and actual.get(key) is not False:
                    return False
            elif key not in actual or not _matches(actual[key], want):
                return False
        return True
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_matches(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected or actual == expected
    if isinstance(expected, int | float) and isinstance(actual, str):
        return _text(expected) == actual
    return bool(actual == expected)


def _project(actual: Any, expected: Any) -> Any:
    """``actual`` cut down to the keys of ``expected`` (for a focused diff)."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return {key: _project(actual.get(key), want) for key, want in expected.items()}
    return actual


def _show(value: Any) -> str:
    return "null" if value is None else repr(value)


#: skip reasons that mean "the engine could not decide", not "the rules say skip"
_ENGINE_TROUBLE = frozenset({"record-error", "no-rule"})


def compare(
    expect: Mapping[str, Any], decision: Decision
) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Check ``decision`` against the partial expectation.

    Returns the mismatches (one readable line each), and the expected and actual views for a
    diff: the actual view repeats the expected value where it matched, so the diff shows only
    what differs.
    """
    mismatches: list[str] = []
    actual_view: dict[str, Any] = {}
    if (
        decision.reason_code in _ENGINE_TROUBLE
        and expect.get("reason_code") != decision.reason_code
    ):
        # the engine could not decide: never let a bare ``action: skip`` pass on that
        mismatches.append(f"the engine did not decide ({decision.reason_code}): {decision.message}")
    scalars = {
        "action": decision.action.value,
        "erp_no": decision.erp_no,
        "shopify_id": decision.shopify_id,
        "reason_code": decision.reason_code,
        "new_link": decision.new_link,
    }
    fired = [rule.id for rule in decision.rules]
    changes = {change.field: _plain(change.new) for change in decision.changes}
    # a field "changes" only when its value does: a create that sets "" leaves it empty
    effective = {
        change.field
        for change in decision.changes
        if not (change.old == change.new or (_empty(change.old) and _empty(change.new)))
    }
    for key, want in expect.items():
        if key in scalars:
            got = scalars[key]
            ok = _matches(got, want) if want is not None else got is None
            if not ok:
                mismatches.append(f"{key}: expected {_show(want)}, got {_show(got)}")
            actual_view[key] = want if ok else got
        elif key == "message_contains":
            message = decision.message or ""
            ok = str(want).casefold() in message.casefold()
            if not ok:
                mismatches.append(f"message: {want!r} not in {message!r}")
            actual_view[key] = want if ok else message
        elif key == "changes" and not want:
            # ``changes: {}`` asserts that nothing changes at all
            if effective:
                mismatches.append(f"changes: expected none, got {', '.join(sorted(effective))}")
                actual_view[key] = {name: changes[name] for name in sorted(effective)}
            else:
                actual_view[key] = {}
        elif key == "changes":
            view: dict[str, Any] = {}
            for name, new in (want or {}).items():
                if new is None:
                    ok = name not in effective
                    if not ok:
                        mismatches.append(
                            f"changes.{name}: expected unchanged, got {_show(changes[name])}"
                        )
                else:
                    ok = name in changes and _matches(changes[name], new)
                    if not ok:
                        got_text = _show(changes[name]) if name in changes else "unchanged"
                        mismatches.append(f"changes.{name}: expected {_show(new)}, got {got_text}")
                view[name] = new if ok else changes.get(name)
            actual_view[key] = view
        elif key == "rules":
            missing = [rule_id for rule_id in want if rule_id not in fired]
            if missing:
                mismatches.append(
                    f"rules: {', '.join(missing)} did not fire (fired: {', '.join(fired) or 'none'})"
                )
            actual_view[key] = fired if missing else want
        elif key == "not_rules":
            present = [rule_id for rule_id in want if rule_id in fired]
            if present:
                mismatches.append(f"not_rules: {', '.join(present)} fired")
            actual_view[key] = [r for r in want if r not in present] if present else want
        elif key == "payload":
            payload = _plain(decision.payload)
            view = {}
            for name, item in (want or {}).items():
                ok = _matches(payload, {name: item})
                if not ok:
                    mismatches.append(
                        f"payload.{name}: expected {_show(item)}, got {_show(payload.get(name))}"
                    )
                view[name] = item if ok else _project(payload.get(name), item)
            actual_view[key] = view
    return mismatches, dict(expect), actual_view


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


class EngineLike(Protocol):
    def decide_import(
        self,
        world: Any,
        shop: Any,
        customer: ShopifyCustomer,
        *,
        caller_template: str | None = None,
    ) -> Decision: ...

    def decide_order(self, world: Any, shop: Any, order: ShopifyOrder) -> Decision: ...

    def decide_export(self, world: Any, shop: Any, customer: ErpCustomer) -> Decision: ...


EngineProvider = Callable[[tuple[Path, ...]], EngineLike]
#: (world spec) -> the engine's World; (world spec, settings) -> its ShopContext
WorldFactory = Callable[[WorldSpec], Any]
ShopFactory = Callable[[WorldSpec, ShopSettings], Any]


def load_rules(extra_dirs: Sequence[Path] = ()) -> RuleSet:
    """The shipped rules with ``extra_dirs`` applied over them, in that order.

    Uses the validator (which reports every problem with its position);
    raises DiagnosticsError / ConfigError for invalid rules.
    """
    rule_set, diagnostics = load_rule_set(list(extra_dirs))
    if rule_set is None:
        raise DiagnosticsError([d for d in diagnostics if d.is_error] or list(diagnostics))
    result: RuleSet = rule_set
    return result


def _default_engine(dirs: tuple[Path, ...]) -> EngineLike:
    return Engine(load_rules(dirs))


def _default_world(spec: WorldSpec) -> Any:
    return World(spec.erp_customers, spec.reference, spec.shopify_customers, spec.links)


def _default_shop(spec: WorldSpec, settings: ShopSettings) -> Any:
    return ShopContext(name=spec.shop, settings=settings, country_setups=spec.country_setups)


class RuleTestRunner:
    """Runs cases through an engine; engines are cached per rule-folder list, worlds per file.

    ``rule_dirs`` are user folders applied over the shipped rules for every file (before the
    file's own ``rules:``). The factories exist so the runner can be tested without rules.
    """

    def __init__(
        self,
        rule_dirs: Sequence[Path] = (),
        *,
        engine_provider: EngineProvider | None = None,
        world_factory: WorldFactory | None = None,
        shop_factory: ShopFactory | None = None,
    ) -> None:
        self.rule_dirs = tuple(Path(d).resolve() for d in rule_dirs)
        self._engine_provider = engine_provider or _default_engine
        self._world_factory = world_factory or _default_world
        self._shop_factory = shop_factory or _default_shop
        self._engines: dict[tuple[Path, ...], EngineLike] = {}
        self._worlds: dict[int, Any] = {}

    def engine_for(self, test_file: TestFile) -> EngineLike:
        key = (*self.rule_dirs, *test_file.rule_dirs)
        if key not in self._engines:
            self._engines[key] = self._engine_provider(key)
        return self._engines[key]

    def world_for(self, test_file: TestFile) -> Any:
        key = id(test_file.world)
        if key not in self._worlds:
            self._worlds[key] = (test_file.world, self._world_factory(test_file.world))
        return self._worlds[key][1]

    def decide(self, test_file: TestFile, case: TestCase) -> Decision:
        engine = self.engine_for(test_file)
        world = self.world_for(test_file)
        shop = self._shop_factory(test_file.world, case.settings)
        if case.kind == "import":
            assert case.customer is not None
            return engine.decide_import(
                world, shop, case.customer, caller_template=case.caller_template
            )
        if case.kind == "order":
            assert case.order is not None
            return engine.decide_order(world, shop, case.order)
        assert case.erp_customer is not None
        return engine.decide_export(world, shop, case.erp_customer)

    def run_case(self, test_file: TestFile, case: TestCase, *, verbose: bool = False) -> CaseResult:
        """Decide the case and compare. Engine exceptions are an ERROR result, not a crash;
        rule-set problems (DiagnosticsError, ConfigError) propagate: no case can run."""
        try:
            decision = self.decide(test_file, case)
        except (ConfigError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug in the engine must not stop the other cases
            status = Status.XFAIL if case.xfail else Status.ERROR
            return CaseResult(
                case,
                status,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc() if verbose else "",
            )
        mismatches, expected, actual = compare(case.expect, decision)
        if mismatches:
            status = Status.XFAIL if case.xfail else Status.FAIL
        else:
            status = Status.XPASS if case.xfail else Status.PASS
        return CaseResult(case, status, tuple(mismatches), expected, actual, decision)

    def run_file(
        self, test_file: TestFile, *, verbose: bool = False, select: str | None = None
    ) -> Iterator[CaseResult]:
        for case in test_file.cases:
            if select and select.casefold() not in case.name.casefold():
                continue
            yield self.run_case(test_file, case, verbose=verbose)


# ---------------------------------------------------------------------------------------------
# Rendering (computes nothing)
# ---------------------------------------------------------------------------------------------


def _yaml(data: Any) -> str:
    return yaml.safe_dump(_plain(data), sort_keys=False, allow_unicode=True, width=100)


def summarize(results: Sequence[CaseResult], load_errors: int = 0) -> dict[str, int]:
    counts = {status.value: 0 for status in Status}
    for result in results:
        counts[result.status.value] += 1
    return {
        "passed": counts["PASS"],
        "failed": counts["FAIL"] + counts["ERROR"],
        "xfailed": counts["XFAIL"],
        "xpassed": counts["XPASS"],
        "file_errors": load_errors,
    }


def summary_line(summary: Mapping[str, int]) -> str:
    line = f"{summary['passed']} passed, {summary['failed']} failed"
    for key in ("xfailed", "xpassed"):
        if summary[key]:
            line += f", {summary[key]} {key}"
    if summary["file_errors"]:
        plural = "s" if summary["file_errors"] != 1 else ""
        line += f", {summary['file_errors']} file{plural} with errors"
    return line


def _describe(decision: Decision) -> str:
    parts = [decision.action.value]
    if decision.erp_no:
        parts.append(f"erp_no={decision.erp_no}")
    if decision.shopify_id:
        parts.append(f"shopify_id={decision.shopify_id}")
    if decision.reason_code:
        parts.append(f"reason={decision.reason_code}")
    text = " ".join(parts)
    if decision.message:
        text += f": {decision.message}"
    fired = ", ".join(f"{r.id} ({r.file}:{r.line})" for r in decision.rules)
    return text + (f"\n    rules: {fired}" if fired else "")


def render_result(result: CaseResult) -> str:
    """One line per case; for failures the reasons and a diff, indented."""
    case = result.case
    line = f"{result.status.value} {case.where} {case.name}"
    lines = [line]
    if result.status in (Status.PASS, Status.XPASS):
        if result.status is Status.XPASS:
            lines.append(f"  (marked xfail: {case.xfail})")
        return "\n".join(lines)
    if result.status is Status.XFAIL:
        lines[0] += f"  (xfail: {case.xfail})"
        return "\n".join(lines)
    if result.error:
        lines.append(f"  engine error: {result.error}")
        if result.traceback:
            lines.extend("  " + row for row in result.traceback.rstrip().splitlines())
        return "\n".join(lines)
    lines.extend(f"  {mismatch}" for mismatch in result.mismatches)
    if result.decision is not None:
        lines.append(f"  decision: {_describe(result.decision)}")
    diff = result.diff
    if diff:
        lines.extend(f"  {row}" for row in diff.splitlines())
    return "\n".join(lines)


def render_text(results: Sequence[CaseResult], load_errors: int = 0) -> str:
    body = [render_result(result) for result in results]
    body.append(summary_line(summarize(results, load_errors)))
    return "\n".join(body) + "\n"


def result_json(result: CaseResult) -> dict[str, Any]:
    case = result.case
    return {
        "file": case.file,
        "line": case.line,
        "name": case.name,
        "kind": case.kind,
        "status": result.status.value,
        "xfail": case.xfail,
        "mismatches": list(result.mismatches),
        "expected": _plain(result.expected),
        "actual": _plain(result.actual),
        "error": result.error or None,
        "decision": _plain(result.decision) if result.decision is not None else None,
    }


def render_json(results: Sequence[CaseResult], problems: Sequence[Diagnostic] = ()) -> str:
    files_with_errors = len({problem.path for problem in problems})
    document = {
        "format_version": FORMAT_VERSION,
        "results": [result_json(result) for result in results],
        "problems": [{**p.as_json(), "text": p.render()} for p in problems],
        "summary": summarize(results, files_with_errors),
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
