"""Turns whatever a user passes as an image into an RGB PIL image, or says clearly what is wrong.

Accepted: PIL images, paths, raw bytes, http(s) URLs, and HWC/CHW arrays/tensors (uint8,
16-bit integers, or floats in 0..1).
"""

import contextlib
import functools
import http.client
import io
import math
import socket
import threading
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

# Pillow's own default: about a quarter of a gigapixel, 268 MB as 8-bit RGB.
DEFAULT_MAX_PIXELS = 89_478_485
# The deadline of a whole download (connecting, headers and body together), not of each read.
URL_TIMEOUT_SECONDS = 10.0
URL_MAX_BYTES = 50 * 1024 * 1024
# libjpeg decodes at 1/1, 1/2, 1/4 or 1/8 scale in the DCT; Pillow's `draft` picks among them.
DRAFT_SCALES = (8, 4, 2)
# Float images are 0..1. Resampling overshoots sharp edges (torch's bicubic by up to 0.19,
# Lanczos by about 0.15), so values this far outside are clipped; beyond it they are refused.
FLOAT_TOLERANCE = 0.25

_TRANSPARENT_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_BYTES_TYPES = (bytes, bytearray, memoryview)
# What is one image rather than a collection of them (bytes-like objects are iterable too).
SINGLE_IMAGE_TYPES = (str, Path, *_BYTES_TYPES, Image.Image, np.ndarray, torch.Tensor)


class ImageLoadError(ValueError):
    """An input could not be turned into an image; the message names the input and the reason."""


def describe(source: object) -> str:
    """A short name for an input, for error messages."""
    if isinstance(source, (str, Path)):
        return repr(str(source))
    if isinstance(source, _BYTES_TYPES):
        return f"<{memoryview(source).nbytes} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.mode} {source.size[0]}x{source.size[1]}>"
    if isinstance(source, (np.ndarray, torch.Tensor)):
        dtype = str(source.dtype).removeprefix("torch.")
        return f"<{type(source).__name__} {dtype} {'x'.join(map(str, source.shape))}>"
    return f"<{type(source).__name__}>"


def load_image(
    source: object,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    timeout: float = URL_TIMEOUT_SECONDS,
    draft_min_side: int | None = None,
) -> Image.Image:
    """Opens and validates one image and returns it as RGB.

    Files, bytes and URLs are checked against `max_pixels` from their header, before any pixel
    is decoded, and get their EXIF orientation applied.

    With `draft_min_side`, a JPEG file, bytes or URL whose shorter side is at least twice that
    is decoded at the smallest DCT scale (1/2, 1/4 or 1/8) that keeps its shorter side at least
    `draft_min_side` pixels (Pillow's `Image.draft`): a fraction of the cost of a full decode, for
    callers that resize it down anyway. Other formats and smaller JPEGs are decoded in full.
    """
    if draft_min_side is not None and (
        not isinstance(draft_min_side, int)
        or isinstance(draft_min_side, bool)
        or draft_min_side < 1
    ):
        raise ValueError(
            f"draft_min_side must be a positive integer or None, got {draft_min_side!r}"
        )
    if isinstance(source, Image.Image):
        _check_size(source, source, max_pixels)
        return to_rgb(source)
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return to_rgb(_array_to_image(source))
    if isinstance(source, Path) or isinstance(source, str) and not _is_url(source):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {str(source)!r}")
        return _decode(path, source, max_pixels, draft_min_side)
    if isinstance(source, str):
        return _decode(io.BytesIO(_fetch(source, timeout)), source, max_pixels, draft_min_side)
    if isinstance(source, _BYTES_TYPES):
        return _decode(io.BytesIO(source), source, max_pixels, draft_min_side)
    raise TypeError(
        f"cannot read an image from {describe(source)}: expected a PIL image, a path, bytes, "
        "a URL, or a numpy array / torch tensor"
    )


def _decode(
    file: Path | io.BytesIO, source: object, max_pixels: int | None, draft_min_side: int | None
) -> Image.Image:
    name = describe(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file)
    except Image.DecompressionBombError as error:
        raise ImageLoadError(f"{name} is too large to decode safely: {error}") from None
    except UnidentifiedImageError:
        raise ImageLoadError(f"{name} is not an image file Pillow can read") from None
    except OSError as error:
        raise ImageLoadError(f"{name} is truncated or corrupt: {error}") from None
    _check_size(image, source, max_pixels)
    try:
        image.seek(0)  # animated images: the first frame
        if draft_min_side is not None:
            _draft(image, draft_min_side)
        image.load()
        # In place: the default returns a full copy even of the many photos with no rotation.
        ImageOps.exif_transpose(image, in_place=True)
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(f"{name} is truncated or corrupt: {error}") from None
    return to_rgb(image)


def _draft(image: Image.Image, min_side: int) -> None:
    """Asks libjpeg for a reduced decode where one keeps the shorter side at least `min_side`.

    Only JPEGs (MPO, phones' multi-picture JPEGs, included) and only where at least 1/2 scale
    fits: otherwise `draft` is not called at all, so those pixels are exactly a full decode's.
    The shorter side is the same before and after EXIF rotation, so the bound holds either way.
    """
    if not isinstance(image, JpegImagePlugin.JpegImageFile):
        return
    if min(image.size) // min_side < min(DRAFT_SCALES):
        return
    # Pillow picks the largest scale s in 8, 4, 2 with s <= min(width // w, height // h).
    image.draft(image.mode, (min_side, min_side))


def _check_size(image: Image.Image, source: object, max_pixels: int | None) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(f"{describe(source)} has no pixels ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageLoadError(
            f"{describe(source)} is {width}x{height} = {width * height:,} pixels, over the limit "
            f"of {max_pixels:,}; pass a larger max_image_pixels (processor) or max_pixels "
            "(load_image) if you trust this file"
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency composited onto white and high-bit-depth pixels scaled to 0..255."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        mode = "RGBA" if "transparency" in image.info else "RGB"
        image = image.convert(mode)
    elif mode in ("PA", "La"):  # Pillow converts these to RGBA only by way of another mode
        image = image.convert("RGBA" if mode == "PA" else "LA")
        mode = image.mode
    if mode in _TRANSPARENT_MODES:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(np.asarray(image), mode)).convert("RGB")
    return image.convert("RGB")


def _scale_to_uint8(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Maps 16/32-bit integer and float pixels onto 0..255 instead of clamping them to white."""
    pixels = pixels.astype(np.float64)
    if mode.startswith("I;16"):
        scaled = pixels / 65535.0
    elif mode == "F" and pixels.min() >= 0.0 and pixels.max() <= 1.0:
        scaled = pixels
    elif mode.startswith("I") and pixels.min() >= 0 and pixels.max() <= 65535:
        scaled = pixels / 65535.0  # 16-bit data that Pillow stores in 32-bit mode "I"
    else:
        low, high = float(np.nanmin(pixels)), float(np.nanmax(pixels))
        scaled = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    scaled = np.nan_to_num(scaled, nan=0.0)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def _array_to_image(array: np.ndarray | torch.Tensor) -> Image.Image:
    """HWC or CHW pixels as a PIL image, scaled by their type; out-of-range values are refused."""
    name = describe(array)
    if isinstance(array, torch.Tensor):
        tensor = array.detach().cpu()
        # numpy has no bfloat16; float32 holds every bfloat16 and float16 value exactly.
        pixels = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    else:
        pixels = array
    if pixels.ndim == 3 and pixels.shape[0] in (1, 3, 4) and pixels.shape[-1] not in (1, 3, 4):
        pixels = pixels.transpose(1, 2, 0)  # CHW -> HWC
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or pixels.ndim == 3 and pixels.shape[-1] not in (3, 4):
        raise ImageLoadError(f"cannot read an image from an array of shape {tuple(pixels.shape)}")
    if pixels.size == 0:
        raise ImageLoadError(f"{name} has no pixels")
    return Image.fromarray(np.ascontiguousarray(_to_uint8(pixels, name)))


def _to_uint8(pixels: np.ndarray, name: str) -> np.ndarray:
    """uint8 as it is; floats are 0..1; other integers are 8-bit if they fit in 0..255, else
    16-bit (0..65535, scaled as 16-bit image files are); uint16 is always 16-bit."""
    if pixels.dtype == np.uint8:
        return pixels
    if np.issubdtype(pixels.dtype, np.floating):
        return _float_to_uint8(pixels, name)
    if not np.issubdtype(pixels.dtype, np.integer):
        raise ImageLoadError(
            f"{name}: pixels of type {pixels.dtype} are not an image; pass uint8, 16-bit "
            "integers or floats in 0..1"
        )
    low, high = int(pixels.min()), int(pixels.max())
    if low < 0 or high > 65535:
        raise ImageLoadError(
            f"{name} holds values from {low} to {high}; integer images must be 0..255 (8-bit) "
            "or 0..65535 (16-bit)"
        )
    if pixels.dtype != np.uint16 and high <= 255:
        return pixels.astype(np.uint8)
    return np.rint(pixels.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)


def _float_to_uint8(pixels: np.ndarray, name: str) -> np.ndarray:
    if not np.isfinite(pixels).all():
        raise ImageLoadError(f"{name} holds NaN or infinite values")
    low, high = float(pixels.min()), float(pixels.max())
    if low < -FLOAT_TOLERANCE or high > 1.0 + FLOAT_TOLERANCE:
        raise ImageLoadError(
            f"{name} holds values from {low:.6g} to {high:.6g}; float images must be in 0..1 "
            f"(values within {FLOAT_TOLERANCE} of it are clipped): divide 0..255 data by 255"
        )
    return np.rint(np.clip(pixels.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _fetch(url: str, timeout: float) -> bytes:
    """Downloads within `timeout` seconds in all and at most URL_MAX_BYTES, so that a slow or
    endless server can neither hold the call nor flood memory.

    The download runs on a daemon thread, so even a hanging name lookup cannot hold the caller;
    once time is up its sockets are shut down, which wakes a read blocked on them.
    """
    number = isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
    if not (number and 0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    sockets = _Sockets()
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def download() -> None:
        try:
            outcome["data"] = _download(url, timeout, sockets)
        except BaseException as error:  # handed to the caller, which raises it
            outcome["error"] = error
        finally:
            finished.set()

    threading.Thread(target=download, name="image-download", daemon=True).start()
    done = finished.wait(timeout)
    sockets.shut_down()
    if not done:
        raise ImageLoadError(f"cannot download image {url!r}: not complete within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _download(url: str, timeout: float, sockets: "_Sockets") -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "turkish-clip"})
    try:
        with _opener(sockets).open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > URL_MAX_BYTES:
                raise ImageLoadError(f"image {url!r} is larger than {URL_MAX_BYTES:,} bytes")
            chunks, size = [], 0
            # read1 returns what has arrived, so the cap is checked as the data comes in.
            while chunk := response.read1(64 * 1024):
                size += len(chunk)
                if size > URL_MAX_BYTES:
                    raise ImageLoadError(f"image {url!r} is larger than {URL_MAX_BYTES:,} bytes")
                chunks.append(chunk)
            if response.length:  # bytes the server declared but never sent
                raise ImageLoadError(f"cannot download image {url!r}: the connection closed early")
    except (OSError, http.client.HTTPException, ValueError) as error:
        if isinstance(error, ImageLoadError):
            raise
        raise ImageLoadError(f"cannot download image {url!r}: {error}") from None
    return b"".join(chunks)


class _Sockets:
    """The sockets of one download, to shut down when its time is up (or once it is done)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._closed = False

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor: TLS takes over the original object, and shutting down either
        # ends the one connection they share.
        copy = sock.dup()
        with self._lock:
            if not self._closed:
                self._open.append(copy)
                return
        _shut(copy)

    def shut_down(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._open = self._open, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def _watched_connection(
    base: type, sockets: _Sockets, *args, **kwargs
) -> http.client.HTTPConnection:
    connection = base(*args, **kwargs)
    create = connection._create_connection

    def create_watched(*create_args, **create_kwargs) -> socket.socket:
        sock = create(*create_args, **create_kwargs)
        sockets.watch(sock)
        return sock

    connection._create_connection = create_watched
    return connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self._sockets = sockets

    def http_open(self, request):
        connection = functools.partial(
            _watched_connection, http.client.HTTPConnection, self._sockets
        )
        return self.do_open(connection, request)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self._sockets = sockets

    def https_open(self, request):
        connection = functools.partial(
            _watched_connection, http.client.HTTPSConnection, self._sockets
        )
        return self.do_open(connection, request, context=self._context)


def _opener(sockets: _Sockets) -> urllib.request.OpenerDirector:
    """http(s) only, redirects included; no ftp, file or data URLs, even by a redirect."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        _HTTPHandler(sockets),
        _HTTPSHandler(sockets),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener
