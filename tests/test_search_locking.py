"""The index folder's write lock, across processes."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.locking import IndexBusyError, index_lock

HOLD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from search.locking import index_lock
with index_lock(Path({folder!r}), wait=0):
    print("held", flush=True)
    time.sleep(float(sys.argv[1]))
    (Path({folder!r}) / "released").write_text("")  # the last thing done under the lock
"""


def hold_in_another_process(folder: Path, seconds: float) -> subprocess.Popen:
    root = str(Path(__file__).resolve().parents[1])
    code = HOLD.format(root=root, folder=str(folder))
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_another_process_holding_the_lock_is_named_and_waited_for(tmp_path: Path) -> None:
    holder = hold_in_another_process(tmp_path, 1.0)
    try:
        with (
            pytest.raises(IndexBusyError, match=f"process {holder.pid}"),
            index_lock(tmp_path, wait=0.1),
        ):
            pass
        notes = []
        start = time.monotonic()
        with index_lock(tmp_path, wait=30, on_wait=notes.append):
            waited = time.monotonic() - start
            assert (tmp_path / "released").exists()  # acquired only once the holder let go
        assert holder.wait(timeout=30) == 0
        assert len(notes) == 1 and "waiting for another update" in notes[0]
        assert waited > 0.1
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    holder = hold_in_another_process(tmp_path, 60)
    holder.kill()
    holder.wait()
    with index_lock(tmp_path, wait=0):
        assert (tmp_path / ".lock").exists()
