"""HTTP to Business Central: OAuth token, pacing to BC's limits, retries, BC's errors.

* **Token**: OAuth 2.0 client credentials against ``token_url``; cached until 5 minutes
  before it expires; a 401 from BC fetches one new token and repeats the request once.
* **Pacing**: BC allows 6,000 requests per user in any 5-minute window and 5 requests at a
  time (operational limits, "OData request limits"). :class:`RequestWindow` keeps the send
  times of the last window and waits before a request that would exceed it; a semaphore holds
  the concurrency to ``max_concurrent``. Both are configurable (a shared service principal
  gets a smaller share).
* **Retries**: 429, 502, 503, 504, 408 and connection failures are retried with the server's
  ``Retry-After`` or an exponential backoff with jitter, ``max_attempts`` in all. A request
  that *writes* and whose answer was lost (connection dropped after sending, 408, 502, 504)
  is not repeated blindly: :class:`OutcomeUnknown` goes to the caller, which looks the record
  up first (see writer.py).
* **Errors**: BC's ``{"error": {"code", "message"}}`` becomes :class:`BcHttpError` with
  ``code``, the message without its ``CorrelationId`` suffix and the correlation id (the
  ``request-id`` header). No token or secret is ever part of a message, and e-mails and
  phone numbers BC quotes in its messages are masked.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from custsync.engine.errors import ConfigError, FatalError, RetriableError
from custsync.engine.masking import mask_text

from .settings import BcSettings

__all__ = [
    "BcClient",
    "BcHttpError",
    "ClientStats",
    "OutcomeUnknown",
    "RequestWindow",
    "parse_error",
    "split_correlation",
]

log = logging.getLogger("custsync.bc")

Clock = Callable[[], float]
Sleep = Callable[[float], None]

_RETRY_STATUSES = frozenset({408, 429, 502, 503, 504})
#: statuses after which a write may or may not have happened
_UNKNOWN_STATUSES = frozenset({408, 502, 504})
_TOKEN_MARGIN = 300.0  # renew this many seconds before expiry
_CORRELATION = re.compile(r"\s*CorrelationId:\s*([0-9a-fA-F-]{8,})\.?\s*$")


class BcHttpError(FatalError):
    """A non-retriable answer of BC: ``status``, ``code`` (BC's error.code), ``bc_message``
    and ``correlation_id``."""

    def __init__(
        self, message: str, *, status: int, code: str, bc_message: str, correlation_id: str
    ) -> None:
        super().__init__(message, status=status, code=code, correlation_id=correlation_id)
        self.status = status
        self.code = code
        self.bc_message = bc_message
        self.correlation_id = correlation_id

    @property
    def brief(self) -> str:
        """``code: message (correlation id ...)`` for a record's failure."""
        where = f" (correlation id {self.correlation_id})" if self.correlation_id else ""
        return f"{self.code}: {self.bc_message}{where}"


class OutcomeUnknown(RetriableError):
    """A write was sent and its answer was lost: it may or may not have been applied."""


@dataclass(slots=True)
class ClientStats:
    requests: int = 0
    token_requests: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    paced_seconds: float = 0.0


class RequestWindow:
    """At most ``limit`` request starts in any ``window`` seconds (a sliding window).

    A request counts from when it is sent here, but BC counts it from when it arrives: the
    window is held ``margin`` (2 %) longer so that a request does not leave our window while
    it is still in BC's."""

    def __init__(
        self, limit: int, window: float, clock: Clock, sleep: Sleep, margin: float = 0.02
    ) -> None:
        self.limit = limit
        self.window = window * (1 + margin)
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait until one more request fits; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and self._starts[0] <= now - self.window:
                    self._starts.popleft()
                if len(self._starts) < self.limit:
                    self._starts.append(now)
                    return waited
                delay = self._starts[0] + self.window - now
            delay = max(delay, 0.001)
            self._sleep(delay)
            waited += delay


def split_correlation(message: str) -> tuple[str, str]:
    found = _CORRELATION.search(message)
    if not found:
        return message.strip(), ""
    return message[: found.start()].strip(), found.group(1)


def parse_error(response: httpx.Response) -> tuple[str, str, str]:
    """BC's ``(code, message, correlation id)`` of an error answer (JSON or XML body)."""
    code, message = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        code = str(body["error"].get("code") or "")
        message = str(body["error"].get("message") or "")
    elif response.text.lstrip().startswith("<"):
        code = _xml_text(response.text, "code")
        message = _xml_text(response.text, "message")
    message, correlation = split_correlation(mask_text(message))
    return (
        code or f"HTTP{response.status_code}",
        message or response.reason_phrase,
        correlation or response.headers.get("request-id", ""),
    )


def _xml_text(text: str, tag: str) -> str:
    found = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
    return found.group(1).strip() if found else ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class BcClient:
    """One service principal's HTTP session with BC (thread-safe)."""

    def __init__(
        self,
        settings: BcSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        environ: Mapping[str, str] | None = None,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock or time.monotonic
        self._sleep = sleep or time.sleep
        self._environ = os.environ if environ is None else environ
        self._rng = random.Random(seed)
        self.window = RequestWindow(
            settings.requests_per_window, settings.window_seconds, self._clock, self._sleep
        )
        self._slots = threading.BoundedSemaphore(settings.max_concurrent)
        timeout = httpx.Timeout(
            settings.timeout_seconds, connect=min(10.0, settings.timeout_seconds)
        )
        limits = httpx.Limits(max_connections=settings.max_concurrent)
        self._http = httpx.Client(
            transport=transport, timeout=timeout, limits=limits, follow_redirects=False
        )
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def _count(self, name: str, amount: float = 1) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + amount)

    # -- token -------------------------------------------------------------------------------

    def _secret(self) -> str:
        name = self.settings.client_secret_env
        secret = self._environ.get(name, "")
        if not secret:
            raise ConfigError(
                f"Business Central: the environment variable {name} (client_secret_env) is "
                "not set; it must hold the client secret of the app registration"
            )
        return secret

    def token(self, *, renew: bool = False) -> str:
        with self._token_lock:
            if not renew and self._token and self._clock() < self._token_expires:
                return self._token
            self._token = self._fetch_token()
            return self._token

    def _fetch_token(self) -> str:
        s = self.settings
        data = {
            "grant_type": "client_credentials",
            "client_id": s.client_id,
            "client_secret": self._secret(),
            "scope": s.scope,
        }
        attempt = 0
        while True:
            attempt += 1
            self._count("token_requests")
            try:
                response = self._http.post(s.token_url, data=data)
            except httpx.TransportError as exc:
                if attempt >= s.max_attempts:
                    raise RetriableError(
                        f"Business Central: cannot reach the token endpoint {s.token_url} "
                        f"({type(exc).__name__})"
                    ) from exc
                self._backoff(attempt, None)
                continue
            if response.status_code in _RETRY_STATUSES and attempt < s.max_attempts:
                self._backoff(attempt, _retry_after(response))
                continue
            break
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, Mapping):
            error = str(body.get("error", "")) if isinstance(body, Mapping) else ""
            detail = str(body.get("error_description", "")) if isinstance(body, Mapping) else ""
            detail = detail.splitlines()[0] if detail else response.reason_phrase
            raise FatalError(
                f"Business Central: no access token from {s.token_url} (HTTP "
                f"{response.status_code} {error}: {detail}); check tenant {s.tenant!r}, "
                f"client_id {s.client_id!r} and the secret in ${s.client_secret_env}",
                status=response.status_code,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise FatalError(f"Business Central: the token endpoint {s.token_url} sent no token")
        try:
            lifetime = float(body.get("expires_in", 3599))
        except (TypeError, ValueError):
            lifetime = 3599.0
        self._token_expires = self._clock() + max(lifetime - _TOKEN_MARGIN, lifetime / 2)
        return token

    # -- requests ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """An absolute URL: ``path`` below the API root (``companies``), below the
        environment root (``ODataV4/...``, ``api/publisher/...``), or already absolute."""
        if path.startswith(("http://", "https://")):
            return path
        if path.startswith(("ODataV4/", "api/")):
            return f"{self.settings.base_url}/{path}"
        return f"{self.settings.api_root}/{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        write: bool | None = None,
    ) -> httpx.Response:
        """Send with pacing and retries; a 2xx answer, else BcHttpError / RetriableError /
        OutcomeUnknown. ``write`` (default: not GET) marks a request whose lost answer
        leaves its outcome unknown."""
        writes = method != "GET" if write is None else write
        url = self.url(path)
        extra = dict(headers or {})
        if method == "GET":
            extra.setdefault("Data-Access-Intent", "ReadOnly")
        content = None
        if json_body is not None:
            content = json.dumps(json_body)
            extra.setdefault("Content-Type", "application/json")
        extra.setdefault("Accept", "application/json")
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            try:
                response = self._send(method, url, params, content, extra)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                problem: RetriableError = RetriableError(
                    f"Business Central {self.settings.base_url} cannot be reached "
                    f"({type(exc).__name__})"
                )
            except httpx.TransportError as exc:
                message = (
                    f"Business Central {method} {_short(url)}: connection lost "
                    f"({type(exc).__name__})"
                )
                if writes:
                    raise OutcomeUnknown(message) from exc
                problem = RetriableError(message)
            else:
                status = response.status_code
                if status < 300:
                    return response
                if status == 401 and not renewed:
                    renewed = True
                    self.token(renew=True)
                    attempt -= 1
                    continue
                if status not in _RETRY_STATUSES:
                    raise self._error(method, url, response)
                if status == 429:
                    self._count("throttled")
                code, bc_message, correlation = parse_error(response)
                message = (
                    f"Business Central {method} {_short(url)}: HTTP {status} {code}: "
                    f"{bc_message}" + (f" (correlation id {correlation})" if correlation else "")
                )
                if writes and status in _UNKNOWN_STATUSES:
                    raise OutcomeUnknown(message)
                problem = RetriableError(message, retry_after=_retry_after(response))
            if attempt >= self.settings.max_attempts:
                raise RetriableError(
                    f"{problem.message}; gave up after {attempt} attempts",
                    retry_after=problem.retry_after,
                )
            self._count("retries")
            log.warning("%s; retry %d/%d", problem.message, attempt, self.settings.max_attempts - 1)
            self._backoff(attempt, problem.retry_after)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        content: str | None,
        headers: dict[str, str],
    ) -> httpx.Response:
        token = self.token()
        waited = self.window.acquire()
        if waited:
            self._count("paced_seconds", waited)
        with self._slots:
            self._count("requests")
            return self._http.request(
                method,
                url,
                params=params,
                content=content,
                headers={**headers, "Authorization": f"Bearer {token}"},
            )

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        s = self.settings
        if retry_after is not None:
            delay = min(retry_after, 120.0)
        else:
            ceiling = min(s.retry_max_delay, s.retry_base_delay * 2 ** (attempt - 1))
            delay = self._rng.uniform(ceiling / 2, ceiling)
        if delay > 0:
            self._sleep(delay)

    def _error(self, method: str, url: str, response: httpx.Response) -> BcHttpError:
        code, bc_message, correlation = parse_error(response)
        status = response.status_code
        hint = ""
        if status == 401:
            hint = (
                f"; check that the app {self.settings.client_id!r} is entered on BC's "
                "'Microsoft Entra Applications' page with permission sets, and that tenant "
                f"{self.settings.tenant!r} is right"
            )
        elif status == 403:
            hint = "; the app's permission sets in BC do not allow this"
        message = (
            f"Business Central {method} {_short(url)}: HTTP {status} {code}: {bc_message}"
            + (f" (correlation id {correlation})" if correlation else "")
            + hint
        )
        return BcHttpError(
            message, status=status, code=code, bc_message=bc_message, correlation_id=correlation
        )

    # -- collections -------------------------------------------------------------------------

    def iter_collection(
        self, path: str, params: Mapping[str, str] | None = None, *, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every entity of a collection, following ``@odata.nextLink`` (server-driven paging;
        ``Prefer: odata.maxpagesize`` asks for pages of ``page_size``, default the setting)."""
        size = page_size or self.settings.page_size
        headers = {"Prefer": f"odata.maxpagesize={size}"}
        next_url: str | None = path
        next_params = params
        while next_url:
            body = self.request("GET", next_url, params=next_params, headers=headers).json()
            if not isinstance(body, Mapping) or not isinstance(body.get("value"), list):
                raise FatalError(
                    f"Business Central GET {_short(self.url(next_url))}: not an OData collection"
                )
            for entity in body["value"]:
                if isinstance(entity, dict):
                    yield entity
            link = body.get("@odata.nextLink")
            next_url = str(link) if link else None
            next_params = None  # the next link carries the query


def _short(url: str) -> str:
    """A URL for messages: without its query (filters can hold e-mails)."""
    return url.split("?", 1)[0]
