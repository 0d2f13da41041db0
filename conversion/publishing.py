"""Uploading a finished model folder to the Hub: which files go, and the upload itself."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
from huggingface_hub import errors as hub_errors
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects


def upload_listing(folder: Path) -> list[tuple[str, int]]:
    """(path in repo, size) of each file `upload_folder` would send, with its own ignore rules."""
    files = {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.glob("**/*"))
        if path.is_file()
    }
    kept = filter_repo_objects(files, ignore_patterns=DEFAULT_IGNORE_PATTERNS)
    return [(name, files[name].stat().st_size) for name in kept]


def publish(folder: Path, repo_id: str, private: bool, revision: str | None, where: str) -> str:
    """create_repo(exist_ok=True), the branch if named, then upload_folder; the commit URL."""
    token = huggingface_hub.get_token()
    if not token:
        raise PermissionError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=folder,
            repo_id=repo_id,
            repo_type="model",
            revision=revision,
            commit_message="Upload Turkish CLIP converted by hub_upload.py",
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
