"""The student: a Turkish CLIP whose text tower trains; its image tower never changes.

`TextStudent` holds only the text tower's modules (shared with the full model, not copied), so
the training engine sees, wraps and checkpoints only what trains. A student is an existing Turkish
CLIP (`--student`), or is built from a teacher (`build_student`): the teacher's image tower,
`logit_scale` and `logit_bias` beside a text encoder with a fresh head.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from conversion.towers import STUDENT, ImageTower, read_image_tower
from turkish_clip import TurkishCLIPConfig, TurkishCLIPModel, TurkishCLIPProcessor
from turkish_clip.modeling_turkish_clip import text_model_kwargs


class TextStudent(nn.Module):
    """Projected, unnormalised text embeddings, computed as the model's `get_text_features`
    computes them: encoder token states, mean-pooled over the mask, through the Linear head.

    While `frozen`, the encoder runs in eval mode without gradients: only the head trains.
    """

    def __init__(self, model: TurkishCLIPModel):
        super().__init__()
        self.text_model = model.text_model
        self.pooler = model.pooler
        self.text_projection = model.text_projection
        self.frozen = False

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.text_model.train(self.training and not self.frozen)  # no dropout while frozen
        if self.frozen:
            with torch.no_grad():
                states = self._states(input_ids, attention_mask)
        else:
            states = self._states(input_ids, attention_mask)
        return self.text_projection(self.pooler(states, attention_mask))

    def _states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def parameter_groups(self, head_lr: float, encoder_lr: float) -> list[dict]:
        return [
            {"params": list(self.text_projection.parameters()), "lr": head_lr},
            {"params": list(self.text_model.parameters()), "lr": encoder_lr},
        ]


def load_student(
    student: str | None,
    text_encoder: str | None = None,
    revision: str | None = None,
    teacher: str | None = None,
) -> tuple[TurkishCLIPModel, TurkishCLIPProcessor]:
    """The Turkish CLIP to train, with this checkout's code.

    With `student`: that model; with `text_encoder` too, its text tower replaced by that encoder
    checkpoint and a fresh Linear head (image tower and `logit_scale` still from `student`).
    Without `student`: a new model built from `teacher` and `text_encoder` (`build_student`).
    """
    if student is None:
        if teacher is None or text_encoder is None:
            raise ValueError(
                "without --student, a student is built from --teacher and --text-encoder"
            )
        model, processor = build_student(teacher, text_encoder)
    else:
        model = TurkishCLIPModel.from_pretrained(student, revision=revision).float()
        processor = TurkishCLIPProcessor.from_pretrained(student, revision=revision)
        if text_encoder is not None:
            model, processor = _with_text_encoder(model, processor, text_encoder)
    _freeze_image_side(model)
    return model, processor


def build_student(
    teacher: str, text_encoder: str, revision: str | None = None
) -> tuple[TurkishCLIPModel, TurkishCLIPProcessor]:
    """A new Turkish CLIP: the teacher's image tower, scale and bias copied unchanged, and
    `text_encoder` with a fresh head sized to the teacher's embedding width."""
    tower = read_image_tower(teacher, revision)
    return _assemble(tower, text_encoder)


def _with_text_encoder(
    model: TurkishCLIPModel, processor: TurkishCLIPProcessor, text_encoder: str
) -> tuple[TurkishCLIPModel, TurkishCLIPProcessor]:
    state = {
        f"{prefix}.{name}": tensor
        for prefix in ("vision_model", "visual_projection")
        for name, tensor in getattr(model, prefix).state_dict().items()
    }
    bias = model.logit_bias
    tower = ImageTower(
        source=model.name_or_path,
        kind=STUDENT,
        vision_config=model.config.vision_config,
        state=state,
        projection_dim=model.config.projection_dim,
        logit_scale=float(model.logit_scale.detach()),
        logit_bias=None if bias is None else float(bias.detach()),
        image_processor=processor.image_processor,
    )
    template = model.config.default_template
    return _assemble(tower, text_encoder, template)


def _assemble(
    tower: ImageTower, text_encoder: str, default_template: str | None = None
) -> tuple[TurkishCLIPModel, TurkishCLIPProcessor]:
    encoder_config = AutoConfig.from_pretrained(text_encoder)
    encoder = AutoModel.from_pretrained(text_encoder, **text_model_kwargs(encoder_config))
    options = {"default_template": default_template} if default_template else {}
    config = TurkishCLIPConfig(
        text_config=encoder.config.to_dict(),
        vision_config=tower.vision_config.to_dict(),
        projection_dim=tower.projection_dim,
        logit_scale_init_value=tower.logit_scale,
        logit_bias_init_value=tower.logit_bias,
        **options,
    )
    model = TurkishCLIPModel(config)  # the head keeps its fresh initialisation
    model.text_model.load_state_dict(encoder.state_dict())
    image_side = {
        name: tensor
        for name, tensor in model.state_dict().items()
        if name.startswith(("vision_model.", "visual_projection."))
    }
    if image_side.keys() != tower.state.keys():
        raise ValueError(f"the image tower of {tower.source} does not fit the student built for it")
    model.load_state_dict(tower.state, strict=False)
    with torch.no_grad():
        model.logit_scale.fill_(tower.logit_scale)
        if tower.logit_bias is not None:
            model.logit_bias.fill_(tower.logit_bias)
    tokenizer = AutoTokenizer.from_pretrained(text_encoder)
    return model.float(), TurkishCLIPProcessor(tower.image_processor, tokenizer)


def _freeze_image_side(model: TurkishCLIPModel) -> None:
    for module in (model.vision_model, model.visual_projection):
        module.requires_grad_(False)
    model.logit_scale.requires_grad_(False)
    if model.logit_bias is not None:
        model.logit_bias.requires_grad_(False)
