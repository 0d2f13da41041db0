"""The engines an index update embeds images with: in this process, or with Ray Data.

An engine is asked for the rows of some image files by the update (search/updating.py), which
has already loaded the model (for its fingerprint and width); the Ray engine's workers load their
own copy through the same `load_model`, from the same `ModelSpec`.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from inference.image_path import load_image_model
from inference.loading import ModelSpec, load_model
from search.embedding import EmbeddedImages, embed_images

Progress = Callable[[int], object]
Warn = Callable[[str], object]


class Engine(Protocol):
    def load_model(self, spec: ModelSpec):
        """The model this engine's update embeds with (and takes the fingerprint and width of)."""

    def embed(
        self,
        model,
        spec: ModelSpec,
        paths: Sequence[Path],
        index_folder: Path,
        progress: Progress | None,
        warn: Warn,
    ) -> EmbeddedImages: ...

    def finish(self, index_folder: Path) -> None:
        """Called once the index is written: drop whatever the engine kept to resume."""


@dataclass(frozen=True)
class LocalEngine:
    """`embed_images` in this process; `options` are its keyword options (decoding choices).
    `fastest_path` loads the model on the image path `choose_image_path` picks (int8 where exact
    enough); without it, in float32 on the backend `choose_backend` picks, as indexes were made
    before that rule."""

    batch_size: int = 32
    options: Mapping[str, object] = field(default_factory=dict)
    fastest_path: bool = True

    def load_model(self, spec: ModelSpec):
        return load_image_model(spec) if self.fastest_path else load_model(spec)

    def embed(self, model, spec, paths, index_folder, progress, warn) -> EmbeddedImages:
        return embed_images(
            model, list(paths), self.batch_size, progress=progress, warn=warn, **self.options
        )

    def finish(self, index_folder: Path) -> None:
        pass


@dataclass(frozen=True)
class RayEngine:
    """Ray Data, locally or on a cluster; finished batches wait in the index folder, so a run
    that fails part-way resumes where it stopped (search/ray_engine.py)."""

    batch_size: int = 32
    address: str | None = None
    gpus_per_worker: float | None = None
    reduced_decode: bool = False  # large JPEGs decoded at a reduced DCT scale, as locally

    def load_model(self, spec: ModelSpec):
        # The driver's copy gives the fingerprint and width; the workers load float32 as it does.
        return load_model(spec)

    def embed(self, model, spec, paths, index_folder, progress, warn) -> EmbeddedImages:
        from search.ray_engine import RayOptions, embed_image_files_ray

        options = RayOptions(address=self.address, gpus_per_worker=self.gpus_per_worker)
        return embed_image_files_ray(
            spec,
            list(paths),
            self.batch_size,
            index_folder,
            options,
            warn,
            progress or (lambda images: None),
            reduced_decode=self.reduced_decode,
        )

    def finish(self, index_folder: Path) -> None:
        from search.ray_engine import discard_finished_batches

        discard_finished_batches(index_folder)
