"""Microsoft Dynamics 365 Business Central connector (entry point ``bc``; API v2.0 over httpx).

::

    writer = open_writer(
        "bc://contoso.onmicrosoft.com/Production",
        company="CRONUS USA, Inc.", client_id="...", client_secret_env="BC_CLIENT_SECRET",
        pages={"customer_card": "Customer"},
    )

Modules: :mod:`.settings` (URL and options), :mod:`.client` (token, pacing to BC's limits,
retries, BC's errors), :mod:`.mapping` (entities <-> records), :mod:`.reader`
(``ErpReader``), :mod:`.writer` (``ErpWriter``, ``$batch``), :mod:`.journal` (recognising a
create whose answer was lost). User documentation: ``docs/business-central.md``.

Options (custsync.yaml ``erp.business_central``, or ``?name=value`` in the URL): ``company``,
``tenant``, ``client_id``, ``client_secret_env``, ``token_url``, ``scope``, ``pages``,
``page_size``, ``modified_overlap_seconds``, ``timeout_seconds``, ``requests_per_window``,
``window_seconds``, ``max_concurrent``, ``max_attempts``, ``retry_base_delay``,
``retry_max_delay``, ``batch_size``, ``journal``; for tests ``transport``, ``clock``,
``sleep``, ``environ``, ``now``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .client import BcClient, BcHttpError, OutcomeUnknown
from .journal import CreateJournal
from .reader import BcErpReader
from .settings import BcSettings, parse_settings
from .writer import BcErpWriter, CreateItem

__all__ = [
    "BcClient",
    "BcErpReader",
    "BcErpWriter",
    "BcHttpError",
    "BcSettings",
    "CreateItem",
    "OutcomeUnknown",
    "default_journal",
    "open_reader",
    "open_writer",
    "parse_settings",
]

_TEST_OPTIONS = ("transport", "clock", "sleep", "environ", "seed")
#: options other connectors take that mean nothing here (custsync passes them to every ERP)
_IGNORED = ("read_only", "create")


def _client(url: str, options: dict[str, Any]) -> BcClient:
    extra = {k: options.pop(k) for k in _TEST_OPTIONS if k in options}
    for name in _IGNORED:
        options.pop(name, None)
    settings = parse_settings(url, options)
    return BcClient(settings, **extra)


def default_journal(settings: BcSettings) -> str:
    """``$XDG_STATE_HOME/custsync/bc-<hash of environment and company>.sqlite``."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    digest = hashlib.sha256(f"{settings.base_url}|{settings.company}".encode()).hexdigest()
    return str(base / "custsync" / f"bc-{digest[:16]}.sqlite")


def open_reader(url: str, **options: Any) -> BcErpReader:
    """A reader (no write methods)."""
    options.pop("now", None)
    return BcErpReader(_client(url, dict(options)))


def open_writer(url: str, **options: Any) -> BcErpWriter:
    """A writer; its create journal is ``journal`` (default :func:`default_journal`)."""
    options = dict(options)
    now = options.pop("now", None)
    client = _client(url, options)
    journal = CreateJournal(client.settings.journal or default_journal(client.settings))
    return BcErpWriter(client, journal, now=now)
