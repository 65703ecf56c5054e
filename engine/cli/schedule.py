"""``custsync schedule``: run each shop's sync on its cron schedule, in the foreground.

::

    custsync schedule [-c CONFIG] [--shop SHOP]... [--once] [--lease-ttl SECONDS] [--state URL]

Log lines go to stdout (one per run). The first SIGTERM/SIGINT finishes the current record and
exits 0; a second one aborts at once (exit 130). ``--once`` runs every due job once and exits
(for cron users and tests). The helpers for loading the config and opening the state store
are shared with ``custsync runs`` / ``custsync status`` (:mod:`.runs`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigError
from ..run.jobs import make_job, outcome_of
from ..run.schedule import (
    JobSpec,
    Scheduler,
    jobs_from_config,
)

DEFAULT_CONFIG = "custsync.yaml"
DEFAULT_STATE_URL = "sqlite:///custsync-state.db"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schedule",
        help="run each shop's sync on its cron schedule (long-running)",
        description=(
            "Run every shop's import and export on the cron expressions in the config "
            "(shops[].schedule), in the foreground, until SIGTERM/SIGINT. One shop is never "
            "synced twice at once, also across processes and machines sharing the state "
            "database."
        ),
    )
    add_config_options(parser)
    parser.add_argument(
        "--shop",
        dest="shops",
        action="append",
        default=[],
        metavar="SHOP",
        help="only schedule this shop (repeatable; default: every shop with a schedule)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run every due job once and exit (jobs that never ran count as due)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=number_type(float, 0, inclusive=False),
        default=60.0,
        metavar="SECONDS",
        help="how long a crashed instance blocks a shop (default: 60; renewed every TTL/3)",
    )
    parser.add_argument(
        "--executor",
        choices=("embedded", "celery"),
        default="embedded",
        help="embedded: run due jobs here, one at a time; celery: send them to the queue of "
        "the config's workers: section (`custsync worker` runs them) (default: embedded)",
    )
    parser.set_defaults(handler=_run)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"configuration file (default: ./{DEFAULT_CONFIG})",
    )
    parser.add_argument(
        "--state",
        dest="state_url",
        metavar="URL",
        help="state database URL (default: the config's state.url)",
    )


def number_type(
    cast: Callable[[str], float], minimum: float, *, inclusive: bool = True
) -> Callable[[str], Any]:
    """An argparse ``type`` for a number at least (or, not inclusive, above) ``minimum``."""
    word = "a whole number" if cast is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {word}: {text!r}") from None
        if value < minimum or (not inclusive and value == minimum):
            bound = f"{minimum:g} or more" if inclusive else f"more than {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}: {text!r}")
        return value

    return parse


# --------------------------------------------------------------------------------------------
# Shared with runs.py
# --------------------------------------------------------------------------------------------


def load_config(path: str) -> Any:
    """The typed config of ``path`` (ConfigError with a location when it is invalid)."""
    from ..config import config_file, require_config

    return require_config(config_file(path))


def state_url_of(config: Any, override: str | None) -> str:
    if override:
        return override
    state = getattr(config, "state", None)
    url = getattr(state, "url", None) or getattr(config, "state_url", None)
    if isinstance(state, dict):
        url = state.get("url")
    return str(url or DEFAULT_STATE_URL)


def open_state(url: str, *, read_only: bool = False) -> Any:
    """The state store at ``url``; read-only opens an existing database without creating it."""
    from ..run.state import SqlStateStore, make_engine, open_store

    if read_only:
        return SqlStateStore(make_engine(url, read_only=True, must_exist=True))
    return open_store(url)


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    specs = jobs_from_config(config, args.shops)
    if not specs:
        raise ConfigError(
            f"{args.config}: no shop has a schedule; add e.g. "
            "shops[].schedule: {import: '*/15 * * * *', export: '0 * * * *'}"
        )
    if args.executor == "celery":
        return dispatch_schedule(args, config, specs)
    state = open_state(state_url_of(config, args.state_url))
    try:
        scheduler = Scheduler(specs, make_job(config, state), state, lease_ttl=args.lease_ttl)
        with _log_to_stdout(), stop_on_signals(scheduler):
            if args.once:
                return scheduler.run_once()[1]
            return scheduler.run_forever()
    finally:
        state.close()


# --------------------------------------------------------------------------------------------
# schedule --executor celery
# --------------------------------------------------------------------------------------------


def dispatch_schedule(args: argparse.Namespace, config: Any, specs: list[Any]) -> int:
    """``custsync schedule --executor celery``: the cron loop, sending due jobs."""
    from ..run.workers import celery_app, check_broker, require_shared_state

    state_url = state_url_of(config, args.state_url)
    require_shared_state(state_url, "custsync schedule --executor celery")
    app = celery_app(config)
    try:
        check_broker(app)
        return _dispatch(args, app, config, specs, state_url)
    finally:
        app.close()


def _dispatch(
    args: argparse.Namespace, app: Any, config: Any, specs: list[Any], state_url: str
) -> int:
    from ..run.dispatch import DispatchLedger, DispatchScheduler
    from ..run.workers import config_fingerprint, send_job

    fingerprint = config_fingerprint(config)
    state = open_state(state_url)
    ledger = DispatchLedger(state_url)
    try:
        scheduler = DispatchScheduler(
            specs,
            state,
            ledger,
            lambda row: send_job(app, row, fingerprint),
            queue_for=config.workers.queue_for,
            lease_ttl=args.lease_ttl,
        )
        with _log_to_stdout(), stop_on_signals(scheduler):
            if args.once:
                return scheduler.run_once()[1]
            return scheduler.run_forever()
    finally:
        ledger.close()
        state.close()


@contextmanager
def _log_to_stdout() -> Iterator[None]:
    """The scheduler's log lines on stdout, one per line, flushed (journald, docker logs)."""
    logger = logging.getLogger("custsync.schedule")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


@contextmanager
def stop_on_signals(scheduler: Scheduler) -> Iterator[None]:
    """First SIGTERM/SIGINT: stop after the current record. Second: abort (KeyboardInterrupt,
    which the CLI turns into exit 130)."""
    received: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        if len(received) > 1:
            raise KeyboardInterrupt
        logging.getLogger("custsync.schedule").info(
            "%s received: stopping after the current record (send again to abort)", name
        )
        scheduler.request_stop(name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = [
    "JobSpec",
    "add_config_options",
    "load_config",
    "make_job",
    "number_type",
    "open_state",
    "outcome_of",
    "register",
    "state_url_of",
    "stop_on_signals",
]
