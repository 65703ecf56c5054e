"""Options several commands share, so each is spelt, shown and explained one way in ``--help``
(``tests/test_cli_voice.py`` checks every option's help text, metavar and stated default)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def add_output_option(
    parser: argparse.ArgumentParser, choices: Sequence[str] = ("text", "json")
) -> None:
    """``-o/--output``: the format on stdout, the first choice by default."""
    parser.add_argument(
        "-o",
        "--output",
        choices=tuple(choices),
        default=choices[0],
        help=f"format on stdout (default: {choices[0]})",
    )
