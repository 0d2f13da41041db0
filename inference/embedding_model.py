"""The small interface every embedding backend meets, and what the search core asks of it.

The torch model (`TurkishCLIPModel`) and onnxruntime's stand-in (`OnnxTurkishCLIP`) both carry
`encode_text`, `encode_image` and `encode_labels` (from `TurkishCLIPEncoding`), their `config`
(the embedding width is `config.projection_dim`), their `processor`, and `logit_scale`; a model
with a sigmoid head carries a `logit_bias` too. The helpers below read the rest the same way for
both: the width, the bias (None for CLIP), and the fingerprint an index records.
"""

import contextlib
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EmbeddingModel(Protocol):
    """What the photo-search core and the front doors call on a loaded model."""

    config: object
    processor: object

    def encode_text(self, texts, batch_size: int = 32, normalize: bool = True, **options): ...

    def encode_image(self, images, batch_size: int = 32, normalize: bool = True, **options): ...

    def encode_labels(self, labels, templates=None, batch_size: int = 32, **options): ...

    @property
    def logit_scale(self): ...


def embedding_width(model: EmbeddingModel) -> int:
    return int(model.config.projection_dim)


def logit_bias(model: EmbeddingModel):
    """The model's sigmoid bias, or None for a softmax (CLIP) model."""
    return getattr(model, "logit_bias", None)


def backend_name(model: EmbeddingModel) -> str:
    """Which backend computes the embeddings, in words: "onnxruntime int8", "torch float32 on
    cpu"... what the commands say once at the start of a run."""
    if hasattr(model, "int8") and not hasattr(model, "parameters"):  # onnxruntime's stand-in
        return f"onnxruntime {'int8' if model.int8 else 'float32'}"
    if getattr(model, "is_int8", False):
        precision = "int8"
    else:
        precision = str(next(model.parameters()).dtype).removeprefix("torch.")
    return f"torch {precision} on {model.device}"


def encode_texts(model: EmbeddingModel, texts: list[str]) -> np.ndarray:
    """L2-normalised float32 rows, one per text."""
    return np.asarray(model.encode_text(list(texts), return_numpy=True), np.float32)


def encode_images(model: EmbeddingModel, images: list) -> np.ndarray:
    """L2-normalised float32 rows, one per image (PIL images, paths or bytes)."""
    return np.asarray(model.encode_image(list(images), return_numpy=True), np.float32)


_FINGERPRINT = "_turkish_clip_fingerprint"


def fingerprint(model: EmbeddingModel) -> dict[str, str]:
    """The hashes an index records of the model it was built with (search/fingerprint.py),
    computed once per loaded model: hashing the weights file of a large model takes seconds."""
    cached = getattr(model, _FINGERPRINT, None)
    if cached is None:
        from search.fingerprint import model_fingerprint

        cached = model_fingerprint(model, model.processor)
        with contextlib.suppress(AttributeError):  # a model without a __dict__: hashed each time
            object.__setattr__(model, _FINGERPRINT, cached)
    return dict(cached)
