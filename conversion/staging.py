"""Writing a model folder beside its destination and moving it into place only once it is whole."""

from __future__ import annotations

import os
import shutil
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
