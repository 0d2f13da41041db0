"""benchmarks/photo_search.py --quick runs and prints every row; speed is never asserted."""

from benchmarks import photo_search


def test_quick_run_prints_every_row(capsys) -> None:
    rows = photo_search.main(["--quick"])
    names = [row.name for row in rows]
    assert names == [
        "query, exact (p50)",
        "query, IVF-SQ8 (p50)",
        "query, IVF-SQ8 recall@10",
        "query, 1 in 10 photos pass, exact (p50)",
        "query, 1 in 10 photos pass, IVF-SQ8 (p50)",
        "query, 1 in 10 photos pass, IVF-SQ8 recall@10",
        "duplicate groups at 0.99, exact",
        "duplicate groups at 0.99, FAISS range search",
        "duplicate groups found alike by both (share)",
        "check for a newer generation, per query",
    ]
    out = capsys.readouterr().out
    assert all(f"| {name} |" in out for name in names)
    by_name = {row.name: row.value for row in rows}
    assert by_name["duplicate groups found alike by both (share)"] >= 0.9  # planted copies
