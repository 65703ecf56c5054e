"""OData v4 query options as Business Central applies them to an entity set.

``$filter`` (``eq ne gt ge lt le``, ``and``/``or``, ``startswith``/``endswith``/``contains``,
``tolower``/``toupper``, ``in`` and nested calls only with ``$schemaversion=2.1``), comparisons
case-sensitive, ``or`` across distinct fields refused as BC refuses it, a filter value longer
than a Code field refused; ``$select``, ``$orderby``, ``$top``, ``$skip``; server-driven
paging by key (``$skiptoken`` holding the sort values of the last entity sent).

Everything works on the *wire* form of the entities (the dicts BC would send).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import total_ordering
from typing import Any

from .errors import BcError, bad_request, unknown_property

KINDS = ("text", "code", "guid", "decimal", "int", "bool", "enum", "datetime", "date")


@dataclass(frozen=True, slots=True)
class Prop:
    """One property of an entity type as BC publishes it."""

    name: str
    kind: str = "text"
    length: int | None = None
    read_only: bool = False
    caption: str = ""  #: the table field's caption (used in BC's filter error texts)


@dataclass(frozen=True, slots=True)
class EntityType:
    """An entity type: its properties (in page order) and its key (the default order)."""

    name: str  #: OData type name, e.g. ``customer`` (``Microsoft.NAV.customer``)
    table: str  #: the table behind it, e.g. ``Customer``
    props: tuple[Prop, ...]
    order_key: tuple[str, ...]  #: the primary key order the entities come in

    def prop(self, name: str) -> Prop:
        for prop in self.props:
            if prop.name == name:
                return prop
        raise unknown_property(name, self.name)

    def names(self) -> list[str]:
        return [p.name for p in self.props]


Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>'(?:[^']|'')*')
   |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
   |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
   |(?P<date>\d{4}-\d{2}-\d{2})
   |(?P<number>-?\d+(?:\.\d+)?)
   |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
   |(?P<punct>[(),])
)""", re.VERBOSE)

COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
FUNCTIONS = {"startswith", "endswith", "contains"}
TRANSFORMS = {"tolower", "toupper"}
_EDM = {"text": "Edm.String", "code": "Edm.String", "enum": "Edm.String", "guid": "Edm.Guid",
        "decimal": "Edm.Decimal", "int": "Edm.Int32", "bool": "Edm.Boolean",
        "datetime": "Edm.DateTimeOffset", "date": "Edm.Date"}
_OPERATOR_KIND = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan",
                  "ge": "GreaterThanOrEqual", "lt": "LessThan", "le": "LessThanOrEqual"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _syntax(text, position)
        kind = match.lastgroup or ""
        start = match.start(kind)
        tokens.append(Token(kind, match.group(kind), start))
        position = match.end()
    return tokens


def _syntax(text: str, position: int) -> BcError:
    return bad_request(f"Syntax error at position {position} in '{text}'.")


def parse_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Literal:
    kind: str  # string, datetime, guid, date, number, bool, null
    value: Any
    edm: str


def _literal(token: Token, text: str) -> Literal:
    if token.kind == "string":
        return Literal("string", token.text[1:-1].replace("''", "'"), "Edm.String")
    if token.kind == "datetime":
        return Literal("datetime", parse_datetime(token.text), "Edm.DateTimeOffset")
    if token.kind == "guid":
        return Literal("guid", token.text.lower(), "Edm.Guid")
    if token.kind == "date":
        return Literal("date", date.fromisoformat(token.text), "Edm.Date")
    if token.kind == "number":
        if "." in token.text:
            return Literal("number", float(token.text), "Edm.Decimal")
        return Literal("number", int(token.text), "Edm.Int32")
    if token.kind == "name" and token.text in ("true", "false"):
        return Literal("bool", token.text == "true", "Edm.Boolean")
    if token.kind == "name" and token.text == "null":
        return Literal("null", None, "null")
    raise _syntax(text, token.position)


_ACCEPTS = {"text": {"string"}, "code": {"string"}, "enum": {"string"}, "guid": {"guid"},
            "decimal": {"number"}, "int": {"number"}, "bool": {"bool"},
            "datetime": {"datetime", "date"}, "date": {"date"}}


def comparable(prop: Prop, value: Any) -> Any:
    """A record's wire value in a form that compares and sorts correctly."""
    if value is None:
        return None
    if prop.kind == "datetime":
        return parse_datetime(value) if isinstance(value, str) else value
    if prop.kind == "date":
        return date.fromisoformat(value) if isinstance(value, str) else value
    if prop.kind == "guid":
        return str(value).lower()
    return value


class _Parser:
    """Recursive descent over the tokens of one ``$filter``."""

    def __init__(self, text: str, etype: EntityType, schema_21: bool) -> None:
        self.text = text
        self.etype = etype
        self.schema_21 = schema_21
        self.tokens = tokenize(text)
        self.at = 0

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _syntax(self.text, len(self.text))
        self.at += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise _syntax(self.text, token.position)

    def parse(self) -> tuple[Predicate, frozenset[str]]:
        predicate, fields = self.or_expr()
        if self.peek() is not None:
            raise _syntax(self.text, self.take().position)
        return predicate, fields

    def or_expr(self) -> tuple[Predicate, frozenset[str]]:
        parts = [self.and_expr()]
        while (token := self.peek()) is not None and token.text == "or":
            self.take()
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        fields = frozenset().union(*(f for _, f in parts))
        if len(fields) > 1:
            raise BcError(400, "BadRequest",
                          "An error occurred while processing this request. The 'OR' operator "
                          "is not supported on distinct fields on an OData filter.")
        predicates = [p for p, _ in parts]
        return (lambda r: any(p(r) for p in predicates)), fields

    def and_expr(self) -> tuple[Predicate, frozenset[str]]:
        parts = [self.primary()]
        while (token := self.peek()) is not None and token.text == "and":
            self.take()
            parts.append(self.primary())
        if len(parts) == 1:
            return parts[0]
        predicates = [p for p, _ in parts]
        fields = frozenset().union(*(f for _, f in parts))
        return (lambda r: all(p(r) for p in predicates)), fields

    def primary(self) -> tuple[Predicate, frozenset[str]]:
        token = self.peek()
        if token is None:
            raise _syntax(self.text, len(self.text))
        if token.text == "(":
            self.take()
            result = self.or_expr()
            self.expect(")")
            return result
        if token.kind == "name" and token.text in FUNCTIONS:
            return self.function()
        return self.comparison()

    def operand(self, nested: bool) -> tuple[Prop, str | None]:
        """A property, maybe wrapped in tolower()/toupper()."""
        token = self.take()
        if token.kind != "name":
            raise _syntax(self.text, token.position)
        following = self.peek()
        if token.text in TRANSFORMS and following is not None and following.text == "(":
            if nested and not self.schema_21:
                raise bad_request(f"Nested function calls in $filter need $schemaversion=2.1: "
                                  f"'{self.text}'.")
            self.expect("(")
            prop, _ = self.operand(nested=True)
            self.expect(")")
            return prop, token.text
        return self.etype.prop(token.text), None

    def function(self) -> tuple[Predicate, frozenset[str]]:
        name = self.take().text
        self.expect("(")
        prop, transform = self.operand(nested=True)
        self.expect(",")
        literal = _literal(self.take(), self.text)
        self.expect(")")
        if prop.kind not in ("text", "code", "enum") or literal.kind != "string":
            raise bad_request(f"No function signature for the function with name '{name}' "
                              "matches the specified arguments.")
        needle = _transform(literal.value, transform)
        test: Callable[[str, str], bool] = {
            "startswith": str.startswith, "endswith": str.endswith,
            "contains": lambda hay, sub: sub in hay}[name]

        def predicate(record: Record) -> bool:
            value = record.get(prop.name)
            return isinstance(value, str) and test(_transform(value, transform), needle)

        return predicate, frozenset({prop.name})

    def comparison(self) -> tuple[Predicate, frozenset[str]]:
        prop, transform = self.operand(nested=False)
        op_token = self.take()
        if op_token.text == "in":
            return self.in_list(prop, transform, op_token)
        if op_token.text not in COMPARISONS:
            raise _syntax(self.text, op_token.position)
        literal = _literal(self.take(), self.text)
        value = self._checked(prop, literal, op_token.text)
        return _compare(prop, transform, op_token.text, value), frozenset({prop.name})

    def in_list(self, prop: Prop, transform: str | None, op_token: Token
                ) -> tuple[Predicate, frozenset[str]]:
        if not self.schema_21:
            raise _syntax(self.text, op_token.position)
        self.expect("(")
        values = [self._checked(prop, _literal(self.take(), self.text), "eq")]
        while (token := self.peek()) is not None and token.text == ",":
            self.take()
            values.append(self._checked(prop, _literal(self.take(), self.text), "eq"))
        self.expect(")")
        tests = [_compare(prop, transform, "eq", v) for v in values]
        return (lambda r: any(t(r) for t in tests)), frozenset({prop.name})

    def _checked(self, prop: Prop, literal: Literal, op: str) -> Any:
        if literal.kind == "null":
            return None
        if literal.kind not in _ACCEPTS[prop.kind]:
            raise bad_request(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{_EDM[prop.kind]}' and '{literal.edm}' for operator kind "
                f"'{_OPERATOR_KIND.get(op, op)}'.")
        value = literal.value
        if prop.kind == "code" and prop.length is not None and len(value) > prop.length:
            raise BcError(400, "Application_FilterErrorException",
                          f'The filter "{value}" is not valid for the {prop.caption or prop.name}'
                          f" field on the {self.etype.table} table. The length of the string is "
                          f"{len(value)}, but it must be less than or equal to {prop.length} "
                          "characters.")
        if prop.kind == "datetime" and isinstance(value, date) and not isinstance(value,
                                                                                datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value


def _transform(value: str, transform: str | None) -> str:
    if transform == "tolower":
        return value.lower()
    if transform == "toupper":
        return value.upper()
    return value


def _compare(prop: Prop, transform: str | None, op: str, expected: Any) -> Predicate:
    def predicate(record: Record) -> bool:
        actual = comparable(prop, record.get(prop.name))
        if isinstance(actual, str):
            actual = _transform(actual, transform)
        if expected is None or actual is None:
            same = actual == expected
            return same if op == "eq" else (not same if op == "ne" else False)
        if op == "eq":
            return bool(actual == expected)
        if op == "ne":
            return bool(actual != expected)
        try:
            if op == "gt":
                return bool(actual > expected)
            if op == "ge":
                return bool(actual >= expected)
            if op == "lt":
                return bool(actual < expected)
            return bool(actual <= expected)
        except TypeError:
            return False

    return predicate


def compile_filter(text: str, etype: EntityType, *, schema_21: bool = False) -> Predicate:
    """``$filter`` text -> a predicate over wire records (BcError 400 when BC refuses it)."""
    predicate, _ = _Parser(text, etype, schema_21).parse()
    return predicate


@total_ordering
class _Descending:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)

    def __hash__(self) -> int:
        return hash(self.value)


@dataclass(frozen=True, slots=True)
class Ordering:
    """The sort order of one request: ``$orderby`` then the entity type's key."""

    props: tuple[Prop, ...]
    descending: tuple[bool, ...]
    #: ascending on properties compared as they are sent (the usual case: fast keys)
    plain: bool = False

    def key(self, record: Record) -> tuple[Any, ...]:
        if self.plain:
            return tuple(record.get(p.name) for p in self.props)
        return self.key_of([record.get(p.name) for p in self.props])

    def key_of(self, values: Sequence[Any]) -> tuple[Any, ...]:
        if self.plain:
            return tuple(values)
        out: list[Any] = []
        for prop, desc, value in zip(self.props, self.descending, values, strict=True):
            item = comparable(prop, value)
            item = (0, "") if item is None else (1, item)
            out.append(_Descending(item) if desc else item)
        return tuple(out)

    def token(self, record: Record) -> str:
        """The ``$skiptoken`` that resumes after ``record``."""
        return ",".join(_format_literal(p, record.get(p.name)) for p in self.props)

    def resume_index(self, records: Sequence[Record], token: str) -> int:
        values = [_literal(t, token).value for t in tokenize(token) if t.text != ","]
        if len(values) != len(self.props):
            raise bad_request(f"The skip token value '{token}' is not valid.")
        keys = [self.key(r) for r in records]
        try:
            return bisect_right(keys, self.key_of(values))
        except TypeError as exc:
            raise bad_request(f"The skip token value '{token}' is not valid.") from exc


def _format_literal(prop: Prop, value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) or prop.kind in ("guid", "datetime", "date"):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def ordering(text: str | None, etype: EntityType) -> Ordering:
    """``$orderby`` text -> the full ordering (the key breaks ties, as in BC)."""
    props: list[Prop] = []
    descending: list[bool] = []
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            if text is not None and text.strip():
                raise bad_request(f"Syntax error at position 0 in '{text}'.")
            continue
        if len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise bad_request(f"Syntax error in $orderby '{text}'.")
        props.append(etype.prop(words[0]))
        descending.append(len(words) == 2 and words[1] == "desc")
    for name in etype.order_key:
        if name not in [p.name for p in props]:
            props.append(etype.prop(name))
            descending.append(False)
    plain = not any(descending) and all(
        p.kind in ("text", "code", "enum", "int", "decimal", "bool") for p in props)
    return Ordering(tuple(props), tuple(descending), plain)


def select(text: str | None, etype: EntityType) -> list[str] | None:
    """``$select`` text -> the property names to send (None: all)."""
    if text is None or not text.strip():
        return None
    names = [n.strip() for n in text.split(",")]
    for name in names:
        if "/" in name or not name:
            raise bad_request(f"Syntax error in $select '{text}'.")
        etype.prop(name)
    return names


def non_negative(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise bad_request(f"Invalid value '{text}' for ${option} query option found. The "
                          f"${option} query option requires a non-negative integer value.")
    return number
