"""``custsync validate``: check the config, the shipped rules and the user rule folders.

Every problem is printed as ``path:line:col: error[code] /pointer: message`` on stderr (or a
JSON list on stdout with ``-o json``), then one summary line. Exit 0 when there are no errors
(warnings allowed), 1 with errors, 64 on bad usage (a ``-c`` file that does not exist).

When the config is valid and its ERP connector can check its connection
(:class:`~custsync.engine.ports.ChecksConnection`: Business Central), validate also reaches it
with the configured settings (sign-in, environment, company, each configured page) and reports
what fails at the config line it concerns. Where the ERP answers (any connector), the customer
templates the config names must be among the ERP's. ``--offline`` leaves the ERP alone (CI
checks of rule files, a machine without the secret).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .. import exitcodes
from ..config import config_file, read_config
from ..rules.diagnostics import (
    Diagnostic,
    Severity,
    at,
    has_errors,
    render_json,
    render_text,
    summary,
)
from ..rules.validate import display_path, load_rule_set, read_document
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
    parser.add_argument(
        "--offline",
        action="store_true",
        help="do not contact the ERP (by default a Business Central ERP is reached: sign-in, "
        "environment, company, each configured page)",
    )
    add_output_option(parser)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help=f"show all (not only {TEXT_LIMIT}) problems"
    )
    parser.set_defaults(handler=_run)


#: where a connection finding's option is in custsync.yaml, most specific first (an option
#: given in the URL's query, or a tenant taken from the URL, is found at erp.url)
_SECTION = "/erp/business_central"


#: the ERPs validate reaches (their connectors implement ChecksConnection)
_REACHED_SCHEMES = frozenset({"bc"})


def _pointers(option: str) -> list[str]:
    if option == "url":
        return ["/erp/url"]
    return [f"{_SECTION}/{option.replace('.', '/')}", "/erp/url"]


def _exists(data: Any, pointer: str) -> bool:
    node = data
    for part in pointer.strip("/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _check_erp(config_path: Path, config: Any, diagnostics: list[Diagnostic]) -> str:
    """Reach the ERP: a connector that can check its connection (Business Central) reports
    its findings at their config line; then, where the ERP answers, the customer templates
    the config names are looked up among the ERP's (:func:`_check_templates`). A SQL
    database or files are only opened (every command does that): when that fails, nothing
    is said here. Returns what was reached for the summary ("" when nothing was)."""
    from ..errors import CustsyncError
    from ..ports import ChecksConnection
    from ..registry import open_erp_reader

    reached = config.erp_url.split(":", 1)[0].split("+", 1)[0].lower() in _REACHED_SCHEMES
    doc, _ = read_document(config_path)
    if doc is None:  # pragma: no cover - read_config read it a moment ago
        return ""
    try:
        reader = open_erp_reader(config.erp_url, **config.erp_options)
    except CustsyncError as exc:
        if reached:
            diagnostics.append(at(doc, "/erp", "erp-connection", str(exc)))
        return ""
    try:
        findings = (
            reader.check_connection() if reached and isinstance(reader, ChecksConnection) else ()
        )
        for finding in findings:
            candidates = _pointers(finding.option)
            pointer = next((p for p in candidates if _exists(doc.data, p)), candidates[-1])
            severity = Severity.ERROR if finding.error else Severity.WARNING
            diagnostics.append(
                at(doc, pointer, "erp-connection", _without_secret(finding.message, config), severity)
            )
        if any(f.error for f in findings):
            return "ERP not usable"
        try:
            templates = {t.code for t in reader.reference().templates}
        except CustsyncError as exc:
            if reached:
                diagnostics.append(at(doc, "/erp", "erp-connection", str(exc)))
                return "ERP not usable"
            return ""
    finally:
        reader.close()
    _check_templates(doc, templates, diagnostics)
    return "ERP reached"


def _check_templates(doc: Any, templates: set[str], diagnostics: list[Diagnostic]) -> None:
    """Each customer template the config names (a shop's ``customer_template_code`` and its
    countries') that the ERP does not have is an error at its line: every create that uses
    it would fail. An ERP that lists no templates (Business Central without its Customer
    Templ. page) is not checked."""
    if not templates:
        return
    known = ", ".join(sorted(templates)[:12]) + (", ..." if len(templates) > 12 else "")
    for i, shop in enumerate(doc.data.get("shops") or ()):
        if not isinstance(shop, dict):
            continue
        named = [("settings", shop.get("settings"))] + [
            (f"countries/{j}", country) for j, country in enumerate(shop.get("countries") or ())
        ]
        for where, node in named:
            code = node.get("customer_template_code") if isinstance(node, dict) else None
            if code and code not in templates:
                diagnostics.append(
                    at(
                        doc,
                        f"/shops/{i}/{where}/customer_template_code",
                        "unknown-template",
                        f"customer template {code!r} is not one of the ERP's ({known}): "
                        "every customer created with it would fail",
                    )
                )


def _without_secret(message: str, config: Any) -> str:
    """Belt and braces: the secret the ERP options name by variable never shows."""
    name = config.erp_options.get("client_secret_env")
    secret = os.environ.get(str(name)) if name else None
    return message.replace(secret, "***") if secret and len(secret) >= 4 else message


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
        if report.config is not None and not args.offline:
            reached = _check_erp(config_path, report.config, diagnostics)
            if reached:
                checked.append(reached)
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
