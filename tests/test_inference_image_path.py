"""The image path `index` embeds with: the rule, and one fingerprint for all four paths."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import noise_image
from torch.nn.functional import normalize

from conversion import onnx_export
from inference import loading
from inference.image_path import (
    ImagePath,
    check_pixels,
    choose_image_path,
    int8_image_cosine,
    load_image_model,
)
from inference.loading import ModelSpec, load_model
from search.embedding import embed_images
from search.fingerprint import model_fingerprint

PATHS = [ImagePath("torch", False), ImagePath("torch", True), ImagePath("onnx", False)]
PATHS += [ImagePath("onnx", True)]


def test_default_is_onnx_int8_else_torch_int8(tmp_path, tiny_onnx_dir):
    assert choose_image_path(str(tiny_onnx_dir)) == ImagePath("onnx", True)
    no_int8 = tmp_path / "no-int8"
    shutil.copytree(tiny_onnx_dir, no_int8)
    (no_int8 / "onnx" / "vision_model_quantized.onnx").unlink()
    assert choose_image_path(str(no_int8)) == ImagePath("torch", True)
    shutil.rmtree(no_int8 / "onnx")
    assert choose_image_path(str(no_int8)) == ImagePath("torch", True)
    assert choose_image_path("someone/turkish-clip") == ImagePath("torch", True)


def test_torch_int8_is_used_only_where_its_check_passes(tmp_path, tiny_onnx_dir, monkeypatch):
    folder = tmp_path / "fp32-onnx-only"
    shutil.copytree(tiny_onnx_dir, folder)
    (folder / "onnx" / "vision_model_quantized.onnx").unlink()
    spec = ModelSpec(str(folder))
    model = load_image_model(spec)
    assert model.is_int8  # the tiny model's int8 image embeddings pass the bound
    # The check measures what the int8 path gives: the same cosine as two separate loads.
    fp32 = load_model(str(folder), backend="torch")
    int8 = load_model(str(folder), backend="torch", int8=True)
    pixels = check_pixels(fp32)
    with torch.inference_mode():
        rows = [normalize(m.embed_pixel_values(pixels), dim=-1) for m in (fp32, int8)]
    expected = float((rows[0] * rows[1]).sum(-1).min())
    assert int8_image_cosine(fp32) == pytest.approx(expected, abs=1e-6)
    assert 0.995 <= expected < 1
    # Below the bound: float32 on the backend choose_backend picks (here the float32 ONNX files).
    monkeypatch.setattr(onnx_export, "INT8_MIN_COSINE", 1.5)
    assert type(load_image_model(spec)).__name__ == "OnnxTurkishCLIP"
    shutil.rmtree(folder / "onnx")
    fallback = load_image_model(spec)
    assert type(fallback).__name__ == "TurkishCLIPModel" and not fallback.is_int8
    # A named backend or int8 is loaded as named, unchecked.
    assert not load_image_model(ModelSpec(str(folder), backend="torch")).is_int8


def test_named_backend_or_int8_is_honoured(tiny_onnx_dir):
    folder = str(tiny_onnx_dir)
    assert choose_image_path(folder, "torch") == ImagePath("torch", False)
    assert choose_image_path(folder, "torch", int8=True) == ImagePath("torch", True)
    assert choose_image_path(folder, "onnx") == ImagePath("onnx", False)
    assert choose_image_path(folder, None, int8=True) == ImagePath("onnx", True)
    with pytest.raises(ValueError, match="backend must be one of"):
        choose_image_path(folder, "tensorflow")


def test_on_a_gpu_the_default_is_torch_float32(tiny_onnx_dir, monkeypatch):
    monkeypatch.setattr(loading, "_device", lambda int8=False: "cuda")
    assert choose_image_path(str(tiny_onnx_dir)) == ImagePath("torch", False)


def test_the_four_paths_share_one_fingerprint_and_agree(tmp_path: Path, tiny_onnx_dir) -> None:
    images = [noise_image(tmp_path / f"{i}.png", i) for i in range(4)]
    fingerprints, rows = [], []
    for path in PATHS:
        model = load_model(str(tiny_onnx_dir), backend=path.backend, int8=path.int8)
        fingerprints.append(model_fingerprint(model, model.processor))
        rows.append(embed_images(model, images, 4).embeddings)
    assert all(fingerprint == fingerprints[0] for fingerprint in fingerprints)
    assert not np.array_equal(rows[0], rows[3])  # four computations, one space
    for other in rows[1:]:
        assert (rows[0] * other).sum(-1).min() > 0.99
