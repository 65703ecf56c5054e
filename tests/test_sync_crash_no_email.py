"""A sync killed (SIGKILL) after Shopify created a customer and before custsync linked it, for
customers without an e-mail (a shop whose rules allow that): the resumed run recognises what
was created, by phone, and never sends the create twice; a customer with neither e-mail nor
phone cannot be recognised, so it is parked for a person instead of risked twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.engine.cli import main
from custsync.engine.model import ErpCustomer
from custsync.engine.run.state import open_store

from sync_world import EXPORT_SETTINGS, TOKEN_ENV, make_erp, write_config

N = 4


def _custsync(*args: str) -> list[str]:
    return [sys.executable, "-c", "from custsync.engine.cli import run; run()", *args]


def _world(tmp_path: Path, double: ShopifyDouble, customers: list[ErpCustomer]) -> Path:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    make_erp(erp_url, customers)
    config = write_config(
        tmp_path,
        shop_url=double.url,
        erp_url=erp_url,
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        settings=EXPORT_SETTINGS,
        token=double.token,
        # one create at a time, so that the kill lands between the third create and its link
        shopify_options={"concurrency": 1},
    )
    # this shop exports customers without an e-mail
    rules = tmp_path / "house-rules"
    rules.mkdir()
    (rules / "no-email.yaml").write_text(
        "decision: export_requirements\ndisable: [email-missing]\nrules: []\n"
    )
    document = yaml.safe_load(config.read_text())
    document["rules"] = [str(rules)]
    config.write_text(yaml.safe_dump(document))
    return config


def _kill_while_the_third_create_is_answered(
    command: list[str], env: dict[str, str], double: ShopifyDouble
) -> None:
    """Shopify creates the third customer and holds its answer; the sync dies meanwhile."""
    double.inject(
        Fault(kind="delay", seconds=20, operation="customerCreate", after_effect=True, skip=2)
    )
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while double.store.count() < 3:
        assert time.monotonic() < deadline, "the sync never created the third customer"
        assert process.poll() is None, "the sync ended before the kill"
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    double.clear_faults()


def _state(tmp_path: Path) -> tuple[int, int, list[str]]:
    """(links, pending intents, failed intents' errors)."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        links = len(list(store.links("main")))
        pending = len(store.pending_intents(shop="main"))
        keys = [f"main:C{i:05d}" for i in range(1, N + 1)]
        intents = [store.intent_for_key(key) for key in keys]
        errors = [i.error for i in intents if i is not None and i.status == "failed"]
    finally:
        store.close()
    return links, pending, errors


def test_a_phone_only_create_killed_before_its_link_is_settled_by_phone(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    config = _world(
        tmp_path,
        shopify_double,
        [
            ErpCustomer(no=f"C{i:05d}", name=f"Phone Person {i}", phone=f"06 1234 {i:04d}",
                        country_code="NL", city="Utrecht")
            for i in range(1, N + 1)
        ],
    )
    env = {**os.environ, TOKEN_ENV: shopify_double.token}
    command = _custsync("sync", "--config", str(config), "--no-progress", "--direction", "export")

    _kill_while_the_third_create_is_answered(command, env, shopify_double)
    links, pending, _ = _state(tmp_path)
    assert pending >= 1 and links < N

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr
    phones = sorted(c["phone"] for c in shopify_double.store.customers())
    assert phones == [f"+3161234{i:04d}" for i in range(1, N + 1)]  # each exactly once
    links, pending, errors = _state(tmp_path)
    assert (links, pending) == (N, 0)
    # settled from the journal by phone, not failed and re-planned
    assert errors == []


def test_a_create_with_nothing_to_look_up_by_is_parked_not_sent_twice(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _world(
        tmp_path,
        shopify_double,
        [
            ErpCustomer(no=f"C{i:05d}", name=f"Name Person {i}", contact=f"Name Person {i}",
                        country_code="NL", city="Utrecht")
            for i in range(1, N + 1)
        ],
    )
    env = {**os.environ, TOKEN_ENV: shopify_double.token}
    command = _custsync("sync", "--config", str(config), "--no-progress", "--direction", "export")

    _kill_while_the_third_create_is_answered(command, env, shopify_double)
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stdout + final.stderr
    names = [c["lastName"] for c in shopify_double.store.customers()]
    assert sorted(names) == ["Person 1", "Person 2", "Person 3"]  # the third not twice
    assert "Name Person" not in final.stderr  # the warning names the record, not the person

    # the creates the killed run had journaled and not settled (its batch settles at the
    # end) wait for a person: three of them are in Shopify, the fourth was never sent
    capsys.readouterr()
    assert main(["attention", "list", "-c", str(config), "-o", "json"]) == 0
    records = {r["record"]: r for r in json.loads(capsys.readouterr().out)["records"]}
    assert sorted(records) == [f"C{i:05d}" for i in range(1, N + 1)]
    for record in records.values():
        assert (record["status"], record["permanent"]) == ("parked", True)
        assert "no e-mail or phone to look it up by" in record["reason"]
        assert f"custsync attention retry {record['record']}" in record["reason"]
    # C00004 was never sent (not in Shopify): retried, it is created once
    assert main(["attention", "retry", "C00004", "-c", str(config)]) == 0
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    names = [c["lastName"] for c in shopify_double.store.customers()]
    assert sorted(names) == ["Person 1", "Person 2", "Person 3", "Person 4"]
    capsys.readouterr()
    assert main(["attention", "list", "-c", str(config), "-o", "json"]) == 0
    still = [r["record"] for r in json.loads(capsys.readouterr().out)["records"]]
    assert still == ["C00001", "C00002", "C00003"]
