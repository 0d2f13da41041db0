"""The onnxruntime backend against torch, float32 and int8, side by side in one run.

    python -m benchmarks.onnx [--quick] [--texts N] [--repeats N]   # these rows alone

Called by benchmarks/run.py on the model folder it saved; both import benchmarks/harness.py.
onnxruntime's idle threads are told not to spin (inference/onnx_backend.py does that for every
session), so a session that is not running leaves the cores to whichever one is being timed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.harness import (
    BATCH,
    FULL,
    QUICK,
    ROOT,
    Row,
    Scale,
    build_model,
    build_processor,
    header,
    interleaved,
    make_captions,
    print_table,
)
from conversion.onnx_export import export_onnx
from inference.onnx_backend import OnnxTurkishCLIP
from turkish_clip import TurkishCLIPModel, save_model_folder

LOAD_SCRIPT = """
import json, sys, time
sys.path.insert(0, sys.argv[2])

def peak_mb():
    # VmHWM belongs to this process alone (ru_maxrss would start at the parent's size).
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024

from inference.onnx_backend import OnnxTurkishCLIP
from PIL import Image

imports = peak_mb()
start = time.perf_counter()
model = OnnxTurkishCLIP.from_pretrained(sys.argv[1])
model.encode_text(["bir kedi"])
model.encode_image(Image.new("RGB", (64, 64)))
used = time.perf_counter()
print(json.dumps({"load_s": used - start, "imports_mb": imports, "use_peak_mb": peak_mb()}))
"""


def onnx_rows(
    folder: Path,
    torch_fp32: TurkishCLIPModel,
    torch_int8: TurkishCLIPModel,
    processor,
    texts: list[str],
    scale: Scale,
) -> list[Row]:
    """Exports `folder` (float32 and int8), then times the four paths on both towers."""
    export_onnx(folder, int8=True)
    onnx_fp32 = OnnxTurkishCLIP.from_pretrained(folder)
    onnx_int8 = OnnxTurkishCLIP.from_pretrained(folder, int8=True)
    models = {
        "torch fp32": torch_fp32,
        "torch int8": torch_int8,
        "onnx fp32": onnx_fp32,
        "onnx int8": onnx_int8,
    }
    rows = text_rows(models, processor, texts, scale.repeats)
    rows += image_rows(models, scale)
    rows += loading_rows(folder, scale)
    return rows


def text_rows(models: dict, processor, texts: list[str], repeats: int) -> list[Row]:
    """encode_text on the benchmark's mixed-length captions, length-sorted batches of 32."""

    def encode(model):
        return model.encode_text(texts, batch_size=BATCH, processor=processor)

    speeds = _speeds(models, encode, len(texts), repeats)
    cosine = float((encode(models["onnx fp32"]) * encode(models["onnx int8"])).sum(-1).min())
    what = f"text embeddings/s, encode_text, {len(texts)} captions"
    return _compared(speeds, what) + [
        Row(f"onnx int8 text, min cosine to onnx float32 over {len(texts)} embeddings", cosine, "")
    ]


def image_rows(models: dict, scale: Scale) -> list[Row]:
    """The image tower alone at batch 32, as the torch image row measures it."""
    pixels = torch.randn(BATCH, 3, scale.image_size, scale.image_size)

    @torch.inference_mode()
    def embed(model):
        return torch.nn.functional.normalize(model.embed_pixel_values(pixels), dim=-1)

    speeds = _speeds(models, embed, BATCH, scale.repeats)
    cosine = float((embed(models["onnx fp32"]) * embed(models["onnx int8"])).sum(-1).min())
    return _compared(speeds, f"image embeddings/s, batch {BATCH}") + [
        Row(f"onnx int8 image, min cosine to onnx float32 over {BATCH} embeddings", cosine, "")
    ]


def loading_rows(folder: Path, scale: Scale) -> list[Row]:
    """The ONNX backend loaded in a fresh interpreter: time to the first text and image
    embedding (sessions start on first use), and the process's peak resident memory."""
    runs = [_load_once(folder) for _ in range(scale.load_repeats + 1)][1:]  # first warms caches

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    imports = f"after imports: {median('imports_mb'):.0f} MB"
    return [
        Row(
            "onnx backend: from_pretrained + first text and image embedding", median("load_s"), "s"
        ),
        Row("onnx backend: peak resident memory after them", median("use_peak_mb"), "MB", imports),
    ]


def _speeds(models: dict, run, count: int, repeats: int) -> dict[str, float]:
    seconds = interleaved({name: lambda m=model: run(m) for name, model in models.items()}, repeats)
    return {name: count / value for name, value in seconds.items()}


def _compared(speeds: dict[str, float], what: str) -> list[Row]:
    fp32, int8 = speeds["torch fp32"], speeds["torch int8"]
    return [
        Row(
            f"onnx fp32 {what}",
            speeds["onnx fp32"],
            "/s",
            f"torch fp32: {fp32:.1f}/s",
            speeds["onnx fp32"] / fp32,
        ),
        Row(f"torch int8 {what}", int8, "/s", f"torch fp32: {fp32:.1f}/s", int8 / fp32),
        Row(
            f"onnx int8 {what}",
            speeds["onnx int8"],
            "/s",
            f"torch fp32: {fp32:.1f}/s",
            speeds["onnx int8"] / fp32,
        ),
        Row(
            f"onnx int8 {what}, against torch int8",
            speeds["onnx int8"],
            "/s",
            f"torch int8: {int8:.1f}/s",
            speeds["onnx int8"] / int8,
        ),
    ]


def _load_once(folder: Path) -> dict:
    command = [sys.executable, "-c", LOAD_SCRIPT, str(folder), str(ROOT)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, few runs: a smoke test")
    parser.add_argument("--texts", type=int, help="captions to embed (default: the scale's)")
    parser.add_argument("--repeats", type=int, help="timed runs of each (default: the scale's)")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    scale = dataclasses.replace(
        scale, texts=args.texts or scale.texts, repeats=args.repeats or scale.repeats
    )
    load_before = os.getloadavg()[0]
    model, processor = build_model(scale), build_processor(scale)
    with tempfile.TemporaryDirectory() as directory:
        folder = save_model_folder(model, processor, Path(directory) / "model")
        int8 = TurkishCLIPModel.from_pretrained(folder, int8=True).eval()
        rows = onnx_rows(folder, model, int8, processor, make_captions(scale.texts), scale)
    print_table(rows, header(scale))
    print(f"\n1-minute load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    return rows


if __name__ == "__main__":
    main()
