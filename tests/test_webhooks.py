"""Shopify webhooks: `custsync serve` checks, de-duplicates and records them; the scheduler
runs the requested import; privacy topics remove or export what custsync holds.

Everything over loopback: the Shopify double delivers signed webhooks to the real ASGI app
served by uvicorn, with a real SQLite state store and ERP.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.cli.schedule import make_job
from custsync.engine.config import require_config
from custsync.engine.console.app import SECURITY_HEADERS, ServerThread, create_app
from custsync.engine.errors import UsageError
from custsync.engine.model import Link, ShopifyCustomer
from custsync.engine.run.schedule import Scheduler, jobs_from_config
from custsync.engine.run.state import open_store
from custsync.engine.run.webhooks import MAX_BODY, WebhookReceiver, WebhookShop, signature

from sync_world import IMPORT_SETTINGS, make_erp, write_config

SECRET = "test-client-secret"
DOMAIN = "custsync-sandbox.myshopify.com"
SECRET_ENV = "CUSTSYNC_TEST_WEBHOOK_SECRET"


@pytest.fixture
def state(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


@pytest.fixture
def server(state: Any, tmp_path: Path) -> Any:
    receiver = WebhookReceiver(
        [WebhookShop("main", DOMAIN, SECRET)], state, data_request_dir=tmp_path / "requests"
    )
    with ServerThread(create_app(receiver)) as running:
        yield running


def _post(server: Any, body: bytes, *, topic: str = "customers/update", webhook_id: str = "w1",
          domain: str = DOMAIN, hmac: str | None = None, **extra: str) -> httpx.Response:
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": domain,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Hmac-Sha256": signature(body, SECRET) if hmac is None else hmac,
        "Content-Type": "application/json",
        **extra,
    }
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(f"{server.url}/webhooks/shopify", content=body, headers=headers)


CUSTOMER = json.dumps({"id": 1001, "email": "jane@example.com"}).encode()


def test_a_signed_delivery_requests_an_import_run(server: Any, state: Any) -> None:
    answer = _post(server, CUSTOMER)
    assert answer.status_code == 200, answer.text
    requests = state.run_requests()
    assert [(r.shop, r.direction, r.count, r.reason) for r in requests] == [
        ("main", "import", 1, "customers/update")
    ]
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers[name] == value


def test_a_replayed_delivery_is_recognised_and_changes_nothing(server: Any, state: Any) -> None:
    assert _post(server, CUSTOMER, webhook_id="same").status_code == 200
    again = _post(server, CUSTOMER, webhook_id="same")
    assert again.status_code == 200 and again.text == "already handled"
    assert [r.count for r in state.run_requests()] == [1]
    # another delivery (another id) of a burst adds to the same request
    assert _post(server, CUSTOMER, webhook_id="other").status_code == 200
    assert [r.count for r in state.run_requests()] == [2]


@pytest.mark.parametrize(
    ("kwargs", "body", "status"),
    [
        ({"hmac": "bm90IHRoZSBzaWduYXR1cmU="}, CUSTOMER, 401),  # forged
        ({"hmac": signature(CUSTOMER, "another-secret")}, CUSTOMER, 401),  # other app's secret
        ({"domain": "someone-else.myshopify.com"}, CUSTOMER, 404),  # unknown shop
        ({"topic": ""}, CUSTOMER, 400),  # a missing header
        ({}, b"{not json", 400),  # signed garbage
        ({}, b"[1, 2]", 400),  # JSON, but no object
        ({}, b"x" * (MAX_BODY + 1), 413),  # huge body
    ],
)
def test_bad_deliveries_are_refused_and_change_nothing(
    server: Any, state: Any, kwargs: dict[str, str], body: bytes, status: int
) -> None:
    answer = _post(server, body, **kwargs)
    assert answer.status_code == status, answer.text
    assert state.run_requests() == []
    assert not state.webhook_seen("w1")


def test_a_body_signed_before_it_was_changed_is_refused(server: Any, state: Any) -> None:
    tampered = CUSTOMER.replace(b"1001", b"1002")
    assert _post(server, tampered, hmac=signature(CUSTOMER, SECRET)).status_code == 401
    assert state.run_requests() == []


def test_redact_removes_what_custsync_holds_about_the_customer(server: Any, state: Any) -> None:
    gid = "gid://shopify/Customer/1001"
    state.save_link(Link(shop="main", shopify_id=gid, erp_no="C00001"))
    state.save_link(Link(shop="main", shopify_id="gid://shopify/Customer/1002", erp_no="C00002"))
    run = state.start_run("main", "import", datetime.now(UTC))
    state.record_outcome(run, gid, "update", "ok")
    state.record_outcome(run, "C00001", "update", "ok")
    state.record_outcome(run, "gid://shopify/Customer/1002", "update", "ok")
    body = json.dumps({"shop_domain": DOMAIN, "customer": {"id": 1001, "email": "j@x.io"}}).encode()

    answer = _post(server, body, topic="customers/redact", webhook_id="r1")

    assert answer.status_code == 200, answer.text
    assert state.link_for_shopify("main", gid) is None
    assert state.link_for_shopify("main", "gid://shopify/Customer/1002") is not None
    assert [o.record for o in state.outcomes(run)] == ["gid://shopify/Customer/1002"]
    assert state.run_requests() == []


def test_data_request_writes_what_custsync_holds_readable_by_its_owner_only(
    server: Any, state: Any, tmp_path: Path
) -> None:
    gid = "gid://shopify/Customer/1001"
    state.save_link(Link(shop="main", shopify_id=gid, erp_no="C00001"))
    body = json.dumps(
        {"customer": {"id": 1001}, "data_request": {"id": 77}, "orders_requested": []}
    ).encode()

    assert _post(server, body, topic="customers/data_request", webhook_id="d1").status_code == 200

    written = list((tmp_path / "requests").glob("*.json"))
    assert len(written) == 1
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o600
    data = json.loads(written[0].read_text())
    assert data["erp_no"] == "C00001" and data["shopify_id"] == gid
    assert data["data_request_id"] == 77


def test_serve_binds_loopback_only() -> None:
    with pytest.raises(UsageError, match="needs a login"):
        ServerThread(create_app(None), host="0.0.0.0")


def test_the_double_signs_deliveries_as_shopify_does(shopify_double_factory: Any) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Recorder:
        def webhook_seen(self, _: str) -> bool:
            return False

        def note_webhook(self, *_: Any) -> bool:
            return True

        def request_run(self, shop: str, direction: str, reason: str = "") -> None:
            received.append(({"shop": shop, "direction": direction}, reason.encode()))

    double = shopify_double_factory(webhook_secret=SECRET)
    receiver = WebhookReceiver([WebhookShop("main", DOMAIN, SECRET)], Recorder())
    with ServerThread(create_app(receiver)) as running:
        created, errors = double.webhooks.create(
            "CUSTOMERS_CREATE", f"{running.url}/webhooks/shopify", datetime.now(UTC)
        )
        assert created and not errors
        double.store.create_customer({"email": "new@example.com", "firstName": "New"})
        assert double.webhooks.wait_idle()
    delivery = double.webhooks.deliveries[-1]
    assert delivery.delivered and delivery.status == 200
    assert received == [({"shop": "main", "direction": "import"}, b"customers/create")]


def test_webhook_to_import_end_to_end(
    tmp_path: Path, shopify_double_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """register through the Admin API, a customer created in Shopify, the signed webhook,
    the run request, the scheduler's run: the customer is in the ERP, and a lost webhook
    is made good by the next poll."""
    double: ShopifyDouble = shopify_double_factory(
        webhook_secret=SECRET, bucket_size=1_000_000, restore_rate=1_000_000.0
    )
    monkeypatch.setenv(SECRET_ENV, SECRET)
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, [])
    config_path = write_config(
        tmp_path, shop_url=double.url, erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}", settings=IMPORT_SETTINGS,
        token=double.token, shopify_options={"webhook_secret_env": SECRET_ENV, "shop_domain": DOMAIN},
    )
    config = require_config(config_path)
    state = open_store(config.state_url)
    try:
        from custsync.engine.run.webhooks import shops_from_config

        receiver = WebhookReceiver(shops_from_config(config), state)
        with ServerThread(create_app(receiver)) as running:
            url = f"{running.url}/webhooks/shopify"
            assert main(["webhooks", "register", "-c", str(config_path), "--url", url]) == 0
            # registering again subscribes nothing twice
            assert main(["webhooks", "register", "-c", str(config_path), "--url", url]) == 0
            assert len(double.webhooks.subscriptions()) == 4

            seed_from_models(double, [ShopifyCustomer(id="", first_name="Wes", last_name="Hook",
                                                      email="wes@example.com")])
            # seeding is not a change Shopify reports; a customer created through the API is
            double.store.create_customer({
                "email": "new@example.com", "firstName": "New", "lastName": "Customer",
                "addresses": [{"address1": "1 Main St", "city": "San Francisco", "zip": "94103",
                               "countryCode": "US", "provinceCode": "CA"}],
            })
            assert double.webhooks.wait_idle()
        assert [r.reason for r in state.run_requests()] == ["customers/create"]

        scheduler = Scheduler(jobs_from_config(config), make_job(config, state), state,
                              request_quiet=0.0)
        scheduler.plan()  # cron slots in the future: only the request is due
        reports = scheduler.run_pending()

        assert [(r.direction, r.status) for r in reports] == [("import", "succeeded")]
        assert state.run_requests() == []
        reader = open_reader(erp_url)
        try:
            emails = {c.email for c in reader.iter_customers()}
        finally:
            reader.close()
        assert "new@example.com" in emails

        # a lost delivery: no request, and the next poll (the cron slot's run) imports it
        double.webhooks.drop_next(1)
        double.store.create_customer({
            "email": "lost@example.com", "firstName": "Lost", "lastName": "Hook",
            "addresses": [{"address1": "2 Main St", "city": "San Francisco", "zip": "94103",
                           "countryCode": "US", "provinceCode": "CA"}],
        })
        assert double.webhooks.wait_idle()
        assert double.webhooks.deliveries[-1].dropped
        assert state.run_requests() == []
        assert main(["sync", "-c", str(config_path), "--direction", "import",
                     "--no-progress"]) == exitcodes.OK
        reader = open_reader(erp_url)
        try:
            assert "lost@example.com" in {c.email for c in reader.iter_customers()}
        finally:
            reader.close()
    finally:
        state.close()


def test_a_request_made_during_a_run_stays_for_the_next(state: Any) -> None:
    state.request_run("main", "import", "customers/update")
    first = state.run_requests()[0]
    assert not state.clear_run_request("main", "import", first.last_at.replace(year=2000))
    assert state.clear_run_request("main", "import", first.last_at)
    assert state.run_requests() == []


def test_webhooks_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["webhooks", "register", "--url", "ftp://x", "-c", str(tmp_path / "no.yaml")]) \
        == exitcodes.USAGE
    assert main(["serve", "--host", "0.0.0.0", "-c", str(tmp_path / "no.yaml")]) == exitcodes.USAGE
    assert "loopback" in capsys.readouterr().err
    assert os.environ.get(SECRET_ENV) is None
