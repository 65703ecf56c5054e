"""Pytest fixtures for the message brokers of the Celery worker tests.

* ``rabbitmq_url`` -- ``amqp://guest@127.0.0.1:5672//`` (password ``guest`` in the environment
  variable :data:`PASSWORD_ENV`, as a deployment would have it);
* ``redis_url`` -- ``redis://127.0.0.1:6379/<db>`` on a database number of its own
  (:data:`REDIS_DB`), so other users of the server are not disturbed;
* ``broker_url`` -- parametrized over both;
* ``private_rabbitmq`` -- a RabbitMQ node of the test's own, on free ports, that the test may
  stop and start (the shared one is never restarted).

Each test gets its own queue name (``queue_name``), so parallel runs do not collide. No server:
the test is skipped with a message, except under ``CI=true`` where it fails (as PostgreSQL in
``fixtures_db``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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


# --------------------------------------------------------------------------------------------
# A private RabbitMQ node (for the broker restart test: never restart the shared one)
# --------------------------------------------------------------------------------------------

#: Debian's /usr/sbin wrappers switch to the rabbitmq user when run as root (and refuse other
#: users); the scripts behind them run as whoever calls them, on this node's own files
RABBIT_BIN_DIRS = ("/usr/lib/rabbitmq/bin",)


def _rabbit_command(name: str) -> str | None:
    for folder in RABBIT_BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


class PrivateRabbit:
    """A RabbitMQ node of the test's own: its node name, AMQP and distribution ports picked
    free, its database, logs, config and Erlang cookie (HOME) in ``folder``. Started and
    stopped by the test, so the broker's restart is real; the shared node is not touched."""

    def __init__(self, folder: Path, server: str, ctl: str) -> None:
        self.folder = folder
        self.server = server
        self.ctl = ctl
        self.node = f"custsync-test-{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        dist_port = free_port()
        home = folder / "home"
        home.mkdir(parents=True)
        (folder / "enabled_plugins").write_text("[].\n", encoding="utf-8")  # no management
        (folder / "rabbitmq-env.conf").write_text("", encoding="utf-8")  # not /etc's
        (folder / "rabbitmq.conf").write_text("log.console = false\n", encoding="utf-8")
        self.env = {
            **os.environ,
            "HOME": str(home),  # the node's own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(folder / "node.pid"),
            "RABBITMQ_CONF_ENV_FILE": str(folder / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest@127.0.0.1:{self.port}//"

    def start(self, timeout: float = 120.0) -> None:
        self.starts += 1
        log = open(self.folder / f"server-{self.starts}.out", "wb")  # noqa: SIM115 - kept
        self.process = subprocess.Popen(
            [self.server], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:  # the CLI fails at once until the node has registered its name
            waited = subprocess.run(
                [self.ctl, "-n", self.node, "await_startup", "--timeout", "30"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=90,
            )
            if waited.returncode == 0:
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if waited.returncode != 0:
            self.stop()
            output = (self.folder / f"server-{self.starts}.out").read_text(errors="replace")
            raise AssertionError(
                f"the private RabbitMQ node {self.node} did not start: "
                f"{waited.stdout}{waited.stderr}\n{output[-3000:]}"
            )

    def stop(self) -> None:
        """Shut the node down cleanly (its queues and persistent messages on its disk)."""
        if self.process is None:
            return
        subprocess.run(
            [self.ctl, "-n", self.node, "shutdown"],
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # did not stop: end the node this test started
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def private_rabbitmq(tmp_path: Path) -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of the test's own (see :class:`PrivateRabbit`), started; skipped with a
    message where RabbitMQ is not installed (failed under ``CI=true``: ``.ci/run`` installs
    it)."""
    server, ctl = _rabbit_command("rabbitmq-server"), _rabbit_command("rabbitmqctl")
    if not server or not ctl:
        _unavailable(
            "a private RabbitMQ node",
            "rabbitmq-server/rabbitmqctl are not installed (apt-get install rabbitmq-server)",
        )
    assert server and ctl
    os.environ[PASSWORD_ENV] = "guest"  # as rabbitmq_url: for the URL's user, all session
    node = PrivateRabbit(tmp_path / "rabbitmq", server, ctl)
    try:
        node.start()
        yield node
    finally:
        node.stop()
