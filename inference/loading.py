"""How the commands load a model: which one an index needs, from where, with whose code, on which
device.

A folder or Hub repository named on the command line or in an index contributes weights and
configuration, never code: Turkish CLIP models load with this checkout's classes, and only from
`model.safetensors` (a pickle file such as `pytorch_model.bin` can run code as it is read). A model
of another type needs its own code; that is loaded only with `trust_remote_code=True` and, from
the Hub, only at a commit sha, so the code that runs is the code that was read.
"""

import json
import re
from pathlib import Path

# The folder that `python hub_upload.py convert --output turkish-clip` writes.
DEFAULT_MODEL = "turkish-clip"
MODEL_TYPE = "turkish_clip"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
BACKENDS = ("torch", "onnx")


class ModelChoiceError(ValueError):
    """The model asked for is missing or unsafe to load, or an index names no model."""


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


def load_model(
    name: str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    backend: str | None = None,
    int8: bool = False,
):
    """The model `name` (a folder or a Hub id) in eval mode, with `encode_text`/`encode_image`/
    `encode_labels`, on `backend` (see `choose_backend`); `int8` picks the torch int8 path or the
    quantised ONNX files. On the GPU if there is one, unless int8."""
    extra = {"int8": True} if int8 else {}
    if needs_remote_code(name, revision, trust_remote_code):
        from transformers import AutoModel

        model = _from_pretrained(AutoModel, name, revision, trust_remote_code=True, **extra)
        return model.to(_device(int8)).eval()
    if choose_backend(name, backend, int8) == "onnx":
        from inference.onnx_backend import OnnxTurkishCLIP

        return _call(
            lambda: OnnxTurkishCLIP.from_pretrained(name, revision=revision, int8=int8),
            name,
            revision,
        )
    from turkish_clip import TurkishCLIPModel

    model = _from_pretrained(TurkishCLIPModel, name, revision, **extra)
    _call(lambda: model.processor, name, revision)  # a broken tokenizer fails here, named
    return model.to(_device(int8)).eval()


def load_pipeline(
    name: str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    backend: str | None = None,
    int8: bool = False,
):
    """The zero-shot classification pipeline of `name`: this checkout's pipeline class around a
    model loaded by `load_model` (or its onnxruntime stand-in), or, for a trusted model of another
    type, the model's own."""
    if needs_remote_code(name, revision, trust_remote_code):
        from transformers import pipeline

        return pipeline(
            "zero-shot-image-classification",
            model=name,
            revision=revision,
            trust_remote_code=True,
            device=_device(int8),
            model_kwargs={"use_safetensors": True, **({"int8": True} if int8 else {})},
        )
    if choose_backend(name, backend, int8) == "onnx":
        from inference.onnx_backend import OnnxZeroShotClassifier

        return OnnxZeroShotClassifier(load_model(name, revision, backend="onnx", int8=int8))
    from turkish_clip.pipeline_turkish_clip import TurkishCLIPZeroShotPipeline

    model = load_model(name, revision, backend="torch", int8=int8)
    processor = model.processor
    return TurkishCLIPZeroShotPipeline(
        model=model,
        tokenizer=processor.tokenizer,
        image_processor=processor.image_processor,
        device=model.device,
    )


def needs_remote_code(name: str, revision: str | None, trust_remote_code: bool) -> bool:
    """Whether `name` needs code of its own; refuses, naming it, a model that cannot be loaded
    safely: missing, without `model.safetensors`, or needing code that was not trusted."""
    folder = Path(name).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ModelChoiceError(f"model {name!r} is a file, not a model folder")
    if folder.is_dir():
        if revision is not None:
            raise ModelChoiceError(
                f"--revision {revision!r} names a Hub commit, but model {name!r} is a local folder "
                "(drop --revision)"
            )
        config = _read_config(folder / "config.json", repr(name))
        _check_weights(folder, name)
    else:
        _check_hub_id(name, revision, trust_remote_code)
        config = _read_config(_hub_config(name, revision), _model_name(name, revision))
    model_type = config.get("model_type")
    if model_type == MODEL_TYPE:
        return False
    if not trust_remote_code:
        pin = "" if folder.is_dir() else " and --revision COMMIT_SHA"
        raise ModelChoiceError(
            f"model {_model_name(name, revision)} is of type {model_type!r}, not {MODEL_TYPE!r}: "
            f"loading it runs code from it; if you trust that code, pass --trust-remote-code with "
            f"--model naming it{pin}"
        )
    return True


def choose_model(
    name: str | None, revision: str | None, meta: dict | None
) -> tuple[str, str | None]:
    """The model for an index: the one named, else the one it was built with.

    Names are not compared: a moved folder or a student with the same image tower serves an
    index as well as the original. Whether a model's embeddings fit the index's rows is decided
    by content, once it is loaded (`search.fingerprint.check_model_for_index`).
    """
    if meta is None:
        return model_source(name or DEFAULT_MODEL), revision
    built_with, built_at = meta.get("model"), meta.get("revision")
    if not isinstance(built_with, str) or not (built_at is None or isinstance(built_at, str)):
        raise ModelChoiceError(
            "the index's meta.json names no model (its 'model' must be a folder or Hub id, its "
            "'revision' a string or null)"
        )
    if name is not None:
        return model_source(name), revision
    if Path(built_with).is_absolute() and not Path(built_with).is_dir():
        raise ModelChoiceError(
            f"the index was built with model folder {built_with!r}, which is gone: name the "
            "model (moved, or any copy of it) with --model"
        )
    return built_with, built_at if revision is None else revision


def _check_hub_id(name: str, revision: str | None, trust_remote_code: bool) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name == DEFAULT_MODEL:
        raise ModelChoiceError(
            f"model folder {DEFAULT_MODEL!r} not found: write it with `python hub_upload.py "
            f"convert --output {DEFAULT_MODEL}` or pass --model (a folder or a Hub id)"
        )
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelChoiceError(f"model folder {name!r} not found") from None
    if trust_remote_code and (revision is None or not _COMMIT_SHA.fullmatch(revision)):
        raise ModelChoiceError(
            f"--trust-remote-code with Hub model {name!r} needs --revision set to a full "
            f"40-character commit sha, not {revision!r}: a branch or tag can move to other code"
        )


def _hub_config(name: str, revision: str | None) -> Path:
    from huggingface_hub import hf_hub_download

    path = _call(lambda: hf_hub_download(name, "config.json", revision=revision), name, revision)
    return Path(path)


def _read_config(path: Path, shown: str) -> dict:
    """config.json as a dict; `shown` names the model in errors."""
    if not path.is_file():
        raise ModelChoiceError(f"model {shown} has no config.json: it is not a model folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelChoiceError(f"model {shown}: config.json cannot be read: {error}") from None
    if not isinstance(config, dict):
        raise ModelChoiceError(f"model {shown}: config.json does not hold a JSON object")
    return config


def _check_weights(folder: Path, name: str) -> None:
    if any((folder / file).is_file() for file in WEIGHTS_FILES):
        return
    pickles = [file for file in PICKLE_WEIGHTS_FILES if (folder / file).is_file()]
    if pickles:
        raise ModelChoiceError(
            f"model folder {name!r} has only {pickles[0]}, a pickle file that can run code as it "
            "is read; only model.safetensors is loaded (convert the folder with safetensors)"
        )
    raise ModelChoiceError(f"model folder {name!r} has no model.safetensors")


def _from_pretrained(model_class, name: str, revision: str | None, **kwargs):
    return _call(
        lambda: model_class.from_pretrained(
            name, revision=revision, use_safetensors=True, **kwargs
        ),
        name,
        revision,
    )


def _call(load, name: str, revision: str | None):
    """`load()`, with any loading error as one line naming the model."""
    try:
        return load()
    except ModelChoiceError:
        raise
    except Exception as error:  # transformers and the Hub client raise many kinds, many lines
        message = " ".join(str(error).split()) or type(error).__name__
        raise ModelChoiceError(
            f"model {_model_name(name, revision)} cannot be loaded: {message}"
        ) from error


def _model_name(source: str, revision: str | None) -> str:
    return repr(f"{source}@{revision}" if revision else source)


def _backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def _device(int8: bool = False) -> str:
    import torch

    # The int8 path multiplies int8 matrices on the CPU only.
    return "cuda" if torch.cuda.is_available() and not int8 else "cpu"
