"""How the commands load a model: which one an index needs, from where, on which device."""

from pathlib import Path

# The folder that `python hub_upload.py convert --output turkish-clip` writes.
DEFAULT_MODEL = "turkish-clip"


class ModelChoiceError(ValueError):
    """The model asked for is missing, or is not the one an index was built with."""


def model_source(name: str) -> str:
    """Local folders by absolute path, so an index stays tied to one model from any directory."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def load_model(name: str, revision: str | None):
    if name == DEFAULT_MODEL and not Path(name).exists():
        raise ModelChoiceError(
            f"model folder {DEFAULT_MODEL!r} not found: write it with `python hub_upload.py "
            f"convert --output {DEFAULT_MODEL}` or pass --model (a folder or a Hub id)"
        )
    from transformers import AutoModel

    model = AutoModel.from_pretrained(name, revision=revision, trust_remote_code=True)
    return model.to(_device()).eval()


def load_pipeline(name: str, revision: str | None):
    if name == DEFAULT_MODEL and not Path(name).exists():
        load_model(name, revision)  # raises the same helpful error
    from transformers import pipeline

    return pipeline(
        "zero-shot-image-classification",
        model=name,
        revision=revision,
        trust_remote_code=True,
        device=_device(),
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


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
