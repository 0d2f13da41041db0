"""Checks of everything an index reads from disk, each failing with one line naming the file.

An index folder may be shared, copied or hand-edited: no key, type, size or file name in it is
trusted before it is checked, and no array is allocated from a size the file merely declares.
"""

import os
import re
from pathlib import Path, PurePosixPath

import numpy as np

from search.file_names import name_from_fields

EMBEDDINGS_NAME = re.compile(r"embeddings\.[0-9]{1,18}\.npy")
FILES_NAME = re.compile(r"files\.[0-9]{1,18}\.jsonl")
ANN_NAME = re.compile(r"ann\.[0-9]{1,18}\.faiss")
# A data file another part of the index adds (an ANN structure): any plain, visible file name.
EXTRA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
RESERVED_NAMES = {"meta.json"}
EMBEDDING_DTYPE = np.dtype("<f4")


class IndexFileError(ValueError):
    """A file of an index is malformed; the message names the file."""


def check_meta(meta: object, path: Path, versions: tuple[int, ...]) -> dict:
    if not isinstance(meta, dict):
        raise IndexFileError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    version = meta.get("version")
    if meta.get("format") != "turkish-clip-index" or version not in versions:
        readable = " or ".join(str(v) for v in versions)
        raise IndexFileError(f"{path} is not a version {readable} turkish-clip-index file")
    for key, kind in (("model", str), ("root", str), ("embeddings", str), ("files", str)):
        _require(meta, key, kind, path)
    for key, low in (("dim", 1), ("count", 0), ("generation", 0)):
        _require_int(meta, key, low, path)
    if "revision" not in meta:
        raise IndexFileError(f"{path}: missing key 'revision'")
    if meta["revision"] is not None and not isinstance(meta["revision"], str):
        raise IndexFileError(f"{path}: 'revision' must be a string or null")
    _check_name(meta["embeddings"], EMBEDDINGS_NAME, "embeddings", path)
    _check_name(meta["files"], FILES_NAME, "files", path)
    if "ann" in meta:
        _check_ann(meta["ann"], path)
    superseded = meta.get("superseded", [])
    if not isinstance(superseded, list):
        raise IndexFileError(f"{path}: 'superseded' must be a list of file names")
    for name in superseded:
        _check_name(name, EXTRA_NAME, "superseded", path)
    if "fingerprint" in meta:
        fingerprint = meta["fingerprint"]
        if not isinstance(fingerprint, dict) or not all(
            isinstance(value, str) for value in fingerprint.values()
        ):
            raise IndexFileError(f"{path}: 'fingerprint' must be an object of strings")
    unreadable = meta.get("unreadable", [])
    if not isinstance(unreadable, list):
        raise IndexFileError(f"{path}: 'unreadable' must be a list")
    meta["unreadable"] = [check_entry(item, path, "unreadable", True) for item in unreadable]
    return meta


def _check_ann(entry: object, path: Path) -> None:
    """The approximate-search structure's entry: its file and how many lists a query probes."""
    if not isinstance(entry, dict):
        raise IndexFileError(f"{path}: 'ann' must be an object")
    _require(entry, "file", str, path, "ann")
    _check_name(entry["file"], ANN_NAME, "ann", path)
    _require_int(entry, "nprobe", 1, path, "ann")
    if "lists" in entry:
        _require_int(entry, "lists", 1, path, "ann")
    if "recall" in entry and not _is_curve_point([1, entry["recall"]]):
        raise IndexFileError(f"{path} (ann): 'recall' must be a number from 0 to 1")
    curve = entry.get("recall_curve", [])
    if not isinstance(curve, list) or not all(_is_curve_point(point) for point in curve):
        raise IndexFileError(f"{path} (ann): 'recall_curve' must be a list of [nprobe, recall]")


def _is_curve_point(point: object) -> bool:
    """[nprobe, recall]: a positive integer and a number from 0 to 1."""
    if not isinstance(point, list) or len(point) != 2:
        return False
    nprobe, recall = point
    number = isinstance(recall, (int, float)) and not isinstance(recall, bool)
    return type(nprobe) is int and nprobe >= 1 and number and 0 <= recall <= 1


def check_entry(entry: object, path: Path, where: object, with_reason: bool = False) -> dict:
    """One file entry, its name decoded: {"path", "size", "mtime_ns"} (and "reason")."""
    if not isinstance(entry, dict):
        raise IndexFileError(f"{path} ({where}): expected a JSON object")
    _require(entry, "path", str, path, where)
    for key in ("size", "mtime_ns"):
        _require_int(entry, key, None, path, where)
    if with_reason:
        _require(entry, "reason", str, path, where)
    try:
        name = name_from_fields(entry)
    except ValueError as error:
        raise IndexFileError(f"{path} ({where}): {error}") from None
    _check_relative(name, path, where)
    checked = {"path": name, "size": entry["size"], "mtime_ns": entry["mtime_ns"]}
    if with_reason:
        checked["reason"] = entry["reason"]
    return checked


def read_embeddings(path: Path, count: int, dim: int) -> np.ndarray:
    """The `(count, dim)` float32 rows of an `.npy` file, its header and size checked first."""
    with open(path, "rb") as file:
        try:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(file)
            else:
                raise ValueError(f"npy format version {version} is not supported")
        except ValueError as error:
            raise IndexFileError(f"{path}: not a readable .npy file: {_line(error)}") from None
        shape, fortran_order, dtype = header
        if dtype != EMBEDDING_DTYPE or fortran_order:
            raise IndexFileError(f"{path}: holds {dtype} data, expected little-endian float32")
        if shape != (count, dim):
            raise IndexFileError(f"{path}: declares shape {shape}, meta.json says ({count}, {dim})")
        expected = file.tell() + count * dim * EMBEDDING_DTYPE.itemsize
        actual = os.fstat(file.fileno()).st_size
        if actual != expected:
            raise IndexFileError(f"{path}: {actual:,} bytes, its header implies {expected:,}")
        rows = np.fromfile(file, dtype=EMBEDDING_DTYPE, count=count * dim)
    if not np.isfinite(rows).all():
        raise IndexFileError(f"{path}: holds NaN or infinite values")
    return rows.reshape(count, dim)


def _require(data: dict, key: str, kind: type, path: Path, where: object = None) -> None:
    if key not in data:
        raise IndexFileError(f"{path}{_at(where)}: missing key {key!r}")
    if not isinstance(data[key], kind):
        raise IndexFileError(f"{path}{_at(where)}: {key!r} must be a {kind.__name__}")
    if kind is str:
        try:
            data[key].encode("utf-8")
        except UnicodeEncodeError:
            raise IndexFileError(f"{path}{_at(where)}: {key!r} is not valid Unicode") from None


def _require_int(data: dict, key: str, low: int | None, path: Path, where: object = None) -> None:
    if key not in data:
        raise IndexFileError(f"{path}{_at(where)}: missing key {key!r}")
    value = data[key]
    if type(value) is not int or (low is not None and value < low):
        bound = "" if low is None else f" >= {low}"
        raise IndexFileError(f"{path}{_at(where)}: {key!r} must be an integer{bound}")


def _check_name(name: object, pattern: re.Pattern, key: str, path: Path) -> None:
    if not isinstance(name, str) or not pattern.fullmatch(name) or name in RESERVED_NAMES:
        raise IndexFileError(f"{path}: {key!r} must name a data file in the index folder")


def _check_relative(name: str, path: Path, where: object) -> None:
    parts = PurePosixPath(name).parts
    if not name or name.startswith("/") or ".." in parts or "\0" in name:
        raise IndexFileError(f"{path} ({where}): {name!r} is not a path inside the indexed folder")


def _at(where: object) -> str:
    return "" if where is None else f" ({where})"


def _line(error: BaseException) -> str:
    return " ".join(str(error).split())
