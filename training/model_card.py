"""The model card (README.md) of a trained folder: data, teacher, objective, schedule, results."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import ModelCardData

from training.evaluation import format_table

if TYPE_CHECKING:
    from training.options import TrainingOptions
    from turkish_clip import TurkishCLIPConfig


def training_card(
    options: TrainingOptions,
    report: dict,
    train_count: int,
    eval_count: int,
    config: TurkishCLIPConfig | None = None,
) -> str:
    """README.md for a folder written by train.py; `config` (the trained model's) names its image
    tower and scoring rule."""
    metadata = ModelCardData(
        language="tr",
        license="other",
        library_name="transformers",
        pipeline_tag="zero-shot-image-classification",
        tags=["clip", "turkish", "zero-shot-image-classification", "distillation"],
        datasets=training_datasets(options) or None,
    )
    text_tower = _name(options.text_encoder or options.student)
    image_source = _name(options.student) if options.student else _name(options.teacher)
    role = "student's" if options.student else "teacher's"
    stage1 = f"{options.frozen_epochs} epoch(s) with the text encoder frozen (only the head trains)"
    stage2 = f"{options.epochs} epoch(s) with the whole text tower training"
    encoder_lr = options.encoder_learning_rate or options.learning_rate
    rows = report["training_loss"]
    losses = "\n".join(f"| {row['stage']} | {row['epoch']} | {row['loss']:.6g} |" for row in rows)
    return f"""---
{metadata.to_yaml()}
---

# Turkish CLIP, trained text tower

Turkish texts and images in one embedding space. The text tower ({text_tower}) was trained by
distillation to put each Turkish caption where the teacher puts its English caption; the image
tower, `logit_scale` and `logit_bias` (SigLIP) are the {role} ({image_source}), unchanged, so image
embeddings and any index built with them stay valid.
{_tower_lines(config)}
```python
from transformers import AutoModel, pipeline

model = AutoModel.from_pretrained("<this repository>", trust_remote_code=True)
texts = model.encode_text(["bir kedi fotoğrafı", "bir köpek fotoğrafı"])
classifier = pipeline(
    "zero-shot-image-classification", model="<this repository>", trust_remote_code=True
)
```

## Training

- Data: {train_count} pairs from {options.train.describe()}; evaluation on {eval_count} pairs
  from {options.eval.describe()}.
- Teacher: {_name(options.teacher)}, its text tower embedding the English captions.
- Objective: `{options.objective}` between the student's projected (unnormalised) embedding and
  the teacher's text embedding.
- Schedule: stage 1, {stage1}; stage 2, {stage2}. Batch size {options.batch_size} per process
  on {report["processes"]} process(es), mixed precision `{report["mixed_precision"]}`, gradient
  accumulation {options.gradient_accumulation_steps}; AdamW, learning rate
  {options.learning_rate:g} (head) and {encoder_lr:g} (encoder), weight decay
  {options.weight_decay:g}; seed {options.seed}.

| stage | epoch (over both stages) | mean training loss |
| --- | --- | --- |
{losses}

## Evaluation

MSE and mean cosine to the teacher's embeddings, and Turkish→English recall@k: each Turkish
caption retrieving its own English caption's teacher embedding among all {eval_count}.

```
{format_table(report["evaluations"])}
```
"""


def _tower_lines(config: TurkishCLIPConfig | None) -> str:
    if config is None:
        return ""
    vision = config.vision_config
    family = "SigLIP" if config.is_siglip else "CLIP"
    return f"""
- Image tower: {family} ViT (`{vision.model_type}`), {vision.num_hidden_layers} layers, width
  {vision.hidden_size}, {vision.image_size} px, patch {vision.patch_size};
  {config.projection_dim}-dimensional embeddings.
- Zero-shot scores: {config.scoring}.
"""


def training_datasets(options: TrainingOptions) -> list[str]:
    """The card's `datasets`: what the student's card lists when its text tower is kept (the
    trained tower learnt from that data too), the Hub datasets trained on, and the names given
    with --dataset-name (a local pairs file has no name of its own)."""
    from evaluation.model_cards import card_datasets

    names = [] if options.text_encoder else card_datasets(options.student) or []
    names += [s.location for s in (options.train, options.eval) if s.kind == "hub-dataset"]
    names += options.dataset_names
    return list(dict.fromkeys(names))


def _name(source: str) -> str:
    """Hub ids and names in full; a local path by its last part only, so the card does not
    publish the training machine's folder layout."""
    return f"local `{Path(source).name}`" if Path(source).exists() else f"`{source}`"
