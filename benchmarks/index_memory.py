"""Peak resident memory of `index`'s embedding step on large photos: decoding a whole batch of
full-resolution photos before preprocessing it (the old way) against streaming each photo
through decode -> preprocess -> drop (search/embedding.py).

    python benchmarks/index_memory.py            # 32 photos of 48 MP, full-size model: ~8 GB
    python benchmarks/index_memory.py --quick    # 32 photos of 1 MP, tiny model: seconds

Each way runs in its own fresh process, which reports its own high-water mark (VmHWM), so one
way's memory never shows in the other's figure. Weights are random: memory does not depend on
their values.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = 32
BATCH = 32
FULL = {"width": 8000, "height": 6000, "model": "full-size"}  # 48 MP, a modern phone's sensor
QUICK = {"width": 1200, "height": 900, "model": "tiny"}


def make_photos(folder: Path, width: int, height: int) -> list[Path]:
    """One camera-like JPEG (smooth light and noise), copied under PHOTOS names."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = (x / width * 160 + y / height * 60)[..., None] + np.array([40.0, 20.0, 0.0])
    pixels = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    first = folder / "photo-00.jpg"
    Image.fromarray(pixels).save(first, quality=90)
    del pixels, base
    data = first.read_bytes()
    paths = [first]
    for number in range(1, PHOTOS):
        path = folder / f"photo-{number:02d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths


def build_model(size: str):
    import torch
    from transformers import DistilBertTokenizerFast

    from turkish_clip import (
        TurkishCLIPConfig,
        TurkishCLIPImageProcessor,
        TurkishCLIPModel,
        TurkishCLIPProcessor,
    )

    if size == "tiny":
        config = TurkishCLIPConfig(
            text_config=dict(vocab_size=468, dim=32, n_layers=2, n_heads=4, hidden_dim=64),
            vision_config=dict(
                hidden_size=64,
                intermediate_size=128,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=224,
                patch_size=32,
                projection_dim=16,
            ),
            projection_dim=16,
        )
    else:
        config = TurkishCLIPConfig()
    torch.manual_seed(0)
    model = TurkishCLIPModel(config).eval()
    tokenizer = DistilBertTokenizerFast.from_pretrained(ROOT / "tests/fixtures/tf_distilbert")
    model.processor = TurkishCLIPProcessor(
        image_processor=TurkishCLIPImageProcessor(), tokenizer=tokenizer
    )
    return model


def old_way(model, paths: list[Path]) -> None:
    """What `index` did before: every photo of a batch decoded, then the batch preprocessed."""
    from turkish_clip.image_loading import load_image

    max_pixels = model.processor.image_processor.max_image_pixels
    for start in range(0, len(paths), BATCH):
        images = [load_image(path, max_pixels=max_pixels) for path in paths[start : start + BATCH]]
        model.encode_image(images, batch_size=len(images), return_numpy=True)


def new_way(model, paths: list[Path]) -> None:
    from search.embedding import embed_images

    result = embed_images(model, paths, BATCH)
    assert len(result.kept) == len(paths), result.failures


def peak_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def measure(way: str, model_size: str, folder: Path) -> None:
    """Runs in a child process: prints the peaks before and after embedding, as JSON."""
    import torch

    model = build_model(model_size)
    paths = sorted(folder.glob("*.jpg"))
    model.encode_image([paths[0]], return_numpy=True)  # warm-up: lazily built parts allocated
    before = peak_mb()
    (old_way if way == "old" else new_way)(model, paths)
    threads = torch.get_num_threads()
    print(json.dumps({"before_mb": before, "peak_mb": peak_mb(), "threads": threads}))


def run_child(way: str, model_size: str, folder: Path) -> dict:
    command = [sys.executable, __file__, "--child", way, model_size, str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"the {way} way failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 MP photos, tiny model")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        way, model_size, folder = args.child
        measure(way, model_size, Path(folder))
        return
    scale = QUICK if args.quick else FULL
    megapixels = round(scale["width"] * scale["height"] / 1e6)
    with tempfile.TemporaryDirectory(prefix="index-memory-") as temporary:
        folder = Path(temporary)
        make_photos(folder, scale["width"], scale["height"])
        old = run_child("old", scale["model"], folder)
        new = run_child("new", scale["model"], folder)
    print(
        f"index embedding step on CPU, {new['threads']} threads, {scale['model']} model "
        f"with random weights, batch {BATCH}"
    )
    print()
    print("| measurement | value | compared with | ratio |")
    print("| --- | ---: | --- | ---: |")
    name = f"index peak resident memory, {PHOTOS} photos of {megapixels} MP"
    reference = f"decode whole batch first: {old['peak_mb']:.0f} MB"
    ratio = new["peak_mb"] / old["peak_mb"]
    print(f"| {name} | {new['peak_mb']:.0f} MB | {reference} | {ratio:.2f}x |")
    before = f"index resident memory before embedding, {scale['model']} model"
    print(f"| {before} | {new['before_mb']:.0f} MB | old way: {old['before_mb']:.0f} MB |  |")


if __name__ == "__main__":
    main()
