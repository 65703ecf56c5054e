"""Webhook subscriptions and signed deliveries, as Shopify makes them (loopback only).

``webhookSubscriptionCreate`` / ``webhookSubscriptions`` / ``webhookSubscriptionDelete`` keep
subscriptions here; every change the store reports (``customers/create``, ``customers/update``,
``customers/delete``, ``orders/create``) is delivered to the subscriptions of its topic as an
HTTPS-style POST: the REST-shaped JSON body, ``X-Shopify-Topic``, ``X-Shopify-Shop-Domain``,
``X-Shopify-Webhook-Id`` (one per delivery, the same on a retry), ``X-Shopify-Event-Id``,
``X-Shopify-Triggered-At``, ``X-Shopify-API-Version`` and ``X-Shopify-Hmac-Sha256`` (base64
HMAC-SHA256 of the raw body keyed with the app's client secret). Deliveries run on one
background thread in order; a delivery that fails (no answer, or not 2xx) is retried a few
times with a short backoff, like Shopify's retries, then given up. The privacy topics
(``customers/redact``, ``customers/data_request``) are not API subscriptions at Shopify (an
app declares them in its configuration): :meth:`WebhookHub.send_compliance` sends them to the
``compliance_uri`` set here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

SUBSCRIPTION_GID = "gid://shopify/WebhookSubscription/"
#: the topics the store reports, by GraphQL enum value
TOPICS: Mapping[str, str] = {
    "CUSTOMERS_CREATE": "customers/create",
    "CUSTOMERS_UPDATE": "customers/update",
    "CUSTOMERS_DELETE": "customers/delete",
    "ORDERS_CREATE": "orders/create",
}
_LOOPBACK = ("127.", "localhost", "[::1]", "::1")


def sign(body: bytes, secret: str) -> str:
    """Shopify's ``X-Shopify-Hmac-Sha256``: base64 of HMAC-SHA256(secret, raw body)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _legacy(gid: str | None) -> int | None:
    if not gid:
        return None
    tail = str(gid).rsplit("/", 1)[-1].split("?", 1)[0]
    return int(tail) if tail.isdigit() else None


def _rest_address(address: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not address:
        return None
    return {
        "id": _legacy(address.get("id")),
        "first_name": address.get("firstName"),
        "last_name": address.get("lastName"),
        "company": address.get("company"),
        "address1": address.get("address1"),
        "address2": address.get("address2"),
        "city": address.get("city"),
        "province": address.get("province"),
        "province_code": address.get("provinceCode"),
        "country_code": address.get("countryCode"),
        "zip": address.get("zip"),
        "phone": address.get("phone"),
    }


def customer_payload(customer: Mapping[str, Any], *, deleted: bool = False) -> dict[str, Any]:
    """The REST-shaped customer of a customers/* webhook (delete sends little more than ids)."""
    gid = str(customer.get("id"))
    if deleted:
        return {"id": _legacy(gid), "admin_graphql_api_id": gid, "addresses": [],
                "phone": None, "tax_exemptions": []}
    addresses = [_rest_address(a) for a in customer.get("addresses") or ()]
    default = next((a for a in customer.get("addresses") or ()
                    if a.get("id") == customer.get("defaultAddressId")), None)
    return {
        "id": _legacy(gid),
        "admin_graphql_api_id": gid,
        "email": customer.get("email"),
        "first_name": customer.get("firstName"),
        "last_name": customer.get("lastName"),
        "phone": customer.get("phone"),
        "state": str(customer.get("state") or "DISABLED").lower(),
        "note": customer.get("note"),
        "tags": ", ".join(customer.get("tags") or ()),
        "created_at": customer.get("createdAt"),
        "updated_at": customer.get("updatedAt"),
        "addresses": addresses,
        "default_address": _rest_address(default),
    }


def order_payload(order: Mapping[str, Any]) -> dict[str, Any]:
    customer_gid = order.get("customerId")
    return {
        "id": _legacy(order.get("id")),
        "admin_graphql_api_id": order.get("id"),
        "name": order.get("name"),
        "email": order.get("email"),
        "phone": order.get("phone"),
        "created_at": order.get("createdAt"),
        "updated_at": order.get("updatedAt"),
        "customer": ({"id": _legacy(customer_gid), "admin_graphql_api_id": customer_gid}
                     if customer_gid else None),
        "billing_address": _rest_address(order.get("billingAddress")),
        "shipping_address": _rest_address(order.get("shippingAddress")),
    }


@dataclass
class Delivery:
    """One webhook delivery and what became of it (for tests and the sandbox)."""

    webhook_id: str
    topic: str
    uri: str
    body: bytes
    attempts: int = 0
    status: int | None = None  #: the last answer's HTTP status, None when none came
    delivered: bool = False
    dropped: bool = False  #: lost on purpose (``drop_next``), as a lost delivery would be
    headers: dict[str, str] = field(default_factory=dict)


class WebhookHub:
    """Subscriptions of one double and the thread that delivers their webhooks."""

    def __init__(
        self,
        shop_domain: str,
        *,
        secret: str = "sandbox-webhook-secret",
        api_version: str = "2026-07",
        retries: int = 3,
        retry_seconds: float = 0.2,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.shop_domain = shop_domain
        self.secret = secret
        self.api_version = api_version
        self.retries = retries
        self.retry_seconds = retry_seconds
        self.timeout_seconds = timeout_seconds
        self.compliance_uri: str | None = None
        self.deliveries: list[Delivery] = []
        self._subscriptions: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._drop = 0
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._busy = 0

    # ------------------------------------------------------------------ subscriptions

    def subscriptions(self, topics: list[str] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(s) for s in self._subscriptions.values()]
        return [s for s in found if not topics or s["topic"] in topics]

    def create(
        self, topic: str, uri: str | None, now: datetime
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """(subscription, userErrors) as webhookSubscriptionCreate answers."""
        problem = _uri_problem(uri)
        if problem:
            return None, [{"field": ["webhookSubscription", "uri"], "message": problem}]
        if topic not in TOPICS:
            return None, [{"field": ["topic"], "message": f"Topic {topic} is not supported by "
                                                         "this sandbox"}]
        with self._lock:
            if any(s["topic"] == topic and s["uri"] == uri for s in self._subscriptions.values()):
                return None, [{"field": ["webhookSubscription", "callbackUrl"],
                               "message": "Address for this topic has already been taken"}]
            number = next(self._ids)
            stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            subscription: dict[str, Any] = {
                "id": f"{SUBSCRIPTION_GID}{number}", "topic": topic, "uri": uri,
                "format": "JSON", "createdAt": stamp, "updatedAt": stamp,
                "includeFields": [], "filter": None, "name": None,
            }
            self._subscriptions[number] = subscription
        return dict(subscription), []

    def delete(self, gid: str) -> tuple[str | None, list[dict[str, Any]]]:
        number = _legacy(gid)
        with self._lock:
            if number is None or number not in self._subscriptions:
                return None, [{"field": ["id"], "message": "Webhook subscription does not exist"}]
            del self._subscriptions[number]
        return gid, []

    # ------------------------------------------------------------------ deliveries

    def on_change(self, topic: str, record: Mapping[str, Any]) -> None:
        """Store listener: queue a delivery of ``topic`` to each subscription of it."""
        enum = next((key for key, value in TOPICS.items() if value == topic), None)
        if enum is None:
            return
        targets = [s["uri"] for s in self.subscriptions([enum])]
        if not targets:
            return
        if topic.startswith("orders/"):
            payload = order_payload(record)
        else:
            payload = customer_payload(record, deleted=topic == "customers/delete")
        body = json.dumps(payload, ensure_ascii=False).encode()
        for uri in targets:
            self._enqueue(topic, uri, body)

    def send_compliance(self, topic: str, customer: Mapping[str, Any]) -> Delivery:
        """Send ``customers/redact`` or ``customers/data_request`` for a customer (by its
        gid, e-mail and phone) to :attr:`compliance_uri`, as Shopify does on a shop's or a
        customer's request."""
        if topic not in ("customers/redact", "customers/data_request"):
            raise ValueError(f"not a compliance topic: {topic}")
        if not self.compliance_uri:
            raise ValueError("no compliance_uri set on the double")
        payload: dict[str, Any] = {
            "shop_id": 1,
            "shop_domain": self.shop_domain,
            "customer": {"id": _legacy(customer.get("id")), "email": customer.get("email"),
                         "phone": customer.get("phone")},
            "orders_requested" if topic.endswith("data_request") else "orders_to_redact": [],
        }
        if topic.endswith("data_request"):
            payload["data_request"] = {"id": next(self._ids)}
        return self._enqueue(topic, self.compliance_uri, json.dumps(payload).encode())

    def drop_next(self, count: int = 1) -> None:
        """Lose the next ``count`` deliveries (never sent), as Shopify may."""
        with self._lock:
            self._drop += count

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery is done (delivered, given up or dropped)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def redeliver(self, delivery: Delivery) -> None:
        """Send a delivery again with the same webhook id (Shopify's retry of one it thinks
        failed): the receiver must recognise it."""
        self._submit(Delivery(delivery.webhook_id, delivery.topic, delivery.uri, delivery.body))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def _enqueue(self, topic: str, uri: str, body: bytes) -> Delivery:
        delivery = Delivery(str(uuid.uuid4()), topic, uri, body)
        with self._lock:
            if self._drop > 0:
                self._drop -= 1
                delivery.dropped = True
        if delivery.dropped:
            with self._lock:
                self.deliveries.append(delivery)
            return delivery
        self._submit(delivery)
        return delivery

    def _submit(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="webhook-deliveries",
                                                daemon=True)
                self._thread.start()
        with self._idle:
            self._busy += 1
        self._queue.put(delivery)

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_seconds, trust_env=False) as client:
            while True:
                delivery = self._queue.get()
                if delivery is None:
                    return
                try:
                    self._deliver(client, delivery)
                finally:
                    with self._idle:
                        self._busy -= 1
                        self._idle.notify_all()

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": delivery.topic,
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-Webhook-Id": delivery.webhook_id,
            "X-Shopify-Event-Id": delivery.webhook_id,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            "X-Shopify-Hmac-Sha256": sign(delivery.body, self.secret),
        }
        delivery.headers = headers
        for attempt in range(self.retries + 1):
            delivery.attempts = attempt + 1
            try:
                answer = client.post(delivery.uri, content=delivery.body, headers=headers)
            except httpx.HTTPError:
                delivery.status = None
            else:
                delivery.status = answer.status_code
                if 200 <= answer.status_code < 300:
                    delivery.delivered = True
                    return
            time.sleep(self.retry_seconds * (2**attempt))


def _uri_problem(uri: str | None) -> str | None:
    if not uri:
        return "Address can't be blank"
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Address is invalid"
    host = parts.hostname
    if not (host == "localhost" or host.startswith(_LOOPBACK) or host == "::1"):
        return "Address is invalid: the sandbox delivers to loopback addresses only"
    return None
