"""Lease fencing (issue 10, item 5): a run whose lease expired or was taken by another process
stops before its next write; its state writes check the lease in their own transaction."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.engine.config import require_config
from custsync.engine.model import ErpCustomer, Link
from custsync.engine.run.schedule import lease_fence
from custsync.engine.run.state import Fence, LeaseLostError, open_store
from custsync.engine.run.sync import run_sync

from sync_world import EXPORT_SETTINGS, make_erp, write_config

LEASE = "shop:main"
GID = "gid://shopify/Customer/1"


def test_a_new_holder_gets_a_new_generation(db_url: str) -> None:
    store = open_store(db_url)
    try:
        assert store.acquire_lease(LEASE, "a", 0.3)
        first = store.lease(LEASE)
        assert first is not None and first.generation == 1
        assert store.acquire_lease(LEASE, "a", 0.3)  # renewing by re-acquiring: same one
        assert store.lease(LEASE).generation == 1  # type: ignore[union-attr]
        time.sleep(0.5)
        assert store.acquire_lease(LEASE, "b", 30)
        assert store.lease(LEASE).generation == 2  # type: ignore[union-attr]
    finally:
        store.close()


def test_writes_of_a_holder_that_lost_its_lease_are_refused(db_url: str) -> None:
    store = open_store(db_url)
    try:
        assert store.acquire_lease(LEASE, "paused", 0.3)
        fenced = store.fenced(lease_fence(store, LEASE, "paused"))
        fenced.save_link(Link("main", GID, "C00001"))  # while it holds the lease: fine
        time.sleep(0.5)  # paused past its TTL ...
        with pytest.raises(LeaseLostError, match="expired"):
            fenced.save_link(Link("main", "gid://shopify/Customer/2", "C00002"))
        assert store.acquire_lease(LEASE, "other", 30)  # ... and another process took the shop
        for write in (
            lambda: fenced.save_link(Link("main", "gid://shopify/Customer/3", "C00003")),
            lambda: fenced.advance_cursor("main", "export", fenced.lease(LEASE).acquired_at),  # type: ignore[union-attr]
            lambda: fenced.begin_intent(fenced.start_run("main", "export", _now()), "C1",
                                        "shopify.create", "main:C1"),
            fenced.check_fence,
        ):
            with pytest.raises(LeaseLostError, match="other holds it now"):
                write()
        assert [link.erp_no for link in store.links("main")] == ["C00001"]
        assert store.cursor("main", "export") is None
        assert store.pending_intents(shop="main") == []
        # the new holder's own writes go through
        store.fenced(Fence(LEASE, "other", 2)).save_link(Link("main", GID, "C00001"))
    finally:
        store.close()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_run_whose_lease_is_taken_stops_before_its_next_write(
    tmp_path: Path, shopify_double: ShopifyDouble
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    make_erp(erp_url, [
        ErpCustomer(no=f"C{i:05d}", name=f"P {i}", email=f"p{i}@example.com", country_code="NL")
        for i in range(1, 6)
    ])
    config = require_config(write_config(
        tmp_path, shop_url=shopify_double.url, erp_url=erp_url, state_url=state_url,
        settings=EXPORT_SETTINGS, token=shopify_double.token,
    ))
    store = open_store(state_url)
    try:
        assert store.acquire_lease(LEASE, "paused", 0.3)
        fence = lease_fence(store, LEASE, "paused")

        def pause_and_lose_the_lease(plan: Any) -> None:
            time.sleep(0.5)  # e.g. a stopped VM; its heartbeat did not run either
            assert store.acquire_lease(LEASE, "other", 30)

        result = run_sync(config, "main", "export", state=store, fence=fence,
                          on_planned=pause_and_lose_the_lease)

        assert result.status == "failed" and not result.retriable
        assert "lease shop:main lost" in result.error
        assert shopify_double.mutation_count() == 0  # nothing written after the loss
        assert list(store.links("main")) == []
        assert store.cursor("main", "export") is None
        [run] = store.runs(shop="main")
        assert run.status == "failed" and "lease shop:main lost" in run.error
    finally:
        store.close()
