"""Eval figures: recall@k of each Turkish caption retrieving its own teacher embedding."""

import pytest
import torch

from training.evaluation import NonFiniteEmbeddings, compare, format_row, format_table


def test_a_perfect_student_and_a_shifted_one():
    teacher = torch.nn.functional.normalize(torch.randn(12, 8), dim=-1)
    perfect = compare(2 * teacher, teacher)
    assert perfect["recall@1"] == 1.0 and perfect["cosine"] == pytest.approx(1)
    assert perfect["mse"] == pytest.approx(float(((2 * teacher - teacher) ** 2).mean()))
    axes = torch.eye(12)
    shifted = compare(axes.roll(1, dims=0), axes)  # each caption lands on its neighbour's
    assert shifted["recall@1"] == 0.0 and shifted["recall@5"] == 1.0
    assert shifted["cosine"] == 0.0


def test_the_table_has_a_row_per_evaluation():
    row = {"mse": 0.5, "cosine": 0.25, "recall@1": 0.1, "recall@5": 0.5, "recall@10": 1.0}
    table = format_table([{"when": "before training", **row}, {"when": "after", **row}])
    lines = table.splitlines()
    assert len(lines) == 3 and lines[1].startswith("before training")
    assert "0.50000" in lines[1] and "100.0%" in lines[2]


def test_nan_embeddings_are_refused_not_scored_as_perfect():
    teacher = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    student = teacher.clone()
    student[2, 0] = float("nan")
    with pytest.raises(NonFiniteEmbeddings, match="embeddings of 1 of 6 eval captions"):
        compare(student, teacher)
    with pytest.raises(NonFiniteEmbeddings, match="6 of 6"):
        compare(torch.full((6, 8), float("inf")), teacher)


def test_rows_printed_one_by_one_line_up_with_the_table():
    row = {"mse": 0.5, "cosine": 0.25, "recall@1": 0.1, "recall@5": 0.5, "recall@10": 1.0}
    rows = [{"when": "before", **row}, {"when": "after stage 2", **row}]
    table = format_table(rows, width=20).splitlines()
    assert table[1:] == [format_row(one, 20) for one in rows]
    assert format_table([], width=20) == table[0] and table[0].index("mse") == 20 + 8
