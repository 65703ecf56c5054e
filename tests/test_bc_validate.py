"""`custsync validate` reaches Business Central (the BC double over loopback): sign-in,
environment, company and each configured page; every failure is reported at the config line
it concerns with what to check, a non-zero exit for errors, warnings for pages that do not
answer, and never a secret. ``--offline`` does not contact BC."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from custsync.connectors.bc_double import BcDouble
from custsync.engine.cli import main

from bc_world import SECRET_ENV, write_bc_config

SETTINGS: dict[str, Any] = {"name_source": "company_name", "name_2_source": "first_and_last_name"}


def _config(tmp_path: Path, double: BcDouble, **options: Any) -> Path:
    return write_bc_config(
        tmp_path, double, shop_url="http://127.0.0.1:9", token="shpat_x", settings=SETTINGS, **options
    )


def _validate(config: Path, capsys: Any, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    """Exit code, the ERP connection diagnostics (JSON) and the summary line."""
    code = main(["validate", "--config", str(config), "-o", "json", *extra])
    captured = capsys.readouterr()
    found = [d for d in json.loads(captured.out) if d["code"] == "erp-connection"]
    return code, found, captured.err + captured.out


def _line_of(config: Path, line: int) -> str:
    return config.read_text().splitlines()[line - 1]


def test_a_working_setup_is_reached_and_valid(
    tmp_path: Path, bc_double: BcDouble, capsys: Any
) -> None:
    config = _config(tmp_path, bc_double)
    before = len(bc_double.requests)
    code, found, text = _validate(config, capsys)
    assert (code, found) == (0, [])
    assert "ERP reached" in text
    targets = {r.target for r in bc_double.requests[before:]}
    assert {"token", "companies", "Customer", "CountriesRegions", "CustomerTemplates"} <= targets


def test_offline_does_not_contact_bc(tmp_path: Path, bc_double: BcDouble, capsys: Any) -> None:
    config = _config(tmp_path, bc_double)
    os.environ[SECRET_ENV] = "wrong"
    before = len(bc_double.requests)
    code, found, text = _validate(config, capsys, "--offline")
    assert (code, found) == (0, [])
    assert len(bc_double.requests) == before and "ERP" not in text


@pytest.mark.parametrize(
    ("change", "pointer", "key", "words"),
    [
        (
            {"secret": "not-the-secret"},
            "/erp/business_central/client_secret_env",
            "client_secret_env",
            ["AADSTS7000215", "client_id", SECRET_ENV],
        ),
        (
            {"secret": ""},
            "/erp/business_central/client_secret_env",
            "client_secret_env",
            [SECRET_ENV, "not set"],
        ),
        (
            {"client_id": "11111111-2222-3333-4444-555555555555"},
            "/erp/business_central/client_id",
            "client_id",
            ["AADSTS700016", "check tenant"],
        ),
        ({"tenant": "wrong-tenant.onmicrosoft.com"}, "/erp/url", "url", ["AADSTS90002"]),
        ({"environment": "NoSuchEnv"}, "/erp/url", "url", ["NoSuchEnv", "not found"]),
        (
            {"company": "cronus usa, inc."},
            "/erp/business_central/company",
            "company",
            ["does not exist", "case-sensitive", "'CRONUS USA, Inc.'"],
        ),
    ],
)
def test_what_stops_a_run_is_an_error_at_its_config_line(
    tmp_path: Path,
    bc_double: BcDouble,
    capsys: Any,
    change: dict[str, str],
    pointer: str,
    key: str,
    words: list[str],
) -> None:
    options = {k: v for k, v in change.items() if k in ("client_id", "company")}
    config = _config(tmp_path, bc_double, **options)
    text = config.read_text()
    if "tenant" in change:
        text = text.replace(f"/{bc_double.tenant}/", f"/{change['tenant']}/")
    if "environment" in change:
        text = text.replace(f"/{bc_double.environment}", f"/{change['environment']}")
    config.write_text(text)
    right_secret = os.environ[SECRET_ENV]
    if "secret" in change:
        os.environ[SECRET_ENV] = change["secret"]
    try:
        code, found, output = _validate(config, capsys)
    finally:
        os.environ[SECRET_ENV] = right_secret
    assert code == 1
    (finding,) = found
    assert finding["severity"] == "error" and finding["pointer"] == pointer
    assert key in _line_of(config, finding["line"])
    for word in words:
        assert word in finding["message"], finding["message"]
    assert right_secret not in output
    if change.get("secret"):
        assert change["secret"] not in output


def test_a_page_not_published_is_a_warning_naming_it(
    tmp_path: Path, bc_double_factory: Callable[..., BcDouble], capsys: Any
) -> None:
    double = bc_double_factory(published={"CountriesRegions": "countries_regions"})
    config = _config(tmp_path, double)
    code, found, _ = _validate(config, capsys)
    assert code == 0
    by_pointer = {f["pointer"]: f for f in found}
    assert set(by_pointer) == {
        "/erp/business_central/pages/customer_card",
        "/erp/business_central/pages/customer_templates",
    }
    card = by_pointer["/erp/business_central/pages/customer_card"]
    assert card["severity"] == "warning"
    assert "'Customer' cannot be read" in card["message"]
    assert "publish the page as a web service named 'Customer'" in card["message"]
    assert "Name 2, Contact" in card["message"] and "not read or written" in card["message"]
    assert "customer_card" in _line_of(config, card["line"])
    templates = by_pointer["/erp/business_central/pages/customer_templates"]
    assert "BC's own defaults" in templates["message"]


def test_a_custom_api_page_that_is_not_there_is_named(
    tmp_path: Path, bc_double_factory: Callable[..., BcDouble], capsys: Any
) -> None:
    double = bc_double_factory(custom_apis={})
    path = "api/contoso/custsync/v1.0/companies({company_id})/customerCards"
    pages = {
        "customer_card": {"path": path},
        "countries": "CountriesRegions",
        "customer_templates": "CustomerTemplates",
    }
    config = _config(tmp_path, double, pages=pages)
    code, found, _ = _validate(config, capsys)
    assert code == 0
    (card,) = found
    assert card["pointer"] == "/erp/business_central/pages/customer_card"
    assert path in card["message"] and "BadRequest_NotFound" in card["message"]
    assert "extension with this API page is installed" in card["message"]


def test_name_2_without_the_customer_card_is_a_located_warning(
    tmp_path: Path, bc_double: BcDouble, capsys: Any
) -> None:
    pages = {"countries": "CountriesRegions", "customer_templates": "CustomerTemplates"}
    config = _config(tmp_path, bc_double, pages=pages)
    code = main(["validate", "--config", str(config), "-o", "json"])
    diagnostics = json.loads(capsys.readouterr().out)
    assert code == 0
    (warning,) = [d for d in diagnostics if "Name 2" in d["message"]]
    assert warning["severity"] == "warning" and warning["line"] > 0
    assert "pages.customer_card" in warning["message"]


def test_a_template_bc_does_not_have_is_an_error_at_its_line(
    tmp_path: Path, bc_double: BcDouble, capsys: Any
) -> None:
    """A customer template code the config names (the shop's, a country's) that is not in
    BC's Customer Templ. would fail every create made with it: validate says so at its line
    and names the templates BC has; a code BC has is fine."""
    config = write_bc_config(
        tmp_path,
        bc_double,
        shop_url="http://127.0.0.1:9",
        token="shpat_x",
        settings={**SETTINGS, "customer_template_code": "US-RETAIL"},
        countries=[
            {"iso_code": "US", "customer_template_code": "US-RETAIL"},
            {"iso_code": "CA", "customer_template_code": "CA-RETAIL"},
        ],
    )
    code = main(["validate", "--config", str(config), "-o", "json"])
    found = [d for d in json.loads(capsys.readouterr().out) if d["code"] == "unknown-template"]
    assert code == 1
    (finding,) = found
    assert finding["pointer"] == "/shops/0/countries/1/customer_template_code"
    assert "CA-RETAIL" in _line_of(config, finding["line"])
    assert "'CA-RETAIL' is not one of the ERP's (EU-RETAIL, US-RETAIL" in finding["message"]
    # offline, BC is not asked: nothing to say about templates
    assert main(["validate", "--config", str(config), "--offline", "-o", "json"]) == 0
    assert not [d for d in json.loads(capsys.readouterr().out) if d["code"] == "unknown-template"]
