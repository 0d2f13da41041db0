"""The image path `index` embeds with: the rule, and one fingerprint for all four paths."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from builders import noise_image

from inference import loading
from inference.image_path import ImagePath, choose_image_path
from inference.loading import load_model
from search.embedding import embed_images
from search.fingerprint import model_fingerprint

PATHS = [ImagePath("torch", False), ImagePath("torch", True), ImagePath("onnx", False)]
PATHS += [ImagePath("onnx", True)]


def test_default_is_onnx_int8_then_onnx_float32_then_torch_float32(tmp_path, tiny_onnx_dir):
    assert choose_image_path(str(tiny_onnx_dir)) == ImagePath("onnx", True)
    no_int8 = tmp_path / "no-int8"
    shutil.copytree(tiny_onnx_dir, no_int8)
    (no_int8 / "onnx" / "vision_model_quantized.onnx").unlink()
    assert choose_image_path(str(no_int8)) == ImagePath("onnx", False)
    shutil.rmtree(no_int8 / "onnx")
    assert choose_image_path(str(no_int8)) == ImagePath("torch", False)
    assert choose_image_path("someone/turkish-clip") == ImagePath("torch", False)


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
