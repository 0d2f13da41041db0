"""Configuration of Turkish CLIP: a Turkish DistilBERT text tower beside CLIP's image tower."""

import math
from collections.abc import Sequence
from string import Formatter

from transformers import CLIPVisionConfig, DistilBertConfig, PretrainedConfig

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


class TurkishCLIPConfig(PretrainedConfig):
    r"""
    Configuration of a [`TurkishCLIPModel`]. The defaults describe the released model: the
    fine-tuned `dbmdz/distilbert-base-turkish-cased` text tower (768 wide, 6 layers, 32,000
    tokens) and OpenAI CLIP's ViT-B/32 image tower, both ending in CLIP's 512-dimensional
    embedding space.

    Args:
        text_config (`dict` or `DistilBertConfig`, *optional*):
            The DistilBERT text tower. Defaults to DistilBERT-base with the Turkish vocabulary size.
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
    sub_configs = {"text_config": DistilBertConfig, "vision_config": CLIPVisionConfig}

    def __init__(
        self,
        text_config: dict | DistilBertConfig | None = None,
        vision_config: dict | CLIPVisionConfig | None = None,
        projection_dim: int = 512,
        logit_scale_init_value: float = math.log(100.0),
        default_template: str = DEFAULT_TEMPLATE,
        initializer_range: float = 0.02,
        **kwargs,
    ):
        self.text_config = _sub_config(text_config, DistilBertConfig)
        if text_config is None:
            self.text_config.vocab_size = 32000
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
        if self.text_config.dim % self.text_config.n_heads != 0:
            raise ValueError(
                f"text_config.dim ({self.text_config.dim}) is not a multiple of "
                f"text_config.n_heads ({self.text_config.n_heads})"
            )
