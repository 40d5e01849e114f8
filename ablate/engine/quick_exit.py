"""Skip the interpreter's teardown once a command's work is done.

With torch, pandas and matplotlib imported, Python's teardown (clearing every
module, freeing every object) takes one to two seconds after the last line is
printed, and a fork server that still holds the terminal's pipes makes whoever
reads them wait as long again. ``install`` registers an exit handler early, so
that it runs after every handler registered later (multiprocessing's, temporary
files'); it then ends the process at once with the status ``set_status`` gave.
A process that never sets a status (an uncaught error) tears down as usual.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

_status: list[int] = []
_installed = False


def _exit_now() -> None:
    if not _status:
        return
    if "logging" in sys.modules:  # its own exit handler may have been registered before this one
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to deliver
            stream.flush()
    os._exit(_status[0])


def install() -> None:
    """Register the handler (once); exit handlers run in reverse order of registration."""
    global _installed
    if not _installed:
        atexit.register(_exit_now)
        _installed = True


def set_status(status: int) -> None:
    """The status the process ends with, after its exit handlers."""
    _status[:] = [status]
