"""Turkish CLIP from this checkout, and the writer of self-contained model folders.

The model's files sit flat at the top of the repository, exactly as they sit in the Hub repo, and
import each other relatively (`from .processing import ...`) as the Hub's remote-code loader
requires. This module makes the checkout importable as the package `turkish_clip`, so that local
scripts and tests use the very same files:

    from turkish_clip import TurkishCLIPModel, TurkishCLIPProcessor, save_model_folder
"""

import json
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
__path__ = [str(ROOT)]  # a module with __path__ can have submodules: the files beside it

from turkish_clip.configuration_turkish_clip import (  # noqa: E402
    DEFAULT_TEMPLATE,
    TURKISH_TEMPLATES,
    TurkishCLIPConfig,
)
from turkish_clip.image_processing_turkish_clip import TurkishCLIPImageProcessor  # noqa: E402
from turkish_clip.modeling_turkish_clip import TurkishCLIPModel  # noqa: E402
from turkish_clip.processing import TurkishCLIPProcessor  # noqa: E402

# The files uploaded beside the weights; each may import only transformers, torch, PIL and numpy.
MODEL_FILES = (
    "configuration_turkish_clip.py",
    "modeling_turkish_clip.py",
    "processing.py",
    "image_processing_turkish_clip.py",
    "image_loading.py",
    "pipeline_turkish_clip.py",
)
AUTO_MAP = {
    "AutoConfig": "configuration_turkish_clip.TurkishCLIPConfig",
    "AutoModel": "modeling_turkish_clip.TurkishCLIPModel",
    "AutoModelForZeroShotImageClassification": "modeling_turkish_clip.TurkishCLIPModel",
    "AutoProcessor": "processing.TurkishCLIPProcessor",
}
IMAGE_PROCESSOR_AUTO_MAP = {
    "AutoImageProcessor": "image_processing_turkish_clip.TurkishCLIPImageProcessor",
    "AutoProcessor": "processing.TurkishCLIPProcessor",
}
CUSTOM_PIPELINES = {
    "zero-shot-image-classification": {
        "impl": "pipeline_turkish_clip.TurkishCLIPZeroShotPipeline",
        "pt": ["AutoModelForZeroShotImageClassification"],
        "tf": [],
        "type": "multimodal",
    }
}

__all__ = [
    "DEFAULT_TEMPLATE",
    "TURKISH_TEMPLATES",
    "TurkishCLIPConfig",
    "TurkishCLIPImageProcessor",
    "TurkishCLIPModel",
    "TurkishCLIPProcessor",
    "save_model_folder",
]


def save_model_folder(
    model: TurkishCLIPModel,
    processor: TurkishCLIPProcessor,
    directory: str | Path,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Writes a folder that loads with `AutoModel`, `AutoProcessor` and `pipeline` alone.

    It holds safetensors weights, a config whose `auto_map` and `custom_pipelines` point at the
    model files copied beside it, and the tokenizer and image-processor files in the layouts both
    transformers 4 (`preprocessor_config.json`) and 5 (`processor_config.json`) read.
    `extra_files` maps file names to text (a model card, say). The folder appears complete or not
    at all: everything is written to a temporary folder that is renamed at the end.
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} exists and is not empty")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        _write_folder(model, processor, staging, extra_files or {})
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _write_folder(
    model: TurkishCLIPModel, processor: TurkishCLIPProcessor, folder: Path, extra_files: dict
) -> None:
    model.config.architectures = ["TurkishCLIPModel"]
    model.config.auto_map = AUTO_MAP
    model.config.custom_pipelines = CUSTOM_PIPELINES
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    _write_processor_configs(processor, folder)
    for name in MODEL_FILES:
        shutil.copyfile(ROOT / name, folder / name)
    for name, text in extra_files.items():
        (folder / name).write_text(text, encoding="utf-8")


def _write_processor_configs(processor: TurkishCLIPProcessor, folder: Path) -> None:
    image_config = processor.image_processor.to_dict()
    image_config["image_processor_type"] = "TurkishCLIPImageProcessor"
    image_config["processor_class"] = "TurkishCLIPProcessor"
    image_config["auto_map"] = IMAGE_PROCESSOR_AUTO_MAP
    _write_json(folder / "preprocessor_config.json", image_config)
    processor_path = folder / "processor_config.json"
    processor_config = json.loads(processor_path.read_text()) if processor_path.exists() else {}
    processor_config["processor_class"] = "TurkishCLIPProcessor"
    processor_config["auto_map"] = {"AutoProcessor": AUTO_MAP["AutoProcessor"]}
    if "image_processor" in processor_config:
        processor_config["image_processor"] = image_config
    _write_json(processor_path, processor_config)


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
