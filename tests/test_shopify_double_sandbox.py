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
    assert f"{seed}: /customers/1/email: Email is invalid (and 1 more)" in result.stderr
    assert "/customers/2/colour: unknown field 'colour'" in result.stderr
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
