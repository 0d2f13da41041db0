"""benchmarks/search.py --quick runs end to end and prints every row; speed is never asserted."""

from builders import run_benchmark, table_rows

METHODS = (
    "exact, matrix product",
    "exact, FAISS flat inner product",
    "IVF-SQ8 (chosen)",
    "IVF-SQ8",
    "HNSW32, flat",
    "IVF-PQ 8x4",
)


def test_quick_run_prints_both_tables_with_exact_recall_of_one() -> None:
    tables = table_rows(run_benchmark("search.py", "--quick"))
    rows = {}
    for cells in tables:
        if len(cells) == 7 and cells[0] in METHODS:
            rows.setdefault(cells[0], []).append(cells[1:])
    assert set(rows) == set(METHODS)
    assert len(rows["exact, matrix product"]) == 2  # the main table and the candidates' table
    for name, found in rows.items():
        for build_s, memory, p50, p95, recall, _ in found:
            assert float(build_s) >= 0 and float(memory.split()[0]) >= 0
            assert float(p50.split()[0]) > 0
            assert float(p95) >= float(p50.split()[0])
            if name.startswith("exact"):
                assert float(recall) == 1.0
    assert float(rows["IVF-SQ8 (chosen)"][0][4]) >= 0.95
    text = {
        cells[0]: cells[1:]
        for cells in tables
        if cells[0].startswith("calibrated on") and len(cells) == 5
    }
    assert set(text) == {"calibrated on nudged rows", "calibrated on text-like queries"}
    for build_s, nprobe, p50, recall in text.values():
        assert float(build_s) >= 0 and int(nprobe) >= 1 and float(p50) > 0
        assert 0 <= float(recall) <= 1
    # Calibrated on text-like queries, other text-like queries reach the promised recall.
    assert float(text["calibrated on text-like queries"][3]) >= 0.95
