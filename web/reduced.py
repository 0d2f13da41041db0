"""Photos decoded at reduced size for display (thumbnails, previews).

A JPEG can be decoded at 1/2, 1/4 or 1/8 of its size directly (Pillow's `draft`, the DCT
scaling of libjpeg): a 42 MP photo shown at 256 pixels then holds about 1/64 of its pixels in
memory, and decodes that much faster. Other formats decode in full. Everything else (the pixel
limit, EXIF orientation, RGB conversion, the wording of errors) is the project's image loader's.
"""

import warnings
from pathlib import Path

from PIL import Image, ImageOps


def load_reduced(path: Path, max_pixels: int | None, side: int) -> Image.Image:
    """The image at `path` as RGB, at least `side` pixels on its short side where the file is
    larger (JPEG), else at full size; the caller shrinks it further to what it shows."""
    from turkish_clip.image_loading import load_image, to_rgb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except (OSError, ValueError, Image.DecompressionBombError):
        return load_image(path, max_pixels=max_pixels)  # raises with the loader's message
    width, height = image.size
    over_limit = max_pixels is not None and width * height > max_pixels
    if image.format != "JPEG" or over_limit or min(width, height) < 1:
        image.close()
        return load_image(path, max_pixels=max_pixels)
    try:
        # draft keeps both sides at least as large as asked: the short side stays >= `side`.
        image.draft("RGB", (side, side))
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    except (OSError, SyntaxError, ValueError):
        image.close()
        return load_image(path, max_pixels=max_pixels)  # the loader words the damage
    return to_rgb(image)
