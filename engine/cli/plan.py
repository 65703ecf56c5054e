"""`custsync plan`: a dry run. Shows what a sync would do and why; changes nothing.

Read-only by construction: this module only ever asks the registry for *readers*
(``open_erp_reader`` / ``open_shopify_reader``) and opens the state store read-only, so no
writing client exists while a plan is made.

With ``--world DIR`` (or a config whose ERP and shop URLs are ``files:``) it plans on a world
kept in files; otherwise on the configured ERP and stores, with the links and cursors of the
state store (a missing state database means a first run: no links, no cursors).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, Any

from .. import exitcodes, registry
from ..collector import kept_out_of_collection
from ..config import check_shop_names
from ..errors import ConfigError, DiagnosticsError, UsageError
from ..model import CountrySetup, Decision, Direction, Link, ShopifyOrder, ShopSettings
from ..progress import Progress
from ..resources import locate
from ..run.plan import (
    Plan,
    PlanWarning,
    decision_to_json,
    file_fingerprint,
    plan_json_frame,
    write_plan_json,
)
from ..run.planner import build_plan, stream_plan
from ..run.planpipe import SpoolProcess
from ..run.planstream import (
    JSON_CHANNEL,
    JSON_SEPARATORS,
    DecisionSpool,
    copy_bytes,
    encode_block,
    write_plan_document,
)
from ..run.render import decision_block, stream_text

DEFAULT_CONFIG = "custsync.yaml"
_FILES = "files"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="dry run: show what a sync would do, and why (changes nothing)",
        description=(
            "Show what `custsync sync` would do, record by record, with the rules that decided. "
            "Reads only: no writing client is ever built. Exit codes: 0 ok, 1 error, "
            "2 changes present (only with --detailed-exitcode), 64 usage."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"configuration file (default: ./{DEFAULT_CONFIG} when it exists)",
    )
    parser.add_argument(
        "--world",
        metavar="DIR",
        help="plan on a world kept in files in DIR (ERP and Shopify read from there)",
    )
    parser.add_argument(
        "--rules",
        metavar="DIR",
        action="append",
        default=[],
        help="user rule folder applied over the shipped rules (repeatable; after the config's)",
    )
    parser.add_argument(
        "--shop",
        metavar="SHOP",
        action="append",
        default=[],
        help="plan only this shop (repeatable; default: every shop)",
    )
    parser.add_argument(
        "--direction",
        choices=("import", "export", "both"),
        help="import (Shopify -> ERP), export (ERP -> Shopify) or both (default: both; "
        "with --order/--orders only the order mapping)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="format on stdout (default: text)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="also save the plan as JSON to FILE (for `custsync sync --plan FILE`)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="ignore the cursors: plan every record, as `sync --full` would apply",
    )
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 2 when the plan has changes (create, update or link), 0 when none",
    )
    orders = parser.add_mutually_exclusive_group()
    orders.add_argument(
        "--order",
        metavar="ID",
        action="append",
        default=[],
        help="plan the customer mapping of this Shopify order (id or gid; repeatable)",
    )
    orders.add_argument(
        "--orders",
        metavar="FILE",
        help="plan the customer mapping of the orders in FILE (YAML, JSON Lines or JSON)",
    )
    parser.set_defaults(handler=_run)


# --------------------------------------------------------------------------------------------
# Configuration (engine/config.py), seen through a few accessors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ShopSource:
    name: str
    settings: ShopSettings
    country_setups: dict[str, CountrySetup]
    url: str  # Shopify connector URL
    options: dict[str, Any] = field(default_factory=dict)
    overlap_seconds: float = 0.0  # sync.overlap_seconds: read from the cursor minus this


@dataclass(slots=True)
class _Setup:
    """What the plan runs on, read from the config file (or defaults for a bare --world)."""

    path: Path | None
    erp_url: str
    erp_options: dict[str, Any]
    state_url: str | None
    rule_dirs: list[Path]
    shops: list[_ShopSource]


def _load_setup(config_path: Path | None) -> _Setup | None:
    if config_path is None:
        return None
    from ..config import load_config

    config, diagnostics = load_config(config_path)
    if config is None:
        raise DiagnosticsError([d for d in diagnostics if d.is_error] or diagnostics)
    _print_diagnostics(diagnostics)  # warnings only
    return _Setup(
        path=config_path,
        erp_url=config.erp_url,
        erp_options=dict(config.erp_options),
        state_url=config.state_url,
        rule_dirs=list(config.rule_dirs),
        shops=[
            _ShopSource(
                name=shop.name,
                settings=shop.settings,
                country_setups=dict(shop.country_setups),
                url=shop.shopify_url,
                options=shop.shopify_options(writer=False),
                overlap_seconds=shop.overlap_seconds,
            )
            for shop in config.shops
        ],
    )


def _print_diagnostics(diagnostics: Sequence[Any]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic.render(), file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Sources: readers only
# --------------------------------------------------------------------------------------------


def _files_connector() -> Any:
    """The files connector object (found by its entry point, like every connector)."""
    found = entry_points(group=registry.SHOPIFY_GROUP, name=_FILES)
    if not found:  # pragma: no cover - broken installation
        raise ConfigError("the files connector is not installed (entry point 'files' missing)")
    return next(iter(found)).load()


def _is_files(url: str) -> bool:
    return url.partition(":")[0].lower() == _FILES


def _folder_of(url: str) -> str:
    rest = url.partition(":")[2]
    return rest[2:] if rest.startswith("//") else rest


@dataclass(slots=True)
class _Sources:
    erp: Any
    shopify: dict[str, Any]
    links: list[Link]
    cursors: dict[tuple[str, str], datetime | None]
    warnings: list[PlanWarning]


@contextmanager
def _open_sources(setup: _Setup, shops: list[_ShopSource], world: str | None) -> Iterator[_Sources]:
    with ExitStack() as stack:

        def opened(reader: Any) -> Any:
            stack.callback(reader.close)
            return reader

        warnings: list[PlanWarning] = []
        erp_url = f"{_FILES}:{world}" if world else setup.erp_url
        if not erp_url:
            raise ConfigError(f"{setup.path}: no ERP connector URL (erp: {{url: ...}})")
        erp = opened(registry.open_erp_reader(erp_url, **({} if world else setup.erp_options)))
        readers: dict[str, Any] = {}
        link_folders: dict[str, str] = {}
        for shop in shops:
            url = f"{_FILES}:{world}" if world else shop.url
            if not url:
                raise ConfigError(f"{setup.path}: shop {shop.name!r} has no shopify url")
            readers[shop.name] = opened(
                registry.open_shopify_reader(url, **({} if world else shop.options))
            )
            if _is_files(url):
                link_folders[shop.name] = _folder_of(url)
        links: list[Link] = []
        cursors: dict[tuple[str, str], datetime | None] = {}
        loaded_folders: set[str] = set()
        for name, folder in link_folders.items():
            if folder in loaded_folders:
                continue
            loaded_folders.add(folder)
            loaded = _files_connector().load_links(folder)
            links.extend(loaded.records)
            for problem in loaded.problems:
                warnings.append(
                    PlanWarning("bad-record", f"link skipped: {problem.message}", problem.location)
                )
            del name
        state_shops = [shop.name for shop in shops if shop.name not in link_folders]
        if state_shops:
            links_from_state, cursors = _read_state(setup.state_url, state_shops, warnings)
            links.extend(links_from_state)
        yield _Sources(erp, readers, links, cursors, warnings)


def _read_state(
    url: str | None, shops: list[str], warnings: list[PlanWarning]
) -> tuple[list[Link], dict[tuple[str, str], datetime | None]]:
    """Links and cursors of ``shops``, read-only. No state database yet = a first run."""
    from ..run.state import DEFAULT_URL, SqlStateStore, make_engine

    state_url = url or DEFAULT_URL
    try:
        engine = make_engine(state_url, read_only=True)
    except ConfigError as exc:
        if "does not exist" not in exc.render():
            raise
        warnings.append(
            PlanWarning(
                "no-state",
                "no state database yet: planning as a first run (no links, no cursors)",
            )
        )
        return [], {}
    store = SqlStateStore(engine)
    try:
        links = [link for shop in shops for link in store.links(shop)]
        cursors = {
            (shop, direction.value): store.cursor(shop, direction.value)
            for shop in shops
            for direction in (Direction.IMPORT, Direction.EXPORT)
        }
    finally:
        store.close()
    return links, cursors


def _orders(
    args: argparse.Namespace, shopify: dict[str, Any], warnings: list[PlanWarning]
) -> dict[str, list[ShopifyOrder]] | None:
    if args.orders:
        loaded = _files_connector().load_orders(args.orders)
        for problem in loaded.problems:
            warnings.append(
                PlanWarning("bad-record", f"order skipped: {problem.message}", problem.location)
            )
        return {name: list(loaded.records) for name in shopify}
    if not args.order:
        return None
    from .options import order_gid

    found: dict[str, list[ShopifyOrder]] = {}
    for name, reader in shopify.items():
        found[name] = []
        for order_id in args.order:
            order = reader.get_order(order_gid(order_id))
            if order is None:
                warnings.append(
                    PlanWarning("order-not-found", f"order {order_id} not found", shop=name)
                )
            else:
                found[name].append(order)
    return found


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def _config_path(args: argparse.Namespace) -> Path | None:
    if args.config:
        from ..config import config_file

        return config_file(args.config)
    default = Path(DEFAULT_CONFIG)
    if default.is_file():
        return default
    if not args.world:
        raise UsageError(
            f"no configuration: pass --config FILE (or create ./{DEFAULT_CONFIG}), "
            "or plan on files with --world DIR"
        )
    return None


def _directions(args: argparse.Namespace) -> tuple[Direction, ...]:
    if args.direction is None:
        if args.order or args.orders:
            return ()
        return (Direction.IMPORT, Direction.EXPORT)
    if args.direction == "both":
        return (Direction.IMPORT, Direction.EXPORT)
    return (Direction(args.direction),)


def _select_shops(setup: _Setup, wanted: Sequence[str]) -> list[_ShopSource]:
    if not wanted:
        if not setup.shops:
            raise ConfigError(f"{setup.path}: no shops configured")
        return list(setup.shops)
    known = {shop.name: shop for shop in setup.shops}
    check_shop_names(wanted, list(known))
    return [known[name] for name in dict.fromkeys(wanted)]


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """``write`` the file through a temporary one (0600: it holds full contact data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_plan(
    args: argparse.Namespace,
    *,
    engine_factory: Callable[[Any], Any] | None = None,
    sink: Callable[[Decision], None] | None = None,
    progress: Progress | None = None,
    decided: Callable[[], None] | None = None,
) -> Plan:
    """Build the plan the command line asks for (used by ``plan``; reusable by ``sync``).

    With a ``sink`` the decisions go there as they are made and the plan returned keeps only
    their counts (:func:`~custsync.engine.run.planner.stream_plan`, which calls ``decided``
    when the deciding is over)."""
    from ..model import ShopContext
    from ..rules.validate import load_rule_set

    if args.order:
        from .options import order_gid

        for order_id in args.order:
            order_gid(order_id)  # every id checked before anything is opened
    config_path = _config_path(args)
    world = str(Path(args.world).resolve()) if args.world else None
    setup = _load_setup(config_path)
    warnings: list[PlanWarning] = []
    if setup is None:  # a bare --world: one shop with the default settings
        setup = _Setup(None, "", {}, None, [], [_ShopSource("main", ShopSettings(), {}, "")])
        warnings.append(
            PlanWarning(
                "no-config",
                "no configuration file: one shop 'main' with the default settings "
                "(pass --config FILE to set settings and per-country setups)",
            )
        )
    shops = _select_shops(setup, args.shop)

    rule_dirs = [*setup.rule_dirs, *(Path(d) for d in args.rules)]
    rule_set, diagnostics = load_rule_set(rule_dirs)
    if rule_set is None:
        errors = [d for d in diagnostics if getattr(d, "is_error", True)]
        raise DiagnosticsError(errors or list(diagnostics))
    _print_diagnostics(diagnostics)  # warnings only

    fingerprints = {
        "rules": file_fingerprint(locate(rule_file.path) for rule_file in rule_set.files),
    }
    if config_path is not None:
        fingerprints["config"] = file_fingerprint([config_path])

    contexts = [ShopContext(shop.name, shop.settings, shop.country_setups) for shop in shops]
    # the plan's time is when reading starts: `sync --plan` moves the cursors no further, so
    # a change made while (or after) the sources are read is left for the next run
    started = datetime.now(UTC)
    # the sources' records and the World live to the end: only young collections meanwhile
    with kept_out_of_collection(), _open_sources(setup, shops, world) as sources:
        orders = _orders(args, sources.shopify, sources.warnings)
        engine = engine_factory(rule_set) if engine_factory else None
        full = bool(getattr(args, "full", False))
        options: dict[str, Any] = {
            "shops": contexts,
            "rules": rule_set,
            "erp": sources.erp,
            "shopify": sources.shopify,
            "links": sources.links,
            "directions": _directions(args),
            "orders": orders,
            "cursors": {} if full else sources.cursors,
            "full": full,
            "overlaps": {shop.name: shop.overlap_seconds for shop in shops},
            "engine": engine,
            "fingerprints": fingerprints,
            "warnings": [*warnings, *sources.warnings],
            "now": started,
        }
        if sink is not None:
            return stream_plan(sink, progress=progress, decided=decided, **options)
        return build_plan(**options)


def _run(args: argparse.Namespace) -> int:
    """Plan, streaming: each decision is rendered into a spool as it is made (text block,
    JSON item), and the outputs are written from there; memory holds the World, not the plan.
    With ``-o json --out FILE`` the document is written once, to the file, and stdout gets
    a copy of its bytes."""
    channels: dict[str, Callable[[Decision], str | None]] = {}
    base_dir = Path.cwd()
    if args.out or args.output == "json":
        channels[JSON_CHANNEL] = decision_to_json
    if args.output == "text":
        channels["text"] = lambda decision: encode_block(decision_block(decision, base_dir))
    # `-o json --out FILE`: the JSON is made by a second process (started before anything is
    # read), the document written by it to the file
    spool: DecisionSpool | SpoolProcess = (
        SpoolProcess()
        if args.out and args.output == "json" and SpoolProcess.available()
        else DecisionSpool(channels, separators=JSON_SEPARATORS)
    )
    with spool, Progress(enabled=True) as progress:
        try:
            plan = make_plan(
                args,
                sink=spool.add,
                progress=progress,
                decided=spool.decided if isinstance(spool, SpoolProcess) else None,
            )
        except DiagnosticsError as exc:
            progress.close()
            _print_diagnostics(exc.diagnostics)
            print(f"custsync plan: {_count(exc.diagnostics)}; nothing planned", file=sys.stderr)
            return exitcodes.ERROR
        if args.out:
            progress.start(len(spool), "write plan", unit="customers")
            out = Path(args.out)
            try:
                _write_atomically(out, lambda stream: _write_document(plan, spool, stream))
            except OSError as exc:
                raise ConfigError(
                    f"--out {args.out}: cannot write: {exc.strerror or exc}"
                ) from None
            progress.advance(len(spool))
        progress.close()
        if args.out:
            print(
                f"Saved the plan to {out}; apply it with: custsync sync --plan {out}",
                file=sys.stderr,
            )
        if args.output == "json" and args.out:
            _copy_to_stdout(out)  # the same document: copied, not written out again
        elif isinstance(spool, DecisionSpool) and args.output == "json":
            write_plan_json(plan, spool.texts(JSON_CHANNEL), sys.stdout, count=len(spool))
        elif isinstance(spool, DecisionSpool):
            stream_text(plan, spool.blocks("text"), sys.stdout)
    if args.detailed_exitcode and plan.has_changes:
        return exitcodes.CHANGES_PRESENT
    return exitcodes.OK


def _write_document(plan: Plan, spool: DecisionSpool | SpoolProcess, out: IO[bytes]) -> None:
    if isinstance(spool, SpoolProcess):
        spool.write_document(plan_json_frame(plan), out)
    else:
        write_plan_document(plan, spool, out)


def _copy_to_stdout(path: Path) -> None:
    """The saved document's bytes to stdout (in the kernel where stdout is a file)."""
    sys.stdout.flush()
    stdout = getattr(sys.stdout, "buffer", None)
    if stdout is None:  # a text-only stream (tests capture so)
        with path.open(encoding="utf-8") as saved:
            shutil.copyfileobj(saved, sys.stdout, 1 << 20)
        return
    with path.open("rb") as saved:
        copy_bytes(saved, 0, path.stat().st_size, stdout)
    stdout.flush()


def _count(diagnostics: Sequence[Any]) -> str:
    errors = sum(1 for d in diagnostics if getattr(d, "is_error", True))
    return f"{errors} error{'s' if errors != 1 else ''} in rules or configuration"
