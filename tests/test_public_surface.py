"""The public surface of the modules other code builds on is pinned: adding or removing a
name is a deliberate change to this list (style.md §12)."""

from __future__ import annotations

import importlib

import pytest

PINNED = {
    "custsync.engine.model": [
        "Action",
        "CompanyInfo",
        "Country",
        "CountrySetup",
        "CustomerTemplate",
        "Decision",
        "Direction",
        "ERP_CUSTOMER_FIELDS",
        "ERP_FIELD_LENGTHS",
        "ERP_TEMPLATE_FIELDS",
        "ErpCustomer",
        "ErpReference",
        "FieldChange",
        "FiredRule",
        "Link",
        "ShopContext",
        "ShopSettings",
        "ShopifyAddress",
        "ShopifyCustomer",
        "ShopifyOrder",
        "TaxArea",
        "erp_code",
    ],
    "custsync.engine.ports": [
        "ChecksConnection",
        "ConnectionFinding",
        "CustomerInput",
        "ErpBatchWriter",
        "ErpCandidateReader",
        "ErpCreate",
        "ErpFieldLimits",
        "ErpReader",
        "ErpUpdate",
        "ErpWriteResult",
        "ErpWriter",
        "LoadRowProblem",
        "ReadProgress",
        "ReportsProblems",
        "ReportsReadProgress",
        "RunRecord",
        "ShopifyReader",
        "ShopifyWriteResult",
        "ShopifyWriter",
        "SourceProblem",
        "StateStore",
    ],
    "custsync.engine.errors": [
        "ConfigError",
        "CustsyncError",
        "DiagnosticsError",
        "FatalError",
        "RecordError",
        "RecordRefused",
        "RetriableError",
        "StalePlanError",
        "UsageError",
        "mask_email",
    ],
    "custsync.engine.exitcodes": [
        "CHANGES_PRESENT",
        "ERROR",
        "INTERRUPTED",
        "LOCKED",
        "OK",
        "PARTIAL",
        "USAGE",
    ],
    "custsync.engine.registry": [
        "ERP_GROUP",
        "SHOPIFY_GROUP",
        "open_erp_reader",
        "open_erp_writer",
        "open_shopify_reader",
        "open_shopify_writer",
        "preload_connector",
        "scheme_of",
    ],
    "custsync.engine.run.sync": ["SyncResult", "run_sync", "sync_shop"],
    "custsync.engine.run.planner": [
        "FULL_READ_THRESHOLD",
        "SyncInputs",
        "build_plan",
        "iter_shop_decisions",
        "plan_incremental",
        "plan_shop",
        "read_inputs",
        "stream_plan",
    ],
    "custsync.engine.run.planstream": [
        "JSON_CHANNEL",
        "JSON_SEPARATORS",
        "DecisionSpool",
        "copy_bytes",
        "write_json_document",
        "write_plan_document",
    ],
    "custsync.engine.run.planpipe": ["SpoolProcess"],
    "custsync.engine.progress": ["LOG_EVERY_SECONDS", "Progress"],
    "custsync.engine.run.apply": ["Applier", "RecordOutcome", "customer_input"],
}


@pytest.mark.parametrize("module_name", sorted(PINNED))
def test_public_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PINNED[module_name])
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names a missing {name}"


def test_the_engine_imports_no_connector() -> None:
    """Connectors are found by URL scheme; the engine's pipeline modules never import one."""
    import ast
    from pathlib import Path

    engine = Path(importlib.import_module("custsync.engine").__file__ or "").parent
    offenders = []
    for path in engine.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            module = ""
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
            elif isinstance(node, ast.Import):
                module = ",".join(alias.name for alias in node.names)
            if "connectors" in module:
                offenders.append(f"{path.name}: {module}")
    assert offenders == []
