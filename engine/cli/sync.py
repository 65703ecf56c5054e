"""``custsync sync``: apply the plan (or a saved one) to the ERP and the shops."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from .. import exitcodes
from ..errors import ConfigError, UsageError
from ..ports import RUN_COUNTS
from ..run.schedule import ShopBusy, shop_lease
from .lease import add_lease_ttl_option, unreleased_lease
from .options import add_output_option
from .schedule import state_url_of

log = logging.getLogger("custsync.sync")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="apply the plan: import, export updates, export creates; then advance cursors",
        description=(
            "Plan and apply a customer sync for each configured shop (or --shop). Runs are "
            "recorded in the state store (`custsync runs`); a cursor advances only when every "
            "record of its direction succeeded. A killed run is resumed by running the same "
            "command again."
        ),
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default="custsync.yaml",
        help="configuration file (default: ./custsync.yaml)",
    )
    parser.add_argument(
        "--state",
        dest="state_url",
        metavar="URL",
        help="state database URL (default: the config's state.url)",
    )
    parser.add_argument(
        "--shop", metavar="SHOP", action="append", default=[], help="only this shop (repeatable)"
    )
    parser.add_argument(
        "--direction",
        choices=("import", "export", "both"),
        default="both",
        help="import (Shopify -> ERP), export (ERP -> Shopify) or both (default: both)",
    )
    parser.add_argument(
        "--rules",
        metavar="DIR",
        action="append",
        default=[],
        help="user rule folder applied over the shipped rules (repeatable; after the config's)",
    )
    parser.add_argument(
        "--plan",
        dest="plan_file",
        metavar="FILE",
        help="apply exactly this saved plan (JSON); refused when its records changed since",
    )
    parser.add_argument(
        "--full", action="store_true", help="ignore cursors: consider every record once"
    )
    add_output_option(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="print the plan first")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--executor",
        choices=("embedded", "celery"),
        default="embedded",
        help="embedded: sync here; celery: send the job of each --shop to the workers' queue "
        "(`custsync worker` runs it) (default: embedded)",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        help="with --executor celery: wait until the workers finished the jobs",
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="with --wait: give up waiting after this long (default: 3600)",
    )
    add_lease_ttl_option(parser)
    parser.set_defaults(handler=_run)


@contextmanager
def _signals(stop: Any) -> Iterator[None]:
    """SIGINT/SIGTERM: finish the current record, then stop (a second one interrupts)."""
    previous: dict[signal.Signals, Any] = {}

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.stop(f"{signal.Signals(signum).name} received")
        print(
            f"custsync: {signal.Signals(signum).name}: stopping after the current record",
            file=sys.stderr,
        )

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _run(args: argparse.Namespace) -> int:
    from ..config import config_file, require_config
    from ..rules.validate import require_rule_set
    from ..run.planread import open_saved_plan

    config_path = config_file(args.config)
    config = require_config(config_path)
    rules = require_rule_set([*config.rule_dirs, *map(Path, args.rules)])
    shops = config.select_shops(args.shop)
    if args.executor == "celery":
        if args.plan_file or args.full or args.rules:
            raise UsageError(
                "--executor celery sends the configured job: --plan, --full and --rules "
                "apply to a sync run here only"
            )
        from .worker import enqueue_sync

        return enqueue_sync(args, config)
    with ExitStack() as cleanup:
        saved = None
        if args.plan_file:
            # read streaming: checked whole now, its decisions read again as they are applied
            saved = cleanup.enter_context(open_saved_plan(args.plan_file))
            _check_saved_plan(saved, args, [s.name for s in config.shops], config_path)
            _check_plan_inputs(saved, args.plan_file, config_path, rules)
            shops = [s for s in shops if s.name in saved.shops]
        return _sync_shops(args, config, shops, rules, saved)


def _sync_shops(
    args: argparse.Namespace, config: Any, shops: list[Any], rules: Any, saved: Any
) -> int:
    from ..run.schedule import StopToken, make_holder_id
    from ..run.state import open_store
    from ..run.sync import run_sync

    _check_writers(config, shops)
    stop = StopToken()
    results = []
    worst = exitcodes.OK
    state = open_store(state_url_of(config, args.state_url))
    holder = make_holder_id()
    with _signals(stop):
        try:
            for shop in shops:
                if stop.is_set():
                    break
                try:
                    with shop_lease(
                        state, shop.name, holder, args.lease_ttl, stop, unreleased_lease
                    ) as fence:
                        try:
                            _abandon_stale_runs(state, shop.name)
                            result = run_sync(
                                config,
                                shop.name,
                                args.direction,
                                rules=rules,
                                state=state,
                                stop=stop,
                                plan=saved,
                                full=args.full,
                                progress=not args.no_progress and args.output == "text",
                                on_planned=_plan_printer(args) if args.verbose else None,
                                fence=fence,
                            )
                        except KeyboardInterrupt:
                            # a second signal: the run log must not keep this run "running"
                            # (we still hold the lease, so the open runs are ours)
                            state.abandon_running(
                                shop=shop.name, error=stop.reason or "interrupted"
                            )
                            raise
                except ShopBusy as busy:
                    print(f"custsync: {busy}; try later", file=sys.stderr)
                    worst = max(worst, exitcodes.LOCKED)
                    continue
                results.append(result)
                worst = max(worst, _exit_code(result.status))
        finally:
            state.close()
    _print_results(results, args.output)
    return worst


def _check_writers(config: Any, shops: list[Any]) -> None:
    """Open (and close) every writer once before the state store is opened or created: a
    read-only files: world, a missing token or ERP database is reported without leaving a
    new state database behind."""
    from ..registry import open_erp_writer
    from ..run.sync import open_shopify_writer_for

    open_erp_writer(config.erp_url, **config.erp_options).close()
    for shop in shops:
        open_shopify_writer_for(shop).close()


def _check_saved_plan(
    saved: Any, args: argparse.Namespace, configured: list[str], config_path: Path
) -> None:
    """A saved plan must be for shops of this config and have what --shop/--direction ask."""
    from ..run.sync import directions_for

    where = f"--plan {args.plan_file}"
    unknown = [name for name in saved.shops if name not in configured]
    if unknown:
        raise ConfigError(
            f"{where}: the plan is for shop(s) {', '.join(unknown)}, which {config_path} does "
            f"not configure (configured: {', '.join(configured) or '(none)'})"
        )
    missing = [name for name in args.shop if name not in saved.shops]
    if missing:
        raise UsageError(
            f"{where}: the plan has no shop {', '.join(missing)} "
            f"(it covers {', '.join(saved.shops) or '(none)'})"
        )
    planned = set(saved.directions)
    if not any(d in planned for d in directions_for(args.direction)):
        raise UsageError(
            f"{where}: the plan has no {args.direction} direction "
            f"(it covers {', '.join(d.value for d in saved.directions) or '(none)'})"
        )


def _check_plan_inputs(saved: Any, plan_file: str, config_path: Path, rules: Any) -> None:
    """A saved plan must have been made from this configuration and these rules (as its
    fingerprints say): decided under other settings or rules, it would apply what this
    configuration would not decide."""
    from ..resources import locate
    from ..run.plan import file_fingerprint

    current = {
        "config": file_fingerprint([config_path]),
        "rules": file_fingerprint(locate(rule_file.path) for rule_file in rules.files),
    }
    what = {"config": f"another configuration than {config_path}", "rules": "other rules"}
    changed = [
        what[key]
        for key in ("config", "rules")
        if key in saved.fingerprints and saved.fingerprints[key] != current[key]
    ]
    if changed:
        raise ConfigError(
            f"--plan {plan_file}: the plan was made with {' and '.join(changed)} than this "
            "sync uses (or they changed since); make a new plan with the same --config and "
            "--rules"
        )


def _plan_printer(args: argparse.Namespace) -> Any:
    def show(plan: Any) -> None:
        from ..run.planread import SavedPlan
        from ..run.render import decision_block, render_text, write_text

        if isinstance(plan, SavedPlan):  # streamed from its file, block by block
            blocks = (decision_block(d) for d in plan.decisions())
            write_text(plan.head, (b for b in blocks if b is not None), sys.stdout)
        else:
            sys.stdout.write(render_text(plan))
        sys.stdout.write("\n")

    return show


def _abandon_stale_runs(state: Any, shop: str) -> None:
    """Runs of ``shop`` still "running" once we hold its lease belong to a process that was
    killed: say so in the run log (as ``schedule`` does), instead of "running" forever."""
    ids = state.abandon_running(shop=shop, error="the process running it stopped")
    if ids:
        runs = ", ".join(map(str, sorted(ids)))
        print(
            f"custsync: shop {shop}: run(s) {runs} of a stopped process marked abandoned",
            file=sys.stderr,
        )


def _exit_code(status: str) -> int:
    return {
        "succeeded": exitcodes.OK,
        "partial": exitcodes.PARTIAL,
        "abandoned": exitcodes.INTERRUPTED,
        # a refused (stale) plan: not a failed run, but what was asked did not happen
        "refused": exitcodes.ERROR,
    }.get(status, exitcodes.ERROR)


_ORDER = RUN_COUNTS


def _print_results(results: list[Any], output: str) -> None:
    if output == "json":
        payload = [
            {
                "shop": r.shop,
                "status": r.status,
                "counts": {key: r.counts.get(key, 0) for key in _ORDER},
                "error": r.error,
                "runs": list(r.run_ids),
                "failures": [
                    {
                        "direction": f.decision.direction.value,
                        "record": f.decision.record,
                        "message": f.message,
                    }
                    for f in r.failures
                ],
            }
            for r in results
        ]
        print(json.dumps(payload, indent=2))
        return
    for r in results:
        counts = ", ".join(f"{r.counts.get(key, 0)} {key}" for key in _ORDER)
        runs = ", ".join(str(i) for i in r.run_ids)
        print(f"Sync {r.shop}: {r.status}. {counts}. (run {runs})")
        for failure in r.failures[:20]:
            print(
                f"  ! {failure.decision.direction.value} {failure.decision.record}: "
                f"{failure.message}"
            )
        if len(r.failures) > 20:
            print(f"  ... and {len(r.failures) - 20} more: custsync runs --failures RUN_ID")
        if r.error:
            print(f"  {'reason' if r.status == 'refused' else 'error'}: {r.error}")
