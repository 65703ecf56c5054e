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

#: no throttling unless a test asks for it (Shopify's single-query limit of 1000 stays)
LARGE_BUCKET: dict[str, Any] = {"bucket_size": 1_000_000, "restore_rate": 1_000_000.0}


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


_CLIENT: list[Any] = []


def _client() -> Any:
    import httpx

    if not _CLIENT:
        _CLIENT.append(httpx.Client(trust_env=False))
    return _CLIENT[0]


@pytest.fixture(scope="session", autouse=True)
def _close_shared_http_client() -> Iterator[None]:
    yield
    while _CLIENT:
        _CLIENT.pop().close()


def graphql_post(
    double: ShopifyDouble,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    version: str = "2026-07",
    timeout: float = 10.0,
) -> Any:
    """POST one GraphQL request to the double over HTTP (one shared keep-alive client)."""
    return _client().post(
        double.graphql_url(version),
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": token if token is not None else double.token},
        timeout=timeout,
    )
