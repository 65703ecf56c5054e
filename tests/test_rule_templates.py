"""``{fact.name}`` templates in rule parameters: data is written as it is, messages are masked."""

from __future__ import annotations

from custsync.engine.decide.engine import Engine
from custsync.engine.decide.world import World
from custsync.engine.model import Action

from test_decide import REFERENCE, customer, shipped_rules, shop

CONTACT_FROM_EMAIL = """
decision: import_fields
rules:
  - id: contact-from-contact-source
    description: a user's override - the e-mail and phone as the ERP contact
    priority: 100
    then: {action: set, field: contact, value: "{shopify.email} / {shopify.phone}", max_length: 100}
"""

SKIP_WITH_EMAIL = """
decision: import_selection
rules:
  - id: skip-test-shop
    description: a user's rule whose reason shows the e-mail
    priority: 1000
    when: {shopify.email: {present: true}}
    then: {action: skip, reason: test-customer, message: "test customer {shopify.email} ({shopify.phone})"}
"""


def test_a_data_template_writes_the_contact_values_unmasked() -> None:
    engine = Engine(shipped_rules(CONTACT_FROM_EMAIL))
    jane = customer("5", email="jane.doe@example.com", phone="+14155550101")
    settings = shop(customer_import="all_customers", auto_create_unknown_customers=True)
    decision = engine.decide_import(World((), REFERENCE, [], []), settings, jane)
    assert decision.action is Action.CREATE, decision
    changes = {change.field: change.new for change in decision.changes}
    assert changes["contact"] == "jane.doe@example.com / +14155550101"


def test_a_message_template_masks_the_contact_values() -> None:
    engine = Engine(shipped_rules(SKIP_WITH_EMAIL))
    jane = customer("6", email="jane.doe@example.com", phone="+14155550101")
    decision = engine.decide_import(
        World((), REFERENCE, [], []), shop(customer_import="all_customers"), jane
    )
    assert decision.action is Action.SKIP, decision
    assert decision.message is not None
    assert "jane.doe" not in decision.message and "5550101" not in decision.message
    assert "j***@example.com" in decision.message
