"""The cost of the original's data recipe on this machine: captions translated per second by an
opus-mt-tc-big-en-tr-sized Marian model, beside training samples per second.

    python benchmarks/translation.py            # full-size Marian and student: minutes on 2 cores
    python benchmarks/translation.py --gpu      # the same on the first GPU, bf16
    python benchmarks/translation.py --quick    # tiny models: checks that every row runs

Weights are random and nothing is downloaded: speed depends on sizes and lengths, not on values.
Source captions are random token ids of COCO-caption length (12 to 20 tokens), and every
translation is made exactly `--new-tokens` tokens long (a random model would not stop by itself;
Turkish captions of COCO's are about that long), so each figure is what `dataset.py translate`
does per caption: one encoder pass, then that many decoder steps per beam. Each batch is padded
to its longest caption. The training figure is benchmarks/training.py's.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.training import TINY, training_samples_per_second  # noqa: E402

# Helsinki-NLP/opus-mt-tc-big-en-tr's shape ("transformer-big"): the vocabulary size is about
# that of its SentencePiece vocabularies.
MARIAN_BIG = dict(
    vocab_size=57_000,
    d_model=1024,
    encoder_layers=6,
    decoder_layers=6,
    encoder_attention_heads=16,
    decoder_attention_heads=16,
    encoder_ffn_dim=4096,
    decoder_ffn_dim=4096,
)
MARIAN_TINY = dict(
    vocab_size=200,
    d_model=16,
    encoder_layers=1,
    decoder_layers=1,
    encoder_attention_heads=2,
    decoder_attention_heads=2,
    encoder_ffn_dim=32,
    decoder_ffn_dim=32,
)


def translation_captions_per_second(
    sizes: dict, batch_size: int, beams: int, new_tokens: int, batches: int, device: str
) -> float:
    """Median captions/s over `batches` timed `generate` calls, after one warm-up call."""
    from transformers import MarianConfig, MarianMTModel

    pad = sizes["vocab_size"] - 1
    config = MarianConfig(**sizes, pad_token_id=pad, decoder_start_token_id=pad, eos_token_id=0)
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    model = MarianMTModel(config).to(device=device, dtype=dtype).eval()
    times = []
    for seed in range(batches + 1):
        input_ids, attention_mask = _captions(config.vocab_size, batch_size, seed, device)
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                num_beams=beams,
                min_new_tokens=new_tokens,
                max_new_tokens=new_tokens,
                do_sample=False,
            )
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times[1:])


def _captions(vocab: int, size: int, seed: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(12, 21, (size,), generator=generator)
    input_ids = torch.randint(5, vocab - 1, (size, int(lengths.max())), generator=generator)
    attention_mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
    input_ids[:, -1] = 0  # the end-of-sequence token closes the longest caption
    input_ids = torch.where(attention_mask.bool(), input_ids, vocab - 1)
    return input_ids.to(device), attention_mask.to(device)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="bf16 on the first GPU")
    parser.add_argument("--quick", action="store_true", help="tiny models, one timed batch")
    parser.add_argument("--batch-size", type=int, default=32, help="translation batch (32)")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens per translation (16)")
    parser.add_argument("--batches", type=int, default=2, help="timed batches per row (2)")
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        parser.error("--gpu: no GPU is visible to torch")
    device = "cuda" if args.gpu else "cpu"
    where = torch.cuda.get_device_name() if args.gpu else f"CPU, {torch.get_num_threads()} threads"
    marian, student = (MARIAN_TINY, TINY) if args.quick else (MARIAN_BIG, {})
    size = "tiny" if args.quick else "full-size"
    batches = 1 if args.quick else args.batches
    precision = "bf16" if args.gpu else "float32"
    rows = {}
    for beams in (1, 4):
        name = (
            f"translation captions/s, {size} Marian, batch {args.batch_size}, {beams} beam(s), "
            f"{args.new_tokens} new tokens"
        )
        rows[name] = translation_captions_per_second(
            marian, args.batch_size, beams, args.new_tokens, batches, device
        )
    training_batch = 256 if args.gpu else 32
    name = f"training samples/s, {size} student, batch {training_batch}"
    rows[name] = training_samples_per_second(
        student, training_batch, 1 if args.quick else 3, gpu=args.gpu
    )
    print(f"{where}, {precision}")
    print("| measurement | value |")
    print("|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value:,.1f} |")
    return rows


if __name__ == "__main__":
    main()
