"""Zero-shot image classification with Turkish labels and prompt templates."""

from collections import OrderedDict
from collections.abc import Sequence

import torch
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
from .modeling_turkish_clip import ensemble_prompt_embeddings
from .processing import prepare_texts, tokenize_texts

LABEL_CACHE_SIZE = 4096


class TurkishCLIPZeroShotPipeline(Pipeline):
    """`pipeline("zero-shot-image-classification", model=..., trust_remote_code=True)`.

    Differences from transformers' own zero-shot pipeline: the default template is Turkish
    (`config.default_template`, "bir {} fotoğrafı"); `hypothesis_template` may be a list, whose
    embeddings are averaged per label and renormalised (prompt ensembling); label embeddings are
    cached across calls, so classifying many images against the same labels encodes them once.
    """

    # The curated Turkish templates, for ensembling: hypothesis_template=classifier.templates
    templates = TURKISH_TEMPLATES

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._label_cache: OrderedDict = OrderedDict()

    def __call__(self, image, candidate_labels: Sequence[str] | None = None, **kwargs):
        if image is None and "images" in kwargs:
            image = kwargs.pop("images")
        if candidate_labels is None:
            raise ValueError("candidate_labels is required: the Turkish labels to choose from")
        return super().__call__(image, candidate_labels=candidate_labels, **kwargs)

    def _sanitize_parameters(
        self, candidate_labels=None, hypothesis_template=None, top_k=None, timeout=None, **kwargs
    ):
        if kwargs:
            # A misspelt option must not be dropped silently: the scores would look valid.
            raise TypeError(f"unexpected argument(s): {', '.join(sorted(kwargs))}")
        preprocess = {}
        if candidate_labels is not None:
            preprocess["candidate_labels"] = prepare_texts(candidate_labels, what="label")
        if hypothesis_template is not None:
            preprocess["templates"] = tuple(
                prepare_texts(list(check_templates(hypothesis_template)), what="template")
            )
        if timeout is not None:
            preprocess["timeout"] = float(timeout)
        postprocess = {}
        if top_k is not None:
            if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            postprocess["top_k"] = top_k
        return preprocess, {}, postprocess

    def preprocess(self, image, candidate_labels=None, templates=None, timeout=URL_TIMEOUT_SECONDS):
        max_pixels = getattr(self.image_processor, "max_image_pixels", DEFAULT_MAX_PIXELS)
        rgb = load_image(image, max_pixels=max_pixels, timeout=timeout)
        pixels = self.image_processor(rgb, return_tensors="pt")
        templates = templates or (self.model.config.default_template,)
        return {
            "pixel_values": pixels["pixel_values"],
            "candidate_labels": candidate_labels,
            "templates": templates,
        }

    def _forward(self, model_inputs):
        labels, templates = model_inputs["candidate_labels"], model_inputs["templates"]
        text_embeds = self.label_embeddings(labels, templates)
        image_embeds = self.model.get_image_features(model_inputs["pixel_values"].to(self.device))
        image_embeds = torch.nn.functional.normalize(image_embeds.float(), dim=-1)
        logits = image_embeds @ text_embeds.t() * self.model.logit_scale.exp().float()
        return {"candidate_labels": labels, "logits": logits}

    def postprocess(self, model_outputs, top_k=None):
        scores = model_outputs["logits"][0].softmax(dim=-1).tolist()
        ranked = sorted(zip(scores, model_outputs["candidate_labels"]), key=lambda pair: -pair[0])
        return [{"score": score, "label": label} for score, label in ranked[:top_k]]

    def label_embeddings(self, labels: list[str], templates: tuple[str, ...]) -> torch.Tensor:
        """Normalised (labels, dim) embeddings, averaged over templates; computed once per label."""
        key_base = (templates, str(self.device), self.model.dtype)
        missing = [
            label for label in dict.fromkeys(labels) if (key_base, label) not in self._label_cache
        ]
        if missing:
            self._encode_labels(missing, templates, key_base)
        rows = []
        for label in labels:
            self._label_cache.move_to_end((key_base, label))
            rows.append(self._label_cache[(key_base, label)])
        while len(self._label_cache) > LABEL_CACHE_SIZE:
            self._label_cache.popitem(last=False)
        return torch.stack(rows)

    def _encode_labels(self, labels: list[str], templates: tuple[str, ...], key_base) -> None:
        token_ids = tokenize_texts(self.tokenizer, fill_templates(labels, templates))
        embeds = self.model.embed_token_ids(token_ids, self.tokenizer.pad_token_id)
        per_label = ensemble_prompt_embeddings(embeds, len(labels))
        for label, row in zip(labels, per_label):
            self._label_cache[(key_base, label)] = row


__all__ = ["TurkishCLIPZeroShotPipeline", "DEFAULT_TEMPLATE", "TURKISH_TEMPLATES"]
