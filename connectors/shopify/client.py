"""The HTTP side of the Shopify connector: one POST endpoint, one retry policy.

Endpoint: ``POST {shop}/admin/api/{version}/graphql.json`` with the access token in the
``X-Shopify-Access-Token`` header. The token comes from an environment variable named in the
configuration; it is held in memory only, sent only to the shop's GraphQL endpoint (never to
staged-upload or bulk-result storage URLs) and never logged or put into an error message.

What happens to a response (errors from :mod:`custsync.engine.errors`):

==============================================  =============================================
HTTP 200, data                                  returned (``extensions.cost`` feeds the pacer)
HTTP 200, ``errors[].extensions.code`` THROTTLED  wait for the bucket, retry
HTTP 200, MAX_COST_EXCEEDED                      :class:`QueryTooCostly` (caller shrinks pages)
HTTP 200, other GraphQL errors                   :class:`FatalError` with Shopify's messages
429                                              wait ``Retry-After``, retry
5xx, transport errors                            backoff with jitter, retry (bounded)
401/403/404/other 4xx                            :class:`FatalError`
==============================================  =============================================

A mutation is never re-sent by this layer when its outcome is unknown (the request may have
reached Shopify: read timeout, dropped connection, 5xx): :class:`OutcomeUnknown` is raised
instead, and the writer looks the record up before trying again, so that a customer is not
created twice.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from custsync.engine.config import is_loopback_host
from custsync.engine.errors import ConfigError, FatalError, RetriableError

from .documents import DEFAULT_API_VERSION
from .pacing import Clock, Pacer, QueryCost, RetryPolicy, Sleep

log = logging.getLogger("custsync.shopify")

USER_AGENT = "custsync/0.1 (+https://github.com/custsync)"
_VERSION_RE = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")


class OutcomeUnknown(RetriableError):
    """A mutation may or may not have been applied (the answer was lost)."""


class QueryTooCostly(FatalError):
    """``MAX_COST_EXCEEDED``: the query asks for more than one request may cost."""


class GraphQLErrors(FatalError):
    """Top-level GraphQL errors other than throttling (validation, access denied, ...)."""

    def __init__(self, message: str, codes: tuple[str, ...] = ()) -> None:
        super().__init__(message, codes=codes)
        self.codes = codes


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to talk to one shop. ``token`` is excluded from ``repr``."""

    base_url: str  # https://shop.myshopify.com or http://127.0.0.1:PORT
    api_version: str
    token: str = field(repr=False)
    timeout: float = 30.0

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/admin/api/{self.api_version}/graphql.json"


_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


def _transport_reason(exc: httpx.TransportError) -> str:
    """``connection refused``, ``timed out``, ...: what went wrong, for a person."""
    text = _ERRNO_PREFIX.sub("", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    return text[:1].lower() + text[1:] if text else type(exc).__name__


def parse_shop_url(url: str) -> str:
    """Normalise a shop URL to ``scheme://host[:port]``; plain http only to loopback."""
    text = url.strip()
    if "://" not in text:
        raise ConfigError(
            f"Shopify URL {text!r} has no scheme: use https://YOUR-SHOP.myshopify.com"
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:  # a port that is no number or out of range, a broken [IPv6]
        # not quoted: it may hold a password
        raise ConfigError(f"Shopify URL: not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(
            f"Shopify URL {text!r} is not an http(s) URL: use https://YOUR-SHOP.myshopify.com"
        )
    if parts.username or parts.password:
        raise ConfigError("Shopify URL must not contain credentials; use access_token_env")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"Shopify URL {text!r} uses plain http to a non-local host; use https "
            "(plain http is only allowed to 127.0.0.1 / localhost for the sandbox)"
        )
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(
            f"Shopify URL {text!r} must be the shop's address only, without a path "
            "(custsync adds /admin/api/VERSION/graphql.json)"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


#: what an access token in a header can be: visible ASCII characters
_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


def resolve_token(token: str | None, token_env: str | None) -> str:
    """The access token: given directly (tests, API use) or read from ``token_env``."""
    if token:
        return token
    if not token_env:
        raise ConfigError(
            "no Shopify access token: set access_token_env in the shop's shopify section "
            "to the name of an environment variable holding the token (for the local "
            "sandbox too: `custsync sandbox` prints the token it accepts)"
        )
    value = os.environ.get(token_env, "").strip()
    if not value:
        raise ConfigError(
            f"environment variable {token_env} is not set or empty; it must hold the "
            "Shopify Admin API access token"
        )
    if not _TOKEN_RE.fullmatch(value):
        # an HTTP header cannot carry it: httpx's error would quote the token
        raise ConfigError(
            f"environment variable {token_env} holds a space, a line break or a non-ASCII "
            "character inside the access token; set it to the token alone"
        )
    return value


def make_endpoint(
    url: str,
    *,
    token: str | None,
    token_env: str | None,
    api_version: str,
    timeout: float,
) -> Endpoint:
    version = (api_version or DEFAULT_API_VERSION).strip()
    if not _VERSION_RE.match(version):
        raise ConfigError(
            f"Shopify api_version {version!r} is not a version name like {DEFAULT_API_VERSION!r}"
        )
    if not timeout or timeout <= 0:
        raise ConfigError(f"Shopify timeout must be a positive number of seconds, not {timeout}")
    return Endpoint(
        base_url=parse_shop_url(url),
        api_version=version,
        token=resolve_token(token, token_env),
        timeout=float(timeout),
    )


# --------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ClientStats:
    """Counters for logs, tests and the benchmark."""

    requests: int = 0
    mutations: int = 0
    throttled: int = 0
    retries: int = 0
    points: float = 0.0  # sum of actualQueryCost
    http_other: int = 0  # uploads and downloads


@dataclass(frozen=True, slots=True)
class Response:
    data: Mapping[str, Any]
    cost: QueryCost | None


def _operation_name(document: str) -> str:
    match = re.search(r"\b(?:query|mutation)\s+(\w+)", document)
    return match.group(1) if match else "anonymous"


def _is_mutation(document: str) -> bool:
    return document.lstrip().startswith("mutation")


def _error_codes(errors: Any) -> tuple[str, ...]:
    codes = []
    if isinstance(errors, list):
        for error in errors:
            ext = error.get("extensions") if isinstance(error, dict) else None
            code = ext.get("code") if isinstance(ext, dict) else None
            if isinstance(code, str):
                codes.append(code)
    return tuple(codes)


def _error_text(errors: Any, limit: int = 3) -> str:
    if isinstance(errors, str):
        return errors
    if not isinstance(errors, list):
        return str(errors)[:300]
    messages = []
    for error in errors[:limit]:
        if isinstance(error, dict):
            message = str(error.get("message", "")).strip() or "(no message)"
            code = _error_codes([error])
            messages.append(f"{message} [{code[0]}]" if code else message)
        else:
            messages.append(str(error))
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(messages) + more


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


_tls: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """The process's TLS context, httpx's default (its CA bundle, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``), made once: httpx makes a new one for every client (loading the CA
    file, about 25 ms of CPU), and a service opens two clients for every run."""
    global _tls
    with _tls_lock:
        if _tls is None:
            _tls = httpx.create_ssl_context()
        return _tls


def preload() -> None:
    """Import what the first request needs (httpx imports its transport, httpcore, when the
    first client is made) and make the TLS context: a worker calls this before it forks its
    processes, so that their first job does not."""
    import httpcore  # noqa: F401

    tls_context()


class GraphQLClient:
    """Sends GraphQL documents to one shop with pacing and bounded retries."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        time_scale: float = 1.0,
        seed: int | None = None,
    ) -> None:
        import time

        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self._sleep: Sleep = sleep or time.sleep
        self.pacer = Pacer(clock=clock or time.monotonic, sleep=self._sleep, time_scale=time_scale)
        self._rng = random.Random(seed)
        timeout = httpx.Timeout(endpoint.timeout, connect=min(10.0, endpoint.timeout))
        self._http = httpx.Client(
            transport=transport,
            verify=tls_context(),
            timeout=timeout,
            headers={
                "X-Shopify-Access-Token": endpoint.token,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            follow_redirects=False,
        )
        # Storage (staged uploads, bulk results) gets no token header.
        self._storage = httpx.Client(
            transport=transport,
            verify=tls_context(),
            timeout=httpx.Timeout(max(endpoint.timeout, 120.0), connect=10.0),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
        )
        self._expected_cost: dict[str, float] = {}
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()

    def count(self, name: str, amount: float = 1) -> None:
        """Add to a :class:`ClientStats` counter (requests may run in several threads)."""
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + amount)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        self._storage.close()

    @property
    def storage(self) -> httpx.Client:
        """A client without the access token, for upload and download URLs."""
        return self._storage

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)

    # -- requests ----------------------------------------------------------------------------

    def execute(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        expected_cost: float | None = None,
    ) -> Response:
        """Send ``document``; retry what is safe to retry; return ``data`` and the cost.

        Raises :class:`OutcomeUnknown` for a mutation whose answer was lost,
        :class:`RetriableError` when retries are exhausted, :class:`FatalError` otherwise.
        """
        name = _operation_name(document)
        mutation = _is_mutation(document)
        body = {"query": document, "variables": dict(variables or {}), "operationName": name}
        attempt = 0
        while True:
            attempt += 1
            cost = expected_cost if expected_cost is not None else self._expected_cost.get(name)
            reserved = cost or 0.0
            if reserved:
                slept = self.pacer.acquire(reserved)
                if slept > 0.05:
                    log.debug("%s: paced %.2fs for %.0f points", name, slept, reserved)
            try:
                return self._send_once(name, body, mutation, cost, reserved)
            except OutcomeUnknown:
                raise
            except RetriableError as exc:
                if attempt >= self.retry.max_attempts:
                    raise RetriableError(
                        f"Shopify {name}: giving up after {attempt} attempts: {exc.message}",
                        retry_after=exc.retry_after,
                    ) from exc
                delay = self._retry_delay(attempt, exc)
                self.count("retries")
                log.warning(
                    "Shopify %s: %s; retry %d/%d in %.2fs",
                    name,
                    exc.message,
                    attempt,
                    self.retry.max_attempts - 1,
                    delay,
                )
                if delay > 0:
                    self._sleep(delay)

    def _retry_delay(self, attempt: int, exc: RetriableError) -> float:
        if exc.fields.get("throttled"):
            needed = float(exc.fields.get("needed") or 0.0)
            paced = self.pacer.delay_for(needed) if needed else 0.0
            # a throttle we did not foresee (another app shares the bucket): wait at least
            # a moment, and back off further if it repeats
            return max(paced, self.retry.delay(attempt, self._rng) / 4)
        return self.retry.delay(attempt, self._rng, exc.retry_after)

    def _send_once(
        self, name: str, body: dict[str, Any], mutation: bool, cost: float | None, reserved: float
    ) -> Response:
        self.count("requests")
        if mutation:
            self.count("mutations")
        try:
            response = self._post(body, reserved)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # the request never reached the server: always safe to retry
            raise RetriableError(
                f"cannot connect to {self.endpoint.base_url} ({_transport_reason(exc)})"
            ) from exc
        except httpx.TransportError as exc:
            if mutation:
                raise OutcomeUnknown(
                    f"Shopify {name}: connection to {self.endpoint.base_url} lost after sending "
                    f"({_transport_reason(exc)})"
                ) from exc
            raise RetriableError(
                f"connection to {self.endpoint.base_url} lost ({_transport_reason(exc)})"
            ) from exc
        status = response.status_code
        if status == 429:
            raise RetriableError("HTTP 429 Too Many Requests", retry_after=_retry_after(response))
        if status >= 500:
            if mutation:
                raise OutcomeUnknown(f"Shopify {name}: HTTP {status}")
            raise RetriableError(f"HTTP {status}", retry_after=_retry_after(response))
        if status != 200:
            raise FatalError(self._http_error_message(name, response), status=status)
        try:
            payload = response.json()
        except ValueError as exc:
            if mutation:
                raise OutcomeUnknown(f"Shopify {name}: response is not JSON") from exc
            raise RetriableError("response is not JSON") from exc
        if not isinstance(payload, dict):
            raise FatalError(f"Shopify {name}: unexpected response (not a JSON object)")
        query_cost = QueryCost.from_extensions(payload.get("extensions"))
        if query_cost is not None:
            if query_cost.throttle is not None:
                self.pacer.update(query_cost.throttle)
            if query_cost.requested is not None:
                self._expected_cost[name] = query_cost.requested
            if query_cost.actual is not None:
                self.count("points", query_cost.actual)
            log.debug(
                "Shopify %s: cost %s/%s, available %s",
                name,
                query_cost.actual,
                query_cost.requested,
                query_cost.throttle.currently_available if query_cost.throttle else "?",
            )
        errors = payload.get("errors")
        if errors:
            codes = _error_codes(errors)
            if "THROTTLED" in codes:
                self.count("throttled")
                needed = query_cost.requested if query_cost and query_cost.requested else cost
                raise RetriableError("THROTTLED", throttled=True, needed=needed or 0.0)
            if "MAX_COST_EXCEEDED" in codes:
                raise QueryTooCostly(f"Shopify {name}: {_error_text(errors)}")
            if "INTERNAL_SERVER_ERROR" in codes:
                if mutation:
                    raise OutcomeUnknown(f"Shopify {name}: {_error_text(errors)}")
                raise RetriableError(_error_text(errors))
            raise GraphQLErrors(
                f"Shopify rejected {name}: {_error_text(errors)}" + self._hint(codes),
                codes=codes,
            )
        data = payload.get("data")
        if not isinstance(data, dict):
            raise FatalError(f"Shopify {name}: response has no data")
        return Response(data=data, cost=query_cost)

    def _post(self, body: dict[str, Any], reserved: float) -> httpx.Response:
        try:
            return self._http.post(self.endpoint.graphql_url, content=json.dumps(body))
        finally:
            if reserved:
                self.pacer.release(reserved)

    def _hint(self, codes: tuple[str, ...]) -> str:
        if "ACCESS_DENIED" in codes:
            return " (the app lacks a scope: see docs/shopify.md for the scopes custsync needs)"
        return ""

    def _http_error_message(self, name: str, response: httpx.Response) -> str:
        status = response.status_code
        detail = ""
        try:
            payload = response.json()
            if isinstance(payload, dict) and "errors" in payload:
                detail = _error_text(payload["errors"])
        except ValueError:
            detail = response.text[:200].strip()
        prefix = f"Shopify {name}: HTTP {status}"
        if status == 401:
            return (
                f"{prefix}: the access token was refused ({detail or 'unauthorized'}); check "
                "the token in the environment variable named by access_token_env"
            )
        if status == 403:
            return f"{prefix}: forbidden ({detail or 'missing scope'}); check the app's scopes"
        if status == 404:
            return (
                f"{prefix}: no Admin API at {self.endpoint.graphql_url} (check the shop URL "
                f"and api_version {self.endpoint.api_version})"
            )
        if status == 402:
            return f"{prefix}: the shop is frozen (payment required)"
        if status == 423:
            return f"{prefix}: the shop is locked"
        return f"{prefix}: {detail}" if detail else prefix
