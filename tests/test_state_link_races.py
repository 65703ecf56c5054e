"""Saving a link is one atomic statement (issue 10, item 6): two processes saving the same link
at once both succeed; a save that collides with another link fails that record
(LinkConflictError, a RecordError), never the run (no IntegrityError, no FatalError)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from custsync.engine.errors import RecordError
from custsync.engine.model import Link
from custsync.engine.run.state import LinkConflictError, link_table, make_engine, open_store

GID = "gid://shopify/Customer/1"
OTHER_GID = "gid://shopify/Customer/2"


def _in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = call()
        except BaseException as exc:  # handed to the test
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _race(db_url: str, stored: dict[str, Any], saving: Link) -> dict[str, Any]:
    """Another process inserts ``stored`` and commits while our store saves ``saving``."""
    store = open_store(db_url)
    other = make_engine(db_url)
    try:
        now = datetime.now(UTC)
        with other.connect() as conn:
            transaction = conn.begin()
            conn.execute(link_table.insert().values(shop="main", created_at=now, updated_at=now,
                                                    **stored))
            thread, result = _in_background(lambda: store.save_link(saving))
            time.sleep(0.5)  # our save now waits for the other transaction's row
            transaction.commit()
        thread.join(timeout=60)
        result["links"] = list(store.links("main"))
        return result
    finally:
        store.close()
        other.dispose()


def test_two_saves_of_the_same_link_at_once_both_succeed(db_url: str) -> None:
    imported = datetime(2026, 12, 1, tzinfo=UTC)
    exported = datetime(2026, 12, 2, tzinfo=UTC)
    result = _race(
        db_url,
        {"shopify_id": GID, "erp_no": "C00001", "last_import_at": imported},
        Link("main", GID, "C00001", last_export_at=exported),
    )
    assert "error" not in result, result.get("error")
    [link] = result["links"]
    assert (link.erp_no, link.last_import_at, link.last_export_at) == ("C00001", imported, exported)


def test_a_save_colliding_with_another_link_fails_the_record(db_url: str) -> None:
    result = _race(
        db_url,
        {"shopify_id": OTHER_GID, "erp_no": "C00001"},
        Link("main", GID, "C00001"),
    )
    error = result.get("error")
    assert isinstance(error, LinkConflictError) and isinstance(error, RecordError), error
    assert "C00001" in error.render() and "already linked" in error.render()
    assert [(link.shopify_id, link.erp_no) for link in result["links"]] == [(OTHER_GID, "C00001")]


def test_a_save_moving_a_shopify_customer_to_another_erp_customer_is_refused(db_url: str
                                                                              ) -> None:
    store = open_store(db_url)
    try:
        store.save_link(Link("main", GID, "C00001"))
        with pytest.raises(LinkConflictError, match="already linked to ERP customer C00001"):
            store.save_link(Link("main", GID, "C00002"))
        store.save_link(Link("main", GID, "C00002"), replaces="C00001")  # on purpose: moves
        assert store.link_for_shopify("main", GID).erp_no == "C00002"  # type: ignore[union-attr]
    finally:
        store.close()
