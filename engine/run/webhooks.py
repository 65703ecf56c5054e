"""Shopify webhooks: verified, de-duplicated, and turned into run requests or privacy actions.

A delivery is answered at once and never synced inline (Shopify gives a receiver 5 seconds):

* ``customers/create``, ``customers/update``, ``customers/delete`` and ``orders/create``
  record a *run request* for the shop's import in the state store; the scheduler runs it
  after a short quiet period (a burst of webhooks is one run). Polling on the cron schedule
  stays the safety net: a lost webhook only delays a change to the next slot.
* ``customers/redact`` removes what custsync holds about the customer (its link, address
  links, and the run log's outcomes and intents naming it); ``customers/data_request``
  writes what custsync holds about it to a JSON file readable only by its owner.

Checks, in order, each answered with its own status and changing nothing: the headers a
delivery must have (400), a body over :data:`MAX_BODY` (413), a shop domain no configured
shop has, or a shop without ``webhook_secret_env`` (404), the HMAC (401, compared in constant
time), the JSON (400). A delivery whose ``X-Shopify-Webhook-Id`` was handled before is
answered 200 and ignored (Shopify retries deliveries it thinks failed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..files import write_private
from ..masking import terminal_safe

log = logging.getLogger("custsync.webhooks")

__all__ = [
    "MAX_BODY",
    "RUN_TOPICS",
    "WebhookAnswer",
    "WebhookReceiver",
    "WebhookShop",
    "shops_from_config",
    "signature",
]

#: the largest body accepted (Shopify's customer and order payloads are far smaller)
MAX_BODY = 1024 * 1024
#: topics that ask for an import run of the shop
RUN_TOPICS = frozenset({"customers/create", "customers/update", "customers/delete",
                        "orders/create"})
REDACT = "customers/redact"
DATA_REQUEST = "customers/data_request"
_REQUIRED = ("x-shopify-topic", "x-shopify-shop-domain", "x-shopify-webhook-id",
             "x-shopify-hmac-sha256")


def signature(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256`` of ``body``: base64 of HMAC-SHA256 keyed with the secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True, slots=True)
class WebhookShop:
    """A shop as the receiver knows it: its name, webhook domain and client secret."""

    name: str
    domain: str
    secret: str
    #: whether the shop has an import job on the schedule (run requests need one)
    has_import_job: bool = True


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status: int
    message: str


def shops_from_config(config: Any, environ: Mapping[str, str] | None = None) -> list[WebhookShop]:
    """The config's shops that take webhooks (``webhook_secret_env`` set and the variable
    present); a shop naming a variable that is not set is skipped with a warning."""
    env = os.environ if environ is None else environ
    found = []
    for shop in config.shops:
        name = getattr(shop, "webhook_secret_env", "")
        if not name:
            continue
        secret = env.get(name, "")
        if not secret:
            log.warning("shop %s: webhook_secret_env names %s, which is not set; its webhooks "
                        "are refused", shop.name, name)
            continue
        found.append(WebhookShop(shop.name, shop.domain, secret,
                                 has_import_job=bool(shop.schedule.import_cron)))
    return found


class WebhookReceiver:
    """Checks one delivery and records what it asks for (see the module docstring).

    ``state`` is the state store (``webhook_seen``, ``note_webhook``, ``request_run``,
    ``forget_customer``, ``customer_data``); ``data_request_dir`` is where data requests are
    written. The receiver is cheap: several may serve one state database.
    """

    def __init__(
        self,
        shops: Sequence[WebhookShop],
        state: Any,
        *,
        data_request_dir: Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._shops = {shop.domain.lower(): shop for shop in shops}
        self._state = state
        self._dir = data_request_dir
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def domains(self) -> list[str]:
        return sorted(self._shops)

    def receive(self, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
        """``headers`` with lower-case names (ASGI gives them so)."""
        missing = [name for name in _REQUIRED if not headers.get(name)]
        if missing:
            return WebhookAnswer(400, f"missing header {', '.join(missing)}")
        if len(body) > MAX_BODY:
            return WebhookAnswer(413, f"body over {MAX_BODY} bytes")
        domain = headers["x-shopify-shop-domain"].strip().lower()
        shop = self._shops.get(domain)
        if shop is None:
            return WebhookAnswer(404, f"no shop takes webhooks for {terminal_safe(domain[:100])}")
        expected = signature(body, shop.secret)
        if not hmac.compare_digest(expected.encode(), headers["x-shopify-hmac-sha256"].encode()):
            return WebhookAnswer(401, "signature does not match")
        topic = headers["x-shopify-topic"].strip().lower()
        webhook_id = headers["x-shopify-webhook-id"].strip()[:100]
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return WebhookAnswer(400, "body is not JSON")
        if not isinstance(payload, dict):
            return WebhookAnswer(400, "body is not a JSON object")
        if self._state.webhook_seen(webhook_id):
            return WebhookAnswer(200, "already handled")
        answer = self._handle(shop, topic, payload)
        if answer.status == 200:
            # noted after it was handled: a crash in between makes Shopify's retry handle it
            # again, which is harmless (one more run request, the same redaction)
            self._state.note_webhook(webhook_id, shop.name, topic)
        log.info("webhook shop=%s topic=%s status=%s %s", shop.name, terminal_safe(topic[:60]),
                 answer.status, answer.message)
        return answer

    def _handle(self, shop: WebhookShop, topic: str, payload: Mapping[str, Any]) -> WebhookAnswer:
        if topic in RUN_TOPICS:
            if not shop.has_import_job:
                return WebhookAnswer(200, f"ignored: shop {shop.name} has no import schedule")
            self._state.request_run(shop.name, "import", reason=topic)
            return WebhookAnswer(200, "import run requested")
        if topic in (REDACT, DATA_REQUEST):
            gid = _customer_gid(payload)
            if gid is None:
                return WebhookAnswer(400, "payload names no customer id")
            if topic == REDACT:
                removed = self._state.forget_customer(shop.name, gid)
                total = sum(removed.values())
                return WebhookAnswer(200, f"redacted: {total} state rows removed")
            return self._data_request(shop, gid, payload)
        return WebhookAnswer(200, f"ignored: topic {terminal_safe(topic[:60])} is not used")

    def _data_request(
        self, shop: WebhookShop, gid: str, payload: Mapping[str, Any]
    ) -> WebhookAnswer:
        if self._dir is None:
            return WebhookAnswer(503, "no folder for data requests is configured")
        data = self._state.customer_data(shop.name, gid)
        request = payload.get("data_request")
        request_id = request.get("id") if isinstance(request, dict) else None
        data["data_request_id"] = request_id
        data["received_at"] = self._clock().isoformat()
        stem = f"{shop.name}-{gid.rsplit('/', 1)[-1]}-{request_id or 'request'}"
        path = self._dir / f"{_safe_name(stem)}.json"
        write_private(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return WebhookAnswer(200, f"data request written to {path.name}")


def _customer_gid(payload: Mapping[str, Any]) -> str | None:
    customer = payload.get("customer")
    raw = customer.get("id") if isinstance(customer, dict) else None
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
        return f"gid://shopify/Customer/{raw}"
    if isinstance(raw, str) and raw.startswith("gid://shopify/Customer/"):
        return raw
    return None


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:150]
