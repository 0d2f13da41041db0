"""The model card (README.md) of a converted folder: Hub metadata, pinned usage, provenance and
the verification figures."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from huggingface_hub import ModelCardData

from conversion.defaults import DEFAULT_TEXT_SOURCE
from conversion.onnx_export import ONNX_DIR, OnnxCheck
from conversion.sources import Sources
from conversion.verification import Check
from turkish_clip import DEFAULT_TEMPLATE, TurkishCLIPConfig

BASE_MODELS = (DEFAULT_TEXT_SOURCE, "openai/clip-vit-base-patch32")
# The original text tower was trained on COCO captions machine-translated into Turkish; the
# card's `datasets` says so, which is what benchmark contamination warnings read.
TRAINING_DATASETS = ("coco",)


def model_card(
    sources: Sources,
    config: TurkishCLIPConfig,
    checks: list[Check],
    logit_scale_exp: float,
    onnx_checks: list[OnnxCheck] | None = None,
) -> str:
    """README.md with Hub metadata, pinned usage, provenance and the verification figures."""
    import transformers

    head_shape = (config.text_config.dim, config.projection_dim)

    figures = "\n".join(
        f"| {check.name} | {check.difference:.3g} | {check.tolerance:g} |" for check in checks
    )
    return f"""---
{card_metadata().to_yaml()}
---

# Turkish CLIP

Turkish texts and images in one embedding space, as one PyTorch model: the fine-tuned Turkish
DistilBERT of [monatis/turkish-clip](https://github.com/monatis/turkish-clip), mean-pooled over
the attention mask and projected by that project's Dense head (`clip_head.h5`), beside OpenAI
CLIP ViT-B/32's image encoder. The weights are the original ones, converted, not retrained.
The original text tower was trained on COCO captions machine-translated into Turkish (a corpus
never released): figures on benchmarks built from COCO images, such as XTD10, may be
contaminated; Crossmodal-3600 is the clean comparison.

## Usage

Loading runs the Python files of this repository (`trust_remote_code=True`). Pin `revision` to
a commit whose code you have read, so that later pushes cannot change the code you run: replace
`<commit sha>` with a full commit hash from this repository's history ("Files and versions").

```python
from transformers import AutoModel, pipeline

model_id = "<namespace>/<name>"  # this repository
revision = "<commit sha>"  # the commit you reviewed

model = AutoModel.from_pretrained(
    model_id, revision=revision, trust_remote_code=True, use_safetensors=True
)
texts = ["bir kedi fotoğrafı", "bir köpek fotoğrafı"]
text_embeddings = model.encode_text(texts)  # L2-normalised, one row per text
image_embeddings = model.encode_image(["photo.jpg"])  # paths, PIL images or arrays
probabilities = (image_embeddings @ text_embeddings.T * model.logit_scale.exp()).softmax(-1)

classifier = pipeline(
    "zero-shot-image-classification",
    model=model_id,
    revision=revision,
    trust_remote_code=True,
    model_kwargs={{"use_safetensors": True}},
)
classifier("photo.jpg", candidate_labels=["kedi", "köpek"])
```

Zero-shot scores are a {config.scoring} (`config.scoring`); the
pipeline puts each label into the Turkish template `"{DEFAULT_TEMPLATE}"` ("a photo of a
{{}}"); pass `hypothesis_template=` (one template or a list) to change it. Texts are cased: keep
Turkish capitals (İ, I) as they are.

## How it was converted

Sources: text tower {_source(sources.text)}{_commit_note(sources.text_folder)}, projection
head {_source(sources.head)} (SHA-256 `{_sha256(sources.head_file)}`), image tower
{_source(sources.clip)} read by OpenAI's `clip` package.

No TensorFlow or Keras code ran: the `.h5` files were read as plain HDF5 with h5py, and a head
with anything but one linear Dense layer (a `Lambda`, say) is refused.

- Text tower: every tensor of the TensorFlow `tf_model.h5` goes to `text_model.*`
  (`DistilBertModel` names) by an explicit rule; Dense kernels are transposed (TensorFlow stores
  (in, out), PyTorch (out, in)), LayerNorm gamma/beta become weight/bias.
- Head: the Keras Dense kernel {head_shape}, transposed, and its bias become `text_projection`.
  A text embedding is `text_projection(mean of the last hidden states over the attention mask)`,
  as in the original `encode_text`.
- Image tower: OpenAI's `visual.*` go to `vision_model.*` (`CLIPVisionModel` names), the packed
  attention `in_proj` is split into q, k and v, `visual.proj` transposed becomes
  `visual_projection`; `logit_scale` is CLIP's.
- Every source tensor is used once and every parameter filled once; all weights are float32, in
  `model.safetensors` only.

## Verification

The written folder was loaded with `AutoModel`/`AutoProcessor` (remote code) and compared with
the originals: image embeddings (L2-normalised) with `clip`'s own `encode_image` on `clip`'s own
preprocessing of the same images, the head with `x @ kernel + bias` from the h5 file, the text
tower's tensors with the source's, the tokenizer's ids with the source tokenizer's. Largest
absolute differences (torch {torch.__version__}, transformers {transformers.__version__}):

| check | max abs difference | tolerance |
|---|---|---|
{figures}

`exp(logit_scale)` = {logit_scale_exp:.4f}.

{onnx_section(onnx_checks, config.vision_config.image_size) if onnx_checks else ""}## License

`license: other`: the original repository `monatis/turkish-clip` and the model
`mys/distilbert-base-turkish-cased-clip` state no license. OpenAI's CLIP weights are released
under the MIT license, and the base model `dbmdz/distilbert-base-turkish-cased` under MIT.
Check with the original author before any use that needs a license grant.
"""


ONNX_HEADING = "## ONNX"


def onnx_section(checks: list[OnnxCheck], image_size: int = 224) -> str:
    """The card's ONNX files and how closely each reproduced the torch model when exported;
    `image_size` is the image tower's input side."""
    import onnxruntime

    rows = "\n".join(
        f"| `{ONNX_DIR}/{check.file}` | {check.measure} | {check.value:.6g} | {check.limit:g} |"
        for check in checks
    )
    return f"""{ONNX_HEADING}

Both towers are also in ONNX, for onnxruntime, Transformers.js or any ONNX runtime; nothing
but the files below is needed. `text_model.onnx` takes `input_ids` and `attention_mask` (int64,
batch x sequence: the tokenizer's ids, no lower-casing) and returns `text_embeds`;
`vision_model.onnx` takes `pixel_values` (float32, batch x 3 x {image_size} x {image_size}, the
image processor's output) and returns `image_embeds`. Both are projected and not normalised, as
`get_text_features`/`get_image_features` give them; normalise before taking cosines. The
`*_quantized.onnx` files are onnxruntime's dynamic int8 quantisation of the same graphs.

When exported, each file was run in onnxruntime {onnxruntime.__version__} on Turkish sentences of
several lengths in one padded batch, and on images, against the torch model's embeddings:

| file | measure | value | bound |
|---|---|---|---|
{rows}

"""


def with_onnx_section(card: str, checks: list[OnnxCheck], image_size: int = 224) -> str:
    """`card` with its ONNX section replaced by (or, lacking one, given) the new figures."""
    section = onnx_section(checks, image_size)
    start = card.find(f"\n{ONNX_HEADING}\n")
    if start >= 0:
        end = card.find("\n## ", start + 1)
        return card[: start + 1] + section + (card[end + 1 :] if end >= 0 else "")
    license_at = card.find("\n## License")
    if license_at >= 0:
        return card[: license_at + 1] + section + card[license_at + 1 :]
    return card.rstrip("\n") + "\n\n" + section


def card_metadata() -> ModelCardData:
    """The card's YAML header, as the Hub reads it."""
    return ModelCardData(
        language="tr",
        license="other",
        library_name="transformers",
        pipeline_tag="zero-shot-image-classification",
        base_model=list(BASE_MODELS),
        datasets=list(TRAINING_DATASETS),
        tags=["clip", "turkish", "zero-shot-image-classification"],
    )


def _source(source: str) -> str:
    """Hub ids, URLs and clip names in full; a local path by its last part only, so the card
    does not publish the converting machine's folder layout (user names, say)."""
    if Path(source).exists():
        return f"local copy `{Path(source).name}`"
    return f"`{source}`"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _commit_note(text_folder: Path) -> str:
    """The Hub commit a snapshot folder was fetched at (its folder name), for provenance."""
    if text_folder.parent.name == "snapshots":
        return f" (commit `{text_folder.name}`)"
    return ""
