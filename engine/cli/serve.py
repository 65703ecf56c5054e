"""`custsync serve` (the web console and Shopify webhooks) and `custsync webhooks register|list`.

``serve`` shows the console (docs/console.md) and answers ``POST /webhooks/shopify`` for every shop with ``webhook_secret_env`` set:
each delivery is checked (signature, shop, JSON), de-duplicated, and recorded as a run
request for the shop's import, which ``custsync schedule`` runs after a short quiet period;
privacy deliveries remove or export what custsync holds about the customer. ``webhooks
register`` subscribes a public URL (a reverse proxy in front of ``serve``) to the topics
custsync uses, once per topic; ``webhooks list`` shows the subscriptions. Exit codes: 0 ok,
1 error, 64 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import exitcodes
from ..errors import ConfigError, UsageError

DEFAULT_CONFIG = "custsync.yaml"
DEFAULT_PORT = 8787
#: the topics `webhooks register` subscribes (the privacy topics are set in the app's
#: configuration at Shopify, not through the API: docs/webhooks.md)
TOPICS = ("CUSTOMERS_CREATE", "CUSTOMERS_UPDATE", "CUSTOMERS_DELETE", "ORDERS_CREATE")


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the web console and the receiver of Shopify's webhooks",
        description=(
            "Serve the web console (overview, runs, plan review and approval, rules) and "
            "POST /webhooks/shopify. Binds 127.0.0.1 by default; another address needs a "
            "login (CUSTSYNC_CONSOLE_PASSWORD_HASH or CUSTSYNC_CONSOLE_TOKEN). Each webhook of "
            "a shop with webhook_secret_env is checked and recorded as a request for an "
            "import run, which `custsync schedule` runs soon after; nothing is synced while "
            "Shopify waits. Exit codes: 0 ok, 1 error, 64 usage."
        ),
    )
    serve.add_argument(
        "-c", "--config", metavar="FILE", help=f"configuration file (default: ./{DEFAULT_CONFIG})"
    )
    serve.add_argument(
        "--host", metavar="HOST", default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; others need a login)",
    )
    serve.add_argument(
        "--port", metavar="PORT", type=int, default=DEFAULT_PORT,
        help=f"port to listen on (default: {DEFAULT_PORT})",
    )
    serve.add_argument(
        "--data-requests", metavar="DIR",
        help="folder for customers/data_request exports (default: data-requests/ beside the "
        "config file)",
    )
    serve.add_argument(
        "--hash-password", action="store_true",
        help="read a password (from the terminal or one line of stdin) and print the "
        "CUSTSYNC_CONSOLE_PASSWORD_HASH line for it, then exit",
    )
    serve.set_defaults(handler=_serve)

    hooks = subparsers.add_parser(
        "webhooks",
        help="register or list the shop's webhook subscriptions",
        description="Manage the Shopify webhook subscriptions custsync uses.",
    )
    commands = hooks.add_subparsers(dest="webhooks_command", metavar="SUBCOMMAND")
    hooks.set_defaults(handler=lambda args: _usage(hooks))
    add = commands.add_parser(
        "register",
        help="subscribe a public URL to the customer and order topics",
        description=(
            f"Subscribe URL to {', '.join(TOPICS)} through the Admin API "
            "(webhookSubscriptionCreate); a topic already subscribed to URL is left as it is. "
            "URL is the public https address of a reverse proxy in front of `custsync serve`, "
            "ending in /webhooks/shopify. Exit codes: 0 ok, 1 error, 64 usage."
        ),
    )
    listing = commands.add_parser(
        "list",
        help="list the shop's webhook subscriptions",
        description="List the shop's webhook subscriptions. Exit codes: 0 ok, 1 error, 64 usage.",
    )
    for parser in (add, listing):
        parser.add_argument(
            "-c", "--config", metavar="FILE",
            help=f"configuration file (default: ./{DEFAULT_CONFIG})",
        )
        parser.add_argument("--shop", metavar="SHOP", help="the shop (needed when there are several)")
    add.add_argument("--url", metavar="URL", required=True,
                     help="the public URL Shopify posts to (https://.../webhooks/shopify)")
    add.set_defaults(handler=_register)
    listing.set_defaults(handler=_list)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return exitcodes.USAGE


def _serve(args: argparse.Namespace) -> int:
    import os

    from ..config import config_file, require_config
    from ..console.app import ServerThread, check_bind_host, create_app
    from ..console.security import PASSWORD_HASH_ENV, ConsoleAuth, hash_password
    from ..console.service import ConsoleService
    from ..run.state import open_store
    from ..run.webhooks import WebhookReceiver, shops_from_config
    from .stopping import wait_for_stop_signal

    if args.hash_password:
        import getpass

        password = getpass.getpass("console password: ") if sys.stdin.isatty() else \
            sys.stdin.readline().rstrip("\n")
        if len(password) < 12:
            raise UsageError("a console password has at least 12 characters")
        print(f"{PASSWORD_HASH_ENV}='{hash_password(password)}'")
        return exitcodes.OK
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a port number (0-65535)")
    try:
        auth = ConsoleAuth.from_environment(os.environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    check_bind_host(args.host, login_required=auth.login_required)
    path = config_file(args.config or DEFAULT_CONFIG)
    config = require_config(path)
    shops = shops_from_config(config)
    folder = Path(args.data_requests) if args.data_requests else path.parent / "data-requests"
    state = open_store(config.state_url)
    receiver = WebhookReceiver(shops, state, data_request_dir=folder) if shops else None
    service = ConsoleService(config, state, plans_dir=path.parent / "console-plans")
    server = ServerThread(create_app(receiver, service, auth=auth), args.host, args.port,
                          login_required=auth.login_required)
    try:
        server.start()
    except RuntimeError:
        state.close()
        raise ConfigError(
            f"could not listen on {args.host}:{args.port} (in use, or not allowed)"
        ) from None
    print(f"custsync: console at {server.url}/ ; webhooks at {server.url}/webhooks/shopify "
          f"for {', '.join(s.name for s in shops) or 'no shop (no webhook_secret_env set)'}; "
          "Ctrl-C stops", file=sys.stderr)
    try:
        wait_for_stop_signal()  # SIGINT or SIGTERM (systemd's stop): shut down cleanly
    finally:
        server.stop()
        state.close()
    return exitcodes.OK


def _writer_for(args: argparse.Namespace) -> tuple[Any, Any]:
    from ..config import config_file, require_config
    from ..run.sync import open_shopify_writer_for

    config = require_config(config_file(args.config or DEFAULT_CONFIG))
    shop = config.shop(args.shop)
    writer = open_shopify_writer_for(shop)
    if not hasattr(writer, "create_webhook_subscription"):
        writer.close()
        raise ConfigError(
            f"shop {shop.name}: its Shopify connector ({urlsplit(shop.shopify_url).scheme}:) "
            "has no webhook subscriptions"
        )
    return shop, writer


def _register(args: argparse.Namespace) -> int:
    parts = urlsplit(args.url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"--url {args.url}: not an http(s) URL")
    shop, writer = _writer_for(args)
    try:
        existing = {(s["topic"], s["uri"]) for s in writer.webhook_subscriptions()}
        failed = 0
        for topic in TOPICS:
            if (topic, args.url) in existing:
                print(f"= {topic} already subscribed")
                continue
            created, errors = writer.create_webhook_subscription(topic, args.url)
            if created:
                print(f"+ {topic} subscribed ({created})")
            else:
                failed += 1
                print(f"! {topic}: {'; '.join(errors)}", file=sys.stderr)
    finally:
        writer.close()
    print(
        f"custsync: shop {shop.name}: set its webhook_secret_env to the app's client secret; "
        "customers/redact and customers/data_request are set in the app's configuration "
        "(docs/webhooks.md)",
        file=sys.stderr,
    )
    return exitcodes.ERROR if failed else exitcodes.OK


def _list(args: argparse.Namespace) -> int:
    _shop, writer = _writer_for(args)
    try:
        subscriptions = writer.webhook_subscriptions()
    finally:
        writer.close()
    if not subscriptions:
        print("No webhook subscriptions.")
    for item in subscriptions:
        print(f"{item['topic']:<20} {item['uri']}  ({item['id']})")
    return exitcodes.OK
