"""benchmarks/run.py --quick runs end to end and prints every row; speed is never asserted."""

import re

import pytest
from builders import run_benchmark, table_rows

ROWS = (
    "text embeddings/s, encode_text",
    "image embeddings/s, get_image_features",
    "image preprocessing/s",
    "zero-shot, 1 image x 20 labels, 1 template: first call",
    "zero-shot, 1 image x 20 labels, 1 template: same labels again",
    "zero-shot, 1 image x 20 labels, 10 templates: first call",
    "zero-shot, 1 image x 20 labels, 10 templates: same labels again",
    "from_pretrained of the saved folder",
    "first text + image embedding after loading",
    "peak resident memory after from_pretrained",
    "peak resident memory after the first embeddings",
    "int8 text embeddings/s",
    "int8 text, min cosine to float32",
    "int8 image embeddings/s",
    "int8 image, min cosine to float32",
    "onnx fp32 text embeddings/s",
    "torch int8 text embeddings/s",
    "onnx int8 text embeddings/s",
    "onnx int8 text, min cosine to onnx float32",
    "onnx fp32 image embeddings/s",
    "torch int8 image embeddings/s",
    "onnx int8 image embeddings/s",
    "onnx int8 image, min cosine to onnx float32",
    "onnx backend: from_pretrained + first text and image embedding",
    "onnx backend: peak resident memory",
    "int8 text, min cosine to float32 over 40 embeddings, tiny",
    "int8 image, min cosine to float32 over 4 embeddings, tiny",
    "training samples/s, tiny student, batch 32",
)
NUMBER = re.compile(r"\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def table() -> dict[str, list[str]]:
    """Cells of each table row, by measurement name, from one quick run."""
    rows = table_rows(run_benchmark("run.py", "--quick"))
    return {cells[0]: cells[1:] for cells in rows if len(cells) == 4 and cells[0] != "measurement"}


@pytest.mark.parametrize("name", ROWS)
def test_row_is_printed_with_a_positive_value(table, name):
    matches = [cells for row, cells in table.items() if row.startswith(name)]
    assert matches, f"no row starting {name!r} in {sorted(table)}"
    value, _, ratio = matches[0]
    assert float(NUMBER.search(value).group()) > 0
    if ratio:
        assert float(NUMBER.search(ratio).group()) > 0


def test_int8_embeddings_stay_close_to_float32(table):
    cosines = [float(cells[0]) for row, cells in table.items() if "cosine" in row]
    assert len(cosines) == 6
    assert all(0.999 <= value <= 1.0 + 1e-6 for value in cosines)
