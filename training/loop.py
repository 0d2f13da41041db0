"""The training run: stages, checkpoints and evaluations, on accelerate.

One code path serves a CPU, one GPU and `accelerate launch` / `torchrun` (DDP): accelerate
places the model, shards the data, syncs gradients, casts to bf16 and saves and restores the
whole training state (weights, optimizer, data order, random generators).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from conversion.towers import check_teacher_model
from training.checkpoints import (
    complete_checkpoints,
    load_newest,
    print_warning,
    save_checkpoint,
)
from training.data import fingerprint
from training.evaluation import NonFiniteEmbeddings, evaluate, format_row, format_table
from training.model_card import training_card
from training.objectives import objective
from training.options import TrainingOptions, flag
from training.student import TextStudent, load_student
from training.targets import CaptionTargets, cached_targets
from training.teacher import check_teacher, load_teacher, teacher_fingerprint
from turkish_clip import TurkishCLIPProcessor, save_model_folder

# Content digests recorded with the options, so a resumption compares content, not names.
CONTENT_KEYS = {
    "train_content": "--train",
    "eval_content": "--eval",
    "teacher_content": "--teacher",
}


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


class TrainingDiverged(ValueError):
    """The loss, the embeddings or the weights stopped being finite numbers."""


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
    digests = _content_digests(options)
    train_pairs, eval_pairs = _targets(options, accelerator, digests)
    _check_width(options, train_pairs.meta["dim"], model.config.projection_dim)
    signature = {**options.signature(), **digests}
    run = _prepare(options, accelerator, model, processor, train_pairs, eval_pairs, signature)
    try:
        _run_stages(run)
    except Stopped:
        accelerator.print(f"stopped after {run.progress.step} steps; continue with --resume")
        accelerator.end_training()
        return None
    _check_finite_weights(run, "after training")
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
    if not options.resume and complete_checkpoints(options.checkpoints):
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


def _content_digests(options: TrainingOptions) -> dict[str, str]:
    """What the data files and the teacher hold (not what they are called)."""
    return {
        "train_content": fingerprint(options.train),
        "eval_content": fingerprint(options.eval),
        "teacher_content": teacher_fingerprint(options.teacher),
    }


def _targets(
    options: TrainingOptions, accelerator: Accelerator, digests: dict[str, str]
) -> tuple[CaptionTargets, CaptionTargets]:
    """Teacher targets of both data sets: computed once by the main process, then read by all."""
    digest = digests["teacher_content"]
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
                data_digest,
            )
            for source, data_digest in (
                (options.train, digests["train_content"]),
                (options.eval, digests["eval_content"]),
            )
        )


def _prepare(options, accelerator, model, processor, train_pairs, eval_pairs, signature) -> Run:
    student = TextStudent(model)
    student.train()
    encoder_lr = options.effective_encoder_learning_rate
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
    progress = Progress(signature)
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


def _stages(options: TrainingOptions) -> tuple[tuple[int, int, str], ...]:
    return ((1, options.frozen_epochs, "encoder frozen"), (2, options.epochs, "all trained"))


def _stage_end(stage: int, count: int, what: str) -> str:
    return f"after stage {stage} ({what}, {count} epoch{'' if count == 1 else 's'})"


def _evaluation_names(options: TrainingOptions) -> list[str]:
    """The rows of the run's evaluation table, in order."""
    ends = [_stage_end(*stage) for stage in _stages(options) if stage[1]]
    return ["before training", *ends]


def _run_stages(run: Run) -> None:
    options = run.options
    _print_table_so_far(run)
    if not run.progress.evaluated("before training"):
        _evaluate(run, "before training")
    epoch = 0
    for stage, count, what in _stages(options):
        for number in range(1, count + 1):
            if epoch >= run.progress.epoch:
                _run_epoch(run, epoch, f"stage {stage} ({what}), epoch {number}/{count}", stage)
            epoch += 1
        when = _stage_end(stage, count, what)
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
    # Bars are for a person watching: not in a log file or a pipe (as cli.py's).
    quiet = not accelerator.is_main_process or not sys.stderr.isatty()
    bar = tqdm(total=len(run.loader), initial=done, desc=title, disable=quiet)
    for input_ids, attention_mask, targets in batches:
        with accelerator.accumulate(run.student):
            loss = loss_of(run.student(input_ids=input_ids, attention_mask=attention_mask), targets)
            # Checked before the step, so a NaN never reaches the weights; every process sees
            # the same reduced value and stops alike.
            mean_loss = accelerator.reduce(loss.detach(), reduction="mean").item()
            if not math.isfinite(mean_loss):
                raise TrainingDiverged(
                    f"the training loss is {mean_loss} at step {progress.step + 1} ({title}, "
                    f"batch {progress.batches_done + 1}); stopped without writing a model: "
                    "lower --learning-rate, or check the teacher and the data"
                )
            accelerator.backward(loss)
            run.optimizer.step()
            run.optimizer.zero_grad()
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
    stopping = stop is not None and run.progress.step >= stop
    if run.progress.step % run.options.checkpoint_steps == 0 or stopping:
        _save_checkpoint(run)
    if stopping:
        raise Stopped


def _evaluate(run: Run, when: str) -> None:
    accelerator = run.accelerator
    if accelerator.is_main_process:
        student = accelerator.unwrap_model(run.student)
        try:
            metrics = evaluate(student, run.processor, run.eval_pairs, run.options.eval_batch_size)
        except NonFiniteEmbeddings as error:
            raise TrainingDiverged(
                f"{when} (step {run.progress.step}): {error}; stopped without writing a model"
            ) from None
        run.progress.evaluations.append({"when": when, **metrics})
        if len(run.progress.evaluations) == 1:
            accelerator.print(_table_header(run))
        accelerator.print(format_row(run.progress.evaluations[-1], _table_width(run)))
    accelerator.wait_for_everyone()


def _table_width(run: Run) -> int:
    return max(len(name) for name in _evaluation_names(run.options))


def _table_header(run: Run) -> str:
    return format_table([], _table_width(run))


def _print_table_so_far(run: Run) -> None:
    """A resumed run shows the rows its checkpoint holds; each later row is printed once, as
    its evaluation ends, so the output holds the table once."""
    if run.progress.evaluations:
        run.accelerator.print(format_table(run.progress.evaluations, _table_width(run)))


def _save_checkpoint(run: Run) -> None:
    _check_finite_weights(run, f"at step {run.progress.step}")
    options = run.options
    save_checkpoint(
        run.accelerator, options.checkpoints, run.progress.step, options.keep_checkpoints
    )


def _check_finite_weights(run: Run, when: str) -> None:
    """Weights are checked before a checkpoint or the model folder keeps them."""
    student = run.accelerator.unwrap_model(run.student)
    for name, parameter in student.named_parameters():
        if not torch.isfinite(parameter).all():
            raise TrainingDiverged(
                f"the weight {name} holds non-finite values {when}; stopped without writing a "
                "model: lower --learning-rate"
            )


def _resume(run: Run) -> None:
    accelerator, root = run.accelerator, run.options.checkpoints
    expected = run.progress.signature
    warn = print_warning if accelerator.is_main_process else lambda message: None
    checkpoint = load_newest(accelerator, root, warn)
    if checkpoint is None:
        accelerator.print(f"no checkpoint in {root}: starting afresh")
        return
    _check_signature(checkpoint, run.progress.signature, expected)
    stop = run.options.stop_after_steps
    if stop is not None and stop <= run.progress.step:
        raise ValueError(
            f"--stop-after-steps {stop}: {checkpoint} is at step {run.progress.step} already; "
            "pass a later step, or leave the option out to finish the run"
        )
    accelerator.print(f"resumed from {checkpoint} (step {run.progress.step})")


def _check_signature(checkpoint: Path, recorded: dict, expected: dict) -> None:
    """Refuses, by option name, what the checkpoint would silently override or contradict."""
    changed = [key for key in expected if recorded.get(key) != expected[key]]
    if not changed:
        return
    details = []
    for key in changed:
        name = CONTENT_KEYS.get(key) or flag(key)
        if key not in recorded:
            details.append(f"{name} not recorded: a checkpoint of an earlier version")
        elif key in CONTENT_KEYS:
            details.append(f"the content of {name} differs")
        else:
            details.append(f"{name} {recorded[key]} then, {expected[key]} now")
    raise ValueError(
        f"--resume: {checkpoint} was made with other settings ({'; '.join(details)}); resume "
        "with the same options and data, or delete the checkpoints to start a new run"
    )


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
    # allow_nan=False: a NaN figure must fail here, not produce a file that is not JSON.
    files = {"README.md": card, "eval.json": json.dumps(report, indent=2, allow_nan=False) + "\n"}
    save_model_folder(model, run.processor, run.options.output, extra_files=files)
    run.accelerator.print(f"wrote {run.options.output}")
