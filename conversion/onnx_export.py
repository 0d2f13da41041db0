"""ONNX export of both towers, verified against the torch model before any file is kept.

    onnx/text_model.onnx     input_ids, attention_mask (int64, batch x sequence) -> text_embeds
    onnx/vision_model.onnx   pixel_values (float32, batch x 3 x size x size, the image tower's
                             image_size) -> image_embeds
    onnx/*_quantized.onnx    the same with onnxruntime's dynamic int8 quantisation (--int8)

Embeddings are projected and not normalised, as `get_text_features`/`get_image_features` give
them. Every file is written to a hidden staging folder inside the model folder, checked with
onnxruntime against the torch model, and only then moved into `onnx/`, so a failed export leaves
no `.onnx` file behind and an earlier export in place. `onnx/export.json` records the weights
the files came from (see conversion/onnx_record.py). The staging folder's name carries the
exporting process's id, so a later export removes the folder of one that was killed
(conversion/staging.py).
"""

from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from conversion.errors import OnnxExportError  # noqa: F401  (raised here; named for callers)
from conversion.onnx_record import ONNX_DIR, remove_record, weights_sha256, write_record
from conversion.staging import make_staging_folder, sweep_staging_folders
from turkish_clip import TurkishCLIPModel, TurkishCLIPProcessor

TEXT_FILE = "text_model.onnx"
VISION_FILE = "vision_model.onnx"
TEXT_INT8_FILE = "text_model_quantized.onnx"
VISION_INT8_FILE = "vision_model_quantized.onnx"
STAGING_PREFIX = ".onnx.staging-"
# log of the temperature, and SigLIP's bias, written into each file so that a backend reading only
# onnx/ can turn cosines into scores (a file without a bias is a CLIP model's: softmax scores).
LOGIT_SCALE_KEY = "logit_scale"
LOGIT_BIAS_KEY = "logit_bias"
OPSET = 17
FP32_TOLERANCE = 1e-4
INT8_MIN_COSINE = 0.995
DIFFERENCE = "max abs difference of normalised embeddings"
MIN_COSINE = "min cosine to float32"
# Lengths from 3 to about 60 tokens, so one padded batch holds very short and long rows together.
VERIFY_TEXTS = (
    "kedi",
    "bir kedi fotoğrafı",
    "İstanbul'da yağmurlu bir gün",
    "Işıklı, ılık bir akşamda çiçek satan çocuk",
    "sahilde bir insan ve bir heykel",
    "Güneşli bir günde iki genç kız parkta top oynuyor ve yaşlı bir adam bankta oturmuş "
    "kitap okuyor; arkada kırmızı bir otobüs ile sarı bir taksi köprünün üzerinden geçiyor.",
    "ağaçların altında",
)
VERIFY_IMAGE_SIZES = ((320, 240), (240, 320), (224, 224), (97, 61), (640, 480))


@dataclass(frozen=True)
class OnnxCheck:
    """One exported file against the torch model: its worst figure and the bound it must meet."""

    file: str
    measure: str  # DIFFERENCE (at most `limit`) or MIN_COSINE (at least `limit`)
    value: float
    limit: float

    @property
    def ok(self) -> bool:
        # Written so that NaN fails.
        if self.measure == MIN_COSINE:
            return self.value >= self.limit
        return self.value <= self.limit

    def describe(self) -> str:
        bound = ">=" if self.measure == MIN_COSINE else "<="
        verdict = "ok" if self.ok else "FAILED"
        value = f"{self.value:.5f}" if self.measure == MIN_COSINE else f"{self.value:.3g}"
        return f"{self.file}: {self.measure} {value} ({bound} {self.limit:g}) {verdict}"


class TextEmbedder(nn.Module):
    """The text tower up to the projected embedding, computed directly from its parts."""

    def __init__(self, model: TurkishCLIPModel):
        super().__init__()
        self.text_model, self.pooler = model.text_model, model.pooler
        self.text_projection = model.text_projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        return self.text_projection(self.pooler(hidden.last_hidden_state, attention_mask))


class ImageEmbedder(nn.Module):
    """The image tower up to the projected embedding (SigLIP's pooled output: no projection)."""

    def __init__(self, model: TurkishCLIPModel):
        super().__init__()
        self.vision_model, self.visual_projection = model.vision_model, model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.visual_projection(self.vision_model(pixel_values=pixel_values).pooler_output)


def export_onnx(folder: Path, int8: bool = False) -> list[OnnxCheck]:
    """Export, verify and move into `folder/onnx/`; raises OnnxExportError if a check fails."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a model folder (no config.json)")
    sweep_staging_folders(folder, STAGING_PREFIX)
    digest = weights_sha256(folder)  # of the file the model is about to be loaded from
    model = TurkishCLIPModel.from_pretrained(folder).float().eval()
    processor = TurkishCLIPProcessor.from_pretrained(folder)
    staging = make_staging_folder(folder, STAGING_PREFIX)
    try:
        checks = _export_and_verify(model, processor, staging, int8)
        for check in checks:
            print(f"  {check.describe()}")
        failed = [check.describe() for check in checks if not check.ok]
        if failed:
            raise OnnxExportError(f"ONNX verification failed: {'; '.join(failed)}")
        remove_record(folder)
        _move_files(staging, folder / ONNX_DIR, [check.file for check in checks])
        if not int8:  # int8 files of an earlier export belong to other weights
            for name in (TEXT_INT8_FILE, VISION_INT8_FILE):
                (folder / ONNX_DIR / name).unlink(missing_ok=True)
        write_record(folder, digest, [check.file for check in checks])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return checks


def _export_and_verify(
    model: TurkishCLIPModel, processor: TurkishCLIPProcessor, staging: Path, int8: bool
) -> list[OnnxCheck]:
    scores = {LOGIT_SCALE_KEY: model.logit_scale.item()}
    if model.logit_bias is not None:
        scores[LOGIT_BIAS_KEY] = model.logit_bias.item()
    text, vision = staging / TEXT_FILE, staging / VISION_FILE
    _export_text(model, processor, text, scores)
    _export_vision(model, vision, scores)
    reference_text = model.encode_text(VERIFY_TEXTS, processor=processor, return_numpy=True)
    images = verify_images()
    reference_images = model.encode_image(images, processor=processor, return_numpy=True)
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"].numpy()
    inputs = _padded_text_inputs(processor)
    text_fp32 = _run_text(text, inputs)
    image_fp32 = _run_vision(vision, pixels)
    checks = [
        OnnxCheck(TEXT_FILE, DIFFERENCE, _max_diff(text_fp32, reference_text), FP32_TOLERANCE),
        OnnxCheck(VISION_FILE, DIFFERENCE, _max_diff(image_fp32, reference_images), FP32_TOLERANCE),
    ]
    if int8:
        for source, target, ops, fp32, run, data in (
            (text, TEXT_INT8_FILE, TEXT_INT8_OPS, text_fp32, _run_text, inputs),
            (vision, VISION_INT8_FILE, VISION_INT8_OPS, image_fp32, _run_vision, pixels),
        ):
            quantize_int8(source, staging / target, ops)
            cosine = float((run(staging / target, data) * fp32).sum(axis=-1).min())
            checks.append(OnnxCheck(target, MIN_COSINE, cosine, INT8_MIN_COSINE))
    return checks


# What the int8 towers quantise. The image tower keeps its patch embedding (a Conv) in float:
# onnxruntime's ConvInteger took a quarter of the int8 ViT-B/32's time on this project's x86 CPU,
# about four times the float Conv, for a twentieth of its multiplications.
TEXT_INT8_OPS = None  # onnxruntime's default: every kind it can quantise (embeddings included)
VISION_INT8_OPS = ("MatMul",)


def quantize_int8(source: Path, target: Path, op_types: tuple[str, ...] | None = None) -> None:
    """onnxruntime's dynamic quantisation: int8 weights per output channel, activations per call;
    `op_types` limits it to those kinds of nodes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # It logs advice about static quantisation's pre-processing on the root logger, which does
    # not apply to dynamic quantisation and would land among the figures on the terminal.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(op_types) if op_types else None,
        )
    finally:
        root.setLevel(level)


def verify_images() -> list[Image.Image]:
    """Smooth random pictures of several sizes and aspect ratios (the crop and resize vary)."""
    rng = np.random.default_rng(0)
    images = []
    for width, height in VERIFY_IMAGE_SIZES:
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        images.append(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    return images


def _export_text(model, processor, path: Path, scores: dict[str, float]) -> None:
    # The example batch must contain padding: the traced graph keeps the masking code path that
    # the example takes, and an unpadded example could trace a graph that ignores the mask.
    inputs = _padded_text_inputs(processor, VERIFY_TEXTS[:2])
    example = (torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"]))
    dynamic = {
        "input_ids": {0: "batch", 1: "sequence"},
        "attention_mask": {0: "batch", 1: "sequence"},
    }
    _export(
        TextEmbedder(model), example, path, ["input_ids", "attention_mask"], "text_embeds", dynamic
    )
    _add_metadata(path, scores)


def _export_vision(model, path: Path, scores: dict[str, float]) -> None:
    size = model.config.vision_config.image_size  # the tower's input, whatever the family
    example = (torch.zeros(2, 3, size, size),)
    dynamic = {"pixel_values": {0: "batch"}}
    _export(ImageEmbedder(model), example, path, ["pixel_values"], "image_embeds", dynamic)
    _add_metadata(path, scores)


def _export(module: nn.Module, example: tuple, path: Path, inputs, output: str, dynamic) -> None:
    """The TorchScript-based exporter: it traces in a second, and its graphs verify here."""
    module.eval()
    dynamic = dict(dynamic, **{output: {0: "batch"}})
    with warnings.catch_warnings(), torch.no_grad():
        # Tracer notes about Python booleans in transformers' masking code: the padded example
        # and the verification cover the paths they warn about.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(path),
            input_names=list(inputs),
            output_names=[output],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )


def _add_metadata(path: Path, scores: dict[str, float]) -> None:
    import onnx

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {key: repr(value) for key, value in scores.items()})
    onnx.save(proto, str(path))


def _padded_text_inputs(processor, texts=VERIFY_TEXTS) -> dict[str, np.ndarray]:
    batch = processor.pad(processor.tokenize(list(texts)))
    return {name: tensor.numpy() for name, tensor in batch.items()}


def _session(path: Path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run_text(path: Path, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return _normalize(_session(path).run(None, inputs)[0])


def _run_vision(path: Path, pixels: np.ndarray) -> np.ndarray:
    return _normalize(_session(path).run(None, {"pixel_values": pixels})[0])


def _normalize(rows: np.ndarray) -> np.ndarray:
    rows = rows.astype(np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max()) if np.isfinite(a).all() else float("nan")


def _move_files(staging: Path, target: Path, names: list[str]) -> None:
    """Each file replaces its older version with one rename; none is ever half-written."""
    target.mkdir(exist_ok=True)
    for name in names:
        (staging / name).replace(target / name)
