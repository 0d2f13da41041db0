"""The FAISS structure: recall against exact search on clustered synthetic rows, its files in an
index folder, and clear errors for missing or damaged ones."""

import json
from pathlib import Path

import numpy as np
import pytest

from search import ann as ann_module
from search.ann import ANNError, build_ann, exact_search, read_ann, rebuild_ann, update_ann
from search.errors import EmptyIndexError, NoIndexError
from search.image_index import INDEX_FORMAT, load_index, save_index


def clustered(rows: int, dim: int, centres: int, seed: int) -> np.ndarray:
    """Unit rows drawn around `centres` random directions (seeded by `seed`, shared by calls)."""
    middle = np.random.default_rng(seed).standard_normal((centres, dim)).astype(np.float32)
    middle /= np.linalg.norm(middle, axis=1, keepdims=True)
    rng = np.random.default_rng(seed + rows)
    points = middle[rng.integers(0, centres, rows)]
    points = points + 0.6 * rng.standard_normal((rows, dim)).astype(np.float32) / np.sqrt(dim)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


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
    with pytest.raises(NoIndexError, match="no index in"):
        rebuild_ann(tmp_path / "nothing")
    empty = tmp_path / "empty.index"
    write_index(empty, rows[:0])
    with pytest.raises(EmptyIndexError, match="is empty"):
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
    with pytest.raises(ANNError, match="unreadable"):
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
