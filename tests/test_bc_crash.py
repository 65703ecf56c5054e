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
                    company=f"Shop Company {i}",
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
    # every BC request takes a while and the creates go 3 to a $batch (each batch: the
    # creates, the card writes, the etag reads): a sync takes several seconds on any machine,
    # so kills land mid-work (with batches of 100 the whole import was three requests and an
    # idle machine finished it before the first kill)
    bc = bc_double_factory(latency=0.15)
    seed_from_models(shopify_double, _shop_customers())
    config = write_bc_config(
        tmp_path, bc, shop_url=shopify_double.url, token=shopify_double.token, settings=SETTINGS,
        batch_size=3,
    )
    env = {**os.environ, TOKEN_ENV: shopify_double.token, SECRET_ENV: bc.client_secret}
    command = _custsync("sync", "--config", str(config), "--no-progress")

    kills = _run_and_kill(command, env, lambda: rng.uniform(1.5, 4.0), 4)
    assert kills >= 1, "the sync finished before any kill: slow the double down further"

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    _check_no_duplicates(tmp_path, bc, shopify_double)


def _batches(bc: BcDouble, path_part: str) -> list[object]:
    return [r for r in bc.requests if r.target == "$batch" and path_part in r.path]


@pytest.mark.slow
@pytest.mark.parametrize(
    "where",
    [
        # BC ran the $batch of creates; its answer is late and the process dies waiting: the
        # journal has only what was sent (the look-up finds the customers)
        "during-the-batch",
        # the $batch of creates may not have reached BC (its request waits in front of it)
        "before-bc-ran-the-batch",
        # BC answered the creates; the $batch of Customer Card writes hangs: the journal has
        # the numbers, the cards are still due
        "between-the-batch-and-the-cards",
        # creates and cards done; the $batch reading the new etags hangs: nothing is linked
        "before-the-links",
    ],
)
def test_kill_between_the_batch_and_the_links_is_recognised(
    tmp_path: Path,
    bc_double_factory: Callable[..., BcDouble],
    shopify_double: ShopifyDouble,
    where: str,
) -> None:
    """`custsync sync` sends the import creates as one $batch (then one of card writes, one
    of etag reads) and dies by SIGKILL around it, before custsync linked anything: the resumed
    run settles the pending intents through the create journal (by number, or by looking the
    sent customers up in BC), writes the cards still due and links every customer; no customer
    is created twice."""
    bc = bc_double_factory()
    seed_from_models(shopify_double, _shop_customers())
    config = write_bc_config(
        tmp_path,
        bc,
        shop_url=shopify_double.url,
        token=shopify_double.token,
        settings={
            **SETTINGS,
            "export_customers": False,
            "name_source": "company_name",
            "name_2_source": "first_and_last_name",
        },
        timeout_seconds=6,  # a POST older than this is finished in BC, or never will be
    )
    env = {**os.environ, TOKEN_ENV: shopify_double.token, SECRET_ENV: bc.client_secret}
    command = _custsync("sync", "--config", str(config), "--no-progress", "--direction", "import")
    company = next(iter(bc.store.companies.values()))
    seeded = len(company.customers)
    hang = {
        "during-the-batch": Fault("delay", seconds=30, method="POST", target="$batch",
                                  after_effect=True),
        "before-bc-ran-the-batch": Fault("delay", seconds=30, method="POST", target="$batch"),
        "between-the-batch-and-the-cards": Fault("delay", seconds=30, method="POST",
                                                 target="$batch", skip=1),
        "before-the-links": Fault("delay", seconds=30, method="POST", target="$batch", skip=2),
    }[where]
    bc.inject(hang)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and hang.fired == 0:
        time.sleep(0.05)  # the hanging $batch has reached the double
    assert hang.fired == 1
    time.sleep(0.5)  # (and, during-the-batch, BC is running it)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    bc.clear_faults()
    if where == "during-the-batch":
        assert len(company.customers) == seeded + N_SHOPIFY  # BC created them all
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert not list(store.links("main"))
        assert len(store.pending_intents(shop="main")) == N_SHOPIFY
    finally:
        store.close()

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stdout + final.stderr
    _check_no_duplicates(tmp_path, bc, shopify_double, exported=False)
    with open_bc(bc, tmp_path, journal=str(tmp_path / "check-journal.sqlite")) as reader:
        names_2 = {c.email: c.name_2 for c in reader.iter_customers()}
    # the Customer Card values (Name 2) were written, also those due when the run died
    assert {names_2[f"shop{i}@example.com"] for i in range(1, 25)} == {
        f"Shop Person {i}" for i in range(1, 25)
    }, names_2
