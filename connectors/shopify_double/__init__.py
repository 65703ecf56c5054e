"""A local test double of the Shopify GraphQL Admin API (customers subset).

Serves Shopify's endpoint on 127.0.0.1 with the same auth header, executes real GraphQL
(graphql-core) against a subset of the 2026-07 Admin schema (``schema.graphql``), and behaves
like Shopify where custsync depends on it: pagination and cursors, search syntax, uniqueness
and validation messages, normalisation, ``updatedAt``, query cost and a leaky bucket with
THROTTLED answers, bulk operations with staged uploads, and injected faults. See
``docs/sandbox.md``.

    >>> double = ShopifyDouble(token="shpat_test").start()
    >>> double.graphql_url("2026-07")  # doctest: +SKIP
    'http://127.0.0.1:PORT/admin/api/2026-07/graphql.json'
    >>> double.stop()
"""

from __future__ import annotations

from .bucket import LeakyBucket, ThrottleStatus
from .faults import Fault, describe_fault, parse_faults
from .seed import load_seed_file, save_store, seed_from_models, seed_store
from .server import RequestLog, ShopifyDouble
from .store import Store, UserError

#: plan name -> (bucket size, restore rate per second)
PLANS: dict[str, tuple[float, float]] = {"standard": (2000.0, 100.0), "plus": (20000.0, 1000.0)}

__all__ = [
    "PLANS",
    "Fault",
    "LeakyBucket",
    "RequestLog",
    "ShopifyDouble",
    "Store",
    "ThrottleStatus",
    "UserError",
    "describe_fault",
    "load_seed_file",
    "parse_faults",
    "save_store",
    "seed_from_models",
    "seed_store",
]
