"""Exit codes of the ``custsync`` command, fixed in one place (documented in the README)."""

from __future__ import annotations

__all__ = [
    "CHANGES_PRESENT",
    "ERROR",
    "INTERRUPTED",
    "LOCKED",
    "OK",
    "PARTIAL",
    "USAGE",
]

OK = 0  #: success; for ``plan --detailed-exitcode``: success and no changes
ERROR = 1  #: errors (invalid rules or config, failed run, failed rule tests)
CHANGES_PRESENT = 2  #: only with ``plan --detailed-exitcode``: success, changes present
PARTIAL = 3  #: ``sync`` finished but some records failed (the cursor did not advance)
LOCKED = 4  #: another run of the same shop holds the lease
USAGE = 64  #: command-line usage error (EX_USAGE)
INTERRUPTED = 130  #: stopped by SIGINT/SIGTERM
