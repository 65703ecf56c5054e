"""``custsync rules``: run rule unit tests, list the effective rules, show one rule.

::

    custsync rules test [PATH...] [--rules DIR]... [-c CONFIG] [-k TEXT] [-o text|json] [-v]
    custsync rules list [--decision NAME] [--rules DIR]... [-c CONFIG] [-o text|json]
    custsync rules show ID [--rules DIR]... [-c CONFIG] [-o text|json]

Rule folders: the shipped rules, then the folders of the config file's ``rules:`` (when a
config is given or ``./custsync.yaml`` exists), then ``--rules`` folders, later ones override.
Without PATH, ``rules test`` runs the shipped suite against the shipped rules (plus
``--rules``) and each configured folder's ``tests/`` against the effective rules.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import exitcodes
from ..decide import ruletest
from ..errors import ConfigError, DiagnosticsError, UsageError
from ..resources import locate, shipped_rules_dir
from ..rules.diagnostics import Diagnostic
from ..rules.diagnostics import render_text as render_diagnostics
from ..rules.load import YamlSyntaxError, load_yaml
from ..rules.rulefile import Rule, RuleSet
from ..rules.vocabulary import DECISIONS
from .options import add_output_option

DEFAULT_CONFIG = "custsync.yaml"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rules",
        help="test, list and show rules",
        description="Rule unit tests and the effective rule set.",
    )
    commands = parser.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    parser.set_defaults(handler=lambda args: _usage(parser))

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--rules",
            dest="rule_dirs",
            action="append",
            default=[],
            metavar="DIR",
            help="a user rule folder applied over the shipped rules (repeatable)",
        )
        sub.add_argument(
            "-c",
            "--config",
            metavar="FILE",
            help=f"config file whose 'rules:' folders apply (default: ./{DEFAULT_CONFIG} if any)",
        )
        add_output_option(sub)

    test = commands.add_parser(
        "test",
        help="run rule-test files",
        description="Run rule-test files (default: the shipped suite and configured tests/).",
    )
    test.add_argument("paths", nargs="*", metavar="PATH", help="rule-test file or folder")
    test.add_argument("-k", dest="select", metavar="TEXT", help="only cases whose name has TEXT")
    test.add_argument("-v", "--verbose", action="store_true", help="tracebacks of engine errors")
    common(test)
    test.set_defaults(handler=_test)

    listing = commands.add_parser(
        "list",
        help="the effective rules per decision",
        description="The effective rules per decision, best first, with file:line.",
    )
    listing.add_argument("--decision", choices=sorted(DECISIONS), help="only this decision")
    common(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser(
        "show", help="one rule in full", description="Show one effective rule in full."
    )
    show.add_argument("rule_id", metavar="ID", help="the rule's id, as `custsync rules list` shows it")
    common(show)
    show.set_defaults(handler=_show)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


# ---------------------------------------------------------------------------------------------
# Rule folders
# ---------------------------------------------------------------------------------------------


def _configured_dirs(config: str | None) -> list[Path]:
    """The ``rules:`` folders of the config file, relative to it."""
    if config:
        from ..config import config_file

        path = config_file(config)
    else:
        path = Path(DEFAULT_CONFIG)
        if not path.is_file():
            return []
    try:
        document = load_yaml(path)
    except YamlSyntaxError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    data = document.data
    folders = data.get("rules") if isinstance(data, dict) else None
    if folders is None:
        return []
    if not isinstance(folders, list):
        where = document.position("/rules")
        raise ConfigError(
            f"{path}:{where.line}:{where.column}: /rules: expected a list of rule folders "
            f"(e.g. rules: [./my-rules]), got {type(folders).__name__}"
        )
    return [(path.resolve().parent / str(folder)).resolve() for folder in folders]


def _checked_dirs(raw: Sequence[str]) -> list[Path]:
    dirs = []
    for folder in raw:
        path = Path(folder)
        if not path.is_dir():
            problem = "is a file, not a folder" if path.exists() else "no such folder"
            raise UsageError(f"--rules {folder}: {problem}")
        dirs.append(path.resolve())
    return dirs


def _display(path: str | Path) -> str:
    """A path as custsync shows it so that it can be opened
    (:func:`custsync.engine.rules.validate.display_path`)."""
    from ..rules.validate import display_path

    return display_path(Path(path))


def _print_diagnostics(diagnostics: Sequence[Any]) -> None:
    lines = (
        render_diagnostics(list(diagnostics))
        if all(isinstance(d, Diagnostic) for d in diagnostics)
        else [d.render() for d in diagnostics]
    )
    for line in lines:
        print(line, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# rules test
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Batch:
    """Test files that run against the same extra rule folders."""

    paths: tuple[Path, ...]
    rule_dirs: tuple[Path, ...]


def _batches(args: argparse.Namespace) -> list[_Batch]:
    explicit = _checked_dirs(args.rule_dirs)
    configured = _configured_dirs(args.config)
    if args.paths:
        return [_Batch(tuple(ruletest.discover(args.paths)), (*configured, *explicit))]
    batches = [_Batch(tuple(ruletest.discover([shipped_rules_dir() / "tests"])), tuple(explicit))]
    user_tests = [folder / "tests" for folder in (*configured, *explicit)]
    found = [folder for folder in user_tests if folder.is_dir()]
    if found:
        batches.append(_Batch(tuple(ruletest.discover(found)), (*configured, *explicit)))
    return batches


def _test(args: argparse.Namespace) -> int:
    results: list[ruletest.CaseResult] = []
    problems: list[Any] = []
    text = args.output == "text"
    files = 0
    for batch in _batches(args):
        runner = ruletest.RuleTestRunner(batch.rule_dirs)
        for path in batch.paths:
            try:
                test_file = ruletest.load_test_file(path)
            except DiagnosticsError as exc:
                problems.extend(exc.diagnostics)
                if text:
                    _print_diagnostics(exc.diagnostics)
                continue
            files += 1
            try:
                for result in runner.run_file(test_file, verbose=args.verbose, select=args.select):
                    results.append(result)
                    if text:
                        print(ruletest.render_result(result), flush=True)
            except DiagnosticsError as exc:  # the rules themselves are invalid: nothing can run
                _print_diagnostics(exc.diagnostics)
                print("custsync: error: the rule set is invalid; no rule test ran", file=sys.stderr)
                return exitcodes.ERROR
    if not results and not problems:
        print("custsync: error: no rule-test cases found", file=sys.stderr)
        return exitcodes.ERROR
    failed_files = len({d.path for d in problems})
    if text:
        print(ruletest.summary_line(ruletest.summarize(results, failed_files)))
    else:
        sys.stdout.write(ruletest.render_json(results, problems))
    failed = any(result.status.failed for result in results)
    return exitcodes.ERROR if failed or problems else exitcodes.OK


# ---------------------------------------------------------------------------------------------
# rules list / show
# ---------------------------------------------------------------------------------------------


def _rule_set(args: argparse.Namespace) -> RuleSet:
    dirs = [*_configured_dirs(args.config), *_checked_dirs(args.rule_dirs)]
    return ruletest.load_rules(dirs)


def _definitions(rule_set: RuleSet) -> dict[str, list[Rule]]:
    """Every definition of each rule id in load order (the last one is effective)."""
    found: dict[str, list[Rule]] = {}
    for rule_file in rule_set.files:
        for rule in rule_file.rules:
            found.setdefault(rule.id, []).append(rule)
    return found


def _where(rule: Rule) -> str:
    return f"{_display(rule.location.file)}:{rule.location.line}"


def _rule_json(rule: Rule, definitions: dict[str, list[Rule]]) -> dict[str, Any]:
    earlier = definitions.get(rule.id, [])[:-1]
    return {
        "id": rule.id,
        "decision": rule.decision,
        "priority": rule.priority,
        "action": rule.action,
        "description": rule.description,
        "file": _display(rule.location.file),
        "line": rule.location.line,
        "overrides": [_where(old) for old in earlier],
    }


def _disabled(rule_set: RuleSet, definitions: dict[str, list[Rule]]) -> list[dict[str, Any]]:
    rows = []
    for rule_file in rule_set.files:
        for rule_id in rule_file.disable:
            loc = rule_file.disable_locations.get(rule_id)
            rows.append(
                {
                    "id": rule_id,
                    "by": f"{_display(loc.file)}:{loc.line}" if loc else _display(rule_file.path),
                    "known": rule_id in definitions,
                }
            )
        rows.extend(
            {"id": rule.id, "by": _where(rule), "known": True}
            for rule in rule_file.rules
            if not rule.enabled
        )
    return rows


def _list(args: argparse.Namespace) -> int:
    rule_set = _load_or_report(args)
    if rule_set is None:
        return exitcodes.ERROR
    definitions = _definitions(rule_set)
    names = [args.decision] if args.decision else list(DECISIONS)
    names += sorted(d for d in rule_set.decisions if d not in DECISIONS and not args.decision)
    if args.output == "json":
        document = {
            "format_version": ruletest.FORMAT_VERSION,
            "decisions": [
                {
                    "name": name,
                    "kind": DECISIONS[name].kind if name in DECISIONS else "",
                    "rules": [_rule_json(r, definitions) for r in rule_set.rules(name)],
                }
                for name in names
            ],
            "disabled": _disabled(rule_set, definitions),
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return exitcodes.OK
    blocks = []
    for name in names:
        spec = DECISIONS.get(name)
        rules = rule_set.rules(name)
        count = f"{len(rules)} rule{'' if len(rules) == 1 else 's'}"
        header = f"{name} ({spec.kind}, {count})" if spec else f"{name} ({count})"
        if spec:
            header += f": {spec.description}"
        lines = [header]
        width = max((len(rule.id) for rule in rules), default=0)
        for rule in rules:
            line = f"  {rule.priority:>5}  {rule.id:<{width}}  {rule.action:<16} {_where(rule)}"
            earlier = definitions.get(rule.id, [])[:-1]
            if earlier:
                line += f"  (overrides {', '.join(_where(old) for old in earlier)})"
            lines.append(line)
        if not rules:
            lines.append("  (no rules)")
        blocks.append("\n".join(lines))
    disabled = _disabled(rule_set, definitions)
    if disabled and not args.decision:
        blocks.append(
            "disabled:\n"
            + "\n".join(
                f"  {row['id']}  by {row['by']}" + ("" if row["known"] else "  (no such rule)")
                for row in disabled
            )
        )
    print("\n\n".join(blocks))
    return exitcodes.OK


def _raw_rule(rule: Rule) -> dict[str, Any]:
    """The rule as written in its file."""
    try:
        data = load_yaml(locate(rule.location.file)).data
        index = int(rule.pointer.rsplit("/", 1)[-1])
        raw = data["rules"][index]
        return dict(raw) if isinstance(raw, dict) else {}
    except (OSError, YamlSyntaxError, KeyError, IndexError, ValueError, TypeError):
        return {}


def _show(args: argparse.Namespace) -> int:
    rule_set = _load_or_report(args)
    if rule_set is None:
        return exitcodes.ERROR
    definitions = _definitions(rule_set)
    effective = {rule.id: rule for rules in rule_set.decisions.values() for rule in rules}
    rule = effective.get(args.rule_id)
    if rule is None:
        if args.rule_id in definitions:
            where = _where(definitions[args.rule_id][-1])
            print(f"custsync: error: rule {args.rule_id} ({where}) is disabled", file=sys.stderr)
            return exitcodes.ERROR
        close = difflib.get_close_matches(args.rule_id, list(definitions), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        print(f"custsync: error: no rule with id {args.rule_id!r}{hint}", file=sys.stderr)
        return exitcodes.ERROR
    raw = _raw_rule(rule)
    info = _rule_json(rule, definitions)
    if args.output == "json":
        info["when"] = raw.get("when") or {}
        info["then"] = raw.get("then") or {}
        print(json.dumps(info, indent=2, ensure_ascii=False, default=str))
        return exitcodes.OK
    spec = DECISIONS.get(rule.decision)
    lines = [
        f"rule {rule.id}",
        f"  decision:    {rule.decision}" + (f" ({spec.kind})" if spec else ""),
        f"  file:        {_where(rule)}",
        f"  priority:    {rule.priority}",
        f"  description: {rule.description}",
    ]
    if info["overrides"]:
        lines.append(f"  overrides:   {', '.join(info['overrides'])}")
    for key in ("when", "then"):
        if key in raw:
            dumped = yaml.safe_dump({key: raw[key]}, sort_keys=False, allow_unicode=True)
            lines.extend("  " + row for row in dumped.rstrip().splitlines())
    print("\n".join(lines))
    return exitcodes.OK


def _load_or_report(args: argparse.Namespace) -> RuleSet | None:
    try:
        return _rule_set(args)
    except DiagnosticsError as exc:
        _print_diagnostics(exc.diagnostics)
        return None
