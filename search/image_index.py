"""An on-disk index of image embeddings: its format, reading it safely, writing it atomically.

Format (version 2), in the index folder:
- meta.json: format, version, model, revision, fingerprint (hashes of the model's image side:
  search/fingerprint.py), dim, root (the indexed folder), count, generation, the names of the data
  files (embeddings, files), superseded (data files of earlier generations still to delete), and
  the files that could not be read (unreadable);
- embeddings.<generation>.npy: (count, dim) float32, rows L2-normalised;
- files.<generation>.jsonl: one {"path", "size", "mtime_ns"} per row, paths relative to root,
  plus "path_bytes" (base64) for a name that is not valid UTF-8. Lines end only at "\n";
- .lock: the writers' lock (search/locking.py).
meta.json is replaced last, in one rename, so a crash always leaves the previous index readable.
Version 1 (no fingerprint, superseded or path_bytes) is read too and upgraded on the next write.
"""

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from search.file_names import name_fields
from search.locking import LOCK_NAME
from search.validation import (
    IndexFileError,
    check_entry,
    check_meta,
    read_embeddings,
)
from terminal.escaping import json_line

INDEX_FORMAT = "turkish-clip-index"
INDEX_VERSION = 2
READABLE_VERSIONS = (1, 2)
# The temporary files _write_atomically makes (mkstemp's prefix and suffix around its letters).
TEMPORARY_NAME = re.compile(
    r"\.(embeddings\.[0-9]+\.npy|files\.[0-9]+\.jsonl|ann\.[0-9]+\.faiss|meta\.json)\.\w+\.tmp"
)
_READ_ATTEMPTS = 3


class IndexDamagedError(ValueError):
    """The index's files are missing, malformed or disagree with each other."""


@dataclass
class Index:
    meta: dict
    files: list[dict]  # one {"path", "size", "mtime_ns"} per row of `embeddings`
    embeddings: np.ndarray


def check_index_folder(folder: Path) -> None:
    """Refuses a folder that holds files but no index, before anything is written into it.

    Data files without meta.json are what a crash during the first write leaves; they count as
    the index's own only beside its lock file, which only an index run creates.
    """
    if (folder / "meta.json").exists() or not folder.exists():
        return
    if not folder.is_dir():
        raise IndexDamagedError(f"index {folder} is not a folder")
    names = {path.name for path in folder.iterdir()}
    own = {name for name in names if name == LOCK_NAME or TEMPORARY_NAME.fullmatch(name)}
    if LOCK_NAME in names:
        own |= {"embeddings.1.npy", "files.1.jsonl"} & names
    if names - own:
        raise IndexDamagedError(f"{folder} is not empty and holds no index (no meta.json)")


def load_index(folder: Path) -> Index | None:
    """The index in `folder`, or None where there is none yet."""
    check_index_folder(folder)
    # A writer may delete the data files an older meta.json names just after it is read.
    for attempt in range(_READ_ATTEMPTS):
        try:
            return _read(folder)
        except FileNotFoundError as error:
            if attempt == _READ_ATTEMPTS - 1:
                raise IndexDamagedError(f"index {folder} is damaged: {_line(error)}") from None
    return None  # unreachable


def _read(folder: Path) -> Index | None:
    meta_path = folder / "meta.json"
    try:
        meta_bytes = meta_path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        meta = check_meta(_parse_json(meta_bytes, meta_path), meta_path, READABLE_VERSIONS)
        files_path = folder / meta["files"]
        files = _read_entries(files_path)
        if len(files) != meta["count"]:
            raise IndexFileError(f"{files_path}: {len(files)} rows, meta.json says {meta['count']}")
        embeddings = read_embeddings(folder / meta["embeddings"], meta["count"], meta["dim"])
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise IndexDamagedError(f"index {folder} is damaged: {_line(error)}") from None
    return Index(meta=meta, files=files, embeddings=embeddings)


def _read_entries(path: Path) -> list[dict]:
    entries = []
    for number, line in enumerate(path.read_bytes().split(b"\n"), 1):
        if line:
            entry = _parse_json(line, f"{path} line {number}")
            entries.append(check_entry(entry, path, f"line {number}"))
    return entries


def _parse_json(data: bytes, where: object) -> object:
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError included
        raise IndexFileError(f"{where}: not JSON: {_line(error)}") from None


def save_index(
    folder: Path, meta: dict, files: list[dict], embeddings: np.ndarray, previous: dict | None
) -> dict:
    """Writes a new generation of data files, then switches meta.json to them in one rename.

    `previous` is the meta.json being replaced. Afterwards only data files this index wrote are
    deleted: those `previous` names and its pending `superseded` ones, and temporary files
    of interrupted writes. Returns the meta.json written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    generation = (previous or {}).get("generation", 0) + 1
    names = {"embeddings": f"embeddings.{generation}.npy", "files": f"files.{generation}.jsonl"}
    old = _generation_files(previous) - set(names.values())
    # An `ann` entry must describe these rows: the caller builds it for them (search/ann.py).
    meta = {"format": INDEX_FORMAT, "version": INDEX_VERSION} | {
        k: v for k, v in meta.items() if k != "superseded"
    }
    meta.update(names, format=INDEX_FORMAT, version=INDEX_VERSION, generation=generation)
    meta.update(count=len(files), superseded=sorted(n for n in old if (folder / n).exists()))
    meta["unreadable"] = [_fields(entry) for entry in meta.get("unreadable", [])]
    lines = "".join(json_line(_fields(entry)) + "\n" for entry in files)
    _write_atomically(folder / names["embeddings"], lambda f: np.save(f, _rows(embeddings)))
    _write_atomically(folder / names["files"], lambda f: f.write(lines.encode("utf-8")))
    text = json_line(meta, indent=2) + "\n"
    _write_atomically(folder / "meta.json", lambda f: f.write(text.encode("utf-8")))
    for name in old:
        (folder / name).unlink(missing_ok=True)
    for path in folder.iterdir():
        if TEMPORARY_NAME.fullmatch(path.name):
            path.unlink(missing_ok=True)
    return meta


def _generation_files(meta: dict | None) -> set[str]:
    if meta is None:
        return set()
    names = {meta["embeddings"], meta["files"], *meta.get("superseded", [])}
    return names | ({meta["ann"]["file"]} if "ann" in meta else set())


def sweep_leftovers(folder: Path, meta: dict | None) -> list[str]:
    """Removes what a write of this index that failed (a full disk) or was killed left behind:
    data files of the next generation, a structure of the current one that meta.json (`meta`,
    as it is now) does not name, and temporary files. Other names, even of the same pattern,
    may be the user's and are left alone. Run under the index's lock, so that no write is under
    way. Returns the names removed."""
    generation = meta["generation"] if meta else 0
    candidates = {
        f"embeddings.{generation + 1}.npy",
        f"files.{generation + 1}.jsonl",
        f"ann.{generation + 1}.faiss",
        f"ann.{generation}.faiss",
    } - _generation_files(meta)
    removed = []
    for path in folder.iterdir():
        own = path.name in candidates or TEMPORARY_NAME.fullmatch(path.name)
        if own and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return sorted(removed)


def discard_unsaved(folder: Path, names: list[str]) -> None:
    """After a failed write: removes `names`, except those the meta.json on disk now names."""
    try:
        named = _generation_files(
            check_meta(
                _parse_json((folder / "meta.json").read_bytes(), folder), folder, READABLE_VERSIONS
            )
        )
    except (OSError, ValueError):
        named = set()
    for name in set(names) - named:
        with contextlib.suppress(OSError):  # the next run's sweep_leftovers tries again
            (folder / name).unlink(missing_ok=True)


def _rows(embeddings: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(embeddings, dtype="<f4")


def _fields(entry: dict) -> dict:
    fields = name_fields(entry["path"])
    for key, value in entry.items():
        if key != "path":  # a reason may quote a name's undecodable bytes as surrogates
            fields[key] = _valid(value) if isinstance(value, str) else value
    return fields


def _valid(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def replace_meta(folder: Path, meta: dict) -> None:
    """Rewrites meta.json of the current generation, its data files unchanged, in one rename."""
    meta = dict(meta, unreadable=[_fields(entry) for entry in meta.get("unreadable", [])])
    text = json_line(meta, indent=2) + "\n"
    _write_atomically(folder / "meta.json", lambda f: f.write(text.encode("utf-8")))


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


def _line(error: BaseException) -> str:
    return " ".join(str(error).split())
