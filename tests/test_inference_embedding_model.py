"""The embedding interface: both backends meet it, with the same width, fingerprint, scale and
(absent) bias; one ModelSpec value names a model for every loader."""

import dataclasses

import numpy as np
import pytest
import torch

from inference.embedding_model import (
    EmbeddingModel,
    embedding_width,
    encode_images,
    encode_texts,
    fingerprint,
    logit_bias,
)
from inference.loading import ModelSpec, load_model, spec_for_index
from inference.onnx_backend import OnnxTurkishCLIP
from turkish_clip import TurkishCLIPModel


def test_both_backends_meet_the_interface_alike(tiny_onnx_dir, tmp_path) -> None:
    from builders import noise_image

    photo = noise_image(tmp_path / "foto.png", 0)
    torch_model = load_model(ModelSpec(str(tiny_onnx_dir), backend="torch"))
    onnx_model = load_model(ModelSpec(str(tiny_onnx_dir), backend="onnx"))
    assert isinstance(torch_model, TurkishCLIPModel) and isinstance(onnx_model, OnnxTurkishCLIP)
    for model in (torch_model, onnx_model):
        assert isinstance(model, EmbeddingModel)
        assert embedding_width(model) == 16 and logit_bias(model) is None
    assert fingerprint(torch_model) == fingerprint(onnx_model)
    texts = [
        encode_texts(model, ["kedi", "sahilde bir köpek"]) for model in (torch_model, onnx_model)
    ]
    images = [encode_images(model, [photo]) for model in (torch_model, onnx_model)]
    for rows in (texts, images):
        assert rows[0].dtype == np.float32
        np.testing.assert_allclose(rows[0], rows[1], atol=1e-4)
        np.testing.assert_allclose(np.linalg.norm(rows[0], axis=1), 1.0, atol=1e-5)
    assert float(onnx_model.logit_scale) == pytest.approx(
        float(torch_model.logit_scale.detach()), abs=1e-6
    )
    assert isinstance(torch_model.logit_scale, torch.Tensor)


def test_a_model_spec_is_one_frozen_value(tmp_path, tiny_onnx_dir) -> None:
    spec = ModelSpec(str(tiny_onnx_dir), backend="onnx", int8=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.int8 = False  # type: ignore[misc]
    with pytest.raises(ValueError, match="backend must be one of torch, onnx"):
        ModelSpec("x", backend="tensorflow")
    assert ModelSpec().name == "turkish-clip"
    # The index's own model where none is named; a named one as named (checked by content
    # once loaded, search/fingerprint.py), a local folder by its absolute path.
    meta = {"model": str(tiny_onnx_dir), "revision": None}
    assert spec_for_index(ModelSpec(int8=True), meta) == ModelSpec(str(tiny_onnx_dir), int8=True)
    other = tmp_path / "other"
    other.mkdir()
    assert spec_for_index(ModelSpec(str(other)), meta).source == str(other.resolve())
    assert spec_for_index(ModelSpec(str(other)), meta, reembed=True).source == str(other.resolve())
