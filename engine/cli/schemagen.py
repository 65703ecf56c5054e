"""Regenerate the artefacts made from the rule vocabulary and the config schema.

``python -m custsync.engine.cli.schemagen --write-schema`` writes ``schemas/rules.schema.json``
and ``schemas/config.schema.json``; ``--update-docs FILE`` rewrites the generated rule
reference in a Markdown file. It lives above ``rules`` and ``config`` because it reads both
(the rule schema from :mod:`..rules.validate`, the config schema from :mod:`..config`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..config import config_schema
from ..errors import ConfigError
from ..resources import schema_path
from ..rules import vocabulary
from ..rules.validate import JSON_TYPES, TYPE_WORDS, rules_schema


def schema_text(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generated_schemas() -> dict[str, str]:
    """Schema name -> file content, for ``schemas/``."""
    return {"rules": schema_text(rules_schema()), "config": schema_text(config_schema())}


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def reference_markdown() -> str:
    """The decision, action and fact tables of the rule reference (Markdown)."""
    lines = ["### Decisions and actions", ""]
    for name, spec in vocabulary.DECISIONS.items():
        lines += [f"#### `{name}` ({spec.kind}, {spec.direction})", "", _md(spec.description), ""]
        lines += ["| action | parameters | what it does |", "|---|---|---|"]
        for action in spec.actions.values():
            params = []
            for param in action.params:
                words = TYPE_WORDS[JSON_TYPES[param.type]]
                if param.values:
                    words = " \\| ".join(param.values)
                flags = "" if param.required else ", optional"
                ref = "" if param.fact_ref else ", literal only"
                params.append(f"`{param.name}` ({words}{flags}{ref})")
            lines.append(
                f"| `{action.name}` | {'; '.join(params) or '-'} | {_md(action.description)} |"
            )
        lines.append("")
    lines += [
        "### Facts",
        "",
        "Scope `all` means every decision; otherwise the decisions listed.",
        "",
    ]
    lines += ["| fact | type | values | scope | meaning |", "|---|---|---|---|---|"]
    for name, fact in sorted(vocabulary.FACTS.items()):
        values = ", ".join(f"`{v}`" for v in fact.values)
        lines.append(
            f"| `{name}` | {JSON_TYPES[fact.type]} | {values} | {_scope_words(fact.scopes)} | "
            f"{_md(fact.description)} |"
        )
    return "\n".join(lines) + "\n"


def _scope_words(scopes: frozenset[str]) -> str:
    if not scopes:
        return "all"
    directions = sorted(
        {vocabulary.DECISIONS[d].direction for d in scopes if d in vocabulary.DECISIONS}
    )
    covered = {d for d, spec in vocabulary.DECISIONS.items() if spec.direction in directions}
    if covered == set(scopes):
        return " + ".join(f"{d} decisions" for d in directions)
    return ", ".join(sorted(scopes))


BEGIN_MARK = (
    "<!-- BEGIN GENERATED: rule vocabulary (python -m custsync.engine.cli.schemagen --update-docs) -->"
)
END_MARK = "<!-- END GENERATED: rule vocabulary -->"


def updated_docs(text: str) -> str:
    """``text`` with the section between the markers replaced by :func:`reference_markdown`."""
    start = text.find(BEGIN_MARK)
    end = text.find(END_MARK)
    if start < 0 or end < start:
        raise ConfigError(f"the markers {BEGIN_MARK!r} ... {END_MARK!r} are missing")
    return text[: start + len(BEGIN_MARK)] + "\n\n" + reference_markdown() + "\n" + text[end:]


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m custsync.engine.cli.schemagen",
        description="Regenerate the JSON Schemas and the rule reference from the vocabulary.",
    )
    parser.add_argument(
        "--write-schema",
        action="store_true",
        help="write schemas/rules.schema.json and schemas/config.schema.json",
    )
    parser.add_argument(
        "--reference-md",
        action="store_true",
        help="print the decision/action/fact tables as Markdown",
    )
    parser.add_argument(
        "--update-docs", metavar="FILE", help="rewrite the generated section of a Markdown file"
    )
    args = parser.parse_args(argv)
    if not (args.write_schema or args.reference_md or args.update_docs):
        parser.print_usage(sys.stderr)
        return 64
    if args.write_schema:
        for name, text in generated_schemas().items():
            path = schema_path(name)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
    if args.reference_md:
        sys.stdout.write(reference_markdown())
    if args.update_docs:
        path = Path(args.update_docs)
        path.write_text(updated_docs(path.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"updated {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
