"""Embedding image files with Ray Data: the counterpart of the local engine's `embed_images`
(search/engines.py), returning the same rows, kept indices and failures; the actors load the
model through `load_model`, from the same `ModelSpec` as the driver.

Files go in batches of `batch_size`. Each batch is decoded and preprocessed by a Ray task, then
embedded by an actor of a pool in which every actor loads the model once (on a GPU where it has
one). The actor writes the batch's rows to a part file in a hidden work folder inside the index
folder before reporting it done, so a run that is killed part-way and started again embeds only
the batches that have no part file yet. The folder's name is a hash of the model and of the file
list (paths, sizes, modification times) and batch size, so a part is reused only for exactly the
files it was made from; the caller removes the folder once the index is written.
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from inference.loading import ModelSpec, as_spec, load_model

# RayOptions, RayRunError and start_ray are this engine's interface too (cli.py, benchmarks).
from parallel.ray_pool import (  # noqa: F401
    RayOptions,
    RayRunError,
    map_with_actor_pool,
    ray_session,
    start_ray,
)
from parallel.ray_pool import pool_sizes as _pool
from search.embedding import EmbeddedImages, prepare_image

WORK_FOLDER = ".embedding-work"


@dataclass(frozen=True)
class Part:
    number: int
    start: int
    stop: int

    @property
    def file_name(self) -> str:
        return f"part-{self.number:07d}.npz"


def embed_image_files_ray(
    spec: ModelSpec | str,
    paths: Sequence[Path],
    batch_size: int,
    index_folder: Path,
    options: RayOptions,
    warn: Callable[[str], object] = print,
    advance: Callable[[int], object] = lambda images: None,
    reduced_decode: bool = False,
) -> EmbeddedImages:
    """What the local engine's `embed_images` gives for the same paths: the rows of the readable
    images, their positions in `paths`, and why the others failed (for good, or to retry);
    `advance` is called with the number of images of each finished batch. `reduced_decode`
    decodes large JPEGs at a reduced DCT scale, as the local engine's option does."""
    spec = as_spec(spec)
    paths = [Path(path) for path in paths]
    if not paths:
        from turkish_clip import TurkishCLIPConfig

        config = TurkishCLIPConfig.from_pretrained(spec.name, revision=spec.revision)
        return EmbeddedImages(np.zeros((0, config.projection_dim), np.float32))
    work = index_folder / WORK_FOLDER / _work_key(spec, paths, batch_size, reduced_decode)
    work.mkdir(parents=True, exist_ok=True)
    parts = [
        Part(number, start, min(start + batch_size, len(paths)))
        for number, start in enumerate(range(0, len(paths), batch_size))
    ]
    todo = [part for part in parts if not (work / part.file_name).is_file()]
    if parts and len(todo) < len(parts):
        warn(f"resuming: {len(parts) - len(todo)} of {len(parts)} batches already embedded")
    for part in parts:
        if part not in todo:
            advance(part.stop - part.start)
    if todo:
        _run(spec, paths, todo, work, options, advance, reduced_decode)
    return _collect(work, parts, warn)


def discard_finished_batches(index_folder: Path) -> None:
    """Removes the part files of every run, once the index they were made for is written."""
    shutil.rmtree(index_folder / WORK_FOLDER, ignore_errors=True)


def _work_key(spec: ModelSpec, paths: list[Path], batch_size: int, reduced_decode: bool) -> str:
    """A hash of what decides every part's content: the model, the files, the batching and the
    decoding."""
    named = [spec.name, spec.revision, spec.backend, spec.int8, batch_size, reduced_decode]
    digest = hashlib.sha256(json.dumps(named).encode())
    weights = Path(spec.name) / "model.safetensors"
    if weights.is_file():  # a local folder can be rewritten in place
        stat = weights.stat()
        digest.update(f"{stat.st_size} {stat.st_mtime_ns}".encode())
    for path in paths:
        try:
            stat = path.stat()
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()[:24]


def _run(
    spec: ModelSpec,
    paths: list[Path],
    parts: list[Part],
    work: Path,
    options: RayOptions,
    advance: Callable[[int], object],
    reduced_decode: bool,
) -> None:
    import ray
    import ray.data

    with ray_session(options):
        from turkish_clip import TurkishCLIPImageProcessor

        processor = TurkishCLIPImageProcessor.from_pretrained(spec.name, revision=spec.revision)
        items = [
            {"part": p.number, "start": p.start, "paths": [str(x) for x in paths[p.start : p.stop]]}
            for p in parts
        ]
        gpus, workers, threads = _pool(options)
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        # Half a CPU each keeps decoding in tasks of its own (Ray would otherwise fuse it into
        # the actors, which then wait for it) and lets two run beside each actor.
        decode = partial(_decode, image_processor=processor, reduced=reduced_decode)
        dataset = dataset.map(decode, num_cpus=0.5)
        dataset = map_with_actor_pool(
            dataset,
            _Embedder,
            dict(spec=spec, work=str(work), threads=threads),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_gpus=gpus,
            num_cpus=1,
        )
        for row in dataset.iter_rows():
            advance(int(row["images"]))


def _decode(item: dict, image_processor, reduced: bool = False) -> dict:
    """One batch opened and preprocessed as the local engine does it; a file that fails costs
    only itself."""
    arrays, kept, failures, retry = [], [], {}, {}
    for offset, path in enumerate(item["paths"]):
        pixels, reason, transient = prepare_image(Path(path), image_processor, reduced)
        position = item["start"] + offset
        if pixels is None:
            (retry if transient else failures)[position] = reason
        else:
            arrays.append(pixels)
            kept.append(position)
    pixels = np.stack(arrays) if arrays else np.zeros((0,), np.float32)
    info = {"kept": kept, "failures": failures, "retry": retry, "images": len(item["paths"])}
    return {"part": item["part"], "pixels": pixels, "info": json.dumps(info)}


class _Embedder:
    """An actor of the pool: loads the model once, embeds batches and writes their part files."""

    def __init__(self, spec: ModelSpec, work: str, threads: int):
        import torch

        torch.set_num_threads(threads)
        # Ray hides the GPUs from an actor that reserved none, so load_model picks the CPU there.
        self.model = load_model(spec)
        self.work = Path(work)

    def __call__(self, batch: dict) -> dict:
        import torch

        images = []
        for number, pixels, info in zip(batch["part"], batch["pixels"], batch["info"]):
            info = json.loads(info)
            rows = np.zeros((0, self.model.config.projection_dim), np.float32)
            if info["kept"]:
                with torch.inference_mode():
                    features = self.model.embed_pixel_values(
                        torch.from_numpy(np.asarray(pixels)).to(self.model.device)
                    )
                    rows = torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()
            _write_part(self.work / Part(int(number), 0, 0).file_name, rows, info)
            images.append(info["images"])
        return {"images": np.asarray(images)}


def _write_part(path: Path, rows: np.ndarray, info: dict) -> None:
    """Written under a temporary name and renamed, so a part file on disk is always whole."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, rows=rows.astype(np.float32), info=np.asarray(json.dumps(info)))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _collect(work: Path, parts: list[Part], warn: Callable[[str], object]) -> EmbeddedImages:
    rows, result = [], EmbeddedImages(np.zeros((0, 0), np.float32))
    for part in parts:
        with np.load(work / part.file_name) as data:
            rows.append(data["rows"])
            info = json.loads(str(data["info"]))
        result.kept += info["kept"]
        for kind, found in (("failures", result.failures), ("retry", result.retry)):
            for index, reason in info.get(kind, {}).items():
                found[int(index)] = reason
                warn(f"skipped: {reason}" + (" (tried again next run)" if kind == "retry" else ""))
    result.embeddings = np.concatenate(rows)
    return result
