"""Tax area and VAT from Business Central's customers API: in a sales-tax country
``taxAreaId`` is the customer's Tax Area; in a VAT country (BC's General Ledger Setup uses VAT)
the API's ``taxAreas`` lists VAT Bus. Posting Groups (``taxType`` VAT) and ``taxAreaId``
points to one, so the connector reads it as ``vat_bus_posting_group``, not as a tax area."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from custsync.connectors.bc_double import DEFAULT_WORLD, BcDouble

from bc_world import COMPANY, open_bc


def _vat_world() -> dict[str, Any]:
    """The default world's company in a VAT country: its taxAreas are VAT groups."""
    (company,) = DEFAULT_WORLD["companies"]
    customers = [
        {**c, "vatBusPostingGroup": group, "taxAreaCode": ""}
        for c, group in zip(company["customers"], ("DOMESTIC", "EU", "EXPORT"), strict=True)
    ]
    vat = {
        **company,
        "uses_vat": True,
        "taxAreas": [
            {"code": code, "displayName": name, "taxType": "VAT"}
            for code, name in (("DOMESTIC", "Domestic"), ("EU", "EU"), ("EXPORT", "Export"))
        ],
        "customers": customers,
    }
    return {"companies": [vat]}


def test_sales_tax_company_reads_the_tax_area(bc_double: BcDouble, tmp_path: Path) -> None:
    with open_bc(bc_double, tmp_path, pages={}) as reader:
        customer = reader.get_customer("C00010")
    assert customer is not None
    assert customer.extra["tax_area_code"] == "NOTAX"
    assert "vat_bus_posting_group" not in customer.extra  # only the Customer Card has it there


def test_vat_company_reads_the_vat_group_from_tax_area_id(
    bc_double_factory: Callable[..., BcDouble], tmp_path: Path
) -> None:
    double = bc_double_factory(seed=_vat_world())
    # without the Customer Card: from the API alone
    with open_bc(double, tmp_path, pages={}, company=COMPANY) as reader:
        customers = {c.no: c for c in reader.iter_customers()}
    assert [customers[no].extra.get("vat_bus_posting_group") for no in sorted(customers)] == [
        "DOMESTIC",
        "EU",
        "EXPORT",
    ]
    assert all("tax_area_code" not in c.extra for c in customers.values())
    # with the card, its VAT Bus. Posting Group and Tax Area Code are read as they are
    with open_bc(double, tmp_path) as reader:
        card = reader.get_customer("C00020")
    assert card is not None
    assert (card.extra["vat_bus_posting_group"], card.extra["tax_area_code"]) == ("EU", "")


def test_vat_company_writes_the_vat_group_through_tax_area_id(
    bc_double_factory: Callable[..., BcDouble], tmp_path: Path
) -> None:
    """Writing mirrors reading: in a VAT company the VAT Bus. Posting Group goes to
    ``taxAreaId`` (so it needs no Customer Card), and a template's blank Tax Area Code does
    not blank it."""
    double = bc_double_factory(seed=_vat_world())
    # the template (EU-RETAIL: VAT group EU, Tax Area Code blank) through the published pages
    with open_bc(double, tmp_path, company=COMPANY) as writer:
        templated = writer.create_customer(
            {"name": "Eva Euro", "email": "eva@example.test"}, "EU-RETAIL", "shop:vat1"
        )
    # a VAT group given as a field, with no Customer Card at all
    with open_bc(double, tmp_path, pages={}, company=COMPANY) as writer:
        given = writer.create_customer(
            {"name": "Ed Export", "email": "ed@example.test", "vat_bus_posting_group": "EXPORT"},
            None,
            "shop:vat2",
        )
        assert templated.ok and given.ok, (templated.message, given.message)
        assert "not written" not in given.message
        read = {no: writer.get_customer(no) for no in (templated.no, given.no)}
    groups = [c.extra.get("vat_bus_posting_group") if c else None for c in read.values()]
    assert groups == ["EU", "EXPORT"]


def test_vat_company_refuses_a_vat_group_it_does_not_have(
    bc_double_factory: Callable[..., BcDouble], tmp_path: Path
) -> None:
    double = bc_double_factory(seed=_vat_world())
    with open_bc(double, tmp_path, pages={}, company=COMPANY) as writer:
        result = writer.create_customer(
            {"name": "Nia None", "vat_bus_posting_group": "NOWHERE"}, None, "shop:vat3"
        )
    assert not result.ok
    assert "NOWHERE" in result.message and "taxAreas" in result.message
