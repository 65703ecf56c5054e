"""Reading a saved plan streaming: memory bounded by one decision, not by the file.

``custsync sync --plan FILE`` needs everything but the decisions at once (what the plan covers,
when it was made, its fingerprints) and the decisions one at a time, several times: to check
every one before anything is applied (a malformed decision, a stale record), then to apply
them in apply order. :func:`open_saved_plan` reads the document once with a small JSON
tokenizer (the top-level object key by key, each decision with :meth:`json.JSONDecoder.raw_decode`
from a buffer of a few chunks), checks it all and keeps the head and counts;
:meth:`SavedPlan.decisions` reads the decisions again from the same open file whenever asked.

Either layout ``custsync plan`` writes is read (indented, or one decision per line above
:data:`~.plan.PRETTY_DECISIONS`), and any other valid JSON of the same document (``jq .``'s).
Errors name the file, line and column: ``plan.json:7:12: not valid JSON (...)``, the file ends
early (a truncated copy), a decision that does not fit the schema
(``plan.json:120:5: /decisions/117/action: ...``).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import IO, Any

from ..errors import ConfigError
from ..model import Action, Decision, Direction
from .plan import (
    FORMAT_VERSION,
    Plan,
    PlanTally,
    PlanWarning,
    decision_from_dict,
    plan_time,
    plan_validator,
)

__all__ = ["SavedPlan", "open_saved_plan"]

#: bytes read at a time (a decision is half a kilobyte to a few kilobytes)
CHUNK = 1 << 16

_WHITESPACE = " \t\r\n"


class _Tokens:
    """The JSON text of a binary file, read in chunks, with the line and column of any spot.

    Only what the plan document needs: punctuation, and whole values parsed by the standard
    decoder from the buffer (refilled while a value runs past its end)."""

    def __init__(self, handle: IO[bytes], source: str, digest: Any) -> None:
        self._handle = handle
        self._source = source
        self._digest = digest
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._eof = False
        self._line = 1  # the line of the buffer's first character
        self._column = 1  # its column

    # -- positions ---------------------------------------------------------------------

    def where(self, pos: int | None = None) -> str:
        """``source:line:column`` of buffer position ``pos`` (default: the current one)."""
        pos = self._pos if pos is None else pos
        before = self._buffer[:pos]
        newlines = before.count("\n")
        column = pos - before.rfind("\n") if newlines else self._column + pos
        return f"{self._source}:{self._line + newlines}:{column}"

    def error(self, message: str, pos: int | None = None) -> ConfigError:
        return self.error_at(self.where(pos), message)

    def error_at(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {message}", file=self._source)

    # -- reading -----------------------------------------------------------------------

    def _fill(self, at_least: int = CHUNK) -> bool:
        """Read more text into the buffer (dropping what was consumed); False at the end."""
        if self._eof:
            return False
        if self._pos:
            consumed = self._buffer[: self._pos]
            newlines = consumed.count("\n")
            if newlines:
                self._line += newlines
                self._column = len(consumed) - consumed.rfind("\n")
            else:
                self._column += len(consumed)
            self._buffer = self._buffer[self._pos :]
            self._pos = 0
        data = self._handle.read(max(at_least, CHUNK))
        self._digest.update(data)
        try:
            text = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            # the text up to the bad byte, to name its line and column
            self._buffer += data[: max(exc.start, 0)].decode("utf-8", "replace")
            raise self.error("not UTF-8", len(self._buffer)) from None
        self._buffer += text
        if not data:
            self._eof = True
        return bool(data) or bool(text)

    def peek(self) -> str:
        """The next character that is not white space ('' at the end of the file)."""
        while True:
            buffer, pos = self._buffer, self._pos
            while pos < len(buffer) and buffer[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < len(buffer):
                return buffer[pos]
            if not self._fill():
                return ""

    def take(self, expected: str, what: str) -> str:
        """Consume the next character, one of ``expected``; else an error saying ``what``."""
        found = self.peek()
        if not found:
            raise self.error(f"the file ends early (truncated?): expected {what}")
        if found not in expected:
            raise self.error(f"not valid JSON: expected {what}, found {found!r}")
        self._pos += 1
        return found

    def value(self) -> tuple[Any, str]:
        """The next JSON value and where it starts."""
        self.peek()
        while True:
            start = self._pos
            try:
                value, end = self._decoder.raw_decode(self._buffer, start)
            except json.JSONDecodeError as exc:
                if not self._eof:  # the value may go on: read more (positions move)
                    self._fill(len(self._buffer) - start)
                    continue
                if exc.pos >= len(self._buffer) or "Unterminated" in exc.msg:
                    raise self.error("the file ends early (truncated?) inside this value",
                                     self._pos) from None
                raise self.error(f"not valid JSON ({exc.msg})", exc.pos) from None
            if end == len(self._buffer) and not self._eof:  # a number may go on past the end
                self._fill(len(self._buffer) - start)
                continue
            where = self.where(start)
            self._pos = end
            return value, where

    def at_end(self) -> bool:
        return self.peek() == ""


#: a decision as read: its JSON value, where it starts (``file:line:col``), its index
_Item = tuple[Any, str, int]


def _document(tokens: _Tokens, head: dict[str, Any]) -> Iterator[_Item]:
    """Read the plan document: yields each decision as it is read; the other top-level
    members go into ``head`` as they are read (``decisions`` as [])."""
    tokens.take("{", "the plan document (a JSON object)")
    if tokens.peek() == "}":
        tokens.take("}", "'}'")
    else:
        while True:
            key, where = tokens.value()
            if not isinstance(key, str):
                raise tokens.error_at(where, "not valid JSON: expected a member name in quotes")
            if key in head:
                raise tokens.error_at(where, f"{key!r} is given twice")
            tokens.take(":", "':' after a member name")
            if key == "decisions" and tokens.peek() == "[":
                head[key] = []
                yield from _decisions(tokens)
            else:
                head[key], _ = tokens.value()
            if tokens.take(",}", "',' or '}' after a member of the plan") == "}":
                break
    if not tokens.at_end():
        raise tokens.error("not valid JSON: more text after the end of the plan document")


def _decisions(tokens: _Tokens) -> Iterator[_Item]:
    tokens.take("[", "'['")
    if tokens.peek() == "]":
        tokens.take("]", "']'")
        return
    index = 0
    while True:
        item, where = tokens.value()
        yield item, where, index
        index += 1
        if tokens.take(",]", "',' or ']' after a decision") == "]":
            return


class SavedPlan:
    """A saved plan checked whole and kept open: its head in memory (``head``: a
    :class:`~.plan.Plan` without decisions, with their counts), its decisions read from the
    file again by :meth:`decisions`. Close it (or use it as a context manager)."""

    def __init__(self, handle: IO[bytes], source: str, head: Plan, digest: str) -> None:
        self._handle = handle
        self._source = source
        self.head = head
        self._digest = digest
        self._stat = _identity(handle)

    # what sync_shop asks of a plan
    @property
    def created_at(self) -> Any:
        return self.head.created_at

    @property
    def shops(self) -> tuple[str, ...]:
        return self.head.shops

    @property
    def directions(self) -> tuple[Direction, ...]:
        return self.head.directions

    @property
    def fingerprints(self) -> Any:
        return self.head.fingerprints

    def decisions(self, wanted: Callable[[Decision], bool] | None = None) -> Iterator[Decision]:
        """The decisions in file order (those ``wanted``), read again from the file; a
        ConfigError when the file changed since it was checked."""
        if _identity(self._handle) != self._stat:
            raise self._changed()
        self._handle.seek(0)
        digest = hashlib.sha256()
        tokens = _Tokens(self._handle, self._source, digest)
        for item, _where, _index in _document(tokens, {}):
            decision = decision_from_dict(item)
            if wanted is None or wanted(decision):
                yield decision
        if digest.hexdigest() != self._digest:
            raise self._changed()

    def _changed(self) -> ConfigError:
        return ConfigError(f"{self._source}: the plan file changed while it was being "
                           "applied; make a new plan", file=self._source)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SavedPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _identity(handle: IO[bytes]) -> tuple[int, int, int]:
    stat = os.fstat(handle.fileno())
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def open_saved_plan(path: str | os.PathLike[str], source: str | None = None) -> SavedPlan:
    """Open and check a saved plan (``custsync plan --out``) without holding its decisions:
    the JSON, the format version, the schema of the head and of every decision, the time.
    A ConfigError names the file, line and column of the first problem."""
    source = source if source is not None else os.fspath(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - owned by the SavedPlan (closed by close())
    except OSError as exc:
        raise ConfigError(f"{source}: {exc.strerror or exc}", file=source) from None
    try:
        return _check(handle, source)
    except BaseException:
        handle.close()
        raise


def _check(handle: IO[bytes], source: str) -> SavedPlan:
    validator = plan_validator()
    item_validator = plan_validator("decision")
    digest = hashlib.sha256()
    tokens = _Tokens(handle, source, digest)
    tally = PlanTally()

    head: dict[str, Any] = {}
    for item, where, index in _document(tokens, head):
        if index == 0:
            _check_version(head, source)
        error = None
        if not _plainly_valid(item):  # the schema says what is wrong (or that nothing is)
            error = next(iter(sorted(item_validator.iter_errors(item),
                                     key=lambda e: list(e.absolute_path))), None)
        if error is not None:
            pointer = "".join(f"/{part}" for part in error.absolute_path)
            raise ConfigError(f"{where}: /decisions/{index}{pointer}: {error.message}",
                              file=source)
        try:
            decision = decision_from_dict(item)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{where}: /decisions/{index}: {exc}", file=source) from None
        tally.add(decision)

    _check_version(head, source)
    errors = sorted(validator.iter_errors(head), key=lambda e: list(e.absolute_path))
    if errors:
        pointer = "".join(f"/{part}" for part in errors[0].absolute_path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {pointer or '/'}: {errors[0].message}{more}", file=source)
    created_at = plan_time(head["created_at"], source)
    plan = Plan(
        created_at=created_at,
        shops=tuple(head["shops"]),
        directions=tuple(Direction(direction) for direction in head["directions"]),
        decisions=(),
        warnings=tuple(
            PlanWarning(w["code"], w["message"], w.get("location", ""), w.get("record", ""),
                        w.get("shop", ""))
            for w in head.get("warnings", ())
        ),
        fingerprints=MappingProxyType(dict(head.get("fingerprints", {}))),
        format_version=head["format_version"],
        counts=tally.summary(),
    )
    return SavedPlan(handle, source, plan, digest.hexdigest())


def _check_version(head: dict[str, Any], source: str) -> None:
    """A newer major format is refused before its decisions are judged by this schema."""
    version = head.get("format_version")
    if isinstance(version, str) and version.split(".", 1)[0] != FORMAT_VERSION.split(".", 1)[0]:
        raise ConfigError(
            f"{source}: plan format_version {version} is not supported "
            f"(this custsync reads {FORMAT_VERSION.split('.', 1)[0]}.x); plan again",
            file=source,
        )


_ENUMS = {
    "direction": frozenset(direction.value for direction in Direction),
    "action": frozenset(action.value for action in Action),
}
_DECISION_KEYS = frozenset({
    "direction", "action", "shop", "record", "label", "erp_no", "shopify_id", "new_link",
    "changes", "reason_code", "message", "rules", "payload", "source_version",
    "target_version",
})
_REQUIRED = ("direction", "action", "shop", "record", "changes", "rules")
_OPTIONAL_TEXT = ("erp_no", "shopify_id", "reason_code", "message", "source_version",
                  "target_version")
_CHANGE_KEYS = frozenset({"field", "old", "new"})
_RULE_KEYS = frozenset({"id", "decision", "file", "line"})


def _plainly_valid(item: Any) -> bool:
    """A decision as ``custsync plan`` writes it, checked in plain Python: True only when
    the plan schema's ``decision`` definition accepts it too (jsonschema takes a millisecond
    a decision, minutes for a large plan; it runs only when this says no, to say why)."""
    if type(item) is not dict or not _DECISION_KEYS.issuperset(item):
        return False
    if any(key not in item for key in _REQUIRED):
        return False
    for key, allowed in _ENUMS.items():
        if type(item[key]) is not str or item[key] not in allowed:
            return False
    record = item["record"]
    if type(item["shop"]) is not str or type(record) is not str or not record:
        return False
    if type(item.get("label", "")) is not str or type(item.get("new_link", False)) is not bool:
        return False
    if any(type(item.get(key)) not in (str, type(None)) for key in _OPTIONAL_TEXT):
        return False
    if type(item.get("payload", {})) is not dict:
        return False
    changes, rules = item["changes"], item["rules"]
    if type(changes) is not list or type(rules) is not list:
        return False
    for change in changes:  # old and new: any JSON value
        if type(change) is not dict or change.keys() != _CHANGE_KEYS:
            return False
        if type(change["field"]) is not str or not change["field"]:
            return False
    for rule in rules:
        if type(rule) is not dict or not _RULE_KEYS.issuperset(rule) or "id" not in rule:
            return False
        if any(type(rule.get(key, "")) is not str for key in ("id", "decision", "file")):
            return False
        line = rule.get("line", 0)
        if type(line) is not int or line < 0:
            return False
    return True
