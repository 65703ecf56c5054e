"""Celery workers for a fleet of shops (``custsync worker``, ``--executor celery``).

The task ``custsync.run_job`` runs one shop's job in a worker process through the embedded
scheduler's own :meth:`~.schedule.Scheduler.run_job` (shop lease with heartbeat, retries
with backoff, stale runs marked abandoned) and :func:`~.jobs.make_job` (``run_sync``: cursors,
run log, masking): the same code path as ``custsync schedule`` and ``sync``. What Celery adds:

* at-least-once delivery: ``acks_late`` (a message is acknowledged when its task ended) and
  ``reject_on_worker_lost`` (a worker process that dies gives its message back), durable
  queues and persistent messages, publisher confirms on RabbitMQ; one task per process at a
  time (prefork pool, prefetch 1);
* a redelivered task is safe: the dispatch row (:class:`~.dispatch.WorkerSlot`) says whether
  the slot is done, the shop lease whether someone runs it now. A task for a shop whose
  lease is held is *deferred*: retried with a countdown, never dropped;
* a task carries the dispatcher's config fingerprint (rule files and shops): a worker with a
  different config refuses it with a message instead of running other rules.

Celery is an optional extra (``pip install 'custsync[celery]'``); this module imports it only
inside functions and says how to install it when it is missing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import ConfigError, CustsyncError, RetriableError
from ..resources import shipped_rules_dir
from .dispatch import DEFERRED, MANUAL, DispatchLedger, DispatchRow, WorkerSlot
from .jobs import make_job
from .schedule import ABANDONED, SKIPPED, JobSpec, Scheduler, make_holder_id, safe_error
from .sync import directions_for

__all__ = [
    "TASK_NAME",
    "JobMessage",
    "JobResult",
    "WorkerRuntime",
    "broker_url",
    "celery_app",
    "check_broker",
    "config_fingerprint",
    "preload",
    "queue_depths",
    "redis_transport_options",
    "require_celery",
    "require_shared_state",
    "rules_for",
    "send_job",
    "shown_url",
]

log = logging.getLogger("custsync.worker")

TASK_NAME = "custsync.run_job"
INSTALL_HINT = "pip install 'custsync[celery]'"


def require_celery() -> Any:
    """The ``celery`` module, or a ConfigError saying how to install it."""
    try:
        import celery
    except ImportError:
        raise ConfigError(
            f"Celery is not installed; install the extra: {INSTALL_HINT} "
            "(Celery with the RabbitMQ and Redis clients)"
        ) from None
    return celery


def workers_of(config: Any) -> Any:
    workers = getattr(config, "workers", None)
    if workers is None:
        where = getattr(config, "path", None) or "custsync.yaml"
        raise ConfigError(
            f"{where}: no workers section; add e.g. "
            "workers: {broker_url: 'amqp://custsync@rabbitmq:5672/custsync', "
            "broker_password_env: CUSTSYNC_BROKER_PASSWORD}"
        )
    return workers


def require_shared_state(state_url: str, what: str) -> None:
    """Refuse SQLite state for Celery: workers on several machines cannot share a file."""
    from .state import display_url

    if state_url.split(":", 1)[0].split("+", 1)[0] == "sqlite":
        raise ConfigError(
            f"{what} needs a state database every worker and dispatcher can reach: the SQLite "
            f"file {display_url(state_url)} cannot be shared by several machines; use "
            "PostgreSQL (state: {url: 'postgresql+psycopg://USER@HOST/DATABASE'})"
        )


def shown_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<invalid URL>"
    if not password:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def broker_url(workers: Any, environ: Mapping[str, str] = os.environ) -> str:
    """The broker URL with the password from ``workers.broker_password_env`` put in."""
    url = str(workers.broker_url)
    env = workers.broker_password_env
    if not env:
        return url
    password = environ.get(env)
    if not password:
        raise ConfigError(
            f"workers.broker_password_env names {env}, which is not set: export the broker "
            f"password for {shown_url(url)} in it"
        )
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(parts.username or '', safe='')}:{quote(password, safe='')}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def config_fingerprint(config: Any) -> str:
    """A hash of what must be equal between dispatcher and worker: the rule files (shipped
    and the config's folders) and the shops (names, stores, settings, country setups)."""
    digest = hashlib.sha256()
    for folder in (shipped_rules_dir(), *config.rule_dirs):
        folder = Path(folder)
        files = [folder] if folder.is_file() else sorted(folder.glob("*.y*ml"))
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for shop in sorted(config.shops, key=lambda s: s.name):
        digest.update(
            repr(
                (
                    shop.name,
                    shop.shopify_url,
                    shop.settings,
                    sorted(shop.country_setups.items()),
                )
            ).encode()
        )
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# The Celery app
# --------------------------------------------------------------------------------------------


def celery_app(config: Any, *, config_path: str | None = None) -> Any:
    """A Celery app for ``config``'s ``workers`` section, with the task registered.

    ``config_path`` is what a worker process loads (its own config): the dispatcher only
    sends."""
    celery = require_celery()
    from kombu import Exchange, Queue

    workers = workers_of(config)
    url = broker_url(workers)
    scheme = urlsplit(url).scheme
    app = celery.Celery("custsync", set_as_current=False)
    transport_options: dict[str, Any] = {}
    if scheme.startswith("redis"):
        transport_options.update(redis_transport_options(workers))
    else:
        transport_options["confirm_publish"] = True  # a sent job is on the broker's disk
    app.conf.update(
        broker_url=url,
        result_backend=workers.result_backend or None,
        task_ignore_result=not workers.result_backend,
        task_default_queue=workers.queue,
        task_queues=[
            Queue(q, Exchange(q, type="direct", durable=True), routing_key=q, durable=True)
            for q in workers.queues
        ],
        task_default_delivery_mode="persistent",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_send_task_events=True,  # Flower
        task_send_sent_event=True,
        task_track_started=True,
        broker_transport_options=transport_options,
        broker_connection_timeout=5,
        broker_connection_retry_on_startup=True,
        enable_utc=True,
        timezone="UTC",
        custsync_config=config_path,
        custsync_shown_broker=shown_url(url),
    )
    app.task(name=TASK_NAME, bind=True, max_retries=None, acks_late=True)(_run_job_task)
    if config_path:
        from celery.signals import worker_process_init

        def warm_up(**_kwargs: Any) -> None:
            """Load config, rules and state in each new worker process before its first job,
            so a job's start is not delayed by it."""
            try:
                _runtime(app)
            except Exception:  # reported by the first task instead, with its message
                log.exception("custsync worker: could not load %s", config_path)

        worker_process_init.connect(warm_up, weak=False)
    return app


def redis_transport_options(workers: Any) -> dict[str, Any]:
    """Kombu's Redis options: a task whose worker died (unacknowledged) goes back to its queue
    ``visibility_timeout_seconds`` after it was delivered. Running workers look for such tasks
    every tenth of that (1 s to 60 s; kombu's default, about every 100 s, would add more
    than a minute to a short timeout); ``redis_key_prefix`` prefixes every key."""
    visibility = float(workers.visibility_timeout_seconds)
    options: dict[str, Any] = {
        "visibility_timeout": visibility,
        "unacked_restore_interval": min(60.0, max(1.0, visibility / 10)),
        "unacked_restore_throttle": 1,  # every sweep looks (kombu: every tenth)
    }
    if workers.redis_key_prefix:
        options["global_keyprefix"] = workers.redis_key_prefix
    return options


def _broker_error(app: Any, exc: Exception) -> RetriableError:
    shown = app.conf.custsync_shown_broker
    detail = str(exc).replace(str(app.conf.broker_url), shown)
    return RetriableError(f"broker {shown} unreachable: {safe_error(detail)}")


@contextmanager
def _broker(app: Any) -> Iterator[Any]:
    """A connection to the broker; RetriableError naming the (masked) URL when it fails."""
    conn = app.connection_for_write()
    try:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=5)
        except Exception as exc:
            raise _broker_error(app, exc) from None
        yield conn
    finally:
        conn.release()


def check_broker(app: Any) -> None:
    """Fail with a clear error (masked URL) when the broker does not answer."""
    with _broker(app):
        pass


def queue_depths(app: Any, queues: Sequence[str]) -> dict[str, dict[str, int | None]]:
    """Per queue: messages waiting and consumers (declaring a missing queue, durable;
    consumers None on Redis, which does not know them)."""
    from kombu import Exchange, Queue

    redis = urlsplit(str(app.conf.broker_url)).scheme.startswith("redis")
    depths: dict[str, dict[str, int | None]] = {}
    with _broker(app) as conn:
        channel = conn.default_channel
        for name in queues:
            queue = Queue(name, Exchange(name, type="direct", durable=True), routing_key=name)
            try:
                ok = queue(channel).queue_declare()
            except Exception as exc:
                raise _broker_error(app, exc) from None
            depths[name] = {
                "messages": int(ok.message_count or 0),
                # Redis does not know its consumers
                "consumers": None if redis else int(ok.consumer_count or 0),
            }
    return depths


def send_job(app: Any, row: DispatchRow, fingerprint: str) -> str:
    """Publish the job of dispatch row ``row``; its task id (RetriableError when the broker
    cannot take it: the row stays pending and is sent again)."""
    try:
        result = app.send_task(
            TASK_NAME,
            kwargs={
                "shop": row.shop,
                "direction": row.direction,
                "slot": row.slot.isoformat(),
                "dispatch_id": row.id,
                "fingerprint": fingerprint,
            },
            queue=row.queue,
            routing_key=row.queue,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )
    except CustsyncError:
        raise
    except Exception as exc:
        raise _broker_error(app, exc) from None
    return str(result.id)


# --------------------------------------------------------------------------------------------
# The worker process
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobMessage:
    shop: str
    direction: str
    slot: datetime
    dispatch_id: int
    fingerprint: str


@dataclass(frozen=True, slots=True)
class JobResult:
    """What one delivery of a task came to: ``deferred`` (the shop's lease is held: retry
    later), ``refused`` (this worker must not run it), ``skipped`` (the slot is done) or the
    run's status."""

    status: str
    error: str = ""
    counts: Mapping[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "counts": dict(self.counts or {})}


#: compiled rule sets of this process by config fingerprint (rule files and shops): the
#: worker's main process loads its config's before it forks the pool, so every pool process
#: starts with them (copy-on-write) instead of compiling them again
_RULE_SETS: dict[str, Any] = {}


def rules_for(config: Any, fingerprint: str) -> Any:
    """The compiled rule set of ``config`` (whose fingerprint is ``fingerprint``), loaded once
    per process; a config with other rules or shops has another fingerprint, so it never gets
    rules compiled for a different config."""
    if fingerprint not in _RULE_SETS:
        from ..rules.validate import require_rule_set

        _RULE_SETS[fingerprint] = require_rule_set(list(config.rule_dirs))
    return _RULE_SETS[fingerprint]


def preload(config: Any) -> str:
    """Load what every job of ``config`` needs and that holds no connection: the rule set, the
    ERP and Shopify connectors (with their HTTP and database client libraries) and the sync
    code. Called in the worker's main process before it forks its pool processes, so that a
    process's first job does not spend half a second of CPU importing them (with W processes
    starting W jobs at once, that was W times at the same moment). Invalid rules or an
    unknown connector stop the worker here. Returns the config's fingerprint."""
    from .. import registry
    from . import sync  # noqa: F401 - imported for the pool processes

    fingerprint = config_fingerprint(config)
    rules_for(config, fingerprint)
    registry.preload_connector(registry.ERP_GROUP, config.erp_url)
    for shop in config.shops:
        registry.preload_connector(registry.SHOPIFY_GROUP, shop.shopify_url)
    return fingerprint


class WorkerRuntime:
    """What one worker process keeps between tasks: its config, state store, rules, holder
    id. Built lazily in each process (connections are never shared across a fork); the rules
    come from :func:`rules_for`, compiled once before the fork."""

    def __init__(self, config_path: str, *, lease_ttl: float = 60.0) -> None:
        from ..config import config_file, require_config
        from .state import open_store

        self.config = require_config(config_file(config_path))
        require_shared_state(self.config.state_url, "custsync worker")
        self.fingerprint = config_fingerprint(self.config)
        self.state = open_store(self.config.state_url)
        self.ledger = DispatchLedger(self.config.state_url)
        self.job = make_job(
            self.config, self.state, rules=rules_for(self.config, self.fingerprint)
        )
        self.holder = make_holder_id()
        self.lease_ttl = lease_ttl

    def execute(self, message: JobMessage) -> JobResult:
        """Run one delivered task (see the module docstring)."""
        why = self._refusal(message)
        if why:
            log.error(
                "refused task for shop=%s dispatch=%s: %s", message.shop, message.dispatch_id, why
            )
            self.ledger.update(message.dispatch_id, "refused", holder=self.holder, error=why)
            return JobResult("refused", why)
        shop = self.config.shop(message.shop)
        spec = JobSpec(
            shop=shop.name,
            direction=message.direction,
            cron="",
            retries=shop.schedule.retries,
            retry_backoff_seconds=shop.schedule.retry_backoff_seconds,
            shop_config=shop,
        )
        scheduler = Scheduler(
            [spec], self.job, self.state, holder=self.holder, lease_ttl=self.lease_ttl
        )
        slot = WorkerSlot(self.ledger, message.dispatch_id, self.holder)
        report = scheduler.run_job(spec, message.slot, ledger=slot)
        if report.status == SKIPPED and report.holder:
            error = f"shop {shop.name} is being synced by {report.holder}"
            self.ledger.update(message.dispatch_id, DEFERRED, error=error)
            return JobResult("deferred", error)
        if report.status == ABANDONED:
            return JobResult("deferred", report.error or "the run was stopped")
        return JobResult(report.status, report.error, report.counts)

    def _refusal(self, message: JobMessage) -> str:
        names = [s.name for s in self.config.shops]
        if message.shop not in names:
            return (
                f"this worker's configuration ({self.config.path}) has no shop named "
                f"{message.shop!r} (it has: {', '.join(names) or 'none'})"
            )
        if message.fingerprint != self.fingerprint:
            return (
                f"this worker's configuration ({self.config.path}) differs from the "
                f"dispatcher's: rules or shops fingerprint {self.fingerprint} here, "
                f"{message.fingerprint} in the task; deploy the same config and rules to "
                "dispatchers and workers"
            )
        try:
            directions_for(message.direction)
        except ConfigError as exc:
            return exc.render()
        return ""


_RUNTIMES: dict[int, WorkerRuntime] = {}


def _runtime(app: Any) -> WorkerRuntime:
    pid = os.getpid()
    runtime = _RUNTIMES.get(pid)
    if runtime is None:
        path = app.conf.custsync_config
        if not path:
            raise ConfigError(
                "this Celery app has no custsync config: start it with custsync worker"
            )
        runtime = WorkerRuntime(path, lease_ttl=float(app.conf.get("custsync_lease_ttl") or 60.0))
        _RUNTIMES.clear()  # one per process: a forked child starts its own
        _RUNTIMES[pid] = runtime
    return runtime


class JobRefused(Exception):
    """A task this worker must not run (its message says why); the task fails, visibly."""


def _run_job_task(
    task: Any, *, shop: str, direction: str, slot: str, dispatch_id: int, fingerprint: str
) -> dict[str, Any]:
    runtime = _runtime(task.app)
    message = JobMessage(
        shop, direction, datetime.fromisoformat(slot), int(dispatch_id), fingerprint
    )
    result = runtime.execute(message)
    if result.status == "deferred":
        countdown = (
            float(runtime.config.workers.lease_retry_seconds) if runtime.config.workers else 15.0
        )
        log.info(
            "deferred shop=%s dispatch=%s for %gs: %s", shop, dispatch_id, countdown, result.error
        )
        raise task.retry(countdown=countdown, max_retries=None)
    if result.status == "refused":
        raise JobRefused(result.error)
    return result.as_dict()


def manual_slot(
    ledger: DispatchLedger, shop: str, direction: str, now: datetime, queue: str
) -> int:
    """A dispatch row for a job sent by hand (``sync --executor celery``)."""
    row_id = ledger.claim(shop, direction, now, kind=MANUAL, queue=queue)
    if row_id is None:  # the same microsecond twice: practically never
        raise RetriableError(f"a job for shop {shop} was sent at this very moment; try again")
    return row_id
