"""Pytest fixtures for the local Shopify test double.

``shopify_double``: a started double with an empty store and a bucket too large to throttle
(unless a test injects faults), stopped after the test. ``shopify_double_factory(**kwargs)``:
builds and starts doubles with options (small bucket, ``time_scale``, seed, ...), all stopped
at teardown. The schema is built once per process (module cache in the double).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from custsync.connectors.shopify_double import ShopifyDouble

#: no throttling unless a test asks for it
LARGE_BUCKET: dict[str, Any] = {"bucket_size": 1_000_000, "restore_rate": 1_000_000.0,
                                "max_cost_per_query": 1_000_000}


@pytest.fixture
def shopify_double_factory() -> Iterator[Callable[..., ShopifyDouble]]:
    started: list[ShopifyDouble] = []

    def make(**kwargs: Any) -> ShopifyDouble:
        kwargs.setdefault("bulk_seconds", 0.05)
        double = ShopifyDouble(**kwargs).start()
        started.append(double)
        return double

    yield make
    for double in started:
        double.stop()


@pytest.fixture
def shopify_double(shopify_double_factory: Callable[..., ShopifyDouble]) -> ShopifyDouble:
    return shopify_double_factory(**LARGE_BUCKET)
