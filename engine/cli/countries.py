"""`custsync countries` (placeholder: registered so the command list is complete)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import exitcodes


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("countries", help="(not implemented yet)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    print("custsync countries: not implemented yet")
    return exitcodes.ERROR
