"""Thumbnails of indexed images, and nothing else: an opaque id per indexed file is the only way in.

An id maps to a path the index lists; that path is resolved (symlinks included) and served only
if it is still a file inside the index's root. Any other request gets an empty 403 or 404.
"""

import hashlib
import io
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path

THUMBNAIL_SIZE = 256
CACHE_ENTRIES = 512
ROUTE = "/thumbnail"
# Photos decoded at once, whatever the number of requests: each decode of a camera photo holds
# its full pixels for a moment (a 42 MP photo is 126 MB), so requests beyond this wait.
MAX_DECODES = 2


class ThumbnailRefused(Exception):
    """Why no thumbnail is served: an HTTP status with no body."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def thumbnail_id(relative_path: str) -> str:
    """Stable across restarts and reveals nothing of the path."""
    return hashlib.sha256(relative_path.encode("utf-8")).hexdigest()[:24]


class ThumbnailFiles:
    """The allow-list: ids of the files an index lists, under its root."""

    def __init__(self, root: Path, relative_paths: list[str], max_pixels: int | None):
        self.root = Path(root).resolve()
        self.max_pixels = max_pixels
        self._paths = {thumbnail_id(path): path for path in relative_paths}
        self._cache: OrderedDict = OrderedDict()
        self._cache_lock = threading.Lock()
        # One decode per file at a time: requests for a photo being rendered wait for that render.
        self._rendering: dict[tuple, Future] = {}
        self._decode_slots = threading.BoundedSemaphore(MAX_DECODES)

    def url(self, relative_path: str) -> str:
        return f"{ROUTE}/{thumbnail_id(relative_path)}"

    def resolve(self, token: str) -> Path:
        """The real file behind `token`; ThumbnailRefused(404 or 403) if there is none to serve."""
        relative = self._paths.get(token)
        if relative is None:
            raise ThumbnailRefused(404)
        try:
            real = (self.root / relative).resolve(strict=True)
        except (OSError, RuntimeError):  # deleted since indexing, or a symlink loop
            raise ThumbnailRefused(404) from None
        if not real.is_relative_to(self.root):
            raise ThumbnailRefused(403)  # a symlink now points out of the indexed folder
        if not real.is_file():
            raise ThumbnailRefused(404)
        return real

    def jpeg(self, token: str) -> bytes:
        """A JPEG of at most THUMBNAIL_SIZE pixels a side, rendered from the checked real file."""
        real = self.resolve(token)
        stat = real.stat()
        key = (token, stat.st_size, stat.st_mtime_ns)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            pending = self._rendering.get(key)
            if pending is None:
                self._rendering[key] = rendering = Future()
        if pending is not None:
            return pending.result()  # another request is rendering this very file
        try:
            with self._decode_slots:
                data = _render(real, self.max_pixels)
        except BaseException as error:
            rendering.set_exception(error)
            raise
        finally:
            with self._cache_lock:
                self._rendering.pop(key, None)
        with self._cache_lock:
            self._cache[key] = data
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        rendering.set_result(data)
        return data


def _render(path: Path, max_pixels: int | None) -> bytes:
    from turkish_clip.image_loading import load_image

    try:
        image = load_image(path, max_pixels=max_pixels)
    except (OSError, ValueError):  # changed into something unreadable since indexing
        raise ThumbnailRefused(404) from None
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def add_thumbnail_route(app, files: ThumbnailFiles) -> None:
    """GET /thumbnail/<id> on a FastAPI app; refusals carry no body at all."""
    from fastapi import Response

    # `:path` sends every request under the route here, "/" and ".." included, for an empty answer.
    @app.get(ROUTE + "/{token:path}")
    def thumbnail(token: str) -> Response:
        try:
            data = files.jpeg(token)
        except ThumbnailRefused as refused:
            return Response(status_code=refused.status)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})
