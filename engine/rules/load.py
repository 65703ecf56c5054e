"""Load YAML while keeping the line and column of every node.

``load_yaml`` returns plain Python data plus a map from JSON pointer (``/rules/2/when``) to the
1-based (line, column) where that node starts, so that schema errors and semantic errors can
be reported as ``path:line:col``. Duplicate mapping keys are an error (PyYAML silently keeps
the last one).

Plain scalars are read with YAML 1.2's rules rather than PyYAML's YAML 1.1 ones (see
:class:`SafeLoader`): ``NO`` (Norway), ``ON`` (Ontario), ``yes`` and ``off`` stay text, and a
number with a leading zero (post code ``01067``) is not read as an octal number. A date that
does not exist (``2026-13-45``) stays text for the reader of the field to report.

Aliases (``*name``) are allowed but bounded while the document is composed, before anything is
built: an alias used inside the node it names (``x: &a [*a]``) is an error, and so are aliases
that together expand to more than :data:`ALIAS_EXPANSION_LIMIT` nodes (or the document's own
node count, when larger): a "billion laughs" file of a few hundred bytes is refused at the
alias that crosses the limit instead of taking gigabytes. Nesting deeper than
:data:`MAX_DEPTH` levels is refused too (Python's recursion limit would otherwise end the
load with a traceback). Every YAML file custsync reads (config, rules, rule tests, sandbox
seeds, files worlds) goes through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "ALIAS_EXPANSION_LIMIT",
    "MAX_DEPTH",
    "LoadedDocument",
    "Position",
    "SafeLoader",
    "YamlSyntaxError",
    "load_yaml",
    "load_yaml_text",
]


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


#: nodes that aliases may add to a document in all (when the document itself is smaller)
ALIAS_EXPANSION_LIMIT = 10_000
#: deepest nesting of mappings and sequences accepted
MAX_DEPTH = 100


class SafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 scalars where YAML 1.1 silently changes data,
    and aliases bounded (see the module docstring).

    * Booleans are only ``true`` / ``false`` (any of three casings). YAML 1.1 also reads
      ``yes/no/on/off/y/n``, so the country code ``NO`` or the province code ``ON`` became
      ``False`` / ``True``.
    * Integers are decimal without a leading zero. YAML 1.1 reads ``01067`` as the octal
      number 567 and ``2:30`` as 150 (base 60); here both stay text, as post codes, phone
      numbers and times must. Write ``0x1F``-style numbers as decimals.
    * Floats lose only YAML 1.1's base-60 form.
    """

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level table, copied
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it expands to
        self._open_anchors: set[str] = set()  # anchors of the nodes being composed
        self._expanded = 0  # nodes added by aliases so far
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if self.check_event(AliasEvent):
            return self._compose_alias(event, parent, index)
        if self._depth >= MAX_DEPTH:
            raise _LimitError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
            )
        anchor = event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)
        size = 1
        for child in _children(node):
            size += self._sizes.get(id(child), 1)
        self._sizes[id(node)] = size
        return node

    def _compose_alias(self, event: Any, parent: Node | None, index: Any) -> Node | None:
        if event.anchor in self._open_anchors:
            raise _LimitError(
                None,
                None,
                f"alias *{event.anchor} is used inside the node it names (a loop)",
                event.start_mark,
            )
        node = super().compose_node(parent, index)
        self._expanded += self._sizes.get(id(node), 1)
        limit = max(ALIAS_EXPANSION_LIMIT, len(self._sizes))
        if self._expanded > limit:
            raise _LimitError(
                None,
                None,
                f"aliases expand to more than {limit} nodes at *{event.anchor}; "
                "write the values out or use fewer aliases",
                event.start_mark,
            )
        return node


class _LimitError(ComposerError):
    """A well-formed document custsync refuses to build (alias loop, expansion, depth)."""


def _children(node: Node | None) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


SafeLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
SafeLoader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789")
)
SafeLoader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _timestamp_or_text(constructor: Any, node: Any) -> Any:
    """A YAML 1.1 timestamp, or its text when it is no date (``2026-13-45``): YAML 1.2 has no
    timestamps, and the reader of the value can then say which field is wrong."""
    try:
        return constructor.construct_yaml_timestamp(node)
    except (ValueError, AttributeError, OverflowError):
        return constructor.construct_scalar(node)


class _Constructor(yaml.constructor.SafeConstructor):
    """PyYAML's safe constructor with :func:`_timestamp_or_text`."""


for _owner in (_Constructor, SafeLoader):
    _owner.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(slots=True)
class LoadedDocument:
    path: str
    data: Any
    positions: dict[str, Position] = field(default_factory=dict)
    #: JSON pointer of a mapping entry -> where its *key* starts (for "unknown property" errors)
    key_positions: dict[str, Position] = field(default_factory=dict)
    #: (pointer, message) of structural problems found while loading (duplicate keys, ...)
    problems: list[tuple[str, Position, str]] = field(default_factory=list)

    def position(self, pointer: str) -> Position:
        """The position of ``pointer``, else of its nearest existing parent, else 1:1."""
        probe = pointer
        while True:
            if probe in self.positions:
                return self.positions[probe]
            if not probe:
                return Position(1, 1)
            probe = probe.rsplit("/", 1)[0]

    def key_position(self, pointer: str) -> Position:
        """Where the key of the mapping entry ``pointer`` starts; else :meth:`position`."""
        found = self.key_positions.get(pointer)
        return found if found is not None else self.position(pointer)


class YamlSyntaxError(Exception):
    """A file that is not a YAML document, with the position of the problem.

    ``code`` is ``yaml`` for syntax errors and ``encoding`` for content that is not UTF-8.
    """

    def __init__(self, path: str, position: Position, message: str, code: str = "yaml") -> None:
        super().__init__(f"{path}:{position.line}:{position.column}: {message}")
        self.path = path
        self.position = position
        self.message = message
        self.code = code


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pos(node: Node) -> Position:
    mark = node.start_mark
    return Position(mark.line + 1, mark.column + 1)


_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _Builder:
    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.constructor = _Constructor()

    def build(self, node: Node, pointer: str) -> Any:
        self.doc.positions[pointer] = _pos(node)
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in _PLAIN_TAGS:
            raise yaml.constructor.ConstructorError(
                None, None, f"unsupported YAML tag {node.tag!r}", node.start_mark
            )
        if isinstance(node, MappingNode):
            self.constructor.flatten_mapping(node)
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._construct(key_node)
                if not isinstance(key, str | int | float | bool) or key is None:
                    key = str(key)
                child = f"{pointer}/{_escape(str(key))}"
                self.doc.key_positions[child] = _pos(key_node)
                if key in result:
                    self.doc.problems.append(
                        (child, _pos(key_node), f"duplicate key {key!r} (the first is ignored)")
                    )
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, SequenceNode):
            return [self.build(item, f"{pointer}/{index}") for index, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            return self._construct(node)
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def _construct(self, node: Node) -> Any:
        """PyYAML's value of ``node``; a value its explicit tag cannot hold (``!!int abc``)
        is a located ConstructorError, not a ValueError from deep inside PyYAML."""
        try:
            return self.constructor.construct_object(node, deep=True)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            detail = f" ({exc})" if isinstance(exc, ValueError | OverflowError) else ""
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{node.value!r} is not a valid {kind}{detail}; remove the !!{kind} tag",
                node.start_mark,
            ) from None


_HINTS = (
    ("scanning an alias", '; a value starting with * or & must be quoted, e.g. "*/15 * * * *"'),
    ("undefined alias", '; a value starting with * or & must be quoted, e.g. "*/15 * * * *"'),
    ("'\\t'", "; indent with spaces, not tabs"),
    ("mapping values are not allowed", "; quote a value that contains ': '"),
    ("found character '@'", "; quote a value starting with @ or `"),
)


def _hint(message: str) -> str:
    """A short fix for the YAML mistakes people make most."""
    for needle, hint in _HINTS:
        if needle in message:
            return hint
    return ""


def load_yaml_text(text: str, path: str) -> LoadedDocument:
    """Parse ``text`` (one YAML document) keeping positions; raise YamlSyntaxError."""
    doc = LoadedDocument(path=path, data=None)
    try:
        node = yaml.compose(text, Loader=SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        if isinstance(exc, _LimitError):
            raise YamlSyntaxError(path, position, f"YAML: {message}") from None
        raise YamlSyntaxError(path, position, f"YAML syntax: {message}{_hint(message)}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - other YAML errors carry no mark
        raise YamlSyntaxError(path, Position(1, 1), f"YAML: {exc}") from None
    if node is None:
        doc.data = None
        doc.positions[""] = Position(1, 1)
        return doc
    try:
        doc.data = _Builder(doc).build(node, "")
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        raise YamlSyntaxError(path, position, f"YAML: {exc.problem}") from None
    return doc


def load_yaml(path: str | Path) -> LoadedDocument:
    """Read and parse a YAML file; non-UTF-8 content is a YamlSyntaxError with its offset."""
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        raise YamlSyntaxError(
            str(path),
            Position(line, column),
            f"not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
            code="encoding",
        ) from None
    return load_yaml_text(text, str(path))
