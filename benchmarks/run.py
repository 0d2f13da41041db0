"""Speed and memory of Turkish CLIP on this machine's CPU, with random weights.

    python benchmarks/run.py                  # full-size model: several minutes on 2 cores
    python benchmarks/run.py --quick          # tiny model, seconds: every row runs, nothing more
    python benchmarks/run.py --original-python .venv-original/bin/python   # adds the TF original

Weights are random and nothing is downloaded: speed depends on layer sizes and sequence lengths,
not on weight values. Each figure is the median of several runs after a warm-up, and the runs of
two things compared are interleaved, so that load from other processes falls on both alike.
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # The checkout instead of this script's folder, whose onnx.py would otherwise shadow the
    # `onnx` package.
    sys.path[0] = str(ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from benchmarks.harness import (  # noqa: E402
    BATCH,
    ENSEMBLE,
    FULL,
    LABELS_PER_CALL,
    QUICK,
    TOKENIZER_DIR,
    Row,
    Scale,
    build_model,
    build_openai_clip,
    build_processor,
    header,
    import_clip,
    interleaved,
    make_captions,
    make_labels,
    make_photos,
    print_table,
)
from benchmarks.onnx import onnx_rows  # noqa: E402
from benchmarks.training import training_samples_per_second  # noqa: E402
from turkish_clip import TurkishCLIPModel, save_model_folder  # noqa: E402

# Measurements


@torch.inference_mode()
def padded_loop(model: TurkishCLIPModel, tokenizer, texts: list[str]) -> torch.Tensor:
    """The original project's way: input order, each batch padded to its longest text."""
    rows = []
    for start in range(0, len(texts), BATCH):
        tokens = tokenizer(texts[start : start + BATCH], padding=True, return_tensors="pt")
        states = model.text_model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1)
        rows.append(torch.nn.functional.normalize(model.text_projection(pooled), dim=-1))
    return torch.cat(rows)


def text_rows(model, processor, texts: list[str], scale: Scale) -> list[Row]:
    seconds = interleaved(
        {
            "sorted": lambda: model.encode_text(texts, batch_size=BATCH, processor=processor),
            "padded": lambda: padded_loop(model, processor.tokenizer, texts),
        },
        scale.repeats,
    )
    ours, padded = len(texts) / seconds["sorted"], len(texts) / seconds["padded"]
    name = f"text embeddings/s, encode_text, {len(texts)} captions"
    return [Row(name, ours, "/s", f"padded input-order loop: {padded:.1f}/s", ours / padded)]


def image_model_rows(model, clip_model, scale: Scale) -> list[Row]:
    pixels = torch.randn(BATCH, 3, scale.image_size, scale.image_size)
    with torch.inference_mode():
        seconds = interleaved(
            {
                "ours": lambda: model.get_image_features(pixels),
                "clip": lambda: clip_model.encode_image(pixels),
            },
            scale.repeats,
        )
    ours, theirs = BATCH / seconds["ours"], BATCH / seconds["clip"]
    name = f"image embeddings/s, get_image_features, batch {BATCH}"
    return [Row(name, ours, "/s", f"clip encode_image: {theirs:.1f}/s", ours / theirs)]


def preprocessing_rows(processor, photos: list[Path], scale: Scale) -> list[Row]:
    clip_transform = import_clip().clip._transform(scale.image_size)
    seconds = interleaved(
        {
            "ours": lambda: processor.image_processor(photos, return_tensors="pt"),
            "clip": lambda: torch.stack([clip_transform(Image.open(path)) for path in photos]),
        },
        scale.repeats,
    )
    ours, theirs = len(photos) / seconds["ours"], len(photos) / seconds["clip"]
    name = f"image preprocessing/s, {len(photos)} JPEG photos"
    return [Row(name, ours, "/s", f"clip preprocess: {theirs:.1f}/s", ours / theirs)]


def pipeline_rows(folder: Path, photo: Path, scale: Scale) -> list[Row]:
    classify = pipeline("zero-shot-image-classification", model=str(folder), trust_remote_code=True)
    rows = []
    for templates, what in ((ENSEMBLE[0], "1 template"), (list(ENSEMBLE), "10 templates")):
        first, repeated = pipeline_latency(classify, photo, templates, scale.repeats)
        name = f"zero-shot, 1 image x {LABELS_PER_CALL} labels, {what}"
        rows.append(Row(f"{name}: first call", first * 1000, "ms"))
        rows.append(
            Row(f"{name}: same labels again", repeated * 1000, "ms", "first call", repeated / first)
        )
    return rows


def pipeline_latency(classify, photo: Path, templates, repeats: int) -> tuple[float, float]:
    """Median seconds of a call with labels not seen before, and of the same call right after."""
    classify(str(photo), candidate_labels=make_labels(0), hypothesis_template=templates)
    first, repeated = [], []
    for call in range(1, repeats + 1):
        labels = make_labels(call)
        for times in (first, repeated):
            start = time.perf_counter()
            classify(str(photo), candidate_labels=labels, hypothesis_template=templates)
            times.append(time.perf_counter() - start)
    return statistics.median(first), statistics.median(repeated)


LOAD_SCRIPT = """
import json, resource, sys, time
import torch
import transformers.modeling_utils  # transformers imports lazily: count its import with the rest
from transformers import AutoModel

def peak_mb():
    # Linux carries ru_maxrss over fork and exec, so in a child of this big benchmark process it
    # starts at the parent's size; VmHWM belongs to this process's own memory map.
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

imports = peak_mb()
start = time.perf_counter()
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
loaded = time.perf_counter()
load_peak = peak_mb()
side = model.config.vision_config.image_size
with torch.inference_mode():
    model.get_text_features(torch.tensor([[2, 100, 200, 3]]))
    model.get_image_features(torch.zeros(1, 3, side, side))
used = time.perf_counter()
print(json.dumps({"load_s": loaded - start, "first_use_s": used - loaded, "imports_mb": imports,
                  "load_peak_mb": load_peak, "use_peak_mb": peak_mb()}))
"""


def loading_rows(folder: Path, scale: Scale) -> list[Row]:
    """from_pretrained in a fresh interpreter, whose peak RSS is then the loading's own.

    transformers 5 maps the safetensors file and reads weights only when they are first used, so
    the first embedding after loading is timed and measured too: that is when memory fills.
    """
    runs = [load_once(folder) for _ in range(scale.load_repeats + 1)][1:]  # first warms caches

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    imports = f"after imports: {median('imports_mb'):.0f} MB"
    return [
        Row("from_pretrained of the saved folder, fresh process", median("load_s"), "s"),
        Row("first text + image embedding after loading", median("first_use_s"), "s"),
        Row("peak resident memory after from_pretrained", median("load_peak_mb"), "MB", imports),
        Row("peak resident memory after the first embeddings", median("use_peak_mb"), "MB"),
    ]


def load_once(folder: Path) -> dict:
    command = [sys.executable, "-c", LOAD_SCRIPT, str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def int8_rows(fp32, int8, processor, texts, photos, repeats: int, tag: str) -> list[Row]:
    """int8 against float32 on the same weights: throughput per tower, and the worst cosine."""
    pixels = processor.image_processor(photos, return_tensors="pt")["pixel_values"]

    def encode(model: TurkishCLIPModel) -> torch.Tensor:
        return model.encode_text(texts, batch_size=BATCH, processor=processor)

    @torch.inference_mode()
    def embed(model: TurkishCLIPModel) -> torch.Tensor:
        return torch.nn.functional.normalize(model.embed_pixel_values(pixels), dim=-1)

    rows = []
    for tower, run, count in (("text", encode, len(texts)), ("image", embed, len(photos))):
        seconds = interleaved(
            {"fp32": lambda r=run: r(fp32), "int8": lambda r=run: r(int8)}, repeats
        )
        cosine = float((run(fp32) * run(int8)).sum(dim=-1).min())
        speed, fp32_speed = count / seconds["int8"], count / seconds["fp32"]
        rows.append(
            Row(
                f"int8 {tower} embeddings/s{tag}",
                speed,
                "/s",
                f"float32: {fp32_speed:.1f}/s",
                speed / fp32_speed,
            )
        )
        rows.append(
            Row(f"int8 {tower}, min cosine to float32 over {count} embeddings{tag}", cosine, "")
        )
    return rows


def original_rows(python: str, texts: list[str], model, ours: float, scale: Scale) -> list[Row]:
    """The original TensorFlow encode_text, run by another interpreter on the same captions."""
    text_config = model.config.text_config
    spec = {
        "texts": texts,
        "tokenizer": str(TOKENIZER_DIR),
        "sizes": {
            key: getattr(text_config, key)
            for key in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim")
        },
        "projection_dim": model.config.projection_dim,
        "batch_size": BATCH,
        "repeats": scale.repeats,
    }
    with tempfile.TemporaryDirectory() as directory:
        spec_path = Path(directory) / "spec.json"
        spec_path.write_text(json.dumps(spec, ensure_ascii=False))
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        command = [python, str(ROOT / "benchmarks" / "original_text.py"), str(spec_path)]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{python} could not run the original text path:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    theirs = result["embeddings_per_second"]
    name = f"original TF text path (TensorFlow {result['tensorflow']}): embeddings/s"
    return [Row(name, theirs, "/s", f"encode_text: {ours:.1f}/s", ours / theirs)]


def training_rows(scale: Scale) -> list[Row]:
    size = "full-size" if scale is FULL else "tiny"
    speed = training_samples_per_second(scale.config, BATCH, steps=scale.repeats)
    return [Row(f"training samples/s, {size} student, batch {BATCH}", speed, "/s")]


# Main


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    scale = QUICK if args.quick else FULL
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        rows = measure(scale, Path(directory), args.original_python)
    print_table(rows, header(scale))
    load_after = os.getloadavg()[0]
    print(f"\n1-minute load average before / after: {load_before:.2f} / {load_after:.2f}")
    return rows


def measure(scale: Scale, directory: Path, original_python: str | None) -> list[Row]:
    model, processor = build_model(scale), build_processor(scale)
    texts = make_captions(scale.texts)
    photos_dir = directory / "photos"
    photos_dir.mkdir()
    photos = make_photos(photos_dir, scale)
    rows = text_rows(model, processor, texts, scale)
    if original_python:
        rows += original_rows(original_python, texts, model, rows[0].value, scale)
    rows += image_model_rows(model, build_openai_clip(scale), scale)
    rows += preprocessing_rows(processor, photos, scale)
    folder = save_model_folder(model, processor, directory / "model")
    rows += pipeline_rows(folder, photos[0], scale)
    rows += loading_rows(folder, scale)
    int8 = TurkishCLIPModel.from_pretrained(folder, int8=True).eval()
    rows += int8_rows(model, int8, processor, texts, photos, scale.repeats, "")
    rows += onnx_rows(folder, model, int8, processor, texts, scale)
    del model, int8
    tiny = build_model(QUICK)
    tiny_int8 = copy.deepcopy(tiny).quantize_int8()
    tiny_rows = int8_rows(tiny, tiny_int8, build_processor(QUICK), texts, photos, 1, ", tiny")
    rows += [row for row in tiny_rows if "cosine" in row.name]
    return rows + training_rows(scale)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, few runs: a smoke test")
    parser.add_argument(
        "--original-python",
        metavar="PATH",
        help="interpreter of an environment with transformers<5 and TensorFlow "
        "(benchmarks/make_original_env.sh makes one): adds the original TF text path",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
