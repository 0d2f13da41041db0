"""benchmarks/index_memory.py --quick runs end to end and prints its rows; memory is never
asserted."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_prints_both_ways_side_by_side() -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "index_memory.py"), "--quick"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(
        line
        for line in done.stdout.splitlines()
        if line.startswith("| index peak resident memory, 32 photos of 1 MP |")
    )
    new, old, ratio = re.fullmatch(
        r"\| [^|]+ \| (\d+) MB \| decode whole batch first: (\d+) MB \| (\d+\.\d+)x \|", row
    ).groups()
    assert int(new) > 0 and int(old) > 0 and float(ratio) > 0
