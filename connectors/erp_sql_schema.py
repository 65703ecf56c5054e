"""The SQL ERP database schema (a Business Central-shaped subset), SQLAlchemy Core.

Tables (prefixed ``erp_`` so the ERP may share a database with custsync's ``state_`` tables):

* ``erp_customer``: the customer fields of the design brief, the template fields
  (:data:`~custsync.engine.model.ERP_TEMPLATE_FIELDS`), ``template_code`` (the template it was
  created from), ``idempotency_key`` (unique; e.g. the Shopify gid that caused the create),
  ``modified_at`` (UTC, set on every write) and ``row_version`` (the etag, +1 on every write).
* ``erp_country``: code -> ISO 3166-1 alpha-2 code and name (``EL`` -> ``GR``).
* ``erp_company``: one row (id 1): the company name and its country.
* ``erp_customer_template``: code, description and the template fields' default values.
* ``erp_number_series``: numbers for new customers: ``prefix`` + ``last_no`` zero-padded to
  ``width`` (``C`` + ``00042``).
* ``erp_schema``: the schema version.

Lengths are Business Central's.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import sqlalchemy as sa
from custsync.engine.model import ERP_CUSTOMER_FIELDS, ERP_FIELD_LENGTHS, ERP_TEMPLATE_FIELDS
from custsync.engine.run.state import UtcDateTime

SCHEMA_VERSION = 1
CUSTOMER_SERIES = "CUST"

#: text lengths of every writable column (customer core fields, template fields, codes)
FIELD_LENGTHS: Mapping[str, int] = MappingProxyType(
    {
        "no": 20,
        **ERP_FIELD_LENGTHS,
        "country_code": 10,
        "gen_bus_posting_group": 20,
        "customer_posting_group": 20,
        "vat_bus_posting_group": 20,
        "tax_area_code": 20,
        "payment_terms_code": 10,
        "payment_method_code": 10,
        "currency_code": 10,
        "language_code": 10,
        "template_code": 20,
        "code": 20,
        "iso_code": 2,
        "description": 100,
        "company_name": 100,
    }
)
#: boolean columns (everything else is text)
BOOLEAN_FIELDS = frozenset({"tax_liable"})
#: every field a customer write may set
CUSTOMER_WRITABLE: tuple[str, ...] = ERP_CUSTOMER_FIELDS + ERP_TEMPLATE_FIELDS

metadata = sa.MetaData()


def _text(name: str, length: int | None = None) -> sa.Column[str]:
    return sa.Column(
        name, sa.String(length or FIELD_LENGTHS[name]), nullable=False, server_default=""
    )


def _template_columns() -> list[sa.Column[object]]:
    columns: list[sa.Column[object]] = []
    for name in ERP_TEMPLATE_FIELDS:
        if name in BOOLEAN_FIELDS:
            columns.append(sa.Column(name, sa.Boolean, nullable=False, server_default=sa.false()))
        else:
            columns.append(_text(name))  # type: ignore[arg-type]
    return columns


customer = sa.Table(
    "erp_customer",
    metadata,
    sa.Column("no", sa.String(FIELD_LENGTHS["no"]), primary_key=True),
    *(_text(name) for name in ERP_CUSTOMER_FIELDS if name != "no"),
    *_template_columns(),
    _text("template_code"),
    sa.Column("idempotency_key", sa.String(255), nullable=True, unique=True),
    sa.Column("modified_at", UtcDateTime, nullable=False),
    sa.Column("row_version", sa.Integer, nullable=False, server_default="1"),
    sa.Index("ix_erp_customer_modified_at", "modified_at"),
)

#: lookup keys of each customer (e-mail, phone suffixes, post code), so that an incremental
#: sync reads only the customers its changed records can match instead of the whole ERP;
#: rewritten in the same transaction as every write of the customer
customer_key = sa.Table(
    "erp_customer_key",
    metadata,
    sa.Column(
        "no",
        sa.String(FIELD_LENGTHS["no"]),
        sa.ForeignKey("erp_customer.no", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(10), nullable=False),  # email | phone | post_code
    sa.Column("key", sa.String(255), nullable=False),
    sa.Index("ix_erp_customer_key_lookup", "kind", "key"),
    sa.Index("ix_erp_customer_key_no", "no"),
)

country = sa.Table(
    "erp_country",
    metadata,
    sa.Column("code", sa.String(10), primary_key=True),
    _text("iso_code"),
    _text("name", 50),
)

company = sa.Table(
    "erp_company",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    _text("name", 100),
    _text("country_code"),
)

customer_template = sa.Table(
    "erp_customer_template",
    metadata,
    sa.Column("code", sa.String(FIELD_LENGTHS["code"]), primary_key=True),
    _text("description"),
    *_template_columns(),
)

number_series = sa.Table(
    "erp_number_series",
    metadata,
    sa.Column("code", sa.String(20), primary_key=True),
    _text("prefix", 10),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("last_no", sa.Integer, nullable=False, server_default="0"),
)

schema_table = sa.Table(
    "erp_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

#: columns of each ``erp load`` kind, in CSV order (``no``/``code`` first)
LOAD_COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "customers": CUSTOMER_WRITABLE,
        "countries": ("code", "iso_code", "name"),
        "templates": ("code", "description", *ERP_TEMPLATE_FIELDS),
    }
)

#: countries seeded by ``erp init`` (ERP code, ISO code); names come from ISO 3166
SEED_COUNTRIES: tuple[tuple[str, str], ...] = (
    ("AT", "AT"),
    ("AU", "AU"),
    ("BE", "BE"),
    ("CA", "CA"),
    ("CH", "CH"),
    ("DE", "DE"),
    ("DK", "DK"),
    ("EL", "GR"),  # Business Central's code for Greece
    ("ES", "ES"),
    ("FI", "FI"),
    ("FR", "FR"),
    ("GB", "GB"),
    ("IE", "IE"),
    ("IT", "IT"),
    ("MX", "MX"),
    ("NL", "NL"),
    ("NO", "NO"),
    ("NZ", "NZ"),
    ("PL", "PL"),
    ("PT", "PT"),
    ("SE", "SE"),
    ("US", "US"),
)

#: the template ``erp init --with-defaults`` adds
DEFAULT_TEMPLATE: Mapping[str, object] = MappingProxyType(
    {
        "code": "DEFAULT",
        "description": "Default customer template (custsync erp init)",
        "gen_bus_posting_group": "DOMESTIC",
        "customer_posting_group": "DOMESTIC",
        "vat_bus_posting_group": "DOMESTIC",
        "payment_terms_code": "14 DAYS",
        "tax_liable": False,
    }
)
