"""The ``workers:`` section of custsync.yaml and the Celery helpers that need no broker:
broker URL and password masking, the config fingerprint, the missing-extra message."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from custsync.engine.config import WorkersConfig, load_config_text
from custsync.engine.errors import ConfigError, CustsyncError
from custsync.engine.run.workers import (
    broker_url,
    celery_app,
    config_fingerprint,
    preload,
    redis_transport_options,
    require_celery,
    require_shared_state,
    rules_for,
    shown_url,
)

BASE = """\
erp: {url: "sqlite:///erp.db"}
state: {url: "postgresql+psycopg://custsync@db/custsync"}
shops:
  - name: main
    shopify: {url: "http://127.0.0.1:9"}
  - name: outlet
    shopify: {url: "http://127.0.0.1:9"}
"""


def _load(workers: str) -> tuple[object, list[str]]:
    config, diagnostics = load_config_text(BASE + workers, "custsync.yaml", Path.cwd())
    return config, [f"{d.pointer} line {d.line} {d.code}: {d.message}" for d in diagnostics]


def test_the_workers_section_is_read_with_defaults() -> None:
    config, problems = _load(
        "workers:\n  broker_url: amqp://custsync@rabbit:5672/custsync\n"
        "  broker_password_env: BROKER_PW\n  shop_queues: {outlet: slow}\n"
    )
    assert problems == []
    workers = config.workers  # type: ignore[attr-defined]
    assert workers == WorkersConfig(
        broker_url="amqp://custsync@rabbit:5672/custsync",
        broker_password_env="BROKER_PW",
        shop_queues=workers.shop_queues,
    )
    assert dict(workers.shop_queues) == {"outlet": "slow"}
    assert (workers.queue_for("main"), workers.queue_for("outlet")) == ("custsync", "slow")
    assert workers.queues == ("custsync", "slow")
    assert workers.lease_retry_seconds == 15.0


@pytest.mark.parametrize(
    ("workers", "expected"),
    [
        (
            "workers: {broker_url: 'amqp://u:hunter2@rabbit/'}",
            "secret-in-config: the broker URL contains a password",
        ),
        ("workers: {broker_url: 'http://rabbit/'}", "an amqp:// or redis:// URL"),
        ("workers: {broker_url: 'redis://r/0', shop_queues: {nope: q}}", "no shop named 'nope'"),
        ("workers: {queue: x}", "/workers line 8 schema: missing required property 'broker_url'"),
        (
            "workers: {broker_url: 'redis://r/0', lease_retry_seconds: 0}",
            "/workers/lease_retry_seconds line 8 schema: must be more than 0",
        ),
        (
            "workers: {broker_url: 'redis://r/0', visibility_timeout_seconds: 0}",
            "/workers/visibility_timeout_seconds line 8 schema: must be more than 0",
        ),
        (
            "workers: {broker_url: 'redis://r/0', redis_key_prefix: 'a b'}",
            "/workers/redis_key_prefix line 8 schema",
        ),
    ],
)
def test_a_bad_workers_section_is_an_error_naming_what(workers: str, expected: str) -> None:
    config, problems = _load(workers + "\n")
    assert config is None
    assert any(expected in p for p in problems), problems
    assert not any("hunter2" in p for p in problems)


def test_the_broker_password_comes_from_the_environment_and_is_never_shown() -> None:
    workers = WorkersConfig(
        broker_url="amqp://custsync@rabbit:5672/fleet", broker_password_env="PW"
    )
    url = broker_url(workers, {"PW": "p@ss:w/rd"})
    assert url == "amqp://custsync:p%40ss%3Aw%2Frd@rabbit:5672/fleet"
    assert shown_url(url) == "amqp://custsync:***@rabbit:5672/fleet"
    with pytest.raises(ConfigError, match="PW, which is not set") as caught:
        broker_url(workers, {})
    assert "amqp://custsync@rabbit:5672/fleet" in str(caught.value)
    assert broker_url(replace(workers, broker_password_env=""), {}) == workers.broker_url


def test_sqlite_state_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="cannot be shared by several machines; use PostgreSQL"):
        require_shared_state("sqlite:///state.db", "custsync worker")
    require_shared_state("postgresql+psycopg://u@db/custsync", "custsync worker")


def test_the_fingerprint_changes_with_the_rules_and_the_shops(tmp_path: Path) -> None:
    config, _ = load_config_text(BASE, "custsync.yaml", tmp_path)
    assert config is not None
    same, _ = load_config_text(BASE + "workers: {broker_url: 'redis://r/0'}\n", "c.yaml", tmp_path)
    assert same is not None and config_fingerprint(same) == config_fingerprint(config)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "local.yaml").write_text("decision: import_match\nrules: []\n", encoding="utf-8")
    assert config_fingerprint(replace(config, rule_dirs=(rules,))) != config_fingerprint(config)
    assert config_fingerprint(replace(config, shops=config.shops[:1])) != config_fingerprint(config)


def test_without_the_extra_the_commands_say_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)  # import celery -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'custsync\[celery\]'"):
        require_celery()


def test_the_redis_redelivery_settings_come_from_the_workers_section() -> None:
    config, problems = _load(
        "workers:\n  broker_url: redis://127.0.0.1:6379/3\n"
        "  visibility_timeout_seconds: 120\n  redis_key_prefix: 'fleet-a:'\n"
    )
    assert problems == []
    workers = config.workers  # type: ignore[attr-defined]
    assert (workers.visibility_timeout_seconds, workers.redis_key_prefix) == (120.0, "fleet-a:")
    # a dead worker's task is back after the timeout: workers look every tenth of it (1-60 s)
    assert redis_transport_options(workers) == {
        "visibility_timeout": 120.0,
        "unacked_restore_interval": 12.0,
        "unacked_restore_throttle": 1,
        "global_keyprefix": "fleet-a:",
    }
    default = redis_transport_options(replace(workers, visibility_timeout_seconds=3600.0))
    assert default["unacked_restore_interval"] == 60.0
    short = redis_transport_options(replace(workers, visibility_timeout_seconds=4.0))
    assert short["unacked_restore_interval"] == 1.0
    assert "global_keyprefix" not in redis_transport_options(replace(workers, redis_key_prefix=""))
    app = celery_app(config)  # what the workers and the dispatcher connect with
    try:
        assert app.conf.broker_transport_options == redis_transport_options(workers)
    finally:
        app.close()


def test_a_worker_compiles_its_rules_once_per_config_before_it_forks(tmp_path: Path) -> None:
    config, _ = load_config_text(BASE, "custsync.yaml", tmp_path)
    assert config is not None
    fingerprint = preload(config)  # in the worker's main process, before the pool forks
    assert fingerprint == config_fingerprint(config)
    rules = rules_for(config, fingerprint)
    assert rules_for(config, fingerprint) is rules  # a job reuses it, no compiling again
    # what a process's first job would import is loaded: the connectors, the HTTP transport
    (tmp_path / "custsync.yaml").write_text(BASE, encoding="utf-8")
    probe = (
        "import sys\n"
        "from custsync.engine.config import require_config\n"
        "from custsync.engine.run.workers import preload\n"
        "wanted = ['custsync.connectors.shopify', 'custsync.connectors.erp_sql', 'httpcore']\n"
        "before = [m in sys.modules for m in wanted]\n"
        f"preload(require_config({str(tmp_path / 'custsync.yaml')!r}))\n"
        "print(before, [m in sys.modules for m in wanted])\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.stdout.split("] [") == ["[False, False, False", "True, True, True]\n"], (
        found.stdout + found.stderr
    )
    # a config with other rules is another key: it never runs with these compiled rules
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "local.yaml").write_text(
        "decision: import_match\ndisable: [match-by-phone-digits]\nrules: []\n", encoding="utf-8"
    )
    other = replace(config, rule_dirs=(folder,))
    assert config_fingerprint(other) != fingerprint
    other_rules = rules_for(other, config_fingerprint(other))
    assert other_rules is not rules and other_rules != rules


def test_a_worker_with_bad_rules_stops_before_it_starts(tmp_path: Path) -> None:
    config, _ = load_config_text(BASE, "custsync.yaml", tmp_path)
    assert config is not None
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.yaml").write_text("decision: nope\nrules: []\n", encoding="utf-8")
    with pytest.raises(CustsyncError, match=r"broken\.yaml"):
        preload(replace(config, rule_dirs=(folder,)))
