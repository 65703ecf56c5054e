"""Leases for the scheduler: acquire, expire, renew, release; atomic across processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from custsync.engine.run.state import SqlStateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStateStore]:
    with SqlStateStore.open(db_url) as opened:
        yield opened


def test_acquire_expire_renew_release(store: SqlStateStore) -> None:
    assert store.acquire_lease("shop:main", "a", 60, now=T0)
    assert not store.acquire_lease("shop:main", "b", 60, now=T0 + timedelta(seconds=30))
    assert store.lease_holder("shop:main", now=T0 + timedelta(seconds=30)) == "a"
    # the holder may re-acquire (extends) and renew
    assert store.acquire_lease("shop:main", "a", 60, now=T0 + timedelta(seconds=30))
    assert store.renew_lease("shop:main", "a", 60, now=T0 + timedelta(seconds=80))
    assert not store.acquire_lease("shop:main", "b", 60, now=T0 + timedelta(seconds=139))
    # expired: another holder takes it, and the old holder's renewal fails
    assert store.lease_holder("shop:main", now=T0 + timedelta(seconds=141)) is None
    assert store.acquire_lease("shop:main", "b", 60, now=T0 + timedelta(seconds=141))
    assert not store.renew_lease("shop:main", "a", 60, now=T0 + timedelta(seconds=142))
    assert store.lease_holder("shop:main", now=T0 + timedelta(seconds=142)) == "b"
    # releasing someone else's lease does nothing
    store.release_lease("shop:main", "a")
    assert store.lease_holder("shop:main", now=T0 + timedelta(seconds=142)) == "b"
    store.release_lease("shop:main", "b")
    assert store.lease("shop:main") is None
    assert store.acquire_lease("shop:main", "a", 60, now=T0 + timedelta(seconds=143))
    # leases are independent by name
    assert store.acquire_lease("shop:outlet", "b", 60, now=T0 + timedelta(seconds=143))


def test_database_clock_is_used_without_now(store: SqlStateStore) -> None:
    assert store.acquire_lease("x", "a", 0.3)
    assert store.lease_holder("x") == "a"
    assert not store.acquire_lease("x", "b", 0.3)
    time.sleep(0.4)
    assert store.lease_holder("x") is None
    assert store.acquire_lease("x", "b", 30)
    lease = store.lease("x")
    assert lease is not None and lease.expires_at - lease.acquired_at == timedelta(seconds=30)


def test_lease_clock_replaces_the_database_clock(db_url: str) -> None:
    now = [T0]
    with SqlStateStore.open(db_url, lease_clock=lambda: now[0]) as store:
        assert store.acquire_lease("x", "a", 10)
        now[0] = T0 + timedelta(seconds=11)
        assert store.lease_holder("x") is None
        assert store.acquire_lease("x", "b", 10)


def test_threads_with_their_own_connections_get_exactly_one_lease(db_url: str) -> None:
    SqlStateStore.open(db_url).close()
    results: list[bool] = []
    start = threading.Barrier(6)

    def contender(name: str) -> None:
        with SqlStateStore.open(db_url) as own:
            start.wait()
            results.append(own.acquire_lease("race", name, 60, now=T0))

    threads = [threading.Thread(target=contender, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 5 + [True]


_LEASE_SCRIPT = """
import sys, time
from datetime import datetime
from custsync.engine.run.state import SqlStateStore
url, holder, go, now, ttl = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
store = SqlStateStore.open(url)
time.sleep(max(0.0, go - time.time()))
print(store.acquire_lease("shop:main", holder, ttl, now=datetime.fromisoformat(now)))
store.close()
"""


def _contend(url: str, holders: list[str], now: datetime, ttl: float = 60) -> dict[str, bool]:
    go = time.time() + 1.0  # every process imports first, then all try at once
    procs = {
        holder: subprocess.Popen(
            [sys.executable, "-c", _LEASE_SCRIPT, url, holder, str(go), now.isoformat(), str(ttl)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for holder in holders
    }
    results = {}
    for holder, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results[holder] = out.strip() == "True"
    return results


def test_lease_across_processes_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    SqlStateStore.open(url).close()
    first = _contend(url, ["p1", "p2", "p3", "p4"], T0)
    assert sorted(first.values()) == [False, False, False, True]
    (winner,) = [holder for holder, won in first.items() if won]
    # still held a minute later for everyone else; after expiry exactly one other takes it
    with SqlStateStore.open(url) as store:
        assert not store.acquire_lease("shop:main", "p5", 60, now=T0 + timedelta(seconds=59))
    later = _contend(url, ["p6", "p7"], T0 + timedelta(seconds=61))
    assert sorted(later.values()) == [False, True]
    with SqlStateStore.open(url) as store:
        holder = store.lease_holder("shop:main", now=T0 + timedelta(seconds=62))
        assert holder in later and later[holder] and holder != winner
        assert store.renew_lease("shop:main", holder, 60, now=T0 + timedelta(seconds=62))
        assert not store.renew_lease("shop:main", winner, 60, now=T0 + timedelta(seconds=62))
