"""Translating with Ray Data: `dataset.py translate --engine ray`, on the GPUs of one machine or
a Ray cluster, with the pool the index's Ray engine uses (parallel/ray_pool.py).

Each actor of the pool loads the translator once (bf16 on its GPU) and translates whole batches.
Results come back in batch order, so the driver writes the output as the local engine does:
in input order, window by window, resumable (translation/outputs.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict

import numpy as np

from parallel.ray_pool import RayOptions, map_with_actor_pool, pool_sizes, ray_session
from translation.translator import Translator, TranslatorSettings


class RayEngine:
    """Every remaining batch of a run goes to the pool at once (`whole_plan`), so that all the
    workers stay busy; translations are yielded batch by batch, in order."""

    whole_plan = True

    def __init__(
        self,
        settings: TranslatorSettings,
        address: str | None = None,
        gpus_per_worker: float | None = None,
        threads_per_worker: int | None = None,
    ):
        Translator(settings, load_weights=False)  # a bad model or language fails here, named
        self.settings = settings
        self.options = RayOptions(address, gpus_per_worker, threads_per_worker)

    def translate(self, batches: list[list[str]]) -> Iterator[list[str]]:
        if not batches:
            return
        import ray.data

        with ray_session(self.options):
            gpus, workers, threads = pool_sizes(self.options)
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True
            items = [{"texts": json.dumps(batch)} for batch in batches]
            dataset = ray.data.from_items(items, override_num_blocks=len(items))
            dataset = map_with_actor_pool(
                dataset,
                _TranslatingActor,
                dict(settings=asdict(self.settings), threads=threads, gpu=gpus > 0),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_gpus=gpus,
                num_cpus=1,
            )
            for row in dataset.iter_rows():
                yield json.loads(row["translations"])


class _TranslatingActor:
    """An actor of the pool: loads the translator once, translates one batch per call."""

    def __init__(self, settings: dict, threads: int, gpu: bool):
        import torch

        torch.set_num_threads(threads)
        device = "cuda" if gpu else "cpu"
        self.translator = Translator(TranslatorSettings(**settings), device=device)

    def __call__(self, batch: dict) -> dict:
        translations = [
            json.dumps(self.translator.translate_batch(json.loads(texts)))
            for texts in batch["texts"]
        ]
        return {"translations": np.asarray(translations)}
