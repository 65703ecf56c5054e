"""World indexes and per-record facts."""

from __future__ import annotations

from datetime import UTC, datetime

from custsync.engine.decide import enrich
from custsync.engine.decide.world import World
from custsync.engine.model import (
    CompanyInfo,
    Country,
    CountrySetup,
    ErpCustomer,
    ErpReference,
    Link,
    ShopContext,
    ShopifyAddress,
    ShopifyCustomer,
    ShopSettings,
    TaxArea,
)

REFERENCE = ErpReference(
    countries=(Country("US", "US"), Country("EL", "GR"), Country("DE", "DE"), Country("XX", "")),
    company=CompanyInfo("CRONUS", "US"),
)
CA = TaxArea("California", "CA", "CA-TAX", True, "DOMESTIC")
SHOP = ShopContext(
    "main",
    ShopSettings(name_source="first_and_last_name", name_2_source="company_name"),
    {"US": CountrySetup("US", customer_template_code="US-RETAIL", tax_areas=(CA,))},
)


def world(**kwargs: object) -> World:
    erp = [
        ErpCustomer(
            "C2", name="Two", email="Shared@Example.com", phone="212 555 0177", country_code="US"
        ),
        ErpCustomer(
            "C1", name="One", email="shared@example.com", phone="+1 212 555 0177", country_code="US"
        ),
        ErpCustomer("C3", name="Athens", phone="210 555 0000", country_code="EL"),
        ErpCustomer("C4", name="Blank", phone="415 555 0199"),
    ]
    return World(erp, REFERENCE, kwargs.get("shopify", ()), kwargs.get("links", ()))  # type: ignore[arg-type]


def test_number_order_wins_ties() -> None:
    w = world()
    assert list(w.erp) == ["C1", "C2", "C3", "C4"]
    assert w.erp_by_email("SHARED@example.COM") == "C1"
    assert w.erp_by_e164("+12125550177") == "C1"


def test_iso_and_erp_country_codes() -> None:
    w = world()
    assert w.iso_for_erp_country("EL") == "GR"
    assert w.erp_country_for_iso("GR") == "EL"
    assert w.erp_country_for_iso("FR") == "FR"
    assert w.iso_for_erp_country("XX") == ""
    assert w.iso_for_erp_country("FR") == "FR"  # not in the table, but a known ISO code
    assert w.erp_by_e164("+302105550000") == "C3"  # read in GR, the ISO of ERP EL
    assert w.customer_country(w.erp["C4"]) == ("US", "US", True)


def test_phone_digit_rule_lookup() -> None:
    w = world()
    assert w.erp_by_phone_digits("555-0199") == "C4"
    assert w.erp_by_phone_digits("415 555 01990") is None
    assert w.erp_by_phone_digits("99") is None  # too short to match anything


def test_import_facts() -> None:
    updated = datetime(2026, 1, 2, tzinfo=UTC)
    customer = ShopifyCustomer(
        "gid://shopify/Customer/1",
        first_name="Jane",
        last_name="Doe",
        email="SHARED@example.com",
        phone="",
        updated_at=updated,
        addresses=(
            ShopifyAddress(id="a1", country_code="DE", city="Berlin"),
            ShopifyAddress(
                id="a2",
                default=True,
                company="Adatum",
                first_name=" Jo ",
                last_name="Roe",
                address1="1 Main",
                city="SF",
                country_code="US",
                province="California",
                phone="+1 415 555 0199",
            ),
        ),
    )
    link = Link("main", customer.id, "C9", last_import_at=updated)  # C9 does not exist
    w = world(links=[link])
    facts = enrich.import_facts(w, SHOP, customer)
    assert facts["link.exists"] is False and facts["link.dropped"] is True
    assert facts["lookup.email_customer_no"] == "C1"
    assert facts["lookup.phone_e164_customer_no"] == "C4"
    assert facts["address.id"] == "a2"
    assert facts["default_address.country_code"] == "US"
    assert facts["first_address.country_code"] == "DE"
    assert facts["default_country_setup.customer_template_code"] == "US-RETAIL"
    assert facts["first_country_setup.exists"] is False
    assert facts["names.by_name_source"] == "Jo Roe"
    assert facts["names.by_name_2_source"] == "Adatum"
    assert facts["mapped.county"] == "CA"  # county_source code: the row's code for the name
    assert facts["mapped.tax_area_code"] == "CA-TAX" and facts["mapped.tax_liable"] is True
    assert facts["mapped.phone"] == "+1 415 555 0199"
    assert "address.address2" not in facts  # empty values are left out
    assert "shopify.phone" not in facts


def test_selection_facts_for_known_customers() -> None:
    imported = datetime(2026, 1, 1, tzinfo=UTC)
    own = datetime(2026, 1, 3, tzinfo=UTC)
    customer = ShopifyCustomer(
        "gid://shopify/Customer/2", updated_at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    w = world(
        links=[
            Link(
                "main", customer.id, "C1", last_import_at=imported, own_write_shopify_updated_at=own
            )
        ]
    )
    facts = enrich.import_facts(w, SHOP, customer)
    assert facts["link.exists"] is True and facts["link.customer_no"] == "C1"
    assert facts["shopify.changed_since_import"] is True
    assert facts["shopify.own_write_echo"] is True


def test_export_facts() -> None:
    shopify = [
        ShopifyCustomer("gid://shopify/Customer/9", email="x@example.com", phone="+14155550199"),
        ShopifyCustomer("gid://shopify/Customer/8", email="six@example.com"),
    ]
    w = world(shopify=shopify)
    customer = ErpCustomer(
        "C5", name="Five", email="A@b.example; c@d.example", phone="12", county="California"
    )
    facts = enrich.export_facts(w, SHOP, customer)
    assert facts["email.first"] == "A@b.example" and facts["email.valid"] is True
    assert facts["country.code"] == "US" and facts["country.from_company"] is True
    assert facts["phone.present"] is True and facts["phone.valid"] is False
    assert facts["county.length"] == 10
    assert facts["county.tax_areas_exist"] is True
    assert facts["province.by_name_code"] == "CA"
    assert facts["province.by_prefix_name"] == "California"
    assert "province.by_code_code" not in facts
    c4 = enrich.export_facts(w, SHOP, w.erp["C4"])
    assert c4["phone.e164"] == "+14155550199"
    assert c4["shopify_match.by"] == "phone"  # found by phone: adopted, not a duplicate
    assert c4["phone.duplicate_in_shopify"] is False
    six = ErpCustomer("C6", email="six@example.com", phone="415 555 0199", country_code="US")
    c6 = enrich.export_facts(w, SHOP, six)
    assert c6["shopify_match.id"] == "gid://shopify/Customer/8"
    assert c6["phone.duplicate_in_shopify"] is True  # customer 9 has the phone
    c1 = enrich.export_facts(w, SHOP, w.erp["C1"])
    assert c1["phone.duplicate_in_batch"] is True  # C2 has the same number


def test_email_helpers() -> None:
    assert enrich.first_email("a@b.c, d@e.f") == "a@b.c"
    assert enrich.email_valid("jane.doe@example.com")
    assert not enrich.email_valid("not-an-email")
    assert not enrich.email_valid("a@b")
    assert not enrich.email_valid("a b@c.de")


def test_lazy_facts_compute_a_group_on_first_read_and_equal_the_full_facts() -> None:
    shopify = [ShopifyCustomer("gid://shopify/Customer/9", email="x@example.com", phone="+1")]
    w = world(shopify=shopify)
    for customer in w.erp.values():
        lazy = enrich.export_facts(w, SHOP, customer, lazy=True)
        assert not dict.__contains__(lazy, "phone.valid")  # not computed yet
        assert lazy.get("phone.valid") is not None  # computed on first read
        assert dict.__contains__(lazy, "phone.duplicate_in_batch")  # with its whole group
        assert dict(lazy.complete()) == dict(enrich.export_facts(w, SHOP, customer))
    customer = ShopifyCustomer(
        "gid://shopify/Customer/3",
        first_name="Ann",
        phone="+1 212 555 0177",
        addresses=(ShopifyAddress(id="a", country_code="US", province_code="CA"),),
    )
    lazy_import = enrich.import_facts(w, SHOP, customer, lazy=True)
    assert "lookup.phone_e164_customer_no" in lazy_import  # `in` computes the group too
    assert dict(lazy_import.complete()) == dict(enrich.import_facts(w, SHOP, customer))


def test_a_record_skipped_early_never_reads_its_phone() -> None:
    from custsync.engine.decide import phones, ruletest
    from custsync.engine.decide.engine import Engine

    engine = Engine(ruletest.load_rules())
    linked = ErpCustomer("C7", name="Seven", email="seven@example.com", phone="+1 303 555 0107")
    shopify = [ShopifyCustomer("gid://shopify/Customer/7", email="seven@example.com")]
    w = World([linked], REFERENCE, shopify, [Link("main", shopify[0].id, "C7")])
    before = phones._read.cache_info().misses
    decision = engine.decide_export(w, SHOP, linked)  # linked, updates off: skipped first
    assert decision.reason_code == "update-off"
    assert phones._read.cache_info().misses == before
