"""Indexing photos on this CPU: images/s from JPEG files to index rows, every way side by side in
one run, with the full-size model and random weights.

    python benchmarks/indexing.py              # 3 x 200 generated JPEGs: 15-30 min on 2 cores
    python benchmarks/indexing.py --photos 50  # fewer photos per set
    python benchmarks/indexing.py --quick      # tiny model, 4 small JPEGs a set: that it runs

Three sets of photo-like JPEGs (smooth colour fields plus fine sensor-like noise, quality 90):
12 MP (4000x3000), 2 MP (1632x1224) and 640x480, a quarter of each in portrait. On each set:

- today's `index`: full decode, torch float32, decoding a batch on threads and then embedding it,
  one stage after the other (the local engine as it was, copied below);
- clip-retrieval's way: a torch DataLoader with one worker process per core opening each file
  with PIL, torchvision's Resize/CenterCrop/ToTensor/Normalize, then the model in batches;
- the pipelined engine (search/embedding.py) with full decode on torch float32, then with reduced
  decoding on each of the four image paths (torch/onnxruntime x float32/int8); the default is the
  one `inference/image_path.py` picks for the model folder;
- decode alone (`load_image`, one thread), full against reduced;
- how busy each stage kept the machine: the share of wall time in which at least one file was
  being decoded, the model was running, or both; and the decoding threads' time over wall time;
- cosines: reduced against full decode (torch float32), on each set and on the demo photos, and
  each image path against torch float32 on the same pixels, minimum over all photos.

Models are loaded and warmed up before timing, so the figures are the embedding step of `index`
(files in, rows out); the runs go one after another, and the 1-minute load average is printed with
each set, as other processes share the cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # The checkout instead of this script's folder, whose onnx.py would shadow the `onnx` package.
    sys.path[0] = str(ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.harness import FULL, QUICK, Row, build_model, build_processor, print_table  # noqa: E402
from conversion.onnx_export import export_onnx  # noqa: E402
from inference.image_path import ImagePath, choose_image_path  # noqa: E402
from inference.loading import load_model  # noqa: E402
from search.embedding import DECODE, EMBED, Timeline, embed_images, prepare_image  # noqa: E402
from turkish_clip import save_model_folder  # noqa: E402
from turkish_clip.image_loading import load_image  # noqa: E402

PATHS = (
    ImagePath("torch", False),
    ImagePath("torch", True),
    ImagePath("onnx", False),
    ImagePath("onnx", True),
)
# (name, width, height, target speed-up of the default over today's index)
FULL_SETS = (("12 MP", 4000, 3000, 3.0), ("2 MP", 1632, 1224, 2.0), ("640x480", 640, 480, 1.5))
QUICK_SETS = (("12 MP", 320, 240, 3.0), ("2 MP", 200, 150, 2.0), ("640x480", 64, 48, 1.5))
MIN_COSINE = 0.995
DECODE_ALONE = 50  # files per set for the one-thread decode rows
DEMO_PHOTOS = ROOT.parent / "shared" / "turkish-clip" / "images"


def path_name(path: ImagePath) -> str:
    return (
        f"{'onnxruntime' if path.backend == 'onnx' else 'torch'} {'int8' if path.int8 else 'fp32'}"
    )


# Photos


def make_set(folder: Path, count: int, width: int, height: int, seed: int) -> list[Path]:
    """`count` distinct photo-like JPEGs; every fourth is portrait. Written on two threads."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    noise = rng.integers(-12, 13, (height, width, 3)).astype(np.int16)  # one field, shifted

    def write(index: int) -> Path:
        local = np.random.default_rng(seed * 1000 + index)
        coarse = local.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), np.uint8)
        smooth = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        shifted = np.roll(noise, int(local.integers(0, width)), axis=1)
        pixels = (np.asarray(smooth, np.int16) + shifted).clip(0, 255).astype(np.uint8)
        if index % 4 == 3:
            pixels = pixels.transpose(1, 0, 2)
        path = folder / f"photo{index:04d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        return path

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(write, range(count)))


# The ways compared


@torch.inference_mode()
def _embed(model, pixels: np.ndarray) -> np.ndarray:
    features = model.embed_pixel_values(torch.from_numpy(pixels))
    return torch.nn.functional.normalize(features.float(), dim=-1).numpy()


def todays_index(model, paths: list[Path], batch_size: int, timeline: Timeline) -> np.ndarray:
    """The local engine before the pipeline: a batch decoded on threads, then embedded."""
    processor = model.processor.image_processor

    def decode(path: Path):
        start = time.perf_counter()
        prepared = prepare_image(path, processor)
        timeline.append((DECODE, start, time.perf_counter()))
        return prepared

    rows = []
    workers = max(1, min(torch.get_num_threads(), batch_size))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), batch_size):
            prepared = pool.map(decode, paths[start : start + batch_size])
            arrays = [pixels for pixels, _, _ in prepared if pixels is not None]
            began = time.perf_counter()
            rows.append(_embed(model, np.stack(arrays)))
            timeline.append((EMBED, began, time.perf_counter()))
    return np.concatenate(rows)


class _Files(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path], transform):
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(Image.open(self.paths[index]).convert("RGB"))


def clip_retrieval(
    model, paths: list[Path], batch_size: int, side: int, timeline: Timeline
) -> np.ndarray:
    """clip-retrieval's inference loop: DataLoader workers decode and transform, the model
    embeds each batch they deliver."""
    from torchvision import transforms

    from turkish_clip.image_processing_turkish_clip import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    transform = transforms.Compose(
        [
            transforms.Resize(side, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(side),
            transforms.ToTensor(),
            transforms.Normalize(OPENAI_CLIP_MEAN, OPENAI_CLIP_STD),
        ]
    )
    loader = torch.utils.data.DataLoader(
        _Files(paths, transform), batch_size=batch_size, num_workers=os.cpu_count() or 1
    )
    rows = []
    for batch in loader:
        began = time.perf_counter()
        rows.append(_embed(model, batch.numpy()))
        timeline.append((EMBED, began, time.perf_counter()))
    return np.concatenate(rows)


def pipelined(
    model, paths: list[Path], batch_size: int, reduced: bool, timeline: Timeline
) -> np.ndarray:
    result = embed_images(model, paths, batch_size, reduced_decode=reduced, timeline=timeline)
    if len(result.kept) != len(paths):
        raise RuntimeError(f"the engine skipped photos: {result.failures | result.retry}")
    return result.embeddings


# Measuring


@dataclass
class Run:
    seconds: float
    rows: np.ndarray
    timeline: Timeline
    start: float


def timed(function, *args) -> Run:
    timeline: Timeline = []
    start = time.perf_counter()
    rows = function(*args, timeline)
    return Run(time.perf_counter() - start, rows, timeline, start)


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)


def stage_rows(run: Run, what: str) -> list[Row]:
    """Shares of wall time: some file decoding, the model running, both; decode thread time."""
    decode = [(s, e) for stage, s, e in run.timeline if stage == DECODE]
    model = _union([(s, e) for stage, s, e in run.timeline if stage == EMBED])
    decoding = _union(decode)
    wall = run.seconds
    return [
        Row(f"{what}: wall time some file is decoding", 100 * _length(decoding) / wall, "%"),
        Row(f"{what}: wall time the model runs", 100 * _length(model) / wall, "%"),
        Row(f"{what}: wall time both run at once", 100 * _overlap(decoding, model) / wall, "%"),
        Row(
            f"{what}: decoding thread time / wall time (200% = two threads all the time)",
            100 * _length(decode) / wall,
            "%",
        ),
    ]


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum(-1).min())


def decode_alone_rows(paths: list[Path], side: int, what: str) -> list[Row]:
    """One thread, `load_image` only: the file to RGB pixels, in full and reduced."""
    seconds = {}
    for name, draft in (("full", None), ("reduced", side)):
        start = time.perf_counter()
        for path in paths:
            load_image(path, draft_min_side=draft)
        seconds[name] = time.perf_counter() - start
    full, reduced = len(paths) / seconds["full"], len(paths) / seconds["reduced"]
    name = f"decode alone images/s, 1 thread, {len(paths)} JPEGs {what}, reduced"
    return [Row(name, reduced, "/s", f"full decode: {full:.1f}/s", reduced / full)]


def measure_set(
    name: str,
    paths: list[Path],
    target: float,
    models: dict[ImagePath, object],
    default: ImagePath,
    batch: int,
    side: int,
) -> tuple[list[Row], dict[str, np.ndarray]]:
    what = f"{len(paths)} JPEGs {name}"
    load = os.getloadavg()[0]
    fp32 = models[PATHS[0]]
    today = timed(todays_index, fp32, paths, batch)
    runs = {path: timed(pipelined, models[path], paths, batch, True) for path in PATHS}
    reference = timed(clip_retrieval, fp32, paths, batch, side)
    exact = timed(pipelined, fp32, paths, batch, False)
    count = len(paths)
    base = count / today.seconds
    todays = f"today's index: {base:.1f}/s"
    default_name = f"default ({path_name(default)}, reduced decode, pipelined)"
    rows = [
        Row(f"index images/s, {what}: today's index (full decode, torch fp32, stages in turn)",
            base, "/s"),
        Row(f"index images/s, {what}: {default_name}, target {target:g}x", count /
            runs[default].seconds, "/s", todays, today.seconds / runs[default].seconds),
        Row(f"index images/s, {what}: clip-retrieval's way (PIL, torchvision, DataLoader)",
            count / reference.seconds, "/s", todays, today.seconds / reference.seconds),
        Row(f"index images/s, {what}: pipelined, full decode, torch fp32", count / exact.seconds,
            "/s", todays, today.seconds / exact.seconds),
    ]  # fmt: skip
    for path in PATHS:
        seconds = runs[path].seconds
        rows.append(
            Row(f"index images/s, {what}: pipelined, reduced decode, {path_name(path)}",
                count / seconds, "/s", todays, today.seconds / seconds)
        )  # fmt: skip
    rows += decode_alone_rows(paths[:DECODE_ALONE], side * 2, name)
    rows += stage_rows(today, f"stages, {name}, today's index")
    rows += stage_rows(runs[default], f"stages, {name}, default")
    rows.append(
        Row(f"min cosine, reduced to full decode (torch fp32), {what}",
            min_cosine(runs[PATHS[0]].rows, today.rows), "")
    )  # fmt: skip
    print(f"{name}: 1-minute load average {load:.2f} before, {os.getloadavg()[0]:.2f} after",
          flush=True)  # fmt: skip
    embeddings = {path_name(path): runs[path].rows for path in PATHS}
    return rows, embeddings | {"exact": today.rows}


def measure(quick: bool, count: int, directory: Path, demo: Path) -> list[Row]:
    scale = QUICK if quick else FULL
    batch = 4 if quick else 32
    side = scale.image_size
    started = time.perf_counter()
    folder = save_model_folder(build_model(scale), build_processor(scale), directory / "model")
    export_onnx(folder, int8=True)
    print(f"model folder and ONNX export: {time.perf_counter() - started:.0f} s", flush=True)
    default = choose_image_path(str(folder))
    models = {p: load_model(str(folder), backend=p.backend, int8=p.int8) for p in PATHS}
    sets = QUICK_SETS if quick else FULL_SETS
    photos = {}
    for seed, (name, width, height, _) in enumerate(sets):
        started = time.perf_counter()
        photos[name] = make_set(directory / f"set{seed}", count, width, height, seed)
        print(f"{name}: {count} JPEGs written in {time.perf_counter() - started:.0f} s", flush=True)
    warm = photos[sets[-1][0]][:batch]
    for model in models.values():  # sessions start and weights map on first use
        embed_images(model, warm, batch)
    rows, by_path = [], {}
    for name, _, _, target in sets:
        set_rows, embeddings = measure_set(name, photos[name], target, models, default, batch, side)
        rows += set_rows
        for key, value in embeddings.items():
            by_path.setdefault(key, []).append(value)
    every = {key: np.concatenate(value) for key, value in by_path.items()}
    total = len(every["exact"])
    reference = every[path_name(PATHS[0])]
    for path in PATHS[1:]:
        cosine = min_cosine(every[path_name(path)], reference)
        rows.append(Row(f"min cosine, {path_name(path)} to torch fp32, reduced decode, "
                        f"{total} photos", cosine, ""))  # fmt: skip
    rows.append(
        Row(f"min cosine, default ({path_name(default)}, reduced) to today's rows, {total} photos",
            min_cosine(every[path_name(default)], every["exact"]), "")
    )  # fmt: skip
    rows += demo_rows(models[PATHS[0]], demo, batch)
    return rows


def demo_rows(model, demo: Path, batch: int) -> list[Row]:
    paths = sorted(demo.glob("*.jpeg")) if demo.is_dir() else []
    if not paths:
        print(f"no demo photos in {demo}: their cosine row is left out", flush=True)
        return []
    exact = embed_images(model, paths, batch).embeddings
    reduced = embed_images(model, paths, batch, reduced_decode=True).embeddings
    name = f"min cosine, reduced to full decode (torch fp32), {len(paths)} demo photos"
    return [Row(name, min_cosine(reduced, exact), "")]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, 4 small JPEGs a set")
    parser.add_argument("--photos", type=int, metavar="N", help="JPEGs per set (default 200)")
    parser.add_argument(
        "--demo-photos", type=Path, default=DEMO_PHOTOS, metavar="DIR", help="*.jpeg to compare"
    )
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    count = args.photos or (4 if args.quick else 200)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        rows = measure(args.quick, count, Path(directory), args.demo_photos)
    size = "tiny (--quick)" if args.quick else "full-size"
    print()
    print_table(
        rows,
        f"Indexing JPEG files on CPU, {torch.get_num_threads()} threads, torch "
        f"{torch.__version__}, {size} model with random weights, one run of each",
    )
    print(f"\n1-minute load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    return rows


if __name__ == "__main__":
    main()
