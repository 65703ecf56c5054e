"""Helpers for tests that sync with the BC double as the ERP: the connector's URL and
options for a started double, and a config file naming both doubles."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from custsync.connectors import business_central as bc
from custsync.connectors.bc_double import BcDouble
from custsync.engine.model import ShopifyAddress, ShopifyCustomer

from sync_world import write_config

SECRET_ENV = "CUSTSYNC_TEST_BC_SECRET"
COMPANY = "CRONUS USA, Inc."
PAGES = {
    "customer_card": "Customer",
    "countries": "CountriesRegions",
    "customer_templates": "CustomerTemplates",
}


def bc_url(double: BcDouble) -> str:
    return "bc+" + double.api_url.rsplit("/api/v2.0", 1)[0]


def bc_options(double: BcDouble, tmp_path: Path, **more: Any) -> dict[str, Any]:
    """Config options (erp.business_central) for ``double``; sets the secret's variable."""
    os.environ[SECRET_ENV] = double.client_secret
    options: dict[str, Any] = {
        "company": COMPANY,
        "company_country": "US",
        "client_id": double.client_id,
        "client_secret_env": SECRET_ENV,
        "journal": str(tmp_path / "bc-journal.sqlite"),
        "pages": dict(PAGES),
        "max_attempts": 3,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
    }
    options.update(more)
    return options


def open_bc(double: BcDouble, tmp_path: Path, **more: Any) -> bc.BcErpWriter:
    return bc.open_writer(bc_url(double), **bc_options(double, tmp_path, **more))


def write_bc_config(
    tmp_path: Path,
    double: BcDouble,
    *,
    shop_url: str,
    token: str,
    settings: Mapping[str, Any],
    countries: Sequence[Mapping[str, Any]] = (),
    **options: Any,
) -> Path:
    return write_config(
        tmp_path,
        shop_url=shop_url,
        erp_url=bc_url(double),
        state_url=f"sqlite:///{tmp_path / 'state.db'}",
        token=token,
        settings=settings,
        countries=countries,
        erp_options=bc_options(double, tmp_path, **options),
    )


#: shop settings of an import into BC: every Shopify customer, unknown ones created with the
#: double's US-RETAIL template, the name from the company, Name 2 from first and last name
IMPORT_SETTINGS: dict[str, Any] = {
    "customer_import": "all_customers",
    "auto_create_unknown_customers": True,
    "customer_template_code": "US-RETAIL",
    "name_source": "company_name",
    "name_2_source": "first_and_last_name",
}


def shopify_customer(i: int, **fields: Any) -> ShopifyCustomer:
    """New Shopify customer ``i`` (shop<i>@example.com, a default US address in Seattle),
    with ``fields`` replaced."""
    address = ShopifyAddress(
        default=True,
        first_name="Shop",
        last_name=f"Person {i}",
        company=f"Shop Company {i}",
        address1=f"{i} Main Street",
        zip="98101",
        city="Seattle",
        country_code="US",
        province_code="WA",
    )
    values: dict[str, Any] = {
        "id": "",
        "first_name": "Shop",
        "last_name": f"Person {i}",
        "email": f"shop{i}@example.com",
        "addresses": (address,),
    }
    values.update(fields)
    return ShopifyCustomer(**values)
