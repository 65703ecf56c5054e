"""A customer row another program wrote with garbage (SQLite does not enforce column types) is
reported by the SQL ERP reader and skipped; every other row is read. Real SQLite files and
PostgreSQL; end to end through `custsync plan` / `sync` with the Shopify double."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from custsync.connectors.erp_sql import LoadRow, SqlErpReader, open_reader, open_writer
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.engine import exitcodes
from custsync.engine.cli import main
from custsync.engine.model import ERP_TEMPLATE_FIELDS, ErpCustomer
from custsync.engine.ports import ReportsProblems

from sync_world import EXPORT_SETTINGS, make_erp, write_config


def _load(url: str, count: int) -> None:
    with open_writer(url, create=True) as writer:
        writer.initialize(with_defaults=True)
        rows = [
            LoadRow(
                i + 2,
                {
                    "no": f"C{i:05d}",
                    "name": f"Person {i}",
                    "email": f"p{i}@x.com",
                    "customer_posting_group": "DOMESTIC",
                    "tax_liable": str(i % 2 == 0),
                },
            )
            for i in range(1, count + 1)
        ]
        report = writer.load("customers", rows)
        assert not report.problems and report.inserted == count


def _corrupt(path: Path, statement: str) -> None:
    """Write as another program would: plain SQL on the file, no custsync checks."""
    with sqlite3.connect(path) as conn:
        assert conn.execute(statement).rowcount >= 1


def _read(
    url: str, changed_since: datetime | None = None
) -> tuple[list[str], list[tuple[str, str, str]]]:
    with open_reader(url) as reader:
        nos = [customer.no for customer in reader.iter_customers(changed_since)]
        problems = [(p.record, p.location, p.message) for p in reader.problems()]
    return nos, problems


@pytest.fixture
def erp_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "erp.db"
    _load(f"sqlite:///{path}", 5)
    yield path


GARBAGE = [
    ("modified_at", "modified_at = 'yesterday'", "is not a date-time"),
    ("modified_at", "modified_at = 12345", "is not a date-time"),
    ("tax_liable", "tax_liable = 'maybe'", "is not a boolean (0 or 1)"),
    ("tax_liable", "tax_liable = 'false'", "is not a boolean (0 or 1)"),
    ("row_version", "row_version = 'abc'", "is not an integer"),
    ("name", "name = CAST(x'ff' AS TEXT)", "is not valid UTF-8 text"),
    ("city", "city = x'414243'", "holds binary data (a BLOB), not text"),
]


@pytest.mark.parametrize(("column", "assignment", "problem"), GARBAGE)
def test_an_unreadable_row_is_reported_and_skipped(
    erp_file: Path, column: str, assignment: str, problem: str
) -> None:
    _corrupt(erp_file, f"UPDATE erp_customer SET {assignment} WHERE no = 'C00003'")
    url = f"sqlite:///{erp_file}"

    nos, problems = _read(url)

    assert nos == ["C00001", "C00002", "C00004", "C00005"]
    assert problems == [
        (
            "C00003",
            "erp_customer C00003",
            f"column {column} {problem}; skipped until it is corrected",
        )
    ]
    with open_reader(url) as reader:
        assert isinstance(reader, ReportsProblems)
        assert reader.get_customer("C00003") is None
        assert [p.record for p in reader.problems()] == ["C00003"]
        assert reader.get_customer("C00004") is not None
        candidates = reader.candidates(emails=["p3@x.com", "p4@x.com"], nos=["C00002"])
        assert [c.no for c in candidates or []] == ["C00002", "C00004"]
        assert [p.record for p in reader.problems()] == ["C00003", "C00003"]


def test_an_update_of_a_row_with_a_garbage_row_version_is_refused(erp_file: Path) -> None:
    _corrupt(erp_file, "UPDATE erp_customer SET row_version = 'abc' WHERE no = 'C00003'")
    with open_writer(f"sqlite:///{erp_file}") as writer:
        result = writer.update_customer("C00003", {"city": "Lyon"})
    assert not result.ok
    assert result.message == "customer C00003 has a row_version that is not an integer"


def test_the_rows_of_a_failing_batch_are_read_once_in_order(tmp_path: Path) -> None:
    """A value the driver cannot convert fails its whole streamed batch: the rest is read by
    key, neither lost nor read twice."""
    path = tmp_path / "erp.db"
    url = f"sqlite:///{path}"
    _load(url, 1300)
    _corrupt(path, "UPDATE erp_customer SET modified_at = 'soon' WHERE no = 'C00700'")
    _corrupt(path, "UPDATE erp_customer SET email = CAST(x'c3' AS TEXT) WHERE no = 'C00701'")
    _corrupt(path, "UPDATE erp_customer SET tax_liable = 2 WHERE no = 'C01200'")

    nos, problems = _read(url)

    bad = {"C00700", "C00701", "C01200"}
    assert nos == [f"C{i:05d}" for i in range(1, 1301) if f"C{i:05d}" not in bad]
    assert [(record, message.split(";")[0]) for record, _, message in problems] == [
        ("C00700", "column modified_at is not a date-time"),
        ("C00701", "column email is not valid UTF-8 text"),
        ("C01200", "column tax_liable is not a boolean (0 or 1)"),
    ]


def test_an_unreadable_number_is_located_by_rowid(erp_file: Path) -> None:
    _corrupt(erp_file, "UPDATE erp_customer SET no = CAST(x'43ff' AS TEXT) WHERE no = 'C00002'")

    nos, problems = _read(f"sqlite:///{erp_file}")

    assert nos == ["C00001", "C00003", "C00004", "C00005"]
    [(record, location, message)] = problems
    assert record == ""  # no key: plan shows a warning instead of a skip
    assert location == "erp_customer rowid 2"
    assert message.startswith("column no is not valid UTF-8 text;")


def test_a_changed_since_read_reports_a_changed_unreadable_row(erp_file: Path) -> None:
    _corrupt(erp_file, "UPDATE erp_customer SET modified_at = '9999-99-99' WHERE no = 'C00005'")
    url = f"sqlite:///{erp_file}"
    with open_reader(url) as reader:
        first = max(c.modified_at for c in reader.iter_customers() if c.modified_at)

    nos, problems = _read(url, changed_since=first)

    assert nos == []
    assert [record for record, _, _ in problems] == ["C00005"]


def test_an_out_of_range_timestamp_is_reported_on_both_backends(db_url: str) -> None:
    """PostgreSQL enforces the types, but ``infinity`` is a timestamp Python cannot hold."""
    _load(db_url, 3)
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE erp_customer SET modified_at = 'infinity' WHERE no = 'C00002'")
            )
    finally:
        engine.dispose()

    nos, problems = _read(db_url)

    assert nos == ["C00001", "C00003"]
    assert problems == [
        (
            "C00002",
            "erp_customer C00002",
            "column modified_at is not a date-time; skipped until it is corrected",
        )
    ]


def test_reading_all_rows_is_unchanged_on_both_backends(db_url: str) -> None:
    _load(db_url, 3)
    with open_reader(db_url) as reader:
        assert isinstance(reader, SqlErpReader)
        customers = list(reader.iter_customers())
        assert reader.problems() == ()
    assert [c.no for c in customers] == ["C00001", "C00002", "C00003"]
    first = customers[0]
    assert (first.name, first.email, first.etag) == ("Person 1", "p1@x.com", "1")
    assert [c.extra["tax_liable"] for c in customers] == [False, True, False]
    assert first.extra["customer_posting_group"] == "DOMESTIC"
    assert list(first.extra) == list(ERP_TEMPLATE_FIELDS)
    assert first.modified_at is not None and first.modified_at.utcoffset() is not None


def test_plan_and_sync_skip_the_unreadable_customer(
    tmp_path: Path, shopify_double: ShopifyDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    erp_path = tmp_path / "erp.db"
    erp_url = f"sqlite:///{erp_path}"
    make_erp(
        erp_url,
        [
            ErpCustomer(no="C00001", name="Ann Doe", email="ann@example.com", country_code="US"),
            ErpCustomer(no="C00002", name="Bob Doe", email="bob@example.com", country_code="US"),
        ],
    )
    _corrupt(erp_path, "UPDATE erp_customer SET modified_at = 'yesterday' WHERE no = 'C00002'")
    config = str(
        write_config(
            tmp_path,
            shop_url=shopify_double.url,
            erp_url=erp_url,
            state_url=f"sqlite:///{tmp_path / 'state.db'}",
            settings=EXPORT_SETTINGS,
            token=shopify_double.token,
        )
    )

    assert main(["plan", "-c", config, "-o", "json"]) == exitcodes.OK
    decisions = {d["record"]: d for d in json.loads(capsys.readouterr().out)["decisions"]}
    assert (decisions["C00002"]["action"], decisions["C00002"]["reason_code"]) == (
        "skip",
        "bad-record",
    )
    assert "column modified_at is not a date-time" in decisions["C00002"]["message"]
    assert decisions["C00001"]["action"] == "create"

    code = main(["sync", "-c", config, "--no-progress", "--direction", "export"])

    assert code in (exitcodes.OK, exitcodes.PARTIAL)  # the run is not stopped by the row
    assert [c["email"] for c in shopify_double.store.customers()] == ["ann@example.com"]
