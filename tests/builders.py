"""Builders of tiny Turkish CLIP models for tests: random weights, real file formats."""

import json
from pathlib import Path

import torch

from turkish_clip import (
    MODEL_FILES,
    TurkishCLIPConfig,
    TurkishCLIPImageProcessor,
    TurkishCLIPModel,
    TurkishCLIPProcessor,
    save_model_folder,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKENIZER_DIR = FIXTURES / "tf_distilbert"
IMAGE_SIZE = 32


def tiny_config(**overrides) -> TurkishCLIPConfig:
    """Two-layer towers, 16-dimensional embeddings, the fixture's 468-token Turkish vocabulary."""
    values = dict(
        text_config=dict(
            vocab_size=468,
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=512,
        ),
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=8,
            projection_dim=16,
        ),
        projection_dim=16,
    )
    values.update(overrides)
    return TurkishCLIPConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> TurkishCLIPModel:
    torch.manual_seed(seed)
    return TurkishCLIPModel(tiny_config(**overrides)).eval()


def tiny_processor() -> TurkishCLIPProcessor:
    from transformers import DistilBertTokenizerFast

    tokenizer = DistilBertTokenizerFast.from_pretrained(TOKENIZER_DIR)
    image_processor = TurkishCLIPImageProcessor(size=IMAGE_SIZE, crop_size=IMAGE_SIZE)
    return TurkishCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def save_tiny_model_folder(directory: Path, seed: int = 0, **overrides) -> Path:
    """A complete model folder, as the converter writes it, holding a tiny random model."""
    return save_model_folder(tiny_model(seed, **overrides), tiny_processor(), directory)


def replace_model_code(folder: Path, marker: Path) -> Path:
    """Replaces every code file of a model folder by code that writes `marker` and raises, as a
    shared folder or a moved Hub repository could: a loader that runs the folder's code leaves
    `marker` behind."""
    code = (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text(__name__)\n"
        "raise RuntimeError('code from the model folder ran')\n"
    )
    for name in MODEL_FILES:
        (folder / name).write_text(code)
    return folder


def retype_model_folder(folder: Path, model_type: str, marker: Path) -> Path:
    """Makes a model folder of another type, whose own code works and writes `marker` when run:
    a model that can only be loaded with trust_remote_code."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = model_type
    config_path.write_text(json.dumps(config))
    code_path = folder / "configuration_turkish_clip.py"
    code = code_path.read_text().replace(
        'model_type = "turkish_clip"', f"model_type = {model_type!r}"
    )
    code_path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n{code}")
    return folder


def noise_image(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """A PNG of random pixels (width, height): unlike solid colours, the random model tells such
    images clearly apart."""
    import numpy as np
    from PIL import Image

    width, height = size
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path
