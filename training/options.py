"""The options of a training run, as `train.py` parses them, checked when they are made."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from training.data import PairSource

# numpy's and torch's generators take seeds in 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
# Options that must be at least 1; the others that are numbers must be 0 or more.
AT_LEAST_ONE = (
    "batch_size",
    "gradient_accumulation_steps",
    "checkpoint_steps",
    "keep_checkpoints",
    "teacher_batch_size",
    "eval_batch_size",
    "stop_after_steps",
)
# What the optimizer's state restores on --resume, and so must not change on one: AdamW keeps
# each group's learning rate and weight decay in its state dict.
OPTIMIZER_SETTINGS = ("learning_rate", "encoder_learning_rate", "weight_decay")

# The distances train.py can minimise (training/objectives.py); named here, light to import.
OBJECTIVES = ("mse", "cosine")


def flag(name: str) -> str:
    """The command line's name of an option: `learning_rate` -> `--learning-rate`."""
    return "--" + name.replace("_", "-")


@dataclass
class TrainingOptions:
    """Everything `train.py` passes in; see its --help for each option.

    Numbers are checked here, so a library caller gets the same refusals as the command line:
    every float finite and not negative (a NaN or infinite learning rate trains a NaN model).
    """

    student: str | None  # None: a new student is built from the teacher and text_encoder
    teacher: str
    train: PairSource
    eval: PairSource
    output: Path
    text_encoder: str | None = None
    dataset_names: tuple[str, ...] = ()  # what the pairs were made from, for the model card
    frozen_epochs: int = 1
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-4
    encoder_learning_rate: float | None = None
    weight_decay: float = 0.0
    objective: str = "mse"
    seed: int = 0
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    mixed_precision: str = "auto"
    checkpoint_steps: int = 500
    keep_checkpoints: int = 2
    checkpoint_dir: Path | None = None
    cache_dir: Path = field(
        default_factory=lambda: Path.home() / ".cache" / "turkish-clip" / "teacher-targets"
    )
    teacher_batch_size: int = 256
    eval_batch_size: int = 128
    resume: bool = False
    stop_after_steps: int | None = None
    cpu: bool = False

    def __post_init__(self) -> None:
        for option in fields(self):
            value = getattr(self, option.name)
            if value is None or isinstance(value, bool):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{flag(option.name)} must be a finite number, not {value}")
            if isinstance(value, (int, float)):
                least = 1 if option.name in AT_LEAST_ONE else 0
                if value < least:
                    what = "at least 1" if least else "0 or more"
                    raise ValueError(f"{flag(option.name)} must be {what}")
        if self.seed > MAX_SEED:
            raise ValueError(f"--seed must be at most {MAX_SEED}")

    @property
    def checkpoints(self) -> Path:
        return self.checkpoint_dir or self.output.with_name(self.output.name + ".checkpoints")

    @property
    def effective_encoder_learning_rate(self) -> float:
        """--encoder-learning-rate, or --learning-rate where it is not given (0 is a rate)."""
        if self.encoder_learning_rate is None:
            return self.learning_rate
        return self.encoder_learning_rate

    def signature(self) -> dict:
        """What must not change between a run and its resumption, keyed by attribute name.

        The digests of the data's and the teacher's content stand for --train, --eval and
        --teacher; the run adds them (see training/loop.py): a file's name says nothing once it
        is rewritten, and a moved file is still the same data.
        """
        keys = ("student", "text_encoder", "frozen_epochs", "epochs", "batch_size")
        keys += ("objective", "seed", "gradient_accumulation_steps", *OPTIMIZER_SETTINGS)
        values = {key: getattr(self, key) for key in keys}
        values["encoder_learning_rate"] = self.effective_encoder_learning_rate
        return json.loads(json.dumps(values, default=str))
