"""Teacher targets cached on disk, keyed by the teacher and the data.

The teacher embeds every English caption once; the embeddings and the Turkish captions are
written to a folder named by a digest of the teacher's files and the data, so later epochs and
later runs read them from disk without loading the teacher. The folder is written under a
temporary name and renamed when complete: an interrupted run leaves no half cache. A teacher
whose embeddings are not finite (a NaN weight) is refused while the cache is written, and a
cache is checked again when it is read.

Layout of a cache folder: `meta.json` (count, dim, sources), `targets.f32` (count x dim float32,
row-major), `turkish.jsonl` (one JSON string per row) and `offsets.npy` (each row's byte offset
in `turkish.jsonl`, for random access without reading the file whole).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from training.data import DataError, PairSource, fingerprint, read_pairs

CACHE_VERSION = 1


class CaptionTargets(torch.utils.data.Dataset):
    """Turkish captions and their teacher targets, read from a cache folder on demand."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.offsets = np.load(folder / "offsets.npy")
        count, dim = self.meta["count"], self.meta["dim"]
        self.targets = np.memmap(folder / "targets.f32", np.float32, "r", shape=(count, dim))
        self._texts = None

    def __len__(self) -> int:
        return self.meta["count"]

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor]:
        if self._texts is None:  # opened lazily: DataLoader workers each need their own handle
            self._texts = (self.folder / "turkish.jsonl").open("rb")
        self._texts.seek(int(self.offsets[index]))
        text = json.loads(self._texts.readline())
        return text, torch.from_numpy(np.array(self.targets[index]))

    def all_targets(self) -> torch.Tensor:
        return torch.from_numpy(np.array(self.targets))

    def all_texts(self) -> list[str]:
        with (self.folder / "turkish.jsonl").open(encoding="utf-8") as file:
            return [json.loads(line) for line in file]


class NonFiniteTargets(DataError):
    """The teacher's embeddings hold NaN or infinite values."""


def cache_key(source: PairSource, teacher_digest: str, data_digest: str | None = None) -> str:
    parts = [CACHE_VERSION, teacher_digest, data_digest or fingerprint(source)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def cached_targets(
    source: PairSource,
    teacher_name: str,
    teacher_digest: str,
    cache_dir: Path,
    embed: Callable[[], Callable[[list[str]], torch.Tensor]],
    batch_size: int,
    data_digest: str | None = None,
) -> CaptionTargets:
    """The cache folder for `source` and the teacher, built with `embed()` if missing.

    `embed` is only called (loading the teacher) when the cache does not exist yet;
    `data_digest` is `fingerprint(source)` where the caller has it already.
    """
    folder = cache_dir / cache_key(source, teacher_digest, data_digest)
    if not (folder / "meta.json").exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=cache_dir))
        try:
            _write_cache(staging, source, teacher_name, embed(), batch_size)
            staging.rename(folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    targets = CaptionTargets(folder)
    _check_finite(targets.targets, f"the cached teacher targets in {folder}", teacher_name, source)
    return targets


def _write_cache(
    folder: Path,
    source: PairSource,
    teacher_name: str,
    embed: Callable[[list[str]], torch.Tensor],
    batch_size: int,
) -> None:
    count, dim, offsets = 0, None, []
    with (
        (folder / "targets.f32").open("wb") as targets,
        (folder / "turkish.jsonl").open("wb") as texts,
    ):
        for batch in _batches(read_pairs(source), batch_size):
            embeddings = embed([english for english, _ in batch]).float().numpy()
            _check_finite(embeddings, "its embeddings", teacher_name, source, first_row=count)
            dim = embeddings.shape[1]
            targets.write(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
            for _, turkish in batch:
                offsets.append(texts.tell())
                texts.write(json.dumps(turkish, ensure_ascii=False).encode("utf-8") + b"\n")
            count += len(batch)
    if count == 0:
        raise DataError(f"{source.location}: no caption pairs (the data set is empty)")
    np.save(folder / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    meta = {"count": count, "dim": dim, "teacher": teacher_name, "data": source.location}
    (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n")


def _check_finite(
    rows: np.ndarray, what: str, teacher_name: str, source: PairSource, first_row: int = 0
) -> None:
    """Refuses NaN or infinite targets: a student trained on them learns NaN (read in blocks, as
    a cache can be larger than memory)."""
    block = 1 << 16
    for start in range(0, len(rows), block):
        finite = np.isfinite(rows[start : start + block]).all(axis=1)
        if not finite.all():
            row = first_row + start + int(np.argmin(finite)) + 1
            raise NonFiniteTargets(
                f"--teacher {teacher_name}: {what} are not finite (NaN or infinite) from caption "
                f"{row} of {source.location} on; its weights hold NaN or infinite values, or "
                "overflow: use another teacher"
            )


def _batches(pairs: Iterator[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    while batch := list(islice(pairs, size)):
        yield batch
