"""benchmarks/indexing.py --quick runs end to end and prints every row; speed is never asserted."""

import re

import pytest
from builders import run_benchmark, table_rows

SETS = ("12 MP", "2 MP", "640x480")
PER_SET = (
    "today's index (full decode, torch fp32, stages in turn)",
    "default (onnxruntime int8, reduced decode, pipelined), target",
    "clip-retrieval's way",
    "pipelined, full decode, torch fp32",
    "pipelined, reduced decode, torch fp32",
    "pipelined, reduced decode, torch int8",
    "pipelined, reduced decode, onnxruntime fp32",
    "pipelined, reduced decode, onnxruntime int8",
)
STAGES = (
    "wall time some file is decoding",
    "wall time the model runs",
    "wall time both run at once",
    "decoding thread time / wall time",
)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> dict[str, list[str]]:
    """Cells of each table row, by measurement name, from one quick run."""
    demo = tmp_path_factory.mktemp("demo")
    from builders import photo_like

    photo_like(300, 200).save(demo / "wide.jpeg", quality=90)
    output = run_benchmark("indexing.py", "--quick", "--demo-photos", str(demo), timeout=600)
    rows = table_rows(output)
    return {cells[0]: cells[1:] for cells in rows if len(cells) == 4 and cells[0] != "measurement"}


def find(table: dict[str, list[str]], *parts: str) -> list[str]:
    matches = [cells for name, cells in table.items() if all(part in name for part in parts)]
    assert len(matches) == 1, f"{parts}: {len(matches)} rows in {sorted(table)}"
    return matches[0]


@pytest.mark.parametrize("name", SETS)
def test_every_way_is_timed_on_every_set(table, name) -> None:
    for way in PER_SET:
        value, _, ratio = find(table, f"index images/s, 4 JPEGs {name}: {way}")
        assert value.endswith("/s") and float(NUMBER.search(value).group()) > 0
        if "today's index (" not in way:
            assert float(NUMBER.search(ratio).group()) > 0
    value, reference, _ = find(table, f"decode alone images/s, 1 thread, 4 JPEGs {name}")
    assert "full decode" in reference and float(NUMBER.search(value).group()) > 0
    for who in ("today's index", "default"):
        for stage in STAGES:
            share = find(table, f"stages, {name}, {who}: {stage}")[0]
            assert share.endswith("%") and 0 <= float(share[:-1]) <= 205


def test_targets_are_named_in_their_rows(table) -> None:
    for name, target in zip(SETS, ("3x", "2x", "1.5x")):
        find(table, f"JPEGs {name}: default", f"target {target}")


def test_cosines_are_close_to_one(table) -> None:
    cosines = [float(cells[0]) for name, cells in table.items() if name.startswith("min cosine")]
    assert len(cosines) == 3 + 3 + 1 + 1  # sets, paths, default to today, demo photos
    assert all(0.99 <= value <= 1.0 + 1e-6 for value in cosines)
    find(table, "min cosine, reduced to full decode", "1 demo photos")
