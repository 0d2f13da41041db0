"""Thumbnails of indexed images, and nothing else: an opaque id per indexed file is the only way in.

An id maps to a path the index's current generation lists (so photos added by an update have
thumbnails at once); that path is resolved (symlinks included) and served only if it is still a
file inside the index's root. Any other request gets an empty 403 or 404.
"""

import io
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path

from search.errors import SearchError
from search.photo_index import PhotoIndex, photo_id

THUMBNAIL_SIZE = 256
# The short side a JPEG is decoded at (at least; by DCT scaling), not its full size.
DECODED_SIZE = 2 * THUMBNAIL_SIZE
CACHE_ENTRIES = 512
ROUTE = "/thumbnail"
# Photos decoded at once, whatever the number of requests: a decode holds its pixels for a moment
# (a 42 MP PNG in full is 126 MB; a JPEG is decoded reduced), so requests beyond this wait.
MAX_DECODES = 2


class ThumbnailRefused(Exception):
    """Why no thumbnail is served: an HTTP status with no body."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def thumbnail_id(relative_path: str) -> str:
    """The photo's id (search/photo_index.py): stable across restarts, reveals nothing."""
    return photo_id(relative_path)


class ThumbnailFiles:
    """The allow-list: ids of the files the index lists now, under its root."""

    def __init__(self, index: PhotoIndex, max_pixels: int | None):
        self.index = index
        self.max_pixels = max_pixels
        self._cache: OrderedDict = OrderedDict()
        self._cache_lock = threading.Lock()
        # One decode per file at a time: requests for a photo being rendered wait for that render.
        self._rendering: dict[tuple, Future] = {}
        self._decode_slots = threading.BoundedSemaphore(MAX_DECODES)

    def url(self, relative_path: str) -> str:
        return f"{ROUTE}/{thumbnail_id(relative_path)}"

    def resolve(self, token: str) -> Path:
        """The real file behind `token`; ThumbnailRefused(404 or 403) if there is none to serve."""
        try:
            generation = self.index.current()
        except SearchError:  # the index went away or belongs to another model now
            raise ThumbnailRefused(404) from None
        row = generation.rows.get(token)
        if row is None:
            raise ThumbnailRefused(404)
        root = generation.root.resolve()
        try:
            real = (root / generation.index.files[row]["path"]).resolve(strict=True)
        except (OSError, RuntimeError):  # deleted since indexing, or a symlink loop
            raise ThumbnailRefused(404) from None
        if not real.is_relative_to(root):
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
        # A JPEG decoded reduced (DCT scaling), to twice the thumbnail's size: a 42 MP photo then
        # holds a fraction of its pixels in memory, and the final resampling stays sharp.
        image = load_image(path, max_pixels=max_pixels, draft_min_side=DECODED_SIZE)
    except (OSError, ValueError):  # changed into something unreadable since indexing
        raise ThumbnailRefused(404) from None
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def add_thumbnail_route(app, files: ThumbnailFiles) -> None:
    """GET /thumbnail/<id> on a FastAPI app; refusals carry no body at all.

    Also answers Gradio's file route for this page's own thumbnail URLs: gradio_client downloads
    every file of a result through `/gradio_api/file=<path or URL>`, and Gradio fetches a URL
    there only from a public address, so on 127.0.0.1 or a private network the page's own
    thumbnails were refused (403). Any other URL goes on to Gradio's own handling.
    """
    from fastapi import Request, Response
    from gradio.route_utils import API_PREFIX, secure_url_stream_response
    from starlette.concurrency import run_in_threadpool

    def answer(token: str) -> Response:
        try:
            data = files.jpeg(token)
        except ThumbnailRefused as refused:
            return Response(status_code=refused.status)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})

    # `:path` sends every request under the route here, "/" and ".." included, for an empty answer.
    @app.get(ROUTE + "/{token:path}", include_in_schema=False)
    def thumbnail(token: str) -> Response:
        return answer(token)

    # Registered before the page is mounted, so this route is tried before Gradio's.
    own_file_route = API_PREFIX + "/file=http{rest:path}"

    @app.api_route(own_file_route, methods=["GET", "HEAD"], include_in_schema=False)
    async def own_thumbnail_url(rest: str, request: Request) -> Response:
        url = "http" + rest
        token = own_thumbnail_token(url, request.headers)
        if token is None:
            return await secure_url_stream_response(url, request)
        return await run_in_threadpool(answer, token)


def own_thumbnail_token(url: str, headers) -> str | None:
    """The id in `url` if it is a thumbnail URL of the page that `headers` reached, else None."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    hosts = {headers.get("host", "")}
    forwarded = headers.get("x-forwarded-host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip())
    if parts.scheme not in ("http", "https") or parts.netloc not in hosts:
        return None
    if not parts.path.startswith(ROUTE + "/") or parts.query or parts.fragment:
        return None
    return parts.path.removeprefix(ROUTE + "/")
