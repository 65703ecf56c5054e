"""Validate rule files: JSON Schema, then semantic checks; load the effective rule set.

Everything here reports :class:`~.diagnostics.Diagnostic` lists (``path:line:col``) and never
raises on bad input: a bad file is reported and the others are still checked, so one run
shows every problem.

* :func:`rules_schema` builds ``schemas/rules.schema.json`` from :mod:`.vocabulary` (the
  committed file is for editors; validation always uses the freshly built one, and a test
  checks that the committed file is up to date).
* :func:`validate_rule_document` checks one loaded file (schema, duplicate keys, facts,
  values, parameters, durable-rules limits).
* :func:`check_rule_files` checks a set of files together (duplicate ids, ``disable``,
  unreachable rules, decisions without a fallback, facts per decision).
* :func:`load_rule_set` reads the shipped folder and the user folders and merges them.

``python -m custsync.engine.cli.schemagen --write-schema`` regenerates both JSON Schemas;
``--reference-md`` prints the rule reference tables; ``--update-docs FILE`` rewrites the
generated section of a Markdown file.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from ..errors import ConfigError
from ..model import ERP_CUSTOMER_FIELDS, ERP_FIELD_LENGTHS, ERP_TEMPLATE_FIELDS
from ..resources import shipped_rules_dir
from . import vocabulary
from .diagnostics import Diagnostic, Severity, at, has_errors, sort_diagnostics
from .load import LoadedDocument, YamlSyntaxError, load_yaml
from .rulefile import (
    GROUP_KEYS,
    OPERATORS,
    TEMPLATE_PLACEHOLDER,
    FactRef,
    Rule,
    RuleFile,
    RuleSet,
    Template,
    build_rule_file,
    merge_rule_files,
)

__all__ = [
    "MAX_FACTS_PER_DECISION",
    "MAX_IN_VALUES",
    "check_rule_files",
    "default_schema_diagnostics",
    "did_you_mean",
    "json_pointer",
    "load_rule_set",
    "read_document",
    "require_rule_set",
    "rules_schema",
    "schema_diagnostics",
    "validate_rule_document",
]

#: durable-rules hangs at 512 equality alternatives on one property; stay far below.
MAX_IN_VALUES = 100
#: durable-rules accepts at most 252 properties per message (nested ones count).
MAX_FACTS_PER_DECISION = 200

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
RULE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
FACT_NAME_PATTERN = r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)+$"
_GENERATED = (
    "Generated from engine/rules/vocabulary.py by `python -m custsync.engine.cli.schemagen "
    "--write-schema`; do not edit by hand."
)
_REGEX_OPERATORS = frozenset({"matches", "match", "regex", "mt", "pattern", "like"})
_ANY_BRACES = re.compile(r"\{([^{}]*)\}")
_IMPORT_FIELDS = frozenset(ERP_CUSTOMER_FIELDS) | frozenset(ERP_TEMPLATE_FIELDS)

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or ``""`` (a value that differs only in case, such as
    ``NONE`` for ``none``, is always suggested)."""
    options = list(candidates)
    same = [option for option in options if option.lower() == word.lower()]
    close = same or difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _esc(token: Any) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def json_pointer(path: Iterable[Any]) -> str:
    return "".join(f"/{_esc(part)}" for part in path)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__  # date, datetime (YAML timestamps)


TYPE_WORDS = {
    "string": "a text",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def _type_words(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(TYPE_WORDS.get(name, name) for name in names)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _choices(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


# ---------------------------------------------------------------------------------------------
# The rule-file JSON Schema, generated from the vocabulary
# ---------------------------------------------------------------------------------------------

_OPERATOR_DOCS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "eq": ("The fact equals this value.", {"$ref": "#/$defs/scalar"}),
    "ne": ("The fact is absent or differs from this value.", {"$ref": "#/$defs/scalar"}),
    "in": (
        f"The fact equals one of these values (at most {MAX_IN_VALUES}).",
        {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/scalar"}},
    ),
    "not_in": (
        f"The fact is absent or equals none of these values (at most {MAX_IN_VALUES}).",
        {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/scalar"}},
    ),
    "present": (
        "true: the fact has a value; false: it is absent (empty values are absent).",
        {"type": "boolean"},
    ),
    "lt": ("The fact is less than this number.", {"type": "number"}),
    "lte": ("The fact is less than or equal to this number.", {"type": "number"}),
    "gt": ("The fact is greater than this number.", {"type": "number"}),
    "gte": ("The fact is greater than or equal to this number.", {"type": "number"}),
}

JSON_TYPES = {vocabulary.STRING: "string", vocabulary.BOOL: "boolean", vocabulary.INT: "integer"}


def _fact_description(spec: vocabulary.FactSpec) -> str:
    text = f"{spec.description} ({TYPE_WORDS[JSON_TYPES[spec.type]]}"
    if spec.values:
        text += f": {' | '.join(spec.values)}"
    text += ")"
    if spec.scopes:
        text += f". Decisions: {', '.join(sorted(spec.scopes))}"
    return text


def _param_schema(param: vocabulary.ParamSpec) -> dict[str, Any]:
    literal: dict[str, Any] = {"type": JSON_TYPES[param.type]}
    if param.values:
        literal["enum"] = list(param.values)
    description = param.description or ""
    if param.fact_ref:
        extra = "a literal or {fact: name}"
        if param.type == vocabulary.STRING:
            extra += "; texts may hold {fact.name} placeholders"
        description = f"{description} ({extra})" if description else extra.capitalize()
        schema: dict[str, Any] = {"anyOf": [literal, {"$ref": "#/$defs/fact_ref"}]}
    else:
        description = f"{description} (a literal)" if description else "A literal."
        schema = dict(literal)
    schema["description"] = description
    return schema


def _action_def(spec: vocabulary.ActionSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {"action": {"const": spec.name}}
    for param in spec.params:
        properties[param.name] = _param_schema(param)
    return {
        "description": spec.description,
        "type": "object",
        "required": ["action", *(p.name for p in spec.params if p.required)],
        "properties": properties,
        "additionalProperties": False,
    }


def rules_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a rule file, from :mod:`.vocabulary`."""
    decisions = vocabulary.DECISIONS
    defs: dict[str, Any] = {
        "scalar": {
            "title": "a value",
            "description": "A text, number or true/false. Empty facts are absent: use present.",
            "type": ["string", "number", "boolean"],
        },
        "operators": {
            "title": "a mapping of operators",
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {
                op: {"description": _OPERATOR_DOCS[op][0], **_OPERATOR_DOCS[op][1]}
                for op in OPERATORS
            },
        },
        "condition": {
            "description": "A value (the fact equals it) or a mapping of operators.",
            "anyOf": [{"$ref": "#/$defs/scalar"}, {"$ref": "#/$defs/operators"}],
        },
        "fact_ref": {
            "title": "{fact: name}",
            "description": "The value of a fact.",
            "type": "object",
            "required": ["fact"],
            "additionalProperties": False,
            "properties": {
                "fact": {
                    "type": "string",
                    "description": "A fact name, e.g. lookup.email_customer_no.",
                    "examples": sorted(vocabulary.FACTS),
                }
            },
        },
        "when": {
            "title": "Conditions",
            "description": (
                "Conditions over facts; all must hold. Omitted or empty: the rule always holds."
            ),
            "type": "object",
            "properties": {
                "any": {
                    "description": "At least one of these groups of conditions holds.",
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/when"},
                },
                "all": {
                    "description": "Every one of these groups of conditions holds.",
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": "#/$defs/when"},
                },
                **{
                    name: {
                        "description": _fact_description(spec),
                        "$ref": "#/$defs/condition",
                        **({"examples": list(spec.values)} if spec.values else {}),
                    }
                    for name, spec in sorted(vocabulary.FACTS.items())
                },
            },
            "additionalProperties": {"$ref": "#/$defs/condition"},
        },
        "rule": {
            "type": "object",
            "required": ["id", "then"],
            "additionalProperties": False,
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": RULE_ID_PATTERN,
                    "x-form": "letters, digits, '-', '_' and '.' (no spaces), e.g. match-by-email",
                    "description": (
                        "Unique id (letters, digits, - _ .). A rule with the same id in a "
                        "later rule folder replaces this one."
                    ),
                    "examples": ["match-by-email"],
                },
                "description": {"type": "string", "description": "What the rule is for."},
                "priority": {
                    "type": "integer",
                    "default": 0,
                    "description": "Higher runs first; equal priorities keep file order.",
                },
                "enabled": {
                    "type": "boolean",
                    "default": True,
                    "description": "false turns the rule off (e.g. in an override).",
                },
                "when": {"$ref": "#/$defs/when"},
                "then": {
                    "description": "The action and its parameters.",
                    "type": "object",
                    "required": ["action"],
                    "properties": {"action": {"type": "string"}},
                },
            },
        },
    }
    branches: list[dict[str, Any]] = []
    for name, decision in decisions.items():
        actions = decision.actions
        then_def = f"then_{name}"
        defs[then_def] = {
            "type": "object",
            "required": ["action"],
            "properties": {
                "action": {
                    "description": f"What a rule of {name} does.",
                    "enum": list(actions),
                    "enumDescriptions": [a.description for a in actions.values()],
                }
            },
            "allOf": [
                {
                    "if": {"properties": {"action": {"const": action}}, "required": ["action"]},
                    "then": {"$ref": f"#/$defs/action_{name}_{action}"},
                }
                for action in actions
            ],
        }
        for action, spec in actions.items():
            defs[f"action_{name}_{action}"] = _action_def(spec)
        branches.append(
            {
                "if": {"properties": {"decision": {"const": name}}, "required": ["decision"]},
                "then": {
                    "properties": {
                        "rules": {
                            "items": {"properties": {"then": {"$ref": f"#/$defs/{then_def}"}}}
                        }
                    }
                },
            }
        )
    return {
        "$schema": SCHEMA_DIALECT,
        "$comment": _GENERATED,
        "title": "custsync rule file",
        "description": (
            "Rules for one decision of custsync. Name this schema in the file with "
            "'# yaml-language-server: $schema=<path>/rules.schema.json'."
        ),
        "type": "object",
        "required": ["decision"],
        "additionalProperties": False,
        "properties": {
            "$schema": {"type": "string"},
            "decision": {
                "description": "The decision this file's rules contribute to.",
                "enum": list(decisions),
                "enumDescriptions": [
                    f"{d.kind}, {d.direction}: {d.description}" for d in decisions.values()
                ],
            },
            "description": {"type": "string", "description": "What the file is for."},
            "disable": {
                "description": "Rule ids (usually shipped ones) to turn off.",
                "type": "array",
                "items": {
                    "type": "string",
                    "pattern": RULE_ID_PATTERN,
                    "x-form": "a rule id: letters, digits, '-', '_' and '.'",
                },
            },
            "rules": {
                "description": "The rules.",
                "type": "array",
                "items": {"$ref": "#/$defs/rule"},
            },
        },
        "allOf": branches,
        "$defs": defs,
    }


@lru_cache(maxsize=1)
def _rules_validator() -> Draft202012Validator:
    return Draft202012Validator(rules_schema())


# ---------------------------------------------------------------------------------------------
# JSON Schema errors -> diagnostics
# ---------------------------------------------------------------------------------------------

#: A hook that may turn a schema error into specific diagnostics (or None: use the default).
Rewrite = Callable[[LoadedDocument, ValidationError], "list[Diagnostic] | None"]


def _resolve(validator: Draft202012Validator, schema: Any) -> Any:
    """A local ``{"$ref": "#/..."}`` replaced by its target."""
    if isinstance(schema, Mapping) and str(schema.get("$ref", "")).startswith("#/"):
        return _lookup(validator.schema, schema["$ref"])
    return schema


def _lookup(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _branch_titles(validator: Draft202012Validator, error: ValidationError) -> str:
    titles = []
    for branch in error.validator_value:
        resolved = _resolve(validator, branch)
        if isinstance(resolved, Mapping):
            title = resolved.get("title") or (
                _type_words(resolved["type"]) if "type" in resolved else None
            )
            if title:
                titles.append(str(title))
    return " or ".join(titles) if titles else "a different value"


def _alternative_keys(validator: Draft202012Validator, error: ValidationError) -> list[str]:
    """The keys of a ``oneOf``/``anyOf`` whose branches each only require one key (a rule
    test case's ``import``/``order``/``export``); else none."""
    if error.validator not in ("anyOf", "oneOf"):
        return []
    keys = []
    for branch in error.validator_value:
        resolved = _resolve(validator, branch)
        if not isinstance(resolved, Mapping) or set(resolved) != {"required"}:
            return []
        required = resolved["required"]
        if not isinstance(required, list) or len(required) != 1:
            return []
        keys.append(str(required[0]))
    return keys


def default_schema_diagnostics(
    doc: LoadedDocument, validator: Draft202012Validator, error: ValidationError
) -> list[Diagnostic]:
    pointer = json_pointer(error.absolute_path)
    kind = error.validator
    value = error.instance
    if kind == "additionalProperties" and isinstance(value, Mapping):
        allowed = list(error.schema.get("properties", {}))
        out = []
        for key in value:
            if key in allowed:
                continue
            hint = did_you_mean(str(key), allowed)
            if not hint and 0 < len(allowed) <= 12:
                hint = f"; allowed: {_choices(allowed)}"
            out.append(
                at(
                    doc,
                    f"{pointer}/{_esc(key)}",
                    "schema",
                    f"unknown property {str(key)!r}{hint}",
                    key=True,
                )
            )
        return out
    if kind == "required" and isinstance(value, Mapping):
        return [
            at(doc, pointer, "schema", f"missing required property {name!r}")
            for name in error.validator_value
            if name not in value
        ]
    if kind == "type":
        message = f"expected {_type_words(error.validator_value)}, got {_json_type(value)}"
        expected = error.validator_value
        if expected == "string" and isinstance(value, bool):
            message += " (YAML reads true and false as booleans: quote the value)"
        elif expected == "string" and isinstance(value, int | float):
            message += " (quote the value to make it a text)"
        elif expected == "string" and not isinstance(value, Mapping | list):
            message += " (quote the value)"
        return [at(doc, pointer, "schema", message)]
    if kind == "enum":
        allowed = [str(v) for v in error.validator_value]
        hint = did_you_mean(str(value), allowed)
        return [
            at(doc, pointer, "schema", f"{_short(value)} is not one of: {_choices(allowed)}{hint}")
        ]
    if kind == "const":
        return [at(doc, pointer, "schema", f"expected {error.validator_value!r}")]
    keys = _alternative_keys(validator, error)
    if keys and isinstance(value, Mapping):
        found = [key for key in keys if key in value]
        exactly = "exactly " if kind == "oneOf" else ""
        message = f"give {exactly}one of {', '.join(keys)} (found {', '.join(found) or 'none'})"
        return [at(doc, pointer, "schema", message)]
    if kind in ("anyOf", "oneOf"):
        message = f"expected {_branch_titles(validator, error)}, got {_json_type(value)}"
        types = [_resolve(validator, b).get("type") for b in error.validator_value]
        if "string" in types and isinstance(value, bool | int | float):
            message += " (quote the value to make it a text)"
        return [at(doc, pointer, "schema", message)]
    if kind == "pattern":
        form = error.schema.get("x-form") or f"the pattern {error.validator_value}"
        return [at(doc, pointer, "schema", f"does not have the expected form: {form}")]
    if kind == "minItems":
        return [at(doc, pointer, "schema", f"needs at least {error.validator_value} item(s)")]
    if kind == "minProperties":
        return [at(doc, pointer, "schema", "must not be empty")]
    if kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "exclusiveMinimum": "more than",
            "maximum": "at most",
            "exclusiveMaximum": "less than",
        }[kind]
        return [at(doc, pointer, "schema", f"must be {words} {error.validator_value}")]
    if kind == "uniqueItems":
        return [at(doc, pointer, "schema", "items must be unique")]
    # Anything else: jsonschema's own message, without echoing the value.
    return [at(doc, pointer, "schema", f"does not satisfy '{kind}' of the schema")]


def schema_diagnostics(
    doc: LoadedDocument, validator: Draft202012Validator, rewrite: Rewrite | None = None
) -> list[Diagnostic]:
    """Every schema error of ``doc`` as diagnostics; for anyOf/oneOf the most relevant branch
    error. Messages never echo texts of unknown meaning beyond short enum values."""
    out: list[Diagnostic] = []
    for error in validator.iter_errors(doc.data):
        for shown in _descend(error):
            special = rewrite(doc, shown) if rewrite else None
            if special is None:
                special = default_schema_diagnostics(doc, validator, shown)
            out.extend(special)
    return out


def _descend(error: ValidationError) -> list[ValidationError]:
    """The errors to show for ``error``: for anyOf/oneOf, the errors of the only branch whose
    type fits the value (all of them), else jsonschema's best match, else the error itself."""
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for child in error.context:
        branches.setdefault(child.relative_schema_path[0], []).append(child)
    here = list(error.absolute_path)
    viable = [
        errors
        for errors in branches.values()
        if not any(e.validator == "type" and list(e.absolute_path) == here for e in errors)
    ]
    if len(viable) == 1:
        return [shown for child in viable[0] for shown in _descend(child)]
    best = best_match([error])
    return [best] if best is not None else [error]


def _rule_rewrite(doc: LoadedDocument, error: ValidationError) -> list[Diagnostic] | None:
    """Rule-file messages: actions, parameters, operators."""
    path = list(error.absolute_path)
    decision = doc.data.get("decision") if isinstance(doc.data, Mapping) else None
    pointer = json_pointer(path)
    if path == ["decision"] and error.validator == "enum":
        return [
            at(
                doc,
                pointer,
                "unknown-decision",
                f"unknown decision {_short(error.instance)}; expected one of: "
                f"{_choices(vocabulary.DECISIONS)}{did_you_mean(str(error.instance), vocabulary.DECISIONS)}",
            )
        ]
    in_then = len(path) >= 3 and path[0] == "rules" and path[2] == "then"
    if in_then and path[3:] == ["action"] and error.validator == "enum":
        action = str(error.instance)
        actions = list(vocabulary.DECISIONS[str(decision)].actions)
        owners = [d for d, spec in vocabulary.DECISIONS.items() if action in spec.actions]
        if owners:
            return [
                at(
                    doc,
                    pointer,
                    "misplaced-action",
                    f"action {action!r} belongs to decision {', '.join(owners)}, not {decision}; "
                    f"expected one of: {_choices(actions)}",
                )
            ]
        return [
            at(
                doc,
                pointer,
                "unknown-action",
                f"unknown action {_short(error.instance)} for decision {decision}; expected one "
                f"of: {_choices(actions)}{did_you_mean(action, actions)}",
            )
        ]
    if in_then and len(path) == 3 and isinstance(error.instance, Mapping):
        action = str(error.instance.get("action"))
        if error.validator == "required":
            if "action" not in error.instance:
                return [at(doc, pointer, "schema", "missing required property 'action'")]
            return [
                at(doc, pointer, "missing-param", f"action {action!r} needs parameter {name!r}")
                for name in error.validator_value
                if name not in error.instance
            ]
        if error.validator == "additionalProperties":
            allowed = [p for p in error.schema.get("properties", {}) if p != "action"]
            return [
                at(
                    doc,
                    f"{pointer}/{_esc(key)}",
                    "unknown-param",
                    f"action {action!r} has no parameter {str(key)!r}"
                    + (
                        did_you_mean(str(key), allowed)
                        or (f"; it takes: {_choices(allowed)}" if allowed else "; it takes none")
                    ),
                    key=True,
                )
                for key in error.instance
                if key != "action" and key not in allowed
            ]
    in_when = len(path) >= 3 and path[0] == "rules" and path[2] == "when"
    if (
        in_when
        and error.validator == "additionalProperties"
        and isinstance(error.instance, Mapping)
    ):
        allowed = list(OPERATORS)
        out = []
        for key in error.instance:
            if key in allowed:
                continue
            child = f"{pointer}/{_esc(key)}"
            if str(key) in _REGEX_OPERATORS:
                out.append(
                    at(
                        doc,
                        child,
                        "unsupported-operator",
                        f"{str(key)!r}: regular expressions are not supported (durable-rules "
                        "matches whole strings only and silently ignores \\d, ^, $); compute a "
                        "fact in Python instead",
                        key=True,
                    )
                )
            else:
                out.append(
                    at(
                        doc,
                        child,
                        "unknown-operator",
                        f"unknown operator {str(key)!r}{did_you_mean(str(key), allowed)}; "
                        f"operators: {_choices(allowed)}",
                        key=True,
                    )
                )
        return out
    return None


# ---------------------------------------------------------------------------------------------
# One rule document
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cond:
    fact: str
    op: str
    value: Any
    key_pointer: str  # the fact's key
    value_pointer: str


def _walk_when(data: Any, pointer: str) -> Iterator[_Cond]:
    if not isinstance(data, Mapping):
        return
    for key, value in data.items():
        child = f"{pointer}/{_esc(key)}"
        if key in GROUP_KEYS:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    yield from _walk_when(item, f"{child}/{index}")
            continue
        if isinstance(value, Mapping):
            for op, operand in value.items():
                yield _Cond(str(key), str(op), operand, child, f"{child}/{_esc(op)}")
        else:
            yield _Cond(str(key), "eq", value, child, child)


class _RuleChecker:
    """Semantic checks of one rule document, tolerant of parts the schema rejected."""

    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.out: list[Diagnostic] = []
        data = doc.data if isinstance(doc.data, Mapping) else {}
        decision = data.get("decision")
        self.decision = decision if isinstance(decision, str) else ""
        self.spec = vocabulary.DECISIONS.get(self.decision)
        self.scope = vocabulary.facts_for(self.decision) if self.spec else vocabulary.FACTS

    def add(
        self, pointer: str, code: str, message: str, *, warning: bool = False, key: bool = False
    ) -> None:
        severity = Severity.WARNING if warning else Severity.ERROR
        self.out.append(at(self.doc, pointer, code, message, severity, key=key))

    def fact(self, name: str, pointer: str, *, key: bool = False) -> vocabulary.FactSpec | None:
        """The fact ``name`` if it exists and is in scope; else report it."""
        spec = vocabulary.FACTS.get(name)
        if spec is None:
            self.add(
                pointer,
                "unknown-fact",
                f"unknown fact {name!r}{did_you_mean(name, self.scope)}",
                key=key,
            )
            return None
        if self.spec is not None and name not in self.scope:
            # suggest only an in-scope fact with the same field (shopify_link.exists -> link.exists)
            field_name = name.partition(".")[2]
            alike = [f for f in self.scope if f.partition(".")[2] == field_name]
            self.add(
                pointer,
                "fact-scope",
                f"fact {name!r} is not available in decision {self.decision} (it is for: "
                f"{', '.join(sorted(spec.scopes))}){did_you_mean(name, alike)}",
                key=key,
            )
            return None
        return spec

    def run(self) -> list[Diagnostic]:
        data = self.doc.data
        if not isinstance(data, Mapping):
            return self.out
        rules = data.get("rules")
        if not isinstance(rules, list):
            return self.out
        for index, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            pointer = f"/rules/{index}"
            for cond in _walk_when(rule.get("when"), f"{pointer}/when"):
                self.condition(cond)
            then = rule.get("then")
            if isinstance(then, Mapping) and self.spec is not None:
                self.then(then, f"{pointer}/then", _narrowed(rule.get("when")))
        return self.out

    # --- conditions -----------------------------------------------------------------------

    def condition(self, cond: _Cond) -> None:
        spec = self.fact(cond.fact, cond.key_pointer, key=True)
        if spec is None or cond.op not in OPERATORS:
            return
        if cond.op in ("eq", "ne"):
            self.value(spec, cond.op, cond.value, cond.value_pointer)
        elif cond.op in ("in", "not_in") and isinstance(cond.value, list):
            if len(cond.value) > MAX_IN_VALUES:
                self.add(
                    cond.value_pointer,
                    "in-too-long",
                    f"{len(cond.value)} values; at most {MAX_IN_VALUES} are allowed "
                    "(durable-rules hangs on 512 alternatives); compute a fact in Python",
                )
            for position, item in enumerate(cond.value):
                self.value(spec, cond.op, item, f"{cond.value_pointer}/{position}")
        elif cond.op in ("lt", "lte", "gt", "gte") and spec.type != vocabulary.INT:
            self.add(
                cond.value_pointer,
                "fact-type",
                f"operator {cond.op!r} compares numbers; fact {spec.name!r} is "
                f"{TYPE_WORDS[JSON_TYPES[spec.type]]}",
            )

    def value(self, spec: vocabulary.FactSpec, op: str, value: Any, pointer: str) -> None:
        if value is None or isinstance(value, Mapping | list):
            return  # the schema reports it
        kind = TYPE_WORDS[JSON_TYPES[spec.type]]
        if spec.type == vocabulary.BOOL and not isinstance(value, bool):
            self.add(pointer, "fact-type", f"fact {spec.name!r} is {kind}, not {_short(value)}")
            return
        if spec.type == vocabulary.INT and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            self.add(pointer, "fact-type", f"fact {spec.name!r} is {kind}, not {_short(value)}")
            return
        if spec.type == vocabulary.STRING:
            if not isinstance(value, str):
                if isinstance(value, bool):
                    message = (
                        f"fact {spec.name!r} is a text, but YAML read this value as {value} "
                        "(true and false are booleans): quote it"
                    )
                else:
                    message = f"fact {spec.name!r} is a text; quote the value: '{value}'"
                self.add(pointer, "fact-type", message)
                return
            if value == "":
                better = "{present: false}" if op in ("eq", "in") else "{present: true}"
                self.add(
                    pointer,
                    "empty-value",
                    f"empty facts are absent, so comparing with '' never matches; use {better}",
                    warning=True,
                )
                return
            if spec.values and value not in spec.values:
                self.add(
                    pointer,
                    "fact-value",
                    f"{value!r} is not a value of {spec.name}; expected one of: "
                    f"{_choices(spec.values)}{did_you_mean(value, spec.values)}",
                )

    # --- actions and parameters -------------------------------------------------------------

    def then(self, then: Mapping[str, Any], pointer: str, narrowed: Mapping[str, set[Any]]) -> None:
        assert self.spec is not None
        action = self.spec.actions.get(str(then.get("action")))
        if action is None:
            return  # the schema reports it
        params = {p.name: p for p in action.params}
        for name, value in then.items():
            param = params.get(str(name))
            if param is None:
                continue
            child = f"{pointer}/{_esc(name)}"
            if isinstance(value, Mapping) and set(value) == {"fact"} and param.fact_ref:
                if isinstance(value["fact"], str):
                    self.param_fact(param, value["fact"], f"{child}/fact", narrowed)
            elif isinstance(value, str):
                self.template(param, value, child)
        if self.decision == "import_fields":
            self.import_field(then, pointer)

    def param_fact(
        self,
        param: vocabulary.ParamSpec,
        name: str,
        pointer: str,
        narrowed: Mapping[str, set[Any]],
    ) -> None:
        spec = self.fact(name, pointer)
        if spec is None:
            return
        if param.type in (vocabulary.BOOL, vocabulary.INT) and spec.type != param.type:
            self.add(
                pointer,
                "param-type",
                f"parameter {param.name!r} is {TYPE_WORDS[JSON_TYPES[param.type]]}; "
                f"fact {name!r} is {TYPE_WORDS[JSON_TYPES[spec.type]]}",
            )
        elif param.values and spec.values:
            possible = narrowed.get(name, set(spec.values))
            extra = sorted(str(v) for v in possible - set(param.values))
            if not extra:
                return
            self.add(
                pointer,
                "param-value",
                f"fact {name!r} may be {_choices(extra)}, which parameter {param.name!r} "
                f"does not accept (it takes: {_choices(param.values)})",
                warning=True,
            )

    def template(self, param: vocabulary.ParamSpec, text: str, pointer: str) -> None:
        placeholders = TEMPLATE_PLACEHOLDER.findall(text)
        if placeholders and not param.fact_ref:
            self.add(
                pointer,
                "placeholder",
                f"parameter {param.name!r} is a literal; {{{placeholders[0]}}} would not "
                "be filled in",
            )
            return
        for name in placeholders:
            self.fact(name, pointer)
        for inner in _ANY_BRACES.findall(text):
            if not TEMPLATE_PLACEHOLDER.fullmatch(f"{{{inner}}}"):
                self.add(
                    pointer,
                    "placeholder",
                    f"'{{{inner}}}' is not a fact placeholder and is shown as written; "
                    "placeholders look like {shopify.email}",
                    warning=True,
                )

    def import_field(self, then: Mapping[str, Any], pointer: str) -> None:
        name = then.get("field")
        if not isinstance(name, str):
            return
        if name not in _IMPORT_FIELDS:
            self.add(
                f"{pointer}/field",
                "unknown-field",
                f"unknown ERP customer field {name!r}{did_you_mean(name, _IMPORT_FIELDS)}",
            )
            return
        length = then.get("max_length")
        limit = ERP_FIELD_LENGTHS.get(name)
        if isinstance(length, int) and limit is not None and length > limit:
            self.add(
                f"{pointer}/max_length",
                "max-length",
                f"ERP field {name!r} holds at most {limit} characters",
                warning=True,
            )


def _narrowed(when: Any) -> dict[str, set[Any]]:
    """Values an enum fact can still have given the rule's top-level conditions
    (``settings.name_source: {in: [a, b]}`` -> {a, b})."""
    out: dict[str, set[Any]] = {}
    for cond in _walk_when(when if isinstance(when, Mapping) else {}, ""):
        spec = vocabulary.FACTS.get(cond.fact)
        if spec is None or not spec.values or cond.key_pointer.count("/") != 1:
            continue  # only plain facts of the top level narrow (not inside any/all)
        possible = out.setdefault(cond.fact, set(spec.values))
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        values = [v for v in values if isinstance(v, str | int | float | bool)]
        if cond.op in ("eq", "in"):
            possible &= set(values)
        elif cond.op in ("ne", "not_in"):
            possible -= set(values)
    return out


def validate_rule_document(doc: LoadedDocument) -> list[Diagnostic]:
    """Schema and semantic diagnostics of one loaded rule file (sorted)."""
    out: list[Diagnostic] = [
        at(doc, pointer, "duplicate-key", message, key=True)
        for pointer, _position, message in doc.problems
    ]
    if doc.data is None:
        out.append(
            at(doc, "", "empty", "the file is empty; a rule file needs 'decision' and 'rules'")
        )
        return sort_diagnostics(out)
    out.extend(schema_diagnostics(doc, _rules_validator(), _rule_rewrite))
    out.extend(_RuleChecker(doc).run())
    return sort_diagnostics(out)


# ---------------------------------------------------------------------------------------------
# A set of rule files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadedRuleFile:
    """A rule file with the folder it came from (0 = first folder, usually the shipped one)."""

    folder: int
    doc: LoadedDocument
    rule_file: RuleFile | None  # None when the file has errors


def _raw_rules(doc: LoadedDocument) -> Iterator[tuple[str, str]]:
    """(id, pointer) of every rule with a textual id, even in files with errors."""
    data = doc.data
    if not isinstance(data, Mapping) or not isinstance(data.get("rules"), list):
        return
    for index, rule in enumerate(data["rules"]):
        if isinstance(rule, Mapping) and isinstance(rule.get("id"), str):
            yield rule["id"], f"/rules/{index}/id"


def _decision_of(doc: LoadedDocument) -> str:
    data = doc.data
    value = data.get("decision") if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else ""


def _where(doc: LoadedDocument, pointer: str) -> str:
    position = doc.position(pointer)
    return f"{doc.path}:{position.line}"


def _rule_facts(rule: Rule) -> set[str]:
    names: set[str] = set()
    stack: list[Any] = [rule.when]
    while stack:
        item = stack.pop()
        if hasattr(item, "items"):
            stack.extend(item.items)
        else:
            names.add(item.fact)
    for param in rule.params.values():
        if isinstance(param, FactRef):
            names.add(param.name)
        elif isinstance(param, Template):
            names.update(param.facts)
    return names


def check_rule_files(files: Sequence[LoadedRuleFile]) -> list[Diagnostic]:
    """Checks across files: duplicate ids, ``disable``, and (when every file is valid)
    unreachable rules, choice decisions without a fallback, facts per decision."""
    out: list[Diagnostic] = []
    # id -> (decision, folder, doc, pointer) of its first definition
    seen: dict[str, tuple[str, int, LoadedDocument, str]] = {}
    added: list[tuple[str, LoadedRuleFile, str]] = []  # new ids of later folders
    for item in files:
        decision = _decision_of(item.doc)
        for rule_id, pointer in _raw_rules(item.doc):
            first = seen.get(rule_id)
            if first is None:
                seen[rule_id] = (decision, item.folder, item.doc, pointer)
                if item.folder > 0:
                    added.append((rule_id, item, pointer))
                continue
            first_decision, first_folder, first_doc, first_pointer = first
            where = _where(first_doc, first_pointer)
            if first_decision != decision:
                out.append(
                    at(
                        item.doc,
                        pointer,
                        "duplicate-id",
                        f"rule id {rule_id!r} is already used by decision "
                        f"{first_decision} ({where}); ids are unique across decisions",
                    )
                )
            elif first_folder == item.folder:
                out.append(
                    at(
                        item.doc,
                        pointer,
                        "duplicate-id",
                        f"duplicate rule id {rule_id!r} (first at {where}); to replace "
                        "a rule, give the new one the same id in a later rule folder",
                    )
                )
            else:
                seen[rule_id] = (decision, item.folder, item.doc, pointer)  # an override
    out.extend(_near_overrides(added, seen))
    for item in files:
        data = item.doc.data
        disable = data.get("disable") if isinstance(data, Mapping) else None
        if not isinstance(disable, list):
            continue
        for index, rule_id in enumerate(disable):
            if isinstance(rule_id, str) and rule_id not in seen:
                out.append(
                    at(
                        item.doc,
                        f"/disable/{index}",
                        "unknown-disable",
                        f"no rule has the id {rule_id!r}{did_you_mean(rule_id, seen)}",
                        Severity.WARNING,
                    )
                )
    if any(item.rule_file is None for item in files) or has_errors(out):
        return out
    rule_set = merge_rule_files([item.rule_file for item in files if item.rule_file])
    docs = {item.doc.path: item.doc for item in files}
    out.extend(_check_rule_set(rule_set, docs))
    return out


def _near_overrides(
    added: Sequence[tuple[str, LoadedRuleFile, str]],
    seen: Mapping[str, tuple[str, int, LoadedDocument, str]],
) -> list[Diagnostic]:
    """A new rule whose id is a typo of an earlier folder's rule of the same decision
    (``match-by-phone-digit`` for ``match-by-phone-digits``): the user meant to replace that
    rule, and got both."""
    out: list[Diagnostic] = []
    for rule_id, item, pointer in added:
        decision = _decision_of(item.doc)
        for other, (other_decision, folder, doc, other_pointer) in seen.items():
            if other_decision != decision or folder >= item.folder or not _typo(rule_id, other):
                continue
            out.append(
                at(
                    item.doc,
                    pointer,
                    "near-override",
                    f"rule {rule_id!r} is added next to {other!r} "
                    f"({_where(doc, other_pointer)}), not in its place: a rule replaces "
                    "another only with the same id",
                    Severity.WARNING,
                )
            )
            break
    return out


def _typo(word: str, other: str) -> bool:
    """At most two edits apart, but not a separated extension (``x-2`` of ``x``)."""
    if word == other or abs(len(word) - len(other)) > 2:
        return False
    short, long = sorted((word, other), key=len)
    if long.startswith(short) and long[len(short)] in "-_.":
        return False
    row = list(range(len(other) + 1))
    for i, char in enumerate(word, start=1):
        previous, row[0] = row[0], i
        for j, other_char in enumerate(other, start=1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (char != other_char)),
            )
    return row[-1] <= 2


def _check_rule_set(rule_set: RuleSet, docs: Mapping[str, LoadedDocument]) -> list[Diagnostic]:
    out: list[Diagnostic] = []

    def rule_diag(rule: Rule, code: str, message: str, severity: Severity) -> Diagnostic:
        doc = docs.get(rule.location.file)
        if doc is not None:
            return at(doc, rule.pointer, code, message, severity)
        return Diagnostic(
            rule.location.file,
            rule.location.line,
            rule.location.column,
            severity,
            code,
            rule.pointer,
            message,
        )

    for decision, rules in rule_set.decisions.items():
        spec = vocabulary.DECISIONS.get(decision)
        if spec is None or not rules:
            continue
        if spec.kind in ("choice", "assign"):
            out.extend(_unreachable(spec, rules, rule_diag))
        if spec.kind == "choice" and not any(rule.always_holds for rule in rules):
            last = rules[-1]
            out.append(
                rule_diag(
                    last,
                    "no-fallback",
                    f"no rule of decision {decision} always holds: a record may match none of its "
                    f"rules (it is then reported at run time); add a last rule without 'when'",
                    Severity.WARNING,
                )
            )
        facts: set[str] = set()
        for rule in rules:
            facts |= _rule_facts(rule)
        if len(facts) > MAX_FACTS_PER_DECISION:
            out.append(
                rule_diag(
                    rules[0],
                    "too-many-facts",
                    f"decision {decision} reads {len(facts)} facts; at most "
                    f"{MAX_FACTS_PER_DECISION} are allowed (durable-rules takes 252 properties per "
                    "record)",
                    Severity.ERROR,
                )
            )
    return out


def _unreachable(
    spec: vocabulary.DecisionSpec,
    rules: Sequence[Rule],
    rule_diag: Callable[[Rule, str, str, Severity], Diagnostic],
) -> list[Diagnostic]:
    """Rules after one that always holds (per assigned field for ``assign`` decisions)."""
    out: list[Diagnostic] = []
    winners: dict[Any, Rule] = {}
    for rule in rules:  # best first
        group: Any = rule.params.get("field") if spec.kind == "assign" else None
        winner = winners.get(group)
        if winner is not None:
            what = f" for field {group!r}" if spec.kind == "assign" else ""
            out.append(
                rule_diag(
                    rule,
                    "unreachable",
                    f"rule {rule.id!r} can never fire{what}: rule {winner.id!r} "
                    f"({winner.location.file}:{winner.location.line}, priority {winner.priority}) "
                    "comes first and always holds",
                    Severity.WARNING,
                )
            )
        elif rule.always_holds:
            winners[group] = rule
    return out


# ---------------------------------------------------------------------------------------------
# Reading files and folders
# ---------------------------------------------------------------------------------------------


def display_path(path: Path) -> str:
    """``path`` as custsync shows it, so that a user can open it: relative to the working
    folder when it is inside it, else as given (a user's rule file) or, for a file custsync
    ships (its rules and their tests), its real path in the installation. ``custsync rules
    show ID`` prints one rule whatever the path."""
    if not path.is_absolute():
        return str(path)
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
    try:
        resolved.relative_to(shipped_rules_dir().resolve())
    except ValueError:
        return str(path)
    return str(resolved)


def read_document(
    path: Path, shown: str | None = None
) -> tuple[LoadedDocument | None, list[Diagnostic]]:
    """Load a YAML file; unreadable files, non-UTF-8 and syntax errors become diagnostics."""
    name = shown if shown is not None else display_path(path)
    try:
        doc = load_yaml(path)
    except YamlSyntaxError as exc:
        return None, [
            Diagnostic(
                name,
                exc.position.line,
                exc.position.column,
                Severity.ERROR,
                exc.code,
                "",
                exc.message,
            )
        ]
    except IsADirectoryError:
        return None, [Diagnostic(name, 0, 0, Severity.ERROR, "io", "", "is a folder, not a file")]
    except FileNotFoundError:
        return None, [Diagnostic(name, 0, 0, Severity.ERROR, "io", "", "no such file")]
    except OSError as exc:
        return None, [
            Diagnostic(
                name, 0, 0, Severity.ERROR, "io", "", f"cannot read the file: {exc.strerror or exc}"
            )
        ]
    doc.path = name
    return doc, []


def _rule_paths(folder: Path, *, shipped: bool) -> tuple[list[Path], list[Diagnostic]]:
    shown = display_path(folder)
    if folder.is_file():
        return [folder], []
    if not folder.exists():
        return [], [Diagnostic(shown, 0, 0, Severity.ERROR, "io", "", "rule folder does not exist")]
    try:
        paths = sorted(
            p
            for p in folder.iterdir()
            if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and not p.is_dir()
        )
    except OSError as exc:
        return [], [
            Diagnostic(
                shown,
                0,
                0,
                Severity.ERROR,
                "io",
                "",
                f"cannot read the rule folder: {exc.strerror or exc}",
            )
        ]
    if not paths and not shipped:
        return [], [
            Diagnostic(
                shown,
                0,
                0,
                Severity.WARNING,
                "empty-folder",
                "",
                "no *.yaml rule files in this folder (sub-folders are not read)",
            )
        ]
    return paths, []


def load_rule_set(
    dirs: Sequence[Path | str], include_shipped: bool = True
) -> tuple[RuleSet | None, list[Diagnostic]]:
    """Load the shipped rules (``rules/*.yaml``; sub-folders such as ``rules/tests`` hold rule
    tests and are skipped), then each user folder in order; validate everything; merge.

    Returns the effective :class:`RuleSet` (None when there is any error) and every
    diagnostic, sorted. A user path may also name a single rule file.
    """
    folders: list[tuple[Path, bool]] = []
    diagnostics: list[Diagnostic] = []
    if include_shipped:
        try:
            folders.append((shipped_rules_dir(), True))
        except FileNotFoundError as exc:
            diagnostics.append(Diagnostic("rules", 0, 0, Severity.ERROR, "io", "", str(exc)))
    folders.extend((Path(d), False) for d in dirs)
    loaded: list[LoadedRuleFile] = []
    # one folder (or file) listed twice, e.g. in the config's rules: and in --rules, is loaded
    # once: loaded again, each of its rules would override itself
    listed: dict[object, tuple[Path, bool]] = {}
    read: dict[object, Path] = {}
    for index, (folder, shipped) in enumerate(folders):
        first = listed.setdefault(_path_identity(folder), (folder, shipped))
        if first[0] is not folder:
            diagnostics.append(_listed_twice(folder, *first))
            continue
        paths, problems = _rule_paths(folder, shipped=shipped)
        diagnostics.extend(problems)
        for path in paths:
            source = read.setdefault(_path_identity(path), folder)
            if source is not folder:
                diagnostics.append(
                    _listed_twice(path, source, False, "file is already loaded from {first}")
                )
                continue
            doc, problems = read_document(path)
            diagnostics.extend(problems)
            if doc is None:
                continue
            file_diagnostics = validate_rule_document(doc)
            diagnostics.extend(file_diagnostics)
            rule_file = None if has_errors(file_diagnostics) else build_rule_file(doc)
            loaded.append(LoadedRuleFile(index, doc, rule_file))
    diagnostics.extend(check_rule_files(loaded))
    diagnostics = sort_diagnostics(diagnostics)
    if has_errors(diagnostics):
        return None, diagnostics
    return merge_rule_files([item.rule_file for item in loaded if item.rule_file]), diagnostics


def _path_identity(path: Path) -> object:
    """One value for every spelling of a file or folder (relative or absolute, ``..``, a
    symbolic link): its device and inode; its absolute path when it does not exist."""
    try:
        stat = path.stat()
    except OSError:
        return str(path.absolute())
    return (stat.st_dev, stat.st_ino)


def _listed_twice(
    path: Path, first: Path, shipped: bool, what: str = "folder is already listed as {first}"
) -> Diagnostic:
    """The warning for a rule folder or file not loaded again (``listed-twice``)."""
    message = (
        "this is the shipped rules folder, always loaded first; not loaded again"
        if shipped
        else f"this rule {what.format(first=display_path(first))}; it is loaded once, "
        "at its first place"
    )
    return Diagnostic(display_path(path), 0, 0, Severity.WARNING, "listed-twice", "", message)


def require_rule_set(dirs: Sequence[Path | str], include_shipped: bool = True) -> RuleSet:
    """:func:`load_rule_set`, raising :class:`~.errors.DiagnosticsError` on errors."""
    rule_set, diagnostics = load_rule_set(dirs, include_shipped)
    if rule_set is None:
        from .diagnostics import raise_on_errors

        raise_on_errors(diagnostics)
        raise ConfigError("the rules are invalid")  # pragma: no cover - errors raised above
    return rule_set
