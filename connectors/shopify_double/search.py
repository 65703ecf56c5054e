"""Shopify's search syntax (the ``query:`` argument), enough of it for customers and orders.

Supported: terms joined by whitespace (AND), ``AND``, ``OR``, ``NOT``/``-`` prefixes,
parentheses, ``field:value``, comparators ``field:>v``, ``>=``, ``<``, ``<=``, quoted values
(``'...'`` or ``"..."``), ``*`` suffix wildcards and ``field:*`` (field present). Free text
(no field) is tokenised and matched against the record's words, as Shopify's ``default``
field. ``updated_at``/``created_at`` take timestamps (``2026-01-01T00:00:00Z``), dates (a date
alone matches the whole day for ``:``), a year, or ``now``. ``email`` is tokenised unless
quoted (a quoted address matches exactly, ignoring case), ``phone`` compares digits.
Unknown fields are ignored with a warning, as Shopify does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

#: a record's searchable values: field name -> getter (returns str, list of str, or None)
Fields = Mapping[str, Callable[[Mapping[str, Any]], Any]]
Predicate = Callable[[Mapping[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\()|(?P<rparen>\))|
        (?P<term>-?(?:[A-Za-z_][A-Za-z0-9_.]*\s*:\s*)?(?:>=|<=|>|<)?\s*
                 (?:'[^']*'|"[^"]*"|[^\s()'"]+)?)
    )""",
    re.VERBOSE,
)
_WORD = re.compile(r"[a-z0-9]+")
_FIELD_TERM = re.compile(
    r"^(?P<neg>-)?(?:(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*:\s*)?(?P<op>>=|<=|>|<)?\s*(?P<value>.*)$",
    re.DOTALL,
)


class SearchSyntaxError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Term:
    field: str | None
    op: str  # ":", ">", ">=", "<", "<="
    value: str
    quoted: bool
    negated: bool


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _tokens(query: str) -> list[str]:
    out: list[str] = []
    pos = 0
    query = query.strip()
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if not match or match.end() == pos:
            raise SearchSyntaxError(f"cannot parse search query near {query[pos:pos + 20]!r}")
        pos = match.end()
        token = (match.group("lparen") or match.group("rparen") or match.group("term") or "")
        if token.strip():
            out.append(token.strip())
    return out


def _term(token: str) -> Term:
    match = _FIELD_TERM.match(token)
    assert match is not None
    value = match.group("value").strip()
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    if quoted:
        value = value[1:-1]
    field = match.group("field")
    return Term(
        field=field.lower() if field else None,
        op=match.group("op") or ":",
        value=value,
        quoted=quoted,
        negated=bool(match.group("neg")),
    )


class _Parser:
    def __init__(self, tokens: list[str], compile_term: Callable[[Term], Predicate]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.compile_term = compile_term

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda record: True
        result = self.or_expr()
        if self.peek() is not None:
            raise SearchSyntaxError(f"unexpected {self.peek()!r} in search query")
        return result

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.peek() == "OR":
            self.pos += 1
            parts.append(self.and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda record: any(part(record) for part in parts)

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.pos += 1
            parts.append(self.unary())
        if len(parts) == 1:
            return parts[0]
        return lambda record: all(part(record) for part in parts)

    def unary(self) -> Predicate:
        token = self.peek()
        if token is None:
            raise SearchSyntaxError("search query ends too early")
        if token == "NOT" or token == "-":
            self.pos += 1
            inner = self.unary()
            return lambda record: not inner(record)
        if token == "(":
            self.pos += 1
            inner = self.or_expr()
            if self.peek() != ")":
                raise SearchSyntaxError("missing ')' in search query")
            self.pos += 1
            return inner
        if token == ")":
            raise SearchSyntaxError("unexpected ')' in search query")
        self.pos += 1
        return self.compile_term(_term(token))


def parse_time(value: str, now: datetime) -> tuple[datetime, datetime]:
    """A search time value as the interval ``[start, end)`` it names."""
    text = value.strip()
    if text.lower() == "now":
        return now, now + timedelta(seconds=1)
    if re.fullmatch(r"\d{4}", text):
        start = datetime(int(text), 1, 1, tzinfo=UTC)
        return start, datetime(int(text) + 1, 1, 1, tzinfo=UTC)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        start = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return start, start + timedelta(days=1)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SearchSyntaxError(f"invalid time {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment, moment + timedelta(seconds=1)


def _compare(op: str, value: Any, low: Any, high: Any) -> bool:
    if op == ">":
        return bool(value >= high)
    if op == ">=":
        return bool(value >= low)
    if op == "<":
        return bool(value < low)
    if op == "<=":
        return bool(value < high)
    return bool(low <= value < high)


def _text_match(term: Term, values: list[str]) -> bool:
    if term.value == "*":
        return any(values)
    if term.quoted:
        wanted = term.value.lower()
        return any(v.lower() == wanted for v in values) or _phrase(wanted, values)
    prefix = term.value.endswith("*")
    needles = words(term.value.rstrip("*"))
    if not needles:
        return True
    haystack = [w for v in values for w in words(v)]
    for i, needle in enumerate(needles):
        last = i == len(needles) - 1
        if not any(w == needle or (prefix and last and w.startswith(needle)) for w in haystack):
            return False
    return True


def _phrase(wanted: str, values: list[str]) -> bool:
    needle = words(wanted)
    if not needle:
        return False
    for value in values:
        hay = words(value)
        for i in range(len(hay) - len(needle) + 1):
            if hay[i : i + len(needle)] == needle:
                return True
    return False


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def compile_query(
    query: str | None,
    fields: Fields,
    *,
    time_fields: Mapping[str, Callable[[Mapping[str, Any]], datetime | None]],
    numeric_fields: Mapping[str, Callable[[Mapping[str, Any]], int | None]],
    now: datetime,
    warnings: list[str] | None = None,
) -> Predicate:
    """Compile ``query`` into a predicate over stored records."""

    def compile_term(term: Term) -> Predicate:
        predicate = _compile_positive(term)
        if term.negated:
            return lambda record: not predicate(record)
        return predicate

    def _compile_positive(term: Term) -> Predicate:
        name = term.field
        if name is None or name == "default":
            getters = list(fields.values())
            return lambda record: _text_match(
                term, [v for get in getters for v in _as_list(get(record))]
            )
        if name in time_fields:
            get_time = time_fields[name]
            if term.value == "*":
                return lambda record: get_time(record) is not None
            low, high = parse_time(term.value, now)

            def time_match(record: Mapping[str, Any]) -> bool:
                moment = get_time(record)
                return moment is not None and _compare(term.op, moment, low, high)

            return time_match
        if name in numeric_fields:
            get_num = numeric_fields[name]
            digits = re.sub(r"\D", "", term.value.rsplit("/", 1)[-1])
            if not digits:
                raise SearchSyntaxError(f"invalid number {term.value!r} for {name}")
            number = int(digits)

            def num_match(record: Mapping[str, Any]) -> bool:
                value = get_num(record)
                return value is not None and _compare(term.op, value, number, number + 1)

            return num_match
        if name == "phone" and "phone" in fields:
            get_phone = fields["phone"]
            wanted = re.sub(r"\D", "", term.value)

            def phone_match(record: Mapping[str, Any]) -> bool:
                values = _as_list(get_phone(record))
                if term.value == "*":
                    return bool(values)
                return any(re.sub(r"\D", "", v) == wanted for v in values if wanted)

            return phone_match
        if name == "tag_not" and "tag" in fields:
            get_tags = fields["tag"]
            unwanted = {t.strip().lower() for t in term.value.split(",") if t.strip()}
            return lambda record: not (
                {t.lower() for t in _as_list(get_tags(record))} & unwanted
            )
        if name == "tag" and "tag" in fields:
            get_tags = fields["tag"]
            wanted_tags = {t.strip().lower() for t in term.value.split(",") if t.strip()}
            return lambda record: bool(
                {t.lower() for t in _as_list(get_tags(record))} & wanted_tags
            )
        if name in fields:
            getter = fields[name]
            if name in ("state", "country", "id"):
                return lambda record: any(
                    v.lower() == term.value.lower() for v in _as_list(getter(record))
                ) or (term.value == "*" and bool(_as_list(getter(record))))
            return lambda record: _text_match(term, _as_list(getter(record)))
        if warnings is not None:
            warnings.append(name)
        return lambda record: True

    return _Parser(_tokens(query or ""), compile_term).parse()
