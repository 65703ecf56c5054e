"""The plan: every decision of a dry run, with its summary, warnings and source fingerprints.

:func:`build_plan` reads the ERP and the shops through *readers* only and asks the
:class:`~custsync.engine.decide.engine.Engine` for one Decision per record and direction; it never
receives or builds a writer, so planning cannot change anything. ``custsync sync`` applies a
Plan, and ``sync --plan FILE`` applies a saved one: :func:`plan_to_json` /
:func:`plan_from_json` round-trip it (``format_version`` "1.0", schema
``schemas/plan.schema.json``).

Decisions are kept in a deterministic order: direction (import, export, order), then shop,
then record key (numbers inside keys compare as numbers, so ``Customer/9`` < ``Customer/10``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import io
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from ..errors import ConfigError
from ..masking import json_surrogates_escaped, mask_text
from ..model import (
    Action,
    Decision,
    Direction,
    FieldChange,
    FiredRule,
    ShopifyAddress,
)
from ..ports import ReportsProblems, SourceProblem

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = [
    "DIRECTION_ORDER",
    "FORMAT_VERSION",
    "JSON_ITEM_SEPARATOR",
    "PRETTY_DECISIONS",
    "Plan",
    "PlanSummary",
    "PlanTally",
    "PlanWarning",
    "decision_from_dict",
    "decision_sort_key",
    "decision_to_json",
    "file_fingerprint",
    "plan_from_json",
    "plan_json_frame",
    "plan_order_key",
    "plan_time",
    "plan_to_dict",
    "plan_to_json",
    "plan_validator",
    "validate_plan_data",
    "write_plan_json",
]

FORMAT_VERSION = "1.0"

#: the order of directions in a plan (and in which ``sync`` applies them)
DIRECTION_ORDER: tuple[Direction, ...] = (Direction.IMPORT, Direction.EXPORT, Direction.ORDER)

#: summary keys, in display order
_ACTIONS: tuple[Action, ...] = (
    Action.CREATE,
    Action.UPDATE,
    Action.LINK,
    Action.SKIP,
    Action.NOOP,
)


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """Something the user should know that is not a decision (e.g. a bad record skipped)."""

    code: str  # kebab-case, e.g. "bad-record"
    message: str
    location: str = ""  # "world/erp_customers.csv:7"
    record: str = ""
    shop: str = ""


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """Counts by action, overall and per direction (computed from the decisions)."""

    counts: Mapping[str, int]
    by_direction: Mapping[str, Mapping[str, int]]

    @property
    def changes(self) -> int:
        return sum(
            self.counts[action.value] for action in (Action.CREATE, Action.UPDATE, Action.LINK)
        )


class PlanTally:
    """Counts by action as decisions go by: the summary of a plan whose decisions are not
    kept in memory (``custsync plan`` streams them to its output)."""

    __slots__ = ("_per",)

    def __init__(self) -> None:
        self._per: dict[str, Counter[str]] = {}

    def add(self, decision: Decision) -> None:
        per = self._per.get(decision.direction.value)
        if per is None:
            per = self._per[decision.direction.value] = Counter()
        per[decision.action.value] += 1

    def summary(self) -> PlanSummary:
        overall: Counter[str] = Counter()
        for counts in self._per.values():
            overall.update(counts)
        return PlanSummary(
            counts={action.value: overall[action.value] for action in _ACTIONS},
            by_direction={
                direction.value: {
                    action.value: self._per[direction.value][action.value] for action in _ACTIONS
                }
                for direction in DIRECTION_ORDER
                if direction.value in self._per
            },
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """A dry run's result. ``fingerprints`` digest what the plan was computed from (rules,
    config, each source) so that ``sync --plan`` can tell a stale plan from a current one.

    A *streamed* plan (``custsync plan``) keeps no decisions: ``decisions`` is empty and
    ``counts`` holds their summary, counted as they were written out."""

    created_at: datetime
    shops: tuple[str, ...]
    directions: tuple[Direction, ...]
    decisions: tuple[Decision, ...]
    warnings: tuple[PlanWarning, ...] = ()
    fingerprints: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    format_version: str = FORMAT_VERSION
    counts: PlanSummary | None = None

    @property
    def summary(self) -> PlanSummary:
        if self.counts is not None:
            return self.counts
        tally = PlanTally()
        for decision in self.decisions:
            tally.add(decision)
        return tally.summary()

    @property
    def has_changes(self) -> bool:
        """Whether applying would write anything (create, update or link)."""
        if self.counts is not None:
            return self.counts.changes > 0
        return any(decision.is_change for decision in self.decisions)


# --------------------------------------------------------------------------------------------
# Ordering
# --------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"(\d+)")


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    return tuple(
        (1, int(part), "") if part.isdigit() else (0, 0, part)
        for part in _DIGITS.split(text)
        if part
    )


def decision_sort_key(decision: Decision) -> tuple[Any, ...]:
    """Direction (import, export, order), shop, record key with numbers compared as numbers."""
    return (
        DIRECTION_ORDER.index(decision.direction),
        decision.shop,
        _natural(decision.record),
        decision.record,
    )


def _natural_text(text: str) -> str:
    """``_natural(text)`` as one string that sorts the same way (cheaper to keep for a
    million records): a text part is ``\\x01`` + text + ``\\x00``, a number ``\\x02`` + its
    length + its digits without leading zeros (longer numbers are larger)."""
    parts = []
    for part in _DIGITS.split(text):
        if not part:
            continue
        if part.isdigit():
            digits = str(int(part))
            parts.append(f"\x02{chr(len(digits) + 1)}{digits}")
        else:
            parts.append(f"\x01{part}\x00")
    return "".join(parts)


#: the common record key, ASCII text then a number (``C00042``, ``gid://shopify/Customer/7``)
_TEXT_THEN_NUMBER = re.compile(r"([^0-9]*)([0-9]+)")


def _natural_text_of(record: str) -> str:
    """:func:`_natural_text`, the common keys without splitting them."""
    found = _TEXT_THEN_NUMBER.fullmatch(record) if record.isascii() else None
    if found is None:
        return _natural_text(record)
    text, number = found.groups()
    digits = number.lstrip("0") or "0"
    if text:
        return f"\x01{text}\x00\x02{chr(len(digits) + 1)}{digits}"
    return f"\x02{chr(len(digits) + 1)}{digits}"


def plan_order_key(direction: Direction, shop: str, record: str) -> str:
    """:func:`decision_sort_key` as one string (the same order, for records without NUL)."""
    return (
        f"{chr(DIRECTION_ORDER.index(direction) + 1)}{shop}\x00{_natural_text_of(record)}"
        f"\x00{record}"
    )


# --------------------------------------------------------------------------------------------
# Building a plan
# --------------------------------------------------------------------------------------------


#: the reason of a record its reader could not read (``sync`` records it as failed)
BAD_RECORD = "bad-record"


def reader_problems(reader: object) -> Sequence[SourceProblem]:
    """The bad records ``reader`` reported so far (none when it cannot report them)."""
    return reader.problems() if isinstance(reader, ReportsProblems) else ()


def bad_record_decisions(
    problems: Sequence[SourceProblem],
    shops: Sequence[str],
    directions: Sequence[Direction],
    taken: set[tuple[Direction, str, str]],
) -> tuple[list[Decision], list[PlanWarning]]:
    """A bad record with a readable key becomes a skip in its own direction (reason
    ``bad-record``; ``sync`` records it as a failed record, so the cursor waits for it); the
    rest (bad reference rows, links, records without a key, duplicates) become warnings."""
    decisions: list[Decision] = []
    warnings: list[PlanWarning] = []
    natural = {"erp_customer": Direction.EXPORT, "shopify_customer": Direction.IMPORT}
    for problem in problems:
        direction = natural.get(problem.kind)
        targets = [
            shop
            for shop in shops
            if direction is not None
            and direction in directions
            and problem.record
            and (direction, shop, problem.record) not in taken
        ]
        if not targets:
            warnings.append(
                PlanWarning(
                    "bad-record",
                    mask_text(f"{problem.kind.replace('_', ' ')} skipped: {problem.message}"),
                    problem.location,
                    problem.record,
                )
            )
            continue
        for shop in targets:
            assert direction is not None
            taken.add((direction, shop, problem.record))
            decisions.append(
                Decision(
                    direction=direction,
                    action=Action.SKIP,
                    shop=shop,
                    record=problem.record,
                    erp_no=problem.record if direction is Direction.EXPORT else None,
                    shopify_id=problem.record if direction is Direction.IMPORT else None,
                    reason_code=BAD_RECORD,
                    message=mask_text(f"{problem.location}: {problem.message}"),
                )
            )
    return decisions, warnings


def file_fingerprint(paths: Iterable[str | Path]) -> str:
    """A digest of files' names and contents (e.g. the rule files or the config file)."""
    digest = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        digest.update(str(path.name).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()[:32]


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------

#: payload keys whose values are records (decoded back into them by plan_from_json)
_PAYLOAD_RECORDS: Mapping[str, type] = MappingProxyType({"address": ShopifyAddress})
#: payload key "import" holds a nested Decision (the customer import of an order mapping)


#: exact types that are JSON as they are (subclasses, such as str enums, take the long way)
_PLAIN = frozenset({str, int, float, bool, type(None)})


#: field names of the dataclasses met in payloads (``dataclasses.fields`` is slow to ask)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _jsonable(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:  # most values: checked first, it is a hot path for large plans
        return value
    if kind is tuple or kind is list:
        return [item if type(item) in _PLAIN else _jsonable(item) for item in value]
    if kind is MappingProxyType or kind is dict:  # payloads
        return {
            str(key): item if type(item) in _PLAIN else _jsonable(item)
            for key, item in value.items()
        }
    names = _FIELD_NAMES.get(kind)
    if names is not None:  # a dataclass seen before (e.g. the address of an export)
        return {name: _jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Decision):  # e.g. the customer import nested in an order mapping
        return _decision_to_dict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value))
        _FIELD_NAMES[kind] = names
        return {name: _jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _decision_head(decision: Decision) -> dict[str, Any]:
    """A decision's JSON object up to its rules (the keys in the document's order)."""
    plain = _PLAIN
    return {
        "direction": decision.direction.value,
        "action": decision.action.value,
        "shop": decision.shop,
        "record": decision.record,
        "label": decision.label,
        "erp_no": decision.erp_no,
        "shopify_id": decision.shopify_id,
        "new_link": decision.new_link,
        "changes": [
            {
                "field": change.field,
                "old": change.old if type(change.old) in plain else _jsonable(change.old),
                "new": change.new if type(change.new) in plain else _jsonable(change.new),
            }
            for change in decision.changes
        ],
        "reason_code": decision.reason_code,
        "message": mask_text(decision.message) if decision.message else decision.message,
    }


def _decision_tail(decision: Decision) -> dict[str, Any]:
    """A decision's JSON object after its rules."""
    return {
        "payload": _jsonable(decision.payload),
        "source_version": decision.source_version,
        "target_version": decision.target_version,
    }


def _decision_to_dict(decision: Decision) -> dict[str, Any]:
    data = _decision_head(decision)
    data["rules"] = [
        {"id": rule.id, "decision": rule.decision, "file": rule.file, "line": rule.line}
        for rule in decision.rules
    ]
    data.update(_decision_tail(decision))
    return data


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data: full values in changes and payloads (what ``sync --plan``
    applies); messages masked (decide.py masks them where it builds them, this is the net for
    decisions and warnings made elsewhere)."""
    data = _head_dict(plan)
    data["decisions"] = [_decision_to_dict(decision) for decision in plan.decisions]
    return data


def _head_dict(plan: Plan) -> dict[str, Any]:
    """Everything but the decisions, in the document's key order (decisions a placeholder)."""
    summary = plan.summary
    return {
        "format_version": plan.format_version,
        "created_at": _jsonable(plan.created_at),
        "shops": list(plan.shops),
        "directions": [direction.value for direction in plan.directions],
        "summary": {
            **summary.counts,
            "changes": summary.changes,
            "by_direction": {key: dict(value) for key, value in summary.by_direction.items()},
        },
        "decisions": [],
        "warnings": [
            {**_jsonable(warning), "message": mask_text(warning.message)}
            for warning in plan.warnings
        ],
        "fingerprints": dict(plan.fingerprints),
    }


def plan_to_json(plan: Plan, *, indent: int | None = 2) -> str:
    if indent == 2:  # the document custsync writes: the same bytes as the streamed one
        out = io.StringIO()
        write_plan_json(
            plan, (decision_to_json(d) for d in plan.decisions), out, count=len(plan.decisions)
        )
        return out.getvalue()
    return _encodable(json.dumps(plan_to_dict(plan), indent=indent, ensure_ascii=False)) + "\n"


#: plans with more decisions than this are written one decision per line (compact JSON);
#: smaller ones indented throughout. Either way one JSON document with the same schema.
PRETTY_DECISIONS = 10_000

#: a decision's indentation inside the document (an item of the top-level "decisions" list)
_ITEM_INDENT = "    "


#: ``json.dumps(..., ensure_ascii=False)`` made once (dumps builds an encoder per call with
#: these options); the data is fresh dicts and lists, never circular
_COMPACT = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


#: a fired rule's JSON by (id, decision, file, line): a plan names the same few hundred rules
#: over and over (about two thirds of a decision's JSON), so each is encoded once
_RULE_JSON: dict[tuple[str, str, str, int], str] = {}


def _rules_json(rules: Sequence[FiredRule]) -> str:
    cache = _RULE_JSON
    parts = []
    for rule in rules:
        key = (rule.id, rule.decision, rule.file, rule.line)
        text = cache.get(key)
        if text is None:
            if len(cache) > 100_000:  # rules are few; bounded whatever they are
                cache.clear()
            text = cache[key] = _COMPACT(
                {"id": rule.id, "decision": rule.decision, "file": rule.file, "line": rule.line}
            )
        parts.append(text)
    return "[" + ", ".join(parts) + "]"


#: a JSON string as ``_COMPACT`` writes it (the C function JSONEncoder(ensure_ascii=False) uses)
_STRING: Any = json.encoder.encode_basestring


def _value_json(value: Any) -> str:
    """``_COMPACT(_jsonable(value))``, written directly for the kinds of value decisions hold
    (strings, None, booleans, integers, payload mappings and sequences of them)."""
    kind = type(value)
    if kind is str:
        return _STRING(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is MappingProxyType or kind is dict:
        if not value:
            return "{}"
        return (
            "{"
            + ", ".join(
                [
                    f"{_STRING(key if type(key) is str else str(key))}: {_value_json(item)}"
                    for key, item in value.items()
                ]
            )
            + "}"
        )
    if kind is tuple or kind is list:
        return "[" + ", ".join([_value_json(item) for item in value]) + "]"
    return _COMPACT(_jsonable(value))


#: a change's JSON up to its old value, by field name (a plan names the same few fields)
_CHANGE_HEAD: dict[Any, str] = {}


def _changes_json(changes: Sequence[FieldChange]) -> str:
    if not changes:
        return "[]"
    heads = _CHANGE_HEAD
    string = _STRING
    value = _value_json
    parts = []
    for change in changes:
        name = change.field
        head = heads.get(name) if type(name) is str else None
        if head is None:
            head = f'{{"field": {value(name)}, "old": '
            if type(name) is str and len(heads) < 10_000:  # field names are few; bounded
                heads[name] = head
        old = change.old
        new = change.new
        parts.append(
            f"{head}{'null' if old is None else string(old) if type(old) is str else value(old)}"
            f', "new": {string(new) if type(new) is str else value(new)}}}'
        )
    return "[" + ", ".join(parts) + "]"


def decision_to_json(decision: Decision) -> str:
    """One decision as compact JSON (one line: JSON strings hold no raw newline): the same
    text as ``json.dumps(_decision_to_dict(decision), ensure_ascii=False)``, written field by
    field (building the dicts for the encoder costs seconds in a plan of a million decisions),
    its rules encoded once per rule."""
    value = _value_json
    message = decision.message
    return (
        f'{{"direction": {value(decision.direction.value)}, '
        f'"action": {value(decision.action.value)}, "shop": {value(decision.shop)}, '
        f'"record": {value(decision.record)}, "label": {value(decision.label)}, '
        f'"erp_no": {value(decision.erp_no)}, "shopify_id": {value(decision.shopify_id)}, '
        f'"new_link": {value(decision.new_link)}, "changes": {_changes_json(decision.changes)}, '
        f'"reason_code": {value(decision.reason_code)}, '
        f'"message": {value(mask_text(message) if message else message)}, '
        f'"rules": {_rules_json(decision.rules)}, "payload": {value(decision.payload)}, '
        f'"source_version": {value(decision.source_version)}, '
        f'"target_version": {value(decision.target_version)}}}'
    )


def _pretty(item: str) -> str:
    text = _encodable(json.dumps(json.loads(item), indent=2, ensure_ascii=False))
    return _ITEM_INDENT + text.replace("\n", "\n" + _ITEM_INDENT)


def _encodable(text: str) -> str:
    """JSON ``text`` as it is, or with its lone surrogates escaped when it has any (a
    ``"\\ud800"`` escape in a JSON or YAML source): UTF-8 cannot carry them as they are."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json_surrogates_escaped(text)
    return text


#: what separates two decisions in a large plan's document (one per line, indented)
JSON_ITEM_SEPARATOR = ",\n" + _ITEM_INDENT


def plan_json_frame(plan: Plan) -> tuple[str, str]:
    """The plan document before and after the value of its "decisions" list."""
    marker = f"@decisions-{uuid.uuid4().hex}@"
    head = _head_dict(plan)
    head["decisions"] = marker
    text = _encodable(json.dumps(head, indent=2, ensure_ascii=False))
    before, after = text.split(json.dumps(marker), 1)
    return before, after


def write_plan_json(
    plan: Plan | None,
    decisions: Iterable[str],
    stream: IO[str],
    *,
    count: int,
    frame: tuple[str, str] | None = None,
) -> None:
    """Write the plan document to ``stream`` with ``decisions`` (from :func:`decision_to_json`,
    in plan order, ``count`` of them) streamed into its "decisions" list: one valid JSON
    document that is never held in memory. Up to :data:`PRETTY_DECISIONS` decisions it is
    byte for byte ``json.dumps(plan_to_dict(plan), indent=2)``; a larger plan has one decision
    per line (indenting a million decisions in Python would take longer than deciding them).
    The summary comes from ``plan`` (its ``counts`` when the decisions are not kept), or the
    text around the decisions is given (``frame``, :func:`plan_json_frame` of the plan)."""
    if frame is None:
        if plan is None:
            raise ValueError("write_plan_json needs the plan or its frame")
        frame = plan_json_frame(plan)
    before, after = frame
    pretty = count <= PRETTY_DECISIONS
    stream.write(before)
    first = True
    for item in decisions:
        if pretty:
            stream.write("[\n" if first else ",\n")
            stream.write(_pretty(item))
        else:
            stream.write("[\n" + _ITEM_INDENT if first else JSON_ITEM_SEPARATOR)
            try:
                stream.write(item)
            except UnicodeEncodeError:  # nothing written: the stream encodes the whole item
                stream.write(json_surrogates_escaped(item))
        first = False
    stream.write("[]" if first else "\n  ]")
    stream.write(after)
    stream.write("\n")


def _schema() -> Any:
    from ..resources import schema_path

    return json.loads(schema_path("plan").read_text(encoding="utf-8"))


def plan_validator(definition: str | None = None) -> Any:
    """A validator of ``schemas/plan.schema.json`` (or of one of its ``$defs``, e.g.
    ``"decision"``, for a plan read one decision at a time)."""
    from jsonschema import Draft202012Validator

    schema = _schema()
    if definition is not None:
        # its references written out: resolving them on every decision is what made checking
        # a plan of 50,000 decisions take minutes (the definitions are not recursive)
        schema = _inlined(schema["$defs"][definition], schema["$defs"])
    return Draft202012Validator(schema)


def _inlined(node: Any, definitions: Mapping[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/NAME"}`` replaced by that definition."""
    if isinstance(node, list):
        return [_inlined(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = _inlined(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return {key: _inlined(value, definitions) for key, value in node.items()}


def validate_plan_data(data: Any, source: str = "plan") -> None:
    """Check plan JSON against ``schemas/plan.schema.json``; ConfigError naming the spot."""
    validator = plan_validator()
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    if errors:
        first = errors[0]
        pointer = "".join(f"/{part}" for part in first.absolute_path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {pointer or '/'}: {first.message}{more}", file=source)


def _payload_value(key: str, value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_payload_value("", item) for item in value)
    if key == "import" and isinstance(value, dict) and "direction" in value:
        return decision_from_dict(value)
    record_type = _PAYLOAD_RECORDS.get(key)
    if record_type is not None and isinstance(value, dict):
        names = {f.name for f in dataclasses.fields(record_type)}
        if set(value) <= names:
            return record_type(**value)
    return value


def _payload_from(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({key: _payload_value(key, value) for key, value in data.items()})


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def decision_from_dict(item: Mapping[str, Any]) -> Decision:
    return Decision(
        direction=Direction(item["direction"]),
        action=Action(item["action"]),
        shop=item["shop"],
        record=item["record"],
        erp_no=item.get("erp_no"),
        shopify_id=item.get("shopify_id"),
        changes=tuple(
            FieldChange(change["field"], change.get("old"), change.get("new"))
            for change in item.get("changes", ())
        ),
        reason_code=item.get("reason_code"),
        message=item.get("message"),
        rules=tuple(
            FiredRule(
                rule["id"], rule.get("file", ""), rule.get("line", 0), rule.get("decision", "")
            )
            for rule in item.get("rules", ())
        ),
        new_link=bool(item.get("new_link", False)),
        payload=_payload_from(item.get("payload") or {}),
        source_version=item.get("source_version"),
        target_version=item.get("target_version"),
        label=item.get("label") or "",
    )


def plan_time(text: str, source: str) -> datetime:
    """A plan's ``created_at``; a ConfigError when it is no ISO 8601 time."""
    try:
        created_at = _when(text)
    except ValueError:
        created_at = None
    if created_at is None:
        raise ConfigError(f"{source}: /created_at: {text!r} is not an ISO 8601 time")
    return created_at


def plan_from_json(text: str | bytes, source: str = "plan") -> Plan:
    """Read a saved plan (``custsync plan --out``); a ConfigError names what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if isinstance(version, str) and version.split(".", 1)[0] != FORMAT_VERSION.split(".", 1)[0]:
        raise ConfigError(
            f"{source}: plan format_version {version} is not supported "
            f"(this custsync reads {FORMAT_VERSION.split('.', 1)[0]}.x); plan again"
        )
    validate_plan_data(data, source)
    try:
        decisions = tuple(decision_from_dict(item) for item in data["decisions"])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: /decisions: {exc}") from None
    return Plan(
        created_at=plan_time(data["created_at"], source),
        shops=tuple(data["shops"]),
        directions=tuple(Direction(direction) for direction in data["directions"]),
        decisions=decisions,
        warnings=tuple(
            PlanWarning(
                warning["code"],
                warning["message"],
                warning.get("location", ""),
                warning.get("record", ""),
                warning.get("shop", ""),
            )
            for warning in data.get("warnings", ())
        ),
        fingerprints=MappingProxyType(dict(data.get("fingerprints", {}))),
        format_version=data["format_version"],
    )
