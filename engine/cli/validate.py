"""``custsync validate``: check the config, the shipped rules and the user rule folders.

Every problem is printed as ``path:line:col: error[code] /pointer: message`` on stderr (or a
JSON list on stdout with ``-o json``), then one summary line. Exit 0 when there are no errors
(warnings allowed), 1 with errors, 64 on bad usage (a ``-c`` file that does not exist).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import exitcodes
from ..config import config_file, read_config
from ..rules.diagnostics import Diagnostic, has_errors, render_json, render_text, summary
from ..rules.validate import display_path, load_rule_set
from .options import add_output_option

#: diagnostics shown in text output without -v
TEXT_LIMIT = 50
DEFAULT_CONFIG = "custsync.yaml"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check the config and rule files (every problem with file:line:col)",
        description=(
            "Check the config file, the shipped rules and your rule folders. Diagnostics go "
            "to stderr (JSON to stdout with -o json). Exit 0: valid (warnings allowed); "
            "1: errors; 64: usage."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"config file (default: ./{DEFAULT_CONFIG} when it exists); its rules: are checked",
    )
    parser.add_argument(
        "--rules",
        metavar="DIR",
        action="append",
        default=[],
        help="a rule folder (or file) applied over the shipped rules; repeatable, in order",
    )
    parser.add_argument(
        "--no-shipped",
        action="store_true",
        help="check only the given rule folders, without the shipped rules",
    )
    add_output_option(parser)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help=f"show all (not only {TEXT_LIMIT}) problems"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    diagnostics: list[Diagnostic] = []
    checked: list[str] = []
    rule_dirs: list[Path] = []
    config_path: Path | None = None
    if args.config is not None:
        config_path = config_file(args.config)  # missing: a usage error (64), as everywhere
    elif Path(DEFAULT_CONFIG).is_file():
        config_path = Path(DEFAULT_CONFIG)
    if config_path is not None:
        report = read_config(config_path)
        diagnostics.extend(report.diagnostics)
        # Missing folders are reported at their line in the config.
        rule_dirs.extend(d for d in report.rule_dirs if d.exists())
        checked.append(f"config {display_path(config_path)}")
    rule_dirs.extend(Path(folder) for folder in args.rules)
    rule_set, rule_diagnostics = load_rule_set(rule_dirs, include_shipped=not args.no_shipped)
    diagnostics.extend(rule_diagnostics)
    if rule_set is not None:
        n_rules = sum(len(rules) for rules in rule_set.decisions.values())
        n_files = len(rule_set.files)
        checked.append(
            f"{n_files} rule file{'' if n_files == 1 else 's'}, "
            f"{n_rules} active rule{'' if n_rules == 1 else 's'}"
        )
    else:
        folders = len(rule_dirs) + (0 if args.no_shipped else 1)
        checked.append(f"{folders} rule folder{'' if folders == 1 else 's'}")
    line = summary(diagnostics, "; ".join(checked))
    if args.output == "json":
        json.dump(render_json(diagnostics), sys.stdout, indent=2)
        sys.stdout.write("\n")
        print(line, file=sys.stderr)
    else:
        for text in render_text(diagnostics, None if args.verbose else TEXT_LIMIT):
            print(text, file=sys.stderr)
        print(line)
    return exitcodes.ERROR if has_errors(diagnostics) else exitcodes.OK
