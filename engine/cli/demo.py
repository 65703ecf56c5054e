"""``custsync demo``: the whole job on a fresh machine, with no store and no ERP.

Builds a demo ERP (SQLite, or with ``--erp business-central`` the local Business Central
double; a few hundred customers across several countries with clean and problem records),
starts the local Shopify test double seeded with overlapping customers,
dry-runs the plan, applies it, changes a few records on both sides and syncs again to show
that the second run is incremental, then says where the files are and what to try next.

This command is a composition root: like ``sandbox`` it wires concrete connectors (the SQL
ERP or the BC double, and the Shopify double) together; the engine's pipeline itself never imports a connector.
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .. import exitcodes
from ..errors import UsageError
from ..files import write_private
from ..ports import RUN_COUNTS
from ..resources import schema_path, shipped_rules_dir
from .schedule import number_type

_TOKEN_ENV = "CUSTSYNC_DEMO_TOKEN"
_BC_SECRET_ENV = "CUSTSYNC_DEMO_BC_SECRET"
_SHOP = "demo"
_BC_PAGES = {
    "customer_card": "Customer",
    "countries": "CountriesRegions",
    "customer_templates": "CustomerTemplates",
}


#: what the usual skip reasons of a second run mean, for the demo's summary
_REASON_NOTES = {
    "own-echo": "  (customers the first run exported, coming back: not imported again)",
    "unchanged": "  (not changed since their last import)",
    "update-off": "  (the settings do not let this side overwrite the other)",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole job on a local demo ERP and a local Shopify double",
        description=(
            "Build a demo ERP (SQLite) and a local Shopify test double, dry-run the plan, "
            "apply it, change a few records and sync again to show an incremental run."
        ),
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        default="custsync-demo",
        help="where the demo's files go (default: custsync-demo)",
    )
    parser.add_argument(
        "--customers",
        type=number_type(int, 1),
        metavar="N",
        default=300,
        help="ERP customers to generate (default: 300)",
    )
    parser.add_argument(
        "--seed", metavar="N", type=int, default=7, help="random seed of the demo data (default: 7)"
    )
    parser.add_argument(
        "--erp",
        choices=("sql", "business-central"),
        default="sql",
        help="the demo ERP: a SQLite database or the local Business Central double "
        "(default: sql)",
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="at the end, open the web console on the demo and keep the Shopify double "
        "running (until Ctrl-C) to explore them",
    )
    parser.set_defaults(handler=_run)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _heading(text: str) -> None:
    _say()
    _say(f"== {text} " + "=" * max(0, 74 - len(text)))


def _rows(records: list[dict[str, Any]], line_offset: int = 2) -> list[Any]:
    from ...connectors.erp_sql import LoadRow

    return [
        LoadRow(index + line_offset, {k: "" if v is None else str(v) for k, v in record.items()})
        for index, record in enumerate(records)
    ]


def _build_erp(url: str, world: Any) -> None:
    from ...connectors.erp_sql import open_writer
    from ..model import ERP_CUSTOMER_FIELDS

    erp = open_writer(url, create=True)
    try:
        erp.initialize(
            company_name=world.reference.company.name,
            company_country=world.reference.company.country_code,
            number_prefix="C",
            number_width=5,
        )
        templates = [
            {"code": t.code, "description": t.description, **dict(t.fields)}
            for t in world.reference.templates
        ]
        for kind, records in (
            ("templates", templates),
            (
                "customers",
                [{f: getattr(c, f) for f in ERP_CUSTOMER_FIELDS} for c in world.erp_customers],
            ),
        ):
            report = erp.load(kind, _rows(records), update=True)
            if report.problems:
                first = report.problems[0]
                raise RuntimeError(f"demo {kind} row {first.line}: {first.column}: {first.message}")
    finally:
        erp.close()


def _config_document(
    dir_: Path, shop_url: str, world: Any, erp: dict[str, Any] | None = None
) -> dict[str, Any]:
    countries = [
        {
            "iso_code": setup.iso_code,
            "default_customer_no": setup.default_customer_no,
            "customer_template_code": setup.customer_template_code,
            "tax_areas": [
                {
                    "county": area.county,
                    "county_code": area.county_code,
                    "tax_area_code": area.tax_area_code,
                    "tax_liable": area.tax_liable,
                    "vat_bus_posting_group": area.vat_bus_posting_group,
                }
                for area in setup.tax_areas
            ],
        }
        for setup in world.country_setups.values()
    ]
    return {
        "erp": erp or {"url": "sqlite:///erp.db"},
        "state": {"url": "sqlite:///state.db"},
        "rules": [],
        "shops": [
            {
                "name": _SHOP,
                "shopify": {
                    "url": shop_url,
                    "api_version": "2026-07",
                    "access_token_env": _TOKEN_ENV,
                    "timeout_seconds": 30,
                },
                "settings": {
                    "customer_import": "all_customers",
                    "customer_mapping_type": "by_email_phone",
                    "shopify_can_update_customers": False,
                    "can_update_shopify_customers": True,
                    "auto_create_unknown_customers": True,
                    "customer_template_code": "RETAIL",
                    "default_customer_no": "",
                    "export_customers": True,
                    "name_source": "company_name",
                    "name_2_source": "first_and_last_name",
                    "contact_source": "first_and_last_name",
                    "county_source": "code",
                    "send_invite_email": False,
                },
                "countries": countries,
                "schedule": {"import": "*/15 * * * *", "export": "0 * * * *", "retries": 3},
            }
        ],
    }


def _excerpt(plan: Any, per_kind: int = 2) -> str:
    """A few blocks of each kind of decision, so the demo's plan fits on a screen."""
    from ..run.plan import Plan
    from ..run.render import render_text

    picked: list[Any] = []
    seen: Counter[tuple[str, str, str]] = Counter()
    for decision in plan.decisions:
        key = (decision.direction.value, decision.action.value, decision.reason_code or "")
        if decision.action.value == "noop" or seen[key] >= per_kind:
            continue
        seen[key] += 1
        picked.append(decision)
    excerpt = Plan(
        created_at=plan.created_at,
        shops=plan.shops,
        directions=plan.directions,
        decisions=tuple(picked),
    )
    text: str = render_text(excerpt)
    lines = [line for line in text.splitlines() if not line.startswith("Plan:")]
    return "\n".join(lines).rstrip()


def _summary_line(plan: Any) -> str:
    from ..run.render import render_text

    text: str = render_text(plan)
    return next((line for line in text.splitlines() if line.startswith("Plan:")), "No changes.")


def _print_result(result: Any, seconds: float) -> None:
    counts = ", ".join(f"{result.counts.get(k, 0)} {k}" for k in RUN_COUNTS)
    _say(
        f"  {result.status}: {counts}  ({seconds:.1f}s, runs {', '.join(map(str, result.run_ids))})"
    )
    for failure in result.failures[:5]:
        _say(f"  ! {failure.decision.direction.value} {failure.decision.record}: {failure.message}")


def _change_some_records(dir_: Path, config: Any, shop: Any) -> list[str]:
    """Edit a few customers on both sides, as people do between two syncs."""
    from ..ports import CustomerInput
    from ..registry import open_erp_writer
    from ..run.sync import open_shopify_writer_for

    notes: list[str] = []
    shopify = open_shopify_writer_for(shop)
    try:
        changed = 0
        for customer in shopify.iter_customers():
            if changed == 2:
                break
            if not customer.addresses:
                continue
            result = shopify.update_customer(
                customer.id, CustomerInput(last_name=f"{customer.last_name}-Smit")
            )
            if result.ok:
                changed += 1
                notes.append(f"Shopify: renamed {customer.first_name} {customer.last_name}")
        created = shopify.create_customer(
            CustomerInput(
                first_name="Noor",
                last_name="Hendriks",
                email=f"noor.hendriks.{secrets.token_hex(3)}@example.com",
                address=replace(_demo_address(), first_name="Noor", last_name="Hendriks"),
            )
        )
        if created.ok:
            notes.append("Shopify: a new customer, Noor Hendriks, signed up")
    finally:
        shopify.close()
    erp = open_erp_writer(config.erp_url, **config.erp_options)
    try:
        for no in ("C00003", "C00004"):
            before = erp.get_customer(no)
            if before is None:
                continue
            result = erp.update_customer(
                no, {"city": before.city + " Centrum"[: 30 - len(before.city)]}
            )
            if result.ok:
                notes.append(f"ERP: moved {no} {before.name} to another city")
    finally:
        erp.close()
    return notes


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _bc_seed(world: Any) -> dict[str, Any]:
    """The demo world as a BC double seed: the company, its reference data (the demo's
    countries, templates and tax areas added to the double's default ones) and customers."""
    from ...connectors.bc_double import DEFAULT_WORLD

    base = dict(DEFAULT_WORLD["companies"][0])
    countries = {row["code"]: row for row in base["countriesRegions"]}
    for country in world.reference.countries:
        countries.setdefault(
            country.code,
            {"code": country.code, "displayName": country.name, "isoCode": country.iso_code},
        )
    tax_areas = {row["code"]: row for row in base["taxAreas"]}
    for setup in world.country_setups.values():
        for area in setup.tax_areas:
            if area.tax_area_code:
                tax_areas.setdefault(
                    area.tax_area_code,
                    {
                        "code": area.tax_area_code,
                        "displayName": area.county,
                        "taxType": "Sales Tax",
                    },
                )
    templates = [
        {
            "code": t.code,
            "description": t.description,
            **{_camel(k): v for k, v in t.fields.items()},
        }
        for t in world.reference.templates
    ]
    customers = [
        {
            "number": c.no,
            "displayName": c.name,
            "name2": c.name_2,
            "contact": c.contact,
            "addressLine1": c.address,
            "addressLine2": c.address_2,
            "city": c.city,
            "postalCode": c.post_code,
            "state": c.county,
            "country": c.country_code,
            "phoneNumber": c.phone,
            "email": c.email,
        }
        for c in world.erp_customers
    ]
    company = {
        **base,
        "name": world.reference.company.name,
        "lcy_code": "EUR",
        "countriesRegions": list(countries.values()),
        "taxAreas": list(tax_areas.values()),
        "customerTemplates": templates,
        "customers": customers,
    }
    return {"companies": [company]}


def _start_bc_double(world: Any) -> Any:
    from ...connectors.bc_double import BcDouble, seed_world

    double = BcDouble()
    seed_world(double.store, _bc_seed(world))
    return double.start()


def _bc_erp_block(double: Any, world: Any) -> dict[str, Any]:
    os.environ[_BC_SECRET_ENV] = double.client_secret
    return {
        "url": f"bc+{double.environment_url}",
        "business_central": {
            "company": world.reference.company.name,
            "company_country": world.reference.company.country_code,
            "client_id": double.client_id,
            "client_secret_env": _BC_SECRET_ENV,
            "journal": "bc-journal.sqlite",
            "pages": dict(_BC_PAGES),
        },
    }


def _demo_address() -> Any:
    from ..model import ShopifyAddress

    return ShopifyAddress(
        default=True,
        address1="Keizersgracht 123",
        zip="1015 CJ",
        city="Amsterdam",
        country_code="NL",
    )


def _run(args: argparse.Namespace) -> int:
    from ...connectors.shopify_double import ShopifyDouble
    from ...connectors.shopify_double.seed import seed_from_models
    from ..config import require_config
    from ..decide.engine import Engine
    from ..model import Direction
    from ..rules.validate import require_rule_set
    from ..run.plan import plan_to_json
    from ..run.planner import plan_incremental
    from ..run.render import render_text
    from ..run.schedule import lease_name, make_holder_id
    from ..run.state import open_store
    from ..run.sync import open_shopify_reader_for, run_sync, shop_context
    from .demo_data import generate

    demo_dir = Path(args.dir).resolve()
    try:
        demo_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        problem = "is a file, not a folder" if demo_dir.is_file() else exc.strerror or str(exc)
        raise UsageError(f"--dir {args.dir}: {problem}") from None
    for name in (
        "erp.db",
        "state.db",
        "plan.txt",
        "plan.json",
        "custsync.yaml",
        "shopify.json",
        "bc-journal.sqlite",
    ):
        for suffix in ("", "-wal", "-shm"):
            (demo_dir / f"{name}{suffix}").unlink(missing_ok=True)

    _heading("custsync demo")
    world = generate(n_erp=args.customers, seed=args.seed)
    bc_double: Any = None
    erp_block: dict[str, Any] | None = None
    if args.erp == "business-central":
        bc_double = _start_bc_double(world)
        erp_block = _bc_erp_block(bc_double, world)
        erp_where = f"the local Business Central double at {bc_double.environment_url}"
    else:
        _build_erp(f"sqlite:///{demo_dir / 'erp.db'}", world)
        erp_where = str(demo_dir / "erp.db")
    _say(f"ERP     {len(world.erp_customers)} customers in {erp_where}")
    _say("        (countries US, CA, NL, DE, GB and Greece with ERP code EL / ISO GR;")
    _say("         some records have problems on purpose: bad e-mail, short phone, no country,")
    _say("         a county code over 10 characters, two customers sharing one phone)")

    token = "shpat_demo_" + secrets.token_hex(8)
    # Shopify Plus rate limits: the demo is about the rules, not about waiting for the bucket
    double = ShopifyDouble(token=token, bucket_size=20000, restore_rate=1000.0)
    seed_from_models(double, world.shopify_customers)
    double.start()
    os.environ[_TOKEN_ENV] = token
    try:
        _say(f"Shopify {double.store.count()} customers in a local test double at {double.url}")
        _say("        (a third of them are ERP customers typed differently; some came from")
        _say("         the POS without an address)")
        config_path = demo_dir / "custsync.yaml"
        config_path.write_text(
            f"# yaml-language-server: $schema={schema_path('config')}\n"
            "# Written by `custsync demo`. The Shopify URL is the demo's test double; it\n"
            "# only runs while the demo does (or `custsync demo --serve`).\n"
            + yaml.safe_dump(
                _config_document(demo_dir, double.url, world, erp_block), sort_keys=False
            ),
            encoding="utf-8",
        )
        config = require_config(config_path)
        rules = require_rule_set(list(config.rule_dirs))
        shop = config.shops[0]
        context = shop_context(shop)
        state = open_store(config.state_url)
        try:
            _heading("1. Dry run: custsync plan")
            from ..registry import open_erp_reader

            erp_reader = open_erp_reader(config.erp_url, **config.erp_options)
            shopify_reader = open_shopify_reader_for(shop)
            try:
                plan, _ = plan_incremental(
                    context,
                    engine=Engine(rules),
                    erp=erp_reader,
                    shopify=shopify_reader,
                    link_source=state,
                    cursors={},
                    directions=(Direction.IMPORT, Direction.EXPORT),
                )
            finally:
                erp_reader.close()
                shopify_reader.close()
            (demo_dir / "plan.txt").write_text(render_text(plan), encoding="utf-8")
            write_private(demo_dir / "plan.json", plan_to_json(plan))  # full contact data
            _say("A few decisions of each kind (the whole plan is in plan.txt / plan.json):")
            _say()
            _say(_excerpt(plan))
            _say()
            _say(_summary_line(plan))

            holder = make_holder_id()
            lease = lease_name(shop.name)

            def sync(title: str) -> Any:
                _heading(title)
                if not state.acquire_lease(lease, holder, 600):
                    raise RuntimeError("the demo shop's lease is taken")
                try:
                    started = time.monotonic()
                    result = run_sync(config, shop.name, "both", state=state, progress=False)
                    _print_result(result, time.monotonic() - started)
                    return result
                finally:
                    state.release_lease(lease, holder)

            first = sync("2. Apply: custsync sync")
            _heading("3. Meanwhile, people edit customers on both sides")
            for note in _change_some_records(demo_dir, config, shop):
                _say(f"  {note}")
            second = sync("4. The next sync is incremental: only what changed")
            _say(
                f"  The first run decided {sum(first.counts.values())} records; this one "
                f"{sum(second.counts.values())}, with {second.api_reads} Shopify look-ups."
            )
            reasons: Counter[str] = Counter()
            for run_id in second.run_ids:
                for outcome in state.outcomes(run_id, status="skipped"):
                    reasons[outcome.reason.split(":", 1)[0] or "skipped"] += 1
            if reasons:
                _say("  Skipped, by reason (custsync runs --failures RUN_ID shows each record):")
                for reason, count in reasons.most_common():
                    _say(f"    {count:>4}  {reason}{_REASON_NOTES.get(reason, '')}")
        finally:
            state.close()

        _heading("Where things are")
        _say(f"  config      {config_path}")
        if bc_double is not None:
            _say(f"  ERP         {bc_double.environment_url}   (Business Central double)")
        else:
            _say(f"  ERP         {demo_dir / 'erp.db'}   (SQLite)")
        _say(f"  state       {demo_dir / 'state.db'}   (links, cursors, run log)")
        _say(f"  plan        {demo_dir / 'plan.txt'}  and  plan.json")
        _heading("Try next")
        _say(f"  custsync runs --config {config_path}                # the run log")
        _say("  custsync rules list                                 # the shipped rules")
        _say("  custsync rules test                                 # their unit tests")
        _say(f"  custsync validate --config {config_path}")
        _say("  custsync demo --serve                               # the web console on this demo")
        examples = shipped_rules_dir().parent / "examples" / "world"
        if examples.is_dir():  # a checkout: the example world in files
            _say(f"  custsync plan --world {examples}")
            _say(f"  custsync sandbox --seed {examples / 'shopify_customers.yaml'}")
        if args.serve:
            exports = [f"  export {_TOKEN_ENV}={token}"]
            if bc_double is not None:
                exports.append(f"  export {_BC_SECRET_ENV}={bc_double.client_secret}")
            _serve(config_path, double.url, exports)
    finally:
        double.stop()
        if bc_double is not None:
            bc_double.stop()
    return exitcodes.ERROR if second.status == "failed" else exitcodes.OK


def _serve(config_path: Path, shopify_url: str, exports: list[str]) -> None:
    """Keep the Shopify double up and open the web console on the demo's data (Ctrl-C)."""
    from ..config import require_config
    from ..console.app import ServerThread, create_app
    from ..console.service import ConsoleService
    from ..run.state import open_store
    from .stopping import wait_for_stop_signal

    config = require_config(config_path)
    state = open_store(config.state_url)
    service = ConsoleService(config, state, plans_dir=config_path.parent / "console-plans")
    app = create_app(None, service)
    try:
        console = ServerThread(app, port=8787).start()
    except (RuntimeError, OSError):  # 8787 taken: any free port
        console = ServerThread(app).start()
    try:
        _say()
        _say(f"The web console of this demo: {console.url}/")
        # the config names the token's variable; another shell needs its value (a
        # random token of this local double, printed like `custsync sandbox` does)
        _say(f"The Shopify double keeps running at {shopify_url}. From another shell:")
        for line in exports:
            _say(line)
        _say(f"  custsync plan --config {config_path}")
        _say("Ctrl-C to stop.")
        wait_for_stop_signal()
    finally:
        console.stop()
        state.close()
