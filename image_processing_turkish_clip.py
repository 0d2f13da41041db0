"""Image preprocessing identical to the `clip` package's, for the image tower of Turkish CLIP.

transformers' stock `CLIPImageProcessor` floors the centre-crop offset where torchvision (and so
`clip.load(...)[1]`) rounds it, which shifts the crop by one pixel on many image sizes. This
processor resizes and crops with PIL exactly as torchvision does, so embeddings match the original.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .image_loading import DEFAULT_MAX_PIXELS, describe, load_image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Resizing the short side to 224 turns a 1x10000 strip into a 224x2,240,000 one; beyond this many
# resized pixels only the part that survives the crop is resized.
MAX_RESIZED_PIXELS = 64 * 1024 * 1024


class TurkishCLIPImageProcessor(BaseImageProcessor):
    r"""
    Resize the short side to `size` with PIL bicubic, centre-crop `crop_size` with the offset
    rounded as torchvision rounds it, scale to 0..1 and normalise with CLIP's mean and std.

    Args:
        size (`dict` or `int`, *optional*, defaults to `{"shortest_edge": 224}`):
            Target length of the image's short side.
        crop_size (`dict` or `int`, *optional*, defaults to `{"height": 224, "width": 224}`):
            Size of the centre crop.
        image_mean, image_std (`list[float]`, *optional*):
            Per-channel normalisation; defaults to OpenAI CLIP's values.
        max_image_pixels (`int`, *optional*, defaults to 89,478,485):
            Files whose header declares more pixels are refused before decoding (decompression
            bombs). `None` disables the check.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        size: dict | int | None = None,
        crop_size: dict | int | None = None,
        image_mean: Iterable[float] = OPENAI_CLIP_MEAN,
        image_std: Iterable[float] = OPENAI_CLIP_STD,
        max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.size = {"shortest_edge": _side(size, "shortest_edge", 224)}
        crop = _side(crop_size, "height", 224)
        self.crop_size = {"height": crop, "width": _side(crop_size, "width", crop)}
        self.image_mean = [float(x) for x in image_mean]
        self.image_std = [float(x) for x in image_std]
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ValueError("image_mean and image_std need three values each, std positive")
        self.max_image_pixels = max_image_pixels
        self._lookup = _normalisation_table(self.image_mean, self.image_std)

    def preprocess(
        self, images, return_tensors: str | None = "pt", first_index: int = 0, **kwargs
    ) -> BatchFeature:
        """Pixel values `(batch, 3, height, width)` for one image or a list of them.

        `first_index` only numbers the images in error messages (for callers that batch a list).
        """
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("got an empty list of images")
            arrays = self._process_many(images, first_index)
        else:
            arrays = [self._process_one(images, first_index)]
        pixel_values = np.stack(arrays)
        if return_tensors == "pt":
            pixel_values = torch.from_numpy(pixel_values)
        elif return_tensors not in (None, "np"):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        return BatchFeature(data={"pixel_values": pixel_values})

    def _process_many(self, images: list | tuple, first_index: int) -> list[np.ndarray]:
        """Pillow releases the GIL while it decodes and resizes, so threads overlap that work."""
        workers = min(len(images), torch.get_num_threads())
        if workers < 2:
            return [self._process_one(image, first_index + i) for i, image in enumerate(images)]
        indices = range(first_index, first_index + len(images))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._process_one, images, indices))

    def _process_one(self, image: object, index: int) -> np.ndarray:
        try:
            rgb = load_image(image, max_pixels=self.max_image_pixels)
        except (ValueError, TypeError, OSError) as error:
            raise type(error)(f"image {index} ({describe(image)}): {error}") from None
        cropped = self.resize_and_crop(rgb)
        return self._lookup[np.arange(3)[:, None, None], np.asarray(cropped).transpose(2, 0, 1)]

    def resize_and_crop(self, image: Image.Image) -> Image.Image:
        """torchvision's `Resize(short side)` then `CenterCrop`, on a PIL image."""
        width, height = image.size
        short = self.size["shortest_edge"]
        # torchvision truncates the long side, and keeps the short side exact.
        if width <= height:
            new_width, new_height = short, int(short * height / width)
        else:
            new_width, new_height = int(short * width / height), short
        crop_h, crop_w = self.crop_size["height"], self.crop_size["width"]
        # torchvision rounds the offset half to even, as Python's round does.
        top = int(round((new_height - crop_h) / 2.0))
        left = int(round((new_width - crop_w) / 2.0))
        if (
            new_width * new_height > MAX_RESIZED_PIXELS
            and crop_w <= new_width
            and crop_h <= new_height
        ):
            scale_x, scale_y = width / new_width, height / new_height
            box = (
                left * scale_x,
                top * scale_y,
                (left + crop_w) * scale_x,
                (top + crop_h) * scale_y,
            )
            return image.resize((crop_w, crop_h), Image.Resampling.BICUBIC, box=box)
        resized = image.resize((new_width, new_height), Image.Resampling.BICUBIC)
        if crop_w > new_width or crop_h > new_height:
            resized = _pad_to(resized, max(crop_w, new_width), max(crop_h, new_height))
            top = int(round((resized.size[1] - crop_h) / 2.0))
            left = int(round((resized.size[0] - crop_w) / 2.0))
        return resized.crop((left, top, left + crop_w, top + crop_h))

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_lookup", None)
        return output


def _side(value: dict | int | None, key: str, default: int) -> int:
    if value is None:
        return default
    side = value.get(key, default) if isinstance(value, dict) else value
    if not isinstance(side, int) or side < 1:
        raise ValueError(f"image sizes must be positive integers, got {value!r}")
    return side


def _normalisation_table(mean: list[float], std: list[float]) -> np.ndarray:
    """(3, 256) table of `(v / 255 - mean) / std` for every 8-bit value, in float32.

    The same float32 operations as torchvision's ToTensor + Normalize, done once per value
    instead of once per pixel.
    """
    values = np.arange(256, dtype=np.float32) / np.float32(255)
    mean32 = np.asarray(mean, dtype=np.float32)[:, None]
    std32 = np.asarray(std, dtype=np.float32)[:, None]
    return ((values[None, :] - mean32) / std32).astype(np.float32)


def _pad_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """torchvision's CenterCrop pads with black when the crop is larger than the image."""
    canvas = Image.new("RGB", (width, height))
    canvas.paste(image, ((width - image.size[0]) // 2, (height - image.size[1]) // 2))
    return canvas
