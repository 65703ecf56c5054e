"""Shared helpers of the plan tests: a hand-made plan and golden-file comparison.

Golden files live in tests/golden/plan/. To rewrite them after an intended change, run
``CUSTSYNC_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_plan_golden.py tests/test_plan_render.py``
and review the diff with ``git diff tests/golden``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from custsync.engine.model import (
    Action,
    Decision,
    Direction,
    FieldChange,
    FiredRule,
    ShopifyAddress,
)
from custsync.engine.resources import schema_path
from custsync.engine.run.plan import Plan, PlanWarning, decision_sort_key
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "plan"
UPDATE = os.environ.get("CUSTSYNC_UPDATE_GOLDEN", "") not in ("", "0")
FIXED_TIME = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with tests/golden/plan/<name>; rewrite it when updating."""
    path = GOLDEN / name
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        if not UPDATE:
            raise AssertionError(f"golden file {path} was missing and has been written; rerun")
        return
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, (
        f"output differs from {path.relative_to(ROOT)}; if the change is intended, rerun with "
        "CUSTSYNC_UPDATE_GOLDEN=1 and review `git diff tests/golden`"
    )


def schema_errors(data: Any) -> list[str]:
    schema = json.loads(schema_path("plan").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"/{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(data)
    ]


def rule(decision: str, rule_id: str, line: int) -> FiredRule:
    return FiredRule(rule_id, f"rules/{decision}.yaml", line, decision)


def handmade_decisions() -> list[Decision]:
    """One decision of every kind, in a scrambled order."""
    nested = Decision(
        Direction.IMPORT,
        Action.CREATE,
        "main",
        "gid://shopify/Customer/77",
        changes=(FieldChange("name", None, "Ola Nordmann"),),
        payload=MappingProxyType({"template_code": "EU-RETAIL"}),
        new_link=True,
    )
    return [
        Decision(
            Direction.EXPORT,
            Action.CREATE,
            "main",
            "C00040",
            changes=(
                FieldChange("first_name", None, "Hans"),
                FieldChange("last_name", None, "Müller"),
                FieldChange("email", None, "hans.mueller@example.de"),
                FieldChange("phone", None, "+49305550404"),
            ),
            rules=(rule("export_action", "create-when-export-customers", 31),),
            new_link=True,
            payload=MappingProxyType(
                {
                    "address": ShopifyAddress(
                        address1="Hauptstraße 4",
                        city="Berlin",
                        zip="10115",
                        country_code="DE",
                        phone="+49305550404",
                    ),
                    "send_invite": False,
                }
            ),
            label="Hans Müller <hans.mueller@example.de>",
        ),
        Decision(
            Direction.IMPORT,
            Action.UPDATE,
            "main",
            "gid://shopify/Customer/1001",
            erp_no="C00010",
            shopify_id="gid://shopify/Customer/1001",
            changes=(
                FieldChange("address", "1 Market St", "100 Mission St"),
                FieldChange("phone", "415 555 0101", "+14155550101"),
            ),
            rules=(
                rule("import_match", "match-by-link", 12),
                rule("import_update", "update-when-allowed", 9),
            ),
            source_version="2026-02-01T12:00:00+00:00",
            target_version="2026-01-10T09:00:00+00:00",
            label="Jane Doe <jane.doe@example.com>",
        ),
        Decision(
            Direction.IMPORT,
            Action.SKIP,
            "main",
            "gid://shopify/Customer/1006",
            reason_code="no-address",
            message="The customer has no address; call +1 415 555 0199 or write to walkin@example.com.",
            rules=(rule("import_create", "skip-without-address", 20),),
            label="Walk-in Customer",
        ),
        Decision(
            Direction.IMPORT,
            Action.CREATE,
            "main",
            "gid://shopify/Customer/10",
            changes=(
                FieldChange("name", None, "Lena Schmidt"),
                FieldChange("email", None, "lena.schmidt@example.de"),
                FieldChange("country_code", None, "DE"),
            ),
            rules=(
                rule("import_match", "no-match", 60),
                rule("import_create", "template-of-default-address-country", 14),
            ),
            new_link=True,
            payload=MappingProxyType({"template_code": "EU-RETAIL"}),
            label="Lena Schmidt <lena.schmidt@example.de>",
        ),
        Decision(
            Direction.EXPORT,
            Action.LINK,
            "main",
            "C00050",
            erp_no="C00050",
            shopify_id="gid://shopify/Customer/1005",
            rules=(rule("export_action", "adopt-unlinked-match", 22),),
            new_link=True,
            payload=MappingProxyType({"adopt": True, "matched_by": "email"}),
            label="Acme Corp <orders@acme.example>",
        ),
        Decision(
            Direction.EXPORT,
            Action.SKIP,
            "main",
            "C00060",
            erp_no="C00060",
            reason_code="email-invalid",
            message="The e-mail is not valid.",
            rules=(rule("export_requirements", "email-valid", 18),),
            payload=MappingProxyType({"reasons": ("email-invalid",)}),
            label="Bad Email Ltd <bob at example>",
        ),
        Decision(Direction.EXPORT, Action.NOOP, "main", "C00010", erp_no="C00010"),
        Decision(
            Direction.ORDER,
            Action.CREATE,
            "main",
            "gid://shopify/Order/7002",
            rules=(rule("order_method", "by-email-phone", 40),),
            new_link=True,
            payload=MappingProxyType({"method": "by_email_phone", "import": nested}),
            label="#1002",
        ),
        Decision(
            Direction.IMPORT,
            Action.LINK,
            "second",
            "gid://shopify/Customer/9",
            erp_no="C00020",
            rules=(rule("import_match", "match-by-email", 30),),
            new_link=True,
            label="John Smith <john.smith@example.com>",
        ),
    ]


def handmade_plan() -> Plan:
    return Plan(
        created_at=FIXED_TIME,
        shops=("main", "second"),
        directions=(Direction.IMPORT, Direction.EXPORT, Direction.ORDER),
        decisions=tuple(sorted(handmade_decisions(), key=decision_sort_key)),
        warnings=(
            PlanWarning(
                "bad-record",
                "erp customer skipped: field 'modified_at': 'yesterday' is not an ISO 8601 date-time",
                "world/erp_customers.csv:14",
                "C00130",
            ),
        ),
        fingerprints=MappingProxyType({"erp": "sha256:0123", "rules": "sha256:4567"}),
    )
