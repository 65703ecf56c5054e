"""``--lease-ttl`` of the commands that write (``sync``, ``orders map``): they hold the
shop's lease (:func:`~..run.schedule.shop_lease`) from before the first read that a write
depends on, renewed by a heartbeat, until the end. A killed holder's lease expires after its
TTL (at once for a dead process of this machine, see
:func:`~..run.schedule.acquire_shop_lease`)."""

from __future__ import annotations

import argparse
import sys

from ..run.schedule import LEASE_TTL_SECONDS
from .schedule import number_type


def add_lease_ttl_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lease-ttl",
        type=number_type(float, 0, inclusive=False),
        default=LEASE_TTL_SECONDS,
        metavar="SECONDS",
        help=(
            "how long a killed run blocks the shop, renewed every TTL/3 "
            f"(default: {LEASE_TTL_SECONDS:g}, as schedule)"
        ),
    )


def unreleased_lease(message: str) -> None:
    """Say on stderr that the shop lease could not be given back (see ``shop_lease``)."""
    print(f"custsync: {message}", file=sys.stderr)
