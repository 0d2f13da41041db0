"""Image towers side by side: a DistilBERT student of ViT-B/32, ViT-L/14 and SigLIP 2 base on this
CPU, with random weights at full size.

    python benchmarks/towers.py           # full size: several minutes on 2 cores
    python benchmarks/towers.py --quick   # tiny configs: every row runs, nothing more

For each student: text and image embeddings per second, the weights' size and the peak resident
memory of a process that loads the model and embeds one batch of each. The text tower is the same
DistilBERT in all three (its head ends in the teacher's width), so its speed differs only by
noise; the image tower is what a stronger teacher costs. Speed is timed in one process, the runs
of the three interleaved so that load from other processes falls on all alike; memory is measured
in one fresh process per tower, so one model's memory does not hide another's. Weights are random
and nothing is downloaded: speed and memory depend on sizes, not on values.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # The checkout instead of this script's folder, whose onnx.py would shadow the `onnx` package.
    sys.path[0] = str(ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from benchmarks.harness import interleaved  # noqa: E402
from turkish_clip import TurkishCLIPConfig, TurkishCLIPModel  # noqa: E402

# The three teachers' image towers (transformers' configs of openai/clip-vit-base-patch32,
# openai/clip-vit-large-patch14 and google/siglip2-base-patch16-224), with the width each
# student's text head ends in.
TOWERS = {
    "ViT-B/32": dict(vision_config={}, projection_dim=512),
    "ViT-L/14": dict(
        vision_config=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=224,
            patch_size=14,
            hidden_act="quick_gelu",
            layer_norm_eps=1e-5,
        ),
        projection_dim=768,
    ),
    "SigLIP 2 base": dict(
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            image_size=224,
            patch_size=16,
        ),
        projection_dim=768,
    ),
}
TINY_TEXT = dict(
    vocab_size=468, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=512
)
TINY_VISION = dict(intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
TINY_TOWERS = {
    "ViT-B/32": dict(
        vision_config=dict(TINY_VISION, hidden_size=32, image_size=32, patch_size=8),
        projection_dim=16,
    ),
    "ViT-L/14": dict(
        vision_config=dict(TINY_VISION, hidden_size=48, image_size=28, patch_size=7),
        projection_dim=24,
    ),
    "SigLIP 2 base": dict(
        vision_config=dict(
            TINY_VISION,
            model_type="siglip_vision_model",
            hidden_size=24,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=24,
    ),
}
TEXT_BATCH = 32
IMAGE_BATCH = 8


def tower_configs(quick: bool) -> dict[str, dict]:
    """TurkishCLIPConfig arguments of each student: DistilBERT (Turkish vocabulary) beside each
    tower, full size or tiny."""
    if quick:
        return {name: dict(config, text_config=TINY_TEXT) for name, config in TINY_TOWERS.items()}
    return {name: dict(config) for name, config in TOWERS.items()}


def build(config: dict) -> TurkishCLIPModel:
    torch.manual_seed(0)
    return TurkishCLIPModel(TurkishCLIPConfig(**config)).eval()


def inputs(model: TurkishCLIPModel, texts: int, images: int) -> tuple[list, torch.Tensor]:
    """Token ids of caption-like lengths (8 to 32) and random pixels at the tower's size."""
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(8, 33, (texts,), generator=generator).tolist()
    vocab = model.config.text_config.vocab_size
    token_ids = [torch.randint(5, vocab, (n,), generator=generator).tolist() for n in lengths]
    side = model.config.vision_config.image_size
    return token_ids, torch.randn(images, 3, side, side, generator=generator)


def embedding_functions(model: TurkishCLIPModel) -> dict[str, Callable[[], object]]:
    token_ids, pixels = inputs(model, TEXT_BATCH, IMAGE_BATCH)
    pad = model.config.text_config.pad_token_id or 0
    return {
        "text": lambda: model.embed_token_ids(token_ids, pad, batch_size=TEXT_BATCH),
        "image": lambda: model.embed_pixel_values(pixels),
    }


def speeds(configs: dict[str, dict], repeats: int) -> dict[str, dict[str, float]]:
    """Text and image embeddings per second of each student, the runs interleaved."""
    functions = {}
    with torch.inference_mode():
        for name, config in configs.items():
            for kind, function in embedding_functions(build(config)).items():
                functions[name, kind] = function
        seconds = interleaved(functions, repeats)
    batch = {"text": TEXT_BATCH, "image": IMAGE_BATCH}
    return {name: {kind: batch[kind] / seconds[name, kind] for kind in batch} for name in configs}


def memory(name: str, quick: bool) -> dict[str, float]:
    """Weights and peak resident memory of one student, measured in a fresh process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-of", name]
    done = subprocess.run(
        command + (["--quick"] if quick else []), capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring the memory of {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_memory(config: dict) -> dict[str, float]:
    """In this process: build the student, embed one batch of each kind, report sizes in MiB."""
    model = build(config)
    with torch.inference_mode():
        for function in embedding_functions(model).values():
            function()
    mib = 1024 * 1024
    image_side = (*model.vision_model.parameters(), *model.visual_projection.parameters())
    image_bytes = sum(p.numel() * p.element_size() for p in image_side)
    total_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    # ru_maxrss is in KiB on Linux.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "image_params": sum(p.numel() for p in image_side) / 1e6,
        "image_mib": image_bytes / mib,
        "total_mib": total_bytes / mib,
        "peak_mib": peak,
        "dim": model.config.projection_dim,
    }


ROWS = (
    ("image tower parameters (millions)", "image_params", "{:.4g}"),
    ("embedding dimension", "dim", "{:.0f}"),
    ("weights, image tower, float32 (MiB)", "image_mib", "{:,.4g}"),
    ("weights, whole student, float32 (MiB)", "total_mib", "{:,.4g}"),
    ("peak resident memory, load + one batch each (MiB)", "peak_mib", "{:,.0f}"),
    (f"text embeddings/s, batch {TEXT_BATCH}", "text", "{:,.1f}"),
    (f"image embeddings/s, batch {IMAGE_BATCH}", "image", "{:,.3g}"),
)


def table(figures: dict[str, dict[str, float]], quick: bool) -> str:
    names = list(figures)
    size = "tiny configs" if quick else "full size"
    lines = [
        f"DistilBERT students of three image towers, random weights ({size}), CPU float32, "
        f"{torch.get_num_threads()} threads",
        "",
        "| measurement | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for label, key, form in ROWS:
        cells = [form.format(figures[name][key]) for name in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configs: checks that it runs")
    parser.add_argument("--repeats", type=int, help="timed calls of each (default 5; quick 1)")
    parser.add_argument("--memory-of", choices=list(TOWERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configs = tower_configs(args.quick)
    if args.memory_of:  # the child process of `memory`
        print(json.dumps(measure_memory(configs[args.memory_of])))
        return {}
    repeats = args.repeats or (1 if args.quick else 5)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    figures = {name: memory(name, args.quick) for name in configs}
    for name, rates in speeds(configs, repeats).items():
        figures[name].update(rates)
    print(table(figures, args.quick))
    return figures


if __name__ == "__main__":
    main()
