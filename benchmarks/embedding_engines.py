"""Images/s of the index's two embedding engines on the same folder: this process, and Ray Data.

    python benchmarks/embedding_engines.py               # full-size random-weight model, 960 photos
    python benchmarks/embedding_engines.py --photos 192  # another folder size
    python benchmarks/embedding_engines.py --quick       # tiny model, 24 photos: that it runs

Ray runs on this machine with all its CPUs. Its time is split into what a run pays once (starting
Ray; starting the actor, loading the model and the first batch) and its steady rate after the
first batch, so that the overhead is measured rather than guessed. The two engines alternate,
so that load from other processes falls on both alike.
"""

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import cli  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    FULL,
    QUICK,
    Row,
    build_model,
    build_processor,
    make_photos,
    print_table,
)
from inference.loading import load_model  # noqa: E402
from search import ray_engine  # noqa: E402
from turkish_clip import save_model_folder  # noqa: E402


def local_run(folder: Path, photos: list[Path], batch: int) -> float:
    """Seconds to embed the photos in this process, model loaded beforehand."""
    model = load_model(str(folder), None)
    start = time.perf_counter()
    cli.embed_image_files(model, photos, batch, True)
    return time.perf_counter() - start


def ray_run(
    folder: Path, photos: list[Path], batch: int, index: Path
) -> tuple[float, float, float]:
    """(total seconds, seconds to the first finished batch, images/s after it)."""
    done = []
    start = time.perf_counter()
    ray_engine.embed_image_files_ray(
        str(folder),
        photos,
        batch,
        index,
        ray_engine.RayOptions(),
        lambda message: None,
        lambda images: done.append((time.perf_counter(), images)),
    )
    total = time.perf_counter() - start
    shutil.rmtree(index)
    first = done[0][0] - start
    later = sum(images for _, images in done[1:])
    rate = later / (done[-1][0] - done[0][0]) if len(done) > 1 else float("nan")
    return total, first, rate


def measure(quick: bool, photos: int | None, directory: Path) -> list[Row]:
    batch = 4 if quick else 32
    count = photos or (6 * batch if quick else 30 * batch)
    scale = dataclasses.replace(QUICK if quick else FULL, photos=count)
    folder = save_model_folder(build_model(scale), build_processor(scale), directory / "model")
    (directory / "photos").mkdir()
    photos = make_photos(directory / "photos", scale)
    import ray

    start = time.perf_counter()
    ray_engine.start_ray()
    ray_start = time.perf_counter() - start
    repeats = 1 if quick else 2
    local, ray_total, ray_first, ray_rate = [], [], [], []
    try:
        for _ in range(repeats):
            local.append(local_run(folder, photos, batch))
            total, first, rate = ray_run(folder, photos, batch, directory / "ray.index")
            ray_total.append(total)
            ray_first.append(first)
            ray_rate.append(rate)
    finally:
        ray.shutdown()
    count = len(photos)
    local_speed = count / statistics.median(local)
    ray_speed = count / statistics.median(ray_total)
    steady = statistics.median(ray_rate)
    cpus = os.cpu_count()
    reference = f"local engine: {local_speed:.1f}/s"
    return [
        Row(f"local engine images/s, {count} photos, batch {batch}", local_speed, "/s"),
        Row(f"Ray engine images/s, {cpus} CPUs, whole run", ray_speed, "/s", reference,
            ray_speed / local_speed),
        Row(f"Ray engine images/s, {cpus} CPUs, after the first batch", steady, "/s", reference,
            steady / local_speed),
        Row("Ray engine: actor start, model load and first batch", statistics.median(ray_first),
            "s"),
        Row("Ray start on this machine (once per run of cli.py index)", ray_start, "s"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, 24 photos: a smoke test")
    parser.add_argument("--photos", type=int, metavar="N", help="folder size (default 960)")
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        rows = measure(args.quick, args.photos, Path(directory))
    size = "tiny (--quick)" if args.quick else "full-size"
    print_table(rows, f"Embedding engines, {size} model with random weights")
    print(f"\n1-minute load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
