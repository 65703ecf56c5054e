"""Pytest fixtures for the local Business Central double.

``bc_double``: a started double seeded with the default world (one company, reference data,
three customers, BC's limits in force), stopped after the test. ``bc_double_factory(**kw)``
builds and starts doubles with options (``limits``, ``max_page_size``, ``latency``,
``published``, ...; ``seed=None`` for an empty environment), all stopped at teardown.
``bc_token(double)`` gets an access token; ``bc_company(double)`` is the first company.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from custsync.connectors.bc_double import DEFAULT_WORLD, SCOPE, BcDouble, Company, seed_world


@pytest.fixture
def bc_double_factory() -> Iterator[Callable[..., BcDouble]]:
    started: list[BcDouble] = []

    def make(*, seed: Mapping[str, Any] | None = DEFAULT_WORLD, **kwargs: Any) -> BcDouble:
        double = BcDouble(**kwargs)
        if seed is not None:
            seed_world(double.store, seed)
        started.append(double.start())
        return double

    yield make
    for double in started:
        double.stop()


@pytest.fixture
def bc_double(bc_double_factory: Callable[..., BcDouble]) -> BcDouble:
    return bc_double_factory()


def bc_company(double: BcDouble) -> Company:
    return next(iter(double.store.companies.values()))


def bc_token(double: BcDouble, client: Any = None) -> str:
    """An access token from the double's token endpoint (client credentials)."""
    import httpx

    form = {"grant_type": "client_credentials", "client_id": double.client_id,
            "client_secret": double.client_secret, "scope": SCOPE}
    if client is None:
        with httpx.Client(trust_env=False) as own:
            answer = own.post(double.token_url, data=form)
    else:
        answer = client.post(double.token_url, data=form)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])
