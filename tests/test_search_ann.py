"""The FAISS structure: recall against exact search on clustered synthetic rows, its files in an
index folder, and clear errors for missing or damaged ones."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from search import ann as ann_module
from search.ann import (
    ANNError,
    ANNFileError,
    TopKError,
    build_ann,
    exact_search,
    nprobe_for_recall,
    read_ann,
    rebuild_ann,
    recall_at_k,
    serialize_ann,
    update_ann,
)
from search.image_index import INDEX_FORMAT, load_index, save_index


def clustered(rows: int, dim: int, centres: int, seed: int) -> np.ndarray:
    """Unit rows drawn around `centres` random directions (seeded by `seed`, shared by calls)."""
    middle = np.random.default_rng(seed).standard_normal((centres, dim)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    rng = np.random.default_rng(seed + rows)
    points = middle[rng.integers(0, centres, rows)]
    points = points + 0.6 * rng.standard_normal((rows, dim)).astype(np.float32) / np.sqrt(dim)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)).astype(np.float32)


def text_queries(count: int, seed: int, gap: float, topics: int, spread: float) -> np.ndarray:
    """Text-like queries for `clustered(20_000, 64, 200, seed=3)` rows: topics of their own, each
    leaning towards one of the rows' centres, all shifted along one direction (the modality gap
    between text and image embeddings, here of strength `gap`)."""
    centres = unit(np.random.default_rng(3).standard_normal((200, 64)))  # as `clustered` draws
    direction = unit(np.random.default_rng(99).standard_normal(64))
    rng = np.random.default_rng(seed)
    own = unit(
        0.5 * unit(rng.standard_normal((topics, 64))) + centres[rng.integers(0, 200, topics)]
    )
    points = own[rng.integers(0, topics, count)]
    points = unit(points + spread * rng.standard_normal((count, 64)) / np.sqrt(64))
    return unit(gap * direction + points)


def write_index(folder: Path, embeddings: np.ndarray) -> None:
    """An index as `cli.py index` writes it, without any structure."""
    meta = {"format": INDEX_FORMAT, "version": 1, "model": "m", "revision": None}
    meta.update(dim=embeddings.shape[1], root="/photos", unreadable=[])
    files = [{"path": f"{row:05d}.jpg", "size": 1, "mtime_ns": 1} for row in range(len(embeddings))]
    save_index(folder, meta, files, embeddings, None)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return clustered(20_000, 64, 200, seed=3)


def test_recall_at_10_against_exact_search_on_unseen_queries(rows) -> None:
    ann, entry = build_ann(rows)
    queries = clustered(300, 64, 200, seed=3)  # same centres, new points
    truth = exact_search(rows, queries, 10)[1]
    found = ann.search(queries, 10)[1]
    hits = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), truth.tolist()))
    assert hits / truth.size >= 0.95
    assert entry["kind"] == "IVF-SQ8" and entry["rows"] == len(rows)
    assert 1 <= entry["nprobe"] <= entry["lists"] < len(rows)


def test_exact_search_matches_a_full_sort_with_ties_in_row_order() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((300, 8)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings[[10, 200, 50]] = embeddings[7]  # four equal rows: ties go by row number
    queries = np.stack([embeddings[7], rng.standard_normal(8).astype(np.float32)])
    scores, found = exact_search(embeddings, queries, 6, chunk=1)
    for query, got_rows, got_scores in zip(queries, found, scores):
        full = embeddings @ query
        expected = np.argsort(-full, kind="stable")[:6]
        assert got_rows.tolist() == expected.tolist()
        np.testing.assert_allclose(got_scores, full[expected], rtol=1e-6)
    assert found[0][:4].tolist() == [7, 10, 50, 200]
    assert exact_search(embeddings, queries, 1000)[1].shape == (2, 300)


def test_index_past_the_threshold_gets_a_structure_that_search_reads(tmp_path, rows) -> None:
    folder = tmp_path / "big.index"
    write_index(folder, rows[:100])
    index = load_index(folder)
    below = update_ann(folder, index.meta, rows[:100], threshold=101, generation=2)
    assert "ann" not in below and not list(folder.glob("ann.*"))
    meta = update_ann(folder, index.meta, rows, threshold=101, generation=2)
    files = [{"path": f"{row:05d}.jpg", "size": 1, "mtime_ns": 1} for row in range(len(rows))]
    save_index(folder, meta, files, rows, index.meta)
    saved = load_index(folder)
    assert saved.meta["ann"]["file"] == "ann.2.faiss"
    ann = read_ann(folder, saved.meta)
    assert ann.search(rows[:5], 1)[1][:, 0].tolist() == [0, 1, 2, 3, 4]
    # Shrinking below the threshold keeps a structure the index already had; a newer generation
    # replaces the old file.
    again = update_ann(folder, saved.meta, rows[:500], threshold=10**6, generation=3)
    save_index(folder, again, files[:500], rows[:500], saved.meta)
    assert sorted(path.name for path in folder.glob("ann.*")) == ["ann.3.faiss"]
    assert read_ann(folder, load_index(folder).meta).index.ntotal == 500


def test_ann_command_core_builds_for_an_existing_index_without_touching_rows(tmp_path, rows):
    folder = tmp_path / "old.index"
    write_index(folder, rows[:2000])
    before = load_index(folder)
    entry = rebuild_ann(folder)
    after = load_index(folder)
    assert after.meta["generation"] == before.meta["generation"]
    assert after.meta["embeddings"] == before.meta["embeddings"]
    np.testing.assert_array_equal(after.embeddings, before.embeddings)
    assert after.meta["ann"] == entry and (folder / entry["file"]).is_file()
    rebuild_ann(folder)  # a second build replaces the first in place
    assert [path.name for path in folder.glob("ann.*")] == [entry["file"]]


def test_missing_empty_and_damaged_indexes_and_structures_give_clear_errors(tmp_path, rows):
    with pytest.raises(ANNError, match="no index in"):
        rebuild_ann(tmp_path / "nothing")
    empty = tmp_path / "empty.index"
    write_index(empty, rows[:0])
    with pytest.raises(ANNError, match="is empty"):
        rebuild_ann(empty)
    folder = tmp_path / "damaged.index"
    write_index(folder, rows[:200])
    (folder / load_index(folder).meta["embeddings"]).write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="damaged"):
        rebuild_ann(folder)

    good = tmp_path / "good.index"
    write_index(good, rows[:200])
    rebuild_ann(good)
    meta = json.loads((good / "meta.json").read_text())
    (good / meta["ann"]["file"]).write_bytes(b"garbage")
    with pytest.raises(ANNError, match="unreadable.*--exact"):
        read_ann(good, meta)
    other = tmp_path / "other.index"
    write_index(other, rows[:300])
    rebuild_ann(other)
    other_meta = json.loads((other / "meta.json").read_text())
    (good / meta["ann"]["file"]).write_bytes((other / other_meta["ann"]["file"]).read_bytes())
    with pytest.raises(ANNError, match="holds 300 rows"):
        read_ann(good, meta)


def test_calibration_widens_the_search_until_recall_is_reached(monkeypatch, rows) -> None:
    monkeypatch.setattr(ann_module, "TARGET_RECALL", 1.0)
    _, entry = build_ann(rows[:5000])
    assert entry["recall"] == 1.0 or entry["nprobe"] == entry["lists"]
    assert entry["nprobe"] > 1


# Text queries across the modality gap.


def test_text_queries_across_a_modality_gap_reach_the_promised_recall(rows) -> None:
    """Calibration queries and the queries searched differ in topics, spread and gap, as a
    built-in caption set differs from what a user asks of their own photos."""
    calibration = text_queries(300, seed=1, gap=1.0, topics=50, spread=0.8)
    asked = text_queries(400, seed=2, gap=1.2, topics=80, spread=1.0)
    truth = exact_search(rows, asked, 10)[1]
    ann, entry = build_ann(rows, queries=calibration)
    assert recall_at_k(ann.search(asked, 10)[1], truth) >= 0.95
    assert entry["calibration"] == "captions" and entry["queries"] == 300
    # Calibrated on rows nudged by noise (without text queries), the same structure falls short.
    on_rows, rows_entry = build_ann(rows)
    assert rows_entry["calibration"] == "rows"
    assert recall_at_k(on_rows.search(asked, 10)[1], truth) < 0.95


def test_a_recall_asked_per_search_widens_or_narrows_it(rows) -> None:
    calibration = text_queries(300, seed=1, gap=1.0, topics=50, spread=0.8)
    asked = text_queries(400, seed=2, gap=1.2, topics=80, spread=1.0)
    truth = exact_search(rows, asked, 10)[1]
    ann, entry = build_ann(rows, queries=calibration)
    narrow = nprobe_for_recall(entry, 0.8)
    assert narrow is not None and narrow < entry["nprobe"]
    assert recall_at_k(ann.search(asked, 10, nprobe=narrow)[1], truth) >= 0.8
    wide = nprobe_for_recall(entry, 0.96)
    assert wide is not None and wide >= entry["nprobe"]
    assert recall_at_k(ann.search(asked, 10, nprobe=wide)[1], truth) >= 0.96
    # 8-bit values keep even a search of every list below 0.99 here: only exact search reaches it.
    assert nprobe_for_recall(entry, 0.99) is None
    older = {key: entry[key] for key in ("kind", "rows", "lists", "nprobe", "recall")}
    assert nprobe_for_recall(older | {"recall": 0.97}, 0.95) == 2 * entry["nprobe"]


def test_calibration_queries_of_another_size_are_refused(rows) -> None:
    with pytest.raises(ANNError, match="calibration queries of shape"):
        build_ann(rows[:1000], queries=np.ones((5, 8), np.float32))


# Huge numbers of results.


@pytest.mark.parametrize("k", [10**12, 3_000_000_000, np.int64(10**15)])
def test_a_huge_k_returns_every_row_once_and_allocates_no_more(rows, k) -> None:
    small = rows[:500]
    ann, _ = build_ann(small)
    scores, found = ann.search(small[:2], k)
    assert found.shape == (2, 500) and sorted(found[0].tolist()) == list(range(500))
    scores, found = exact_search(small, small[:2], k)
    assert found.shape == (2, 500) and scores.shape == (2, 500)


@pytest.mark.parametrize("k", [0, -1, 1e11, 2.5, True, "10"])
def test_a_k_that_is_not_a_positive_integer_is_refused(rows, k) -> None:
    ann, _ = build_ann(rows[:500])
    for search in (lambda: ann.search(rows[:1], k), lambda: exact_search(rows[:500], rows[:1], k)):
        with pytest.raises(TopKError, match="positive integer"):
            search()


# Structure files that do not belong to their index.


def forged_structure(embeddings: np.ndarray, ids: np.ndarray) -> bytes:
    """A valid IVF-SQ8 file over `embeddings` whose rows carry the ids `ids`."""
    ann, _ = build_ann(embeddings)
    index = ann.index
    index.reset()
    index.add_with_ids(embeddings, ids.astype(np.int64))
    return serialize_ann(ann)


@pytest.mark.parametrize(
    ("ids", "problem"),
    [
        (np.arange(300) + 1_000_000, r"names row 10002\d\d, outside the index's rows 0\.\.299"),
        (np.arange(300) - 5, r"names row -[1-5],"),
        (np.r_[np.arange(299), 0], "names some rows twice"),
    ],
)
def test_a_structure_with_row_ids_outside_its_index_is_refused_by_name(
    tmp_path, rows, ids, problem
) -> None:
    folder = tmp_path / "forged.index"
    write_index(folder, rows[:300])
    rebuild_ann(folder)
    meta = load_index(folder).meta
    path = folder / meta["ann"]["file"]
    path.write_bytes(forged_structure(rows[:300], ids))
    with pytest.raises(ANNFileError) as caught:
        read_ann(folder, meta)
    assert str(path) in str(caught.value) and re.search(problem, str(caught.value))


def test_rebuild_calibrates_on_the_queries_it_is_given(tmp_path, rows) -> None:
    folder = tmp_path / "text.index"
    write_index(folder, rows[:3000])
    seen = []

    def queries(meta: dict) -> np.ndarray:
        seen.append(meta["count"])
        return text_queries(120, seed=1, gap=1.0, topics=50, spread=0.8)

    entry = rebuild_ann(folder, queries=queries)
    assert seen == [3000] and entry["calibration"] == "captions" and entry["queries"] == 120
    probes = [nprobe for nprobe, _ in entry["recall_curve"]]
    assert probes[:-1] == [2**i for i in range(len(probes) - 1)]
    assert probes[-1] in (2 ** (len(probes) - 1), entry["lists"])
