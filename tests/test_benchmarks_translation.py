"""benchmarks/translation.py --quick runs end to end and prints every row; speed is never
asserted."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = (
    "translation captions/s, tiny Marian, batch 32, 1 beam(s), 16 new tokens",
    "translation captions/s, tiny Marian, batch 32, 4 beam(s), 16 new tokens",
    "training samples/s, tiny student, batch 32",
)


def test_quick_run_prints_every_row_with_a_positive_value() -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "translation.py"), "--quick"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {}
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 2 and cells[0] != "measurement":
            rows[cells[0]] = float(cells[1].replace(",", ""))
    assert set(rows) == set(ROWS)
    assert all(value > 0 for value in rows.values())
