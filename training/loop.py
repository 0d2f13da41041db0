"""The training run: stages, checkpoints and evaluations, on accelerate.

One code path serves a CPU, one GPU and `accelerate launch` / `torchrun` (DDP): accelerate
places the model, shards the data, syncs gradients, casts to bf16 and saves and restores the
whole training state (weights, optimizer, data order, random generators).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from conversion.towers import check_teacher_model
from training.evaluation import evaluate, format_table
from training.model_card import training_card
from training.objectives import objective
from training.options import TrainingOptions
from training.student import TextStudent, load_student
from training.targets import CaptionTargets, cached_targets
from training.teacher import check_teacher, load_teacher, teacher_fingerprint
from turkish_clip import TurkishCLIPProcessor, save_model_folder

CHECKPOINT_PREFIX = "step-"


class Progress:
    """Where the run is; checkpointed with the rest of the training state."""

    def __init__(self, signature: dict):
        self.signature = signature
        self.epoch = 0  # counted over both stages
        self.batches_done = 0  # within `epoch`
        self.step = 0  # optimizer steps
        self.loss_sum = 0.0  # over `epoch` so far
        self.evaluations: list[dict] = []
        self.losses: list[dict] = []

    def state_dict(self) -> dict:
        return {key: value for key, value in vars(self).items()}

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)

    def evaluated(self, when: str) -> bool:
        return any(row["when"] == when for row in self.evaluations)


class Stopped(Exception):
    """--stop-after-steps was reached: the run ends as an interruption would."""


@dataclass
class Run:
    """The objects of one run that every function below needs."""

    options: TrainingOptions
    accelerator: Accelerator
    student: torch.nn.Module  # TextStudent, possibly wrapped by accelerate (DDP)
    optimizer: torch.optim.Optimizer
    loader: torch.utils.data.DataLoader
    processor: TurkishCLIPProcessor
    eval_pairs: CaptionTargets
    progress: Progress


def train(options: TrainingOptions) -> Path | None:
    """Trains and writes the model folder; returns it, or None if stopped by --stop-after-steps."""
    _check_options(options)
    accelerator = _accelerator(options)
    set_seed(options.seed)
    model, processor = load_student(options.student, options.text_encoder, teacher=options.teacher)
    if options.gradient_checkpointing:
        _checkpoint_activations(model.text_model)
    model.to(accelerator.device)
    train_pairs, eval_pairs = _targets(options, accelerator)
    _check_width(options, train_pairs.meta["dim"], model.config.projection_dim)
    run = _prepare(options, accelerator, model, processor, train_pairs, eval_pairs)
    try:
        _run_stages(run)
    except Stopped:
        accelerator.print(f"stopped after {run.progress.step} steps; continue with --resume")
        accelerator.end_training()
        return None
    if accelerator.is_main_process:
        _write_folder(run, model, len(train_pairs))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return options.output


def _checkpoint_activations(text_model: torch.nn.Module) -> None:
    """Recompute the encoder's activations in the backward pass instead of keeping them."""
    kwargs = {"use_reentrant": False}
    if hasattr(text_model, "activation_checkpointing_enable"):  # its name from transformers 5.2x
        text_model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        text_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _check_options(options: TrainingOptions) -> None:
    if options.output.exists() and any(options.output.iterdir()):
        raise FileExistsError(f"--output {options.output} exists and is not empty")
    if not options.resume and _checkpoint_paths(options.checkpoints):
        raise FileExistsError(
            f"{options.checkpoints} holds checkpoints of an earlier run: pass --resume to "
            "continue it, or delete that folder to start again"
        )
    objective(options.objective)
    if options.student is None and options.text_encoder is None:
        raise ValueError(
            "--student or --text-encoder is needed: without --student, a new student is built "
            "from --teacher's image tower and --text-encoder"
        )
    check_teacher(options.teacher)
    check_teacher_model(options.teacher)  # an unsupported teacher is refused before any work
    for name in ("frozen_epochs", "epochs"):
        if getattr(options, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be 0 or more")
    positive = ("batch_size", "gradient_accumulation_steps", "checkpoint_steps", "keep_checkpoints")
    for name in positive:
        if getattr(options, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")


def _check_width(options: TrainingOptions, teacher_dim: int, student_dim: int) -> None:
    """A student can only learn a teacher whose embeddings are as wide as its own."""
    if teacher_dim != student_dim:
        raise ValueError(
            f"--teacher {options.teacher} embeds in {teacher_dim} dimensions, but --student "
            f"{options.student} in {student_dim}: train a student of this teacher without "
            "--student (give --text-encoder), or pick the student's own teacher"
        )


def _accelerator(options: TrainingOptions) -> Accelerator:
    precision = options.mixed_precision
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    # In stage 1 the frozen encoder gets no gradients, which DDP must be told to expect.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=options.frozen_epochs > 0)
    # accelerate sets up multi-process CPU runs (gloo) only when told the run is on the CPU.
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(
        cpu=options.cpu or (launched and not torch.cuda.is_available()),
        mixed_precision=precision,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[ddp],
    )


def _targets(
    options: TrainingOptions, accelerator: Accelerator
) -> tuple[CaptionTargets, CaptionTargets]:
    """Teacher targets of both data sets: computed once by the main process, then read by all."""
    digest = teacher_fingerprint(options.teacher)
    loaded = []

    def embed():  # the teacher loads only if a cache is missing, and then only once
        if not loaded:
            loaded.append(load_teacher(options.teacher, accelerator.device))
        return loaded[0].embed

    with accelerator.main_process_first():
        return tuple(
            cached_targets(
                source,
                options.teacher,
                digest,
                options.cache_dir,
                embed,
                options.teacher_batch_size,
            )
            for source in (options.train, options.eval)
        )


def _prepare(options, accelerator, model, processor, train_pairs, eval_pairs) -> Run:
    student = TextStudent(model)
    student.train()
    encoder_lr = options.encoder_learning_rate or options.learning_rate
    groups = student.parameter_groups(options.learning_rate, encoder_lr)
    optimizer = torch.optim.AdamW(groups, weight_decay=options.weight_decay)
    # A generator of its own: the loader would otherwise draw its seed from the global one at
    # each epoch's start, and a run resumed mid-epoch would then see other dropout masks.
    loader = torch.utils.data.DataLoader(
        train_pairs,
        batch_size=options.batch_size,
        shuffle=True,
        collate_fn=Collate(processor),
        generator=torch.Generator().manual_seed(options.seed),
    )
    student, optimizer, loader = accelerator.prepare(student, optimizer, loader)
    progress = Progress(options.signature())
    accelerator.register_for_checkpointing(progress)
    run = Run(options, accelerator, student, optimizer, loader, processor, eval_pairs, progress)
    if options.resume:
        _resume(run)
    return run


class Collate:
    """Tokenises a batch of Turkish captions with the student's processor and stacks targets."""

    def __init__(self, processor: TurkishCLIPProcessor):
        self.processor = processor

    def __call__(self, rows: list[tuple[str, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        texts, targets = zip(*rows)
        batch = self.processor.pad(self.processor.tokenize(list(texts)))
        return batch["input_ids"], batch["attention_mask"], torch.stack(targets)


def _run_stages(run: Run) -> None:
    options = run.options
    if not run.progress.evaluated("before training"):
        _evaluate(run, "before training")
    epoch = 0
    stages = ((1, options.frozen_epochs, "encoder frozen"), (2, options.epochs, "all trained"))
    for stage, count, what in stages:
        for number in range(1, count + 1):
            if epoch >= run.progress.epoch:
                _run_epoch(run, epoch, f"stage {stage} ({what}), epoch {number}/{count}", stage)
            epoch += 1
        when = f"after stage {stage} ({what}, {count} epoch{'' if count == 1 else 's'})"
        if count and not run.progress.evaluated(when):
            _evaluate(run, when)
            _save_checkpoint(run)


def _run_epoch(run: Run, epoch: int, title: str, stage: int) -> None:
    accelerator, progress = run.accelerator, run.progress
    accelerator.unwrap_model(run.student).frozen = stage == 1
    loss_of = objective(run.options.objective)
    if progress.epoch != epoch:
        progress.epoch, progress.batches_done, progress.loss_sum = epoch, 0, 0.0
    run.loader.set_epoch(epoch)
    done = progress.batches_done
    batches = accelerator.skip_first_batches(run.loader, done) if done else run.loader
    bar = tqdm(
        total=len(run.loader), initial=done, desc=title, disable=not accelerator.is_main_process
    )
    for input_ids, attention_mask, targets in batches:
        with accelerator.accumulate(run.student):
            loss = loss_of(run.student(input_ids=input_ids, attention_mask=attention_mask), targets)
            accelerator.backward(loss)
            run.optimizer.step()
            run.optimizer.zero_grad()
        mean_loss = accelerator.reduce(loss.detach(), reduction="mean").item()
        progress.batches_done += 1
        progress.loss_sum += mean_loss
        bar.update(1)
        bar.set_postfix(loss=f"{mean_loss:.4g}")
        if accelerator.sync_gradients:
            _after_step(run)
    bar.close()
    progress.losses.append(
        {"stage": stage, "epoch": epoch + 1, "loss": progress.loss_sum / progress.batches_done}
    )
    progress.epoch, progress.batches_done, progress.loss_sum = epoch + 1, 0, 0.0
    _save_checkpoint(run)


def _after_step(run: Run) -> None:
    run.progress.step += 1
    stop = run.options.stop_after_steps
    if run.progress.step % run.options.checkpoint_steps == 0 or run.progress.step == stop:
        _save_checkpoint(run)
    if stop is not None and run.progress.step >= stop:
        raise Stopped


def _evaluate(run: Run, when: str) -> None:
    accelerator = run.accelerator
    if accelerator.is_main_process:
        student = accelerator.unwrap_model(run.student)
        metrics = evaluate(student, run.processor, run.eval_pairs, run.options.eval_batch_size)
        run.progress.evaluations.append({"when": when, **metrics})
        accelerator.print(format_table(run.progress.evaluations))
    accelerator.wait_for_everyone()


def _save_checkpoint(run: Run) -> None:
    folder = run.options.checkpoints / f"{CHECKPOINT_PREFIX}{run.progress.step:08d}"
    run.accelerator.save_state(str(folder))
    if run.accelerator.is_main_process:
        for old in _checkpoint_paths(run.options.checkpoints)[: -run.options.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
    run.accelerator.wait_for_everyone()


def _checkpoint_paths(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    found = [path for path in folder.glob(f"{CHECKPOINT_PREFIX}*") if path.is_dir()]
    return sorted(found, key=lambda path: int(path.name.removeprefix(CHECKPOINT_PREFIX)))


def _resume(run: Run) -> None:
    checkpoints = _checkpoint_paths(run.options.checkpoints)
    if not checkpoints:
        run.accelerator.print(f"no checkpoint in {run.options.checkpoints}: starting afresh")
        return
    expected = run.progress.signature
    run.accelerator.load_state(str(checkpoints[-1]))
    if run.progress.signature != expected:
        changed = sorted(k for k in expected if expected[k] != run.progress.signature.get(k))
        raise ValueError(
            f"--resume: {checkpoints[-1]} was made with other settings ({', '.join(changed)}); "
            "resume with the same options, or start a new run"
        )
    run.accelerator.print(f"resumed from {checkpoints[-1]} (step {run.progress.step})")


def _write_folder(run: Run, model, train_count: int) -> None:
    model.eval()
    report = {
        "processes": run.accelerator.num_processes,
        "mixed_precision": run.accelerator.mixed_precision,
        "objective": run.options.objective,
        "evaluations": run.progress.evaluations,
        "training_loss": run.progress.losses,
    }
    card = training_card(run.options, report, train_count, len(run.eval_pairs), model.config)
    files = {"README.md": card, "eval.json": json.dumps(report, indent=2) + "\n"}
    save_model_folder(model, run.processor, run.options.output, extra_files=files)
    run.accelerator.print(f"wrote {run.options.output}")
