"""The double's HTTP server: Shopify's Admin GraphQL endpoint on 127.0.0.1.

Endpoints (all served by one :class:`ShopifyDouble`):

- ``POST /admin/api/{version}/graphql.json`` with ``X-Shopify-Access-Token``: GraphQL
  (401 with Shopify's body on a wrong token); every answer carries ``extensions.cost``.
- ``POST /staged-uploads/`` (multipart form, like Shopify's staged POST targets; answers 201
  with an XML ``PostResponse``) and ``PUT /staged-uploads/<key>``.
- ``GET /bulk/<n>.jsonl``: bulk operation result files (no token, like a signed URL).
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import graphql
from graphql import FieldNode, OperationDefinitionNode, OperationType

from . import api
from .bucket import LeakyBucket
from .bulk import BulkManager
from .cost import CostCalculator
from .faults import Fault, FaultPlan
from .seed import seed_store
from .store import Store
from .webhooks import WebhookHub

log = logging.getLogger(__name__)

UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
THROTTLE_DOCS = "https://shopify.dev/api/usage/rate-limits"
_GRAPHQL_PATH = re.compile(r"^/admin/api/(?P<version>[^/]+)/graphql\.json$")
_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
#: a client that timed out or dropped the connection (fault tests do it on purpose)
_CLIENT_GONE = (ConnectionError, TimeoutError)


@dataclass(frozen=True, slots=True)
class RequestLog:
    """One request the double answered (or dropped)."""

    operation_name: str | None
    root_fields: tuple[str, ...]
    is_mutation: bool
    requested_cost: int | None
    actual_cost: int | None
    status: int  # HTTP status; 0 = connection dropped
    throttled: bool
    path: str = ""
    executed: bool = False  #: the operation ran (a mutation's effect happened)
    fault: str | None = None  #: kind of the injected fault applied, if any


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] | None = None
    drop: bool = False


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                  headers=headers)


def _operation(document: graphql.DocumentNode, name: str | None
               ) -> OperationDefinitionNode | str:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        for operation in operations:
            if operation.name and operation.name.value == name:
                return operation
        return f'No operation named "{name}"'
    if len(operations) == 1:
        return operations[0]
    if not operations:
        return "No operations given"
    return "An operation name is required"


def _root_fields(operation: OperationDefinitionNode) -> tuple[str, ...]:
    return tuple(s.name.value for s in operation.selection_set.selections
                 if isinstance(s, FieldNode))


def _shopify_error(err: graphql.GraphQLError, operation: OperationDefinitionNode | None
                   ) -> dict[str, Any]:
    """graphql-core's validation messages in Shopify's words where the connector may care."""
    formatted = dict(err.formatted)
    message = err.message
    match = re.match(r"Cannot query field '(\w+)' on type '(\w+)'", message)
    if match:
        formatted["message"] = f"Field '{match[1]}' doesn't exist on type '{match[2]}'"
        formatted["extensions"] = {"code": "undefinedField", "typeName": match[2],
                                   "fieldName": match[1]}
        return formatted
    match = re.match(r"Argument '\w+\.(\w+)\((\w+):\)' of type '[^']+' is required", message)
    if match:
        formatted["message"] = f"Field '{match[1]}' is missing required arguments: {match[2]}"
        formatted["extensions"] = {"code": "missingRequiredArguments",
                                   "arguments": match[2]}
        return formatted
    match = re.match(r"Field '(\w+)' of type '([^']+)' must have a selection of subfields",
                     message)
    if match:
        formatted["message"] = (f"Field must have selections ({match[1]} returns "
                                f"{match[2].rstrip('!')} but has no selections. Did you mean "
                                f"'{match[1]} {{ ... }}'?)")
        formatted["extensions"] = {"code": "selectionMismatch", "nodeName": f"field '{match[1]}'",
                                   "typeName": match[2].rstrip("!")}
        return formatted
    if re.match(r"Expected value of non-null type '[^']+' not to be None", message) or \
            re.match(r"Argument '[^']+' has invalid value", message):
        formatted["extensions"] = {"code": "argumentLiteralsIncompatible"}
        return formatted
    match = re.match(r"Variable '\$(\w+)'", message)
    if match and operation is not None:
        type_text = next((graphql.print_ast(v.type) for v in operation.variable_definitions or ()
                          if v.variable.name.value == match[1]), "?")
        formatted["message"] = (f"Variable ${match[1]} of type {type_text} was provided "
                                "invalid value")
        formatted["extensions"] = {"code": "INVALID_VARIABLE",
                                   "problems": [{"path": [], "explanation": message}]}
        formatted.pop("path", None)
        return formatted
    if "extensions" not in formatted and err.path is None:
        formatted["extensions"] = {"code": "GRAPHQL_VALIDATION_FAILED"}
    return formatted


class ShopifyDouble:
    """A local Shopify Admin GraphQL API (customer subset) for tests and the sandbox."""

    def __init__(
        self,
        token: str = "shpat_test",
        bucket_size: float = 2000,
        restore_rate: float = 100.0,
        time_scale: float = 1.0,
        seed_customers: Iterable[Any] | None = None,
        max_cost_per_query: int = 1000,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        seed_orders: Iterable[Mapping[str, Any]] | None = None,
        shop: Mapping[str, Any] | None = None,
        clock: Callable[[], datetime] | None = None,
        bulk_seconds: float = 0.3,
        webhook_secret: str = "sandbox-webhook-secret",
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        self.max_cost_per_query = max_cost_per_query
        self.store = Store(clock=clock, shop=shop)
        self.bucket = LeakyBucket(bucket_size, restore_rate, time_scale)
        self.bulk = BulkManager(self.store, lambda: self.url, bulk_seconds=bulk_seconds)
        self.faults: FaultPlan[Fault] = FaultPlan()
        #: webhook subscriptions and signed deliveries (``webhook_secret``: the app's client
        #: secret the deliveries are signed with)
        self.webhooks = WebhookHub(self.store.shop["myshopifyDomain"], secret=webhook_secret)
        self.store.listeners.append(self.webhooks.on_change)
        self._requests: list[RequestLog] = []
        self._log_lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if seed_customers is not None or seed_orders is not None:
            seed_store(self.store, {"customers": list(seed_customers or []),
                                    "orders": list(seed_orders or [])}, "seed")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ShopifyDouble:
        if self._server is not None:
            return self
        api.schema()  # build before the first request
        server = _Server((self.host, self.port), _Handler)
        server.double = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="shopify-double",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.bulk.cancel_timers()
        self.webhooks.close()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ShopifyDouble:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def graphql_url(self, version: str = "2026-07") -> str:
        return f"{self.url}/admin/api/{version}/graphql.json"

    # ------------------------------------------------------------------ test API

    def inject(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def requests(self) -> list[RequestLog]:
        with self._log_lock:
            return list(self._requests)

    def mutation_count(self) -> int:
        return sum(1 for r in self.requests if r.is_mutation and r.executed)

    def reset_log(self) -> None:
        with self._log_lock:
            self._requests.clear()

    def _log(self, entry: RequestLog) -> None:
        with self._log_lock:
            self._requests.append(entry)

    # ------------------------------------------------------------------ GraphQL

    def execute(self, query: str, variables: Mapping[str, Any] | None = None,
                operation_name: str | None = None) -> dict[str, Any]:
        """Run a GraphQL request in-process (no HTTP, no bucket): the response body."""
        reply, _ = self._graphql({"query": query, "variables": variables,
                                  "operationName": operation_name}, charge=False)
        result: dict[str, Any] = json.loads(reply.body)
        return result

    def _graphql(self, payload: Any, charge: bool = True) -> tuple[_Reply, RequestLog]:
        def done(reply: _Reply, **fields: Any) -> tuple[_Reply, RequestLog]:
            entry = RequestLog(
                operation_name=fields.get("operation_name"),
                root_fields=fields.get("root_fields", ()),
                is_mutation=fields.get("is_mutation", False),
                requested_cost=fields.get("requested"),
                actual_cost=fields.get("actual"),
                status=reply.status,
                throttled=fields.get("throttled", False),
                executed=fields.get("executed", False),
            )
            return reply, entry

        if not isinstance(payload, Mapping) or not isinstance(payload.get("query"), str):
            return done(_json(400, {"errors": {"query": "Required parameter missing or "
                                               "invalid"}}))
        query = payload["query"]
        variables = payload.get("variables") or {}
        name = payload.get("operationName") or None
        if not isinstance(variables, Mapping):
            return done(_json(400, {"errors": {"variables": "must be an object"}}))
        try:
            document = api.parse(query)
        except graphql.GraphQLError as exc:
            parse_error = {"errors": [{"message": exc.message, "locations": [
                {"line": loc.line, "column": loc.column} for loc in exc.locations or ()],
                "extensions": {"code": "PARSE_ERROR"}}]}
            return done(_json(200, parse_error))
        operation = _operation(document, name)
        if isinstance(operation, str):
            return done(_json(200, {"errors": [{"message": operation}]}))
        op_name = operation.name.value if operation.name else None
        roots = _root_fields(operation)
        is_mutation = operation.operation == OperationType.MUTATION
        info = {"operation_name": op_name, "root_fields": roots, "is_mutation": is_mutation}
        problems = api.validate(query)
        if problems:
            return done(_json(200, {"errors": [_shopify_error(p, operation) for p in problems]}),
                        **info)
        fragments = {d.name.value: d for d in document.definitions
                     if isinstance(d, graphql.FragmentDefinitionNode)}
        calculator = CostCalculator(api.schema(), operation, fragments, variables)
        requested = calculator.requested()
        if requested > self.max_cost_per_query:
            message = (f"Query cost is {requested}, which exceeds the single query max cost "
                       f"limit ({self.max_cost_per_query}).")
            body: dict[str, Any] = {"errors": [{"message": message, "extensions": {
                "code": "MAX_COST_EXCEEDED", "cost": requested,
                "maxCost": self.max_cost_per_query}}],
                "extensions": self._cost(requested, None)}
            return done(_json(200, body), requested=requested, **info)
        if charge and not self.bucket.take(requested):
            return done(self._throttled(requested), requested=requested, throttled=True, **info)
        ctx = api.Context(store=self.store, bulk=self.bulk, webhooks=self.webhooks)
        with self.store.lock:
            result = api.execute(document, variables, op_name, ctx)
        if result.errors and result.data is None and all(e.path is None for e in result.errors):
            # variable coercion problems: a static error, nothing ran, nothing charged
            if charge:
                self.bucket.refund(requested)
            body = {"errors": [_shopify_error(e, operation) for e in result.errors]}
            return done(_json(200, body), **info)
        actual = calculator.actual(result.data)
        if charge:
            self.bucket.refund(requested - actual)
        response: dict[str, Any] = {}
        if result.errors:
            response["errors"] = [_shopify_error(e, operation) for e in result.errors]
        response["data"] = result.data
        extensions: dict[str, Any] = self._cost(requested, actual)
        if ctx.search_warnings:
            extensions["search"] = [{"path": [roots[0]] if roots else [], "query": "",
                                     "parsed": {}, "warnings": [
                                         {"field": field, "message": "Invalid search field "
                                          "for this query.", "code": "invalid_field"}
                                         for field in sorted(set(ctx.search_warnings))]}]
        response["extensions"] = extensions
        return done(_json(200, response), requested=requested, actual=actual, executed=True,
                    **info)

    def _cost(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                         "throttleStatus": self.bucket.status().as_dict()}}

    def _throttled(self, requested: int) -> _Reply:
        return _json(200, {"errors": [{"message": "Throttled", "extensions": {
            "code": "THROTTLED", "documentation": THROTTLE_DOCS}}],
            "extensions": self._cost(requested, None)})

    # ------------------------------------------------------------------ HTTP entry points

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes
               ) -> _Reply:
        """Answer one HTTP request (faults applied here); ``drop`` means close silently."""
        path_only = path.split("?", 1)[0]
        match = _GRAPHQL_PATH.match(path_only)
        if match and method == "POST":
            return self._handle_graphql(match["version"], path_only, headers, body)
        if method == "GET" and path_only.startswith("/bulk/"):
            return self._with_fault("download", path_only, lambda: self._download(path_only))
        if path_only.startswith("/staged-uploads/") and method in ("POST", "PUT"):
            return self._with_fault("upload", path_only,
                                    lambda: self._upload(method, path_only, headers, body))
        return _json(404, {"errors": "Not Found"})

    def _with_fault(self, target: str, path: str, run: Callable[[], _Reply]) -> _Reply:
        fault = self.faults.next(target, ())

        def log_reply(reply: _Reply) -> None:
            self._log(RequestLog(None, (), False, None, None, 0 if reply.drop else reply.status,
                                 False, path=path, executed=not reply.drop,
                                 fault=fault.kind if fault else None))

        return self._apply(fault, run, log_reply)

    def _apply(self, fault: Fault | None, run: Callable[[], _Reply],
               log_reply: Callable[[_Reply], None]) -> _Reply:
        """The reply to a request with ``fault`` applied. ``log_reply`` is called as soon as
        the reply is decided: before an ``after_effect`` delay, so :attr:`requests` shows a
        write once it happened, not only once its late answer went out."""
        reply = self._decide(fault, run)
        log_reply(reply)
        if fault is not None and fault.kind == "delay" and fault.after_effect:
            time.sleep(fault.seconds)
        return reply

    def _decide(self, fault: Fault | None, run: Callable[[], _Reply]) -> _Reply:
        if fault is None:
            return run()
        if fault.after_effect:
            reply = run()
            if fault.kind == "delay":
                return reply  # delayed by _apply, after logging
        elif fault.kind == "delay":
            time.sleep(fault.seconds)
            return run()
        if fault.kind == "drop":
            return _Reply(0, b"", drop=True)
        if fault.kind == "throttle":
            return self._throttled(0)
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.status == 429:
            message = ("Exceeded 2 calls per second for api client. Reduce request rates to "
                       "resume uninterrupted service.")
        else:
            message = HTTPStatus(fault.status).phrase if fault.status in HTTPStatus.__members__.values() \
                else "Error"
        return _json(fault.status, {"errors": message}, headers)

    def _handle_graphql(self, version: str, path: str, headers: Mapping[str, str], body: bytes
                        ) -> _Reply:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None
        roots: tuple[str, ...] = ()
        if isinstance(payload, Mapping) and isinstance(payload.get("query"), str):
            try:
                document = api.parse(payload["query"])
                roots = tuple(name for d in document.definitions
                              if isinstance(d, OperationDefinitionNode)
                              for name in _root_fields(d))
            except graphql.GraphQLError:
                roots = ()
        fault = self.faults.next("graphql", roots)
        entry: list[RequestLog] = []

        def run() -> _Reply:
            if not _VERSION.match(version):
                return _json(404, {"errors": "Not Found"})
            if headers.get("x-shopify-access-token") != self.token:
                return _json(401, {"errors": UNAUTHORIZED})
            reply, logged = self._graphql(payload)
            entry.append(logged)
            reply.headers = {**(reply.headers or {}), "X-Shopify-API-Version": version}
            return reply

        def log_reply(reply: _Reply) -> None:
            base = entry[0] if entry else RequestLog(None, roots, False, None, None, 0, False)
            self._log(RequestLog(
                operation_name=base.operation_name,
                root_fields=base.root_fields or roots,
                is_mutation=base.is_mutation,
                requested_cost=base.requested_cost,
                actual_cost=base.actual_cost,
                status=0 if reply.drop else reply.status,
                throttled=base.throttled or (fault is not None and fault.kind == "throttle"),
                path=path,
                executed=base.executed,
                fault=fault.kind if fault else None,
            ))

        return self._apply(fault, run, log_reply)

    def _download(self, path: str) -> _Reply:
        match = re.fullmatch(r"/bulk/(\d+)\.jsonl", path)
        data = self.bulk.results.get(int(match[1])) if match else None
        if data is None:
            return _Reply(404, b"<Error><Code>NoSuchKey</Code></Error>",
                          content_type="application/xml")
        return _Reply(200, data, content_type="application/jsonl")

    def _upload(self, method: str, path: str, headers: Mapping[str, str], body: bytes
                ) -> _Reply:
        if method == "PUT":
            key = path[len("/staged-uploads/"):]
            self.bulk.receive_upload(key, body)
            return _Reply(200, b"", content_type="text/plain")
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return _Reply(400, b"<Error><Code>InvalidArgument</Code></Error>",
                          content_type="application/xml")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
        fields: dict[str, bytes] = {}
        if message.is_multipart():
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    fields[name] = payload
        key = fields.get("key", b"").decode("utf-8")
        if not key or "file" not in fields:
            return _Reply(400, b"<Error><Code>InvalidArgument</Code><Message>key and file are "
                          b"required</Message></Error>", content_type="application/xml")
        self.bulk.receive_upload(key, fields["file"])
        xml = (f"<?xml version='1.0' encoding='UTF-8'?><PostResponse><Location>{self.url}/"
               f"staged-uploads/{key}</Location><Bucket>custsync-double</Bucket><Key>{key}</Key>"
               f"<ETag>\"{uuid.uuid5(uuid.NAMESPACE_URL, key).hex}\"</ETag></PostResponse>")
        return _Reply(201, xml.encode("utf-8"), content_type="application/xml")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is routine (a debug line); anything else is logged with
        its traceback instead of ``socketserver``'s print to stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, _CLIENT_GONE):
            log.debug("shopify double: client %s went away: %s", client_address, exc)
            return
        log.error("shopify double: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ShopifyDouble/1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms ACK stalls)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self, method: str) -> None:
        double: ShopifyDouble = self.server.double  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = double.handle(method, self.path, headers, body)
        except Exception:  # a bug in the double must not look like a hung server
            log.exception("shopify double failed on %s %s", method, self.path)
            reply = _json(500, {"errors": "Internal Server Error"})
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("X-Request-Id", str(uuid.uuid4()))
        for name, value in (reply.headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")
