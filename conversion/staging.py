"""Writing a model folder beside its destination and moving it into place only once it is whole.

Staging folders are named `PREFIX<process id>-<random>`, so that a later run can tell the
leftover of a killed one (its process is gone) from the folder of one still running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def check_output(output: Path, force: bool) -> None:
    """Refuse early what would be refused at the end, before minutes of reading checkpoints."""
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output} exists and is not a folder")
    if not output.is_dir() or not any(output.iterdir()):
        return
    if not force:
        raise FileExistsError(f"{output} exists and is not empty; pass --force to replace it")
    # --force deletes the folder: a mistyped --output (the checkout, a home folder) must not be.
    if not (output / "config.json").is_file() or (output / ".git").exists():
        raise FileExistsError(
            f"refusing to replace {output}: it does not look like a model folder (no config.json, "
            "or a .git inside); remove it yourself if it should go"
        )


def make_staging_folder(parent: Path, prefix: str) -> Path:
    """A new hidden folder in `parent`, named after this process (see `sweep_staging_folders`)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))


def sweep_staging_folders(parent: Path, prefix: str) -> list[Path]:
    """Removes the staging folders of runs that were killed (SIGKILL cannot be caught, so no
    clean-up of their own ran): those whose process is gone, and those named before names
    carried a process id (`PREFIX` and `tempfile`'s random letters, digits and `_`, no `-`).
    Returns what was removed."""
    removed = []
    for path in parent.glob(f"{prefix}*"):
        pid, dash, _ = path.name.removeprefix(prefix).partition("-")
        if path.is_dir() and not (dash and pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def match_umask(folder: Path) -> None:
    """mkdtemp makes owner-only folders; the finished one should read like any other."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.glob("**/*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def move_into_place(staging: Path, output: Path) -> None:
    """Two renames, so `output` is at every moment either the old folder or the new one."""
    if not output.exists():
        staging.rename(output)
        return
    old = staging.with_name(staging.name.replace(".staging-", ".old-"))
    output.rename(old)
    try:
        staging.rename(output)
    except BaseException:
        old.rename(output)
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Replace a file's text with one rename, so a reader never sees it half-written."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
