"""An image index as one object: open it (checking it belongs to the model), search it, find
near-duplicates in it, look up a photo; it notices a newer generation on disk at the next query.

    index = PhotoIndex.open(folder, model, spec)
    hits = index.search(query_vector, k=10, photo_filter=parse_filter({"camera": "nikon"}))

Live updates: an update writes a new generation's data files and then replaces meta.json in one
rename (search/image_index.py). Each query first compares meta.json's identity (inode, time,
size) with the one it last read; where it changed, the new generation is read whole, checked
against the model, and swapped in by one assignment. A query works on the one generation it took
at its start, so it sees the old index or the new one, never a mix.
"""

import functools
import hashlib
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.embedding_model import EmbeddingModel, embedding_width, fingerprint
from inference.loading import ModelSpec
from search.ann import ANN, ANNError, exact_search, read_ann
from search.errors import (
    BadQueryError,
    EmptyIndexError,
    NoIndexError,
    UnknownPhotoError,
    WrongModelError,
)
from search.filters import NO_FILTER, PhotoColumns, PhotoFilter
from search.fingerprint import check_model_for_index
from search.image_index import Index, load_index

_READ_ATTEMPTS = 5
_DUPLICATE_CHUNK = 1024
# ANN scores are of 8-bit rows: candidate pairs are gathered a little below the threshold and
# then checked with the exact rows, so that rounding drops no pair.
_RANGE_MARGIN = 0.02


def photo_id(relative_path: str) -> str:
    """A photo's id: stable across updates and restarts, and revealing nothing of its path."""
    return hashlib.sha256(os.fsencode(relative_path)).hexdigest()[:24]


@dataclass(frozen=True)
class PhotoHit:
    """One search result: the photo's id, its path relative to the indexed root, its score
    (cosine similarity to the query), and what the index recorded of it."""

    id: str
    row: int
    path: str
    score: float
    taken: str | None
    camera: str | None


@dataclass(frozen=True)
class DuplicatePhoto:
    id: str
    path: str
    size: int
    taken: str | None
    score: float  # cosine similarity to the group's first photo (1.0 for that one)


@dataclass(frozen=True)
class DuplicateGroup:
    """Near-copies of one photo, largest file first; nothing is ever deleted."""

    photos: tuple[DuplicatePhoto, ...]


@dataclass(frozen=True)
class Generation:
    """One generation of the index, read whole: what a query works on."""

    index: Index
    ann: ANN | None
    ids: tuple[str, ...]
    rows: dict  # id -> row
    stamp: tuple

    @property
    def root(self) -> Path:
        return Path(self.index.meta["root"])

    @functools.cached_property
    def columns(self) -> PhotoColumns:
        """The filters' arrays, built at the first filtered query of this generation."""
        return PhotoColumns.of(self.index.files)


class PhotoIndex:
    """An index folder, open for queries; see the module's docstring."""

    def __init__(
        self,
        folder: Path,
        model: EmbeddingModel | None = None,
        spec: ModelSpec | None = None,
        use_ann: bool = True,
    ):
        self.folder = Path(folder)
        self.model = model
        self.spec = spec
        self.use_ann = use_ann
        self._reload = threading.Lock()
        self._generation = self._read()

    @classmethod
    def open(
        cls,
        folder: Path,
        model: EmbeddingModel | None = None,
        spec: ModelSpec | None = None,
        use_ann: bool = True,
    ) -> "PhotoIndex":
        """The index in `folder`, refused (WrongModelError) where it was built with another
        image side or width than `model` has (by content: names are not compared).
        Without `use_ann`, every search is exact and no structure is read."""
        return cls(folder, model, spec, use_ann)

    # The current generation.

    def current(self) -> Generation:
        """The newest generation on disk: re-read only where meta.json was replaced."""
        generation = self._generation
        if _stamp(self.folder) == generation.stamp:
            return generation
        with self._reload:
            if _stamp(self.folder) != self._generation.stamp:
                self._generation = self._read()  # one assignment: queries see old or new
            return self._generation

    @property
    def meta(self) -> dict:
        return self.current().index.meta

    @property
    def files(self) -> list[dict]:
        return self.current().index.files

    @property
    def embeddings(self) -> np.ndarray:
        return self.current().index.embeddings

    @property
    def root(self) -> Path:
        return self.current().root

    @property
    def has_ann(self) -> bool:
        return self.current().ann is not None

    # Queries.

    def search(
        self,
        query: np.ndarray,
        k: int,
        photo_filter: PhotoFilter = NO_FILTER,
        min_score: float | None = None,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> list[PhotoHit]:
        return self.search_many(np.atleast_2d(query), k, photo_filter, min_score, exact, nprobe)[0]

    def search_many(
        self,
        queries: np.ndarray,
        k: int,
        photo_filter: PhotoFilter = NO_FILTER,
        min_score: float | None = None,
        exact: bool = False,
        nprobe: int | None = None,
    ) -> list[list[PhotoHit]]:
        """The best `k` photos for each query (L2-normalised rows), best first, ties by path.

        The approximate structure answers where the index has one (unless `exact`), filters
        included; its candidates are then scored with the exact rows, so every score is the
        cosine similarity whichever way the photos were found. `k` is capped at the number of
        photos the filter lets through; `min_score` drops weaker results.
        """
        k = check_count(k)
        if min_score is not None:
            min_score = check_score(min_score, "min_score")
        generation = self.current()
        index = generation.index
        if not index.files:
            raise EmptyIndexError(f"index {self.folder} is empty")
        queries = self._check_queries(queries, index.meta["dim"])
        allowed = _allowed_rows(generation, photo_filter)
        k = min(k, len(index.files) if allowed is None else len(allowed))
        if k == 0:
            return [[] for _ in queries]
        if generation.ann is not None and not exact:
            found = generation.ann.search(queries, k, nprobe, allowed)[1]
            ranked = [
                _rescored(index.embeddings, query, rows) for query, rows in zip(queries, found)
            ]
        else:
            ranked = _exact(index.embeddings, queries, k, allowed)
        return [
            [
                _hit(generation, row, score)
                for row, score in pairs
                if min_score is None or score >= min_score
            ]
            for pairs in ranked
        ]

    def photo(self, id_: str) -> dict:
        """What the index recorded of a photo: id, path (relative to the root), size, mtime_ns,
        taken and camera."""
        generation = self.current()
        row = _row(generation, id_)
        entry = generation.index.files[row]
        return {
            "id": id_,
            "path": entry["path"],
            "size": entry["size"],
            "mtime_ns": entry["mtime_ns"],
            "taken": entry.get("taken"),
            "camera": entry.get("camera"),
        }

    def embedding_of(self, id_: str) -> np.ndarray:
        """An indexed photo's own row: "similar photos" needs no model call."""
        generation = self.current()
        return generation.index.embeddings[_row(generation, id_)]

    def duplicates(self, threshold: float, exact: bool = False) -> list[DuplicateGroup]:
        """Groups of photos whose embeddings are at least `threshold` alike (cosine), linked
        transitively; FAISS's range search finds the pairs where the index has a structure."""
        threshold = check_score(threshold, "threshold")
        if not 0 < threshold <= 1:
            raise BadQueryError(f"threshold must be above 0 and at most 1, got {threshold:g}")
        generation = self.current()
        embeddings = generation.index.embeddings
        if generation.ann is not None and not exact:
            pairs = _ann_pairs(generation.ann, embeddings, threshold)
        else:
            pairs = _exact_pairs(embeddings, threshold)
        return _groups(generation, pairs)

    # Reading.

    def _read(self) -> Generation:
        for attempt in range(_READ_ATTEMPTS):
            stamp = _stamp(self.folder)
            if stamp is None:
                raise NoIndexError(f"no index in {str(self.folder)!r}")
            try:
                index = load_index(self.folder)
                if index is None:
                    raise NoIndexError(f"no index in {str(self.folder)!r}")
                ann = None
                if self.use_ann and "ann" in index.meta:
                    ann = read_ann(self.folder, index.meta)
            except ANNError:
                if attempt == _READ_ATTEMPTS - 1:
                    raise
                continue  # a writer replaced the structure while it was read
            if _stamp(self.folder) != stamp:
                continue  # a writer switched generations while this one was read
            self._check_model(index.meta)
            ids = tuple(photo_id(entry["path"]) for entry in index.files)
            rows = {id_: row for row, id_ in enumerate(ids)}
            return Generation(index, ann, ids, rows, stamp)
        raise NoIndexError(f"index {self.folder} kept changing while it was read")

    def _check_model(self, meta: dict) -> None:
        """By content, not by name: any model whose image side made these rows may search them
        (a moved folder, a copy, a student with the same image tower)."""
        if self.model is None:
            return
        width = embedding_width(self.model)
        if meta["dim"] != width:
            raise WrongModelError(
                f"index {self.folder} holds {meta['dim']}-dim embeddings, the model {width}"
            )
        check_model_for_index(
            str(self.folder), meta, self.model, self.model.processor, fingerprint(self.model)
        )

    def _check_queries(self, queries: np.ndarray, dim: int) -> np.ndarray:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if queries.ndim != 2 or queries.shape[1] != dim:
            raise BadQueryError(
                f"a query embedding must have {dim} numbers, got {queries.shape[-1]}"
            )
        return queries


def query_embedding(values: object, dim: int) -> np.ndarray:
    """A caller's own embedding as a query: `dim` finite numbers, not all zero; L2-normalised."""
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise BadQueryError("embedding must be a list of numbers")
    vector = np.asarray(values, dtype=np.float64)
    if vector.shape != (dim,):
        raise BadQueryError(f"embedding must have {dim} numbers, got {len(vector)}")
    norm = float(np.linalg.norm(vector)) if np.isfinite(vector).all() else math.nan
    if not math.isfinite(norm) or norm == 0:
        raise BadQueryError("embedding must be finite numbers, not all zero")
    return (vector / norm).astype(np.float32)


def check_count(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise BadQueryError(f"k must be a whole number, got {k!r}")
    if k < 1:
        raise BadQueryError(f"k must be at least 1, got {k}")
    return k


def check_score(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadQueryError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise BadQueryError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _stamp(folder: Path) -> tuple | None:
    try:
        info = os.stat(folder / "meta.json")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _name(source: str, revision: str | None) -> str:
    return repr(f"{source}@{revision}" if revision else source)


def _row(generation: Generation, id_: str) -> int:
    row = generation.rows.get(id_) if isinstance(id_, str) else None
    if row is None:
        raise UnknownPhotoError(f"no photo with id {id_!r} in the index")
    return row


def _allowed_rows(generation: Generation, photo_filter: PhotoFilter) -> np.ndarray | None:
    if not photo_filter.active:
        return None
    return np.flatnonzero(photo_filter.mask(generation.columns)).astype(np.int64)


def _exact(
    embeddings: np.ndarray, queries: np.ndarray, k: int, allowed: np.ndarray | None
) -> list[list[tuple[int, float]]]:
    rows_of = allowed if allowed is not None else None
    subset = embeddings if allowed is None else embeddings[allowed]
    scores, rows = exact_search(subset, queries, k)
    if rows_of is not None:
        rows = rows_of[rows]
    return [
        [(int(row), float(score)) for row, score in zip(query_rows, query_scores)]
        for query_rows, query_scores in zip(rows, scores)
    ]


def _rescored(embeddings: np.ndarray, query: np.ndarray, rows: np.ndarray) -> list:
    rows = rows[rows >= 0]
    scores = embeddings[rows] @ query
    order = np.lexsort((rows, -scores))
    return [(int(rows[i]), float(scores[i])) for i in order]


def _hit(generation: Generation, row: int, score: float) -> PhotoHit:
    entry = generation.index.files[row]
    return PhotoHit(
        id=generation.ids[row],
        row=row,
        path=entry["path"],
        score=score,
        taken=entry.get("taken"),
        camera=entry.get("camera"),
    )


def _exact_pairs(embeddings: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    pairs = []
    for start in range(0, len(embeddings), _DUPLICATE_CHUNK):
        scores = embeddings[start : start + _DUPLICATE_CHUNK] @ embeddings.T
        for i, j in zip(*np.nonzero(scores >= threshold)):
            if start + i < j:
                pairs.append((int(start + i), int(j)))
    return pairs


def _ann_pairs(ann: ANN, embeddings: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    pairs = []
    radius = max(threshold - _RANGE_MARGIN, -1.0)
    for start in range(0, len(embeddings), _DUPLICATE_CHUNK):
        chunk = embeddings[start : start + _DUPLICATE_CHUNK]
        lims, _, rows = ann.range_search(chunk, radius)
        for offset in range(len(chunk)):
            i = start + offset
            found = rows[lims[offset] : lims[offset + 1]]
            found = found[found > i]
            exact = embeddings[found] @ embeddings[i]
            pairs += [(i, int(j)) for j in found[exact >= threshold]]
    return pairs


def _groups(generation: Generation, pairs: list[tuple[int, int]]) -> list[DuplicateGroup]:
    parent: dict[int, int] = {}

    def find(row: int) -> int:
        parent.setdefault(row, row)
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    for i, j in pairs:
        parent[find(i)] = find(j)
    members: dict[int, list[int]] = {}
    for row in list(parent):
        members.setdefault(find(row), []).append(row)
    files, embeddings = generation.index.files, generation.index.embeddings
    groups = []
    for rows in members.values():
        rows.sort(key=lambda row: (-files[row]["size"], files[row]["path"]))
        first = embeddings[rows[0]]
        photos = tuple(
            DuplicatePhoto(
                id=generation.ids[row],
                path=files[row]["path"],
                size=files[row]["size"],
                taken=files[row].get("taken"),
                score=1.0 if row == rows[0] else float(embeddings[row] @ first),
            )
            for row in rows
        )
        groups.append(DuplicateGroup(photos))
    return sorted(groups, key=lambda group: group.photos[0].path)
