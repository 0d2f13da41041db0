"""Queries to calibrate approximate search on: text embeddings of built-in Turkish captions.

Real queries are Turkish texts, and text embeddings sit across the modality gap from the image
rows they are searched against; a structure tuned on image rows (or rows nudged by noise) reaches
its recall on those and falls short on text. The captions in `calibration_captions.txt` (short,
varied photo captions, one per line) are embedded with the index's own model when the structure
is built.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

CAPTIONS_FILE = Path(__file__).with_name("calibration_captions.txt")


def calibration_captions() -> list[str]:
    """The built-in captions, in file order."""
    lines = CAPTIONS_FILE.read_text(encoding="utf-8").split("\n")
    return [line.strip() for line in lines if line.strip()]


def caption_queries(model, batch_size: int = 32) -> np.ndarray:
    """The captions' L2-normalised embeddings `(captions, dim)` from `model.encode_text`."""
    rows = model.encode_text(calibration_captions(), batch_size=batch_size, return_numpy=True)
    return np.ascontiguousarray(rows, dtype=np.float32)


def caption_queries_or_rows(model, warn: Callable[[str], object]) -> np.ndarray | None:
    """`caption_queries(model)`, or None (calibrate on the index's rows) with a warning saying
    why, for a model without a usable text encoder."""
    try:
        return caption_queries(model)
    except Exception as error:  # models of other types fail in their own ways; all are reported
        reason = " ".join(str(error).split()) or type(error).__name__
        warn(
            f"warning: the approximate search structure is calibrated on the index's own rows, "
            f"not on text queries, as the model cannot embed text ({reason}); text searches may "
            "find fewer of the exact results (raise it with `cli.py search --recall`)"
        )
        return None
