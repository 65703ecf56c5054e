"""The connector's create journal: what a create sent, so that a resumed run recognises it.

Business Central has no idempotency-key field on customers and assigns the number itself, so
a customer whose POST went out but whose answer (or whose link in custsync's state) was lost
cannot be found by its key in BC. Before every POST (or ``$batch`` of POSTs: one transaction
for the batch) the connector writes the key, the time and
a fingerprint of what it sends (name, e-mail, phone, post code, city, address) to this small
SQLite file; after BC's answer it records the number. ``find_by_idempotency_key`` then:

* key never sent -> None, without asking BC (no request per create);
* number recorded -> that customer (one GET); when its Customer Card values were not yet
  written (``posted``: the run stopped between the create and the card write, which go in
  separate ``$batch`` requests), they are written first;
* sent, answer lost -> asks BC for customers modified since shortly before the send with the
  same name and compares the rest of the fingerprint: one match is the customer (recorded),
  none means the POST never took effect (safe to send again), several are refused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["CreateJournal", "JournalEntry", "fingerprint"]

_FINGERPRINT_FIELDS = ("name", "email", "phone", "post_code", "city", "address")

#: sent (answer not yet known), posted (BC created it: number known, its Customer Card
#: values still to write), created (done), failed (BC refused it, or it never arrived)
SENT, POSTED, CREATED, FAILED = "sent", "posted", "created", "failed"


def fingerprint(fields: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: str(fields.get(name) or "").strip()
        for name in _FINGERPRINT_FIELDS
        if str(fields.get(name) or "").strip()
    }


@dataclass(frozen=True, slots=True)
class JournalEntry:
    key: str
    status: str
    sent_at: datetime
    fingerprint: Mapping[str, str]
    number: str = ""
    #: what the create still had to write to the Customer Card after the POST
    card: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


class CreateJournal:
    """A SQLite file (``:memory:`` for a reader that never writes)."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS bc_create (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
            "sent_at TEXT NOT NULL, fingerprint TEXT NOT NULL, number TEXT NOT NULL DEFAULT '')"
        )

    def close(self) -> None:
        self._db.close()

    def sent(
        self,
        entries: Mapping[str, Mapping[str, Any]],
        when: datetime,
        cards: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Journal creates about to be sent (one transaction): their fields by idempotency
        key, and what each will write to the Customer Card afterwards."""
        cards = cards or {}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO bc_create (key, status, sent_at, fingerprint) VALUES (?,?,?,?) "
                    "ON CONFLICT(key) DO UPDATE SET status=excluded.status, "
                    "sent_at=excluded.sent_at, fingerprint=excluded.fingerprint "
                    "WHERE bc_create.status != 'created'",
                    [
                        (
                            key,
                            SENT,
                            when.astimezone(UTC).isoformat(),
                            json.dumps({**fingerprint(f), "_card": dict(cards.get(key, {}))}),
                        )
                        for key, f in entries.items()
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def settle(self, key: str, status: str, number: str = "") -> None:
        with self._lock:
            self._db.execute(
                "UPDATE bc_create SET status=?, number=? WHERE key=?", (status, number, key)
            )

    def get(self, key: str) -> JournalEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT key, status, sent_at, fingerprint, number FROM bc_create WHERE key=?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        stored = json.loads(row[3])
        card = stored.pop("_card", {})
        return JournalEntry(row[0], row[1], datetime.fromisoformat(row[2]), stored, row[4], card)
