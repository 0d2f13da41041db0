"""Configuration of Turkish CLIP: a Turkish text encoder (DistilBERT by default) beside the image
tower of a CLIP or SigLIP teacher."""

import math
from collections.abc import Sequence
from string import Formatter

from transformers import (
    AutoConfig,
    CLIPVisionConfig,
    DistilBertConfig,
    PretrainedConfig,
    SiglipVisionConfig,
)

# Turkish templates for zero-shot prompts. Each one puts the label in a position where Turkish
# suffixes attach to the template's own nouns ("fotoğrafı", "resim"), never to the label, so any
# noun phrase can be dropped in unchanged.
TURKISH_TEMPLATES = (
    "bir {} fotoğrafı",  # a photo of a {}
    "{} fotoğrafı",  # photo of {}
    "bir {} resmi",  # a picture of a {}
    "{} içeren bir resim",  # a picture containing {}
    "{} içeren bir fotoğraf",  # a photo containing {}
    "{} görüntüsü",  # an image of {}
    "bir {} görüntüsü",  # an image of a {}
    "{} gösteren bir fotoğraf",  # a photo showing {}
    "{} gösteren bir resim",  # a picture showing {}
    "bu bir {} fotoğrafı",  # this is a photo of a {}
    "bir {} fotoğrafı, yakın çekim",  # a photo of a {}, close-up
    "bir {} fotoğrafı, uzaktan çekim",  # a photo of a {}, taken from afar
    "bulanık bir {} fotoğrafı",  # a blurry photo of a {}
    "net bir {} fotoğrafı",  # a sharp photo of a {}
    "bir {} çizimi",  # a drawing of a {}
    "{} konulu bir fotoğraf",  # a photo on the subject of {}
)
DEFAULT_TEMPLATE = TURKISH_TEMPLATES[0]

# The image towers a model can hold, by `vision_config.model_type`: CLIP ViTs of every size, with
# their visual projection, and SigLIP (fixed-resolution SigLIP 2 included), whose pooled head
# output is the embedding.
VISION_CONFIGS = {"clip_vision_model": CLIPVisionConfig, "siglip_vision_model": SiglipVisionConfig}
# SigLIP's initial bias (the SigLIP paper); a student copies its teacher's trained one.
SIGLIP_LOGIT_BIAS_INIT = -10.0


def check_template(template: object) -> str:
    """`template` itself if it has exactly one `{}` for the label and no other replacement field.

    The one place templates are checked: the configuration, the pipeline and the command line all
    call it, so `"{name} için {}"` or `"{0}"` are refused with the same one-line message.
    """
    if not isinstance(template, str):
        raise TypeError(f"a template must be a string, got {type(template).__name__}: {template!r}")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in Formatter().parse(template)]
    except ValueError as error:
        raise ValueError(f"template {template!r} is malformed: {error}") from None
    fields = [field for field in fields if field[0] is not None]
    if fields != [("", "", None)]:
        raise ValueError(
            f"template {template!r} needs exactly one '{{}}' for the label and no other "
            "'{...}' field (write literal braces as '{{' and '}}')"
        )
    return template


def check_templates(templates: str | Sequence[str]) -> tuple[str, ...]:
    """One template or a non-empty list of them, each checked, duplicates dropped, order kept."""
    templates = (templates,) if isinstance(templates, str) else tuple(templates)
    if not templates:
        raise ValueError("the list of templates is empty")
    return tuple(dict.fromkeys(check_template(template) for template in templates))


def fill_templates(labels: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Prompts label by label, each label's templates together: the order ensembling expects."""
    return [template.format(label) for label in labels for template in templates]


def _vision_config(value: dict | PretrainedConfig | None) -> PretrainedConfig:
    """A CLIP or SigLIP image tower's configuration; a dict names its type in `model_type`.

    Folders written before SigLIP towers were allowed hold a CLIP dict, so a dict without
    `model_type` is CLIP's.
    """
    if value is None:
        return CLIPVisionConfig()
    if isinstance(value, PretrainedConfig):
        model_type = getattr(value, "model_type", None)
        values = None
    elif isinstance(value, dict):
        values = dict(value)
        model_type = values.pop("model_type", None) or "clip_vision_model"
    else:
        raise TypeError(f"vision_config: expected a dict or a config, got {type(value).__name__}")
    if model_type == "siglip2_vision_model":
        raise ValueError(
            "vision_config: model_type 'siglip2_vision_model' is SigLIP 2's NaFlex tower (variable "
            "resolution), which is not supported; the fixed-resolution SigLIP 2 checkpoints "
            "(siglip2-*-patch16-224 and the like) are 'siglip_vision_model' towers"
        )
    if model_type not in VISION_CONFIGS:
        raise ValueError(
            f"vision_config: unknown model_type {model_type!r}; choose one of "
            f"{', '.join(VISION_CONFIGS)}"
        )
    config_class = VISION_CONFIGS[model_type]
    if values is None:
        return value if isinstance(value, config_class) else config_class(**value.to_dict())
    return config_class(**values)


def _text_config(value: dict | PretrainedConfig | None) -> PretrainedConfig:
    """Any transformers encoder's configuration; a dict names its type in `model_type`.

    Folders written before other encoders were allowed hold a DistilBERT dict, so a dict without
    `model_type` is DistilBERT.
    """
    if value is None:
        return DistilBertConfig(vocab_size=32000)
    if isinstance(value, PretrainedConfig):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"text_config: expected a dict or a config, got {type(value).__name__}")
    values = dict(value)
    model_type = values.pop("model_type", None) or "distilbert"
    try:
        return AutoConfig.for_model(model_type, **values)
    except ValueError as error:
        raise ValueError(f"text_config: unknown model_type {model_type!r} ({error})") from None


class TurkishCLIPConfig(PretrainedConfig):
    r"""
    Configuration of a [`TurkishCLIPModel`]. The defaults describe the released model: the
    fine-tuned `dbmdz/distilbert-base-turkish-cased` text tower (768 wide, 6 layers, 32,000
    tokens) and OpenAI CLIP's ViT-B/32 image tower, both ending in CLIP's 512-dimensional
    embedding space.

    Args:
        text_config (`dict` or `PretrainedConfig`, *optional*):
            The text tower: any transformers encoder (DistilBERT, BERT, XLM-R, ...), as a config
            or a dict with its `model_type` (a dict without one is DistilBERT, as folders written
            before other encoders were allowed hold). Defaults to DistilBERT-base with the
            Turkish vocabulary size.
        vision_config (`dict`, `CLIPVisionConfig` or `SiglipVisionConfig`, *optional*):
            The image tower, chosen by its `model_type`: `clip_vision_model` (a CLIP ViT of any
            size, with its visual projection) or `siglip_vision_model` (SigLIP or
            fixed-resolution SigLIP 2: the pooled head output is the embedding, no projection).
            A dict without `model_type` is CLIP's. Defaults to CLIP ViT-B/32 (224 px, patch 32,
            quick-GELU, eps 1e-5). SigLIP 2's NaFlex tower (`siglip2_vision_model`) is refused.
        projection_dim (`int`, *optional*, defaults to 512):
            Size of the shared embedding space: the teacher's. The text head ends here, and so
            does CLIP's visual projection; a SigLIP tower's width must equal it.
        logit_scale_init_value (`float`, *optional*, defaults to ln 100):
            Initial value of the learnt temperature `logit_scale`; similarities are multiplied by
            its exp.
            The converted checkpoint carries OpenAI's trained value, which is about ln 100.
        logit_bias_init_value (`float`, *optional*):
            SigLIP's learnt bias, added to the scaled similarities before the sigmoid. Only a
            SigLIP tower has one (defaults to -10, as SigLIP starts); it must be left out (`None`)
            with a CLIP tower, whose scores are a softmax.
        default_template (`str`, *optional*, defaults to `"bir {} fotoğrafı"`):
            Prompt template the zero-shot pipeline uses when none is given. Must contain one `{}`.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialiser of randomly initialised weights.
    """

    model_type = "turkish_clip"
    sub_configs = {"text_config": AutoConfig, "vision_config": AutoConfig}

    def __init__(
        self,
        text_config: dict | PretrainedConfig | None = None,
        vision_config: dict | PretrainedConfig | None = None,
        projection_dim: int = 512,
        logit_scale_init_value: float = math.log(100.0),
        logit_bias_init_value: float | None = None,
        default_template: str = DEFAULT_TEMPLATE,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.text_config = _text_config(text_config)
        self.vision_config = _vision_config(vision_config)
        self.projection_dim = projection_dim
        self.logit_scale_init_value = logit_scale_init_value
        if logit_bias_init_value is None and self.is_siglip:
            logit_bias_init_value = SIGLIP_LOGIT_BIAS_INIT
        self.logit_bias_init_value = logit_bias_init_value
        self.default_template = default_template
        self.initializer_range = initializer_range
        super().__init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.projection_dim, int) or self.projection_dim <= 0:
            raise ValueError(
                f"projection_dim must be a positive integer, got {self.projection_dim!r}"
            )
        if not math.isfinite(float(self.logit_scale_init_value)):
            raise ValueError(
                f"logit_scale_init_value must be finite, got {self.logit_scale_init_value!r}"
            )
        self._validate_image_tower()
        try:
            check_template(self.default_template)
        except (TypeError, ValueError) as error:
            raise type(error)(f"default_template: {error}") from None
        width, heads = self.text_config.hidden_size, self.text_config.num_attention_heads
        if width % heads != 0:
            raise ValueError(
                f"text_config's width ({width}) is not a multiple of its number of attention "
                f"heads ({heads})"
            )

    @property
    def is_siglip(self) -> bool:
        """Whether the image tower is SigLIP's: sigmoid scores and loss, a `logit_bias`."""
        return self.vision_config.model_type == "siglip_vision_model"

    @property
    def scoring(self) -> str:
        """How zero-shot scores are computed, in words, for model cards."""
        if self.is_siglip:
            return "sigmoid(exp(logit_scale) * cosine + logit_bias), each label on its own"
        return "softmax over the labels of exp(logit_scale) * cosine"

    def _validate_image_tower(self) -> None:
        vision = self.vision_config
        if self.is_siglip:
            if vision.hidden_size != self.projection_dim:
                raise ValueError(
                    f"a SigLIP image tower has no projection: its width ({vision.hidden_size}) "
                    f"must equal projection_dim ({self.projection_dim})"
                )
            if not math.isfinite(float(self.logit_bias_init_value)):
                raise ValueError(
                    f"logit_bias_init_value must be finite, got {self.logit_bias_init_value!r}"
                )
        elif self.logit_bias_init_value is not None:
            raise ValueError(
                "logit_bias_init_value is for SigLIP image towers only: a CLIP tower's scores are "
                f"a softmax without a bias (got {self.logit_bias_init_value!r})"
            )
        if vision.image_size % vision.patch_size != 0:
            raise ValueError(
                f"vision_config: image_size {vision.image_size} is not a multiple of patch_size "
                f"{vision.patch_size}"
            )
