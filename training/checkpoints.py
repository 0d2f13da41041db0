"""Checkpoint folders of a training run, written so that a kill never leaves one half-written.

accelerate writes a checkpoint as several files (weights, optimizer, data order, random states
of each process). They go to a hidden `.step-N.partial` folder first, which is renamed to
`step-N` only once every process has written its part: a folder named `step-N` is always
complete. A checkpoint rewritten at the same step (after an evaluation) is swapped in with two
renames; the older one waits as `.step-N.replaced` in between, and is used if the run was killed
between the two. Leftovers of a killed save are removed by the next save.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from accelerate import Accelerator

PREFIX = "step-"
PARTIAL = ".partial"
REPLACED = ".replaced"


class CheckpointError(ValueError):
    """No checkpoint of the run could be read back."""


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:08d}"


def complete_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first: `step-N` folders, and a `.step-N.replaced` one whose
    successor was not renamed into place before a kill."""
    if not root.is_dir():
        return []
    found = {path.name: path for path in root.glob(f"{PREFIX}*") if path.is_dir()}
    for path in root.glob(f".{PREFIX}*{REPLACED}"):
        name = path.name[1 : -len(REPLACED)]
        if path.is_dir() and name not in found:
            found[name] = path
    steps = {name: _step(name) for name in found}
    return [found[name] for name in sorted(found, key=steps.get) if steps[name] is not None]


def save_checkpoint(accelerator: Accelerator, root: Path, step: int, keep: int) -> Path:
    """Every process writes its part to the partial folder; the main process renames it."""
    name = checkpoint_name(step)
    partial, final = root / f".{name}{PARTIAL}", root / name
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(f".{PREFIX}*{PARTIAL}"):  # of a save that was killed
            shutil.rmtree(leftover, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _flush(partial)
        _swap_in(partial, final, root / f".{name}{REPLACED}")
        for old in complete_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_newest(accelerator: Accelerator, root: Path, warn: Callable[[str], None]) -> Path | None:
    """Loads the newest checkpoint that reads back whole, older ones where newer ones do not
    (a disk error, or a half-written folder of an earlier version); None if there is none."""
    checkpoints = complete_checkpoints(root)
    problems = []
    for path in reversed(checkpoints):
        try:
            accelerator.load_state(str(path))
        except Exception as error:  # torch, pickle and safetensors each raise their own types
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            problems.append(f"{path.name} ({reason})")
            warn(f"warning: checkpoint {path} cannot be read ({reason}); trying an older one")
            continue
        return path
    if problems:
        raise CheckpointError(
            f"--resume: no checkpoint in {root} can be read: {'; '.join(problems)}. "
            "Delete that folder to start the run again"
        )
    return None


def _step(name: str) -> int | None:
    digits = name.removeprefix(PREFIX)
    return int(digits) if digits.isdigit() else None


def _swap_in(partial: Path, final: Path, replaced: Path) -> None:
    if not final.exists():
        partial.rename(final)
        return
    shutil.rmtree(replaced, ignore_errors=True)
    final.rename(replaced)
    partial.rename(final)
    shutil.rmtree(replaced, ignore_errors=True)


def _flush(folder: Path) -> None:
    """Each file on disk before the rename that declares the folder complete (a kill does not
    lose written data, but a power cut would)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as file:
                os.fsync(file.fileno())


def print_warning(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
