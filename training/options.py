"""The options of a training run, as `train.py` parses them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.data import PairSource


@dataclass
class TrainingOptions:
    """Everything `train.py` passes in; see its --help for each option."""

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

    @property
    def checkpoints(self) -> Path:
        return self.checkpoint_dir or self.output.with_name(self.output.name + ".checkpoints")

    def signature(self) -> dict:
        """What must not change between a run and its resumption."""
        keys = ("student", "teacher", "text_encoder", "frozen_epochs", "epochs", "batch_size")
        keys += ("objective", "seed", "gradient_accumulation_steps")
        values = {key: getattr(self, key) for key in keys}
        values["train"], values["eval"] = asdict(self.train), asdict(self.eval)
        return json.loads(json.dumps(values, default=str))
