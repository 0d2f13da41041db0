"""Image preprocessing identical to the `clip` package's, for the image tower of Turkish CLIP.

transformers' stock `CLIPImageProcessor` floors the centre-crop offset where torchvision (and so
`clip.load(...)[1]`) rounds it, which shifts the crop by one pixel on many image sizes. This
processor resizes and crops with PIL exactly as torchvision does, so embeddings match the original.
Every other option of `CLIPImageProcessor` is honoured, at construction or per call.
"""

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature

from .image_loading import DEFAULT_MAX_PIXELS, describe, load_image

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_RESCALE_FACTOR = 1 / 255
# Resizing the short side to 224 turns a 1x10000 strip into a 224x2,240,000 one; beyond this many
# resized pixels only the part that survives the crop is resized.
MAX_RESIZED_PIXELS = 64 * 1024 * 1024
# CLIPImageProcessor's options, each honoured at construction and per call.
OPTIONS = (
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_convert_rgb",
)


@dataclass(frozen=True)
class Settings:
    """One call's preprocessing options, validated."""

    do_resize: bool
    size: dict
    resample: Image.Resampling
    do_center_crop: bool
    crop_size: dict
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    image_mean: tuple
    image_std: tuple


class TurkishCLIPImageProcessor(BaseImageProcessor):
    r"""
    Resize the short side to `size` with PIL bicubic, centre-crop `crop_size` with the offset
    rounded as torchvision rounds it, scale to 0..1 and normalise with CLIP's mean and std.

    Takes the options of `CLIPImageProcessor`, at construction or per call, with the same meaning:
    `do_resize`, `size` (`{"shortest_edge": n}`, `{"height": h, "width": w}` or an int),
    `resample`, `do_center_crop`, `crop_size`, `do_rescale`, `rescale_factor`, `do_normalize`,
    `image_mean`, `image_std`. `do_convert_rgb=False` is refused: every image becomes RGB (alpha
    composited onto white), as the image tower needs.

    Args:
        max_image_pixels (`int`, *optional*, defaults to 89,478,485):
            Files whose header declares more pixels are refused before decoding (decompression
            bombs). `None` disables the check.

    Preprocessing is exactly CLIP's by default. `reduced_decode=True` (per call) decodes large JPEG
    files at a reduced DCT scale that keeps the shorter side at least twice the resize target
    (see `reduced_decode_side`), then resizes and crops as usual: several times faster on camera
    photos, with embeddings that differ slightly from the exact path.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        do_resize: bool = True,
        size: dict | int | None = None,
        resample: int = Image.Resampling.BICUBIC,
        do_center_crop: bool = True,
        crop_size: dict | int | None = None,
        do_rescale: bool = True,
        rescale_factor: float = DEFAULT_RESCALE_FACTOR,
        do_normalize: bool = True,
        image_mean: Iterable[float] = OPENAI_CLIP_MEAN,
        image_std: Iterable[float] = OPENAI_CLIP_STD,
        do_convert_rgb: bool = True,
        max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
        **kwargs,
    ):
        super().__init__(**kwargs)
        defaults = Settings(
            do_resize=True,
            size={"shortest_edge": 224},
            resample=Image.Resampling.BICUBIC,
            do_center_crop=True,
            crop_size={"height": 224, "width": 224},
            do_rescale=True,
            rescale_factor=DEFAULT_RESCALE_FACTOR,
            do_normalize=True,
            image_mean=OPENAI_CLIP_MEAN,
            image_std=OPENAI_CLIP_STD,
        )
        given = dict(
            do_resize=do_resize,
            size=size,
            resample=resample,
            do_center_crop=do_center_crop,
            crop_size=crop_size,
            do_rescale=do_rescale,
            rescale_factor=rescale_factor,
            do_normalize=do_normalize,
            image_mean=image_mean,
            image_std=image_std,
            do_convert_rgb=do_convert_rgb,
        )
        settings = _settings(defaults, {k: v for k, v in given.items() if v is not None})
        self.do_resize, self.size = settings.do_resize, settings.size
        self.resample = int(settings.resample)
        self.do_center_crop, self.crop_size = settings.do_center_crop, settings.crop_size
        self.do_rescale, self.rescale_factor = settings.do_rescale, settings.rescale_factor
        self.do_normalize = settings.do_normalize
        self.image_mean, self.image_std = list(settings.image_mean), list(settings.image_std)
        self.do_convert_rgb = True
        self.max_image_pixels = max_image_pixels
        self._settings = settings
        self._lookup = _normalisation_table(settings)

    def preprocess(
        self,
        images,
        return_tensors: str | None = "pt",
        first_index: int = 0,
        data_format: str | None = None,
        input_data_format: str | None = None,
        reduced_decode: bool = False,
        **options,
    ) -> BatchFeature:
        """Pixel values `(batch, 3, height, width)` for one image or a list of them.

        `options` are any of `OPTIONS`, overriding the processor's own for this call.
        `first_index` only numbers the images in error messages (for callers that batch a list).
        `reduced_decode` opts in to the reduced decoding of large JPEG files, paths and URLs
        (not of images already decoded); the default is the exact full decode.
        """
        unknown = [key for key in options if key not in OPTIONS]
        if unknown:
            raise TypeError(f"image processor got unexpected option(s): {', '.join(unknown)}")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        if str(getattr(data_format, "value", data_format)) not in ("None", "channels_first"):
            raise ValueError(f"data_format must be 'channels_first', got {data_format!r}")
        if input_data_format is not None:
            raise ValueError(
                "input_data_format is not needed and not taken: arrays are read as HWC or CHW "
                "from their shape"
            )
        if not isinstance(reduced_decode, bool):
            raise ValueError(f"reduced_decode must be True or False, got {reduced_decode!r}")
        settings = _settings(self._settings, {k: v for k, v in options.items() if v is not None})
        table = self._lookup if settings == self._settings else _normalisation_table(settings)
        draft = self.reduced_decode_side(settings) if reduced_decode else None
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("got an empty list of images")
            arrays = self._process_many(images, first_index, settings, table, draft)
        else:
            arrays = [self._process_one(images, first_index, settings, table, draft)]
        shapes = sorted({array.shape for array in arrays})
        if len(shapes) > 1:
            raise ValueError(
                f"the images have different sizes after preprocessing ({shapes[0][1:]} and "
                f"{shapes[-1][1:]}), so they cannot be stacked: keep do_center_crop=True or give "
                "size={'height': h, 'width': w}"
            )
        pixel_values = np.stack(arrays)
        if return_tensors == "pt":
            pixel_values = torch.from_numpy(pixel_values)
        return BatchFeature(data={"pixel_values": pixel_values})

    def _process_many(
        self,
        images: list | tuple,
        first_index: int,
        settings: Settings,
        table: np.ndarray,
        draft: int | None,
    ) -> list[np.ndarray]:
        """Pillow releases the GIL while it decodes and resizes, so threads overlap that work."""
        workers = min(len(images), torch.get_num_threads())
        indices = range(first_index, first_index + len(images))

        def one(image: object, index: int) -> np.ndarray:
            return self._process_one(image, index, settings, table, draft)

        if workers < 2:
            return [one(image, index) for image, index in zip(images, indices)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, images, indices))

    def _process_one(
        self,
        image: object,
        index: int,
        settings: Settings,
        table: np.ndarray,
        draft: int | None = None,
    ) -> np.ndarray:
        try:
            rgb = load_image(image, max_pixels=self.max_image_pixels, draft_min_side=draft)
        except (ValueError, TypeError, OSError) as error:
            raise type(error)(f"image {index} ({describe(image)}): {error}") from None
        prepared = self.resize_and_crop(rgb, settings)
        return table[np.arange(3)[:, None, None], np.asarray(prepared).transpose(2, 0, 1)]

    def reduced_decode_side(self, settings: Settings | None = None) -> int | None:
        """The shorter side a reduced JPEG decode must keep: twice the resize target, so that the
        resize still averages at least 2x2 decoded pixels into each output pixel. None where
        nothing is resized (every decoded pixel is kept)."""
        settings = settings or self._settings
        if not settings.do_resize:
            return None
        size = settings.size
        target = size["shortest_edge"] if "shortest_edge" in size else max(size.values())
        return 2 * target

    def resize_and_crop(self, image: Image.Image, settings: Settings | None = None) -> Image.Image:
        """torchvision's `Resize` then `CenterCrop` (as the settings ask), on a PIL image."""
        settings = settings or self._settings
        width, height = image.size
        new_width, new_height = _resized_size(width, height, settings)
        if not settings.do_center_crop:
            return _resize(image, new_width, new_height, settings.resample)
        crop_h, crop_w = settings.crop_size["height"], settings.crop_size["width"]
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
            return image.resize((crop_w, crop_h), settings.resample, box=box)
        resized = _resize(image, new_width, new_height, settings.resample)
        if crop_w > new_width or crop_h > new_height:
            resized = _pad_to(resized, max(crop_w, new_width), max(crop_h, new_height))
            top = int(round((resized.size[1] - crop_h) / 2.0))
            left = int(round((resized.size[0] - crop_w) / 2.0))
        return resized.crop((left, top, left + crop_w, top + crop_h))

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_lookup", None)
        output.pop("_settings", None)
        return output


def _settings(base: Settings, options: dict) -> Settings:
    """`base` with `options` applied, each validated; the error names the option."""
    if options.get("do_convert_rgb", True) is not True:
        raise ValueError(
            "do_convert_rgb=False is not supported: the image tower takes RGB, so every image is "
            "converted (transparency composited onto white)"
        )
    values = {key: value for key, value in options.items() if key != "do_convert_rgb"}
    if "size" in values:
        values["size"] = _size(values["size"])
    if "crop_size" in values:
        values["crop_size"] = _crop_size(values["crop_size"])
    if "resample" in values:
        try:
            values["resample"] = Image.Resampling(int(values["resample"]))
        except (TypeError, ValueError):
            raise ValueError(
                f"resample must be a PIL resampling filter, got {values['resample']!r}"
            ) from None
    for key in ("image_mean", "image_std"):
        if key in values:
            values[key] = _channels(key, values[key])
    if min(values.get("image_std", base.image_std)) <= 0:
        raise ValueError("image_std must be positive")
    if "rescale_factor" in values:
        factor = values["rescale_factor"]
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
            raise ValueError(f"rescale_factor must be a positive number, got {factor!r}")
    for key in ("do_resize", "do_center_crop", "do_rescale", "do_normalize"):
        if key in values and not isinstance(values[key], bool):
            raise ValueError(f"{key} must be True or False, got {values[key]!r}")
    return replace(base, **values)


def _size(value: dict | int) -> dict:
    if isinstance(value, dict) and set(value) == {"height", "width"}:
        return {"height": _side(value, "height"), "width": _side(value, "width")}
    if isinstance(value, dict) and set(value) != {"shortest_edge"}:
        raise ValueError(
            f"size must be an int, {{'shortest_edge': n}} or {{'height': h, 'width': w}}, "
            f"got {value!r}"
        )
    return {"shortest_edge": _side(value, "shortest_edge")}


def _crop_size(value: dict | int) -> dict:
    height = _side(value, "height")
    square = not isinstance(value, dict) or "width" not in value
    return {"height": height, "width": height if square else _side(value, "width")}


def _side(value: dict | int, key: str) -> int:
    side = value.get(key) if isinstance(value, dict) else value
    if not isinstance(side, int) or isinstance(side, bool) or side < 1:
        raise ValueError(f"image sizes must be positive integers, got {value!r}")
    return side


def _channels(name: str, values: Iterable[float]) -> tuple:
    values = (values,) * 3 if isinstance(values, (int, float)) else tuple(values)
    if len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
        raise ValueError(f"{name} needs three numbers (one per RGB channel), got {values!r}")
    return tuple(float(v) for v in values)


def _resized_size(width: int, height: int, settings: Settings) -> tuple[int, int]:
    if not settings.do_resize:
        return width, height
    if "height" in settings.size:
        return settings.size["width"], settings.size["height"]
    short = settings.size["shortest_edge"]
    # torchvision truncates the long side, and keeps the short side exact.
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def _resize(image: Image.Image, width: int, height: int, resample) -> Image.Image:
    return image if image.size == (width, height) else image.resize((width, height), resample)


def _normalisation_table(settings: Settings) -> np.ndarray:
    """(3, 256) table of `(v * rescale_factor - mean) / std` for every 8-bit value, in float32.

    The same float32 operations as torchvision's ToTensor + Normalize, done once per value
    instead of once per pixel.
    """
    values = np.arange(256, dtype=np.float32)
    if settings.do_rescale and settings.rescale_factor == DEFAULT_RESCALE_FACTOR:
        values = values / np.float32(255)  # ToTensor divides; a product can differ in the last bit
    elif settings.do_rescale:
        values = values * np.float32(settings.rescale_factor)
    values = np.broadcast_to(values, (3, 256))
    if settings.do_normalize:
        mean32 = np.asarray(settings.image_mean, dtype=np.float32)[:, None]
        std32 = np.asarray(settings.image_std, dtype=np.float32)[:, None]
        values = (values - mean32) / std32
    return np.ascontiguousarray(values, dtype=np.float32)


def _pad_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """torchvision's CenterCrop pads with black when the crop is larger than the image."""
    canvas = Image.new("RGB", (width, height))
    canvas.paste(image, ((width - image.size[0]) // 2, (height - image.size[1]) // 2))
    return canvas
