"""`custsync sandbox`: run the local Shopify double as a store to play with.

Serves ``http://127.0.0.1:PORT/admin/api/{version}/graphql.json``, prints that URL and the
access token it accepts, and runs until SIGINT/SIGTERM; then it stops cleanly and, with
``--persist``, writes the store to that file (and reads it back on the next start).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import exitcodes
from ..errors import ConfigError, UsageError
from .doubles import check_port, parse_fault_options, serve_until_stopped

DEFAULT_PORT = 8765
DEFAULT_TOKEN = "shpat_sandbox"
PLANS = ("standard", "plus")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local Shopify Admin API double (customers) to try custsync against",
        description="Serve a local Shopify Admin GraphQL API double on 127.0.0.1 until stopped "
        "(Ctrl-C or SIGTERM).",
    )
    parser.add_argument("--port", metavar="PORT", type=int, default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--seed", metavar="FILE", type=Path,
                        help="JSON or YAML file with customers (and orders, shop) to start with")
    parser.add_argument("--persist", metavar="FILE", type=Path,
                        help="write the store to FILE on stop; read it on start when it exists "
                        "and no --seed is given")
    parser.add_argument("--token", metavar="TOKEN", default=DEFAULT_TOKEN,
                        help=f"access token the sandbox accepts (default: {DEFAULT_TOKEN})")
    parser.add_argument("--plan", choices=PLANS, default="standard",
                        help="rate limits: standard = bucket 2000, 100 points/s; "
                        "plus = bucket 20000, 1000 points/s (default: standard)")
    parser.add_argument("--api-version", metavar="VERSION", default="2026-07",
                        help="API version shown in the printed URL (default: 2026-07)")
    parser.add_argument("--faults", metavar="SPEC", action="append", default=[],
                        help="inject faults, as the double's Fault API: KIND[:OPTION=VALUE,...], "
                        "several separated by ';' or repeated; KIND status, throttle, drop or "
                        "delay; options times, status, seconds, retry_after, operation, skip, "
                        "after_effect, target (e.g. 'status:status=503,times=2', "
                        "'drop:operation=customerCreate,after_effect'); see docs/sandbox.md")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from custsync.connectors.shopify_double import PLANS as PLAN_LIMITS
    from custsync.connectors.shopify_double import (
        ShopifyDouble,
        describe_fault,
        load_seed_file,
        parse_faults,
        save_store,
    )

    check_port(args.port)
    if not args.token.strip():
        raise UsageError("--token must not be empty")
    if args.persist is not None and not args.persist.parent.is_dir():
        # found out only when the sandbox stops, the store would be lost
        raise ConfigError(
            f"--persist {args.persist}: its folder {args.persist.parent} does not exist"
        )
    if args.persist is not None and args.persist.is_dir():
        raise ConfigError(f"--persist {args.persist}: is a folder, not a file")
    faults = parse_fault_options(args.faults, parse_faults)
    size, rate = PLAN_LIMITS[args.plan]
    double = ShopifyDouble(token=args.token, bucket_size=size, restore_rate=rate, port=args.port)
    source = args.seed or (args.persist if args.persist and args.persist.exists() else None)
    if source is not None:
        load_seed_file(double.store, source)
    for fault in faults:
        double.inject(fault)

    def banner() -> None:
        print("custsync sandbox: a local Shopify Admin API double "
              f"({args.plan} plan, {double.store.count()} customers)")
        print(f"url:   {double.graphql_url(args.api_version)}")
        print(f"shop:  {double.url}")
        print(f"token: {args.token}")
        for fault in faults:
            print(f"fault: {describe_fault(fault)}")
        print("Stop with Ctrl-C.", flush=True)

    try:
        serve_until_stopped(double, args.port, banner)
    finally:
        double.bulk.finish_all()
    if args.persist is not None:
        try:
            save_store(double.store, args.persist)
        except OSError as exc:
            print(f"custsync sandbox: error: cannot write {args.persist}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return exitcodes.ERROR
        print(f"custsync sandbox: stopped; {double.store.count()} customers saved to "
              f"{args.persist}", flush=True)
    else:
        print("custsync sandbox: stopped", flush=True)
    return exitcodes.OK
