"""save_model_folder: a folder that loads by itself, written completely or not at all."""

import json

import pytest
import torch
from builders import save_tiny_model_folder, tiny_model, tiny_processor

from turkish_clip import MODEL_FILES, ROOT, save_model_folder

ALLOWED_IMPORTS = {"transformers", "torch", "PIL", "numpy"}


def test_folder_has_weights_configs_and_model_files(tmp_path):
    folder = save_tiny_model_folder(tmp_path / "model")
    names = {path.name for path in folder.iterdir()}
    assert {"model.safetensors", "config.json", "preprocessor_config.json"} <= names
    assert {"processor_config.json", "tokenizer.json", "tokenizer_config.json"} <= names
    assert set(MODEL_FILES) <= names
    assert not [name for name in names if name.endswith((".bin", ".pt", ".pth", ".pkl"))]
    config = json.loads((folder / "config.json").read_text())
    assert set(config["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForZeroShotImageClassification",
        "AutoProcessor",
    }
    assert "zero-shot-image-classification" in config["custom_pipelines"]
    image_config = json.loads((folder / "preprocessor_config.json").read_text())
    assert image_config["auto_map"]["AutoImageProcessor"].endswith("TurkishCLIPImageProcessor")
    assert not list(tmp_path.glob(".model.*")), "the staging folder was left behind"


def test_existing_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="model"):
        save_tiny_model_folder(tmp_path / "model")
    assert (tmp_path / "model" / "keep.txt").exists()


def test_a_failure_half_way_leaves_no_folder(tmp_path, monkeypatch):
    processor = tiny_processor()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(processor, "save_pretrained", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model_folder(tiny_model(), processor, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", MODEL_FILES)
def test_model_files_import_only_what_a_model_user_has(name):
    import ast

    tree = ast.parse((ROOT / name).read_text())
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            top_level.add(node.module.split(".")[0])
    import sys

    third_party = {module for module in top_level if module not in sys.stdlib_module_names}
    assert third_party <= ALLOWED_IMPORTS, f"{name} imports {third_party - ALLOWED_IMPORTS}"


def test_saved_weights_are_float32(tmp_path):
    from safetensors.torch import load_file

    folder = save_tiny_model_folder(tmp_path / "model")
    assert {tensor.dtype for tensor in load_file(folder / "model.safetensors").values()} == {
        torch.float32
    }
