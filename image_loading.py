"""Turns whatever a user passes as an image into an RGB PIL image, or says clearly what is wrong.

Accepted: PIL images, paths, raw bytes, http(s) URLs, and HWC/CHW uint8 or float arrays/tensors.
"""

import io
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's own default: about a quarter of a gigapixel, 268 MB as 8-bit RGB.
DEFAULT_MAX_PIXELS = 89_478_485
URL_TIMEOUT_SECONDS = 10.0
URL_MAX_BYTES = 50 * 1024 * 1024

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
    return f"<{type(source).__name__}>"


def load_image(
    source: object,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    timeout: float = URL_TIMEOUT_SECONDS,
) -> Image.Image:
    """Opens and validates one image and returns it as RGB.

    Files, bytes and URLs are checked against `max_pixels` from their header, before any pixel
    is decoded, and get their EXIF orientation applied.
    """
    if isinstance(source, Image.Image):
        _check_size(source, source, max_pixels)
        return to_rgb(source)
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return to_rgb(_array_to_image(source))
    if isinstance(source, Path) or isinstance(source, str) and not _is_url(source):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {str(source)!r}")
        return _decode(path, source, max_pixels)
    if isinstance(source, str):
        return _decode(io.BytesIO(_fetch(source, timeout)), source, max_pixels)
    if isinstance(source, _BYTES_TYPES):
        return _decode(io.BytesIO(source), source, max_pixels)
    raise TypeError(
        f"cannot read an image from {describe(source)}: expected a PIL image, a path, bytes, "
        "a URL, or a numpy array / torch tensor"
    )


def _decode(file: Path | io.BytesIO, source: object, max_pixels: int | None) -> Image.Image:
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
        image.load()
        # In place: the default returns a full copy even of the many photos with no rotation.
        ImageOps.exif_transpose(image, in_place=True)
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageLoadError(f"{name} is truncated or corrupt: {error}") from None
    return to_rgb(image)


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
    pixels = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else array
    if pixels.ndim == 3 and pixels.shape[0] in (1, 3, 4) and pixels.shape[-1] not in (1, 3, 4):
        pixels = pixels.transpose(1, 2, 0)  # CHW -> HWC
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3) or pixels.ndim == 3 and pixels.shape[-1] not in (3, 4):
        raise ImageLoadError(f"cannot read an image from an array of shape {tuple(pixels.shape)}")
    if pixels.dtype != np.uint8:
        if np.issubdtype(pixels.dtype, np.floating) and pixels.min() >= 0 and pixels.max() <= 1:
            pixels = np.rint(pixels * 255.0)
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(pixels))


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _fetch(url: str, timeout: float) -> bytes:
    """Downloads with a timeout and a size cap, so a bad link can neither hang nor flood memory."""
    request = urllib.request.Request(url, headers={"User-Agent": "turkish-clip"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(URL_MAX_BYTES + 1)
    except OSError as error:
        raise ImageLoadError(f"cannot download image {url!r}: {error}") from None
    if len(data) > URL_MAX_BYTES:
        raise ImageLoadError(f"image {url!r} is larger than {URL_MAX_BYTES:,} bytes")
    return data
