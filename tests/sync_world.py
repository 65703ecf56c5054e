"""Helpers for end-to-end sync tests: a real SQLite (or PostgreSQL) ERP, a config file pointing
at the local Shopify double, and a state store."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from custsync.connectors.erp_sql import LoadRow, open_writer
from custsync.engine.model import ERP_CUSTOMER_FIELDS, ErpCustomer

TOKEN_ENV = "CUSTSYNC_TEST_SHOPIFY_TOKEN"

TEMPLATES = (
    {
        "code": "RETAIL",
        "description": "Retail",
        "gen_bus_posting_group": "DOMESTIC",
        "customer_posting_group": "DOMESTIC",
        "vat_bus_posting_group": "DOMESTIC",
        "payment_terms_code": "14 DAYS",
    },
    {
        "code": "US-RETAIL",
        "description": "US retail",
        "gen_bus_posting_group": "EXPORT",
        "customer_posting_group": "FOREIGN",
        "tax_liable": "true",
        "payment_terms_code": "COD",
    },
)


def make_erp(url: str, customers: Iterable[ErpCustomer] = (), company_country: str = "NL") -> None:
    erp = open_writer(url, create=True)
    try:
        erp.initialize(company_name="Test Company", company_country=company_country)
        rows = [LoadRow(i + 2, {k: str(v) for k, v in t.items()}) for i, t in enumerate(TEMPLATES)]
        report = erp.load("templates", rows)
        assert not report.problems, report.problems
        records = [{f: getattr(c, f) for f in ERP_CUSTOMER_FIELDS} for c in customers]
        if records:
            report = erp.load("customers", [LoadRow(i + 2, r) for i, r in enumerate(records)])
            assert not report.problems, report.problems
    finally:
        erp.close()


def write_config(
    folder: Path,
    *,
    shop_url: str,
    erp_url: str,
    state_url: str,
    settings: Mapping[str, Any],
    countries: Sequence[Mapping[str, Any]] = (),
    token: str = "shpat_test",
    shopify_options: Mapping[str, Any] | None = None,
    erp_options: Mapping[str, Any] | None = None,
) -> Path:
    """``shopify_options``: more options of the shop's ``shopify:`` section;
    ``erp_options``: the ERP's ``business_central:`` section."""
    os.environ[TOKEN_ENV] = token
    erp: dict[str, Any] = {"url": erp_url}
    if erp_options is not None:
        erp["business_central"] = dict(erp_options)
    document = {
        "erp": erp,
        "state": {"url": state_url},
        "rules": [],
        "shops": [
            {
                "name": "main",
                "shopify": {
                    "url": shop_url,
                    "access_token_env": TOKEN_ENV,
                    "timeout_seconds": 10,
                    # fast retries: tests inject faults and must not wait for real backoff
                    "max_attempts": 3,
                    "retry_base_delay_seconds": 0.01,
                    "retry_max_delay_seconds": 0.05,
                    **dict(shopify_options or {}),
                },
                "settings": dict(settings),
                "countries": list(countries),
                "schedule": {"import": "*/5 * * * *", "export": "*/5 * * * *"},
            }
        ],
    }
    path = folder / "custsync.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


IMPORT_SETTINGS: Mapping[str, Any] = {
    "customer_import": "all_customers",
    "auto_create_unknown_customers": True,
    "customer_template_code": "RETAIL",
}

EXPORT_SETTINGS: Mapping[str, Any] = {
    "customer_import": "with_order_import",
    "export_customers": True,
    "can_update_shopify_customers": True,
}


def export_world(folder: Path, double: Any, customers: Iterable[ErpCustomer]) -> Path:
    """A SQLite ERP holding ``customers`` and the config of an export to ``double``, with a
    state database beside it; returns the config file."""
    make_erp(f"sqlite:///{folder / 'erp.db'}", customers)
    return write_config(
        folder,
        shop_url=double.url,
        erp_url=f"sqlite:///{folder / 'erp.db'}",
        state_url=f"sqlite:///{folder / 'state.db'}",
        settings=EXPORT_SETTINGS,
        token=double.token,
    )
