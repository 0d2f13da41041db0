"""Uploads the page has used, kept on disk only while they may be used again.

Gradio keeps every upload in its upload folder (GRADIO_TEMP_DIR, /tmp/gradio by default) until
its age sweep (web/page.py's CACHE_SWEEP) or the server's stop. The page opens an upload once or
twice (Classify previews it, then classifies it), so only the uploads used last are kept: older
ones are deleted as new ones are used.
"""

import threading
import time
from collections import OrderedDict
from pathlib import Path

# Uploads kept after use: enough for several tabs that each upload, preview, then classify.
MAX_KEPT_UPLOADS = 8


class UsedUploads:
    """The most recently used uploads; the ones used before them are deleted."""

    def __init__(self, folder: Path, keep: int = MAX_KEPT_UPLOADS):
        self.given_folder = Path(folder)
        self.folder = self.given_folder.resolve()
        self.keep = keep
        self._used: OrderedDict[Path, None] = OrderedDict()
        self._lock = threading.Lock()
        self._since_ns = time.time_ns()

    def protect_existing(self) -> set[str]:
        """Files already in the folder (the examples Gradio copied there) are never deleted;
        gives their paths as Gradio names them (under the folder as given, unresolved)."""
        self._since_ns = time.time_ns()
        return {str(path) for path in self.given_folder.rglob("*") if path.is_file()}

    def used(self, path: str | None) -> None:
        """Records that a callback opened `path`; deletes the uploads used before the last few.
        Paths outside the upload folder are ignored: they were refused, never opened."""
        if not path:
            return
        real = Path(path).resolve()
        if not real.is_relative_to(self.folder) or real == self.folder:
            return
        with self._lock:
            self._used[real] = None
            self._used.move_to_end(real)
            stale = []
            while len(self._used) > self.keep:
                stale.append(self._used.popitem(last=False)[0])
        for old in stale:
            self._delete(old)

    def _delete(self, path: Path) -> None:
        try:
            if path.stat().st_mtime_ns < self._since_ns:
                return  # there before the page started: an example, not an upload
            path.unlink()
            # Gradio keeps each upload in a folder of its own, named by its content's hash.
            if path.parent != self.folder:
                path.parent.rmdir()
        except OSError:  # already gone, or the folder holds other files: left as it is
            pass
