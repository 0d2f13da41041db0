"""Which of the four image paths `cli.py index` embeds with: torch or onnxruntime, float32 or int8.

The rule, from `benchmarks/indexing.py` (docs/indexing-speed.md has the figures): on a quiet CPU,
onnxruntime int8 was the fastest image path end to end on every set, then torch int8, then
onnxruntime float32, then torch float32. An int8 path is a default only where it is exact enough:
onnxruntime int8 only from files that `hub_upload.py export-onnx --int8` kept (it keeps a quantised
tower only where its cosine to float32 is at least `INT8_MIN_COSINE`, 0.995, on its check images),
and torch int8 only after the same check, made on the loaded model before it embeds anything.
Anything below it is never a default.

All four paths of one model folder give one index fingerprint (search/fingerprint.py hashes the
folder's checkpoint file), so an index can be updated with any of them.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from inference import loading
from inference.loading import ModelSpec, choose_backend, load_model


@dataclass(frozen=True)
class ImagePath:
    backend: str  # "torch" or "onnx"
    int8: bool


def choose_image_path(name: str, backend: str | None = None, int8: bool = False) -> ImagePath:
    """The image path for embedding a folder with model `name` (a folder or a Hub id).

    `backend` or `int8`, where given, are honoured as `choose_backend` honours them. Otherwise,
    on a CPU: onnxruntime int8 where the folder has its verified quantised ONNX files, else torch
    int8 (which `load_image_model` checks before use); on a GPU, torch float32.
    """
    if backend is not None or int8:
        return ImagePath(choose_backend(name, backend, int8), int8)
    if loading._device() != "cpu":
        return ImagePath("torch", False)
    if Path(name).expanduser().is_dir() and choose_backend(name, None, int8=True) == "onnx":
        return ImagePath("onnx", True)
    return ImagePath("torch", True)  # Hub ids too: finding their ONNX files costs a request


def load_image_model(spec: ModelSpec):
    """The model `index` embeds images with: `spec` on the path `choose_image_path` picks, unless
    `spec` names a backend or int8 itself, or needs its own code (whose paths this project does
    not know). Torch int8 is used only if the loaded model's image embeddings stay within
    `INT8_MIN_COSINE` of its float32 ones on the check images; otherwise the float32 path that
    `choose_backend` picks (onnxruntime where the folder has the files, else torch)."""
    if spec.trust_remote_code or spec.backend is not None or spec.int8:
        return load_model(spec)
    path = choose_image_path(spec.name)
    if path != ImagePath("torch", True):
        return load_model(replace(spec, backend=path.backend, int8=path.int8))
    model = load_model(replace(spec, backend="torch", int8=False))
    if int8_image_cosine(model) >= _int8_min_cosine():
        return model  # quantised in place by the check
    return load_model(replace(spec, backend=choose_backend(spec.name, None), int8=False))


def int8_image_cosine(model) -> float:
    """Quantises a float32 torch `model` to int8 in place and gives the lowest cosine between its
    image embeddings before and after, on `check_pixels`."""
    pixels = check_pixels(model)
    before = _image_rows(model, pixels)
    model.quantize_int8()
    return float((before * _image_rows(model, pixels)).sum(-1).min())


def check_pixels(model):
    """The ONNX export's check images at the image tower's input size, normalised as its processor
    normalises them: model inputs made without the processor's pixel limit, which guards files
    read from disk, not these."""
    import numpy as np
    import torch
    from PIL import Image

    from conversion.onnx_export import verify_images

    processor = model.processor.image_processor
    size = model.config.vision_config.image_size
    square = (size, size)
    arrays = [
        np.asarray(image.convert("RGB").resize(square, Image.Resampling.BICUBIC), np.float32)
        for image in verify_images()
    ]
    mean, std = np.asarray(processor.image_mean), np.asarray(processor.image_std)
    pixels = (np.stack(arrays) / 255 - mean) / std
    return torch.from_numpy(pixels.transpose(0, 3, 1, 2).astype(np.float32))


def _image_rows(model, pixels):
    import torch

    with torch.inference_mode():
        features = model.embed_pixel_values(pixels.to(model.device))
        return torch.nn.functional.normalize(features.float(), dim=-1).numpy()


def _int8_min_cosine() -> float:
    from conversion.onnx_export import INT8_MIN_COSINE

    return INT8_MIN_COSINE
