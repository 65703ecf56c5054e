"""Pytest fixtures for the message brokers of the Celery worker tests.

* ``rabbitmq_url`` -- ``amqp://guest@127.0.0.1:5672//`` (password ``guest`` in the environment
  variable :data:`PASSWORD_ENV`, as a deployment would have it);
* ``redis_url`` -- ``redis://127.0.0.1:6379/<db>`` on a database number of its own
  (:data:`REDIS_DB`), so other users of the server are not disturbed;
* ``broker_url`` -- parametrized over both.

Each test gets its own queue name (``queue_name``), so parallel runs do not collide. No server:
the test is skipped with a message, except under ``CI=true`` where it fails (as PostgreSQL in
``fixtures_db``).
"""

from __future__ import annotations

import os
import secrets
import socket

import pytest

RABBIT_HOST = os.environ.get("CUSTSYNC_TEST_RABBITMQ_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("CUSTSYNC_TEST_RABBITMQ_PORT", "5672"))
REDIS_HOST = os.environ.get("CUSTSYNC_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("CUSTSYNC_TEST_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("CUSTSYNC_TEST_REDIS_DB", "11"))
PASSWORD_ENV = "CUSTSYNC_TEST_BROKER_PASSWORD"

_answers: dict[str, str] = {}  # cached per broker: "" when it answers, else why not


def _unavailable(what: str, reason: str) -> None:
    message = f"{what} not reachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _check(name: str, url: str) -> str:
    if name not in _answers:
        try:
            from kombu import Connection
        except ImportError as exc:  # pragma: no cover - the test extra installs celery
            _answers[name] = f"kombu is not installed ({exc})"
            return _answers[name]
        try:
            with Connection(url, connect_timeout=3) as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
            _answers[name] = ""
        except Exception as exc:
            _answers[name] = f"{type(exc).__name__}: {exc}"
    return _answers[name]


@pytest.fixture
def rabbitmq_url() -> str:
    # set for the whole session: teardowns of other fixtures still connect with it
    os.environ[PASSWORD_ENV] = "guest"
    problem = _check("rabbitmq", f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}//")
    if problem:
        _unavailable(f"RabbitMQ on {RABBIT_HOST}:{RABBIT_PORT}", problem)
    return f"amqp://guest@{RABBIT_HOST}:{RABBIT_PORT}//"


@pytest.fixture
def redis_url() -> str:
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    problem = _check("redis", url)
    if problem:
        _unavailable(f"Redis on {REDIS_HOST}:{REDIS_PORT}", problem)
    return url


@pytest.fixture(params=["rabbitmq", "redis"])
def broker_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def queue_name() -> str:
    return f"custsync-test-{secrets.token_hex(4)}"


def free_port() -> int:
    """A loopback port nobody listens on (for an unreachable broker)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
