"""Embedding image files for an index, with bounded memory and failures sorted by kind.

This is the local engine: `embed_images(model, paths, batch_size)` gives the rows of the
readable images, which paths they belong to, and why the others failed. Another engine (a
cluster, say) slots in by returning the same `EmbeddedImages`.

Each image is decoded, preprocessed to its small model-input array, and its full-resolution
pixels dropped before the next one is decoded by the same worker: at most one decoded photo per
worker thread is held at a time, however large the batch. (A 48 MP photo is 144 MB decoded;
decoding a batch of 32 first would hold 4.6 GB.)
"""

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

# Bytes per pixel of the largest plausible uncompressed file (a 32-bit BMP), plus headers:
# a file larger than this for the pixel limit cannot be an image within it.
_BYTES_PER_PIXEL = 4
_HEADER_ALLOWANCE = 1 << 20


@dataclass
class EmbeddedImages:
    embeddings: np.ndarray  # (len(kept), dim) float32, L2-normalised, in `kept` order
    kept: list[int] = field(default_factory=list)  # positions in `paths` of the embedded images
    # Not a usable image (corrupt, not an image, over the pixel limit): stays so until changed.
    failures: dict[int, str] = field(default_factory=dict)
    # Could not be read this time (an I/O error, a permission, gone): worth trying again.
    retry: dict[int, str] = field(default_factory=dict)


def embed_images(
    model,
    paths: Sequence[Path],
    batch_size: int,
    progress: Callable[[int], object] | None = None,
    warn: Callable[[str], object] | None = None,
) -> EmbeddedImages:
    image_processor = model.processor.image_processor
    result = EmbeddedImages(np.zeros((0, model.config.projection_dim), np.float32))
    rows = []
    workers = max(1, min(torch.get_num_threads(), batch_size))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), batch_size):
            positions = range(start, min(start + batch_size, len(paths)))
            prepared = pool.map(lambda i: prepare_image(paths[i], image_processor), positions)
            arrays = []
            for position, (pixels, failure, transient) in zip(positions, prepared):
                if pixels is not None:
                    arrays.append(pixels)
                    result.kept.append(position)
                    continue
                (result.retry if transient else result.failures)[position] = failure
                if warn is not None:
                    warn(f"skipped: {failure}" + (" (tried again next run)" if transient else ""))
            if arrays:
                rows.append(_embed(model, np.stack(arrays)))
            if progress is not None:
                progress(len(positions))
    if rows:
        result.embeddings = np.concatenate(rows)
    return result


def prepare_image(path: Path, image_processor) -> tuple[np.ndarray | None, str, bool]:
    """(pixel array, "", False), or (None, reason, whether the failure may pass)."""
    from turkish_clip.image_loading import describe, load_image

    max_pixels = image_processor.max_image_pixels
    name = repr(str(path))
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if max_pixels is not None and size > max_pixels * _BYTES_PER_PIXEL + _HEADER_ALLOWANCE:
                return None, f"{name} is too large: {size:,} bytes", False
            data = file.read()
    except OSError as error:  # the file, not its content: EIO, EACCES, EAGAIN, removed...
        return None, f"{name}: could not read: {error.strerror or error}", True
    try:
        image = load_image(data, max_pixels=max_pixels)
        pixels = image_processor.preprocess(image, return_tensors="np")["pixel_values"][0]
    except Exception as error:  # Pillow's decoders raise many kinds on bad input
        message = " ".join(str(error).split()) or type(error).__name__
        return None, f"{name}: {message.replace(describe(data), 'the file')}", False
    return pixels, "", False


@torch.inference_mode()
def _embed(model, pixels: np.ndarray) -> np.ndarray:
    features = model.embed_pixel_values(torch.from_numpy(pixels).to(model.device))
    return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()
