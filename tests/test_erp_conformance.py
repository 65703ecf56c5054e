"""One conformance suite for every ERP connector that writes: the SQL connector on SQLite and
PostgreSQL, and the Business Central connector against the BC double over loopback.

Each backend gives a writer plus what differs between ERPs (a template and a value it sets,
a change made by "another user", a record the ERP refuses); the tests are the same. (The
files connector only reads ERP data: ``open_writer`` refuses, so it has no place here; its
reading is tested in test_files_connector.py.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors import erp_sql
from custsync.connectors.bc_double import BcDouble
from custsync.connectors.business_central import CreateItem
from custsync.engine.decide.phones import suffix_keys
from custsync.engine.ports import ErpCandidateReader, ErpReader, ErpWriter, ErpWriteResult

from bc_world import open_bc


@dataclass
class Backend:
    name: str
    writer: Any
    reopen: Callable[[], Any]  # a second writer on the same ERP (another process, a resumed run)
    template: str
    template_field: str
    template_value: Any
    country: tuple[str, str]  # an ERP country code and its ISO code
    #: fields of one customer the ERP refuses, and a word of its message
    refused: tuple[dict[str, Any], str]


def _sql_backend(url: str) -> Iterator[Backend]:
    writer = erp_sql.open_writer(url, create=True)
    writer.initialize(with_defaults=True, company_name="Cronus", company_country="US")
    others: list[Any] = []

    def reopen() -> Any:
        others.append(erp_sql.open_writer(url))
        return others[-1]

    try:
        yield Backend(
            "sql",
            writer,
            reopen,
            "DEFAULT",
            "customer_posting_group",
            "DOMESTIC",
            ("EL", "GR"),
            ({"name": "N" * 101}, "too long"),
        )
    finally:
        for other in others:
            other.close()
        writer.close()


def _bc_backend(double: BcDouble, tmp_path: Path) -> Iterator[Backend]:
    # a page size of 3: every listing below spans several pages
    writer = open_bc(double, tmp_path, page_size=3, modified_overlap_seconds=0)
    others: list[Any] = []

    def reopen() -> Any:
        others.append(open_bc(double, tmp_path, page_size=3, modified_overlap_seconds=0))
        return others[-1]

    try:
        yield Backend(
            "bc",
            writer,
            reopen,
            "US-RETAIL",
            "payment_method_code",
            "CARD",
            ("EL", "GR"),
            ({"name": "Letters", "phone": "call me"}, "must not contain letters"),
        )
    finally:
        for other in others:
            other.close()
        writer.close()


@pytest.fixture(params=["sqlite", "postgres", "bc"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield from _sql_backend(f"sqlite:///{tmp_path / 'erp.db'}")
    elif request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        yield from _sql_backend(str(request.getfixturevalue("pg_url")))
    else:
        double = request.getfixturevalue("bc_double_factory")(seed=_empty_world())
        yield from _bc_backend(double, tmp_path)


def _empty_world() -> dict[str, Any]:
    """The default BC world without its customers."""
    from custsync.connectors.bc_double import DEFAULT_WORLD

    companies = [{**c, "customers": []} for c in DEFAULT_WORLD["companies"]]
    return {**DEFAULT_WORLD, "companies": companies}


def _create(backend: Backend, key: str, **fields: Any) -> ErpWriteResult:
    result = backend.writer.create_customer(fields, backend.template, key)
    assert result.ok, result.message
    return result


class TestErpConformance:
    def test_implements_the_ports(self, backend: Backend) -> None:
        assert isinstance(backend.writer, ErpWriter) and isinstance(backend.writer, ErpReader)

    def test_create_with_template_takes_a_number_from_the_series(self, backend: Backend) -> None:
        first = _create(backend, "main:1", name="Ann Lee", email="ann@example.com", city="Oslo")
        second = _create(backend, "main:2", name="Bob Ray", country_code=backend.country[0])
        assert first.no and second.no and first.no != second.no
        customer = backend.writer.get_customer(first.no)
        assert customer is not None
        assert (customer.name, customer.email, customer.city) == (
            "Ann Lee",
            "ann@example.com",
            "Oslo",
        )
        assert customer.get(backend.template_field) == backend.template_value
        assert customer.etag == first.etag and customer.modified_at is not None
        assert backend.writer.get_customer("NOPE-404") is None

    def test_update_refuses_a_stale_etag(self, backend: Backend) -> None:
        created = _create(backend, "main:1", name="Ann Lee")
        other = backend.reopen()  # another user changes the customer
        assert other.update_customer(created.no, {"city": "Bergen"}).ok
        stale = backend.writer.update_customer(created.no, {"city": "Oslo"}, created.etag)
        assert not stale.ok and "changed" in stale.message and "since it was read" in stale.message
        current = backend.writer.get_customer(created.no)
        assert current is not None and current.city == "Bergen"
        fresh = backend.writer.update_customer(created.no, {"city": "Oslo"}, current.etag)
        assert fresh.ok and fresh.etag not in (None, current.etag)
        after = backend.writer.get_customer(created.no)
        assert after is not None and after.city == "Oslo" and after.name == "Ann Lee"

    def test_create_is_idempotent_by_key(self, backend: Backend) -> None:
        created = _create(backend, "main:gid/1", name="Ann Lee", email="ann@example.com")
        again = _create(backend, "main:gid/1", name="Ann Lee", email="ann@example.com")
        resumed = backend.reopen().create_customer(
            {"name": "Ann Lee", "email": "ann@example.com"}, backend.template, "main:gid/1"
        )
        assert again.no == created.no and resumed.ok and resumed.no == created.no
        found = backend.reopen().find_by_idempotency_key("main:gid/1")
        assert found is not None and found.no == created.no
        assert backend.writer.find_by_idempotency_key("main:gid/unknown") is None
        assert [c.email for c in backend.writer.iter_customers()].count("ann@example.com") == 1

    def test_iter_customers_in_number_order_and_changed_since(self, backend: Backend) -> None:
        numbers = [_create(backend, f"main:{i}", name=f"Person {i}").no for i in range(7)]
        customers = list(backend.writer.iter_customers())
        assert [c.no for c in customers] == sorted(numbers)
        cut = next(c for c in customers if c.no == numbers[3]).modified_at
        assert cut is not None
        changed = list(backend.writer.iter_customers(changed_since=cut))
        expected = [c.no for c in customers if c.modified_at is not None and c.modified_at > cut]
        assert [c.no for c in changed] == expected
        assert numbers[-1] in expected and numbers[0] not in expected

    def test_reference_data(self, backend: Backend) -> None:
        reference = backend.writer.reference()
        code, iso = backend.country
        assert any(c.code == code and c.iso_code == iso for c in reference.countries)
        assert reference.company.name and reference.company.country_code == "US"
        template = next(t for t in reference.templates if t.code == backend.template)
        assert template.fields[backend.template_field] == backend.template_value

    def test_a_refused_record_fails_alone(self, backend: Backend) -> None:
        fields, word = backend.refused
        results = [
            backend.writer.create_customer({"name": "Good One"}, backend.template, "main:a"),
            backend.writer.create_customer(fields, backend.template, "main:b"),
            backend.writer.create_customer({"name": "Good Two"}, backend.template, "main:c"),
        ]
        assert [r.ok for r in results] == [True, False, True]
        assert word in results[1].message
        assert backend.writer.find_by_idempotency_key("main:b") is None
        unknown = backend.writer.create_customer({"name": "X"}, "NO-SUCH-TEMPLATE", "main:d")
        assert not unknown.ok and "NO-SUCH-TEMPLATE" in unknown.message


class TestErpCandidates:
    """``ErpCandidateReader``: the customers an incremental run's changes can match are the
    ones a full read would match (e-mail ignoring case, phone suffix keys, numbers)."""

    def test_candidates_are_what_a_full_read_would_match(self, backend: Backend) -> None:
        people = [
            ("Ann Upper", "Ann.Lee@Example.com", "+31 6 1234 5678"),
            ("Ann Lower", "ann.lee@example.com", ""),
            ("Pat O'Brien", "pat.o'brien@example.com", "(415)555-0123"),
            ("Bo Plain", "bo@example.com", "+14155550199"),
            ("Cy Other", "cy@example.com", "+1 212 555 0100"),
        ]
        nos = {
            name: _create(backend, f"main:{name}", name=name, email=email, phone=phone).no
            for name, email, phone in people
        }
        assert isinstance(backend.writer, ErpCandidateReader)
        emails = ["ANN.LEE@example.COM", "Pat.O'Brien@Example.com", "nobody@example.com"]
        keys = sorted(suffix_keys("+1 415 555 0199"))
        wanted_nos = [nos["Cy Other"]]
        found = backend.reopen().candidates(emails=emails, phone_keys=keys, nos=wanted_nos)
        assert found is not None
        folded = {e.casefold() for e in emails}
        expected = [
            c.no
            for c in backend.writer.iter_customers()
            if c.email.casefold() in folded
            or suffix_keys(c.phone) & set(keys)
            or c.no in wanted_nos
        ]
        assert [c.no for c in found] == expected == sorted(
            nos[n] for n in ("Ann Upper", "Ann Lower", "Pat O'Brien", "Bo Plain", "Cy Other")
        )
        assert backend.writer.candidates(emails=["nobody@example.com"]) == []


def test_bc_batch_creates_in_few_requests(bc_double: BcDouble, tmp_path: Path) -> None:
    """BC only: many creates go in JSON $batch requests of up to 100."""
    with open_bc(bc_double, tmp_path, pages={}) as writer:
        before = len(bc_double.requests)
        items = [CreateItem(f"main:{i}", {"name": f"Batch {i}"}) for i in range(150)]
        results = list(writer.create_customers(items))
        sent = bc_double.requests[before:]
    assert all(r.ok for r in results) and len({r.no for r in results}) == 150
    assert sum(1 for r in sent if r.target == "$batch") == 2
    assert len(sent) <= 5
