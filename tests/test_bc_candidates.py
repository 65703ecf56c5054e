"""The BC connector's candidate look-up (``ErpCandidateReader``) over HTTP to the BC double:
e-mails ignoring case through ``tolower(email)``, several look-ups per request joined by
``or`` on one field, quotes in literals, phone suffix keys through the phone index, and the
fallback to a full read when BC refuses the e-mail filter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from custsync.connectors.bc_double import BcDouble, Fault
from custsync.engine.ports import ErpCandidateReader

from bc_world import open_bc
from fixtures_bc import bc_company, bc_token


def _customer_filters(double: BcDouble, since: int) -> list[str]:
    """The ``$filter`` of each customers request after request number ``since``."""
    return [
        r.params.get("$filter", "")
        for r in double.requests[since:]
        if r.target == "customers" and r.method == "GET"
    ]


def _patch_phone(double: BcDouble, number: str, phone: str) -> None:
    """Another user changes a customer's phone in BC."""
    token = bc_token(double)
    url = double.company_url(bc_company(double).id) + "/customers"
    with httpx.Client(trust_env=False) as http:
        found = http.get(
            url,
            params={"$filter": f"number eq '{number}'"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["value"][0]
        answer = http.patch(
            f"{url}({found['id']})",
            json={"phoneNumber": phone},
            headers={"Authorization": f"Bearer {token}", "If-Match": found["@odata.etag"]},
        )
        assert answer.status_code == 200, answer.text


def _world(writer: Any) -> dict[str, str]:
    """Customers with e-mails in several cases and phones in several forms: name -> no."""
    people = {
        "Ann Upper": {"email": "Ann.Lee@Example.com", "phone": "+31 6 1234 5678"},
        "Ann Lower": {"email": "ann.lee@example.com"},
        "Pat O'Brien": {"email": "pat.o'brien@example.com", "phone": "(415)555-0123"},
        "Bo Plain": {"email": "bo@example.com", "phone": "+14155550199", "post_code": "9999 zz"},
    }
    numbers = {}
    for name, fields in people.items():
        result = writer.create_customer({"name": name, **fields}, None, f"main:{name}")
        assert result.ok, result.message
        numbers[name] = result.no
    return numbers


def test_candidates_by_email_ignoring_case_in_one_request(
    bc_double: BcDouble, tmp_path: Path
) -> None:
    with open_bc(bc_double, tmp_path) as reader:
        assert isinstance(reader, ErpCandidateReader)
        nos = _world(reader)
        since = len(bc_double.requests)
        found = reader.candidates(
            emails=["ANN.LEE@example.COM", "Pat.O'Brien@Example.com", "nobody@example.com"]
        )
        assert found is not None
        # both Ann Lees (BC holds one in mixed case), the quote doubled in the literal
        assert [c.no for c in found] == sorted(
            [nos["Ann Upper"], nos["Ann Lower"], nos["Pat O'Brien"]]
        )
        assert found[0].email in ("Ann.Lee@Example.com", "ann.lee@example.com")
        filters = _customer_filters(bc_double, since)
        assert filters == [
            "tolower(email) eq 'ann.lee@example.com' or tolower(email) eq 'nobody@example.com'"
            " or tolower(email) eq 'pat.o''brien@example.com'"
        ]
        # the Customer Card rows of the candidates come with them (Name 2, Contact)
        assert all(c.extra.get("customer_posting_group") is not None for c in found)


def test_many_emails_go_twenty_to_a_request(bc_double: BcDouble, tmp_path: Path) -> None:
    with open_bc(bc_double, tmp_path) as reader:
        since = len(bc_double.requests)
        found = reader.candidates(emails=[f"p{i}@example.com" for i in range(45)])
        assert found == []
        filters = _customer_filters(bc_double, since)
        assert [f.count(" or ") + 1 for f in filters] == [20, 20, 5]


def test_candidates_by_phone_key_post_code_and_number(bc_double: BcDouble, tmp_path: Path) -> None:
    with open_bc(bc_double, tmp_path, modified_overlap_seconds=0) as reader:
        nos = _world(reader)
        since = len(bc_double.requests)
        # the last six digits across separators: "(415)555-0123" and "+31 6 1234 5678"
        found = reader.candidates(phone_keys=["550123", "345678"])
        assert found is not None
        assert [c.no for c in found] == sorted([nos["Pat O'Brien"], nos["Ann Upper"]])
        index_reads = [f for f in _customer_filters(bc_double, since) if "number eq" not in f]
        assert index_reads == [""]  # the first look-up reads every number and phone once
        # a phone changed in BC since: only the modified customers are read again
        _patch_phone(bc_double, nos["Bo Plain"], "+1 415 555 0123")
        since = len(bc_double.requests)
        found = reader.candidates(phone_keys=["550123"])
        assert found is not None
        assert [c.no for c in found] == sorted([nos["Pat O'Brien"], nos["Bo Plain"]])
        refresh = _customer_filters(bc_double, since)[0]
        assert refresh.startswith("lastModifiedDateTime gt ")
        assert reader.candidates(phone_keys=["550199"]) == []  # its old number is gone
        # post codes (a Code field: BC keeps it upper-case) and numbers
        found = reader.candidates(post_codes=["9999 zz"], nos=[nos["Ann Lower"], "NOPE"])
        assert found is not None
        assert [c.no for c in found] == sorted([nos["Bo Plain"], nos["Ann Lower"]])
        assert reader.candidates() == []


def test_a_refused_email_filter_falls_back_to_a_full_read(
    bc_double_factory: Callable[..., BcDouble], tmp_path: Path
) -> None:
    double = bc_double_factory()
    with open_bc(double, tmp_path) as reader:
        reader.reference()  # company and codes read before the fault
        double.inject(Fault("status", status=400, target="customers", method="GET"))
        assert reader.candidates(emails=["robert.townes@contoso.com"]) is None
        since = len(double.requests)
        assert reader.candidates(emails=["helen.ray@contoso.com"]) is None  # not asked again
        assert _customer_filters(double, since) == []
        # look-ups without e-mails still work
        found = reader.candidates(nos=["C00020"])
        assert [c.no for c in found or []] == ["C00020"]


def test_or_across_fields_is_never_sent(bc_double: BcDouble, tmp_path: Path) -> None:
    """BC refuses ``or`` over two fields (the double too): each request filters one field."""
    with open_bc(bc_double, tmp_path) as reader:
        since = len(bc_double.requests)
        reader.candidates(
            emails=["robert.townes@contoso.com"],
            phone_keys=["550100"],
            post_codes=["61236"],
            nos=["C00030"],
        )
        for filter_ in _customer_filters(bc_double, since):
            fields = {part.split(" eq ")[0] for part in filter_.split(" or ") if " eq " in part}
            assert len(fields) <= 1, filter_
        statuses = {r.status for r in bc_double.requests[since:]}
        assert statuses == {200}
