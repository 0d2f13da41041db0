"""How close the student is to the teacher on the eval pairs: MSE, cosine, recall@k."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional

from evaluation.metrics import RECALL_KS, retrieval_recall
from training.objectives import mse
from training.student import TextStudent
from training.targets import CaptionTargets
from turkish_clip import TurkishCLIPProcessor


class NonFiniteEmbeddings(ValueError):
    """The student's eval embeddings hold NaN or infinite values: no figure would mean anything."""


@torch.no_grad()
def evaluate(
    student: TextStudent,
    processor: TurkishCLIPProcessor,
    pairs: CaptionTargets,
    batch_size: int,
) -> dict[str, float]:
    """MSE and mean cosine to the teacher, and Turkish→English recall@1/5/10: each Turkish
    caption's embedding retrieving its own teacher embedding among the whole eval set."""
    was_training = student.training
    student.eval()
    device = next(student.parameters()).device
    token_ids = processor.tokenize(pairs.all_texts())
    rows = []
    for start in range(0, len(token_ids), batch_size):
        batch = processor.pad(token_ids[start : start + batch_size])
        embeddings = student(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        rows.append(embeddings.float().cpu())
    student.train(was_training)
    return compare(torch.cat(rows), pairs.all_targets())


def compare(student: torch.Tensor, teacher: torch.Tensor) -> dict[str, float]:
    """The figures of `evaluate`; raises NonFiniteEmbeddings rather than report NaN (whose
    similarities would rank every caption first: 100% recall)."""
    broken = int((~torch.isfinite(student).all(dim=-1)).sum())
    if broken:
        raise NonFiniteEmbeddings(
            f"the student's embeddings of {broken} of {len(student)} eval captions are not "
            "finite (NaN or infinite)"
        )
    cosines = functional.cosine_similarity(student, teacher, dim=-1)
    similarity = functional.normalize(student, dim=-1) @ functional.normalize(teacher, dim=-1).T
    recall = retrieval_recall(similarity.numpy(), np.arange(len(student)))["text_to_image"]
    metrics = {"mse": float(mse(student, teacher)), "cosine": float(cosines.mean())}
    metrics.update({f"recall@{k}": recall[f"R@{k}"] for k in RECALL_KS})
    return metrics


COLUMNS = ("mse", "cosine", *(f"recall@{k}" for k in RECALL_KS))


def format_table(evaluations: list[dict], width: int | None = None) -> str:
    """A header, then one row per evaluation: when it was made, then its figures. `width` of the
    first column: by default the longest `when`."""
    if width is None:
        width = max(len(row["when"]) for row in evaluations)
    header = " " * width + "".join(f"{name:>11}" for name in COLUMNS)
    return "\n".join([header, *(format_row(row, width) for row in evaluations)])


def format_row(row: dict, width: int) -> str:
    """One evaluation's line of the table, so a run can print each as it ends."""
    cells = [f"{row['mse']:>11.5f}", f"{row['cosine']:>11.4f}"]
    cells += [f"{row[name]:>11.1%}" for name in COLUMNS[2:]]
    return f"{row['when']:<{width}}" + "".join(cells)
