"""The student: a Turkish CLIP whose text tower trains; its image tower never changes.

`TextStudent` holds only the text tower's modules (shared with the full model, not copied), so
the training engine sees, wraps and checkpoints only what trains.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

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
    student: str, text_encoder: str | None = None, revision: str | None = None
) -> tuple[TurkishCLIPModel, TurkishCLIPProcessor]:
    """The Turkish CLIP to train, with this checkout's code; with `text_encoder`, its text tower
    replaced by that encoder checkpoint and a fresh Linear head (image tower and `logit_scale`
    still from `student`)."""
    model = TurkishCLIPModel.from_pretrained(student, revision=revision).float()
    processor = TurkishCLIPProcessor.from_pretrained(student, revision=revision)
    if text_encoder is not None:
        model, processor = _with_text_encoder(model, processor, text_encoder)
    _freeze_image_side(model)
    return model, processor


def _with_text_encoder(
    model: TurkishCLIPModel, processor: TurkishCLIPProcessor, text_encoder: str
) -> tuple[TurkishCLIPModel, TurkishCLIPProcessor]:
    encoder_config = AutoConfig.from_pretrained(text_encoder)
    encoder = AutoModel.from_pretrained(text_encoder, **text_model_kwargs(encoder_config))
    config = TurkishCLIPConfig(
        text_config=encoder.config.to_dict(),
        vision_config=model.config.vision_config.to_dict(),
        projection_dim=model.config.projection_dim,
        logit_scale_init_value=float(model.logit_scale.detach()),
        default_template=model.config.default_template,
    )
    replaced = TurkishCLIPModel(config)  # the head keeps its fresh initialisation
    replaced.text_model.load_state_dict(encoder.state_dict())
    replaced.vision_model.load_state_dict(model.vision_model.state_dict())
    replaced.visual_projection.load_state_dict(model.visual_projection.state_dict())
    with torch.no_grad():
        replaced.logit_scale.copy_(model.logit_scale)
    tokenizer = AutoTokenizer.from_pretrained(text_encoder)
    return replaced, TurkishCLIPProcessor(processor.image_processor, tokenizer)


def _freeze_image_side(model: TurkishCLIPModel) -> None:
    for module in (model.vision_model, model.visual_projection):
        module.requires_grad_(False)
    model.logit_scale.requires_grad_(False)
