"""Train Turkish CLIP's text tower by distillation from an English CLIP teacher.

    python train.py --student turkish-clip --teacher ViT-B/32 \\
        --train pairs.tsv --eval eval.tsv --output turkish-clip-trained \\
        --frozen-epochs 2 --epochs 3

Without --student, a new student is built from the teacher (its image tower, logit_scale and
logit_bias) and --text-encoder (with a fresh head), e.g. of SigLIP 2:

    python train.py --teacher google/siglip2-base-patch16-224 \\
        --text-encoder dbmdz/distilbert-base-turkish-cased --train pairs.tsv --eval eval.tsv \\
        --output turkish-siglip2

The same command runs on a CPU, on one GPU, and under `accelerate launch` or
`torchrun --nproc_per_node N` (DDP). The work happens in `training/`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from terminal.arguments import HelpFormatter
from training.data import DataError, PairSource
from training.options import OBJECTIVES

DEFAULT_CACHE = Path.home() / ".cache" / "turkish-clip" / "teacher-targets"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from training.loop import train  # heavy imports after --help
    from training.options import TrainingOptions

    try:
        options = TrainingOptions(
            student=args.student,
            teacher=args.teacher,
            train=_source(args, args.train, args.train_split),
            eval=_source(args, args.eval, args.eval_split),
            output=Path(args.output),
            text_encoder=args.text_encoder,
            dataset_names=tuple(args.dataset_name),
            frozen_epochs=args.frozen_epochs,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            encoder_learning_rate=args.encoder_learning_rate,
            weight_decay=args.weight_decay,
            objective=args.objective,
            seed=args.seed,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            gradient_checkpointing=args.gradient_checkpointing,
            mixed_precision=args.mixed_precision,
            checkpoint_steps=args.checkpoint_steps,
            keep_checkpoints=args.keep_checkpoints,
            checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else None,
            cache_dir=Path(args.cache_dir),
            teacher_batch_size=args.teacher_batch_size,
            eval_batch_size=args.eval_batch_size,
            resume=args.resume,
            stop_after_steps=args.stop_after_steps,
            cpu=args.cpu,
        )
        with _library_bars_off(not sys.stderr.isatty()):  # bars are for a person watching
            train(options)
    except (DataError, ValueError, FileExistsError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _library_bars_off(off: bool) -> Iterator[None]:
    """transformers' per-tensor loading and writing bars, and huggingface_hub's download bars,
    off for the run (where `off`) and back as they were after it; train.py's own bars check the
    terminal themselves."""
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )
    from transformers.utils import logging

    if not off:
        yield
        return
    transformers_on, hub_on = logging.is_progress_bar_enabled(), not are_progress_bars_disabled()
    logging.disable_progress_bar()
    disable_progress_bars()
    try:
        yield
    finally:
        if transformers_on:
            logging.enable_progress_bar()
        if hub_on:
            enable_progress_bars()


def _source(args: argparse.Namespace, location: str, split: str) -> PairSource:
    return PairSource(location, args.english_column, args.turkish_column, split)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return parser().parse_args(argv)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    models = parser.add_argument_group("models")
    models.add_argument(
        "--student",
        help="Turkish CLIP folder or Hub id to train (default: none, and a new student is built "
        "from --teacher's image tower and --text-encoder)",
    )
    models.add_argument(
        "--text-encoder",
        metavar="NAME_OR_PATH",
        help="replace the student's text tower by this transformers encoder checkpoint "
        "(DistilBERT, BERT, XLM-R, ...) with a fresh Linear head (default: the student's own)",
    )
    models.add_argument(
        "--teacher",
        required=True,
        help="OpenAI clip archive path or model name (ViT-B/32, ViT-B/16, ViT-L/14, "
        "ViT-L/14@336px), or a transformers CLIPModel or SiglipModel folder or Hub id",
    )
    data = parser.add_argument_group("data")
    for name in ("train", "eval"):
        data.add_argument(
            f"--{name}",
            required=True,
            help="TSV (english<TAB>turkish), JSONL, datasets folder or Hub dataset id",
        )
    data.add_argument(
        "--dataset-name",
        action="append",
        default=[],
        metavar="NAME",
        help="what local pairs were made from (coco for translated COCO captions), listed in "
        "the model card's datasets; may be repeated (default: none)",
    )
    data.add_argument("--english-column", default="en", help="JSONL/datasets field")
    data.add_argument("--turkish-column", default="tr", help="JSONL/datasets field")
    data.add_argument("--train-split", default="train", help="split of a dataset")
    data.add_argument("--eval-split", default="validation", help="split of a dataset")
    data.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="teacher targets")
    schedule = parser.add_argument_group("schedule")
    schedule.add_argument("--frozen-epochs", type=int, default=1, help="stage 1: only the head")
    schedule.add_argument("--epochs", type=int, default=1, help="stage 2: the whole text tower")
    schedule.add_argument("--batch-size", type=int, default=32, help="per process")
    schedule.add_argument("--learning-rate", type=float, default=1e-4, help="head")
    schedule.add_argument(
        "--encoder-learning-rate",
        type=float,
        help="encoder in stage 2 (default: --learning-rate)",
    )
    schedule.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's")
    schedule.add_argument(
        "--objective", choices=OBJECTIVES, default="mse", help="distance to the teacher"
    )
    schedule.add_argument("--seed", type=int, default=0, help="data order, dropout, heads")
    schedule.add_argument(
        "--gradient-accumulation-steps", type=int, default=1, help="batches per optimizer step"
    )
    schedule.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="recompute activations in the backward pass: less memory, more time (default: off)",
    )
    schedule.add_argument(
        "--mixed-precision",
        choices=("auto", "no", "bf16", "fp16"),
        default="auto",
        help="auto: bf16 on GPUs that have it, else float32",
    )
    runs = parser.add_argument_group("output and checkpoints")
    runs.add_argument("--output", required=True, help="model folder to write (must not exist)")
    runs.add_argument(
        "--checkpoint-steps", type=int, default=500, metavar="N", help="checkpoint every N steps"
    )
    runs.add_argument("--keep-checkpoints", type=int, default=2, help="how many to keep")
    runs.add_argument(
        "--checkpoint-dir",
        help="where checkpoints go (default: OUTPUT.checkpoints beside --output)",
    )
    runs.add_argument(
        "--resume",
        action="store_true",
        help="continue from the newest complete checkpoint (default: start afresh)",
    )
    runs.add_argument(
        "--stop-after-steps",
        type=int,
        metavar="N",
        help="stop after N optimizer steps (1 or more), checkpointed, as an interruption would "
        "(default: run to the end)",
    )
    runs.add_argument(
        "--cpu",
        action="store_true",
        help="train on the CPU even if a GPU exists (default: a GPU where there is one)",
    )
    runs.add_argument(
        "--teacher-batch-size", type=int, default=256, help="captions per teacher forward pass"
    )
    runs.add_argument(
        "--eval-batch-size", type=int, default=128, help="captions per evaluation forward pass"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
