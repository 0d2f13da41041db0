"""An on-disk index of image embeddings: its format, incremental updates and exact search.

Format (version 1), in the index folder:
- meta.json: format, version, model, revision, dim, root (the indexed folder), count,
  generation, the names of the two data files, and the files that could not be read;
- embeddings.<generation>.npy: (count, dim) float32, rows L2-normalised;
- files.<generation>.jsonl: one {"path", "size", "mtime_ns"} per row, paths relative to root.
meta.json is replaced last, in one rename, so a crash always leaves the previous index readable.
"""

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

import numpy as np

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
INDEX_FORMAT = "turkish-clip-index"
INDEX_VERSION = 1
# Data files and the temporary files _write_atomically makes; meta.json says which are current.
INDEX_DATA_PATTERNS = (
    "embeddings.*.npy",
    "files.*.jsonl",
    ".embeddings.*.tmp",
    ".files.*.tmp",
    ".meta.json.*.tmp",
    "ann.*.faiss",
    ".ann.*.tmp",
    ".embedding-work",  # finished batches of an interrupted embedding run (a folder)
)


@dataclass
class UpdatePlan:
    """What an index update does; `keep` maps each unchanged path to its row in the old index."""

    keep: dict[str, int] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    still_unreadable: list[dict] = field(default_factory=list)

    @property
    def to_embed(self) -> list[str]:
        return sorted(self.added + self.changed)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def plan_update(
    indexed: Sequence[dict],
    found: dict[str, tuple[int, int]],
    unreadable: Sequence[dict] = (),
) -> UpdatePlan:
    """Compares the index's entries with the files on disk (`path -> (size, mtime_ns)`).

    Size and modification time are what a file system gives for free; hashing every image on
    each run would cost about as much as embedding it again. Files that failed to open last time
    (`unreadable`) are tried again only once they change, so one broken file does not make every
    run reload the model and rewrite the index.
    """
    plan = UpdatePlan()
    rows = {entry["path"]: row for row, entry in enumerate(indexed)}
    failed = {entry["path"]: entry for entry in unreadable}
    for path in sorted(found):
        known = indexed[rows[path]] if path in rows else failed.get(path)
        if known is None:
            plan.added.append(path)
        elif (known["size"], known["mtime_ns"]) != found[path]:
            plan.changed.append(path)
        elif path in rows:
            plan.keep[path] = rows[path]
        else:
            plan.still_unreadable.append(known)
    plan.removed = sorted(path for path in rows if path not in found)
    return plan


def top_matches(embeddings: np.ndarray, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Rows with the highest cosine similarity to `query`; both sides are L2-normalised."""
    scores = embeddings @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(row), float(scores[row])) for row in order]


def scan_images(root: Path) -> dict[str, tuple[int, int]]:
    """Image files under `root`, recursively: relative POSIX path -> (size, mtime in ns)."""
    found = {}
    for path in root.rglob("*"):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        try:
            stat = path.stat()
        except OSError:  # removed while scanning, or a dangling link
            continue
        if path.is_file():
            found[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


@dataclass
class Index:
    meta: dict
    files: list[dict]  # one {"path", "size", "mtime_ns"} per row of `embeddings`
    embeddings: np.ndarray


def load_index(folder: Path) -> Index | None:
    """The index in `folder`, or None where there is none yet."""
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        # Data files without meta.json are what a crash during the first write leaves.
        if folder.exists() and set(folder.iterdir()) - set(_data_files(folder)):
            raise ValueError(f"{folder} is not empty and holds no index (no meta.json)")
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if (meta.get("format"), meta.get("version")) != (INDEX_FORMAT, INDEX_VERSION):
            raise ValueError(f"{meta_path} is not a version {INDEX_VERSION} {INDEX_FORMAT} file")
        embeddings = np.load(folder / meta["embeddings"])
        lines = (folder / meta["files"]).read_text(encoding="utf-8").splitlines()
        files = [json.loads(line) for line in lines if line]
        consistent = embeddings.shape == (len(files), meta["dim"]) == (meta["count"], meta["dim"])
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise ValueError(f"index {folder} is damaged: {' '.join(str(error).split())}") from None
    if not consistent:
        raise ValueError(f"index {folder} is damaged: embeddings, files and meta.json disagree")
    return Index(meta=meta, files=files, embeddings=embeddings)


def save_index(folder: Path, meta: dict, files: list[dict], embeddings: np.ndarray) -> None:
    """Writes a new generation of data files, then switches meta.json to them in one rename.

    meta.json names the data files it belongs to, so a crash at any point leaves the previous
    index intact and readable; data files no meta.json names are removed afterwards.
    """
    folder.mkdir(parents=True, exist_ok=True)
    generation = meta.get("generation", 0) + 1
    meta = dict(
        meta,
        generation=generation,
        count=len(files),
        embeddings=f"embeddings.{generation}.npy",
        files=f"files.{generation}.jsonl",
    )
    lines = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in files)
    _write_atomically(folder / meta["embeddings"], lambda f: np.save(f, embeddings))
    _write_atomically(folder / meta["files"], lambda f: f.write(lines.encode("utf-8")))
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    _write_atomically(folder / "meta.json", lambda f: f.write(text.encode("utf-8")))
    current = (meta["embeddings"], meta["files"], meta.get("ann", {}).get("file"))
    for path in _data_files(folder):
        if path.name not in current and path.is_file():
            path.unlink(missing_ok=True)


def _data_files(folder: Path) -> list[Path]:
    """Data files of any generation, and temporary files of interrupted writes."""
    return [
        path
        for path in folder.iterdir()
        if any(fnmatchcase(path.name, pattern) for pattern in INDEX_DATA_PATTERNS)
    ]


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Replaces `path` in one rename, so a reader sees the old or the new file, never a part."""
    _write_atomically(path, lambda file: file.write(data))


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            os.fchmod(file.fileno(), 0o644)  # mkstemp makes files private; an index is shared data
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
