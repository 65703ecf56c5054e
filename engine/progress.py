"""Progress of long phases (reading, planning, applying, loading), on stderr only.

One mechanism for every command: a rich progress bar when stderr is a terminal, otherwise a
log line (logger ``custsync.progress``) every few seconds and one at the end of a phase that
took that long. Never anything on stdout, which may be the plan or an export. A phase may not
know its total (pages of a store): it then counts without a bar's end.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

__all__ = ["LOG_EVERY_SECONDS", "Progress"]

log = logging.getLogger("custsync.progress")

#: seconds between two log lines when stderr is not a terminal
LOG_EVERY_SECONDS = 5.0


class Progress:
    """A rich progress bar on a terminal, a log line every few seconds otherwise.

    ``Progress(total, label)`` starts a first phase; :meth:`start` begins another one (the
    bar is reused). ``enabled=False`` shows nothing at all; ``total=None`` is a phase of
    unknown length (``unit`` names what is counted: records, rows, objects).
    """

    def __init__(
        self,
        total: int | None = None,
        label: str = "",
        *,
        enabled: bool = True,
        unit: str = "records",
        stream: Any = None,
    ) -> None:
        self.enabled = enabled
        self.total = total
        self.label = label
        self.unit = unit
        self.done = 0
        #: a detail shown after the count (``12 pages``, a bulk job's status)
        self.note = ""
        self._stream = stream if stream is not None else sys.stderr
        self._started = time.monotonic()
        self._last = self._started
        self._logged = False
        self._bar: Any = None
        self._task: Any = None
        if label:
            self.start(total, label, unit=unit)

    def _terminal(self) -> bool:
        isatty = getattr(self._stream, "isatty", None)
        return bool(callable(isatty) and isatty())

    def start(self, total: int | None, label: str, *, unit: str | None = None) -> None:
        """Begin a phase (ends the one before)."""
        self._finish_phase()
        self.total, self.label, self.done, self.note = total, label, 0, ""
        if unit is not None:
            self.unit = unit
        self._started = self._last = time.monotonic()
        self._logged = False
        if not self.enabled or not self._terminal() or total == 0:
            return
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self._stream),
                transient=True,
            )
            self._bar.start()
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(label, total=total)

    def set_total(self, total: int | None) -> None:
        """The phase's total, once it is known (a bulk job's object count)."""
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def update(self, done: int, *, note: str | None = None) -> None:
        """Set the phase's count (a reader tells where it is), and its ``note``."""
        if note is not None and note != self.note:
            self.note = note
            if self._bar is not None and self._task is not None:
                self._bar.update(self._task, description=self._description())
        self.advance(done - self.done)

    def _description(self) -> str:
        return f"{self.label} ({self.note})" if self.note else self.label

    def advance(self, count: int = 1) -> None:
        self.done += count
        if not self.enabled:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done)
        elif time.monotonic() - self._last >= LOG_EVERY_SECONDS:
            self._last = time.monotonic()
            self._logged = True
            log.info("%s: %s", self.label, self._count())

    def _count(self) -> str:
        count = f"{self.done:,}" if self.total is None else f"{self.done:,}/{self.total:,}"
        return f"{count} {self.unit}, {self.note}" if self.note else f"{count} {self.unit}"

    def _finish_phase(self) -> None:
        if self._logged and self.enabled:  # a phase long enough to be logged: say it ended
            elapsed = time.monotonic() - self._started
            log.info("%s: %s, done in %.0f s", self.label, self._count(), elapsed)
        self._logged = False

    def close(self) -> None:
        self._finish_phase()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
