"""benchmarks/index_memory.py --quick runs end to end and prints its rows; memory is never
asserted."""

import re

from builders import run_benchmark


def test_quick_run_prints_both_ways_side_by_side() -> None:
    row = next(
        line
        for line in run_benchmark("index_memory.py", "--quick").splitlines()
        if line.startswith("| index peak resident memory, 32 photos of 1 MP |")
    )
    new, old, ratio = re.fullmatch(
        r"\| [^|]+ \| (\d+) MB \| decode whole batch first: (\d+) MB \| (\d+\.\d+)x \|", row
    ).groups()
    assert int(new) > 0 and int(old) > 0 and float(ratio) > 0
