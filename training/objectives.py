"""Training objectives: how far the student's text embeddings are from the teacher's."""

import torch
from torch.nn import functional

from training.options import OBJECTIVES


def mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """The original recipe's loss, as Keras' `mse` computed it: the mean over all elements of the
    squared difference between the unnormalised embeddings."""
    return functional.mse_loss(student.float(), teacher.float(), reduction="mean")


def cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """One minus the mean cosine similarity: only the directions, which retrieval ranks by."""
    return 1 - functional.cosine_similarity(student.float(), teacher.float(), dim=-1).mean()


def objective(name: str):
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}: choose from {', '.join(OBJECTIVES)}")
    return {"mse": mse, "cosine": cosine}[name]
