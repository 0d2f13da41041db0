"""Exact search against approximate structures on clustered synthetic embeddings.

    python benchmarks/search.py            # 1,000,000 rows (the 3 candidates on 100,000): minutes
    python benchmarks/search.py --quick    # 5,000 rows: seconds, checks that every row runs

Rows are 512-d unit vectors drawn around 3,000 random centres, so that neighbours are not all
equally far; queries are new points around the same centres. Each structure is built here,
written to disk, then loaded and searched in a fresh process, whose resident memory growth over
its own imports is the structure's memory. Latency is per single query; recall@10 is against
the exact top 10.

A third table searches the same rows with text-like queries: points around topics of their own,
each leaning towards one of the rows' centres, all shifted along one direction (the modality gap
between text and image embeddings). It compares the structure calibrated on rows nudged by noise
with the one calibrated on other text-like queries (as `cli.py index` calibrates on Turkish
captions), each searched with its own chosen nprobe.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from search.ann import build_ann, exact_search, recall_at_k, serialize_ann  # noqa: E402

DIM = 512
K = 10
TARGET = 0.95


@dataclass(frozen=True)
class Size:
    rows: int
    candidate_rows: int
    centres: int
    queries: int
    pq_codes: int  # PQ codes per row, of pq_bits bits; the smoke test's are far cheaper to train
    pq_bits: int


FULL = Size(
    rows=1_000_000, candidate_rows=100_000, centres=3000, queries=300, pq_codes=64, pq_bits=8
)
QUICK = Size(rows=5000, candidate_rows=5000, centres=50, queries=20, pq_codes=8, pq_bits=4)


def clustered(rows: int, centres: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((rows, centres.shape[1]), np.float32)
    for start in range(0, rows, 100_000):  # in slices: the noise of a million rows is 2 GB
        count = min(100_000, rows - start)
        noise = rng.standard_normal((count, centres.shape[1]), dtype=np.float32)
        block = centres[rng.integers(0, len(centres), count)] + 0.6 * noise / np.sqrt(DIM)
        out[start : start + count] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def text_like(count: int, centres: np.ndarray, seed: int, gap: float, topics: int) -> np.ndarray:
    """Queries across a modality gap of strength `gap` (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(99).standard_normal(DIM).astype(np.float32)
    own = rng.standard_normal((topics, DIM)).astype(np.float32)
    own = 0.5 * own / np.linalg.norm(own, axis=1, keepdims=True)
    own += centres[rng.integers(0, len(centres), topics)]
    points = own[rng.integers(0, topics, count)]
    points += rng.standard_normal((count, DIM)).astype(np.float32) / np.sqrt(DIM)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    queries = gap * direction / np.linalg.norm(direction) + points
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def text_query_rows(data: np.ndarray, centres: np.ndarray) -> list[dict]:
    """Recall@10 and p50 of single text-like queries, per calibration (in this process)."""
    asked = text_like(300, centres, seed=2, gap=2.4, topics=80)
    truth = exact_search(data, asked, K)[1]
    results = []
    for name, calibration in (
        ("calibrated on nudged rows", None),
        ("calibrated on text-like queries", text_like(300, centres, seed=1, gap=2.0, topics=50)),
    ):
        start = time.perf_counter()
        ann, entry = build_ann(data, queries=calibration)
        built = time.perf_counter() - start
        times, found = [], []
        for query in asked:
            start = time.perf_counter()
            found.append(ann.search(query[None], K)[1][0])
            times.append(time.perf_counter() - start)
        recall = recall_at_k(np.asarray(found), truth)
        p50 = 1000 * float(np.percentile(times, 50))
        results.append(
            dict(name=name, build_s=built, nprobe=entry["nprobe"], recall=recall, p50_ms=p50)
        )
    return results


# Building (in this process)


def build_hnsw(data: np.ndarray):
    import faiss

    index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(data)
    return index


def build_ivf_pq(data: np.ndarray, codes: int, bits: int):
    import faiss

    lists = max(1, int(np.sqrt(len(data))))
    index = faiss.IndexIVFPQ(
        faiss.IndexFlatIP(DIM), DIM, lists, codes, bits, faiss.METRIC_INNER_PRODUCT
    )
    sample = np.random.default_rng(0).choice(len(data), min(len(data), 256 * lists), replace=False)
    index.train(data[np.sort(sample)])
    index.add(data)
    return index


def tune(index, parameter: str, queries: np.ndarray, truth: np.ndarray) -> tuple[int, float]:
    """The smallest power-of-two search parameter that reaches recall@10 of TARGET."""
    import faiss

    value, recall = 1, 0.0
    while value <= 4096:
        if parameter == "nprobe":
            params = faiss.SearchParametersIVF(nprobe=min(value, index.nlist))
        else:
            params = faiss.SearchParametersHNSW(efSearch=max(value, K))
        recall = recall_at_k(index.search(queries, K, params=params)[1], truth)
        if recall >= TARGET or (parameter == "nprobe" and value >= index.nlist):
            break
        value *= 2
    return value, recall


# Measuring (in a fresh process)


def measure(method: str, folder: Path, setting: int) -> dict:
    """Loads one structure, searches every query alone; memory is growth over the imports."""
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    queries = np.load(folder / "queries.npy")
    before = resident_mb()
    if method.startswith("exact"):
        data = np.load(folder / "data.npy")
        if method == "exact-faiss":
            index = faiss.IndexFlatIP(DIM)
            index.add(data)
            del data

            def search(query):
                return index.search(query, K)[1]
        else:

            def search(query):
                return exact_search(data, query, K)[1]
    else:
        index = faiss.read_index(str(folder / f"{method}.faiss"))
        if method == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(setting, K))
        else:
            params = faiss.SearchParametersIVF(nprobe=setting)

        def search(query):
            return index.search(query, K, params=params)[1]

    search(queries[:1])  # warm-up
    times, found = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search(query[None])[0])
        times.append(time.perf_counter() - start)
    return {
        "memory_mb": resident_mb() - before,
        "p50_ms": 1000 * float(np.percentile(times, 50)),
        "p95_ms": 1000 * float(np.percentile(times, 95)),
        "found": np.asarray(found).tolist(),
    }


def resident_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def run_measure(method: str, folder: Path, setting: int) -> dict:
    command = [sys.executable, __file__, "--measure", method, str(folder), str(setting)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def rows_for(
    name: str, method: str, folder: Path, setting: int, truth: np.ndarray, build_s: float
) -> dict:
    result = run_measure(method, folder, setting)
    recall = recall_at_k(np.asarray(result.pop("found")), truth)
    return dict(result, name=name, build_s=build_s, recall=recall, setting=setting)


def benchmark(size: Size, folder: Path) -> tuple[list[dict], list[dict], list[dict]]:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((size.centres, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = clustered(size.rows, centres, seed=1)
    queries = clustered(size.queries, centres, seed=2)
    np.save(folder / "queries.npy", queries)
    np.save(folder / "data.npy", data)
    truth = exact_search(data, queries, K)[1]

    start = time.perf_counter()
    ann, entry = build_ann(data)
    built = time.perf_counter() - start
    (folder / "ivf-sq8.faiss").write_bytes(serialize_ann(ann))
    main = [
        rows_for("exact, matrix product", "exact", folder, 0, truth, 0.0),
        rows_for("exact, FAISS flat inner product", "exact-faiss", folder, 0, truth, 0.0),
        rows_for("IVF-SQ8 (chosen)", "ivf-sq8", folder, entry["nprobe"], truth, built),
    ]
    main[-1]["lists"] = entry["lists"]
    text_rows = text_query_rows(data, centres)
    return main, candidates(size, data[: size.candidate_rows], queries, folder), text_rows


def candidates(size: Size, data: np.ndarray, queries: np.ndarray, folder: Path) -> list[dict]:
    import faiss

    truth = exact_search(data, queries, K)[1]
    np.save(folder / "data.npy", data)
    results = [rows_for("exact, matrix product", "exact", folder, 0, truth, 0.0)]
    start = time.perf_counter()
    ann, entry = build_ann(data)
    built = time.perf_counter() - start
    (folder / "ivf-sq8.faiss").write_bytes(serialize_ann(ann))
    results.append(rows_for("IVF-SQ8", "ivf-sq8", folder, entry["nprobe"], truth, built))
    for name, method, builder, parameter in (
        ("HNSW32, flat", "hnsw", build_hnsw, "efSearch"),
        (
            f"IVF-PQ {size.pq_codes}x{size.pq_bits}",
            "ivf-pq",
            partial(build_ivf_pq, codes=size.pq_codes, bits=size.pq_bits),
            "nprobe",
        ),
    ):
        start = time.perf_counter()
        index = builder(data)
        built = time.perf_counter() - start
        setting, _ = tune(index, parameter, queries, truth)
        faiss.write_index(index, str(folder / f"{method}.faiss"))
        del index
        results.append(rows_for(name, method, folder, setting, truth, built))
    return results


def print_table(title: str, results: list[dict]) -> None:
    exact = results[0]
    print(title)
    print()
    print("| method | build s | memory MB | p50 ms | p95 ms | recall@10 | setting |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in results:
        setting = "" if row["name"].startswith("exact") else f"{row['setting']}"
        p50 = f"{row['p50_ms']:.2f} ({row['p50_ms'] / exact['p50_ms']:.3f}x)"
        memory = f"{row['memory_mb']:.0f} ({row['memory_mb'] / exact['memory_mb']:.2f}x)"
        print(
            f"| {row['name']} | {row['build_s']:.1f} | {memory} | {p50} | "
            f"{row['p95_ms']:.2f} | {row['recall']:.3f} | {setting} |"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 rows: a smoke test")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        method, folder, setting = args.measure
        print(json.dumps(measure(method, Path(folder), int(setting))))
        return
    size = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="search-bench-") as folder:
        main_rows, candidate_rows, text_rows = benchmark(size, Path(folder))
    what = f"{DIM}-d unit vectors around {size.centres} centres, {size.queries} single queries"
    lists = main_rows[-1]["lists"]
    print_table(f"{size.rows:,} {what}; IVF-SQ8 with {lists} lists", main_rows)
    print_table(
        f"Candidates on {size.candidate_rows:,} rows (setting: nprobe or efSearch)", candidate_rows
    )
    print(f"IVF-SQ8 on the {size.rows:,} rows, 300 text-like queries across a modality gap")
    print()
    print("| calibration | build s | nprobe | p50 ms | recall@10 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in text_rows:
        print(
            f"| {row['name']} | {row['build_s']:.1f} | {row['nprobe']} | {row['p50_ms']:.2f} | "
            f"{row['recall']:.3f} |"
        )


if __name__ == "__main__":
    main()
