"""The photo-search core's queries, exact against through the FAISS structure, side by side:
a plain query, a filtered one (a tenth of the photos pass), near-duplicate groups, and the cost of
checking for a newer generation before each query.

    python benchmarks/photo_search.py            # 20,000 rows: about a minute on 2 cores
    python benchmarks/photo_search.py --quick    # 3,000 rows: seconds, checks that every row runs

Rows are 512-d unit vectors around random centres (as in benchmarks/search.py), written as a real
index (search/image_index.py) with an IVF-SQ8 structure (search/ann.py); a tenth of the photos
carry the camera the filter asks for. Latency is the median of single queries; the recall of the
structure's answers is measured against the exact ones.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.harness import Row, print_table  # noqa: E402
from search.ann import update_ann  # noqa: E402
from search.filters import parse_filter  # noqa: E402
from search.image_index import save_index  # noqa: E402
from search.photo_index import PhotoIndex  # noqa: E402

DIM = 512


def synthetic_index(folder: Path, rows: int, seed: int = 0) -> np.ndarray:
    """An index of `rows` clustered unit vectors, one in ten taken with a "Nikon"; a fifth of
    the rows have a near-copy (the same vector moved slightly), for the duplicate groups."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(2, rows // 300), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = centres[rng.integers(0, len(centres), rows)]
    data += 0.6 * rng.standard_normal((rows, DIM)).astype(np.float32) / np.sqrt(DIM)
    copies = rng.choice(rows, rows // 5, replace=False)
    data[copies[1::2]] = data[copies[::2]] + 0.01 * rng.standard_normal(
        (len(copies[1::2]), DIM)
    ).astype(np.float32) / np.sqrt(DIM)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    files = [
        {
            "path": f"{number // 1000:03d}/{number:07d}.jpg",
            "size": 1000 + number,
            "mtime_ns": number,
            "taken": "2024-01-01T00:00:00",
            "camera": "NIKON D750" if number % 10 == 0 else "Canon EOS R6",
        }
        for number in range(rows)
    ]
    meta = {"model": "synthetic", "revision": None, "dim": DIM, "root": "/photos"}
    meta = update_ann(folder, meta, data, 1, 1)
    save_index(folder, meta, files, data, None)
    return data


def median_ms(search, queries: np.ndarray) -> float:
    search(queries[0])  # warm-up
    times = []
    for query in queries[1:]:
        start = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def recall(found: list[list], truth: list[list]) -> float:
    hits = sum(len({h.row for h in a} & {h.row for h in b}) for a, b in zip(found, truth))
    return hits / max(1, sum(len(b) for b in truth))


def measure(rows: int, queries: int, threshold: float, folder: Path) -> list[Row]:
    data = synthetic_index(folder, rows)
    rng = np.random.default_rng(1)
    picks = data[rng.choice(rows, queries, replace=False)]
    asked = picks + 0.5 * rng.standard_normal(picks.shape).astype(np.float32) / np.sqrt(DIM)
    asked /= np.linalg.norm(asked, axis=1, keepdims=True)
    index = PhotoIndex.open(folder)
    nikon = parse_filter({"camera": "nikon"})
    results = []
    for name, photo_filter in (("query", None), ("query, 1 in 10 photos pass", nikon)):
        options = {} if photo_filter is None else {"photo_filter": photo_filter}
        exact = median_ms(lambda q, o=options: index.search(q, 10, exact=True, **o), asked)
        ann = median_ms(lambda q, o=options: index.search(q, 10, **o), asked)
        truth = [index.search(q, 10, exact=True, **options) for q in asked]
        found = [index.search(q, 10, **options) for q in asked]
        results.append(Row(f"{name}, exact (p50)", exact, "ms."))
        results.append(
            Row(f"{name}, IVF-SQ8 (p50)", ann, "ms.", f"exact ({name})", exact / max(ann, 1e-9))
        )
        results.append(Row(f"{name}, IVF-SQ8 recall@10", recall(found, truth), ""))
    start = time.perf_counter()
    exact_groups = index.duplicates(threshold, exact=True)
    exact_seconds = time.perf_counter() - start
    start = time.perf_counter()
    ann_groups = index.duplicates(threshold)
    ann_seconds = time.perf_counter() - start
    exact_pairs = {frozenset(p.id for p in g.photos) for g in exact_groups}
    ann_pairs = {frozenset(p.id for p in g.photos) for g in ann_groups}
    results.append(Row(f"duplicate groups at {threshold}, exact", exact_seconds, "s"))
    results.append(
        Row(
            f"duplicate groups at {threshold}, FAISS range search",
            ann_seconds,
            "s",
            "exact",
            exact_seconds / max(ann_seconds, 1e-9),
        )
    )
    share = len(exact_pairs & ann_pairs) / max(1, len(exact_pairs))
    results.append(Row("duplicate groups found alike by both (share)", share, ""))
    start = time.perf_counter()
    for _ in range(1000):
        index.current()
    per_check = (time.perf_counter() - start) / 1000 * 1e6
    results.append(Row("check for a newer generation, per query", per_check, "µs"))
    return results


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 rows: a smoke test")
    parser.add_argument("--rows", type=int, help="index size (default 20,000)")
    args = parser.parse_args(argv)
    rows = args.rows or (3000 if args.quick else 20_000)
    queries = 20 if args.quick else 200
    with tempfile.TemporaryDirectory() as directory:
        results = measure(rows, queries, 0.99, Path(directory) / "photos.index")
    print_table(results, f"Photo search over {rows:,} rows of {DIM} dims, single queries")
    return results


if __name__ == "__main__":
    main()
