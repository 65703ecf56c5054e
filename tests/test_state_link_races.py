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


def _intents(store: Any, n: int) -> list[int]:
    run = store.start_run("main", "export", datetime.now(UTC))
    _, ids = store.begin_intents(
        run, [(f"C{i:05d}", "shopify.create", f"main:C{i:05d}") for i in range(1, n + 1)]
    )
    return list(ids)


def test_settling_a_batch_saves_links_as_one_save_does(db_url: str) -> None:
    """The batched path (a bulk job's results) keeps the same stamps as save_link: the own
    write's updatedAt and ERP etag it is given, the stored ones it is not given."""
    imported = datetime(2026, 12, 1, tzinfo=UTC)
    written = datetime(2026, 12, 3, tzinfo=UTC)
    store = open_store(db_url)
    try:
        store.save_link(
            Link("main", GID, "C00001", last_import_at=imported, own_write_erp_etag="E1")
        )
        ids = _intents(store, 2)
        refused = store.settle_intents(
            done=[
                (ids[0], GID, Link("main", GID, "C00001", own_write_shopify_updated_at=written)),
                (ids[1], OTHER_GID, Link(
                    "main", OTHER_GID, "C00002", own_write_shopify_updated_at=written,
                    own_write_erp_etag="E2", address_ids=("gid://shopify/MailingAddress/7",),
                )),
            ]
        )
        assert refused == {}
        first = store.link_for_shopify("main", GID)
        second = store.link_for_shopify("main", OTHER_GID)
        assert first is not None and second is not None
        assert (first.last_import_at, first.own_write_erp_etag) == (imported, "E1")  # kept
        assert first.own_write_shopify_updated_at == written
        assert (second.own_write_erp_etag, second.own_write_shopify_updated_at) == ("E2", written)
        assert store.link_for_address("main", "gid://shopify/MailingAddress/7") == "C00002"
        assert not store.pending_intents(shop="main")
    finally:
        store.close()


def test_a_batch_colliding_with_another_processs_link_fails_that_intent_alone(
    db_url: str,
) -> None:
    """Another process links C00001 and commits while a batch is being settled: that
    intent fails (the other link stays), the rest of the batch is saved."""
    store = open_store(db_url)
    other = make_engine(db_url)
    third = "gid://shopify/Customer/3"
    try:
        ids = _intents(store, 3)
        now = datetime.now(UTC)
        with other.connect() as conn:
            transaction = conn.begin()
            conn.execute(link_table.insert().values(
                shop="main", shopify_id=OTHER_GID, erp_no="C00001", created_at=now,
                updated_at=now))
            thread, result = _in_background(lambda: store.settle_intents(done=[
                (ids[0], GID, Link("main", GID, "C00001")),
                (ids[2], third, Link("main", third, "C00003")),
            ]))
            time.sleep(0.5)  # the settle now waits for the other transaction
            transaction.commit()
        thread.join(timeout=60)
        assert "error" not in result, result.get("error")
        refused = result["value"]
        assert list(refused) == [ids[0]] and "already linked" in refused[ids[0]]
        links = {link.erp_no: link.shopify_id for link in store.links("main")}
        assert links == {"C00001": OTHER_GID, "C00003": third}
        assert store.intent_for_key("main:C00001").status == "failed"
        assert store.intent_for_key("main:C00003").status == "done"
    finally:
        store.close()
        other.dispose()
