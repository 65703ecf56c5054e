"""Shopify GraphQL Admin API connector (entry point for ``https://`` and ``http://`` URLs).

::

    reader = open_reader("https://my-shop.myshopify.com", token_env="SHOPIFY_TOKEN")
    for customer in reader.iter_customers(updated_since=cursor): ...

Modules: :mod:`.documents` (every GraphQL document), :mod:`.client` (HTTP, errors, retries),
:mod:`.pacing` (cost bucket pacer, backoff), :mod:`.mapping` (API objects <-> records),
:mod:`.reader`, :mod:`.writer`, :mod:`.bulk` (bulk operations). User documentation:
``docs/shopify.md``.

Options accepted by both factories (all optional; config names in brackets):
``api_version`` [api_version], ``timeout`` [timeout_seconds], ``token_env``
[access_token_env], ``page_size``, ``lookup`` (``identifier`` | ``search``), ``bulk_reads``
and ``bulk_threshold``, ``bulk_writes``, ``bulk_write_threshold`` and ``concurrency`` (writer only),
``max_attempts``, ``retry_base_delay``, ``retry_max_delay``, ``poll_interval``,
``time_scale`` (sandbox only), ``clock`` / ``sleep`` (tests).
"""

from __future__ import annotations

from typing import Any

import httpx
from custsync.engine.errors import ConfigError

from .bulk import BulkSettings
from .client import GraphQLClient, make_endpoint, preload
from .documents import DEFAULT_API_VERSION
from .pacing import RetryPolicy
from .reader import ShopifyGraphQLReader
from .writer import ShopifyGraphQLWriter

__all__ = [
    "DEFAULT_API_VERSION",
    "ShopifyGraphQLReader",
    "ShopifyGraphQLWriter",
    "open_reader",
    "open_writer",
    "preload",
]

_READER_OPTIONS = ("page_size", "lookup", "bulk_reads", "bulk_threshold")
_WRITER_OPTIONS = ("bulk_writes", "bulk_write_threshold", "concurrency")
_CLIENT_OPTIONS = (
    "max_attempts",
    "retry_base_delay",
    "retry_max_delay",
    "poll_interval",
    "max_poll_interval",
    "time_scale",
    "clock",
    "sleep",
    "seed",
)
#: configuration spellings accepted as aliases (custsync.yaml uses these)
_ALIASES = {"access_token_env": "token_env", "timeout_seconds": "timeout"}


def _client(
    url: str,
    token: str | None,
    token_env: str | None,
    api_version: str,
    timeout: float,
    transport: httpx.BaseTransport | None,
    options: dict[str, Any],
) -> GraphQLClient:
    endpoint = make_endpoint(
        url, token=token, token_env=token_env, api_version=api_version, timeout=timeout
    )
    defaults = RetryPolicy()
    retry = RetryPolicy(
        max_attempts=int(options.pop("max_attempts", defaults.max_attempts)),
        base_delay=float(options.pop("retry_base_delay", defaults.base_delay)),
        max_delay=float(options.pop("retry_max_delay", defaults.max_delay)),
    )
    if retry.max_attempts < 1:
        raise ConfigError("Shopify max_attempts must be at least 1")
    return GraphQLClient(
        endpoint,
        transport=transport,
        retry=retry,
        clock=options.pop("clock", None),
        sleep=options.pop("sleep", None),
        time_scale=float(options.pop("time_scale", 1.0)),
        seed=options.pop("seed", None),
    )


def _split(options: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    options = {name: value for name, value in options.items() if value is not None}
    for alias, name in _ALIASES.items():
        if alias in options:
            options.setdefault(name, options.pop(alias))
    unknown = sorted(set(options) - set(allowed) - set(_CLIENT_OPTIONS) - {"token_env", "timeout"})
    if unknown:
        raise ConfigError(f"unknown Shopify connector option(s): {', '.join(unknown)}")
    return options


def _open(url: str, writer: bool, kwargs: dict[str, Any]) -> ShopifyGraphQLReader:
    allowed = _READER_OPTIONS + (_WRITER_OPTIONS if writer else ())
    options = _split(dict(kwargs.pop("options")), allowed)
    token_env = kwargs["token_env"] or options.pop("token_env", None)
    options.pop("token_env", None)
    timeout = options.pop("timeout", None) or kwargs["timeout"]
    defaults = BulkSettings()
    bulk = BulkSettings(
        poll_interval=float(options.pop("poll_interval", defaults.poll_interval)),
        max_poll_interval=float(options.pop("max_poll_interval", defaults.max_poll_interval)),
    )
    client = _client(
        url,
        kwargs["token"],
        token_env,
        kwargs["api_version"],
        float(timeout),
        kwargs["transport"],
        options,
    )
    try:
        if writer:
            return ShopifyGraphQLWriter(client, bulk_settings=bulk, **options)
        return ShopifyGraphQLReader(client, bulk_settings=bulk, **options)
    except Exception:
        client.close()
        raise


def open_reader(
    url: str,
    *,
    token: str | None = None,
    token_env: str | None = None,
    api_version: str = DEFAULT_API_VERSION,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> ShopifyGraphQLReader:
    """A read-only client for the shop at ``url`` (it has no write methods)."""
    return _open(
        url,
        False,
        {
            "token": token,
            "token_env": token_env,
            "api_version": api_version,
            "timeout": timeout,
            "transport": transport,
            "options": options,
        },
    )


def open_writer(
    url: str,
    *,
    token: str | None = None,
    token_env: str | None = None,
    api_version: str = DEFAULT_API_VERSION,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    **options: Any,
) -> ShopifyGraphQLWriter:
    """A reading and writing client for the shop at ``url``."""
    result = _open(
        url,
        True,
        {
            "token": token,
            "token_env": token_env,
            "api_version": api_version,
            "timeout": timeout,
            "transport": transport,
            "options": options,
        },
    )
    assert isinstance(result, ShopifyGraphQLWriter)
    return result
