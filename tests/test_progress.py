"""Progress of long phases: log lines off a terminal, a rich bar on one, never stdout."""

from __future__ import annotations

import io
import logging

import pytest
from custsync.engine import progress as progress_module
from custsync.engine.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_phase_logs_every_few_seconds_and_its_end(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    caplog.set_level(logging.INFO, logger="custsync.progress")
    stream = io.StringIO()
    with Progress(3000, "plan main", stream=stream) as bar:
        for _ in range(3000):
            now[0] += 0.01  # 30 s in all: a line every 5 s
            bar.advance()
        bar.start(None, "read shop", unit="customers")
        bar.advance(250)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "plan main: 500/3,000 records"
    assert len([line for line in lines if line.startswith("plan main: ")]) == 6  # 5 + the end
    assert "plan main: 3,000/3,000 records, done in 30 s" in lines
    assert not any(line.startswith("read shop") for line in lines)  # too short to be logged
    assert stream.getvalue() == ""  # the log goes through logging, never to the stream


def test_on_a_terminal_a_bar_is_drawn_on_stderr_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="custsync.progress")
    terminal = _Terminal()
    with Progress(10, "erp load", stream=terminal, unit="rows") as bar:
        bar.advance(10)
    assert caplog.records == []
    assert "erp load" in terminal.getvalue()


def test_disabled_progress_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="custsync.progress")
    terminal = _Terminal()
    with Progress(10, "sync main", enabled=False, stream=terminal) as bar:
        bar.advance(10)
    assert terminal.getvalue() == "" and caplog.records == []
