"""The ``custsync`` command.

One module per command group registers its subcommands (``register(subparsers)``); each
handler takes the parsed arguments and returns an exit code from :mod:`..exitcodes`.
Results go to stdout, diagnostics to stderr. ``demo_data`` makes the demo's world and
``schemagen`` regenerates the JSON Schemas and the rule reference.

May import every layer below it: ``run``, ``decide``, ``rules``, ``config`` and the shared
modules (and, for the demo and the sandbox, the shipped connectors).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .. import exitcodes
from ..errors import CustsyncError, DiagnosticsError, UsageError

#: command modules, in help order
COMMAND_MODULES = (
    "validate",
    "rules",
    "plan",
    "sync",
    "runs",
    "attention",
    "schedule",
    "worker",
    "serve",
    "orders",
    "countries",
    "erp",
    "sandbox",
    "bc_sandbox",
    "demo",
)


class _Parser(argparse.ArgumentParser):
    """argparse that exits with EX_USAGE (64) instead of 2 on a usage error."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")


class _SubcommandParser(_Parser):
    """A command's parser: an argument it does not know is its own usage error (argparse
    leaves it to the top-level parser, which would print ``custsync``'s usage)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="custsync",
        description="Keep customers in sync between an ERP and Shopify.",
    )
    parser.add_argument("--version", action="version", version="custsync 0.1.0")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_SubcommandParser
    )
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return exitcodes.USAGE
    _configure_logging()
    try:
        code = int(handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # the reader of stdout went away (`custsync runs | head`): stop quietly; stdout is
        # pointed at /dev/null so that the interpreter's own final flush does not fail again
        _silence_stdout()
        return exitcodes.ERROR
    except DiagnosticsError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic.render(), file=sys.stderr)
        count = len(exc.diagnostics)
        print(
            f"custsync: {count} error{'s' if count != 1 else ''}; nothing was done", file=sys.stderr
        )
        return exitcodes.ERROR
    except UsageError as exc:
        print(f"custsync: error: {exc.render()}", file=sys.stderr)
        return exitcodes.USAGE
    except CustsyncError as exc:
        print(f"custsync: error: {exc.render()}", file=sys.stderr)
        return exitcodes.ERROR
    except KeyboardInterrupt:
        print("custsync: interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (tests capture it)
        pass


def _configure_logging() -> None:
    """Warnings and errors of every module on stderr, as plain lines (commands that want
    more, such as ``schedule``, add their own handlers)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    logging.getLogger("custsync.sync").setLevel(logging.INFO)
    logging.getLogger("custsync.progress").setLevel(logging.INFO)


def run() -> NoReturn:  # pragma: no cover - console entry
    sys.exit(main())
