"""The BC double over HTTP: a Starlette app served by uvicorn on 127.0.0.1.

Routes (``{tenant}`` and ``{environment}`` as configured):

- ``POST /{tenant}/oauth2/v2.0/token``: Entra ID's client-credentials token endpoint.
- ``/v2.0/{tenant}/{environment}/api/v2.0/...`` and the common endpoint
  ``/v2.0/{environment}/api/v2.0/...`` (tenant from the token): companies, entity sets,
  ``$batch``.
- ``/v2.0/{tenant}/{environment}/ODataV4/...``: the published pages.
- ``/v2.0/{tenant}/{environment}/api/{publisher}/{group}/{version}/...``: custom API pages
  (``custom_apis``; by default ``contoso/custsync/v1.0/customerCards``, a Customer Card
  stand-in keyed by number).
- Each service has its own JSON ``$batch`` (``api/v2.0/$batch``, ``ODataV4/$batch``,
  ``api/{publisher}/{group}/{version}/$batch``): URLs relative to that service.

Every answer carries ``request-id``; errors carry it as their CorrelationId. Requests are
counted per user (the token's client id) against BC's limits; injected faults apply first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import errors
from .api import MAX_BATCH, MAX_PAGE_SIZE, Api, Call, Reply
from .auth import TokenError, TokenIssuer
from .errors import BcError
from .faults import Fault, FaultPlan
from .limits import Limits, UserLimiter
from .store import Clock, Store

DEFAULT_TENANT = "custsync-sandbox.onmicrosoft.com"
DEFAULT_ENVIRONMENT = "Sandbox"
DEFAULT_CLIENT_ID = "00000000-0000-0000-0000-00000000c5c5"
DEFAULT_SECRET = "bc-sandbox-secret"
_METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT"]


class DroppedConnection(Exception):
    """Raised after the answer started: uvicorn then closes the connection mid-answer."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging an injected drop as an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


_QUIET_DROPS = _QuietDrops()


@dataclass(frozen=True, slots=True)
class RequestLog:
    """One request the double answered (or dropped)."""

    method: str
    path: str
    target: str  #: entity set or route (``customers``, ``$batch``, ``token``, ...)
    status: int  #: HTTP status; 0 = connection dropped
    user: str  #: the token's client id ("" before authentication)
    request_id: str
    operations: int = 1  #: operations inside a ``$batch``
    fault: str | None = None
    started: float = 0.0
    seconds: float = 0.0
    #: the query options as sent (``$filter=...``), for tests of what a client asked
    params: Mapping[str, str] = field(default_factory=dict)


class BcDouble:
    """A local Business Central environment answering API v2.0 (see module doc).

    >>> double = BcDouble().start()
    >>> double.api_url  # doctest: +SKIP
    'http://127.0.0.1:PORT/v2.0/custsync-sandbox.onmicrosoft.com/Sandbox/api/v2.0'
    >>> double.stop()
    """

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        environment: str = DEFAULT_ENVIRONMENT,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_SECRET,
        clients: Mapping[str, str] | None = None,
        port: int = 0,
        limits: Limits | None = None,
        max_page_size: int = MAX_PAGE_SIZE,
        published: Mapping[str, str] | None = None,
        custom_apis: Mapping[str, str] | None = None,
        token_lifetime: int = 3599,
        latency: float = 0.0,
        now: Any = None,
    ) -> None:
        self.tenant = tenant
        self.environment = environment
        self.client_id = client_id
        self.client_secret = client_secret
        self.store = Store(Clock(now))
        self.api = Api(self.store, published=published, custom_apis=custom_apis,
                       max_page_size=max_page_size)
        self.tokens = TokenIssuer(tenant, {client_id: client_secret, **(clients or {})},
                                  lifetime=token_lifetime)
        self.limits = limits or Limits()
        self.latency = latency
        self.faults: FaultPlan[Fault] = FaultPlan()
        self._port = port
        self._log: list[RequestLog] = []
        self._log_lock = threading.Lock()
        self._limiter: UserLimiter | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.app = Starlette(routes=[
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            Route("/v2.0/{tenant}/{environment}/api/v2.0/{rest:path}", self._api_route,
                  methods=_METHODS),
            Route("/v2.0/{environment}/api/v2.0/{rest:path}", self._api_route,
                  methods=_METHODS),
            Route("/v2.0/{tenant}/{environment}/ODataV4/{rest:path}", self._page_route,
                  methods=_METHODS),
            Route("/v2.0/{environment}/ODataV4/{rest:path}", self._page_route,
                  methods=_METHODS),
            Route("/v2.0/{tenant}/{environment}/api/{publisher}/{group}/{version}/{rest:path}",
                  self._custom_api_route, methods=_METHODS),
            Route("/v2.0/{environment}/api/{publisher}/{group}/{version}/{rest:path}",
                  self._custom_api_route, methods=_METHODS),
        ])

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> BcDouble:
        # IPPROTO_TCP given, so asyncio sets TCP_NODELAY on each accepted connection (it only
        # does for sockets whose proto says TCP); without it every answer waits ~40 ms for the
        # client's delayed ACK between uvicorn's header and body writes
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._socket = sock
        config = uvicorn.Config(self.app, log_config=None, log_level="warning",
                                access_log=False, lifespan="off", timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)  # added once (same object)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="bc-double", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError("the BC double did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> BcDouble:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what a client needs --------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("the BC double is not started")
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """The base URL, standing for ``https://api.businesscentral.dynamics.com``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        """Standing for ``https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token``."""
        return f"{self.url}/{self.tenant}/oauth2/v2.0/token"

    @property
    def environment_url(self) -> str:
        return f"{self.url}/v2.0/{self.tenant}/{self.environment}"

    @property
    def api_url(self) -> str:
        return f"{self.environment_url}/api/v2.0"

    @property
    def odata_url(self) -> str:
        return f"{self.environment_url}/ODataV4"

    def company_url(self, company_id: str) -> str:
        return f"{self.api_url}/companies({company_id})"

    # -- for tests ------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    @property
    def requests(self) -> list[RequestLog]:
        with self._log_lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def counts(self) -> dict[int, int]:
        """HTTP status -> how many answers had it (0 = dropped)."""
        out: dict[int, int] = {}
        for entry in self.requests:
            out[entry.status] = out.get(entry.status, 0) + 1
        return out

    def peak_concurrency(self, client_id: str | None = None) -> int:
        limiter = self._limiter
        return limiter.peak_concurrency(client_id or self.client_id) if limiter else 0

    def window_used(self, client_id: str | None = None) -> int:
        """Requests of the user inside the current (scaled) 5-minute window."""
        limiter = self._limiter
        return limiter.used(client_id or self.client_id) if limiter else 0

    def _record(self, entry: RequestLog) -> None:
        with self._log_lock:
            self._log.append(entry)

    # -- HTTP ---------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        fault = self.faults.next("POST", "token")
        reply: Reply
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            fault = None
        if fault is not None:
            return await self._faulted(fault, request, "token", "", request_id, started, None)
        form = dict(_parse_query((await request.body()).decode("utf-8", "replace")))
        try:
            payload = self.tokens.issue(request.path_params["tenant"], form)
            reply = Reply(200, payload, {"Content-Type": "application/json; charset=utf-8"})
        except TokenError as exc:
            reply = Reply(exc.status, exc.body(),
                          {"Content-Type": "application/json; charset=utf-8"})
        reply.headers.update({"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
        return self._respond(request, reply, "token", "", request_id, started)

    async def _api_route(self, request: Request) -> Response:
        return await self._odata(request, pages=False)

    async def _page_route(self, request: Request) -> Response:
        return await self._odata(request, pages=True)

    async def _custom_api_route(self, request: Request) -> Response:
        p = request.path_params
        return await self._odata(request, pages=False,
                                 custom_api=f"{p['publisher']}/{p['group']}/{p['version']}")

    async def _odata(self, request: Request, *, pages: bool, custom_api: str = "") -> Response:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        rest = request.path_params["rest"]
        target = _target(rest)
        user = ""
        try:
            claims = self.tokens.check(request.headers.get("authorization"))
            tenant = request.path_params.get("tenant")
            if claims is None or (tenant is not None
                                  and tenant.lower() != claims.tenant.lower()):
                raise errors.invalid_credentials()
            user = claims.client_id
            if request.path_params["environment"].lower() != self.environment.lower():
                raise errors.no_resource(str(request.url))
            if self._limiter is None:
                self._limiter = UserLimiter(self.limits)
            async with self._limiter.admit(user):
                fault = self.faults.next(request.method, target)
                if fault is not None and fault.kind == "delay" and not fault.after_effect:
                    await asyncio.sleep(fault.seconds)
                    fault = None
                if self.latency:
                    await asyncio.sleep(self.latency)
                if fault is not None and not fault.after_effect:
                    return await self._faulted(fault, request, target, user, request_id,
                                               started, None)
                body = await request.body()
                call = self._call(request, rest, body, pages, custom_api)
                batch = rest == "$batch"  # API v2.0, ODataV4 (pages), custom APIs alike
                reply = self._batch(call) if batch else self.api.call(call)
                if fault is not None and fault.kind == "delay":
                    # after_effect: the request ran, its answer comes late (a client killed
                    # meanwhile never learns of it)
                    await asyncio.sleep(fault.seconds)
                    fault = None
                if fault is not None:
                    return await self._faulted(fault, request, target, user, request_id,
                                               started, reply)
                reply.headers.setdefault("Cache-Control", "no-cache, no-store")
                return self._respond(request, reply, target, user, request_id, started,
                                     operations=_operations(call, reply))
        except BcError as exc:
            reply = _error_reply(exc, request_id)
            reply.headers.setdefault("Cache-Control", "no-cache, no-store")
            return self._respond(request, reply, target, user, request_id, started)

    def _call(self, request: Request, rest: str, body: bytes, pages: bool,
              custom_api: str = "") -> Call:
        path = request.url.path
        root_path = path[: len(path) - len(rest)] if rest else path.rstrip("/") + "/"
        root = f"{request.url.scheme}://{request.url.netloc}{root_path}"
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get("data-access-intent", "").lower() == "readonly" and \
                request.method != "GET":
            raise errors.bad_request(f"The 'Data-Access-Intent: ReadOnly' header is not "
                                     f"allowed on a {request.method} request.")
        return Call(request.method, rest, dict(request.query_params), headers, body, root,
                    str(request.url), pages, custom_api)

    def _respond(self, request: Request, reply: Reply, target: str, user: str,
                 request_id: str, started: float, *, operations: int = 1,
                 fault: str | None = None) -> Response:
        headers = dict(reply.headers)
        headers["request-id"] = request_id
        self._record(RequestLog(request.method, request.url.path, target, reply.status, user,
                                request_id, operations, fault, started,
                                time.monotonic() - started, dict(request.query_params)))
        content_type = headers.pop("Content-Type", None)
        response = Response(reply.body(), reply.status, headers=headers)
        if content_type:
            response.headers["content-type"] = content_type
        elif "content-type" in response.headers:
            del response.headers["content-type"]
        return response

    async def _faulted(self, fault: Fault, request: Request, target: str, user: str,
                       request_id: str, started: float, ran: Reply | None) -> Response:
        if fault.kind == "drop":
            self._record(RequestLog(request.method, request.url.path, target, 0, user,
                                    request_id, 1, "drop", started,
                                    time.monotonic() - started))
            return _DroppingResponse()
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after) if float(
                fault.retry_after).is_integer() else fault.retry_after)
        error = BcError(fault.status, _FAULT_CODES.get(fault.status, "Internal_ServerError"),
                        _FAULT_TEXTS.get(fault.status, "An unexpected error occurred."),
                        headers=headers)
        return self._respond(request, _error_reply(error, request_id), target, user,
                             request_id, started, fault=f"status:{fault.status}")

    # -- $batch ---------------------------------------------------------------------------

    def _batch(self, call: Call) -> Reply:
        if call.method != "POST":
            raise errors.method_not_allowed(call.method, "$batch", "Entity")
        try:
            import json

            envelope = json.loads(call.body or b"null")
        except ValueError:
            raise errors.bad_request("Invalid Request Body") from None
        requests = envelope.get("requests") if isinstance(envelope, dict) else None
        if not isinstance(requests, list):
            raise errors.bad_request("The batch request body must be a JSON object with a "
                                     "'requests' array.")
        if len(requests) > MAX_BATCH:
            raise BcError(500, "Unknown",
                          "The current batch message contains too many parts. Only batch "
                          f"messages with a maximum number of '{MAX_BATCH}' query operations "
                          "and change sets are allowed.")
        snapshot = call.headers.get("isolation", "").lower() == "snapshot"
        with self.store.locked():
            saved = {cid: self.store.snapshot(c) for cid, c in self.store.companies.items()}
            answers: list[dict[str, Any]] = []
            groups: dict[str, str] = {}
            failed = False
            for index, item in enumerate(requests):
                answer = self._batch_operation(call, item, groups)
                answers.append(answer)
                if answer["status"] >= 400 and snapshot:
                    failed = True
                    if index == 0:
                        break
            if failed:
                for cid, company in self.store.companies.items():
                    if cid in saved:
                        self.store.restore(company, saved[cid])
        return Reply(200, {"responses": answers},
                     {"OData-Version": "4.0",
                      "Content-Type": "application/json; odata.metadata=minimal; "
                                      "odata.streaming=true"})

    def _batch_operation(self, call: Call, item: Any, groups: dict[str, str]
                         ) -> dict[str, Any]:
        import json

        op_id = item.get("id") if isinstance(item, dict) else None
        group_name = item.get("atomicityGroup") if isinstance(item, dict) else None
        group = groups.setdefault(str(group_name), str(uuid.uuid4())) if group_name \
            else str(uuid.uuid4())
        try:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise errors.bad_request("A batch operation needs a 'method' and a 'url'.")
            method = str(item.get("method", "GET")).upper()
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            url = item["url"]
            marker = "/ODataV4/" if call.pages else (
                f"/api/{call.custom_api}/" if call.custom_api else "/api/v2.0/")
            if marker in url:
                url = url.split(marker, 1)[1]
            path, _, query = url.lstrip("/").partition("?")
            path = unquote(path)  # as the HTTP layer decodes a request's path
            params = dict(_parse_query(query))
            if not call.pages and not call.custom_api and not path.startswith("companies") \
                    and "company" in headers:
                from .api import company_for_batch

                company_id = company_for_batch(self.store, headers["company"])
                if company_id is None:
                    raise errors.not_found_segment("companies")
                params.setdefault("company", company_id)
            body = item.get("body")
            raw = json.dumps(body).encode() if body is not None else b""
            if path == "$batch":
                raise errors.bad_request("A batch cannot contain another batch.")
            reply = self.api.call(Call(method, path, params, headers, raw, call.root,
                                       call.root + url.lstrip("/"), call.pages,
                                       call.custom_api))
        except BcError as exc:
            exc.correlation = False  # BC leaves the CorrelationId out inside batches
            reply = _error_reply(exc, None)
            reply.headers = {"Content-Type": "application/json; charset=utf-8"}
        if reply.status < 400 and "Content-Type" in reply.headers:
            # recorded: answers inside a batch are "application/json; odata.metadata=minimal"
            reply.headers["Content-Type"] = "application/json; odata.metadata=minimal"
            reply.headers["OData-Version"] = "4.0"
        answer: dict[str, Any] = {"id": op_id, "atomicityGroup": group,
                                  "status": reply.status,
                                  "headers": {k.lower(): v for k, v in reply.headers.items()}}
        if reply.payload is not None:
            answer["body"] = reply.payload
        return answer


_FAULT_CODES = {429: "Application_TooManyRequests", 500: "Internal_ServerError",
                502: "BadGateway", 503: "Application_ServiceUnavailable",
                504: "GatewayTimeout", 408: "RequestTimeout"}
_FAULT_TEXTS = {503: "The service is temporarily unavailable.",
                504: "The operation has timed out.",
                429: "Too many requests reached.",
                408: "The operation has timed out."}


class _DroppingResponse(Response):
    """Starts an answer, then fails, so uvicorn closes the connection mid-answer."""

    def __init__(self) -> None:
        super().__init__(b"", 200, headers={"content-length": "100"})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"100")]})
        raise DroppedConnection("fault injected: connection dropped")


def _error_reply(exc: BcError, request_id: str | None) -> Reply:
    headers = {"Content-Type": "application/json"}
    headers.update(exc.headers)
    return Reply(exc.status, exc.body(request_id), headers)


def _target(rest: str) -> str:
    """The entity set (or route) a request path concerns, for logs and fault matching."""
    segment = rest.rsplit("/", 1)[-1] if rest else ""
    return segment.split("(", 1)[0] or "root"


def _operations(call: Call, reply: Reply) -> int:
    if call.path == "$batch" and isinstance(reply.payload, dict):
        return len(reply.payload.get("responses", []))
    return 1


def _parse_query(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[BcDouble]:
    """A started double, stopped on exit."""
    double = BcDouble(**kwargs).start()
    try:
        yield double
    finally:
        double.stop()
