"""The closed vocabulary of the rule language: decisions, their actions, and the facts.

This module is the single source of truth that the JSON Schema (``schemas/rules.schema.json``),
the semantic validator, the compiler, the enrichers and the README's rule-file reference agree
with (a test checks the schema against it).

A rule file contributes rules to exactly one **decision**. A decision is either

* ``choice``: the highest-priority rule whose conditions hold wins (ties: file order);
* ``collect``: every rule whose conditions hold contributes (e.g. all skip reasons at once);
* ``assign``: every rule that holds contributes one field assignment; per field, the
  highest-priority rule wins.

Facts are flat dotted names (``settings.customer_import``). The enrichers compute them in
Python before evaluation; a fact that is empty (``None``, ``""``) is *absent*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "BOOL",
    "CONTACT_SOURCES",
    "DECISIONS",
    "FACTS",
    "INT",
    "NAME_SOURCES",
    "STRING",
    "ActionSpec",
    "DecisionSpec",
    "FactSpec",
    "ParamSpec",
    "facts_for",
]

# ---------------------------------------------------------------------------------------------
# Types of facts and parameters
# ---------------------------------------------------------------------------------------------

STRING = "string"
BOOL = "boolean"
INT = "integer"

NAME_SOURCES = ("company_name", "first_and_last_name", "last_and_first_name", "none")
CONTACT_SOURCES = ("first_and_last_name", "last_and_first_name", "none")


@dataclass(frozen=True, slots=True)
class FactSpec:
    name: str
    type: str  # STRING | BOOL | INT
    description: str
    #: the decisions whose records carry this fact; empty = every decision
    scopes: frozenset[str] = frozenset()
    #: allowed values for enum-like string facts (settings)
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    type: str  # STRING | BOOL | INT
    required: bool = False
    #: True: the value may be ``{fact: name}``; strings may also hold ``{fact.name}`` templates
    fact_ref: bool = True
    values: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    description: str
    params: tuple[ParamSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class DecisionSpec:
    name: str
    kind: str  # "choice" | "collect" | "assign"
    direction: str  # "import" | "order" | "export"
    description: str
    actions: Mapping[str, ActionSpec] = field(default_factory=dict)


def _actions(*specs: ActionSpec) -> Mapping[str, ActionSpec]:
    return MappingProxyType({spec.name: spec for spec in specs})


_REASON = ParamSpec("reason", STRING, required=True, fact_ref=False, description="reason code")
_MESSAGE = ParamSpec(
    "message", STRING, required=True, description="human message; may use {fact.name}"
)


def _skip(description: str = "Do not process the record; say why.") -> ActionSpec:
    return ActionSpec("skip", description, (_REASON, _MESSAGE))


# ---------------------------------------------------------------------------------------------
# Decisions and actions
# ---------------------------------------------------------------------------------------------

DECISIONS: Mapping[str, DecisionSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            DecisionSpec(
                "import_selection",
                "choice",
                "import",
                "Whether a new or changed Shopify customer is processed by the customer sync.",
                _actions(ActionSpec("process", "Go on to matching."), _skip()),
            ),
            DecisionSpec(
                "import_match",
                "choice",
                "import",
                "Which ERP customer a Shopify customer is (link, e-mail, phone, ...).",
                _actions(
                    ActionSpec(
                        "match",
                        "The Shopify customer is this ERP customer.",
                        (
                            ParamSpec("customer_no", STRING, required=True),
                            ParamSpec("method", STRING, required=True, fact_ref=False),
                        ),
                    ),
                    ActionSpec("no_match", "No ERP customer matches."),
                ),
            ),
            DecisionSpec(
                "import_create",
                "choice",
                "import",
                "Whether and with which template an unmatched Shopify customer is created.",
                _actions(
                    ActionSpec(
                        "create",
                        "Create the ERP customer from a template.",
                        (ParamSpec("template", STRING, required=True),),
                    ),
                    _skip("Do not create; say why."),
                ),
            ),
            DecisionSpec(
                "import_update",
                "choice",
                "import",
                "Whether a matched ERP customer is updated from Shopify.",
                _actions(
                    ActionSpec("update", "Write the mapped fields that differ, and link."),
                    ActionSpec("link_only", "Link without writing fields."),
                    _skip("Do not update; say why (the link is still recorded)."),
                ),
            ),
            DecisionSpec(
                "import_fields",
                "assign",
                "import",
                "The ERP customer fields written on create and update.",
                _actions(
                    ActionSpec(
                        "set",
                        "Set an ERP field; texts are cut to max_length.",
                        (
                            ParamSpec("field", STRING, required=True, fact_ref=False),
                            ParamSpec("value", STRING, required=True),
                            ParamSpec("max_length", INT, fact_ref=False),
                        ),
                    ),
                    ActionSpec(
                        "keep",
                        "Leave the ERP field as it is (wins over lower-priority sets).",
                        (ParamSpec("field", STRING, required=True, fact_ref=False),),
                    ),
                ),
            ),
            DecisionSpec(
                "order_method",
                "choice",
                "order",
                "How a Shopify order's sell-to/bill-to ERP customer is found.",
                _actions(
                    ActionSpec(
                        "use_customer",
                        "Use this ERP customer as sell-to and bill-to.",
                        (ParamSpec("customer_no", STRING, required=True),),
                    ),
                    ActionSpec(
                        "by_email_phone",
                        "The Shopify customer's link, else import it as in the customer sync.",
                        (ParamSpec("allow_create", BOOL),),
                    ),
                    ActionSpec(
                        "by_bill_to",
                        "The address equal to the order's bill-to: its link, an ERP customer "
                        "with that name and address, else create one if allowed.",
                        (ParamSpec("allow_create", BOOL),),
                    ),
                    _skip("Leave the order unmapped; say why."),
                ),
            ),
            DecisionSpec(
                "order_fallback",
                "choice",
                "order",
                "What happens when the chosen method found no customer.",
                _actions(
                    ActionSpec(
                        "use_customer",
                        "Use this ERP customer.",
                        (ParamSpec("customer_no", STRING, required=True),),
                    ),
                    _skip("Leave the order unmapped; say why."),
                ),
            ),
            DecisionSpec(
                "export_requirements",
                "collect",
                "export",
                "Requirements an ERP customer must meet before anything is sent to Shopify.",
                _actions(_skip("Do not export; every firing rule adds its reason.")),
            ),
            DecisionSpec(
                "export_action",
                "choice",
                "export",
                "Create, adopt, update or skip the Shopify customer of an ERP customer.",
                _actions(
                    ActionSpec("create", "Create the Shopify customer and link it."),
                    ActionSpec(
                        "adopt",
                        "Link an unlinked Shopify customer found by e-mail or phone.",
                        (
                            ParamSpec("shopify_id", STRING, required=True),
                            ParamSpec("update", BOOL),
                        ),
                    ),
                    ActionSpec("update", "Send the fields that changed to the linked customer."),
                    _skip(),
                ),
            ),
            DecisionSpec(
                "export_person_name",
                "choice",
                "export",
                "First and last name of the Shopify customer, split from an ERP name field.",
                _actions(
                    ActionSpec(
                        "split",
                        "Split text by a name source (first word / last word).",
                        (
                            ParamSpec("text", STRING, required=True),
                            ParamSpec("source", STRING, required=True, values=CONTACT_SOURCES),
                        ),
                    ),
                    ActionSpec("no_name", "Send no first or last name."),
                ),
            ),
            DecisionSpec(
                "export_company",
                "choice",
                "export",
                "The company of the Shopify customer's default address.",
                _actions(
                    ActionSpec(
                        "set_company",
                        "Use this value as the company.",
                        (ParamSpec("value", STRING, required=True),),
                    ),
                    ActionSpec("no_company", "Send no company."),
                ),
            ),
            DecisionSpec(
                "export_province",
                "choice",
                "export",
                "The province of the Shopify customer's default address, from ERP County.",
                _actions(
                    ActionSpec(
                        "set_province",
                        "Use this province code and name.",
                        (
                            ParamSpec("code", STRING, required=True),
                            ParamSpec("name", STRING),
                        ),
                    ),
                    ActionSpec(
                        "no_province",
                        "Send no province.",
                        (
                            ParamSpec(
                                "note",
                                STRING,
                                description="why, shown on the decision (the export still "
                                "goes ahead); may use {fact.name}",
                            ),
                        ),
                    ),
                    _skip("The customer cannot be exported; say why."),
                ),
            ),
        )
    }
)

# ---------------------------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------------------------

_IMPORT = frozenset(
    {"import_selection", "import_match", "import_create", "import_update", "import_fields"}
)
_ORDER = frozenset({"order_method", "order_fallback"})
_EXPORT = frozenset(
    {
        "export_requirements",
        "export_action",
        "export_person_name",
        "export_company",
        "export_province",
    }
)
_ALL: frozenset[str] = frozenset()


def _facts(scopes: frozenset[str], prefix: str, rows: list[tuple[str, str, str]]) -> list[FactSpec]:
    return [FactSpec(f"{prefix}.{name}", typ, desc, scopes) for name, typ, desc in rows]


_SETTINGS = [
    FactSpec(
        "settings.customer_import",
        STRING,
        "Which Shopify customers the sync imports.",
        _ALL,
        ("none", "with_order_import", "all_customers"),
    ),
    FactSpec(
        "settings.customer_mapping_type",
        STRING,
        "How an order's customer is mapped.",
        _ALL,
        ("by_email_phone", "by_bill_to", "default_customer"),
    ),
    FactSpec("settings.shopify_can_update_customers", BOOL, "Shopify may update ERP.", _ALL),
    FactSpec("settings.can_update_shopify_customers", BOOL, "ERP may update Shopify.", _ALL),
    FactSpec("settings.auto_create_unknown_customers", BOOL, "Create unmatched customers.", _ALL),
    FactSpec("settings.customer_template_code", STRING, "The shop's fallback template.", _ALL),
    FactSpec("settings.default_customer_no", STRING, "The shop's default customer.", _ALL),
    FactSpec("settings.export_customers", BOOL, "Export ERP customers not in Shopify.", _ALL),
    FactSpec("settings.name_source", STRING, "Source of ERP Name.", _ALL, NAME_SOURCES),
    FactSpec("settings.name_2_source", STRING, "Source of ERP Name 2.", _ALL, NAME_SOURCES),
    FactSpec("settings.contact_source", STRING, "Source of ERP Contact.", _ALL, CONTACT_SOURCES),
    FactSpec("settings.county_source", STRING, "ERP County holds", _ALL, ("code", "name")),
    FactSpec("settings.send_invite_email", BOOL, "Invite created Shopify customers.", _ALL),
]

_ADDRESS_FIELDS = [
    ("id", STRING, "MailingAddress gid"),
    ("company", STRING, "company"),
    ("first_name", STRING, "first name"),
    ("last_name", STRING, "last name"),
    ("address1", STRING, "address line 1"),
    ("address2", STRING, "address line 2"),
    ("zip", STRING, "postal code"),
    ("city", STRING, "city"),
    ("country_code", STRING, "ISO 3166-1 alpha-2 country code"),
    ("province_code", STRING, "province code"),
    ("province", STRING, "province name"),
    ("phone", STRING, "phone"),
]

_ERP_FIELDS = [
    ("no", STRING, "customer no."),
    ("name", STRING, "Name"),
    ("name_2", STRING, "Name 2"),
    ("contact", STRING, "Contact"),
    ("address", STRING, "Address"),
    ("address_2", STRING, "Address 2"),
    ("city", STRING, "City"),
    ("post_code", STRING, "Post Code"),
    ("county", STRING, "County"),
    ("country_code", STRING, "ERP country code"),
    ("phone", STRING, "Phone No."),
    ("email", STRING, "E-Mail"),
]

_IMPORT_AND_ORDER = _IMPORT | _ORDER

_FACT_LIST: list[FactSpec] = [
    *_SETTINGS,
    # --- the Shopify customer (import, order) -----------------------------------------------
    *_facts(
        _IMPORT_AND_ORDER,
        "shopify",
        [
            ("id", STRING, "Customer gid"),
            ("email", STRING, "e-mail"),
            ("phone", STRING, "phone (E.164)"),
            ("first_name", STRING, "first name"),
            ("last_name", STRING, "last name"),
            ("state", STRING, "account state"),
            ("address_count", INT, "number of addresses"),
            ("has_address", BOOL, "at least one address"),
            ("changed_since_import", BOOL, "updated after its last import"),
            ("own_write_echo", BOOL, "the change is our own last export echoing back"),
        ],
    ),
    # the chosen address: default, else first
    *_facts(_IMPORT_AND_ORDER, "address", _ADDRESS_FIELDS),
    *_facts(
        _IMPORT_AND_ORDER,
        "default_address",
        [("country_code", STRING, "country of the default address")],
    ),
    *_facts(
        _IMPORT_AND_ORDER,
        "first_address",
        [("country_code", STRING, "country of the first address")],
    ),
    # --- lookups (indexes) -------------------------------------------------------------------
    *_facts(
        _IMPORT_AND_ORDER,
        "link",
        [
            ("exists", BOOL, "a link to an existing ERP customer exists"),
            ("customer_no", STRING, "the linked ERP customer"),
            ("dropped", BOOL, "a link to a deleted ERP customer was dropped"),
        ],
    ),
    *_facts(
        _IMPORT_AND_ORDER,
        "lookup",
        [
            ("email_customer_no", STRING, "first ERP customer with the e-mail (ignoring case)"),
            ("phone_e164_customer_no", STRING, "first ERP customer with the same E.164 phone"),
            ("phone_digits_customer_no", STRING, "first ERP customer by the digit rule"),
            ("bill_to_customer_no", STRING, "ERP customer linked to the order's bill-to address"),
            ("bill_to_name_customer_no", STRING, "ERP customer with the bill-to name and address"),
        ],
    ),
    *_facts(
        _IMPORT_AND_ORDER,
        "caller",
        [
            ("template_code", STRING, "template given by the caller (order import)"),
            (
                "allow_create",
                BOOL,
                "set by an order mapping: whether it may create the customer (absent on a "
                "customer sync)",
            ),
        ],
    ),
    *_facts(
        _IMPORT_AND_ORDER,
        "default_country_setup",
        [
            ("exists", BOOL, "a per-country setup exists for the default address's country"),
            ("customer_template_code", STRING, "its template"),
        ],
    ),
    *_facts(
        _IMPORT_AND_ORDER,
        "first_country_setup",
        [
            ("exists", BOOL, "a per-country setup exists for the first address's country"),
            ("customer_template_code", STRING, "its template"),
        ],
    ),
    # --- name functions and mapped values for the import field mapping -----------------------
    *_facts(
        _IMPORT,
        "names",
        [
            ("by_name_source", STRING, "NS(name_source)"),
            ("by_name_2_source", STRING, "NS(name_2_source)"),
            ("by_contact_source", STRING, "NS(contact_source)"),
        ],
    ),
    *_facts(
        _IMPORT,
        "mapped",
        [
            ("country_code", STRING, "ERP country whose ISO code is the address's"),
            ("county", STRING, "province code or name per county_source"),
            ("phone", STRING, "address phone, else customer phone"),
            ("tax_area_code", STRING, "tax area of (country, province name)"),
            ("tax_liable", BOOL, "tax liable of that row"),
            ("vat_bus_posting_group", STRING, "VAT business posting group of that row"),
            ("has_tax_area", BOOL, "a tax area row matched"),
        ],
    ),
    # --- the ERP customer (matched on import; the exported one on export) --------------------
    *_facts(_IMPORT | _EXPORT, "erp", _ERP_FIELDS),
    *_facts(_IMPORT | _EXPORT, "erp", [("exists", BOOL, "an ERP customer is at hand")]),
    # --- order ---------------------------------------------------------------------------------
    *_facts(
        _ORDER,
        "order",
        [
            ("id", STRING, "Order gid"),
            ("has_name", BOOL, "the order's addresses carry a name or company"),
            ("has_customer", BOOL, "the order has a Shopify customer"),
            ("ship_to_country_code", STRING, "ISO country of the ship-to address"),
            ("bill_to_country_code", STRING, "ISO country of the bill-to address"),
            ("mapped_customer_no", STRING, "customer found by the chosen method (fallback only)"),
            ("method", STRING, "the method chosen (fallback only)"),
        ],
    ),
    *_facts(
        _ORDER,
        "order_country_setup",
        [
            ("exists", BOOL, "a per-country setup exists for the ship-to country"),
            ("default_customer_no", STRING, "its default customer"),
        ],
    ),
    # --- export --------------------------------------------------------------------------------
    *_facts(
        _EXPORT,
        "email",
        [
            ("first", STRING, "the part before the first ';' or ','"),
            ("valid", BOOL, "that e-mail is valid"),
        ],
    ),
    *_facts(
        _EXPORT,
        "country",
        [
            ("code", STRING, "the customer's ERP country, or the company's for a blank one"),
            ("iso_code", STRING, "its ISO code"),
            ("from_company", BOOL, "the company's country was used"),
        ],
    ),
    *_facts(
        _EXPORT,
        "phone",
        [
            ("present", BOOL, "the customer has a phone"),
            ("valid", BOOL, "it parses as a number callable worldwide"),
            ("e164", STRING, "it in E.164"),
            ("duplicate_in_batch", BOOL, "another customer of this export has it"),
            ("duplicate_in_shopify", BOOL, "another Shopify customer has it"),
        ],
    ),
    *_facts(
        _EXPORT,
        "export",
        [("requested", BOOL, "a user named this customer for export (create even when off)")],
    ),
    *_facts(
        _EXPORT,
        "shopify_link",
        [
            ("exists", BOOL, "the ERP customer is linked to a Shopify customer"),
            ("shopify_id", STRING, "that Shopify customer"),
        ],
    ),
    *_facts(
        _EXPORT,
        "shopify_match",
        [
            ("id", STRING, "Shopify customer with the e-mail, else with the phone"),
            ("by", STRING, "'email' or 'phone'"),
            ("linked_to", STRING, "the ERP customer that Shopify customer is linked to"),
            ("linked_elsewhere", BOOL, "linked to another ERP customer"),
        ],
    ),
    *_facts(
        _EXPORT,
        "county",
        [
            ("length", INT, "length of ERP County"),
            ("tax_areas_exist", BOOL, "tax areas exist for the customer's country"),
        ],
    ),
    *_facts(
        _EXPORT,
        "province",
        [
            ("by_code_code", STRING, "tax area row found by county code: its code"),
            ("by_code_name", STRING, "... its county name"),
            ("by_name_code", STRING, "tax area row found by exact county name: its code"),
            ("by_name_name", STRING, "... its county name"),
            ("by_prefix_code", STRING, "tax area row whose name starts with County: its code"),
            ("by_prefix_name", STRING, "... its county name"),
        ],
    ),
    *_facts(
        _ALL,
        "company",
        [
            ("name", STRING, "the ERP company's name"),
            ("country_code", STRING, "the ERP company's country"),
        ],
    ),
]

FACTS: Mapping[str, FactSpec] = MappingProxyType({spec.name: spec for spec in _FACT_LIST})


def facts_for(decision: str) -> Mapping[str, FactSpec]:
    """The facts a rule of ``decision`` may read."""
    return {
        name: spec for name, spec in FACTS.items() if not spec.scopes or decision in spec.scopes
    }
