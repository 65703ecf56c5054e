"""The SQL ERP connector on real SQLite files and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from custsync.connectors import erp_sql
from custsync.connectors.erp_sql import SqlErpReader, SqlErpWriter, open_reader, open_writer
from custsync.engine import registry
from custsync.engine.errors import ConfigError
from custsync.engine.model import Country
from custsync.engine.ports import ErpReader, ErpWriter

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def erp(db_url: str, clock: Clock) -> Iterator[SqlErpWriter]:
    with open_writer(db_url, create=True, clock=clock) as writer:
        assert isinstance(writer, SqlErpWriter)
        writer.initialize(with_defaults=True, company_name="Cronus", company_country="US")
        yield writer


def _create(erp: SqlErpWriter, key: str = "", template: str | None = "DEFAULT", **fields: object):
    return erp.create_customer(fields, template, key)


# ---- schema and reference data -------------------------------------------------------------


def test_writer_and_reader_implement_the_ports(erp: SqlErpWriter, db_url: str) -> None:
    assert isinstance(erp, ErpWriter)
    with open_reader(db_url) as reader:
        assert isinstance(reader, ErpReader)
        assert not isinstance(reader, ErpWriter)
        assert not hasattr(reader, "create_customer")


def test_init_is_idempotent_and_seeds_reference_data(erp: SqlErpWriter, db_url: str) -> None:
    again = open_writer(db_url, create=True)
    report = again.initialize(with_defaults=True)
    again.close()
    assert report.countries_added == 0 and not report.template_added
    reference = erp.reference()
    assert Country("EL", "GR", "Greece") in reference.countries
    assert [c.code for c in reference.countries] == sorted(c.code for c in reference.countries)
    assert (reference.company.name, reference.company.country_code) == ("Cronus", "US")
    (template,) = reference.templates
    assert template.code == "DEFAULT"
    assert template.fields["customer_posting_group"] == "DOMESTIC"
    assert "tax_liable" not in template.fields  # only set defaults are listed


def test_missing_schema_and_missing_file_are_config_errors(tmp_path: Path, db_url: str) -> None:
    with pytest.raises(ConfigError, match=r"nope\.db does not exist: run `custsync erp init"):
        open_reader(f"sqlite:///{tmp_path / 'nope.db'}")
    (tmp_path / "test.db").touch()  # an empty SQLite file (the sqlite db_url)
    with pytest.raises(ConfigError, match="has no custsync schema: run `custsync erp init"):
        open_writer(db_url)


def test_found_through_the_registry(erp: SqlErpWriter, db_url: str) -> None:
    reader = registry.open_erp_reader(db_url)
    try:
        assert isinstance(reader, SqlErpReader)
        assert reader.get_customer("nope") is None
    finally:
        reader.close()


# ---- create ----------------------------------------------------------------------------------


def test_create_applies_template_then_fields_with_numbers_from_the_series(
    erp: SqlErpWriter,
) -> None:
    first = _create(erp, "gid://shopify/Customer/1", name="Jane Doe", vat_bus_posting_group="EU")
    second = _create(erp, "gid://shopify/Customer/2", name="John Roe")
    assert (first.ok, first.no, first.etag) == (True, "C00001", "1")
    assert second.no == "C00002"
    jane = erp.get_customer("C00001")
    assert jane is not None
    assert jane.name == "Jane Doe"
    assert jane.get("customer_posting_group") == "DOMESTIC"  # from the template
    assert jane.get("vat_bus_posting_group") == "EU"  # the given field wins
    assert jane.get("payment_terms_code") == "14 DAYS"
    assert jane.get("tax_liable") is False
    assert jane.modified_at is not None and jane.modified_at.tzinfo is not None
    assert jane.etag == "1"


def test_create_is_idempotent_by_key(erp: SqlErpWriter) -> None:
    first = _create(erp, "gid://shopify/Customer/7", name="Jane")
    again = _create(erp, "gid://shopify/Customer/7", name="Jane again")
    assert again.ok and again.no == first.no and "already created" in again.message
    assert erp.count_customers() == 1
    found = erp.find_by_idempotency_key("gid://shopify/Customer/7")
    assert found is not None and found.name == "Jane"
    assert erp.find_by_idempotency_key("gid://shopify/Customer/8") is None


@pytest.mark.parametrize(
    ("fields", "template", "message"),
    [
        ({"name": "x" * 101}, "DEFAULT", "name: too long (101 characters, max 100)"),
        ({"email": "a" * 81}, "DEFAULT", "email: too long (81 characters, max 80)"),
        ({"name": "Jane"}, "NOPE", "unknown customer template 'NOPE'"),
        ({"colour": "red"}, "DEFAULT", "unknown customer field(s): colour"),
        ({"country_code": "XX"}, "DEFAULT", "unknown country/region code 'XX'"),
        ({"tax_liable": "maybe"}, None, "tax_liable: not a boolean"),
        ({"name": ["a"]}, None, "name: must be text"),
    ],
)
def test_create_refusals_are_per_record_results(
    erp: SqlErpWriter, fields: dict[str, object], template: str, message: str
) -> None:
    result = erp.create_customer(fields, template, "k")
    assert not result.ok and message in result.message
    assert erp.count_customers() == 0
    # the refused create did not use up a number
    assert _create(erp, name="ok").no == "C00001"


def test_explicit_numbers_and_series_skip_taken_numbers(erp: SqlErpWriter) -> None:
    assert _create(erp, no="C00002", name="taken").no == "C00002"
    duplicate = _create(erp, no="C00002", name="again")
    assert not duplicate.ok and "already exists" in duplicate.message
    assert [_create(erp, name=str(i)).no for i in range(2)] == ["C00001", "C00003"]


def test_series_skips_long_stretches_of_loaded_numbers(erp: SqlErpWriter) -> None:
    """Customers loaded with numbers C00001..C02500 (erp load, the demo): the next create
    is C02501; it was 'no free number found' (one taken number skipped per try, 1000 tries)."""
    rows = [(line, {"no": f"C{line:05d}", "name": f"loaded {line}"}) for line in range(1, 2501)]
    rows.append((2501, {"no": "C02503", "name": "beyond a gap"}))
    assert erp.load("customers", rows).inserted == 2501
    created = [_create(erp, f"gid://shopify/Customer/{i}", name=f"new {i}") for i in range(3)]
    assert [(r.ok, r.no) for r in created] == [(True, "C02501"), (True, "C02502"), (True, "C02504")]
    # numbers looked at but not handed out stay free: a blank-numbered load row gets the next
    report = erp.load("customers", [(2, {"no": "", "name": "from a file"})])
    assert report.inserted == 1
    assert erp.count_customers() == 2505
    assert erp.get_customer("C02505") is not None and erp.get_customer("C02506") is None


def test_customer_numbers_are_codes_trimmed_and_upper_case(erp: SqlErpWriter) -> None:
    """G001, g001 and " G001 " loaded as three customers (issue 10 item 12); Business
    Central's Code fields store them as one number, G001."""
    rows = [(2, {"no": "G001", "name": "a"}), (3, {"no": "g001", "name": "b"})]
    rows.append((4, {"no": " G001 ", "name": "c"}))
    report = erp.load("customers", rows)
    assert report.inserted == 0
    assert [(p.line, p.column, p.message) for p in report.problems] == [
        (3, "no", "customer G001 is also on line 2"),
        (4, "no", "customer G001 is also on line 2"),
    ]
    assert erp.load("customers", [(2, {"no": " g002 ", "name": "d"})]).inserted == 1
    report = erp.load("customers", [(2, {"no": "G002", "name": "e"})])
    assert [p.message for p in report.problems] == [
        "customer G002 already exists (use --update to update it)"
    ]
    assert erp.load("customers", [(2, {"no": "g002", "name": "e"})], update=True).updated == 1
    stored = erp.get_customer("G002")
    assert stored is not None and stored.name == "e"
    assert erp.count_customers() == 1
    created = _create(erp, "k-g003", no=" g003", name="f")
    assert created.ok and created.no == "G003"
    report = erp.load("countries", [(2, {"code": " de ", "iso_code": "DE", "name": "x"})])
    assert [p.message for p in report.problems] == [
        "country DE already exists (use --update to update it)"
    ]


def test_number_series_is_configurable(db_url: str) -> None:
    with open_writer(db_url, create=True) as writer:
        writer.initialize(number_prefix="K-", number_width=3)
        assert writer.create_customer({"name": "a"}, None, "").no == "K-001"


def test_concurrent_creates_never_collide(erp: SqlErpWriter, db_url: str) -> None:
    numbers: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        with open_writer(db_url) as writer:  # its own engine and connections
            for n in range(8):
                result = writer.create_customer({"name": f"{index}-{n}"}, "DEFAULT", f"{index}-{n}")
                with lock:
                    (numbers if result.ok else errors).append(result.no or result.message)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == [f"C{i:05d}" for i in range(1, 33)]


_CREATE_SCRIPT = """
import sys
from custsync.connectors.erp_sql import open_writer
writer = open_writer(sys.argv[1])
for n in range(15):
    result = writer.create_customer({"name": sys.argv[2]}, None, f"{sys.argv[2]}-{n}")
    assert result.ok, result.message
    print(result.no)
"""


def test_concurrent_creates_from_two_processes_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    with open_writer(url, create=True) as writer:
        writer.initialize()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATE_SCRIPT, url, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers += out.split()
    assert sorted(numbers) == [f"C{i:05d}" for i in range(1, 31)]


# ---- update ----------------------------------------------------------------------------------


def test_update_writes_only_changes_and_bumps_the_etag(erp: SqlErpWriter, clock: Clock) -> None:
    _create(erp, name="Jane", city="Paris", phone="123")
    before = erp.get_customer("C00001")
    assert before is not None
    result = erp.update_customer("C00001", {"city": "Lyon"}, expected_etag=before.etag)
    assert (result.ok, result.etag) == (True, "2")
    after = erp.get_customer("C00001")
    assert after is not None
    assert (after.city, after.name, after.phone) == ("Lyon", "Jane", "123")
    assert after.get("customer_posting_group") == "DOMESTIC"
    assert after.modified_at is not None and before.modified_at is not None
    assert after.modified_at > before.modified_at


def test_update_with_a_stale_etag_is_refused(erp: SqlErpWriter) -> None:
    _create(erp, name="Jane")
    assert erp.update_customer("C00001", {"city": "Lyon"}).ok  # no etag: last write wins
    stale = erp.update_customer("C00001", {"city": "Nice"}, expected_etag="1")
    assert not stale.ok
    assert stale.message == (
        "customer C00001 was changed in the ERP since it was read (etag 2, expected 1)"
    )
    customer = erp.get_customer("C00001")
    assert customer is not None and customer.city == "Lyon" and customer.etag == "2"


@pytest.mark.parametrize(
    ("no", "changes", "message"),
    [
        ("C99999", {"city": "x"}, "customer C99999 does not exist"),
        ("C00001", {"no": "C2"}, "the customer number cannot be changed"),
        ("C00001", {"city": "x" * 31}, "city: too long (31 characters, max 30)"),
        ("C00001", {"country_code": "ZZ"}, "unknown country/region code 'ZZ'"),
    ],
)
def test_update_refusals(erp: SqlErpWriter, no: str, changes: dict[str, str], message: str) -> None:
    _create(erp, name="Jane")
    result = erp.update_customer(no, changes)
    assert not result.ok and message in result.message


def test_update_without_changes_writes_nothing(erp: SqlErpWriter) -> None:
    _create(erp, name="Jane")
    result = erp.update_customer("C00001", {}, expected_etag="1")
    assert (result.ok, result.etag) == (True, "1")


# ---- reading ---------------------------------------------------------------------------------


def test_iter_customers_in_number_order_and_changed_since(
    erp: SqlErpWriter, clock: Clock, db_url: str
) -> None:
    for no in ("C00003", "C00001", "C00002"):
        _create(erp, no=no, name=no)
    cut = clock.now
    erp.update_customer("C00001", {"city": "Lyon"})
    with open_reader(db_url) as reader:
        assert [c.no for c in reader.iter_customers()] == ["C00001", "C00002", "C00003"]
        assert [c.no for c in reader.iter_customers(changed_since=cut)] == ["C00001"]
        assert list(reader.iter_customers(changed_since=clock.now + timedelta(days=1))) == []
        with pytest.raises(ValueError, match="timezone-aware"):
            list(reader.iter_customers(changed_since=datetime(2026, 1, 1)))


def test_streaming_many_customers(erp: SqlErpWriter) -> None:
    rows = [erp_sql.LoadRow(i + 2, {"name": f"n{i}"}) for i in range(1200)]
    assert erp.load("customers", rows).inserted == 1200
    seen = [c.no for c in erp.iter_customers()]
    assert len(seen) == 1200 and seen == sorted(seen)


def test_sqlite_reader_is_read_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    with open_writer(url, create=True) as writer:
        writer.initialize()
        writer.create_customer({"name": "Jane"}, None, "")
    with open_reader(url) as reader:
        assert reader.get_customer("C00001") is not None
        engine = reader._engine
        with pytest.raises(sa.exc.OperationalError, match="readonly"), engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM erp_customer")


def test_load_streams_in_batches_and_stays_all_or_nothing(erp: SqlErpWriter) -> None:
    """`erp load` of a million rows holds a batch, not the file: rows are consumed lazily,
    checked and written a batch at a time in one transaction. Duplicates across batches are
    still found, a problem in the last batch still leaves nothing written, and rows without
    a number are numbered after every number the file gives (the series skips them)."""
    from custsync.engine.ports import LoadRowProblem

    consumed: list[int] = []

    def rows(count: int, last: dict[str, str] | None = None) -> Iterator[object]:
        for line in range(2, count + 2):
            consumed.append(line)
            yield (line, {"no": f"C{line:05d}", "name": f"row {line}"})
        if last is not None:
            yield (count + 2, last)

    counted: list[int] = []
    bad = erp.load(
        "customers",
        rows(25, {"no": "C00003", "name": "again"}),
        batch_size=10,
        on_rows=counted.append,
    )
    assert [(p.line, p.message) for p in bad.problems] == [
        (27, "customer C00003 is also on line 3")
    ]
    assert (bad.inserted, erp.count_customers()) == (0, 0)  # the first two batches rolled back
    assert sum(counted) == 26

    # a malformed row the file's reader found refuses the load the same way
    def with_problem() -> Iterator[object]:
        yield from rows(12)
        yield LoadRowProblem(14, "", "row has 2 values, the header has 3")

    refused = erp.load("customers", with_problem(), batch_size=5)
    assert [(p.line, p.message) for p in refused.problems] == [
        (14, "row has 2 values, the header has 3")
    ]
    assert erp.count_customers() == 0

    consumed.clear()
    mixed = (
        (2, {"no": "", "name": "blank first"}),
        *((line, {"no": f"C{line - 2:05d}", "name": f"row {line}"}) for line in range(3, 30)),
    )
    report = erp.load("customers", iter(mixed), batch_size=4)
    assert report.problems == [] and report.inserted == 28
    # C00001..C00027 came from the file; the blank row, first in the file, got the next one
    assert erp.get_customer("C00028") is not None
    assert erp.get_customer("C00028").name == "blank first"  # type: ignore[union-attr]
