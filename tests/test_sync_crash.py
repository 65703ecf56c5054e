"""A sync killed with SIGKILL at random points and resumed with the same command finishes the
job with no duplicate customer on either side and no lost link."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from custsync.connectors.erp_sql import open_reader
from custsync.connectors.shopify_double import Fault, ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine.model import ErpCustomer, ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import open_store

from sync_world import TOKEN_ENV, make_erp, write_config

N_ERP = 40
N_SHOPIFY = 20


def _custsync(*args: str) -> list[str]:
    return [sys.executable, "-c", "from custsync.engine.cli import run; run()", *args]


@pytest.mark.slow
def test_killed_sync_resumes_without_duplicates_or_lost_links(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    rng = random.Random(20261128)
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(
        erp_url,
        [
            ErpCustomer(
                no=f"C{i:05d}",
                name=f"Erp Person {i}",
                email=f"erp{i}@example.com",
                phone=f"+3161234{i:04d}",
                country_code="NL",
                city="Utrecht",
            )
            for i in range(1, N_ERP + 1)
        ],
    )
    seed_from_models(
        shopify_double,
        [
            ShopifyCustomer(
                id="",
                first_name="Shop",
                last_name=f"Person {i}",
                email=f"shop{i}@example.com",
                addresses=(
                    ShopifyAddress(
                        default=True,
                        first_name="Shop",
                        last_name=f"Person {i}",
                        address1=f"{i} Damrak",
                        zip="1012 AB",
                        city="Amsterdam",
                        country_code="NL",
                    ),
                ),
            )
            for i in range(1, N_SHOPIFY + 1)
        ],
    )
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=state_url,
        token=shopify_double.token,
        settings={
            "customer_import": "all_customers",
            "auto_create_unknown_customers": True,
            "customer_template_code": "RETAIL",
            "export_customers": True,
        },
    )
    # every request takes a little while, so that kills land in the middle of the work
    shopify_double.inject(Fault(kind="delay", seconds=0.03, times=1_000_000))
    env = {**os.environ, TOKEN_ENV: shopify_double.token}
    command = _custsync("sync", "--config", str(config), "--no-progress")

    kills = 0
    for _ in range(4):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(rng.uniform(1.5, 4.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    assert kills >= 1, "the sync finished before any kill: slow the double down further"

    shopify_double.clear_faults()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr

    # Shopify: every ERP customer exactly once, the seeded ones untouched in number
    emails = Counter(c["email"] for c in shopify_double.store.customers())
    assert all(count == 1 for count in emails.values()), emails.most_common(3)
    assert sum(1 for e in emails if e.startswith("erp")) == N_ERP
    # ERP: every Shopify customer exactly once
    reader = open_reader(erp_url)
    try:
        erp_emails = Counter(c.email for c in reader.iter_customers())
    finally:
        reader.close()
    assert all(count == 1 for count in erp_emails.values()), erp_emails.most_common(3)
    assert sum(1 for e in erp_emails if e.startswith("shop")) == N_SHOPIFY
    # links: every customer on both sides linked, one to one
    store = open_store(state_url)
    try:
        links = list(store.links("main"))
        assert not store.pending_intents(shop="main")
    finally:
        store.close()
    assert len(links) == N_ERP + N_SHOPIFY
    assert len({link.erp_no for link in links}) == len(links)
    assert len({link.shopify_id for link in links}) == len(links)


def test_runs_of_a_sync_stopped_hard_are_not_left_running(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    """A second SIGINT (hard stop) left the sync's runs "running" in the run log for good,
    and so did SIGKILL under `sync` (only `schedule` tidied them up)."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url)
    config = write_config(
        tmp_path,
        shop_url=shopify_double.url,
        erp_url=erp_url,
        state_url=state_url,
        token=shopify_double.token,
        settings={"customer_import": "all_customers"},
    )
    env = {**os.environ, TOKEN_ENV: shopify_double.token}
    command = _custsync("sync", "--config", str(config), "--no-progress")

    def start() -> subprocess.Popen[str]:
        """A sync that has its runs open and waits for the store's slow answers."""
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(400):
            if (tmp_path / "state.db").exists():
                store = open_store(state_url)
                try:
                    if any(run.status == "running" for run in store.runs(shop="main")):
                        return process
                finally:
                    store.close()
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
        raise AssertionError("the sync never started a run")

    def runs() -> list[tuple[int, str, str]]:
        store = open_store(state_url)
        try:
            return sorted((r.id, r.status, r.error) for r in store.runs(shop="main"))
        finally:
            store.close()

    shopify_double.inject(Fault(kind="delay", seconds=2, times=1_000))
    process = start()
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)  # do not wait for the current record
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "custsync: interrupted" in err and "Traceback" not in err
    assert runs() == [(1, "abandoned", "SIGINT received"), (2, "abandoned", "SIGINT received")]

    process = start()
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    shopify_double.clear_faults()
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert "custsync: shop main: run(s) 3, 4 of a stopped process marked abandoned" in (
        final.stderr
    )
    stopped = "the process running it stopped"
    assert runs()[2:] == [
        (3, "abandoned", stopped),
        (4, "abandoned", stopped),
        (5, "succeeded", ""),
        (6, "succeeded", ""),
    ]
