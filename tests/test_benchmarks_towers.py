"""benchmarks/towers.py --quick runs end to end and prints every row for the three towers; speed
is never asserted."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
    command = [sys.executable, str(ROOT / "benchmarks" / "towers.py"), "--quick"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "| measurement | " + " | ".join(TOWERS) + " |" in lines
    rows = {}
    for line in lines:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4:
            rows[cells[0]] = cells[1:]
    for name in ROWS:
        assert name in rows, f"no row {name!r} in {sorted(rows)}"
        values = [float(NUMBER.fullmatch(cell).group().replace(",", "")) for cell in rows[name]]
        assert all(value > 0 for value in values), (name, values)
    # The tiny stand-ins keep the real towers' embedding widths' order: 512 < 768 = 768.
    dims = [int(cell) for cell in rows["embedding dimension"]]
    assert dims[0] < dims[1] == dims[2]
