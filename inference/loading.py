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
import socket
import threading
from dataclasses import dataclass, replace
from pathlib import Path

# The folder that `python hub_upload.py convert --output turkish-clip` writes.
DEFAULT_MODEL = "turkish-clip"
MODEL_TYPE = "turkish_clip"
WEIGHTS_FILES = ("model.safetensors", "model.safetensors.index.json")
PICKLE_WEIGHTS_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
# How long a Hub look-up may wait for a first connection before the model counts as unreachable.
HUB_DEADLINE_SECONDS = 5.0
BACKENDS = ("torch", "onnx")


class ModelChoiceError(ValueError):
    """The model asked for is missing or unsafe to load, or an index names no model."""


class IndexModelGoneError(ModelChoiceError):
    """The model folder an index names is gone: the model must be named (moved, or a copy)."""


class RevisionOfFolderError(ModelChoiceError):
    """A revision (a Hub commit) was given with a local folder."""


class UntrustedCodeError(ModelChoiceError):
    """The model needs code of its own, and its code was not trusted."""


class UnpinnedCodeError(ModelChoiceError):
    """A Hub model's code was trusted without pinning it to a commit sha."""


class HubUnreachableError(ModelChoiceError):
    """A Hub model that is not in the local cache, while the Hub cannot be reached."""


class NoDefaultModelError(ModelChoiceError):
    """No model was named, and the default folder is not there."""


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load and how: the one value every front door, the index update and the
    Ray workers pass to `load_model`.

    `source` is a folder or a Hub id (None: the index's own model, else `DEFAULT_MODEL`; see
    `spec_for_index`), `revision` a Hub branch, tag or commit, `backend` "torch", "onnx" or
    None (see `choose_backend`), `int8` the int8 CPU path, `trust_remote_code` whether a model
    of another type may run its own code.
    """

    source: str | None = None
    revision: str | None = None
    backend: str | None = None
    int8: bool = False
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.backend is not None:
            _backend(self.backend)

    @property
    def name(self) -> str:
        """The source, or the default model where none is named."""
        return self.source if self.source is not None else DEFAULT_MODEL

    def resolved(self) -> "ModelSpec":
        """With `source` as indexes record it: a local folder by absolute path."""
        return replace(self, source=model_source(self.name))


def spec_for_index(spec: ModelSpec, meta: dict | None, reembed: bool = False) -> ModelSpec:
    """The model for an index whose meta.json is `meta` (None: a new index): the one named, else
    the one it was built with. Names are not compared: whether a model's embeddings fit the
    index's rows is decided by content once it is loaded (search.fingerprint), unless `reembed`
    embeds every row again with the named model."""
    if reembed and meta is not None and spec.source is not None:
        return spec.resolved()
    source, revision = choose_model(spec.source, spec.revision, meta)
    return replace(spec, source=source, revision=revision)


def model_source(name: str) -> str:
    """Local folders by absolute path, so an index stays tied to one model from any directory."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def choose_backend(name: str, backend: str | None, int8: bool = False) -> str:
    """The backend asked for; by default onnxruntime on a CPU where the model folder has its ONNX
    files (faster there: see docs/performance.md), torch otherwise.

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


def as_spec(
    spec: ModelSpec | str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    backend: str | None = None,
    int8: bool = False,
) -> ModelSpec:
    """A `ModelSpec`, from one or from a name and the options (the older calling form)."""
    if isinstance(spec, ModelSpec):
        return spec
    return ModelSpec(spec, revision, backend, int8, trust_remote_code)


def load_model(
    spec: ModelSpec | str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    backend: str | None = None,
    int8: bool = False,
):
    """The model `spec` names (a folder or a Hub id) in eval mode, meeting the embedding interface
    (inference/embedding_model.py), on its backend (see `choose_backend`); `int8` picks the torch
    int8 path or the quantised ONNX files. On the GPU if there is one, unless int8.

    The one loader of every command, the web page, the HTTP API and the Ray workers. A name with
    keyword options is accepted too: `load_model("turkish-clip", backend="onnx")`.
    """
    spec = as_spec(spec, revision, trust_remote_code, backend, int8)
    name, revision, trust_remote_code = spec.name, spec.revision, spec.trust_remote_code
    backend, int8 = spec.backend, spec.int8
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
    spec: ModelSpec | str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    backend: str | None = None,
    int8: bool = False,
):
    """The zero-shot classification pipeline of `spec`: this checkout's pipeline class around a
    model loaded by `load_model` (or its onnxruntime stand-in), or, for a trusted model of another
    type, the model's own."""
    spec = as_spec(spec, revision, trust_remote_code, backend, int8)
    name, revision, trust_remote_code = spec.name, spec.revision, spec.trust_remote_code
    backend, int8 = spec.backend, spec.int8
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

        return OnnxZeroShotClassifier(load_model(replace(spec, backend="onnx")))
    from turkish_clip.pipeline_turkish_clip import TurkishCLIPZeroShotPipeline

    model = load_model(replace(spec, backend="torch"))
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
            raise RevisionOfFolderError(
                f"revision {revision!r} names a Hub commit, but model {name!r} is a local folder"
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
        pin = "" if folder.is_dir() else ", pinned to a commit sha"
        raise UntrustedCodeError(
            f"model {_model_name(name, revision)} is of type {model_type!r}, not {MODEL_TYPE!r}: "
            f"loading it runs code from it, which needs that code trusted (trust_remote_code){pin}"
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
        raise IndexModelGoneError(
            f"the index was built with model folder {built_with!r}, which is gone"
        )
    return built_with, built_at if revision is None else revision


def _check_hub_id(name: str, revision: str | None, trust_remote_code: bool) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name == DEFAULT_MODEL:
        raise NoDefaultModelError(
            f"model folder {DEFAULT_MODEL!r} not found: write it with `python hub_upload.py "
            f"convert --output {DEFAULT_MODEL}`, or name a model folder or a Hub id"
        )
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ModelChoiceError(f"model folder {name!r} not found") from None
    if trust_remote_code and (revision is None or not _COMMIT_SHA.fullmatch(revision)):
        raise UnpinnedCodeError(
            f"trusting the code of Hub model {name!r} needs its revision set to a full "
            f"40-character commit sha, not {revision!r}: a branch or tag can move to other code"
        )


def _hub_config(name: str, revision: str | None) -> Path:
    """The model's config.json from the Hub, or from the local cache where the Hub cannot be
    reached within HUB_DEADLINE_SECONDS: the Hub client's own retries would take most of a
    minute to say so."""
    from huggingface_hub import hf_hub_download

    if not hub_reachable():
        try:
            cached = hf_hub_download(name, "config.json", revision=revision, local_files_only=True)
        except Exception:  # not in the cache: no way to get it now
            raise HubUnreachableError(
                f"model {_model_name(name, revision)} cannot be loaded: it is neither a local "
                f"folder nor in the local Hub cache, and {_why_no_hub()}"
            ) from None
        return Path(cached)
    path = _call(lambda: hf_hub_download(name, "config.json", revision=revision), name, revision)
    return Path(path)


def hub_reachable(deadline: float = HUB_DEADLINE_SECONDS) -> bool:
    """Whether a connection to the Hub opens within `deadline` seconds, name look-up included
    (which sockets' own timeouts do not bound). False in offline mode (HF_HUB_OFFLINE=1)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    outcome: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(_hub_address(), timeout=deadline).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    attempt = threading.Thread(target=connect, daemon=True)
    attempt.start()
    attempt.join(deadline)
    return bool(outcome and outcome[0])


def _why_no_hub() -> str:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "offline mode is on (HF_HUB_OFFLINE)"
    return f"the Hub ({_hub_address()[0]}) cannot be reached within {HUB_DEADLINE_SECONDS:g} s"


def _hub_address() -> tuple[str, int]:
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


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
