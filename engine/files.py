"""Files that hold full contact data (saved plans, ERP exports, the sandbox's store, the
console's plans, data requests): written atomically (a reader never sees half a file; a failed
write leaves the old one) and readable by their owner only (0600, whatever the umask)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["PRIVATE_MODE", "private_file", "write_private"]

PRIVATE_MODE = 0o600


@contextmanager
def private_file(path: str | Path, *, newline: str | None = None) -> Iterator[IO[str]]:
    """A text handle on a new file beside ``path`` (mode 0600), renamed onto ``path`` when the
    block ends without an error; removed otherwise. A missing folder is created."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)  # 0600 already
    try:
        os.fchmod(fd, PRIVATE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`private_file`."""
    with private_file(path) as handle:
        handle.write(text)
