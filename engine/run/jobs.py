"""THE wiring between a scheduler and the real sync job, shared by ``custsync schedule`` and
the Celery worker (``custsync worker``), so both run a shop exactly the same way."""

from __future__ import annotations

from typing import Any

from .schedule import Job, RunOutcome, StopToken

__all__ = ["make_job", "outcome_of"]


def make_job(config: Any, state: Any, *, rules: Any = None) -> Job:
    """The sync job for ``config``.

    Loads the rule set once (invalid rules stop the service before it starts), unless the
    caller has it (``rules``: a worker process gets it from its parent). Each run
    calls :func:`custsync.engine.run.sync.run_sync`, which opens fresh ERP and Shopify writers
    for the shop (a long-running service survives a dropped connection), records the run,
    honours the stop token between records and advances the cursor only on success. The
    scheduler holds the shop's lease around it.
    """
    from ..rules.validate import require_rule_set
    from .sync import run_sync

    if rules is None:
        rules = require_rule_set(list(config.rule_dirs))

    def job(shop: Any, direction: str, stop: StopToken) -> RunOutcome:
        return outcome_of(
            run_sync(
                config,
                shop.name,
                direction,
                state=state,
                stop=stop,
                rules=rules,
                fence=getattr(stop, "fence", None),  # the lease the scheduler took
            )
        )

    return job


def outcome_of(result: Any) -> RunOutcome:
    """A :class:`~custsync.engine.run.sync.SyncResult` as the scheduler's RunOutcome (the sync
    job has written its own run-log entries: ``run_ids``)."""
    run_ids = tuple(getattr(result, "run_ids", ()) or ())
    return RunOutcome(
        status=str(result.status),
        counts=dict(getattr(result, "counts", {}) or {}),
        error=str(getattr(result, "error", "") or ""),
        retriable=bool(getattr(result, "retriable", True)),
        run_id=run_ids[-1] if run_ids else None,
    )
