"""Training throughput of the text tower: samples per second of whole optimizer steps.

    python benchmarks/training.py                 # this CPU: full-size student, batch 32, float32
    python benchmarks/training.py --gpu           # a GPU: full-size student, batch 256, bf16
    python benchmarks/training.py --quick         # tiny student: checks that it runs

A step is what train.py runs in stage 2: the student's text embeddings (encoder, mean pooling,
head), the MSE to teacher targets, the backward pass and AdamW, through accelerate. Weights are
random and nothing is downloaded: speed depends on sizes and sequence lengths, not on values.
Token ids are random, with caption-like lengths (8 to 32 tokens), each batch padded to its
longest caption; the teacher's targets are cached in real runs, so they are random here too.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from training.objectives import mse  # noqa: E402
from training.student import TextStudent  # noqa: E402
from turkish_clip import TurkishCLIPConfig, TurkishCLIPModel  # noqa: E402

TINY_TEXT = dict(
    vocab_size=468, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=512
)
TINY = dict(text_config=TINY_TEXT, projection_dim=16)


def training_samples_per_second(
    config: dict, batch_size: int, steps: int, gpu: bool = False, seed: int = 0
) -> float:
    """Median samples/s over `steps` timed optimizer steps, after one warm-up step."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not gpu, mixed_precision="bf16" if gpu else "no")
    torch.manual_seed(seed)
    model = TurkishCLIPModel(TurkishCLIPConfig(**config))
    student = TextStudent(model).train()
    optimizer = torch.optim.AdamW(student.parameter_groups(1e-4, 1e-4))
    student, optimizer = accelerator.prepare(student, optimizer)
    batches = [
        _batch(model.config, batch_size, accelerator.device, seed + i) for i in range(steps + 1)
    ]
    times = []
    for input_ids, attention_mask, targets in batches:
        start = time.perf_counter()
        loss = mse(student(input_ids=input_ids, attention_mask=attention_mask), targets)
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        if gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times[1:])


def _batch(config: TurkishCLIPConfig, size: int, device, seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(8, 33, (size,), generator=generator)
    vocab = config.text_config.vocab_size
    input_ids = torch.randint(5, vocab, (size, int(lengths.max())), generator=generator)
    attention_mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
    input_ids = input_ids * attention_mask  # padding id 0
    targets = torch.randn(size, config.projection_dim, generator=generator)
    return input_ids.to(device), attention_mask.to(device), targets.to(device)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="bf16 on the first GPU, batch 256")
    parser.add_argument("--quick", action="store_true", help="tiny student, one timed step")
    parser.add_argument("--batch-size", type=int, help="default 32 on the CPU, 256 on a GPU")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (5)")
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu: no GPU is visible to torch")
    batch = args.batch_size or (256 if args.gpu else 32)
    config, steps = (TINY, 1) if args.quick else ({}, args.steps)
    speed = training_samples_per_second(config, batch, steps, gpu=args.gpu)
    where = torch.cuda.get_device_name() if args.gpu else f"CPU, {torch.get_num_threads()} threads"
    precision = "bf16" if args.gpu else "float32"
    size = "tiny" if args.quick else "full-size"
    print(f"training samples/s, {size} student, batch {batch}, {precision}, {where}: {speed:.1f}")
    return speed


if __name__ == "__main__":
    main()
