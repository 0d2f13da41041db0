"""Throughput on a GPU in bf16: text and image embeddings at batch 256, and a training step.

    python benchmarks/gpu.py                      # full-size model, random weights, on the GPU
    python benchmarks/gpu.py --quick --device cpu # tiny model on the CPU: checks that it runs

One short run gives every figure the README's GPU table needs, so that a machine lent for a few
minutes is used once, and the same text and image rows for DistilBERT students of the three image
towers of benchmarks/towers.py (ViT-B/32, ViT-L/14, SigLIP 2 base), with each one's peak GPU
memory. Weights are random and nothing is downloaded: speed depends on sizes and
sequence lengths, not on values. Captions have caption-like lengths (8 to 32 tokens), each batch
padded to its longest; images are random 224x224 pixel values (decoding is the CPU's work and is
measured in benchmarks/run.py).
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.run import TINY_VISION  # noqa: E402
from benchmarks.towers import tower_configs  # noqa: E402
from benchmarks.training import TINY, training_samples_per_second  # noqa: E402
from turkish_clip import TurkishCLIPConfig, TurkishCLIPModel  # noqa: E402


def per_second(run: Callable[[], object], items: int, repeats: int, device: str) -> float:
    """Median items/s over `repeats` timed calls, after one warm-up call."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return items / statistics.median(times[1:])


def embedding_rates(config: dict, batch: int, repeats: int, device: str) -> dict[str, float]:
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    model = TurkishCLIPModel(TurkishCLIPConfig(**config)).to(device, dtype).eval()
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(8, 33, (batch,), generator=generator)
    vocab = model.config.text_config.vocab_size
    input_ids = torch.randint(5, vocab, (batch, int(lengths.max())), generator=generator)
    attention_mask = (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long()
    side = model.config.vision_config.image_size
    pixels = torch.randn(batch, 3, side, side, generator=generator)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    pixels = pixels.to(device, dtype)
    with torch.inference_mode():
        text = per_second(
            lambda: model.get_text_features(input_ids, attention_mask), batch, repeats, device
        )
        image = per_second(lambda: model.embed_pixel_values(pixels), batch, repeats, device)
    return {"text": text, "image": image}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, a few steps")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no GPU here: run it on a GPU machine, or pass --device cpu")
    config = dict(TINY, vision_config=TINY_VISION) if args.quick else {}
    repeats = 2 if args.quick else 10
    rates = embedding_rates(config, args.batch_size, repeats, args.device)
    rates["training"] = training_samples_per_second(
        TINY if args.quick else {}, args.batch_size, repeats, gpu=args.device == "cuda"
    )
    card = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    precision = "bf16" if args.device == "cuda" else "float32"
    size = "tiny" if args.quick else "full-size"
    print(f"{card}, {size} model, {precision}, batch {args.batch_size}")
    print(f"  text embeddings/s        {rates['text']:12,.0f}")
    print(f"  image embeddings/s       {rates['image']:12,.0f}")
    print(f"  training samples/s       {rates['training']:12,.0f}")
    for name, tower in tower_configs(args.quick).items():
        if args.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        tower_rates = embedding_rates(tower, args.batch_size, repeats, args.device)
        for kind in ("text", "image"):
            rates[f"{name} {kind}"] = tower_rates[kind]
            print(f"  {name} student: {kind} embeddings/s {tower_rates[kind]:12,.0f}")
        if args.device == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**20
            print(f"  {name} student: peak GPU memory (MiB) {peak:12,.0f}")
    return rates


if __name__ == "__main__":
    main()
