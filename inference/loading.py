"""How the commands load a model: which one an index needs, from where, on which device."""

from pathlib import Path

# The folder that `python hub_upload.py convert --output turkish-clip` writes.
DEFAULT_MODEL = "turkish-clip"
BACKENDS = ("torch", "onnx")


class ModelChoiceError(ValueError):
    """The model asked for is missing, or is not the one an index was built with."""


def model_source(name: str) -> str:
    """Local folders by absolute path, so an index stays tied to one model from any directory."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def choose_backend(name: str, backend: str | None, int8: bool = False) -> str:
    """The backend asked for; by default onnxruntime on a CPU where the model folder has its ONNX
    files (faster there: see the README's Performance section), torch otherwise.

    Hub ids default to torch: finding out whether a repository has ONNX files costs a request.
    """
    if backend is not None:
        return _backend(backend)
    from conversion.onnx_export import (
        ONNX_DIR,
        TEXT_FILE,
        TEXT_INT8_FILE,
        VISION_FILE,
        VISION_INT8_FILE,
    )

    names = (TEXT_INT8_FILE, VISION_INT8_FILE) if int8 else (TEXT_FILE, VISION_FILE)
    folder = Path(name).expanduser() / ONNX_DIR
    has_onnx = all((folder / file).is_file() for file in names)
    return "onnx" if has_onnx and _device() == "cpu" else "torch"


def load_model(name: str, revision: str | None, backend: str | None = None, int8: bool = False):
    """The model with `encode_text`/`encode_image`/`encode_labels`, on `backend` (see
    `choose_backend`); `int8` picks the torch int8 path or the quantised ONNX files."""
    if name == DEFAULT_MODEL and not Path(name).exists():
        raise ModelChoiceError(
            f"model folder {DEFAULT_MODEL!r} not found: write it with `python hub_upload.py "
            f"convert --output {DEFAULT_MODEL}` or pass --model (a folder or a Hub id)"
        )
    if choose_backend(name, backend, int8) == "onnx":
        from inference.onnx_backend import OnnxTurkishCLIP

        return OnnxTurkishCLIP.from_pretrained(name, revision=revision, int8=int8)
    from transformers import AutoModel

    extra = {"int8": True} if int8 else {}
    model = AutoModel.from_pretrained(name, revision=revision, trust_remote_code=True, **extra)
    return model.to(_device(int8)).eval()


def load_pipeline(name: str, revision: str | None, backend: str | None = None, int8: bool = False):
    if name == DEFAULT_MODEL and not Path(name).exists():
        load_model(name, revision)  # raises the same helpful error
    if choose_backend(name, backend, int8) == "onnx":
        from inference.onnx_backend import OnnxZeroShotClassifier

        return OnnxZeroShotClassifier(load_model(name, revision, backend, int8))
    from transformers import pipeline

    return pipeline(
        "zero-shot-image-classification",
        model=name,
        revision=revision,
        trust_remote_code=True,
        device=_device(int8),
        model_kwargs={"int8": True} if int8 else None,
    )


def choose_model(
    name: str | None, revision: str | None, meta: dict | None
) -> tuple[str, str | None]:
    """The model for an index: the one it was built with unless another is named, which is an
    error, because embeddings from two models do not share a space."""
    if meta is None:
        return model_source(name or DEFAULT_MODEL), revision
    source = model_source(name) if name is not None else meta["model"]
    if name is None and revision is None:
        revision = meta["revision"]
    if (source, revision) != (meta["model"], meta["revision"]):
        raise ModelChoiceError(
            f"the index was built with model {_model_name(meta['model'], meta['revision'])}, not "
            f"{_model_name(source, revision)}; embeddings of two models cannot be mixed "
            "(use another --index folder)"
        )
    return source, revision


def _model_name(source: str, revision: str | None) -> str:
    return f"{source}@{revision}" if revision else source


def _backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def _device(int8: bool = False) -> str:
    import torch

    # The int8 path multiplies int8 matrices on the CPU only.
    return "cuda" if torch.cuda.is_available() and not int8 else "cpu"
