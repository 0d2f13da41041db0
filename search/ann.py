"""Approximate nearest-neighbour search over an index's embeddings with FAISS, and exact search.

The structure is an inverted file with 8-bit scalar quantisation (IVF-SQ8), chosen by
`benchmarks/search.py` over HNSW and IVF-PQ: on a million 512-d rows it keeps recall@10 above
0.95 at a quarter of the exact search's memory, while IVF-PQ needs re-ranking with the full
vectors to reach that recall and HNSW holds the full vectors plus its graph.

The structure lives in the index folder as `ann.<generation>.faiss`; meta.json's `ann` entry
names it and records how to search it: `nprobe`, the lists searched per query, chosen at build
time by measuring recall@10 against exact search on calibration queries (text embeddings of
Turkish captions, `search/calibration.py`), with margins; and the measured `recall_curve`, from
which `nprobe_for_recall` picks a wider search for a higher recall on request.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.errors import BadQueryError, EmptyIndexError, NoIndexError, SearchError
from search.image_index import (
    discard_unsaved,
    load_index,
    replace_meta,
    sweep_leftovers,
    write_bytes_atomically,
)
from search.locking import index_lock

ANN_KIND = "IVF-SQ8"
DEFAULT_ANN_THRESHOLD = 100_000
PROMISED_RECALL = 0.95  # recall@10 against exact search, as the README states it
# Calibration queries are a sample of what users ask, not the queries themselves, and another
# collection's geometry differs from theirs. Two margins: the number of lists per query must
# reach this much more recall than is asked on the calibration queries, and is then doubled.
RECALL_MARGIN = 0.02
NPROBE_MARGIN = 2
TARGET_RECALL = PROMISED_RECALL + RECALL_MARGIN
# The recall curve is measured up to here, or until it stops rising (8-bit values bound it
# below 1 even over all lists), so that `--recall R` can pick a wider search later.
CURVE_CEILING = 0.995
PLATEAU_GAIN = 0.002
CALIBRATION_K = 10
CALIBRATION_QUERIES = 200  # rows nudged by noise, where no query vectors are given
TRAINING_ROWS_PER_LIST = 64


class ANNError(SearchError):
    """A structure that cannot be built, read, or does not match its index."""


class ANNFileError(ANNError):
    """A structure file that is unreadable or disagrees with its index; the message names it."""


class NoFaissError(ANNError):
    """FAISS is not installed: approximate search is unavailable, exact search is not."""


class NoIndexForANNError(ANNError, NoIndexError):
    """No index to build a structure for."""


class EmptyIndexForANNError(ANNError, EmptyIndexError):
    """An empty index: nothing to build a structure over."""


class TopKError(BadQueryError):
    """A number of results that is not a positive integer."""


@dataclass
class ANN:
    """A loaded structure and the number of inverted lists it searches per query."""

    index: object  # faiss.Index
    nprobe: int

    def search(
        self,
        queries: np.ndarray,
        k: int,
        nprobe: int | None = None,
        allowed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the `k` best rows for each query (at most every row: FAISS
        allocates `k` results per query); `nprobe` overrides the structure's own. `allowed`
        (row numbers) restricts the search to those rows, inside FAISS."""
        faiss = _faiss()

        k = top_k(k, self.index.ntotal)
        lists = faiss.extract_index_ivf(self.index).nlist
        probe = max(1, min(int(nprobe or self.nprobe), lists))
        params = faiss.SearchParametersIVF(nprobe=probe)
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


def top_k(k: int, rows: int) -> int:
    """`k` capped at the number of rows, so that a huge k allocates nothing more than all rows."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise TopKError(f"the number of results must be a positive integer, got {k!r}")
    return int(min(k, rows))


def list_count(rows: int) -> int:
    """About sqrt(rows) lists, each with enough rows to train its centroid (FAISS wants 39)."""
    return max(1, min(round(math.sqrt(rows)), rows // 39))


def build_ann(
    embeddings: np.ndarray,
    seed: int = 0,
    queries: np.ndarray | None = None,
    source: str = "captions",
) -> tuple[ANN, dict]:
    """An IVF-SQ8 structure over `embeddings` (L2-normalised rows), and its meta.json entry.

    `queries` (L2-normalised, e.g. text embeddings of `search/calibration.py`'s captions, named
    by `source`) calibrate how many lists a query searches; without them, rows nudged by noise
    stand in, which suits image queries and overestimates the recall of text ones.

    k-means trains on a sample of 64 rows per list: more costs minutes on a million rows and
    moves recall by less than the calibration's own noise.
    """
    faiss = _faiss()

    rows, dim = embeddings.shape
    if rows == 0:
        raise ANNError("cannot build an approximate index over an empty index")
    if queries is not None and (queries.ndim != 2 or queries.shape[1] != dim or not len(queries)):
        raise ANNError(f"calibration queries of shape {queries.shape} for {dim}-dim rows")
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
    if queries is None:
        queries, source = _nudged_rows(data, rng), "rows"
    curve = recall_curve(index, data, _as_queries(queries))
    reached = _first_reaching(curve, TARGET_RECALL)
    nprobe = lists if reached is None else min(lists, reached[0] * NPROBE_MARGIN)
    recall = max(measured for probed, measured in curve if probed <= nprobe)  # a lower bound
    entry = {"kind": ANN_KIND, "rows": rows, "lists": lists, "nprobe": nprobe, "recall": recall}
    entry.update(calibration=source, queries=len(queries), recall_curve=curve)
    return ANN(index=index, nprobe=nprobe), entry


def recall_curve(index, data: np.ndarray, queries: np.ndarray) -> list[list]:
    """[[nprobe, recall@10], ...] for nprobe 1, 2, 4, ... up to all lists, until the recall
    reaches `CURVE_CEILING`, or stops rising past `TARGET_RECALL`; exact answers come from one
    matrix product."""
    k = min(CALIBRATION_K, len(data))
    truth = exact_search(data, queries, k)[1]
    ann = ANN(index=index, nprobe=1)
    curve: list[list] = []
    while True:
        recall = recall_at_k(ann.search(queries, k)[1], truth)
        rising = not curve or recall - curve[-1][1] >= PLATEAU_GAIN
        curve.append([ann.nprobe, round(recall, 4)])
        # A flat stretch below the target may still lead up to it: only past it does one end.
        if (
            recall >= CURVE_CEILING
            or ann.nprobe >= index.nlist
            or (not rising and recall >= TARGET_RECALL)
        ):
            return curve
        ann.nprobe = min(index.nlist, ann.nprobe * 2)


def nprobe_for_recall(entry: dict, recall: float) -> int | None:
    """Lists per query for a recall@10 of `recall`, with the same margins as the structure's
    default; None where the calibration never reached it (exact search then)."""
    target = min(1.0, recall + RECALL_MARGIN)
    curve = entry.get("recall_curve")
    if not curve:  # structures built before the curve was recorded
        curve = [[entry["nprobe"], entry.get("recall", 0.0)]]
    reached = _first_reaching(curve, target)
    return None if reached is None else reached[0] * NPROBE_MARGIN


def _first_reaching(curve: list[list], target: float) -> tuple[int, float] | None:
    for nprobe, recall in curve:
        if recall >= target:
            return nprobe, recall
    return None


def _nudged_rows(data: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows of the index moved slightly off themselves, so that a row does not find itself."""
    picks = rng.choice(len(data), min(len(data), CALIBRATION_QUERIES), replace=False)
    noise = rng.standard_normal((len(picks), data.shape[1])).astype(np.float32)
    queries = data[picks] + 0.5 * noise / math.sqrt(data.shape[1])
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


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
    k = top_k(k, len(embeddings))
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
        raise NoFaissError(
            f"approximate search needs FAISS ({error}): pip install faiss-cpu"
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
    """The structure meta.json names, checked against the index it belongs to: its size, and
    that its row ids are each row of the index once (a forged or foreign file could name rows
    the index does not have)."""
    faiss = _faiss()

    entry = meta["ann"]
    path = folder / entry.get("file", "")
    try:
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        index = faiss.deserialize_index(data)
        ivf = faiss.extract_index_ivf(index)
    except (OSError, RuntimeError) as error:
        reason = " ".join(str(error).split())[:200]
        raise ANNFileError(f"approximate index {path} is unreadable ({reason})") from None
    if index.ntotal != meta["count"] or index.d != meta["dim"]:
        raise ANNFileError(
            f"approximate index {path} holds {index.ntotal} rows of {index.d} dims, the index "
            f"{meta['count']} of {meta['dim']}"
        )
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ANNFileError(f"approximate index {path} does not rank by inner product")
    problem = _row_id_problem(faiss, ivf, meta["count"])
    if problem:
        raise ANNFileError(f"approximate index {path} {problem}")
    return ANN(index=index, nprobe=int(entry["nprobe"]))


def _row_id_problem(faiss, ivf, rows: int) -> str:
    """What is wrong with the row ids in the inverted lists, or "" where each row is there once."""
    seen = np.zeros(rows, dtype=bool)
    invlists = ivf.invlists
    for number in range(ivf.nlist):
        size = invlists.list_size(number)
        if size == 0:
            continue
        pointer = invlists.get_ids(number)
        ids = faiss.rev_swig_ptr(pointer, size).copy()
        invlists.release_ids(number, pointer)
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= rows:
            bad = low if low < 0 else high
            return f"names row {bad}, outside the index's rows 0..{rows - 1}"
        if seen[ids].any() or len(np.unique(ids)) != len(ids):
            return "names some rows twice"
        seen[ids] = True
    return "" if seen.all() else "misses some of the index's rows"


def update_ann(
    folder: Path,
    meta: dict,
    embeddings: np.ndarray,
    threshold: int,
    generation: int,
    queries: Callable[[], np.ndarray | None] | None = None,
) -> dict:
    """meta.json's content for an index about to be saved as `generation`: with a structure
    built over `embeddings` once they reach `threshold` rows (or where one existed), else none.
    `queries()` gives the vectors that calibrate it (see `build_ann`), asked only where a
    structure is built.

    The structure is rebuilt rather than patched: rows are kept sorted by path, so an update
    renumbers them, and retraining the lists on the new rows keeps them balanced.
    """
    meta = dict(meta)
    had_ann = meta.pop("ann", None) is not None
    if len(embeddings) == 0 or (len(embeddings) < threshold and not had_ann):
        return meta
    ann, entry = build_ann(embeddings, queries=queries() if queries is not None else None)
    entry["file"] = ann_file_name(generation)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(folder / entry["file"], serialize_ann(ann))
    return dict(meta, ann=entry)


def rebuild_ann(
    folder: Path,
    wait: float = 60.0,
    warn: Callable[[str], None] | None = None,
    queries: Callable[[dict], np.ndarray | None] | None = None,
) -> dict:
    """Builds the structure of an existing index from its stored rows; no image is read.

    `queries(meta)` gives the calibration queries for the index (None: its rows stand in).
    The structure joins the current generation under the index's write lock: meta.json is
    replaced last, in one rename, and only the structure it named before is removed.
    """
    if not folder.is_dir():  # the lock would create it
        raise NoIndexForANNError(f"no index in {str(folder)!r}")
    with index_lock(folder, wait, warn):
        index = load_index(folder)
        if index is None:
            raise NoIndexForANNError(f"no index in {str(folder)!r}")
        sweep_leftovers(folder, index.meta)
        if not index.files:
            raise EmptyIndexForANNError(
                f"index {folder} is empty: there is nothing to build a structure over"
            )
        previous = index.meta.get("ann")
        generation = index.meta["generation"]
        vectors = queries(index.meta) if queries is not None else None
        try:
            meta = dict(index.meta, ann={})
            meta = update_ann(folder, meta, index.embeddings, 0, generation, lambda: vectors)
            replace_meta(folder, meta)
        except BaseException:  # a full disk, say: no structure that meta.json does not name
            discard_unsaved(folder, [ann_file_name(generation)])
            raise
    if previous and previous["file"] != meta["ann"]["file"]:
        (folder / previous["file"]).unlink(missing_ok=True)
    return meta["ann"]
