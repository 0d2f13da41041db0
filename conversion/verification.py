"""Verification of a written model folder against the original libraries' own arithmetic.

Kept apart from the conversion code on purpose: a check that reused the converter's readers would
repeat its mistakes. The image tower is compared with OpenAI's `clip` itself, the head with the h5
file read afresh, the text tower's tensors with what the reader produced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from safetensors import safe_open

from conversion.checkpoints import source_tokenizer
from conversion.errors import VerificationError  # noqa: F401  (raised here; named for callers)
from conversion.sources import Sources
from turkish_clip import TurkishCLIPProcessor

TOLERANCE = 1e-5
# Copies involve no arithmetic, so anything but exact equality is a bug.
EXACT = 0.0
# Anything that could carry weights besides safetensors; pickle formats run code when loaded.
REFUSED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".h5", ".keras", ".pyc")
# Turkish-specific letters in both cases: a lower-casing or all-[UNK] tokenizer shows on these.
SAMPLE_TEXTS = (
    "bir kedi fotoğrafı",
    "İstanbul'da yağmurlu bir gün",
    "Işıklı, ılık bir akşamda çiçek satan çocuk",
    "sahilde bir insan ve bir heykel",
)
# Non-square sizes on both sides of the crop exercise the resize rounding and the crop offset.
IMAGE_SIZES = ((320, 240), (240, 320), (224, 224), (97, 61))
HEAD_SAMPLES = 8


@dataclass(frozen=True)
class Check:
    """One comparison between the written folder and an original, with its largest deviation."""

    name: str
    difference: float
    tolerance: float

    @property
    def ok(self) -> bool:
        # Written so that NaN fails.
        return self.difference <= self.tolerance


def verify(folder: Path, sources: Sources, text_state: dict[str, torch.Tensor]) -> list[Check]:
    """Load `folder` as users will and compare each part with its original.

    The references are independent of the conversion code where an independent one exists: the
    image tower against OpenAI's `clip` itself, the head against the h5 file read afresh. The text
    tower has no PyTorch original, so its tensors must equal what the reader produced (its mapping
    is tested against TensorFlow's outputs in tests/test_convert_checkpoints.py).
    """
    import clip  # slow import (torchvision), needed only here

    model, processor = load_folder(folder)
    clip_model, preprocess = clip.load(sources.clip, device="cpu", jit=False)
    clip_model = clip_model.float().eval()
    return [
        _check_images(model, processor, clip_model, preprocess),
        _check_head(model, sources.head_file),
        _check_text_tower(model, text_state),
        _check_tokenizer(processor, sources.text_folder),
        Check(
            "logit_scale vs clip's",
            abs(model.logit_scale.item() - clip_model.logit_scale.item()),
            EXACT,
        ),
    ]


def load_folder(folder: Path) -> tuple[torch.nn.Module, TurkishCLIPProcessor]:
    """Load with the auto classes and run one tiny forward; any failure means "does not load"."""
    from transformers import AutoModel, AutoProcessor

    try:
        model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True)
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        inputs = processor(text=[SAMPLE_TEXTS[0]], images=[_sample_images()[0]])
        with torch.inference_mode():
            logits = model(**inputs).logits_per_image
        with safe_open(folder / "model.safetensors", framework="pt") as weights:
            saved = set(weights.keys())
    # Whatever a broken folder makes transformers raise, the answer is the same: it does not load.
    except Exception as error:
        raise VerificationError(
            f"{folder} does not load: {type(error).__name__}: {error}"
        ) from None
    # A parameter missing from the file would load as random initial values, with a mere warning.
    expected = set(model.state_dict())
    if saved != expected:
        raise VerificationError(
            f"{folder}: model.safetensors lacks {sorted(expected - saved)} "
            f"and has unused {sorted(saved - expected)}"
        )
    if not torch.isfinite(logits).all():
        raise VerificationError(f"{folder} loads but its forward gives non-finite logits")
    return model, processor


def _sample_images() -> list[Image.Image]:
    """Fixed noisy gradients: every pixel differs, so a shifted crop changes the embedding."""
    rng = np.random.default_rng(0)
    images = []
    for width, height in IMAGE_SIZES:
        ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
        noisy = ramp * 0.5 + rng.integers(0, 128, (height, width, 3))
        images.append(Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB"))
    return images


def _check_images(model, processor, clip_model, preprocess) -> Check:
    images = _sample_images()
    ours = model.encode_image(images, processor=processor, normalize=True)
    with torch.inference_mode():
        theirs = clip_model.encode_image(torch.stack([preprocess(image) for image in images]))
    theirs = torch.nn.functional.normalize(theirs.float(), dim=-1)
    return Check(
        f"image embeddings vs clip's encode_image ({len(images)} images)",
        _max_abs(ours, theirs),
        TOLERANCE,
    )


def _check_head(model, head_file: Path) -> Check:
    """The model's text projection against `x @ kernel + bias`, as Keras' Dense computes it."""
    kernel, bias = _h5_dense(head_file)
    x = np.random.default_rng(1).standard_normal((HEAD_SAMPLES, kernel.shape[0]))
    expected = x @ kernel.astype(np.float64) + bias.astype(np.float64)
    with torch.inference_mode():
        found = model.text_projection(torch.from_numpy(x).float())
    return Check(
        f"head vs h5 x @ kernel + bias ({HEAD_SAMPLES} inputs)",
        _max_abs(found.double(), torch.from_numpy(expected)),
        TOLERANCE,
    )


def _h5_dense(head_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """The one kernel and one bias in the file, found by name alone (no Keras config parsing)."""
    found: dict[str, list[np.ndarray]] = {"kernel:0": [], "bias:0": []}

    def visit(name: str, item: h5py.HLObject) -> None:
        leaf = name.rsplit("/", 1)[-1]
        if isinstance(item, h5py.Dataset) and leaf in found:
            found[leaf].append(np.asarray(item[()]))

    with h5py.File(head_file, "r") as h5:
        h5["model_weights"].visititems(visit)
    if len(found["kernel:0"]) != 1 or len(found["bias:0"]) != 1:
        raise ValueError(f"{head_file}: expected one kernel and one bias")
    return found["kernel:0"][0], found["bias:0"][0]


def _check_text_tower(model, text_state: dict[str, torch.Tensor]) -> Check:
    loaded = model.text_model.state_dict()
    name = f"text tower tensors vs source ({len(text_state)} tensors)"
    if loaded.keys() != text_state.keys():
        return Check(
            name + f": names differ {sorted(loaded.keys() ^ text_state.keys())}", math.inf, EXACT
        )
    difference = max(_max_abs(loaded[key], text_state[key]) for key in text_state)
    return Check(name, difference, EXACT)


def _check_tokenizer(processor: TurkishCLIPProcessor, text_folder: Path) -> Check:
    """Token ids of the saved tokenizer against the source folder's; the figure is the count of
    texts whose ids differ."""
    source, saved = source_tokenizer(text_folder), processor.tokenizer
    differing = sum(saved(text)["input_ids"] != source(text)["input_ids"] for text in SAMPLE_TEXTS)
    return Check(f"tokenizer: texts whose ids differ (of {len(SAMPLE_TEXTS)})", differing, EXACT)


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def print_checks(checks: list[Check]) -> None:
    print(f"verification (tolerance {TOLERANCE:g}; copies exact)     max |difference|")
    for check in checks:
        print(f"  {check.name:<56} {check.difference:<10.3g} {_verdict(check)}")


def _verdict(check: Check) -> str:
    return "ok" if check.ok else f"FAILED (tolerance {check.tolerance:g})"


def check_weight_files(folder: Path) -> None:
    """Weights only as model.safetensors: refuse anything that could be unpickled or executed."""
    refused = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.glob("**/*")
        if path.is_file() and path.suffix.lower() in REFUSED_SUFFIXES
    )
    if refused:
        raise ValueError(
            f"{folder} holds {', '.join(refused)}: only model.safetensors may carry weights"
        )
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder} has no model.safetensors")
