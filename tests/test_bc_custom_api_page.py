"""Route 2 for what BC's standard API lacks: a customer's own API page instead of the published
Customer Card (Microsoft's own pages cannot be published as OData from BC version 30). The BC
double serves one (``api/contoso/custsync/v1.0/companies({id})/customerCards``, keyed by
number, camelCase fields); the connector reads and writes Name 2, Contact and the posting
groups through it, end to end with ``plan`` and ``sync``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from custsync.connectors.bc_double import BcDouble
from custsync.connectors.shopify_double import ShopifyDouble
from custsync.connectors.shopify_double.seed import seed_from_models
from custsync.engine.cli import main

from bc_world import IMPORT_SETTINGS, open_bc, shopify_customer, write_bc_config
from fixtures_bc import bc_company, bc_token

CUSTOM_CARD = "api/contoso/custsync/v1.0/companies({company_id})/customerCards"
#: the Microsoft pages published except the Customer Card: the card comes from the API page
PUBLISHED = {"CountriesRegions": "countries_regions", "CustomerTemplates": "customer_templates"}
PAGES = {
    "customer_card": {"path": CUSTOM_CARD},
    "countries": "CountriesRegions",
    "customer_templates": "CustomerTemplates",
}


def test_the_double_serves_a_custom_api_page(bc_double: BcDouble) -> None:
    company = bc_company(bc_double)
    base = f"{bc_double.environment_url}/api/contoso/custsync/v1.0/companies({company.id})"
    headers = {"Authorization": f"Bearer {bc_token(bc_double)}"}
    with httpx.Client(trust_env=False, headers=headers) as http:
        rows = http.get(f"{base}/customerCards", params={"$filter": "number eq 'C00020'"})
        assert rows.status_code == 200, rows.text
        (row,) = rows.json()["value"]
        assert (row["number"], row["name2"], row["contact"]) == (
            "C00020",
            "Sales office",
            "Helen Ray",
        )
        assert list(row)[:3] == ["@odata.etag", "id", "number"]
        one = http.get(f"{base}/customerCards('C00020')").json()
        assert one["@odata.context"].endswith("/customerCards/$entity")
        assert http.patch(f"{base}/customerCards('C00020')", json={"name2": "x"}).status_code == 400
        changed = http.patch(
            f"{base}/customerCards('C00020')",
            json={"name2": "Head office", "customerPostingGroup": "FOREIGN"},
            headers={"If-Match": one["@odata.etag"]},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["name2"] == "Head office"
        assert (
            http.patch(
                f"{base}/customerCards('C00020')", json={"id": "x"}, headers={"If-Match": "*"}
            ).json()["error"]["code"]
            == "BadRequest_InvalidOperation"
        )
        # an API page the environment does not have answers as BC answers an unknown route
        missing = http.get(
            f"{bc_double.environment_url}/api/fabrikam/other/v1.0/companies({company.id})"
            "/customerCards"
        )
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "BadRequest_NotFound"


def test_plan_and_sync_through_a_custom_api_page(
    tmp_path: Path,
    bc_double_factory: Callable[..., BcDouble],
    shopify_double: ShopifyDouble,
    capsys: Any,
) -> None:
    bc = bc_double_factory(published=PUBLISHED)
    seed_from_models(shopify_double, [shopify_customer(i) for i in range(1, 4)])
    config = write_bc_config(
        tmp_path,
        bc,
        shop_url=shopify_double.url,
        token=shopify_double.token,
        settings=IMPORT_SETTINGS,
        pages=PAGES,
    )

    assert main(["validate", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["plan", "--config", str(config), "--direction", "import", "-o", "json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    creates = [d for d in planned["decisions"] if d["action"] == "create"]
    assert len(creates) == 3
    assert not any("not written" in (d["message"] or "") for d in creates)
    assert not any("Customer Card" in w["message"] for w in planned["warnings"])

    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "import"]) == 0
    with open_bc(bc, tmp_path, pages=PAGES, journal=str(tmp_path / "r.sqlite")) as reader:
        customers = {c.email: c for c in reader.iter_customers()}
        seeded = reader.get_customer("C00020")
    created = customers["shop2@example.com"]
    assert created.name == "Shop Company 2" and created.name_2 == "Shop Person 2"
    assert created.extra["customer_posting_group"] == "DOMESTIC"  # the template, via the page
    assert seeded is not None and seeded.name_2 == "Sales office" and seeded.contact == "Helen Ray"
    card_requests = [r for r in bc.requests if r.target == "customerCards"]
    assert {r.method for r in card_requests} == {"GET"}
    assert all("/api/contoso/custsync/v1.0/" in r.path for r in card_requests)
    # the sync's card writes: one $batch on the API page's own service
    card_batches = [r for r in bc.requests if r.path.endswith("/custsync/v1.0/$batch")]
    assert [(r.method, r.operations) for r in card_batches] == [("POST", 3)]
    assert not [r for r in bc.requests if "/ODataV4/" in r.path and r.target == "Customer"]

    # the next run with one new Shopify customer looks it up by e-mail (candidates) instead of
    # reading every BC customer, and creates only that one
    seed_from_models(shopify_double, [shopify_customer(4)])
    since = len(bc.requests)
    assert main(["sync", "--config", str(config), "--no-progress", "--direction", "import"]) == 0
    reads = [r.params for r in bc.requests[since:] if r.target == "customers" and r.method == "GET"]
    assert any("tolower(email) eq 'shop4@example.com'" in p.get("$filter", "") for p in reads)
    assert not [p for p in reads if "$filter" not in p and "phoneNumber" not in p["$select"]]
    posts = [r for r in bc.requests[since:] if r.method in ("POST", "PATCH")]
    assert posts and len([r for r in posts if r.target in ("customers", "$batch")]) == 1
