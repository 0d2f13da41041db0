"""The model and index behind the page: loaded once, every model call serialised by one lock.

These are the page's only ways into the model and the index (`load_app_model`, `search_index`,
`classify`), so a change in how the commands load models or search indexes is made here alone.
"""

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.loading import DEFAULT_MODEL, choose_model, load_model, model_source
from search.ann import exact_search
from search.fingerprint import check_model_for_index
from search.image_index import Index, load_index


class AppInputError(ValueError):
    """Input from the page that cannot be used; the message is shown on the page as it is."""


@dataclass(frozen=True)
class Match:
    row: int
    path: str  # relative to the index's root
    score: float


@dataclass
class AppModel:
    """The one model the page uses, its name and revision, and the index it searches (if any)."""

    model: object
    source: str
    revision: str | None
    index: Index | None = None
    index_folder: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def max_pixels(self) -> int | None:
        return self.model.processor.image_processor.max_image_pixels

    def embed_text(self, text: str) -> np.ndarray:
        with self._lock:
            return self.model.encode_text([text], return_numpy=True)[0]

    def embed_image(self, image) -> np.ndarray:
        with self._lock:
            return self.model.encode_image([image], return_numpy=True)[0]

    def label_embeddings(self, labels: list[str], templates: tuple[str, ...]) -> np.ndarray:
        with self._lock:
            return self.model.encode_labels(labels, templates, return_numpy=True)


def read_index(folder: Path) -> Index:
    """The index in `folder`, refusing a missing or empty one with a message naming it."""
    index = load_index(folder) if folder.is_dir() else None
    if index is None:
        raise AppInputError(
            f"no index in {str(folder)!r}: build one with `python cli.py index FOLDER --index`"
        )
    if not index.files:
        raise AppInputError(f"index {str(folder)!r} is empty")
    return index


def load_app_model(
    model: str | None, revision: str | None, index_folder: Path | None = None
) -> AppModel:
    """The command line's rules: an index's own model by default; another one only where its
    image side is the same (`search.fingerprint.ModelMismatchError` otherwise)."""
    index = read_index(index_folder) if index_folder is not None else None
    if index is not None:
        source, revision = choose_model(model, revision, index.meta)
    else:
        source = model_source(model or DEFAULT_MODEL)
    loaded = load_model(source, revision)
    if index is not None and index.meta["dim"] != loaded.config.projection_dim:
        raise AppInputError(
            f"index {str(index_folder)!r} holds {index.meta['dim']}-dim embeddings, "
            f"the model {loaded.config.projection_dim}"
        )
    if index is not None:  # by content: any model whose image side made the rows
        check_model_for_index(str(index_folder), index.meta, loaded, loaded.processor)
    return AppModel(loaded, source, revision, index, index_folder)


def search_index(app: AppModel, query: np.ndarray, top_k: int) -> list[Match]:
    index = app.index
    scores, rows = exact_search(index.embeddings, query, top_k)
    return [
        Match(int(row), index.files[row]["path"], float(score))
        for row, score in zip(rows[0], scores[0])
    ]


def row_embedding(app: AppModel, row: int) -> np.ndarray:
    """An indexed image's own embedding: "more like this" needs no model call."""
    if not 0 <= row < len(app.index.files):
        raise AppInputError(f"no result {row} in the index")
    return app.index.embeddings[row]


def classify(
    app: AppModel, image, labels: list[str], templates: tuple[str, ...]
) -> dict[str, float]:
    """Label -> score, as the zero-shot pipeline computes it (`zero_shot_scores`)."""
    from turkish_clip.modeling_turkish_clip import zero_shot_scores

    label_embeds = app.label_embeddings(labels, templates)
    image_embed = app.embed_image(image)
    model = app.model
    bias = getattr(model, "logit_bias", None)
    scores = zero_shot_scores(image_embed[None], label_embeds, model.logit_scale, bias)[0]
    return {label: float(score) for label, score in zip(labels, scores)}


def index_summary(app: AppModel, now: float | None = None) -> dict:
    """What the About tab shows of the index: size, folder and age."""
    meta = app.index.meta
    built = (app.index_folder / "meta.json").stat().st_mtime
    age = (time.time() if now is None else now) - built
    return {
        "images": len(app.index.files),
        "root": meta["root"],
        "folder": str(app.index_folder),
        "unreadable": len(meta.get("unreadable", [])),
        "updated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(built)),
        "age": describe_age(age),
    }


def describe_age(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
