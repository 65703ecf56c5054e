"""The ASGI application of ``custsync serve`` and a way to serve it on a thread (tests).

Pages are rendered on the server (Jinja2, autoescaped) with one stylesheet shipped in the
package: no script, no CDN. Contact data is masked as in the CLI (decisions are shown as
``custsync plan`` explains them). See :mod:`.security` for logins, sessions and CSRF.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import CustsyncError, UsageError
from ..masking import mask_text, terminal_safe
from ..run.render import decision_text, mask_label
from ..run.webhooks import MAX_BODY, WebhookReceiver
from .security import COOKIE, ConsoleAuth, Session
from .service import ConsoleService, counts_of

__all__ = ["SECURITY_HEADERS", "ServerThread", "check_bind_host", "create_app"]

HERE = Path(__file__).resolve().parent
#: sent with every answer
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: paths open without a login (the webhook checks its own signature)
_OPEN = ("/login", "/static/", "/healthz", "/webhooks/shopify")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, *, login_required: bool = False) -> None:
    """A loopback address, or any address when the console requires a login."""
    if not is_loopback(host) and not login_required:
        raise UsageError(
            f"--host {host}: a console on a non-loopback address needs a login: set "
            "CUSTSYNC_CONSOLE_PASSWORD_HASH (custsync serve --hash-password) or "
            "CUSTSYNC_CONSOLE_TOKEN; for Shopify's webhooks put a reverse proxy with TLS in "
            "front of 127.0.0.1 instead (docs/webhooks.md)"
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


Handler = Callable[[Request, Session], Awaitable[Response]]


class _Console:
    """The pages. Each handler gets the request and its session (CSRF already checked on a
    POST); blocking work (database, connectors) runs in the thread pool."""

    def __init__(self, service: ConsoleService | None, auth: ConsoleAuth) -> None:
        self.service = service
        self.auth = auth
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.filters["masked"] = lambda text: mask_text(str(text or ""))
        env.filters["label"] = lambda text: mask_label(str(text or ""))
        env.filters["safe_text"] = lambda text: terminal_safe(str(text or ""))
        env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"
        env.filters["ago"] = _ago
        env.globals["query"] = lambda **kw: urlencode({k: v for k, v in kw.items() if v})

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.auth.load(request.cookies.get(COOKIE))
            fresh = session is None
            if session is None:
                session = self.auth.new_session()
            if self.auth.login_required and not session.user and not _is_open(request):
                response: Response = RedirectResponse("/login", status_code=303)
            elif request.method == "POST" and not await self._csrf_ok(request, session):
                response = self.render(
                    request, session, "error.html",
                    {"message": "This form has expired or did not come from this console: "
                                "reload the page and try again. Nothing was changed."},
                    status=403,
                )
            else:
                try:
                    response = await handler(request, session)
                except CustsyncError as exc:
                    response = self.render(request, session, "error.html",
                                           {"message": mask_text(exc.render())}, status=400)
            if fresh:
                self._set_cookie(response, session)
            return response

        return endpoint

    async def _csrf_ok(self, request: Request, session: Session) -> bool:
        form = await request.form()
        token = form.get("csrf")
        return self.auth.csrf_ok(session, token if isinstance(token, str) else None)

    def _set_cookie(self, response: Response, session: Session) -> None:
        response.set_cookie(COOKIE, self.auth.dump(session), httponly=True, samesite="strict",
                            path="/")

    def render(self, request: Request, session: Session, name: str, context: dict[str, Any],
               status: int = 200) -> Response:
        return self.templates.TemplateResponse(
            request, name,
            {"csrf": session.csrf, "login_required": self.auth.login_required,
             "shops": self.service.shops if self.service else [], **context},
            status_code=status,
        )

    def _service(self) -> ConsoleService:
        if self.service is None:
            raise UsageError("this server runs without a configuration: no console pages")
        return self.service

    # ---- pages -----------------------------------------------------------------------------

    async def overview(self, request: Request, session: Session) -> Response:
        service = self._service()
        rows = await run_in_threadpool(service.overview)
        parked = await run_in_threadpool(service.attention, "parked")
        runs = await run_in_threadpool(lambda: service.runs(limit=30))
        chart = counts_of(runs)
        return self.render(request, session, "overview.html",
                           {"rows": rows, "chart": chart, "chart_max": _chart_max(chart),
                            "parked": _parked_by_job(parked)})

    async def runs(self, request: Request, session: Session) -> Response:
        service = self._service()
        params = request.query_params
        found = await run_in_threadpool(
            lambda: service.runs(shop=params.get("shop"), direction=params.get("direction"),
                                 status=params.get("status"))
        )
        return self.render(request, session, "runs.html",
                           {"runs": found, "filters": dict(params)})

    async def run(self, request: Request, session: Session) -> Response:
        run_id = _int(request.path_params["run_id"])
        found = await run_in_threadpool(self._service().run, run_id)
        if found is None:
            return self.render(request, session, "error.html", {"message": f"no run {run_id}"},
                               status=404)
        record, outcomes = found
        status = request.query_params.get("status", "")
        shown = [o for o in outcomes if not status or o.status == status]
        return self.render(request, session, "run.html",
                           {"run": record, "outcomes": shown, "status": status,
                            "total": len(outcomes)})

    async def plans(self, request: Request, session: Session) -> Response:
        return self.render(request, session, "plans.html", {})

    async def make_plan(self, request: Request, session: Session) -> Response:
        form = await request.form()
        shop, direction = str(form.get("shop", "")), str(form.get("direction", "both"))
        plan_id = await run_in_threadpool(self._service().make_plan, shop, direction)
        return RedirectResponse(f"/plans/{plan_id}", status_code=303)

    async def plan(self, request: Request, session: Session) -> Response:
        params = request.query_params
        view = await run_in_threadpool(
            lambda: self._service().plan(
                request.path_params["plan_id"], action=params.get("action", ""),
                reason=params.get("reason", ""), rule=params.get("rule", ""),
                direction=params.get("direction", ""),
            )
        )
        blocks = [(d, decision_text(d)) for d in view.decisions[:500]]
        return self.render(request, session, "plan.html",
                           {"view": view, "blocks": blocks, "filters": dict(params),
                            "message": params.get("message", "")})

    async def approve(self, request: Request, session: Session) -> Response:
        plan_id = request.path_params["plan_id"]
        result = await run_in_threadpool(self._service().approve, plan_id)
        if result.status == "refused":
            message = mask_text(result.error or "the plan is stale")
            return RedirectResponse(
                f"/plans/{plan_id}?{urlencode({'message': f'Not applied: {message}'})}",
                status_code=303,
            )
        run_ids = tuple(getattr(result, "run_ids", ()) or ())
        target = f"/runs/{run_ids[0]}" if run_ids else "/runs"
        return RedirectResponse(target, status_code=303)

    async def attention(self, request: Request, session: Session) -> Response:
        status = request.query_params.get("status", "")
        records = await run_in_threadpool(self._service().attention, status)
        return self.render(request, session, "attention.html",
                           {"records": records, "status": status,
                            "message": request.query_params.get("message", "")})

    async def attention_action(self, request: Request, session: Session) -> Response:
        form = await request.form()
        values = {k: str(form.get(k, "")) for k in ("action", "shop", "direction", "record")}
        done = await run_in_threadpool(
            self._service().attention_action,
            values["action"], values["shop"], values["direction"], values["record"],
        )
        return RedirectResponse(f"/attention?{urlencode({'message': done})}", status_code=303)

    async def rules(self, request: Request, session: Session) -> Response:
        rows, disabled = await run_in_threadpool(self._service().rule_rows)
        return self.render(request, session, "rules.html", {"rows": rows, "disabled": disabled})

    async def login(self, request: Request, session: Session) -> Response:
        if request.method == "GET":
            return self.render(request, session, "login.html", {"failed": False})
        form = await request.form()
        secret = form.get("password")
        if not isinstance(secret, str) or not self.auth.check_login(secret):
            return self.render(request, session, "login.html", {"failed": True}, status=401)
        response = RedirectResponse("/", status_code=303)
        self._set_cookie(response, self.auth.new_session(user=True))
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        response = RedirectResponse("/login" if self.auth.login_required else "/",
                                    status_code=303)
        self._set_cookie(response, self.auth.new_session())
        return response


def _parked_by_job(records: list[Any]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for record in records:
        counts[(record.shop, record.direction)] = counts.get((record.shop, record.direction), 0) + 1
    return counts


def _is_open(request: Request) -> bool:
    return any(request.url.path == p or (p.endswith("/") and request.url.path.startswith(p))
               for p in _OPEN)


def _int(text: str) -> int:
    if not text.isdigit():
        raise UsageError(f"not a run id: {text[:20]!r}")
    return int(text)


def _chart_max(chart: list[dict[str, Any]]) -> int:
    return max((row["created"] + row["updated"] + row["skipped"] + row["failed"]
                for row in chart), default=0) or 1


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def create_app(
    receiver: WebhookReceiver | None,
    service: ConsoleService | None = None,
    *,
    auth: ConsoleAuth | None = None,
) -> Starlette:
    """The app: the console's pages over ``service`` (None: webhooks only) and Shopify's
    webhooks through ``receiver`` (None: answered 404, no shop takes them)."""
    console = _Console(service, auth or ConsoleAuth())

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
        return JSONResponse({"status": "ok",
                             "webhook_shops": receiver.domains if receiver else []})

    page = console.page
    routes: list[Any] = [
        Route("/webhooks/shopify", shopify_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/login", page(console.login), methods=["GET", "POST"]),
        Route("/logout", page(console.logout), methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    if service is not None:
        routes += [
            Route("/", page(console.overview), methods=["GET"]),
            Route("/runs", page(console.runs), methods=["GET"]),
            Route("/runs/{run_id}", page(console.run), methods=["GET"]),
            Route("/plans", page(console.plans), methods=["GET"]),
            Route("/plans", page(console.make_plan), methods=["POST"]),
            Route("/plans/{plan_id}", page(console.plan), methods=["GET"]),
            Route("/plans/{plan_id}/approve", page(console.approve), methods=["POST"]),
            Route("/rules", page(console.rules), methods=["GET"]),
            Route("/attention", page(console.attention), methods=["GET"]),
            Route("/attention", page(console.attention_action), methods=["POST"]),
        ]
    return Starlette(routes=routes, middleware=[Middleware(_SecurityHeaders)])


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

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *,
                 login_required: bool = False) -> None:
        import uvicorn

        check_bind_host(host, login_required=login_required)
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
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

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
