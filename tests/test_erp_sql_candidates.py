"""The SQL ERP's lookup keys: kept on every write, rebuilt by `erp init`, used by
`candidates` so an incremental sync reads only the customers its changes can match."""

from __future__ import annotations

import sqlalchemy as sa
from custsync.connectors import erp_sql_schema as schema
from custsync.connectors.erp_sql import open_reader, open_writer
from custsync.engine.model import ErpCustomer

from sync_world import make_erp


def _nos(url: str, **keys: list[str]) -> list[str] | None:
    reader = open_reader(url)
    try:
        found = reader.candidates(**keys)
    finally:
        reader.close()
    return None if found is None else [customer.no for customer in found]


def test_candidates_follow_every_write(db_url: str) -> None:
    make_erp(
        db_url,
        [
            ErpCustomer(
                no="C00001",
                name="A",
                email="Ann@Example.com",
                phone="+31 6 1234 5678",
                post_code="1012 AB",
            ),
            ErpCustomer(no="C00002", name="B", email="bob@example.com", phone="(415)555-0123"),
            ErpCustomer(no="C00003", name="C", email="ann@example.com"),
        ],
    )
    # e-mail ignoring case finds every holder, in number order; phone keys; post codes; nos
    assert _nos(db_url, emails=["ANN@example.COM"]) == ["C00001", "C00003"]
    assert _nos(db_url, phone_keys=["550123"]) == ["C00002"]
    assert _nos(db_url, post_codes=["1012 AB"], nos=["C00002"]) == ["C00001", "C00002"]
    assert _nos(db_url, emails=["nobody@example.com"]) == []

    erp = open_writer(db_url)
    try:
        assert erp.update_customer("C00002", {"phone": "+1 212 555 0199"}).ok
        created = erp.create_customer({"name": "D", "email": "dee@example.com"}, None, "k:1")
        assert created.ok
    finally:
        erp.close()
    assert _nos(db_url, phone_keys=["550123"]) == []
    assert _nos(db_url, phone_keys=["550199"]) == ["C00002"]
    assert _nos(db_url, emails=["dee@example.com"]) == [created.no]


def test_a_database_without_keys_answers_none_until_erp_init(sqlite_url: str) -> None:
    make_erp(sqlite_url, [ErpCustomer(no="C00001", name="A", email="a@example.com")])
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(schema.customer_key.delete())
    engine.dispose()
    assert _nos(sqlite_url, emails=["a@example.com"]) is None  # the caller reads everything
    erp = open_writer(sqlite_url)
    try:
        erp.initialize()
    finally:
        erp.close()
    assert _nos(sqlite_url, emails=["a@example.com"]) == ["C00001"]
