"""Options several commands share, so each is spelt, shown and explained one way in ``--help``
(``tests/test_cli_voice.py`` checks every option's help text, metavar and stated default)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..errors import UsageError


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


_ORDER_GID = "gid://shopify/Order/"


def order_gid(text: str) -> str:
    """``5001`` or ``gid://shopify/Order/5001`` -> the gid; anything else is a usage error
    (before, Shopify answered "Invalid global id" or "not found" for a customer gid).
    Used by ``orders map --order`` and ``plan --order``."""
    value = text.strip()
    number = value[len(_ORDER_GID) :] if value.startswith(_ORDER_GID) else value
    if not number.isdigit():
        raise UsageError(
            f"--order {text}: not an order id (a number such as 5001, or gid://shopify/Order/5001)"
        )
    return f"{_ORDER_GID}{number}"
