"""The shop lease of the commands that write (``sync``, ``orders map``): taken before the
first read that a write depends on, renewed by a heartbeat while the command runs (so a long
run is not taken over), given back at the end. A killed holder's lease expires after its TTL
(at once for a dead process of this machine, see :func:`~..run.schedule.acquire_shop_lease`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .schedule import number_type

#: the shop lease's default TTL, the same as ``custsync schedule``'s
LEASE_TTL_SECONDS = 60.0


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


class ShopBusy(Exception):
    """Another process holds the shop's lease."""

    def __init__(self, shop: str, holder: str | None) -> None:
        super().__init__(f"shop {shop} is being synced by {holder or 'another process'}")
        self.shop = shop
        self.holder = holder


@contextmanager
def shop_lease(state: Any, shop: str, holder: str, ttl: float, stop: Any) -> Iterator[Any]:
    """Hold ``shop``'s lease for the ``with`` block, renewed every ``ttl / 3`` seconds; yields
    its fence (None when the store keeps none). ShopBusy when another process holds it; when
    a renewal is refused (the lease was lost), ``stop`` is set so that no write follows."""
    from ..run.schedule import LeaseHeartbeat, acquire_shop_lease, lease_fence, lease_name

    name = lease_name(shop)
    acquired, other = acquire_shop_lease(state, name, holder, ttl)
    if not acquired:
        raise ShopBusy(shop, other)
    try:
        with LeaseHeartbeat(state, name, holder, ttl, ttl / 3, stop):
            yield lease_fence(state, name, holder)
    finally:
        _release(state, name, holder, ttl)


def _release(state: Any, name: str, holder: str, ttl: float) -> None:
    """Give the lease back; when the state database cannot be written (a full disk), say so
    without hiding the error that ended the run: the lease expires by itself after ``ttl``."""
    from ..errors import CustsyncError

    try:
        state.release_lease(name, holder)
    except CustsyncError as exc:
        print(
            f"custsync: lease {name} not released ({exc.render()}); it expires within {ttl:g}s",
            file=sys.stderr,
        )
