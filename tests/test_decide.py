"""The decide API with the shipped rule set: one typed Decision per record and direction."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from custsync.engine.decide.engine import Engine
from custsync.engine.decide.world import World
from custsync.engine.model import (
    Action,
    CompanyInfo,
    Country,
    CountrySetup,
    CustomerTemplate,
    Direction,
    ErpCustomer,
    ErpReference,
    Link,
    ShopContext,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
    ShopSettings,
    TaxArea,
)
from custsync.engine.rules.load import load_yaml, load_yaml_text
from custsync.engine.rules.rulefile import RuleSet, build_rule_file, merge_rule_files

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def shipped_rules(*extra: str) -> RuleSet:
    files = [build_rule_file(load_yaml(p)) for p in sorted((ROOT / "rules").glob("*.yaml"))]
    files += [build_rule_file(load_yaml_text(t, f"user/{i}.yaml")) for i, t in enumerate(extra)]
    return merge_rule_files(files)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(shipped_rules())


REFERENCE = ErpReference(
    countries=(Country("US", "US"), Country("EL", "GR")),
    company=CompanyInfo("CRONUS", "US"),
    templates=(CustomerTemplate("US-RETAIL"), CustomerTemplate("SHOP")),
)
SETUPS = {
    "US": CountrySetup(
        "US", customer_template_code="US-RETAIL", tax_areas=(TaxArea("California", "CA", "CA"),)
    )
}


def shop(**settings: object) -> ShopContext:
    return ShopContext("main", ShopSettings(**settings), SETUPS)  # type: ignore[arg-type]


def address(**fields: object) -> ShopifyAddress:
    values: dict[str, object] = {
        "id": "gid://shopify/MailingAddress/1",
        "default": True,
        "first_name": "Jane",
        "last_name": "Doe",
        "address1": "1 Main St",
        "city": "Fresno",
        "zip": "93650",
        "country_code": "US",
        "province_code": "CA",
        "province": "California",
    }
    values.update(fields)
    return ShopifyAddress(**values)  # type: ignore[arg-type]


def customer(cid: str = "1", **fields: object) -> ShopifyCustomer:
    values: dict[str, object] = {
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane@example.com",
        "updated_at": T0,
        "addresses": (address(),),
    }
    values.update(fields)
    return ShopifyCustomer(f"gid://shopify/Customer/{cid}", **values)  # type: ignore[arg-type]


ERP = (
    ErpCustomer(
        "C1",
        name="Jane Doe",
        email="JANE@example.com",
        phone="559 555 0142",
        country_code="US",
        modified_at=T0,
        etag="v1",
    ),
    ErpCustomer(
        "C2",
        name="Athens Trading",
        contact="Eleni Papadopoulou",
        email="eleni@example.gr",
        phone="210 555 0000",
        country_code="EL",
        address="Odos 1",
        city="Athens",
    ),
)


def test_import_update_with_provenance(engine: Engine) -> None:
    world = World(ERP, REFERENCE, [], [])
    decision = engine.decide_import(
        world,
        shop(
            customer_import="all_customers",
            shopify_can_update_customers=True,
            name_source="first_and_last_name",
        ),
        customer(),
    )
    assert decision.direction is Direction.IMPORT and decision.action is Action.UPDATE
    assert decision.erp_no == "C1" and decision.new_link is True
    changes = decision.change_dict()
    assert changes["city"] == "Fresno" and changes["county"] == "CA"
    assert "email" not in changes  # ERP JANE@example.com: differs only in case
    assert "name" not in changes  # already equal
    assert decision.payload["match_method"] == "email"
    assert decision.source_version == T0.isoformat() and decision.target_version == "v1"
    first = decision.rules[0]
    assert (first.id, first.decision, first.file.endswith("import_selection.yaml")) == (
        "process-unknown-all-customers",
        "import_selection",
        True,
    )
    assert first.line > 0
    assert {r.decision for r in decision.rules} >= {
        "import_match",
        "import_update",
        "import_fields",
    }


def test_import_create_with_template_and_cut_fields(engine: Engine) -> None:
    world = World(ERP, REFERENCE, [], [])
    long_name = "N" * 500
    decision = engine.decide_import(
        world,
        shop(
            customer_import="all_customers",
            auto_create_unknown_customers=True,
            name_source="first_and_last_name",
        ),
        customer(
            "7",
            email="new@example.com",
            first_name=long_name,
            last_name="",
            addresses=(address(first_name=long_name, last_name="", city="C" * 80),),
        ),
    )
    assert decision.action is Action.CREATE
    assert decision.payload["template_code"] == "US-RETAIL"
    changes = decision.change_dict()
    assert len(changes["name"]) == 100 and len(changes["city"]) == 30
    assert all(change.old is None for change in decision.changes)


def test_import_strips_terminal_escapes_and_control_characters(engine: Engine) -> None:
    """Shopify names with terminal escape sequences were imported into the ERP as they were
    and `erp export` wrote them raw to a terminal (issue 10 item 11)."""
    first, last = "Eve\x1b[2J\x1b[31m", "\x1b]8;;https://evil.example\x07Smith\x1b]8;;\x07\x00"
    world = World(ERP, REFERENCE, [], [])
    decision = engine.decide_import(
        world,
        shop(
            customer_import="all_customers",
            auto_create_unknown_customers=True,
            name_source="first_and_last_name",
        ),
        customer(
            "8",
            email="esc@example.com",
            first_name=first,
            last_name=last,
            addresses=(
                address(
                    first_name=first,
                    last_name=last,
                    address1="1\x07 Main\x9b St\x7f",
                    city="Fresno\x1b",
                ),
            ),
        ),
    )
    assert decision.action is Action.CREATE
    changes = decision.change_dict()
    assert changes["name"] == "Eve Smith"
    assert changes["address"] == "1 Main St"
    assert changes["city"] == "Fresno"
    for change in decision.changes:
        assert isinstance(change.new, bool) or str(change.new).isprintable(), change


@pytest.mark.parametrize(
    ("settings", "cust", "reason"),
    [
        (
            {"customer_import": "with_order_import"},
            customer("8", email="x@example.com"),
            "not-imported",
        ),
        (
            {"customer_import": "all_customers"},
            customer("8", email="x@example.com"),
            "auto-create-off",
        ),
        (
            {"customer_import": "all_customers", "auto_create_unknown_customers": True},
            customer("8", email="x@example.com", addresses=()),
            "no-address",
        ),
        (
            {"customer_import": "all_customers", "auto_create_unknown_customers": True},
            customer("8", email="x@example.com", addresses=(address(country_code="JP"),)),
            "no-template",
        ),
    ],
)
def test_import_skips_say_why(
    engine: Engine, settings: dict[str, object], cust: ShopifyCustomer, reason: str
) -> None:
    decision = engine.decide_import(World(ERP, REFERENCE, [], []), shop(**settings), cust)
    assert decision.action is Action.SKIP
    assert decision.reason_code == reason
    assert decision.message
    assert "x@example.com" not in decision.message


def test_caller_template_comes_first(engine: Engine) -> None:
    decision = engine.decide_import(
        World(ERP, REFERENCE, [], []),
        shop(customer_import="all_customers", auto_create_unknown_customers=True),
        customer("9", email="nine@example.com"),
        caller_template="SHOP",
    )
    assert decision.payload["template_code"] == "SHOP"


def test_garbage_records_are_skips_or_decisions_never_exceptions(engine: Engine) -> None:
    world = World(ERP, REFERENCE, [], [])
    settings = shop(
        customer_import="all_customers",
        auto_create_unknown_customers=True,
        can_update_shopify_customers=True,
        export_customers=True,
    )
    garbage = customer(
        "10",
        email="@@@;;",
        phone="12",
        first_name="\x00" * 10,
        addresses=(address(country_code="ZZ", phone="abc", province="?" * 500),),
    )
    decision = engine.decide_import(world, settings, garbage)
    assert decision.action in (Action.CREATE, Action.SKIP)
    bad = ErpCustomer("C9", name="X" * 500, email="not-an-email", phone="12", country_code="QQ")
    exported = engine.decide_export(world, settings, bad)
    assert exported.action is Action.SKIP
    assert set(exported.payload["reasons"]) == {
        "email-invalid",
        "country-iso-missing",
        "phone-invalid",
    }
    assert exported.reason_code == "email-invalid"


def test_an_unexpected_error_is_a_record_error_skip(engine: Engine) -> None:
    broken = ShopifyCustomer("gid://shopify/Customer/11", addresses=None)  # type: ignore[arg-type]
    decision = engine.decide_import(World(ERP, REFERENCE, [], []), shop(), broken)
    assert decision.action is Action.SKIP and decision.reason_code == "record-error"


def test_no_rule_holding_is_reported_with_the_decision() -> None:
    override = """
decision: import_match
description: drop the fallback
disable: [no-match]
"""
    engine = Engine(shipped_rules(override))
    decision = engine.decide_import(
        World(ERP, REFERENCE, [], []),
        shop(customer_import="all_customers"),
        customer("12", email="nobody@example.com"),
    )
    assert decision.action is Action.SKIP and decision.reason_code == "no-rule"
    assert "import_match" in (decision.message or "")


def test_export_create_and_update(engine: Engine) -> None:
    linked = ShopifyCustomer(
        "gid://shopify/Customer/50",
        first_name="Eleni",
        last_name="Old",
        email="eleni@example.gr",
        phone="+302105550000",
        updated_at=T0,
        addresses=(address(first_name="Eleni", last_name="Old"),),
    )
    world = World(ERP, REFERENCE, [linked], [Link("main", linked.id, "C2")])
    settings = shop(export_customers=True, can_update_shopify_customers=True)
    created = engine.decide_export(world, settings, ERP[0])
    assert created.action is Action.CREATE and created.direction is Direction.EXPORT
    assert created.change_dict()["phone"] == "+15595550142"
    assert created.payload["address"]["country_code"] == "US"
    updated = engine.decide_export(world, settings, ERP[1])
    assert updated.action is Action.UPDATE and updated.shopify_id == linked.id
    changes = updated.change_dict()
    assert changes["last_name"] == "Papadopoulou"
    assert changes["address.country_code"] == "GR"
    assert "email" not in changes and "phone" not in changes
    assert updated.payload["address"]["id"] == "gid://shopify/MailingAddress/1"
    assert updated.target_version == T0.isoformat()


def test_export_ignores_an_email_differing_only_in_case(engine: Engine) -> None:
    linked = ShopifyCustomer(
        "gid://shopify/Customer/70",
        first_name="John",
        last_name="Smith",
        email="john@example.com",
        updated_at=T0,
        addresses=(address(first_name="John", last_name="Smith"),),
    )
    place = {"address": "1 Main St", "city": "Fresno", "post_code": "93650", "county": "CA"}
    same = ErpCustomer("J1", contact="John Smith", email=" John@Example.COM ", **place)
    renamed = ErpCustomer("J1", contact="Johnny Smith", email="JOHN@example.com", **place)
    moved = ErpCustomer("J1", contact="John Smith", email="John.Smith@Example.com", **place)
    settings = shop(can_update_shopify_customers=True)
    links = [Link("main", linked.id, "J1")]
    decisions = [
        engine.decide_export(World((erp,), REFERENCE, [linked], links), settings, erp)
        for erp in (same, renamed, moved)
    ]
    assert decisions[0].action is Action.NOOP
    assert decisions[1].action is Action.UPDATE
    assert "email" not in decisions[1].change_dict()
    assert decisions[1].change_dict()["first_name"] == "Johnny"
    assert decisions[2].action is Action.UPDATE
    assert decisions[2].change_dict() == {"email": "John.Smith@Example.com"}


def test_import_keeps_an_erp_email_differing_only_in_case(engine: Engine) -> None:
    settings = shop(customer_import="all_customers", shopify_can_update_customers=True)
    link = Link("main", "gid://shopify/Customer/71", "K1")

    def email_change(erp_email: str, shopify_email: str, rules: Engine = engine) -> object:
        erp = ErpCustomer("K1", name="Jane Doe", email=erp_email, country_code="US")
        # the company names the ERP field for the rule below that names its field by a fact
        shopify = customer("71", email=shopify_email, addresses=(address(company="email"),))
        decision = rules.decide_import(World((erp,), REFERENCE, [], [link]), settings, shopify)
        assert decision.erp_no == "K1" and decision.action is Action.UPDATE
        return decision.change_dict().get("email", "unchanged")

    assert email_change(" Jane.Doe@Example.COM ", "jane.doe@example.com") == "unchanged"
    assert email_change("jane.doe@example.com", "Jane.Doe@Example.com") == "unchanged"
    assert email_change("jane@example.com", "jane.doe@example.com") == "jane.doe@example.com"
    assert email_change("", "jane.doe@example.com") == "jane.doe@example.com"
    # a rule naming its field by a fact takes the other comparison path: the same answers
    by_fact = Engine(
        shipped_rules(
            """
decision: import_fields
rules:
  - id: email-from-customer
    priority: 100
    when:
      shopify.email: {present: true}
    then: {action: set, field: "{address.company}", value: {fact: shopify.email}}
"""
        )
    )
    assert email_change("JANE@example.com", "jane@example.com", by_fact) == "unchanged"
    assert email_change("old@example.com", "jane@example.com", by_fact) == "jane@example.com"


def test_export_skips_a_phone_shared_in_the_batch(engine: Engine) -> None:
    twins = (
        ErpCustomer("D1", name="A", email="a@example.com", phone="415 555 0113", country_code="US"),
        ErpCustomer(
            "D2", name="B", email="b@example.com", phone="+1 (415) 555-0113", country_code="US"
        ),
    )
    world = World(twins, REFERENCE, [], [])
    for record in twins:
        decision = engine.decide_export(world, shop(export_customers=True), record)
        assert decision.reason_code == "phone-duplicate-in-batch"


def test_order_creates_its_customer_with_the_nested_import(engine: Engine) -> None:
    world = World(ERP, REFERENCE, [], [])
    order = ShopifyOrder(
        "gid://shopify/Order/1",
        name="#1001",
        customer=customer("20", email="buyer@example.com"),
        bill_to=address(),
        ship_to=address(),
    )
    settings = shop(customer_import="all_customers", auto_create_unknown_customers=True)
    decision = engine.decide_order(world, settings, order)
    assert decision.direction is Direction.ORDER and decision.action is Action.CREATE
    assert decision.payload["template_code"] == "US-RETAIL"
    assert decision.payload["import"].action is Action.CREATE
    assert any(rule.decision == "import_create" for rule in decision.rules)


def test_order_falls_back_to_the_shop_default_and_then_says_why(engine: Engine) -> None:
    world = World(ERP, REFERENCE, [], [])
    guest = ShopifyOrder("gid://shopify/Order/2", bill_to=address(first_name="", last_name=""))
    mapped = engine.decide_order(world, shop(default_customer_no="C2"), guest)
    assert mapped.action is Action.LINK and mapped.erp_no == "C2"
    assert mapped.payload["sell_to"] == "C2" and mapped.payload["bill_to"] == "C2"
    unmapped = engine.decide_order(world, shop(), guest)
    assert unmapped.action is Action.SKIP and unmapped.reason_code == "order-unmapped"


def test_plan_shop_follows_the_settings(engine: Engine) -> None:
    linked = ShopifyCustomer("gid://shopify/Customer/60", email="eleni@example.gr", updated_at=T0)
    world = World(
        ERP,
        REFERENCE,
        [linked, customer("61", email="x@example.com")],
        [Link("main", linked.id, "C2", last_import_at=T0)],
    )
    decisions = engine.plan_shop(world, shop(customer_import="all_customers"))
    assert [(d.direction, d.record) for d in decisions] == [
        (Direction.IMPORT, "gid://shopify/Customer/60"),
        (Direction.IMPORT, "gid://shopify/Customer/61"),
    ]
    assert decisions[0].reason_code == "unchanged"
    exports = engine.plan_shop(world, shop(export_customers=True), ("export",))
    assert [d.record for d in exports] == ["C1"]  # C2 is linked and updates are off


def test_evaluation_keeps_nothing_in_durable(engine: Engine) -> None:
    world = World(ERP, REFERENCE, [], [])
    for index in range(50):
        engine.decide_export(
            world,
            shop(export_customers=True),
            ErpCustomer(f"E{index}", name="N", email=f"e{index}@example.com"),
        )
    evaluator = engine.evaluator
    for decision in evaluator.decisions():
        assert evaluator.live_facts(decision) == 0
    assert engine.stats.cache_hits > engine.stats.engine_calls


def test_fast_record_constructors_build_the_same_records() -> None:
    from custsync.engine.decide import engine as decide_module
    from custsync.engine.model import Action, Decision, Direction, FieldChange, FiredRule

    change = decide_module._change("email", None, "a@example.com")
    assert change == FieldChange("email", None, "a@example.com")
    assert hash(change) == hash(FieldChange("email", None, "a@example.com"))
    assert repr(change) == repr(FieldChange("email", None, "a@example.com"))
    minimal = {"direction": Direction.IMPORT, "action": Action.SKIP, "shop": "s", "record": "r"}
    assert decide_module._decision(**minimal) == Decision(**minimal)
    assert repr(decide_module._decision(**minimal)) == repr(Decision(**minimal))
    full = dict(
        minimal,
        erp_no="C1",
        shopify_id="gid://shopify/Customer/1",
        changes=(change,),
        reason_code="x",
        message="m",
        rules=(FiredRule("r1", "f.yaml", 3, "export_action"),),
        new_link=True,
        payload={"a": 1},
        source_version="v1",
        target_version="v2",
        label="Jane",
    )
    assert decide_module._decision(**full) == Decision(**full)
    with pytest.raises(TypeError):
        decide_module._decision(**minimal, unknown=1)
    created = decide_module._new_values_function(("a", "b", "c"))(("x", "", 0))
    assert created == [FieldChange("a", None, "x")]
    assert repr(created[0]) == repr(FieldChange("a", None, "x"))


def test_export_decisions_read_together_fail_and_skip_where_one_at_a_time_would() -> None:
    """The requirements, person, company and province decisions share one signature (all
    their facts are computed first); a record whose County cannot be read still ends where it
    did when each decision read its own facts: a record error at the province, a skip for its
    requirements or for no person-name rule when that comes first."""
    broken = ErpCustomer("C7", email="jane7@example.com", county=None)  # type: ignore[arg-type]
    settings = shop(export_customers=True)
    world = World(ERP, REFERENCE, [], [])
    failed = Engine(shipped_rules()).decide_export(world, settings, broken)
    assert (failed.action, failed.reason_code) == (Action.SKIP, "record-error")
    assert "AttributeError" in (failed.message or "")
    invalid = ErpCustomer("C6", email="not an e-mail", county=None)  # type: ignore[arg-type]
    skipped_first = Engine(shipped_rules()).decide_export(world, settings, invalid)
    assert (skipped_first.action, skipped_first.reason_code) == (Action.SKIP, "email-invalid")
    only_contacts = """
decision: export_person_name
description: only customers with a contact
disable: [split-name-2, split-name, no-person-name]
"""
    engine = Engine(shipped_rules(only_contacts))
    skipped = engine.decide_export(world, settings, broken)
    assert (skipped.action, skipped.reason_code) == (Action.SKIP, "no-rule")
    assert "export_person_name" in (skipped.message or "")
    assert [rule.id for rule in skipped.rules] == ["create-export-customers"]
    fine = engine.decide_export(world, settings, ErpCustomer("C8", contact="Max Muster"))
    assert fine.action is Action.SKIP and fine.reason_code == "email-missing"
    created = engine.decide_export(
        world, settings, ErpCustomer("C9", contact="Max Muster", email="max@example.com")
    )
    assert created.action is Action.CREATE
    assert [rule.id for rule in created.rules][1:] == ["split-contact", "no-company", "no-province"]


def test_generated_field_mapping_maps_as_the_field_steps_do() -> None:
    """The create and update mapping generated per field plan against the steps written
    plainly (_field_value, then _unchanged against the ERP value): facts missing, not text,
    with extra blanks, over the field length, an e-mail differing only in case, a template
    field, a parameter that is a literal and one that is a template."""
    from custsync.engine.decide import engine as decide_module
    from custsync.engine.rules.rulefile import FactRef, Template

    fields = (
        ("name", "names.a", FactRef("names.a"), 10, True),
        ("contact", None, "  Fixed   Contact ", 100, True),
        ("city", None, Template("{address.city} town"), 8, True),
        ("phone", "mapped.phone", FactRef("mapped.phone"), None, True),
        ("email", "shopify.email", FactRef("shopify.email"), 80, True),
        ("tax_liable", "mapped.tax_liable", FactRef("mapped.tax_liable"), None, False),
        ("tax_area_code", "mapped.none", FactRef("mapped.none"), None, False),
    )
    create, update = decide_module._field_mapping(fields)

    def plainly(facts: dict[str, object], erp: ErpCustomer | None) -> list[tuple[object, ...]]:
        changes = []
        for field, fact, param, limit, core in fields:
            raw = facts.get(fact) if fact is not None else decide_module.resolve(param, facts)
            new = decide_module._field_value(raw, limit)
            if erp is None:
                if new not in ("", None):
                    changes.append((field, None, new))
                continue
            old = getattr(erp, field) if core else erp.get(field)
            if not decide_module._unchanged(field, old, new):
                changes.append((field, old, new))
        return changes

    cases: list[dict[str, object]] = [
        {},
        {"names.a": "  Jane   Doe  Longname ", "address.city": "Fresno", "mapped.phone": 12},
        {"shopify.email": "JANE@example.com ", "mapped.tax_liable": False, "names.a": "Jo"},
        {"mapped.tax_liable": True, "mapped.phone": "+1 555", "address.city": "A  B"},
        {"names.a": "Janet  Doe Smith", "address.city": "Fresno"},  # cut before a blank
    ]
    erps = [
        None,
        ErpCustomer("C1", name="Jo", email="jane@example.com", phone="12"),
        ErpCustomer("C2", name="Jane Doe L", contact="Fixed Contact", extra={"tax_liable": True}),
    ]
    for facts in cases:
        for erp in erps:
            found = create(facts) if erp is None else update(facts, erp)
            assert [(c.field, c.old, c.new) for c in found] == plainly(facts, erp), (facts, erp)


def test_export_cuts_names_and_company_to_shopify_limits(engine: Engine) -> None:
    """Shopify refuses names and a company over 255 characters: cut, not a failed create."""
    long_name = "Lastname" + "x" * 600
    erp = ErpCustomer(
        "C9",
        name="Firstname " + long_name,
        name_2="Company " + "y" * 600,
        email="long@example.com",
        country_code="US",
        address="1 Main St",
        city="Fresno",
    )
    decision = engine.decide_export(
        World([erp], REFERENCE, [], []),
        shop(export_customers=True, name_source="first_and_last_name", name_2_source="company_name"),
        erp,
    )
    assert decision.action is Action.CREATE, decision
    changes = {change.field: change.new for change in decision.changes}
    assert changes["first_name"] == "Firstname"
    assert len(changes["last_name"]) == 255 and changes["last_name"].startswith("Lastnamexx")
    address = decision.payload["address"]
    assert len(address["company"]) == 255 and len(address["last_name"]) == 50
