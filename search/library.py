"""A loaded model and, where there is one, its open photo index: the one core that the command
line, the web page and the HTTP API all call. They parse their input, call this, and present.

Every model call is serialised by one lock: transformers modules and onnxruntime sessions are
shared by the threads of a server, and the label embeddings are cached per call.
"""

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.embedding_model import (
    EmbeddingModel,
    embedding_width,
    encode_images,
    encode_texts,
    logit_bias,
)
from inference.loading import ModelSpec, load_model, spec_for_index
from search.errors import BadQueryError, NoIndexError
from search.file_names import name_fields
from search.filters import NO_FILTER, PhotoFilter
from search.image_index import load_meta
from search.photo_index import PhotoHit, PhotoIndex, query_embedding


@dataclass
class PhotoLibrary:
    model: EmbeddingModel
    spec: ModelSpec
    index: PhotoIndex | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(
        cls, spec: ModelSpec, index_folder: Path | None = None, use_ann: bool = True
    ) -> "PhotoLibrary":
        """The model `spec` names (an index's own model where it names none) and the index.

        An index built with another model is refused (WrongModelError) before anything is
        searched; so is one that is missing (NoIndexError)."""
        if index_folder is None:
            return cls(load_model(spec.resolved()), spec.resolved())
        index_folder = Path(index_folder)
        meta = load_meta(index_folder) if index_folder.is_dir() else None
        if meta is None:
            raise NoIndexError(f"no index in {str(index_folder)!r}")
        spec = spec_for_index(spec, meta)
        model = load_model(spec)
        return cls(model, spec, PhotoIndex.open(index_folder, model, spec, use_ann))

    @property
    def width(self) -> int:
        return embedding_width(self.model)

    @property
    def max_pixels(self) -> int | None:
        return self.model.processor.image_processor.max_image_pixels

    # The model.

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return encode_texts(self.model, texts)

    def embed_images(self, images: list) -> np.ndarray:
        with self._lock:
            return encode_images(self.model, images)

    def label_scores(self, image, labels: list[str], templates: tuple[str, ...]) -> list[dict]:
        """[{"label", "score"}] in the labels' order, as the zero-shot pipeline scores them
        (`zero_shot_scores`: a softmax for CLIP, a sigmoid where the model has a bias)."""
        import torch

        from turkish_clip.modeling_turkish_clip import zero_shot_scores

        with self._lock:
            label_embeds = self.model.encode_labels(labels, templates)
            image_embeds = self.model.encode_image([image])
        scores = zero_shot_scores(
            torch.as_tensor(image_embeds),
            torch.as_tensor(label_embeds),
            self.model.logit_scale,
            logit_bias(self.model),
        )[0]
        return [{"label": label, "score": float(score)} for label, score in zip(labels, scores)]

    # The index.

    def photos(self) -> PhotoIndex:
        if self.index is None:
            raise NoIndexError("no index is open: start with an index to search photos")
        return self.index

    def query(
        self,
        text: str | None = None,
        image=None,
        image_id: str | None = None,
        embedding: list[float] | None = None,
    ) -> np.ndarray:
        """One query row from exactly one of: a text, an image, an indexed photo's id (its own
        row: "similar photos"), or an embedding of the model's width."""
        given = [value for value in (text, image, image_id, embedding) if value is not None]
        if len(given) != 1:
            raise BadQueryError("give exactly one of text, image, image_id, embedding")
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise BadQueryError("text must be a non-empty string")
            return self.embed_texts([text.strip()])[0]
        if image is not None:
            return self.embed_images([image])[0]
        if image_id is not None:
            return self.photos().embedding_of(image_id)
        return query_embedding(embedding, self.width)

    def search(
        self,
        query: np.ndarray,
        k: int,
        photo_filter: PhotoFilter = NO_FILTER,
        min_score: float | None = None,
        exact: bool = False,
    ) -> list[PhotoHit]:
        return self.photos().search(query, k, photo_filter, min_score, exact)

    def result_fields(self, hit: PhotoHit) -> dict:
        """A result as `cli.py search --json` and the HTTP API present it: id, path (absolute;
        with `path_bytes` for a name that is not UTF-8), score, taken, camera."""
        path = name_fields(str(self.photos().root / hit.path))
        return {"id": hit.id, **path, "score": hit.score, "taken": hit.taken, "camera": hit.camera}
