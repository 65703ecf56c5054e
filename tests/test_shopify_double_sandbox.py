"""`custsync sandbox` as a user runs it: a subprocess that prints URL and token, answers
GraphQL, and stops cleanly on SIGTERM, persisting the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from custsync.connectors.shopify_double import ShopifyDouble, load_seed_file, save_store
from custsync.engine.errors import ConfigError


def start_sandbox(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()", "sandbox",
         "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    printed: dict[str, str] = {}
    assert process.stdout is not None
    for line in process.stdout:
        key, sep, value = line.partition(":")
        if sep and key in ("url", "shop", "token"):
            printed[key] = value.strip()
        if line.startswith("Stop with"):
            break
    return process, printed


def test_sandbox_serves_seed_and_persists_on_sigterm(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "customers:\n"
        "  - {first_name: Jane, last_name: Doe, email: jane@example.com, phone: '+31612345678',\n"
        "     addresses: [{address1: Dam 1, city: Amsterdam, country_code: NL}]}\n"
        "  - {firstName: Bob, email: bob@example.com}\n",
        encoding="utf-8")
    persist = tmp_path / "store.json"
    process, printed = start_sandbox("--seed", str(seed), "--persist", str(persist),
                                     "--token", "shpat_play", "--plan", "plus")
    try:
        assert printed["token"] == "shpat_play"
        assert printed["url"].endswith("/admin/api/2026-07/graphql.json")
        assert printed["url"].startswith("http://127.0.0.1:")
        response = httpx.post(printed["url"], headers={"X-Shopify-Access-Token": "shpat_play"},
                              json={"query": "{ customers(first: 5) { nodes { email } } }"})
        body = response.json()
        assert [n["email"] for n in body["data"]["customers"]["nodes"]] == [
            "jane@example.com", "bob@example.com"]
        assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 20000
        created = httpx.post(printed["url"], headers={"X-Shopify-Access-Token": "shpat_play"},
                             json={"query": 'mutation { customerCreate(input: {email: '
                                   '"new@example.com"}) { customer { id } } }'}).json()
        assert created["data"]["customerCreate"]["customer"]["id"]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "3 customers saved" in out
    saved = json.loads(persist.read_text(encoding="utf-8"))
    assert [c["email"] for c in saved["customers"]] == [
        "jane@example.com", "bob@example.com", "new@example.com"]
    # the next start continues from the persisted store
    process, printed = start_sandbox("--persist", str(persist))
    try:
        body = httpx.post(printed["url"], headers={"X-Shopify-Access-Token": printed["token"]},
                          json={"query": "{ customersCount { count } }"}).json()
        assert body["data"]["customersCount"]["count"] == 3
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_sandbox_reports_a_bad_seed_file_with_its_position(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"customers": [
        {"email": "ok@example.com"}, {"email": "not-an-email"}, {"colour": "red"}]}),
        encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()", "sandbox",
         "--port", "0", "--seed", str(seed)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"{seed}: /customers/1/email: Email is invalid (and 2 more)" in result.stderr
    assert "/customers/2/colour: unknown field 'colour'" in result.stderr
    # without its unknown field, the record is still checked: it has nothing to name it by
    assert "/customers/2: A name, phone number, or email address must be present" in result.stderr
    assert "Traceback" not in result.stderr


def test_seed_file_errors_and_persist_round_trip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("customers:\n  - {email: a@example.com\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: invalid YAML"):
        load_seed_file(ShopifyDouble().store, bad)
    with pytest.raises(ConfigError, match="cannot read seed file"):
        load_seed_file(ShopifyDouble().store, tmp_path / "missing.json")
    double = ShopifyDouble(seed_customers=[
        {"first_name": "A", "email": "a@example.com", "tags": ["x"],
         "addresses": [{"city": "Paris", "country_code": "FR"},
                       {"city": "Lyon", "country_code": "FR", "default": True}]}],
        seed_orders=[{"name": "#1", "customer_email": "a@example.com"}])
    first = tmp_path / "one.yaml"
    save_store(double.store, first)
    again = ShopifyDouble()
    load_seed_file(again.store, first)
    assert again.store.customers() == double.store.customers()
    assert again.store.customers()[0]["defaultAddress"]["city"] == "Lyon"
    assert again.store.orders()[0]["customerId"] == double.store.customers()[0]["id"]


def test_seeded_shipping_zones_survive_a_persist_round_trip(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "shop:\n"
        "  shipping_zones:\n"
        "    - {name: Home, countries: [{code: CA, provinces: ['ON', QC]}]}\n"
        "    - {name: Europe, countries: [NL, DE]}\n",
        encoding="utf-8")
    double = ShopifyDouble()
    load_seed_file(double.store, seed)
    saved = tmp_path / "store.json"
    save_store(double.store, saved)
    again = ShopifyDouble()
    load_seed_file(again.store, saved)
    assert again.store.shop["shipsToCountries"] == ["CA", "NL", "DE"]
    assert again.store.shop["shippingZones"] == double.store.shop["shippingZones"] == [
        {"name": "Home", "countries": [{"code": "CA", "provinces": ["ON", "QC"]}]},
        {"name": "Europe", "countries": [{"code": "NL", "provinces": None},
                                         {"code": "DE", "provinces": None}]},
    ]
    # YAML 1.2 scalars: unquoted ON (Ontario) and NO (Norway) are codes, not booleans
    unquoted = tmp_path / "unquoted.yaml"
    unquoted.write_text(
        "shop:\n  shipping_zones: [{name: North, countries: [{code: CA, provinces: [ON]}, NO]}]\n",
        encoding="utf-8")
    north = ShopifyDouble()
    load_seed_file(north.store, unquoted)
    assert north.store.shop["shippingZones"] == [
        {"name": "North", "countries": [{"code": "CA", "provinces": ["ON"]},
                                        {"code": "NO", "provinces": None}]},
    ]


def test_seed_files_with_bad_bytes_tags_and_dates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A seed that is not UTF-8 or holds ``!!int abc`` was a traceback; a seeded
    ``updated_at: next tuesday`` (as in examples/world) or a time without an offset was stored
    as it was, and then every search by date (each incremental sync) failed."""
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"customers:\n  - {email: a@example.com, first_name: M\xfcller}\n")
    with pytest.raises(ConfigError, match=r"latin\.yaml:2:41: not UTF-8 \(byte 0xfc\)"):
        load_seed_file(ShopifyDouble().store, latin)
    latin_json = tmp_path / "latin.json"
    latin_json.write_bytes(b'[{"email": "a@example.com", "first_name": "M\xfcller"}]')
    with pytest.raises(ConfigError, match=r"latin\.json: not UTF-8 \(byte 0xfc at byte offset"):
        load_seed_file(ShopifyDouble().store, latin_json)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text("customers:\n  - {email: a@example.com, note: !!int abc}\n", "utf-8")
    with pytest.raises(ConfigError, match=r"tagged\.yaml:2:34: invalid YAML: 'abc' is not a valid"):
        load_seed_file(ShopifyDouble().store, tagged)

    dates = tmp_path / "dates.yaml"
    dates.write_text(
        "customers:\n"
        "  - {email: a@example.com, updated_at: next tuesday}\n"
        "  - {email: b@example.com, updated_at: '2026-01-01T10:00:00'}\n"
        "  - {email: c@example.com, updated_at: 2026-01-02}\n"
        "  - {email: d@example.com, updated_at: 2026-13-45}\n",
        "utf-8",
    )
    double = ShopifyDouble()
    with caplog.at_level("WARNING", logger="custsync.sandbox"):
        load_seed_file(double.store, dates)
    assert [r.getMessage() for r in caplog.records] == [
        f"{dates}: /customers/{i}/updatedAt: {text!r} is not an ISO 8601 date-time "
        "(e.g. 2026-03-01T12:00:00Z); seeded with the time of seeding instead"
        for i, text in ((0, "next tuesday"), (3, "2026-13-45"))
    ]
    stamps = {c["email"]: c["updatedAt"] for c in double.store.customers()}
    assert stamps["b@example.com"] == "2026-01-01T10:00:00Z"
    assert stamps["c@example.com"] == "2026-01-02T00:00:00Z"
    found = double.store.search_customers("updated_at:>'2026-01-01T12:00:00Z'")
    assert "b@example.com" not in {c["email"] for c in found}
    assert {"a@example.com", "c@example.com", "d@example.com"} <= {c["email"] for c in found}


def test_sandbox_injects_faults_given_on_the_command_line() -> None:
    """`custsync sandbox --faults` arms the double's Fault API from the command line."""
    process, printed = start_sandbox(
        "--faults", "status:status=503,times=2;drop:operation=customerCreate,after_effect",
        "--faults", "throttle")
    headers = {"X-Shopify-Access-Token": printed.get("token", "")}
    count = {"query": "{ customersCount { count } }"}
    try:
        statuses = [httpx.post(printed["url"], headers=headers, json=count).status_code
                    for _ in range(2)]
        assert statuses == [503, 503]
        throttled = httpx.post(printed["url"], headers=headers, json=count).json()
        assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
        with pytest.raises(httpx.TransportError):  # the answer is dropped, the write happened
            httpx.post(printed["url"], headers=headers, json={
                "query": 'mutation { customerCreate(input: {email: "a@example.com"}) '
                         "{ customer { id } } }"})
        body = httpx.post(printed["url"], headers=headers, json=count).json()
        assert body["data"]["customersCount"]["count"] == 1  # and now the store answers again
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err


@pytest.mark.parametrize(("spec", "message"), [
    ("explode", "--faults 'explode': unknown fault kind 'explode'"),
    ("status:times=often", "--faults 'status:times=often': times takes a whole number"),
    ("drop:colour=red", "--faults 'drop:colour=red': unknown option 'colour'"),
])
def test_sandbox_refuses_a_bad_fault_spec(spec: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from custsync.engine.cli import run; run()", "sandbox",
         "--port", "0", "--faults", spec],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 64
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_seed_check_lists_every_problem_of_a_record() -> None:
    """An unknown field hid the same record's invalid e-mail (the record was not checked
    further): every problem is listed, the unknown fields first."""
    from custsync.connectors.shopify_double.seed import seed_store
    from custsync.connectors.shopify_double.store import Store

    record = {
        "email": "not-an-email",
        "colour": "red",
        "addresses": [{"city": "Berlin", "planet": "Mars"}],
    }
    with pytest.raises(ConfigError) as raised:
        seed_store(Store(), {"customers": [record]}, "seed.yaml")
    problems = raised.value.fields["problems"]
    assert [p.partition(" (known:")[0] for p in problems] == [
        "/customers/0/colour: unknown field 'colour'",
        "/customers/0/addresses/0/planet: unknown field 'planet'",
        "/customers/0/email: Email is invalid",
    ]
    assert raised.value.render().startswith("seed.yaml: /customers/0/colour: unknown field")
