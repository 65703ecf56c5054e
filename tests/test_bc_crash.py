"""Business Central as the ERP: a sync killed with SIGKILL at random points (also between a
POST to BC and the link in custsync's state) and resumed with the same command leaves no
duplicate customer in BC or Shopify and no lost link."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from custsync.connectors.bc_double import BcDouble, Fault
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine.model import ShopifyAddress, ShopifyCustomer
from custsync.engine.run.state import open_store

from bc_world import SECRET_ENV, open_bc, write_bc_config
from sync_world import TOKEN_ENV

N_SHOPIFY = 24
SETTINGS = {
    "customer_import": "all_customers",
    "auto_create_unknown_customers": True,
    "customer_template_code": "US-RETAIL",
    "export_customers": True,
}


def _custsync(*args: str) -> list[str]:
    return [sys.executable, "-c", "from custsync.engine.cli import run; run()", *args]


def _shop_customers() -> list[ShopifyCustomer]:
    return [
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
                    address1=f"{i} Pike Street",
                    zip="98101",
                    city="Seattle",
                    country_code="US",
                    province_code="WA",
                ),
            ),
        )
        for i in range(1, N_SHOPIFY + 1)
    ]


def _check_no_duplicates(
    tmp_path: Path, bc: BcDouble, shop: ShopifyDouble, *, exported: bool = True
) -> None:
    with open_bc(bc, tmp_path, journal=str(tmp_path / "check-journal.sqlite")) as reader:
        bc_customers = list(reader.iter_customers())
    bc_emails = Counter(c.email for c in bc_customers)
    assert all(n == 1 for n in bc_emails.values()), bc_emails.most_common(3)
    assert sum(1 for e in bc_emails if e.startswith("shop")) == N_SHOPIFY
    shop_emails = Counter(c["email"] for c in shop.store.customers())
    assert all(n == 1 for n in shop_emails.values()), shop_emails.most_common(3)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        links = list(store.links("main"))
        assert not store.pending_intents(shop="main")
    finally:
        store.close()
    # every BC customer linked (the seeded ones when exported), one to one
    imported = {c.no for c in bc_customers if c.email.startswith("shop")}
    linked = {link.erp_no for link in links}
    assert linked == ({c.no for c in bc_customers} if exported else imported)
    assert len({link.shopify_id for link in links}) == len(links)


def _run_and_kill(
    command: list[str], env: dict[str, str], pause: Callable[[], float], times: int
) -> int:
    kills = 0
    for _ in range(times):
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(pause())
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait(timeout=30)
    return kills


@pytest.mark.slow
def test_killed_sync_with_bc_resumes_without_duplicates_or_lost_links(
    tmp_path: Path, bc_double_factory: Callable[..., BcDouble], shopify_double: ShopifyDouble
) -> None:
    rng = random.Random(20261207)
    bc = bc_double_factory(latency=0.04)  # every BC request takes a while: kills land mid-work
    seed_from_models(shopify_double, _shop_customers())
    config = write_bc_config(
        tmp_path, bc, shop_url=shopify_double.url, token=shopify_double.token, settings=SETTINGS
    )
    env = {**os.environ, TOKEN_ENV: shopify_double.token, SECRET_ENV: bc.client_secret}
    command = _custsync("sync", "--config", str(config), "--no-progress")

    kills = _run_and_kill(command, env, lambda: rng.uniform(1.5, 4.0), 4)
    assert kills >= 1, "the sync finished before any kill: slow the double down further"

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    _check_no_duplicates(tmp_path, bc, shopify_double)


@pytest.mark.slow
@pytest.mark.parametrize(
    "where",
    [
        # BC answered the POST; the card write that follows hangs: the journal has the number
        "after-the-answer",
        # the POST is still in BC's hands: the journal has only what was sent
        "before-the-answer",
    ],
)
def test_kill_between_the_post_and_the_link_is_recognised(
    tmp_path: Path,
    bc_double_factory: Callable[..., BcDouble],
    shopify_double: ShopifyDouble,
    where: str,
) -> None:
    """The process dies after BC got the fourth create and before custsync linked it: the
    resumed run settles the pending intent through the create journal (by number, or by
    looking the sent customer up in BC) and links it; no customer is created twice."""
    bc = bc_double_factory()
    seed_from_models(shopify_double, _shop_customers())
    config = write_bc_config(
        tmp_path,
        bc,
        shop_url=shopify_double.url,
        token=shopify_double.token,
        settings={**SETTINGS, "export_customers": False},
        timeout_seconds=8,  # a POST older than this is finished in BC, or never will be
    )
    env = {**os.environ, TOKEN_ENV: shopify_double.token, SECRET_ENV: bc.client_secret}
    command = _custsync("sync", "--config", str(config), "--no-progress", "--direction", "import")
    if where == "after-the-answer":
        bc.inject(Fault("delay", seconds=15, method="PATCH", target="Customer", skip=3))
    else:
        bc.inject(Fault("delay", seconds=4, method="POST", target="customers", skip=3))
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        posts = [r for r in bc.requests if r.method == "POST" and r.target == "customers"]
        if len(posts) >= 3:
            break
        time.sleep(0.05)
    time.sleep(1.0)  # the fourth create is in BC's hands
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    bc.clear_faults()
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert len(list(store.links("main"))) == 3
        assert len(store.pending_intents(shop="main")) == 1
    finally:
        store.close()

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    _check_no_duplicates(tmp_path, bc, shopify_double, exported=False)
