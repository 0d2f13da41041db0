"""Embedding image files for an index, with bounded memory and failures sorted by kind.

This is the local engine: `embed_images(model, paths, batch_size)` gives the rows of the
readable images, which paths they belong to, and why the others failed. Another engine (a
cluster, say) slots in by returning the same `EmbeddedImages`.

It is a pipeline of two stages that overlap. A pool of threads decodes and preprocesses files
(Pillow releases the GIL while it decodes and resizes) while the model embeds the batch before
(torch and onnxruntime compute on their own threads). Between them is a bound: at most
`queue_size` images are being decoded or waiting to be embedded at any time, so decoding faster
than the model never fills memory. Each image is decoded, preprocessed to its small model-input
array, and its full-resolution pixels dropped before the next one is decoded by the same worker:
at most one decoded photo per worker thread is held at a time. (A 48 MP photo is 144 MB decoded;
decoding a batch of 32 first would hold 4.6 GB.)

Batches are the same as a one-stage-after-the-other run's: the readable images among each run of
`batch_size` paths, in path order. So rows, their order and even their bits are the same, only
sooner.
"""

import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Bytes per pixel of the largest plausible uncompressed file (a 32-bit BMP), plus headers:
# a file larger than this for the pixel limit cannot be an image within it.
_BYTES_PER_PIXEL = 4
_HEADER_ALLOWANCE = 1 << 20
DECODE = "decode"
EMBED = "embed"


@dataclass
class EmbeddedImages:
    embeddings: np.ndarray  # (len(kept), dim) float32, L2-normalised, in `kept` order
    kept: list[int] = field(default_factory=list)  # positions in `paths` of the embedded images
    # Not a usable image (corrupt, not an image, over the pixel limit): stays so until changed.
    failures: dict[int, str] = field(default_factory=dict)
    # Could not be read this time (an I/O error, a permission, gone): worth trying again.
    retry: dict[int, str] = field(default_factory=dict)


# (stage, start, end) in time.perf_counter() seconds: for measuring how busy each stage is.
Timeline = list[tuple[str, float, float]]


def embed_images(
    model,
    paths: Sequence[Path],
    batch_size: int,
    progress: Callable[[int], object] | None = None,
    warn: Callable[[str], object] | None = None,
    *,
    reduced_decode: bool = False,
    decode_threads: int | None = None,
    queue_size: int | None = None,
    timeline: Timeline | None = None,
) -> EmbeddedImages:
    """Rows of the readable images among `paths`, in path order.

    `reduced_decode` decodes large JPEGs at a reduced DCT scale (see `prepare_image`).
    `decode_threads` (default: torch's thread count) decode while the model runs; `queue_size`
    (default: two batches) bounds the images decoded or being decoded and not yet embedded; at
    `batch_size` the two stages take turns instead of overlapping. `timeline`, where given,
    receives each decode's and each model call's start and end.
    """
    queue_size = 2 * batch_size if queue_size is None else queue_size
    if queue_size < batch_size:
        raise ValueError(f"queue_size ({queue_size}) must hold a batch ({batch_size})")
    if decode_threads is not None and decode_threads < 1:
        raise ValueError(f"decode_threads must be at least 1, got {decode_threads}")
    import torch  # here, not at import: the command line's --help must not wait for it

    workers = decode_threads or max(1, min(torch.get_num_threads(), batch_size))
    image_processor = model.processor.image_processor
    result = EmbeddedImages(np.zeros((0, model.config.projection_dim), np.float32))
    rows: list[np.ndarray] = []
    pending: deque[Future] = deque()  # submitted, in path order
    submitted = 0

    def top_up(waiting: int) -> None:
        """Submits the next paths while fewer than `queue_size` are in flight or waiting."""
        nonlocal submitted
        while submitted < len(paths) and len(pending) + waiting < queue_size:
            pending.append(pool.submit(decode, submitted))
            submitted += 1

    def decode(position: int) -> tuple[np.ndarray | None, str, bool]:
        start = time.perf_counter()
        try:
            return prepare_image(paths[position], image_processor, reduced_decode)
        finally:
            if timeline is not None:
                timeline.append((DECODE, start, time.perf_counter()))

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        try:
            for start in range(0, len(paths), batch_size):
                stop = min(start + batch_size, len(paths))
                arrays = []
                for position in range(start, stop):
                    top_up(len(arrays))
                    pixels, failure, transient = pending.popleft().result()
                    if pixels is not None:
                        arrays.append(pixels)
                        result.kept.append(position)
                        continue
                    (result.retry if transient else result.failures)[position] = failure
                    if warn is not None:
                        warn(
                            f"skipped: {failure}" + (" (tried again next run)" if transient else "")
                        )
                top_up(len(arrays))  # before the model runs, so the next batch decodes meanwhile
                if arrays:
                    began = time.perf_counter()
                    rows.append(_embed(model, np.stack(arrays)))
                    if timeline is not None:
                        timeline.append((EMBED, began, time.perf_counter()))
                if progress is not None:
                    progress(stop - start)
        finally:
            for future in pending:  # after an error: no decoding for a result nobody reads
                future.cancel()
    if rows:
        result.embeddings = np.concatenate(rows)
    return result


def prepare_image(
    path: Path, image_processor, reduced_decode: bool = False
) -> tuple[np.ndarray | None, str, bool]:
    """(pixel array, "", False), or (None, reason, whether the failure may pass).

    With `reduced_decode`, a JPEG at least twice as large as the processor's resize target is
    decoded at the smallest DCT scale that keeps its shorter side at least twice that target
    (`TurkishCLIPImageProcessor.reduced_decode_side`), then resized and cropped as usual; other
    files are decoded in full, as without it.
    """
    from turkish_clip.image_loading import describe, load_image

    max_pixels = image_processor.max_image_pixels
    side = getattr(image_processor, "reduced_decode_side", None)
    draft = side() if reduced_decode and side is not None else None
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
        image = load_image(data, max_pixels=max_pixels, draft_min_side=draft)
        pixels = image_processor.preprocess(image, return_tensors="np")["pixel_values"][0]
    except Exception as error:  # Pillow's decoders raise many kinds on bad input
        message = " ".join(str(error).split()) or type(error).__name__
        return None, f"{name}: {message.replace(describe(data), 'the file')}", False
    return pixels, "", False


def _embed(model, pixels: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        features = model.embed_pixel_values(torch.from_numpy(pixels).to(model.device))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()
