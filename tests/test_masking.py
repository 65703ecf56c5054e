"""No customer e-mail or phone - valid or garbage - unmasked in decision messages, labels, the
text and JSON plans: masked by value where messages are built, by pattern as a safety net."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from custsync.engine.cli import main
from custsync.engine.decide import enrich, ruletest
from custsync.engine.decide.engine import Engine
from custsync.engine.decide.world import World
from custsync.engine.masking import EMAIL, PHONE, mask_contact, mask_text, mask_values
from custsync.engine.model import (
    Action,
    CompanyInfo,
    Country,
    CustomerTemplate,
    Decision,
    Direction,
    ErpCustomer,
    ErpReference,
    ShopContext,
    ShopifyAddress,
    ShopifyCustomer,
    ShopifyOrder,
    ShopSettings,
)
from custsync.engine.run.plan import Plan, plan_to_json
from custsync.engine.run.render import render_text

from plan_helpers import FIXED_TIME, ROOT

REFERENCE = ErpReference(
    countries=(Country("US", "US"),),
    company=CompanyInfo("CRONUS", "US"),
    templates=(CustomerTemplate("US-RETAIL"),),
)
#: (ERP customer no., e-mail, phone, the reason its export is skipped)
BAD_CONTACTS = [
    ("M001", "john doe@example.com", "", "email-invalid"),
    ("M002", "john.example.com", "", "email-invalid"),
    ("M003", "ann@example.com", "12", "phone-invalid"),
    ("M004", "ann@example.com", "call john", "phone-invalid"),
    ("M005", "john doe@example.com; john.example.com", "12", "email-invalid"),
]
#: what the raw values above must not leave behind anywhere in a message
LEAKS = ("john", "12", "call")


def _shop(**settings: Any) -> ShopContext:
    return ShopContext("main", ShopSettings(**{"export_customers": True, **settings}), {})


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(ruletest.load_rules())


# --- the functions --------------------------------------------------------------------------


def test_contact_values_are_masked_whatever_they_hold() -> None:
    assert mask_contact("john doe@example.com", EMAIL) == "j***@example.com"
    assert mask_contact("john.example.com", EMAIL) == "j***"
    assert mask_contact("a@x.com; bob at x , c@y.de", EMAIL) == "a***@x.com; b*** , c***@y.de"
    assert mask_contact("  john.example.com ", EMAIL) == "  j*** "
    assert mask_contact("john@doe@example.com", EMAIL) == "j***@example.com"
    assert mask_contact("+1 (415) 555-0199", PHONE) == "+1 (41*) ***-**99"
    assert mask_contact("12", PHONE) == "*2"
    assert mask_contact("call john", PHONE) == "c***"
    assert mask_contact("", PHONE) == "" and mask_contact("", EMAIL) == ""


def test_values_are_replaced_only_as_whole_words_or_numbers() -> None:
    text = "phone 12 of C00120 (12x), Order/12, #12, 12.5, 12-3: 12."
    masked = "phone *2 of C00120 (12x), Order/12, #12, 12.5, 12-3: *2."
    assert mask_values(text, [("12", PHONE)]) == masked
    # the longer value first: the field with two e-mails, then each
    both = "a@x.com; b@y.com"
    values = [("a@x.com", EMAIL), (both, EMAIL)]
    assert mask_values(f"mail {both}!", values) == "mail a***@x.com; b***@y.com!"
    assert mask_values("nothing here", [("", PHONE), ("zzz", EMAIL)]) == "nothing here"


def test_the_pattern_net_finds_emails_and_phones_in_free_text() -> None:
    assert mask_text("o'brien@example.com wrote") == "o***@example.com wrote"
    assert mask_text("'jane@example.com'") == "'j***@example.com'"
    assert mask_text("call +1 415 555 0199 now") == "call +1 41* *** **99 now"
    # dates, zips and order numbers are no phones
    assert mask_text("on 2026-03-01, zip 94105, #1001") == "on 2026-03-01, zip 94105, #1001"
    assert mask_text(mask_text("jane@example.com +14155550101")) == mask_text(
        "jane@example.com +14155550101"
    )


# --- decisions ------------------------------------------------------------------------------


def _no_leak(decision: Decision, raw: str = "") -> None:
    shown = json.dumps(
        [decision.message, decision.label, list(decision.payload.get("reasons", ()))]
    )
    for leak in LEAKS:
        assert leak not in shown.lower(), (leak, shown)
    assert not raw or raw not in shown


@pytest.mark.parametrize(("no", "email", "phone", "reason"), BAD_CONTACTS)
def test_export_skip_messages_hold_no_contact_data(
    engine: Engine, no: str, email: str, phone: str, reason: str
) -> None:
    record = ErpCustomer(no, name="Mask Test Ltd", country_code="US", email=email, phone=phone)
    decision = engine.decide_export(World((record,), REFERENCE, [], []), _shop(), record)
    assert decision.action is Action.SKIP and decision.reason_code == reason  # codes unchanged
    assert decision.message
    _no_leak(decision, email or phone)


def test_import_messages_mask_contact_facts_of_user_rules(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "import_create.yaml").write_text(
        """
decision: import_create
description: a house message showing contact facts
rules:
  - id: auto-create-off
    description: Unknown customers are not created; the message names them.
    priority: 100
    when:
      settings.auto_create_unknown_customers: false
      caller.allow_create: {ne: true}
    then:
      action: skip
      reason: auto-create-off
      message: "unknown: {shopify.email} / {shopify.phone} / {address.phone}"
""",
        encoding="utf-8",
    )
    house = Engine(ruletest.load_rules([tmp_path]))
    customer = ShopifyCustomer(
        "gid://shopify/Customer/77",
        first_name="Mask",
        email="john doe@example.com",
        phone="+14155550177",
        addresses=(
            ShopifyAddress("gid://shopify/MailingAddress/77", default=True, phone="call john 12"),
        ),
    )
    settings = _shop(customer_import="all_customers", auto_create_unknown_customers=False)
    decision = house.decide_import(World((), REFERENCE, [customer], []), settings, customer)
    assert decision.reason_code == "auto-create-off"
    assert decision.message == "unknown: j***@example.com / +141******77 / c***"
    _no_leak(decision, "4155550177")


def test_an_order_message_masks_the_orders_contact_data(tmp_path: Path) -> None:
    (tmp_path / "order_fallback.yaml").write_text(
        """
decision: order_fallback
description: a house message naming the buyer
rules:
  - id: order-unmapped
    description: Not mapped; the message names the buyer.
    priority: 0
    then:
      action: skip
      reason: order-unmapped
      message: "no ERP customer for {shopify.email} ({shopify.phone}, {order.id})"
""",
        encoding="utf-8",
    )
    house = Engine(ruletest.load_rules([tmp_path]))
    buyer = ShopifyCustomer("gid://shopify/Customer/12", email="john.example.com", phone="12")
    order = ShopifyOrder("gid://shopify/Order/12", name="#1012", customer=buyer)
    decision = house.decide_order(World((), REFERENCE, [], []), _shop(), order)
    assert decision.reason_code == "order-unmapped"
    assert decision.message is not None
    assert decision.message.startswith("no ERP customer for j*** (*2, gid://shopify/Order/12) (")
    assert "john" not in decision.message


def test_a_fact_reference_message_is_masked(tmp_path: Path) -> None:
    (tmp_path / "export_requirements.yaml").write_text(
        """
decision: export_requirements
description: a message that is a contact fact
rules:
  - id: show-phone
    description: Shows the phone.
    priority: 65
    when:
      phone.present: true
    then:
      action: skip
      reason: phone-shown
      message: {fact: erp.phone}
""",
        encoding="utf-8",
    )
    house = Engine(ruletest.load_rules([tmp_path]))
    record = ErpCustomer("M9", name="Mask", country_code="US", email="a@b.com", phone="12")
    decision = house.decide_export(World((record,), REFERENCE, [], []), _shop(), record)
    assert decision.payload["reasons"] == ("phone-invalid", "phone-shown")
    assert "12" not in (decision.message or "")


def test_a_record_error_masks_the_records_own_values(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(world: World, shop: ShopContext, customer: ErpCustomer, **_: Any) -> Any:
        raise ValueError(f"cannot read {customer.email!r} or {customer.phone}")

    monkeypatch.setattr(enrich, "export_facts", broken)
    record = ErpCustomer("M8", name="Mask", email="john doe@example.com", phone="12")
    decision = engine.decide_export(World((record,), REFERENCE, [], []), _shop(), record)
    assert decision.reason_code == "record-error"
    assert decision.message == "could not evaluate this record: ValueError: cannot read " + (
        "'j***@example.com' or *2"
    )


# --- plans ----------------------------------------------------------------------------------


def test_plans_of_engine_decisions_hold_no_contact_data(engine: Engine) -> None:
    records = [
        ErpCustomer(no, name="Mask Test Ltd", country_code="US", email=email, phone=phone)
        for no, email, phone, _ in BAD_CONTACTS
    ]
    world = World(tuple(records), REFERENCE, [], [])
    decisions = tuple(engine.decide_export(world, _shop(), record) for record in records)
    plan = Plan(FIXED_TIME, ("main",), (Direction.EXPORT,), decisions)
    _no_leak_in_json(json.loads(plan_to_json(plan))["decisions"])
    _no_leak_in_text(render_text(plan))


def _no_leak_in_json(decisions: list[dict[str, Any]]) -> None:
    for decision in decisions:
        shown = json.dumps({k: v for k, v in decision.items() if k != "rules"}).lower()
        for leak in LEAKS:
            assert leak not in shown, (leak, shown)


def _no_leak_in_text(text: str) -> None:
    """The headers (with labels) and reason lines of our skips (rule lines hold numbers)."""
    ours = [block for block in text.split("\n\n") if "Mask Test" in block]
    shown = [line for block in ours for line in block.splitlines() if "#" not in line]
    assert len(ours) == len(BAD_CONTACTS) and len(shown) >= 2 * len(BAD_CONTACTS)
    for line in shown:
        for leak in LEAKS:
            assert leak not in line.lower(), (leak, line)


def test_cli_plan_of_a_world_with_bad_contacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    customers = tmp_path / "examples" / "world" / "erp_customers.csv"
    with customers.open(encoding="utf-8") as file:
        columns = next(csv.reader(file))
    with customers.open("a", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, columns)
        for no, email, phone, _ in BAD_CONTACTS:
            writer.writerow(
                {"no": no, "name": "Mask Test Ltd", "country_code": "US", "email": email}
                | {"phone": phone, "modified_at": "2026-01-10T09:00:00Z"}
            )
    monkeypatch.chdir(tmp_path)
    config = "examples/custsync.yaml"
    assert main(["plan", "--config", config, "--direction", "export", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    ours = {d["record"]: d for d in data["decisions"] if d["record"].startswith("M00")}
    assert {no: ours[no]["reason_code"] for no in ours} == {
        no: reason for no, _, _, reason in BAD_CONTACTS
    }
    _no_leak_in_json(list(ours.values()))
    assert main(["plan", "--config", config, "--direction", "export"]) == 0
    text = capsys.readouterr().out
    assert "the e-mail j*** is not a valid address" in text
    _no_leak_in_text(text)
