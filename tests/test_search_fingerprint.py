"""The model fingerprint changes with what changes embeddings, and only with that."""

import shutil
from pathlib import Path

import torch
from builders import save_tiny_model_folder, tiny_model, tiny_processor
from transformers import AutoModel, AutoProcessor

from search.fingerprint import fingerprint_differences, model_fingerprint


def test_one_folder_has_one_fingerprint_in_float32_int8_and_onnxruntime(tiny_onnx_dir) -> None:
    from inference.onnx_backend import OnnxTurkishCLIP

    loads = [
        AutoModel.from_pretrained(tiny_onnx_dir, trust_remote_code=True),
        AutoModel.from_pretrained(tiny_onnx_dir, trust_remote_code=True, int8=True),
        OnnxTurkishCLIP.from_pretrained(tiny_onnx_dir),
        OnnxTurkishCLIP.from_pretrained(tiny_onnx_dir, int8=True),
    ]
    processor = AutoProcessor.from_pretrained(tiny_onnx_dir, trust_remote_code=True)
    fingerprints = [model_fingerprint(model, processor) for model in loads]
    assert all(fingerprint == fingerprints[0] for fingerprint in fingerprints)


def test_a_rewritten_folder_changes_the_fingerprint(tmp_path: Path) -> None:
    folder = save_tiny_model_folder(tmp_path / "model")
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    before = model_fingerprint(AutoModel.from_pretrained(folder, trust_remote_code=True), processor)
    shutil.rmtree(folder)
    save_tiny_model_folder(folder, seed=1)  # replaced in place, as `convert --force` does
    after = model_fingerprint(AutoModel.from_pretrained(folder, trust_remote_code=True), processor)
    assert fingerprint_differences(before, after) == ["weights"]


def test_the_same_weights_in_memory_have_the_same_fingerprint() -> None:
    processor = tiny_processor()
    assert model_fingerprint(tiny_model(), processor) == model_fingerprint(tiny_model(), processor)


def test_one_changed_weight_changes_only_the_weights_part() -> None:
    model, processor = tiny_model(), tiny_processor()
    before = model_fingerprint(model, processor)
    with torch.no_grad():
        model.visual_projection.weight[3, 5] += 1e-3
    after = model_fingerprint(model, processor)
    assert fingerprint_differences(before, after) == ["weights"]


def test_pixel_settings_count_and_the_pixel_limit_does_not() -> None:
    model, processor = tiny_model(), tiny_processor()
    before = model_fingerprint(model, processor)
    processor.image_processor.max_image_pixels = 1000  # accepts or refuses; changes no pixel
    assert model_fingerprint(model, processor) == before
    processor.image_processor.image_mean = [0.5, 0.5, 0.5]
    assert fingerprint_differences(before, model_fingerprint(model, processor)) == [
        "image_processor"
    ]


def test_another_vocabulary_changes_the_tokenizer_part() -> None:
    model, processor = tiny_model(), tiny_processor()
    before = model_fingerprint(model, processor)
    processor.tokenizer.add_tokens(["yepyeni"])
    assert fingerprint_differences(before, model_fingerprint(model, processor)) == ["tokenizer"]


def test_a_bfloat16_model_hashes_without_error_and_differs_from_float32() -> None:
    processor = tiny_processor()
    full = model_fingerprint(tiny_model(), processor)["weights"]
    half = model_fingerprint(tiny_model().to(torch.bfloat16), processor)["weights"]
    assert half != full and len(half) == 64
