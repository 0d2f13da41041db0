"""Turkish CLIP: a Turkish text encoder (DistilBERT by default), mean-pooled and projected into the
embedding space of an image tower taken from a CLIP or SigLIP teacher (OpenAI CLIP ViT-B/32 in the
converted model)."""

import functools
import inspect
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from torch import nn
from transformers import (
    AutoModel,
    CLIPVisionModel,
    PretrainedConfig,
    PreTrainedModel,
    SiglipVisionModel,
)
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .configuration_turkish_clip import TurkishCLIPConfig, check_templates, fill_templates

# transformers 4 copies only the direct relative imports of a module from a local folder, so every
# model file the processor needs is imported here too.
from .image_loading import SINGLE_IMAGE_TYPES, load_image  # noqa: F401
from .image_processing_turkish_clip import TurkishCLIPImageProcessor  # noqa: F401
from .processing import (
    HUB_KWARGS,
    TurkishCLIPProcessor,
    length_sorted_batches,
    pad_token_ids,
    pixel_batches,
    prepare_texts,
)

try:  # transformers 5: these initialisers skip tensors already loaded from a checkpoint
    from transformers import initialization as init
except ImportError:  # transformers 4
    from torch.nn import init

try:
    from transformers.utils.generic import can_return_tuple
except ImportError:  # older transformers: the same contract, written out

    def can_return_tuple(func):
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            return_dict = kwargs.pop("return_dict", None)
            return_dict = self.config.return_dict if return_dict is None else return_dict
            output = func(self, *args, **kwargs)
            return output if return_dict or isinstance(output, tuple) else output.to_tuple()

        return wrapper


# transformers 5's CLIPModel returns the towers' outputs from get_*_features, 4's a bare tensor.
FEATURES_AS_OUTPUTS = int(transformers.__version__.split(".")[0]) >= 5
# Threads calling encode_* at once load the processor once. Module-level, not per model: a lock
# attribute would make models impossible to deep-copy or pickle.
_PROCESSOR_LOCK = threading.Lock()


@dataclass
class TurkishCLIPOutput(ModelOutput):
    r"""
    loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `return_loss=True`):
        The image tower family's own loss, pair `i` being text `i` with image `i`: CLIP's
        symmetric contrastive loss (the mean of the text-to-image and image-to-text
        cross-entropies), or SigLIP's sigmoid loss (as transformers' `SiglipModel` computes it).
    logits_per_image (`torch.FloatTensor` of shape `(image_batch_size, text_batch_size)`):
        Cosine similarities of each image to each text, multiplied by `logit_scale.exp()` (and,
        for SigLIP, plus `logit_bias`).
    logits_per_text (`torch.FloatTensor` of shape `(text_batch_size, image_batch_size)`):
        The transpose of `logits_per_image`.
    text_embeds (`torch.FloatTensor` of shape `(text_batch_size, projection_dim)`):
        L2-normalised text embeddings.
    image_embeds (`torch.FloatTensor` of shape `(image_batch_size, projection_dim)`):
        L2-normalised image embeddings.
    text_model_output (`BaseModelOutput`):
        The text tower's output.
    vision_model_output (`BaseModelOutputWithPooling`):
        The image tower's output.
    """

    loss: torch.FloatTensor | None = None
    logits_per_image: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_model_output: BaseModelOutput | None = None
    vision_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple:
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in self.values())


class MeanPooler(nn.Module):
    """Mean of the token states over the attention mask, as the original `encode_text` computed it.

    Padding must not dilute the mean, so padded positions are zeroed and the sum is divided by the
    number of real tokens rather than by the padded length.
    """

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden_states.dtype)
        return (hidden_states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


class TurkishCLIPEncoding:
    """Python strings and images in, embeddings out: `encode_text`, `encode_image`,
    `encode_labels`. One implementation for every backend; a backend provides `processor`,
    `config`, `device`, `embed_token_ids` and `embed_pixel_values` (plain tensors)."""

    @torch.inference_mode()
    def encode_text(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = True,
        processor: TurkishCLIPProcessor | None = None,
        return_numpy: bool = False,
    ) -> torch.Tensor | np.ndarray:
        """Embeds Turkish texts, one row per text in input order.

        Texts are tokenised once, then run in batches of similar length so that short texts are
        not padded to the longest one in the list.
        """
        processor = processor or self.processor
        token_ids = processor.tokenize(texts)
        embeddings = self.embed_token_ids(
            token_ids, processor.tokenizer.pad_token_id, batch_size=batch_size
        )
        return self._finish(embeddings, normalize, return_numpy)

    @torch.inference_mode()
    def encode_image(
        self,
        images: Image.Image | str | Path | Iterable,
        batch_size: int = 32,
        normalize: bool = True,
        processor: TurkishCLIPProcessor | None = None,
        return_numpy: bool = False,
    ) -> torch.Tensor | np.ndarray:
        """Embeds images (PIL images, paths, bytes or arrays), one row per image in input order.

        Images are opened batch by batch, so a long list of paths never sits in memory at once.
        """
        image_processor = (processor or self.processor).image_processor
        rows = [
            self.embed_pixel_values(pixels.to(self.device))
            for pixels in pixel_batches(images, batch_size, image_processor)
        ]
        return self._finish(torch.cat(rows), normalize, return_numpy)

    @torch.inference_mode()
    def encode_labels(
        self,
        labels: str | Sequence[str],
        templates: str | Sequence[str] | None = None,
        batch_size: int = 32,
        processor: TurkishCLIPProcessor | None = None,
        return_numpy: bool = False,
    ) -> torch.Tensor | np.ndarray:
        """Zero-shot label embeddings: each label put into every template, the prompts embedded
        and ensembled (see `ensemble_prompt_embeddings`). L2-normalised, one row per label.

        `templates` defaults to `config.default_template`; pass `TURKISH_TEMPLATES` to ensemble.
        """
        labels = prepare_texts(labels, what="label")
        templates = check_templates(templates or self.config.default_template)
        prompts = fill_templates(labels, templates)
        embeds = self.encode_text(prompts, batch_size, normalize=False, processor=processor)
        return self._finish(ensemble_prompt_embeddings(embeds, len(labels)), False, return_numpy)

    def _finish(
        self, embeddings: torch.Tensor, normalize: bool, return_numpy: bool
    ) -> torch.Tensor | np.ndarray:
        embeddings = embeddings.float()
        if normalize:
            embeddings = nn.functional.normalize(embeddings, dim=-1)
        return embeddings.cpu().numpy() if return_numpy else embeddings


class TurkishCLIPPreTrainedModel(PreTrainedModel):
    config_class = TurkishCLIPConfig
    base_model_prefix = "turkish_clip"
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = [
        "TransformerBlock",  # DistilBERT
        "BertLayer",
        "XLMRobertaLayer",
        "CLIPEncoderLayer",
        "CLIPVisionEmbeddings",
        "SiglipEncoderLayer",
        "SiglipVisionEmbeddings",
        "SiglipMultiheadAttentionPoolingHead",
    ]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, TurkishCLIPModel):
            # A plain nn.Parameter is not covered by the generic initialiser; left alone it would
            # load as uninitialised memory whenever a checkpoint lacks it.
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)
            if module.logit_bias is not None:
                init.constant_(module.logit_bias, self.config.logit_bias_init_value)
            init.normal_(module.text_projection.weight, std=self.config.initializer_range)
            init.zeros_(module.text_projection.bias)
            if isinstance(module.visual_projection, nn.Linear):
                init.normal_(module.visual_projection.weight, std=self.config.initializer_range)


class TurkishCLIPModel(TurkishCLIPPreTrainedModel, TurkishCLIPEncoding):
    """Embeds Turkish text and images into one space where cosine similarity ranks matches.

    The text side is the original project's: the text encoder's token states (DistilBERT's in the
    released model; any transformers encoder in `config.text_config`), averaged over the attention
    mask, then one Linear layer with bias (the Keras `Dense` head). The image side is the teacher's
    image tower, chosen by `config.vision_config.model_type`: a CLIP ViT with its bias-free
    projection (OpenAI's ViT-B/32 in the converted model), or a SigLIP tower, whose pooled head
    output is the embedding (`visual_projection` is then the identity). `logit_scale` is the
    teacher's learnt temperature; SigLIP models also carry its `logit_bias` (None for CLIP).
    `zero_shot_scores` turns cosines into the family's scores: a softmax for CLIP, a sigmoid per
    label for SigLIP.
    """

    def __init__(self, config: TurkishCLIPConfig):
        super().__init__(config)
        self.text_model = build_text_model(config.text_config)
        tower_class = SiglipVisionModel if config.is_siglip else CLIPVisionModel
        vision_model = tower_class._from_config(config.vision_config)
        # transformers 4 wraps the vision transformer one level deeper than transformers 5 does;
        # taking the inner module keeps the weight names (`vision_model.embeddings...`) the same.
        self.vision_model = getattr(vision_model, "vision_model", vision_model)
        self.pooler = MeanPooler()
        self.text_projection = nn.Linear(
            config.text_config.hidden_size, config.projection_dim, bias=True
        )
        if config.is_siglip:  # SigLIP's attention-pooling head already ends in the shared space
            self.visual_projection = nn.Identity()
            self.logit_bias = nn.Parameter(torch.tensor(float(config.logit_bias_init_value)))
        else:
            self.visual_projection = nn.Linear(
                config.vision_config.hidden_size, config.projection_dim, bias=False
            )
            self.logit_bias = None
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self._processor = None
        self._source_kwargs: dict = {}
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        int8 = kwargs.pop("int8", False)
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # output_loading_info=True
        if int8:
            model.quantize_int8()
        # encode_text/encode_image load the processor from the same place with the same options.
        model._source_kwargs = {k: kwargs[k] for k in HUB_KWARGS if kwargs.get(k) is not None}
        return loaded

    def get_text_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling | tuple | torch.Tensor:
        """Projected (not normalised) text embeddings, as the installed transformers' `CLIPModel`.

        Under transformers 5: a `BaseModelOutputWithPooling` whose `pooler_output` is the
        embedding `(batch, projection_dim)` and whose `last_hidden_state` (and, when asked,
        `hidden_states`/`attentions`) are the text tower's. Under transformers 4: the tensor.
        `encode_text` and `embed_token_ids` return plain tensors under both.
        """
        options = _feature_options("get_text_features", kwargs)
        embeds, outputs = self._embed_text(input_ids, attention_mask, **options)
        return _features(embeds, outputs, kwargs.get("return_dict"), self.config.return_dict)

    def get_image_features(
        self, pixel_values: torch.Tensor, **kwargs
    ) -> BaseModelOutputWithPooling | tuple | torch.Tensor:
        """Projected (not normalised) image embeddings, as the installed transformers' `CLIPModel`.

        The same contract as `get_text_features`; `embed_pixel_values` is the plain-tensor form.
        """
        options = _feature_options("get_image_features", kwargs)
        embeds, outputs = self._embed_image(pixel_values, **options)
        return _features(embeds, outputs, kwargs.get("return_dict"), self.config.return_dict)

    def embed_pixel_values(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected (not normalised) image embeddings `(batch, projection_dim)`, a plain tensor."""
        return self._embed_image(pixel_values)[0]

    def _embed_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, **options
    ) -> tuple[torch.Tensor, BaseModelOutput]:
        limit = self.config.text_config.max_position_embeddings
        if input_ids.shape[-1] > limit:
            raise ValueError(
                f"input_ids has {input_ids.shape[-1]} tokens, more than the text tower's {limit}: "
                "tokenise with the processor, which truncates"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        outputs = self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **options
        )
        return self.text_projection(self.pooler(outputs.last_hidden_state, attention_mask)), outputs

    def _embed_image(
        self, pixel_values: torch.Tensor, **options
    ) -> tuple[torch.Tensor, BaseModelOutputWithPooling]:
        pixel_values = pixel_values.to(self.vision_model.embeddings.patch_embedding.weight.dtype)
        outputs = self.vision_model(pixel_values=pixel_values, **options)
        return self.visual_projection(outputs.pooler_output), outputs

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        return_loss: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> TurkishCLIPOutput | tuple:
        r"""
        Similarities of every text to every image, as `CLIPModel.forward` (CLIP towers) or
        `SiglipModel.forward` (SigLIP towers: plus `logit_bias`) computes them.

        return_loss (`bool`, *optional*): also return the family's loss, pair `i` being text `i`
            with image `i` (so both batches must have the same size): CLIP's symmetric
            contrastive loss, or SigLIP's sigmoid loss.
        output_attentions / output_hidden_states (`bool`, *optional*): passed to both towers;
            their results are in `text_model_output` and `vision_model_output`. Under SDPA
            attention transformers returns no attention weights (load with
            `attn_implementation="eager"` to get them).
        return_dict (`bool`, *optional*): `False` returns a tuple.
        """
        if kwargs:
            raise TypeError(f"forward got unexpected keyword argument(s): {', '.join(kwargs)}")
        if input_ids is None or pixel_values is None:
            raise ValueError(
                "forward needs both input_ids and pixel_values; use get_text_features or "
                "get_image_features for one side alone"
            )
        options = _tower_options(output_attentions, output_hidden_states)
        text_embeds, text_outputs = self._embed_text(input_ids, attention_mask, **options)
        image_embeds, vision_outputs = self._embed_image(pixel_values, **options)
        text_embeds = nn.functional.normalize(text_embeds, dim=-1)
        image_embeds = nn.functional.normalize(image_embeds, dim=-1)
        logits_per_text = text_embeds @ image_embeds.t() * self.logit_scale.exp()
        if self.logit_bias is not None:
            logits_per_text = logits_per_text + self.logit_bias
        loss = None
        if return_loss:
            loss_of = contrastive_loss if self.logit_bias is None else sigmoid_loss
            loss = loss_of(logits_per_text)
        return TurkishCLIPOutput(
            loss=loss,
            logits_per_image=logits_per_text.t(),
            logits_per_text=logits_per_text,
            text_embeds=text_embeds,
            image_embeds=image_embeds,
            text_model_output=text_outputs,
            vision_model_output=vision_outputs,
        )

    def embed_token_ids(
        self, token_ids: list[list[int]], pad_token_id: int, batch_size: int = 32
    ) -> torch.Tensor:
        """Projected text embeddings for already tokenised texts, batched by length."""
        if len(token_ids) == 0:
            raise ValueError("embed_token_ids got an empty list of token ids")
        out = None
        for index in length_sorted_batches(token_ids, batch_size):
            input_ids, mask = pad_token_ids([token_ids[i] for i in index], pad_token_id)
            features = self._embed_text(input_ids.to(self.device), mask.to(self.device))[0]
            if out is None:
                out = features.new_empty(len(token_ids), features.shape[-1])
            out[torch.tensor(index, device=out.device)] = features
        return out

    def quantize_int8(self) -> "TurkishCLIPModel":
        """Swaps every Linear layer of both towers for an int8 one, in place, for CPU inference.

        Also reachable at load time: `from_pretrained(path, int8=True)`. Weights are rounded to
        int8 once, with one scale per output feature; activations are rounded on each call, with
        one scale per token, so no calibration data is needed. Products of int8 matrices add up
        in int32 (`torch._int_mm`), which CPUs with VNNI run several times faster than float32
        matmuls; benchmarks/run.py measures the speed-up and the cosine of each embedding to its
        float32 one. The two projection heads stay float32: they are a tiny share of the work.
        The result is for inference: save the float32 model, not a quantised one.
        """
        if self.device.type != "cpu":
            raise ValueError(f"int8 runs on the CPU; this model is on {self.device}")
        for tower in (self.text_model, self.vision_model):
            _swap_linears_for_int8(tower)
        return self

    @property
    def is_int8(self) -> bool:
        return any(isinstance(module, Int8Linear) for module in self.modules())

    def save_pretrained(self, *args, **kwargs):
        # The int8 buffers are not the checkpoint's parameters: saved, they would load as garbage.
        if self.is_int8:
            raise ValueError(
                "this model was quantised to int8 for inference and cannot be saved; save the "
                "float32 model (load it without int8=True)"
            )
        return super().save_pretrained(*args, **kwargs)

    @property
    def processor(self) -> TurkishCLIPProcessor:
        """The processor saved beside the weights, loaded once on first use."""
        with _PROCESSOR_LOCK:
            if self._processor is None:
                source = self.name_or_path
                if not source:
                    raise ValueError(
                        "this model was not loaded with from_pretrained, so there is no processor "
                        "to load: pass processor=TurkishCLIPProcessor.from_pretrained(...)"
                    )
                self._processor = TurkishCLIPProcessor.from_pretrained(
                    source, **self._source_kwargs
                )
            return self._processor

    @processor.setter
    def processor(self, value: TurkishCLIPProcessor) -> None:
        self._processor = value


def build_text_model(text_config: PretrainedConfig) -> PreTrainedModel:
    """The text tower: whichever transformers encoder `text_config` describes, randomly
    initialised, without the pooling layer some encoders (BERT, XLM-R) carry: the model pools by
    the mask itself, and an unused layer would only be dead weight in every checkpoint."""
    return AutoModel.from_config(text_config, **text_model_kwargs(text_config))


def text_model_kwargs(text_config: PretrainedConfig) -> dict:
    """Keyword arguments that build `text_config`'s encoder as the text tower (see
    `build_text_model`); `from_pretrained` of an encoder checkpoint takes the same ones."""
    model_class = AutoModel._model_mapping[type(text_config)]
    if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
        return {"add_pooling_layer": False}
    return {}


def ensemble_prompt_embeddings(prompt_embeds: torch.Tensor, n_labels: int) -> torch.Tensor:
    """Prompt ensembling: each label's prompt embeddings normalised, averaged, renormalised.

    `prompt_embeds` rows are ordered label by label, each label's templates together (as
    `fill_templates` makes them). The one implementation that the pipeline, the command line and
    evaluation all use. Returns float32 `(n_labels, dim)`.
    """
    embeds = nn.functional.normalize(torch.as_tensor(prompt_embeds).float(), dim=-1)
    mean = embeds.reshape(n_labels, -1, embeds.shape[-1]).mean(dim=1)
    return nn.functional.normalize(mean, dim=-1)


def zero_shot_scores(
    image_embeds: torch.Tensor,
    label_embeds: torch.Tensor,
    logit_scale: torch.Tensor,
    logit_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The one zero-shot scoring rule: `(images, labels)` scores from L2-normalised embeddings.

    `logit_scale` is the learnt log-temperature, as the model stores it. Without a `logit_bias`
    (CLIP) the scores of an image are a softmax over the labels of `exp(logit_scale) * cos`, and
    sum to one. With one (SigLIP) each label is scored on its own, as transformers' `SiglipModel`
    and its zero-shot pipeline do: `sigmoid(exp(logit_scale) * cos + logit_bias)`. The pipeline,
    the onnxruntime backend, the command line, evaluation and the web page all score through here.
    """
    image_embeds = torch.as_tensor(image_embeds).float()
    label_embeds = torch.as_tensor(label_embeds).float().to(image_embeds.device)
    scale = torch.as_tensor(logit_scale).detach().float().to(image_embeds.device).exp()
    logits = image_embeds @ label_embeds.t() * scale
    if logit_bias is None:
        return logits.softmax(dim=-1)
    bias = torch.as_tensor(logit_bias).detach().float().to(image_embeds.device)
    return torch.sigmoid(logits + bias)


def contrastive_loss(logits_per_text: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric contrastive loss (transformers' `clip_loss`): pair `i` is text `i` with
    image `i`; the mean of the text-to-image and image-to-text cross-entropies."""
    texts, images = logits_per_text.shape
    if texts != images:
        raise ValueError(
            f"return_loss needs as many texts as images (text i pairs with image i), got {texts} "
            f"texts and {images} images"
        )
    targets = torch.arange(texts, device=logits_per_text.device)
    text_loss = nn.functional.cross_entropy(logits_per_text, targets)
    image_loss = nn.functional.cross_entropy(logits_per_text.t(), targets)
    return (text_loss + image_loss) / 2.0


def sigmoid_loss(logits_per_text: torch.Tensor) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss (transformers' `SiglipModel`): every text-image pair is a
    binary question, yes for text `i` with image `i`, no for all others; the negative
    log-likelihood summed over the images of each text, averaged over the texts."""
    texts, images = logits_per_text.shape
    if texts != images:
        raise ValueError(
            f"return_loss needs as many texts as images (text i pairs with image i), got {texts} "
            f"texts and {images} images"
        )
    signs = 2 * torch.eye(texts, device=logits_per_text.device) - 1
    return -nn.functional.logsigmoid(signs * logits_per_text).sum(dim=-1).mean()


def _tower_options(output_attentions: bool | None, output_hidden_states: bool | None) -> dict:
    options = {"output_attentions": output_attentions, "output_hidden_states": output_hidden_states}
    return {key: value for key, value in options.items() if value is not None}


def _feature_options(method: str, kwargs: dict) -> dict:
    """The tower options of a `get_*_features` call; anything the installed `CLIPModel`'s method
    would not take is refused by name rather than dropped."""
    known = ("output_attentions", "output_hidden_states", "return_dict")
    unknown = [key for key in kwargs if not FEATURES_AS_OUTPUTS or key not in known]
    if unknown:
        raise TypeError(f"{method} got unexpected keyword argument(s): {', '.join(unknown)}")
    return _tower_options(kwargs.get("output_attentions"), kwargs.get("output_hidden_states"))


def _features(
    embeds: torch.Tensor, outputs: ModelOutput, return_dict: bool | None, default: bool
) -> BaseModelOutputWithPooling | tuple | torch.Tensor:
    if not FEATURES_AS_OUTPUTS:
        return embeds
    features = BaseModelOutputWithPooling(
        last_hidden_state=outputs.last_hidden_state,
        pooler_output=embeds,
        hidden_states=outputs.hidden_states,
        attentions=outputs.attentions,
    )
    return features if (default if return_dict is None else return_dict) else features.to_tuple()


class Int8Linear(nn.Module):
    """A Linear layer that multiplies int8 activations by int8 weights, for `quantize_int8`.

    Symmetric rounding (no zero points) keeps the arithmetic to one int32 matmul and two scalings:
    `x @ w.T ~ (x_int8 * x_scale) @ (w_int8 * w_scale).T`, with `x_scale` per row of `x` and
    `w_scale` per output feature.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        quantized = torch.round(weight / scale[:, None]).to(torch.int8)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # Stored as (in, out), the layout `torch._int_mm` reads fastest.
        self.register_buffer("weight_int8", quantized.t().contiguous())
        self.register_buffer("weight_scale", scale)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).float()
        peak = rows.abs().amax(dim=1, keepdim=True).clamp_(min=1e-12)
        rows_int8 = (rows * (127 / peak)).round_().to(torch.int8)
        out = torch._int_mm(rows_int8, self.weight_int8).float()
        out = out.mul_(peak / 127).mul_(self.weight_scale)
        if self.bias is not None:
            out = out.add_(self.bias)
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def _swap_linears_for_int8(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.MultiheadAttention):
            continue  # it reads its out_proj's weight directly (SigLIP's pooling head): kept float
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8Linear(child))
        else:
            _swap_linears_for_int8(child)
