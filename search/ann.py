"""Approximate nearest-neighbour search over an index's embeddings with FAISS, and exact search.

The structure is an inverted file with 8-bit scalar quantisation (IVF-SQ8), chosen by
`benchmarks/search.py` over HNSW and IVF-PQ: on a million 512-d rows it keeps recall@10 above
0.95 at a quarter of the exact search's memory, while IVF-PQ needs re-ranking with the full
vectors to reach that recall and HNSW holds the full vectors plus its graph.

The structure lives in the index folder as `ann.<generation>.faiss`; meta.json's `ann` entry
names it and records how to search it (`nprobe`, chosen at build time by measuring recall on
the index's own rows).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.errors import EmptyIndexError, NoIndexError, SearchError
from search.image_index import load_index, replace_meta, write_bytes_atomically
from search.locking import index_lock

ANN_KIND = "IVF-SQ8"
DEFAULT_ANN_THRESHOLD = 100_000
TARGET_RECALL = 0.97  # measured on the index's own rows; a margin above the promised 0.95
CALIBRATION_QUERIES = 200
TRAINING_ROWS_PER_LIST = 64


class ANNError(SearchError):
    """A structure that cannot be built, read, or does not match its index."""


@dataclass
class ANN:
    """A loaded structure and the number of inverted lists it searches per query."""

    index: object  # faiss.Index
    nprobe: int

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the `k` best rows for each query; rows are -1 where fewer exist.
        `allowed` (row numbers) restricts the search to those rows, inside FAISS."""
        faiss = _faiss()

        params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params.sel = selector  # `selector` stays referenced until the search returns
        return self.index.search(_as_queries(queries), k, params=params)

    def range_search(
        self, queries: np.ndarray, radius: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lims, scores, rows): the rows scoring above `radius` for each query, FAISS's layout
        (query i's answers are at lims[i]:lims[i + 1])."""
        faiss = _faiss()

        params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        return self.index.range_search(_as_queries(queries), float(radius), params=params)


def list_count(rows: int) -> int:
    """About sqrt(rows) lists, each with enough rows to train its centroid (FAISS wants 39)."""
    return max(1, min(round(math.sqrt(rows)), rows // 39))


def build_ann(embeddings: np.ndarray, seed: int = 0) -> tuple[ANN, dict]:
    """An IVF-SQ8 structure over `embeddings` (L2-normalised rows), and its meta.json entry.

    k-means trains on a sample of 64 rows per list: more costs minutes on a million rows and
    moves recall by less than the calibration's own noise.
    """
    faiss = _faiss()

    rows, dim = embeddings.shape
    if rows == 0:
        raise ANNError("cannot build an approximate index over an empty index")
    data = np.ascontiguousarray(embeddings, dtype=np.float32)
    lists = list_count(rows)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = seed
    index.cp.min_points_per_centroid = 1  # list_count already keeps lists full; no warning
    rng = np.random.default_rng(seed)
    sample = rng.choice(rows, min(rows, lists * TRAINING_ROWS_PER_LIST), replace=False)
    index.train(data[np.sort(sample)])
    index.add(data)
    nprobe, recall = _calibrate(index, data, rng)
    entry = {"kind": ANN_KIND, "rows": rows, "lists": lists, "nprobe": nprobe, "recall": recall}
    return ANN(index=index, nprobe=nprobe), entry


def _calibrate(index, data: np.ndarray, rng: np.random.Generator) -> tuple[int, float]:
    """The fewest lists per query that find `TARGET_RECALL` of the exact top 10.

    Queries are rows of the index moved slightly off themselves, so that a row does not simply
    find itself; their exact answers come from one matrix product.
    """
    picks = rng.choice(len(data), min(len(data), CALIBRATION_QUERIES), replace=False)
    noise = rng.standard_normal((len(picks), data.shape[1])).astype(np.float32)
    queries = data[picks] + 0.5 * noise / math.sqrt(data.shape[1])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    k = min(10, len(data))
    truth = exact_search(data, queries, k)[1]
    ann = ANN(index=index, nprobe=1)
    recall = 0.0
    while True:
        recall = recall_at_k(ann.search(queries, k)[1], truth)
        if recall >= TARGET_RECALL or ann.nprobe >= index.nlist:
            return ann.nprobe, recall
        ann.nprobe = min(index.nlist, ann.nprobe * 2)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top-k rows (`truth`, one row per query) that `found` contains."""
    hits = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth))
    return hits / truth.size


def exact_search(
    embeddings: np.ndarray, queries: np.ndarray, k: int, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the exact top `k` by inner product, best first, ties by row order.

    A matrix product with a partial sort measured faster here than FAISS's flat index (p50 of a
    single query on a million rows: 0.8 s against 1.5 s, `benchmarks/search.py`); queries go in
    chunks so that the score matrix stays small on large indexes.
    """
    queries = _as_queries(queries)
    k = min(k, len(embeddings))
    scores_out = np.empty((len(queries), k), np.float32)
    rows_out = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ embeddings.T
        if k < scores.shape[1]:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)
        rows_out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
        scores_out[start : start + chunk] = np.take_along_axis(top_scores, order, axis=1)
    return scores_out, rows_out


def _faiss():
    try:
        import faiss
    except ImportError as error:
        raise ANNError(
            f"approximate search needs FAISS ({error}): pip install faiss-cpu, or search exactly"
        ) from None
    return faiss


def _as_queries(queries: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)


def ann_file_name(generation: int) -> str:
    return f"ann.{generation}.faiss"


def serialize_ann(ann: ANN) -> bytes:
    faiss = _faiss()

    return faiss.serialize_index(ann.index).tobytes()


def read_ann(folder: Path, meta: dict) -> ANN:
    """The structure meta.json names, checked against the index it belongs to."""
    faiss = _faiss()

    entry = meta["ann"]
    path = folder / entry.get("file", "")
    try:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        index = faiss.deserialize_index(data)
    except (OSError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise ANNError(f"approximate index {path} is unreadable ({reason})") from None
    if index.ntotal != meta["count"] or index.d != meta["dim"]:
        raise ANNError(
            f"approximate index {path} holds {index.ntotal} rows of {index.d} dims, the index "
            f"{meta['count']} of {meta['dim']}"
        )
    return ANN(index=index, nprobe=int(entry["nprobe"]))


def update_ann(
    folder: Path, meta: dict, embeddings: np.ndarray, threshold: int, generation: int
) -> dict:
    """meta.json's content for an index about to be saved as `generation`: with a structure
    built over `embeddings` once they reach `threshold` rows (or where one existed), else none.

    The structure is rebuilt rather than patched: rows are kept sorted by path, so an update
    renumbers them, and retraining the lists on the new rows keeps them balanced.
    """
    meta = dict(meta)
    had_ann = meta.pop("ann", None) is not None
    if len(embeddings) == 0 or (len(embeddings) < threshold and not had_ann):
        return meta
    ann, entry = build_ann(embeddings)
    entry["file"] = ann_file_name(generation)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(folder / entry["file"], serialize_ann(ann))
    return dict(meta, ann=entry)


def rebuild_ann(
    folder: Path, wait: float = 60.0, warn: Callable[[str], None] | None = None
) -> dict:
    """Builds the structure of an existing index from its stored rows; no image is read.

    The structure joins the current generation under the index's write lock: meta.json is
    replaced last, in one rename, and only the structure it named before is removed.
    """
    if not folder.is_dir():  # the lock would create it
        raise NoIndexError(f"no index in {str(folder)!r}")
    with index_lock(folder, wait, warn):
        index = load_index(folder)
        if index is None:
            raise NoIndexError(f"no index in {str(folder)!r}")
        if not index.files:
            raise EmptyIndexError(
                f"index {folder} is empty: there is nothing to build a structure over"
            )
        previous = index.meta.get("ann")
        generation = index.meta["generation"]
        meta = update_ann(folder, dict(index.meta, ann={}), index.embeddings, 0, generation)
        replace_meta(folder, meta)
    if previous and previous["file"] != meta["ann"]["file"]:
        (folder / previous["file"]).unlink(missing_ok=True)
    return meta["ann"]
