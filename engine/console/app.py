"""The ASGI application of ``custsync serve`` and a way to serve it on a thread (tests)."""

from __future__ import annotations

import ipaddress
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import UsageError
from ..run.webhooks import MAX_BODY, WebhookReceiver

__all__ = ["SECURITY_HEADERS", "ServerThread", "check_bind_host", "create_app"]

#: sent with every answer
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def check_bind_host(host: str) -> None:
    """Only loopback addresses: the server has no login yet, and a public webhook URL needs
    TLS anyway, which a reverse proxy in front of 127.0.0.1 gives (docs/webhooks.md)."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(
            f"--host {host}: custsync serve binds loopback addresses only (127.0.0.1, ::1); "
            "put a reverse proxy with TLS in front of it for Shopify's webhooks "
            "(docs/webhooks.md)"
        )


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(receiver: WebhookReceiver | None) -> Starlette:
    """The app; ``receiver`` None answers webhooks 404 (no shop takes them)."""

    async def shopify_webhook(request: Request) -> Response:
        body = await _read_limited(request, MAX_BODY)
        if body is None:
            return PlainTextResponse(f"body over {MAX_BODY} bytes", status_code=413)
        if receiver is None:
            return PlainTextResponse("no shop takes webhooks", status_code=404)
        headers = {key.lower(): value for key, value in request.headers.items()}
        # the receiver does database work: off the event loop
        answer = await run_in_threadpool(receiver.receive, headers, body)
        return PlainTextResponse(answer.message, status_code=answer.status)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "webhook_shops": receiver.domains if receiver else []})

    return Starlette(
        routes=[
            Route("/webhooks/shopify", shopify_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        middleware=[Middleware(_SecurityHeaders)],
    )


class _SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP answer (kept where a route
    set its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


class ServerThread:
    """Serve an app with uvicorn on a background thread (an ephemeral port by default)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        check_bind_host(host)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="custsync-serve",
                                        daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("custsync serve did not start")
            time.sleep(0.02)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the server to end (a signal, :meth:`stop`); True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
