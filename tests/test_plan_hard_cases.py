"""Plans that explain the hard cases (issue 11, item 6): what a user needs to act on a
decision is on the decision, masked."""

from __future__ import annotations

import pytest
from custsync.engine.decide.engine import Engine
from custsync.engine.decide.world import World
from custsync.engine.model import Action, ErpCustomer, Link, ShopContext, ShopSettings, TaxArea

from test_decide import REFERENCE, SETUPS, customer, shipped_rules, shop


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(shipped_rules())


IMPORTING = {"customer_import": "all_customers", "shopify_can_update_customers": True}

# ---- an e-mail match that chose among several ERP customers ------------------------------

NAMESAKES = (
    ErpCustomer("C1", name="Jane Doe", email="jane@example.com", country_code="US"),
    ErpCustomer("C2", name="Jane D.", email="JANE@example.com", country_code="US"),
    ErpCustomer("C3", name="", email=" Jane@Example.COM ", country_code="US"),
    ErpCustomer("C4", name="John", email="john@example.com", country_code="US"),
)


def test_an_email_match_among_several_erp_customers_warns_and_names_the_others(
    engine: Engine,
) -> None:
    """Two ERP customers matching one Shopify customer by e-mail (differing in case) were
    chosen between silently."""
    decision = engine.decide_import(World(NAMESAKES, REFERENCE), shop(**IMPORTING), customer())
    assert decision.erp_no == "C1" and decision.payload["match_method"] == "email"
    assert decision.action in (Action.UPDATE, Action.LINK) and decision.new_link
    assert decision.message == (
        "ambiguous e-mail: 3 ERP customers have it (ignoring case); chose C1 Jane Doe "
        "<j***@example.com>, the first in number order, over C2 Jane D. <J***@example.com>, "
        "C3 <J***@Example.COM>"
    )
    assert "jane@" not in decision.message.lower()


def test_no_warning_for_one_match_or_a_link_already_made(engine: Engine) -> None:
    single = World(NAMESAKES[:1] + NAMESAKES[3:], REFERENCE)
    assert engine.decide_import(single, shop(**IMPORTING), customer()).message is None
    linked = World(
        NAMESAKES, REFERENCE, links=[Link("main", "gid://shopify/Customer/1", "C1")]
    )
    decision = engine.decide_import(linked, shop(**IMPORTING), customer())
    assert decision.erp_no == "C1" and not decision.new_link and decision.message is None


# ---- a County that finds no tax area row --------------------------------------------------


def _export(engine: Engine, county: str, **settings: object) -> object:
    erp = ErpCustomer(
        "C9",
        name="Ann Lee",
        email="ann@example.com",
        address="1 Main St",
        city="Fresno",
        country_code="US",
        county=county,
    )
    context = ShopContext(
        "main", ShopSettings(export_customers=True, **settings), SETUPS  # type: ignore[arg-type]
    )
    return engine.decide_export(World([erp], REFERENCE), context, erp)


def test_an_unmatched_county_says_why_and_what_to_do(engine: Engine) -> None:
    """County "California" with county_source code showed only export_province/no-province."""
    assert SETUPS["US"].tax_areas == (TaxArea("California", "CA", "CA"),)
    by_name = _export(engine, "California")
    assert by_name.action is Action.CREATE  # type: ignore[attr-defined]
    assert "address.province_code" not in by_name.change_dict()  # type: ignore[attr-defined]
    assert [r.id for r in by_name.rules if r.decision == "export_province"] == [  # type: ignore[attr-defined]
        "county-is-a-name"
    ]
    assert by_name.message == (  # type: ignore[attr-defined]
        "no province: County California is no county code of the US tax areas but the county "
        "name of row CA; set county_source: name to find rows by name, or set County to CA"
    )
    unknown = _export(engine, "Nevada")
    assert unknown.message.startswith(  # type: ignore[attr-defined]
        "no province: County Nevada is no county code of the US tax areas; add a row with "
        "county_code Nevada to the tax_areas of country US"
    )
    by_name_setting = _export(engine, "Nevada", county_source="name")
    assert by_name_setting.message.startswith(  # type: ignore[attr-defined]
        "no province: County Nevada is no county name of the US tax areas; add a row with "
        "county Nevada"
    )
    found = _export(engine, "CA")
    assert found.message is None  # type: ignore[attr-defined]
    assert found.change_dict()["address.province_code"] == "CA"  # type: ignore[attr-defined]
    assert _export(engine, "").message is None  # type: ignore[attr-defined]


# ---- labels ---------------------------------------------------------------------------------


def test_a_blank_name_label_has_no_leading_blank(engine: Engine) -> None:
    """It read `" <o***@example.de>"`."""
    nameless = ErpCustomer("C5", name="  ", email="olga@example.de", country_code="US")
    settings = shop(export_customers=True)
    world = World([nameless], REFERENCE)
    assert engine.decide_export(world, settings, nameless).label == "<o***@example.de>"
    named = ErpCustomer("C6", name="Olga", email="olga@example.de", country_code="US")
    assert engine.decide_export(world, settings, named).label == "Olga <o***@example.de>"
    bare = ErpCustomer("C7", name="Olga", country_code="US")
    assert engine.decide_export(world, settings, bare).label == "Olga"
    shopify = customer(first_name="", last_name=" ", email="olga@example.de")
    assert engine.decide_import(world, shop(**IMPORTING), shopify).label == "<o***@example.de>"
