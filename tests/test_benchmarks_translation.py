"""benchmarks/translation.py --quick runs end to end and prints every row; speed is never
asserted."""

from builders import run_benchmark, table_rows

ROWS = (
    "translation captions/s, tiny Marian, batch 32, 1 beam(s), 16 new tokens",
    "translation captions/s, tiny Marian, batch 32, 4 beam(s), 16 new tokens",
    "training samples/s, tiny student, batch 32",
)


def test_quick_run_prints_every_row_with_a_positive_value() -> None:
    rows = {
        cells[0]: float(cells[1].replace(",", ""))
        for cells in table_rows(run_benchmark("translation.py", "--quick"))
        if len(cells) == 2 and cells[0] != "measurement"
    }
    assert set(rows) == set(ROWS)
    assert all(value > 0 for value in rows.values())
