"""`custsync bc-sandbox`: run the local Business Central double as an environment to play with.

Serves Entra ID's token endpoint and BC's API v2.0 (and the published pages) on
``http://127.0.0.1:PORT``, prints the URLs, the app registration it accepts and the
``custsync.yaml`` lines that point custsync at it, and runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import exitcodes
from ..errors import ConfigError, UsageError
from .doubles import check_port, parse_fault_options, serve_until_stopped

DEFAULT_PORT = 8766
SECRET_VARIABLE = "BC_CLIENT_SECRET"


def register(subparsers: Any) -> None:
    # the double (Starlette, uvicorn) is imported only when the command runs
    parser = subparsers.add_parser(
        "bc-sandbox",
        help="run a local Business Central API double (customers) to try custsync against",
        description="Serve a local Business Central API v2.0 double and its token endpoint on "
        "127.0.0.1 until stopped (Ctrl-C or SIGTERM).",
    )
    parser.add_argument("--port", metavar="PORT", type=int, default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--seed", metavar="FILE", type=Path,
                        help="JSON or YAML file with companies, reference data and customers "
                        "(default: one company, 'CRONUS USA, Inc.', with three customers)")
    parser.add_argument("--tenant", metavar="NAME",
                        help="Entra tenant (domain or id) in the URLs "
                        "(default: custsync-sandbox.onmicrosoft.com)")
    parser.add_argument("--environment", metavar="NAME",
                        help="environment name (default: Sandbox)")
    parser.add_argument("--client-id", metavar="ID",
                        help="client id of the app registration the token endpoint accepts "
                        "(default: the sandbox's, printed at start)")
    parser.add_argument("--client-secret", metavar="TEXT",
                        help="its secret (a sandbox value; default: printed at start)")
    parser.add_argument("--faults", metavar="SPEC", action="append", default=[],
                        help="inject faults as the double's Fault API: KIND[:OPTION=VALUE,...], "
                        "several separated by ';' or repeated; KIND status, drop or delay; "
                        "options times, status, seconds, retry_after, method, target (entity "
                        "set, $batch, token), skip, after_effect (e.g. "
                        "'status:status=503,times=2,target=customers', "
                        "'drop:method=POST,after_effect')")
    parser.add_argument("--time-scale", metavar="N", type=float, default=1.0,
                        help="run BC's 5-minute request window and queue timeout this many "
                        "times faster (default: 1)")
    parser.add_argument("--page-size", metavar="N", type=int, default=20000,
                        help="largest page BC sends before @odata.nextLink (default: 20000)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from custsync.connectors.bc_double import (
        DEFAULT_CLIENT_ID,
        DEFAULT_ENVIRONMENT,
        DEFAULT_SECRET,
        DEFAULT_TENANT,
        DEFAULT_WORLD,
        BcDouble,
        Limits,
        SeedError,
        load_seed_file,
        parse_faults,
        seed_world,
    )

    check_port(args.port)
    defaults = {"tenant": DEFAULT_TENANT, "environment": DEFAULT_ENVIRONMENT,
                "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_SECRET}
    for option, default in defaults.items():
        if getattr(args, option) is None:
            setattr(args, option, default)
        value = getattr(args, option)
        if not value.strip() or "/" in value:
            raise UsageError(f"--{option.replace('_', '-')} {value!r}: must not be empty or "
                             "contain '/'")
    if args.time_scale <= 0:
        raise UsageError(f"--time-scale {args.time_scale}: must be positive")
    if not 1 <= args.page_size <= 20000:
        raise UsageError(f"--page-size {args.page_size}: must be between 1 and 20000")
    faults = parse_fault_options(args.faults, parse_faults)
    double = BcDouble(tenant=args.tenant, environment=args.environment,
                      client_id=args.client_id, client_secret=args.client_secret,
                      port=args.port, max_page_size=args.page_size,
                      limits=Limits(time_scale=args.time_scale))
    try:
        if args.seed is not None:
            companies = load_seed_file(double.store, args.seed)
        else:
            companies = seed_world(double.store, DEFAULT_WORLD)
    except SeedError as exc:
        raise ConfigError(f"--seed {exc}") from exc
    for fault in faults:
        double.inject(fault)
    serve_until_stopped(double, args.port, lambda: _print_banner(double, companies, args))
    print("custsync bc-sandbox: stopped", flush=True)
    return exitcodes.OK


def _print_banner(double: Any, companies: list[Any], args: argparse.Namespace) -> None:
    customers = sum(len(c.customers) for c in companies)
    print(f"custsync bc-sandbox: a local Business Central double ({len(companies)} "
          f"compan{'y' if len(companies) == 1 else 'ies'}, {customers} customers)")
    print(f"token:   {double.token_url}")
    print(f"api:     {double.api_url}")
    print(f"pages:   {double.odata_url}")
    for company in companies:
        print(f"company: {company.name} ({company.id})")
    print(f"client:  {double.client_id}")
    if args.faults:
        print(f"faults:  {', '.join(args.faults)}")
    first = companies[0].name if companies else "<company>"
    pages = double.api.published
    by_page = {page: service for service, page in pages.items()}
    print()
    print(f"export {SECRET_VARIABLE}='{args.client_secret}'")
    print("# custsync.yaml")
    print("erp:")
    print(f"  url: bc+{double.environment_url}")
    print("  business_central:")
    print(f"    company: {first!r}")
    print(f"    client_id: {double.client_id!r}")
    print(f"    client_secret_env: {SECRET_VARIABLE}")
    print("    pages:")
    for name, page in (("customer_card", "customer_card"), ("countries", "countries_regions"),
                       ("customer_templates", "customer_templates")):
        if page in by_page:
            print(f"      {name}: {by_page[page]}")
    print()
    print("Stop with Ctrl-C.", flush=True)
