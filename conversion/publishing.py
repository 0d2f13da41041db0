"""Uploading a finished model folder to the Hub: which files may go, and the upload itself.

Only an allow-list leaves the machine: the files a model folder is made of, and what the caller
names with `include` patterns. Hidden files and folders (a `.env`, `.ssh/`, `.cache/`) never go,
and neither does a link whose target is outside the folder or hidden.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import huggingface_hub
from huggingface_hub import errors as hub_errors

from turkish_clip import MODEL_FILES

# Paths in the repo; `*` matches within one path segment, `**` any number of segments.
ALLOWED_PATTERNS = (
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "README.md",
    *MODEL_FILES,
    "onnx/*.onnx",
    "onnx/*.onnx_data",
    "onnx/export.json",  # which weights the ONNX files come from (conversion/onnx_record.py)
)
# How many names an error lists before it only counts the rest.
LISTED_NAMES = 20


@dataclass
class UploadPlan:
    """What `push` sends (path in repo, file to read, size) and what it leaves out, and why."""

    files: list[tuple[str, Path, int]] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    not_allowed: list[str] = field(default_factory=list)
    unsafe: list[str] = field(default_factory=list)

    @property
    def total_size(self) -> int:
        return sum(size for _, _, size in self.files)


def matches(path: str, pattern: str) -> bool:
    """Glob match by path segment: `onnx/*.onnx` does not reach into `onnx/sub/`."""
    return _match_parts(path.split("/"), pattern.removeprefix("./").strip("/").split("/"))


def _match_parts(parts: list[str], patterns: list[str]) -> bool:
    if not patterns:
        return not parts
    if patterns[0] == "**":
        return any(_match_parts(parts[i:], patterns[1:]) for i in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], patterns[0])
        and _match_parts(parts[1:], patterns[1:])
    )


def plan_upload(folder: Path, include: Sequence[str] = ()) -> UploadPlan:
    """Sorts every entry under `folder` into uploaded, hidden, not allowed and unsafe."""
    root = folder.resolve()
    plan = UploadPlan()

    def unreadable(error: OSError) -> None:
        relative = Path(error.filename).relative_to(root).as_posix()
        plan.unsafe.append(f"{relative}/ (cannot be read: {error.strerror})")

    for directory, dirnames, filenames in os.walk(root, onerror=unreadable):
        here = Path(directory)
        for name in sorted(dirnames):
            relative = (here / name).relative_to(root).as_posix()
            if name.startswith("."):
                plan.hidden.append(f"{relative}/")
            elif (here / name).is_symlink():
                plan.unsafe.append(f"{relative} (a link to a folder, not followed)")
        # os.walk does not follow links to folders; hidden folders are not even looked into.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            _sort_file(root, here / name, include, plan)
    return plan


def _sort_file(root: Path, path: Path, include: Sequence[str], plan: UploadPlan) -> None:
    relative = path.relative_to(root).as_posix()
    if any(part.startswith(".") for part in relative.split("/")):
        plan.hidden.append(relative)
        return
    target = path.resolve()
    if path.is_symlink():
        if not target.exists():
            plan.unsafe.append(f"{relative} (a broken link)")
            return
        if not target.is_relative_to(root):
            plan.unsafe.append(f"{relative} (a link to {target}, outside the folder)")
            return
        if any(part.startswith(".") for part in target.relative_to(root).parts):
            plan.unsafe.append(f"{relative} (a link to a hidden file)")
            return
    info = target.stat()
    if not stat.S_ISREG(info.st_mode):
        plan.unsafe.append(f"{relative} (not a regular file)")
    elif any(matches(relative, pattern) for pattern in (*ALLOWED_PATTERNS, *include)):
        plan.files.append((relative, target, info.st_size))
    else:
        plan.not_allowed.append(relative)


def check_plan(plan: UploadPlan, folder: Path, include: Sequence[str] = ()) -> None:
    """Refuses, naming them, files outside the allow-list, links that leave the folder, and
    include patterns that add nothing (a typo would otherwise pass unnoticed)."""
    if plan.unsafe:
        raise ValueError(f"{folder} holds entries push never uploads: {_names(plan.unsafe)}")
    for pattern in include:
        if not any(matches(name, pattern) for name, _, _ in plan.files):
            raise ValueError(
                f"--include {pattern!r} matches no file in {folder} that push uploads "
                "(hidden files never go)"
            )
    if plan.not_allowed:
        raise ValueError(
            f"{folder} holds files that are not part of a model folder: "
            f"{_names(plan.not_allowed)}; remove them, or name them with --include PATTERN"
        )


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED_NAMES])
    rest = len(names) - LISTED_NAMES
    return f"{shown} and {rest} more" if rest > 0 else shown


def publish(plan: UploadPlan, repo_id: str, private: bool, revision: str | None, where: str) -> str:
    """create_repo(exist_ok=True), the branch if named, then one commit of exactly the planned
    files; the commit URL."""
    token = huggingface_hub.get_token()
    if not token:
        raise PermissionError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = huggingface_hub.HfApi(token=token)
    operations = [
        huggingface_hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path))
        for name, path, _ in plan.files
    ]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        commit = api.create_commit(
            repo_id=repo_id,
            operations=operations,
            commit_message="Upload Turkish CLIP converted by hub_upload.py",
            repo_type="model",
            revision=revision,
        )
    except (hub_errors.HTTPError, OSError, ValueError) as error:
        message = str(error).replace(token, "***")
        raise OSError(
            f"upload to {where} failed: {type(error).__name__}: {message}. Check that the token "
            f"has write access to {repo_id.split('/')[0]}, that the repo id is right and that "
            "huggingface.co is reachable, then run push again (it uploads only what changed)"
        ) from None
    return str(getattr(commit, "commit_url", commit))


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
