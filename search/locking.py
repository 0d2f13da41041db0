"""One writer at a time per index folder: an exclusive `fcntl.flock` on a lock file inside it.

The lock belongs to the open file, so the kernel releases it when the process ends, however it
ends: a killed run never leaves a stale lock behind.
"""

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from search.errors import IndexLockedError

LOCK_NAME = ".lock"
_POLL_SECONDS = 0.05


# The lock's error, under the name the rest of the code has always used.
IndexBusyError = IndexLockedError


@contextmanager
def index_lock(
    folder: Path, wait: float, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Holds the folder's write lock, waiting up to `wait` seconds for another writer to finish.

    `on_wait` is told once, when the lock is held by someone else, so a user sees why nothing
    happens.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(handle, folder, wait, on_wait)
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)  # who holds it, for the busy message
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


def _acquire(handle: int, folder: Path, wait: float, on_wait: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _holder(handle)
        if time.monotonic() >= deadline:
            raise IndexBusyError(
                f"index {folder} is being updated by another process{holder}; "
                f"gave up after waiting {wait:g} s"
            )
        if not told and on_wait is not None:
            on_wait(f"waiting for another update of index {folder}{holder} to finish")
            told = True
        time.sleep(_POLL_SECONDS)


def _holder(handle: int) -> str:
    text = os.pread(handle, 32, 0).decode("ascii", "replace").strip()
    return f" (process {text})" if text.isdigit() else ""
