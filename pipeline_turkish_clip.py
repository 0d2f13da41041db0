"""Zero-shot image classification with Turkish labels and prompt templates."""

import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn
from transformers import Pipeline

from .configuration_turkish_clip import (
    DEFAULT_TEMPLATE,
    TURKISH_TEMPLATES,
    check_templates,
    fill_templates,
)
from .image_loading import DEFAULT_MAX_PIXELS, URL_TIMEOUT_SECONDS, load_image

# transformers 4 copies only the direct relative imports of a module from a local folder.
from .image_processing_turkish_clip import TurkishCLIPImageProcessor  # noqa: F401
from .modeling_turkish_clip import ensemble_prompt_embeddings, zero_shot_scores
from .processing import prepare_texts, tokenize_texts

LABEL_CACHE_SIZE = 4096
# Elements summed per weight tensor for the cache key: enough to see any whole-tensor edit (even
# one made through `.data`, which bumps no version counter) at a small fraction of a forward pass.
_FINGERPRINT_SAMPLES = 1024


class TurkishCLIPZeroShotPipeline(Pipeline):
    """`pipeline("zero-shot-image-classification", model=..., trust_remote_code=True)`.

    Differences from transformers' own zero-shot pipeline: the default template is Turkish
    (`config.default_template`, "bir {} fotoğrafı"); `hypothesis_template` may be a list, whose
    embeddings are averaged per label and renormalised (prompt ensembling); label embeddings are
    cached across calls, so classifying many images against the same labels encodes them once.

    `batch_size=n` runs the image tower once per `n` images, with the same scores as one by one.
    The label cache keeps `label_cache_size` labels (default 4,096; more while one call uses
    more), is dropped whenever the text weights, their dtype or device, or int8 quantisation
    change, and is safe to share between threads.
    """

    # The curated Turkish templates, for ensembling: hypothesis_template=classifier.templates
    templates = TURKISH_TEMPLATES

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, label_cache_size: int = LABEL_CACHE_SIZE, **kwargs):
        self.label_cache_size = _check_positive("label_cache_size", label_cache_size)
        self._label_cache: OrderedDict = OrderedDict()
        self._cache_weights_key: tuple | None = None
        self._cache_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_cache_lock")  # locks cannot be copied; a copy gets its own
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._cache_lock = threading.Lock()

    def __call__(self, image, candidate_labels: Sequence[str] | None = None, **kwargs):
        if image is None and "images" in kwargs:
            image = kwargs.pop("images")
        if candidate_labels is None:
            raise ValueError("candidate_labels is required: the Turkish labels to choose from")
        if kwargs.get("batch_size") is not None:
            _check_positive("batch_size", kwargs["batch_size"])
        if isinstance(image, tuple):
            image = list(image)  # transformers batches lists, and would treat a tuple as one image
        return super().__call__(image, candidate_labels=candidate_labels, **kwargs)

    def _sanitize_parameters(
        self, candidate_labels=None, hypothesis_template=None, top_k=None, timeout=None, **kwargs
    ):
        if kwargs:
            # A misspelt option must not be dropped silently: the scores would look valid.
            raise TypeError(f"unexpected argument(s): {', '.join(sorted(kwargs))}")
        preprocess, forward, postprocess = {}, {}, {}
        # Labels and templates go to _forward and postprocess, never into the batched tensors.
        if candidate_labels is not None:
            labels = prepare_texts(candidate_labels, what="label")
            forward["candidate_labels"] = postprocess["candidate_labels"] = labels
        if hypothesis_template is not None:
            forward["templates"] = tuple(
                prepare_texts(list(check_templates(hypothesis_template)), what="template")
            )
        if timeout is not None:
            preprocess["timeout"] = float(timeout)
        if top_k is not None:
            postprocess["top_k"] = _check_positive("top_k", top_k)
        return preprocess, forward, postprocess

    def preprocess(self, image, timeout=URL_TIMEOUT_SECONDS):
        max_pixels = getattr(self.image_processor, "max_image_pixels", DEFAULT_MAX_PIXELS)
        rgb = load_image(image, max_pixels=max_pixels, timeout=timeout)
        return {"pixel_values": self.image_processor(rgb, return_tensors="pt")["pixel_values"]}

    def _forward(self, model_inputs, candidate_labels=None, templates=None):
        templates = templates or (self.model.config.default_template,)
        text_embeds = self.label_embeddings(candidate_labels, templates)
        image_embeds = self.model.embed_pixel_values(model_inputs["pixel_values"].to(self.device))
        image_embeds = nn.functional.normalize(image_embeds.float(), dim=-1)
        bias = getattr(self.model, "logit_bias", None)
        return {"scores": zero_shot_scores(image_embeds, text_embeds, self.model.logit_scale, bias)}

    def postprocess(self, model_outputs, candidate_labels=None, top_k=None):
        scores = model_outputs["scores"][0].tolist()
        ranked = sorted(zip(scores, candidate_labels), key=lambda pair: -pair[0])
        return [{"score": score, "label": label} for score, label in ranked[:top_k]]

    def label_embeddings(self, labels: list[str], templates: tuple[str, ...]) -> torch.Tensor:
        """Normalised (labels, dim) embeddings, averaged over templates.

        Each label is encoded once per weights state and template set, and at most once per call
        even when the call has more labels than the cache holds.
        """
        weights_key = (self.model.is_int8, *text_weights_key(self.model))
        with self._cache_lock:
            if weights_key != self._cache_weights_key:
                self._label_cache.clear()
                self._cache_weights_key = weights_key
            unique = list(dict.fromkeys(labels))
            found = {label: self._label_cache.get((templates, label)) for label in unique}
            missing = [label for label, row in found.items() if row is None]
            if missing:
                found.update(zip(missing, self._encode_labels(missing, templates)))
            for label in unique:
                self._label_cache[(templates, label)] = found[label]
                self._label_cache.move_to_end((templates, label))
            # The cache grows to hold the call in use, so a large label set is not re-encoded.
            while len(self._label_cache) > max(self.label_cache_size, len(unique)):
                self._label_cache.popitem(last=False)
        return torch.stack([found[label] for label in labels])

    def clear_label_cache(self) -> None:
        """Forgets every cached label embedding (for edits the cache key cannot see)."""
        with self._cache_lock:
            self._label_cache.clear()

    def _encode_labels(self, labels: list[str], templates: tuple[str, ...]) -> list[torch.Tensor]:
        token_ids = tokenize_texts(self.tokenizer, fill_templates(labels, templates))
        embeds = self.model.embed_token_ids(token_ids, self.tokenizer.pad_token_id)
        return list(ensemble_prompt_embeddings(embeds, len(labels)))


def text_weights_key(model: nn.Module) -> tuple:
    """Changes whenever the weights that text embeddings come from may have changed.

    Per tensor of the text tower and its projection: storage address, version counter (bumped by
    in-place edits and `load_state_dict`), dtype and device; and two checksums of a strided sample
    of every tensor's values (up to 1,024 each), which see edits made through `.data`. An edit to
    a few unsampled values through `.data` is the one change it can miss: call
    `clear_label_cache()` after such surgery.
    """
    tensors = _tensors(model.text_model) + _tensors(model.text_projection)
    header = tuple((t.data_ptr(), _version(t), t.dtype, t.device) for t in tensors)
    device = tensors[0].device
    with torch.no_grad():
        # One concatenation and two sums, whatever the number of tensors: a few kernel launches.
        samples = torch.cat(
            [
                t.reshape(-1)[:: max(1, t.numel() // _FINGERPRINT_SAMPLES)].to(
                    device, torch.float32
                )
                for t in tensors
            ]
        )
        weights = torch.arange(1, len(samples) + 1, device=device, dtype=torch.float32)
        sums = torch.stack([samples.sum(), (samples * weights / len(samples)).sum()])
    return header + tuple(sums.tolist())


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [t for t in (*module.parameters(), *module.buffers()) if t.numel()]


def _version(tensor: torch.Tensor) -> int:
    try:
        return tensor._version
    except RuntimeError:  # inference tensors keep no version counter; the sample sum still counts
        return -1


def _check_positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


__all__ = ["TurkishCLIPZeroShotPipeline", "DEFAULT_TEMPLATE", "TURKISH_TEMPLATES"]
