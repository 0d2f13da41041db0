"""Configuration of Turkish CLIP: a Turkish text encoder (DistilBERT by default) beside CLIP's
image tower."""

import math
from collections.abc import Sequence
from string import Formatter

from transformers import AutoConfig, CLIPVisionConfig, DistilBertConfig, PretrainedConfig

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


def _sub_config(value: dict | PretrainedConfig | None, config_class: type) -> PretrainedConfig:
    if value is None:
        return config_class()
    if isinstance(value, dict):
        return config_class(**value)
    if isinstance(value, config_class):
        return value
    raise TypeError(f"expected a dict or a {config_class.__name__}, got {type(value).__name__}")


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
        vision_config (`dict` or `CLIPVisionConfig`, *optional*):
            The CLIP image tower. Defaults to ViT-B/32 (224 px, patch 32, quick-GELU, eps 1e-5).
        projection_dim (`int`, *optional*, defaults to 512):
            Size of the shared embedding space; both projections end here.
        logit_scale_init_value (`float`, *optional*, defaults to ln 100):
            Initial value of the learnt temperature `logit_scale`; similarities are multiplied by
            its exp.
            The converted checkpoint carries OpenAI's trained value, which is about ln 100.
        default_template (`str`, *optional*, defaults to `"bir {} fotoğrafı"`):
            Prompt template the zero-shot pipeline uses when none is given. Must contain one `{}`.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialiser of randomly initialised weights.
    """

    model_type = "turkish_clip"
    sub_configs = {"text_config": AutoConfig, "vision_config": CLIPVisionConfig}

    def __init__(
        self,
        text_config: dict | PretrainedConfig | None = None,
        vision_config: dict | CLIPVisionConfig | None = None,
        projection_dim: int = 512,
        logit_scale_init_value: float = math.log(100.0),
        default_template: str = DEFAULT_TEMPLATE,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.text_config = _text_config(text_config)
        self.vision_config = _sub_config(vision_config, CLIPVisionConfig)
        self.projection_dim = projection_dim
        self.logit_scale_init_value = logit_scale_init_value
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
