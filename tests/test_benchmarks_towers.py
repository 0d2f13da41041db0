"""benchmarks/towers.py --quick runs end to end and prints every row for the three towers; speed
is never asserted."""

import re

from builders import run_benchmark, table_rows

TOWERS = ["ViT-B/32", "ViT-L/14", "SigLIP 2 base"]
ROWS = (
    "image tower parameters (millions)",
    "embedding dimension",
    "weights, image tower, float32 (MiB)",
    "weights, whole student, float32 (MiB)",
    "peak resident memory, load + one batch each (MiB)",
    "text embeddings/s, batch 32",
    "image embeddings/s, batch 8",
)
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def test_quick_run_prints_every_row_for_the_three_towers() -> None:
    output = run_benchmark("towers.py", "--quick", timeout=600)
    assert "| measurement | " + " | ".join(TOWERS) + " |" in output.splitlines()
    rows = {cells[0]: cells[1:] for cells in table_rows(output) if len(cells) == 4}
    for name in ROWS:
        assert name in rows, f"no row {name!r} in {sorted(rows)}"
        values = [float(NUMBER.fullmatch(cell).group().replace(",", "")) for cell in rows[name]]
        assert all(value > 0 for value in values), (name, values)
    # The tiny stand-ins keep the real towers' embedding widths' order: 512 < 768 = 768.
    dims = [int(cell) for cell in rows["embedding dimension"]]
    assert dims[0] < dims[1] == dims[2]
