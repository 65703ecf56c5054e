"""The web console over real HTTP (uvicorn on 127.0.0.1): every page, plan review and
approval with the stale-plan check, logins, CSRF and the security headers; a real SQLite ERP
and state and the Shopify double.

The browser tests in test_console_browser.py drive the same app in headless Chromium.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine.cli import main
from custsync.engine.config import require_config
from custsync.engine.console.app import SECURITY_HEADERS, ServerThread, create_app
from custsync.engine.console.security import ConsoleAuth, hash_password, verify_password
from custsync.engine.console.service import ConsoleService
from custsync.engine.errors import UsageError
from custsync.engine.model import ErpCustomer, ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import open_store

from sync_world import IMPORT_SETTINGS, make_erp, write_config

EMAIL = "jane.console@example.com"


def _address(**fields: Any) -> ShopifyAddress:
    base = {"default": True, "first_name": "Jane", "last_name": "Doe", "address1": "1 Main St",
            "zip": "94103", "city": "San Francisco", "country_code": "US",
            "province_code": "CA"}
    base.update(fields)
    return ShopifyAddress(**base)


@dataclass
class World:
    double: ShopifyDouble
    config_path: Path
    erp_url: str
    state: Any
    service: ConsoleService

    def erp_emails(self) -> set[str]:
        reader = open_reader(self.erp_url)
        try:
            return {c.email for c in reader.iter_customers()}
        finally:
            reader.close()


@pytest.fixture
def world(tmp_path: Path, shopify_double: ShopifyDouble) -> Iterator[World]:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, [ErpCustomer(no="C00001", name="Old Customer", email="old@example.com")])
    seed_from_models(shopify_double, [
        ShopifyCustomer(id="", first_name="Jane", last_name="Doe", email=EMAIL,
                        addresses=(_address(),)),
        ShopifyCustomer(id="", first_name="No", last_name="Address", email="pos@example.com"),
    ])
    config_path = write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}", settings=IMPORT_SETTINGS,
        token=shopify_double.token,
    )
    config = require_config(config_path)
    state = open_store(config.state_url)
    service = ConsoleService(config, state, plans_dir=tmp_path / "plans")
    try:
        yield World(shopify_double, config_path, erp_url, state, service)
    finally:
        state.close()


@pytest.fixture
def console(world: World) -> Iterator[Any]:
    with ServerThread(create_app(None, world.service)) as running:
        yield running


def _client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, trust_env=False, timeout=30, follow_redirects=False)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def test_every_page_answers_with_the_security_headers(world: World, console: Any) -> None:
    assert main(["sync", "-c", str(world.config_path), "--direction", "import",
                 "--no-progress"]) in (0, 3)
    run_id = world.state.runs("main")[0].id
    with _client(console) as client:
        for path in ("/", "/runs", f"/runs/{run_id}", "/runs?status=succeeded", "/plans",
                     "/rules", "/static/console.css", "/healthz", "/login"):
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text[:300])
            for name, value in SECURITY_HEADERS.items():
                assert answer.headers[name] == value, (path, name)
        overview = client.get("/").text
        assert "main" in overview and "import" in overview and "<svg" in overview
        run_page = client.get(f"/runs/{run_id}").text
        # the rules that decided, with file:line; contact data masked
        assert re.search(r"rules/import_\w+\.yaml:\d+", run_page)
        assert EMAIL not in run_page
        rules = client.get("/rules").text
        assert re.search(r"<code>rules/import_match\.yaml:\d+</code>", rules)
        assert client.get("/runs/999999").status_code == 404
        assert client.get("/runs/abc").status_code == 400


def test_plan_review_and_approval_apply_exactly_the_plan(world: World, console: Any) -> None:
    with _client(console) as client:
        token = _csrf(client.get("/plans").text)
        made = client.post("/plans", data={"csrf": token, "shop": "main", "direction": "import"})
        assert made.status_code == 303
        plan_url = made.headers["location"]
        page = client.get(plan_url).text
        assert "1 to create, 0 to update, 0 to link, 1 skipped." in page
        assert EMAIL not in page and "j***" in page  # masked as in the text plan
        assert world.erp_emails() == {"old@example.com"}  # a dry run writes nothing
        # filters
        assert "no-address" in client.get(plan_url, params={"action": "skip"}).text
        assert "<pre" not in client.get(plan_url, params={"action": "update"}).text

        approved = client.post(f"{plan_url}/approve", data={"csrf": _csrf(page)})

        assert approved.status_code == 303 and approved.headers["location"].startswith("/runs/")
        run_page = client.get(approved.headers["location"]).text
        assert "succeeded" in run_page or "partial" in run_page
    assert EMAIL in world.erp_emails()


def test_a_stale_plan_is_refused_and_nothing_is_applied(world: World, console: Any) -> None:
    with _client(console) as client:
        token = _csrf(client.get("/plans").text)
        plan_url = client.post(
            "/plans", data={"csrf": token, "shop": "main", "direction": "import"}
        ).headers["location"]
        page = client.get(plan_url).text
        # the customer changes in Shopify after the plan was made
        gid = next(c["id"] for c in world.double.store.customers() if c["email"] == EMAIL)
        world.double.store.update_customer(gid, {"firstName": "Janet"})

        refused = client.post(f"{plan_url}/approve", data={"csrf": _csrf(page)})

        assert refused.status_code == 303
        shown = client.get(refused.headers["location"]).text
        assert "Not applied" in shown
    assert world.erp_emails() == {"old@example.com"}
    assert world.state.runs("main")[0].status == "refused"


def test_a_form_without_its_csrf_token_changes_nothing(world: World, console: Any) -> None:
    with _client(console) as client:
        client.get("/plans")  # a session, but the form's token is not sent
        forged = client.post("/plans", data={"shop": "main", "direction": "import"})
        assert forged.status_code == 403
        wrong = client.post("/plans", data={"csrf": "guess", "shop": "main"})
        assert wrong.status_code == 403
    assert not list(world.service.plans_dir.glob("*.json"))
    # another site posting with no session at all
    with httpx.Client(base_url=console.url, trust_env=False) as other:
        assert other.post("/plans", data={"shop": "main"}).status_code == 403


def test_login_is_required_when_a_password_hash_is_set(world: World) -> None:
    auth = ConsoleAuth(password_hash=hash_password("correct horse battery"))
    app = create_app(None, world.service, auth=auth)
    with ServerThread(app, login_required=True) as server, _client(server) as client:
        assert client.get("/").status_code == 303
        assert client.get("/runs").headers["location"] == "/login"
        token = _csrf(client.get("/login").text)
        assert client.post("/login", data={"csrf": token, "password": "wrong"}) \
            .status_code == 401
        assert client.post("/login", data={"password": "correct horse battery"}) \
            .status_code == 403  # the login form needs its token too
        ok = client.post("/login", data={"csrf": token, "password": "correct horse battery"})
        assert ok.status_code == 303
        assert client.get("/").status_code == 200
        logout = client.post("/logout", data={"csrf": _csrf(client.get("/").text)})
        assert logout.status_code == 303
        assert client.get("/").status_code == 303
        # a forged cookie is no session
        client.cookies.set("custsync_session", "e30.0000")
        assert client.get("/").status_code == 303


def test_a_non_loopback_address_needs_a_login() -> None:
    with pytest.raises(UsageError, match="needs a login"):
        ServerThread(create_app(None), host="0.0.0.0")
    ServerThread(create_app(None), host="0.0.0.0", login_required=True)  # allowed, not started


def test_password_hashes() -> None:
    encoded = hash_password("a long enough password")
    assert encoded.startswith("scrypt$") and "a long enough password" not in encoded
    assert verify_password("a long enough password", encoded)
    assert not verify_password("another password", encoded)
    assert not verify_password("x", "not-a-hash")
    with pytest.raises(ValueError, match="hash-password"):
        ConsoleAuth(password_hash="plain-text-password")


def test_hash_password_prints_the_line_for_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("a very long password\n"))
    assert main(["serve", "--hash-password"]) == 0
    line = capsys.readouterr().out.strip()
    name, _, value = line.partition("=")
    assert name == "CUSTSYNC_CONSOLE_PASSWORD_HASH"
    assert verify_password("a very long password", value.strip("'"))
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["serve", "--hash-password"]) == 64


def _park_jane(world: World) -> str:
    """Jane's import parked (as after a link conflict), with the cursor past her."""
    from datetime import UTC, datetime

    from custsync.engine.run.state import Failure

    gid = next(c["id"] for c in world.double.store.customers() if c["email"] == EMAIL)
    world.state.advance_cursor("main", "import", datetime.now(UTC))
    world.state.note_failures("main", "import", None, [
        Failure(gid, "linked to another Shopify customer", permanent=True,
                rules=("match-by-email",), label=f"Jane Doe <{EMAIL}>")
    ])
    return gid


def test_attention_page_retries_resolves_and_refuses_a_stale_form(
    world: World, console: Any
) -> None:
    gid = _park_jane(world)
    with _client(console) as client:
        page = client.get("/attention").text
        assert gid in page and "parked" in page and EMAIL not in page
        assert "1</a>" in client.get("/").text  # the overview counts it
        form = {"csrf": _csrf(page), "shop": "main", "direction": "import", "record": gid}
        retried = client.post("/attention", data={**form, "action": "retry"})
        assert retried.status_code == 303
        assert "retry asked" in client.get(retried.headers["location"]).text
        assert main(["sync", "-c", str(world.config_path), "--direction", "import",
                     "--no-progress"]) in (0, 3)
        assert EMAIL in world.erp_emails()  # read again although the cursor was past it
        assert world.state.attention("main") == []  # it went through: off the list
        # the form of a record that is no longer listed does nothing and says so
        stale = client.post("/attention", data={**form, "action": "resolve"})
        assert stale.status_code == 400 and "no longer on the attention list" in stale.text


def test_rule_locations_on_the_console_open_where_it_runs(
    world: World, console: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 11: a service runs outside the installation; `rules/import_match.yaml:19` did not
    open there. The run page and the rules page show the shipped file's real path."""
    monkeypatch.chdir(tmp_path)
    assert main(["sync", "-c", str(world.config_path), "--direction", "import",
                 "--no-progress"]) in (0, 3)
    run_id = world.state.runs("main")[0].id
    with _client(console) as client:
        for page in (client.get(f"/runs/{run_id}").text, client.get("/rules").text):
            shown = re.findall(r"(/[^\s<>():]+/import_\w+\.yaml):(\d+)", page)
            assert shown and not re.search(r"[\s>(]rules/import_\w+\.yaml:", page)
            for file, line in shown:
                text = Path(file).read_text(encoding="utf-8").splitlines()[int(line) - 1]
                assert text.strip().startswith("- id: "), (file, line)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_cleanly_on_sigterm_and_on_ctrl_c_started_in_the_background(
    world: World, signum: int
) -> None:
    """`custsync serve` ends with exit 0 on a service manager's SIGTERM and on Ctrl-C's
    SIGINT, also when started in the background by a shell without job control, which
    hands it SIGINT ignored (Python then never raises KeyboardInterrupt)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()",
         "serve", "-c", str(world.config_path), "--port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert process.stderr is not None
        line = ""
        for line in process.stderr:
            if "console at" in line:
                break
        url = re.search(r"console at (\S+)/ ;", line)
        assert url, line
        with httpx.Client(trust_env=False, timeout=30) as client:
            assert client.get(url.group(1) + "/").status_code == 200
        process.send_signal(signum)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == 0
