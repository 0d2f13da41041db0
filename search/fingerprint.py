"""What an index's embeddings depend on, as short hashes: the weights, and the processor settings
that change pixels (image rows and image queries) or tokens (text queries).

A model's name says nothing once its folder is rewritten in place or its Hub branch moves; these
hashes do.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

# Settings that only accept or refuse an input (a pixel limit) change no embedding.
_IGNORED_IMAGE_SETTINGS = {"max_image_pixels", "_lookup", "processor_class", "auto_map"}


def model_fingerprint(model, processor) -> dict[str, str]:
    """`{"weights", "image_processor", "tokenizer"}`: a SHA-256 hex digest of each."""
    return {
        "weights": _weights_digest(model),
        "image_processor": _settings_digest(_image_settings(processor.image_processor)),
        "tokenizer": _tokenizer_digest(processor.tokenizer),
    }


def fingerprint_differences(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The parts that differ, in a fixed order; image rows depend on the first two."""
    parts = ("weights", "image_processor", "tokenizer")
    return [part for part in parts if recorded.get(part) != current.get(part)]


def _weights_digest(model) -> str:
    """The checkpoint file the model was loaded from, where it was loaded from a folder: so one
    folder has one fingerprint whether it runs in float32, in int8 or on onnxruntime. Otherwise
    the tensors themselves (an in-memory model, or one fetched from the Hub)."""
    checkpoint = _checkpoint_file(model)
    if checkpoint is not None:
        return _file_digest(checkpoint)
    if not hasattr(model, "state_dict"):
        raise ValueError(
            f"cannot fingerprint model {getattr(model, 'name_or_path', model)!r}: it has no "
            "model.safetensors beside it and no tensors of its own (use the torch backend)"
        )
    return _state_digest(model)


def _checkpoint_file(model) -> Path | None:
    for folder in (getattr(model, "folder", None), getattr(model, "name_or_path", None)):
        if folder and (Path(folder) / "model.safetensors").is_file():
            return Path(folder) / "model.safetensors"
    return None


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _state_digest(model: torch.nn.Module) -> str:
    """Every tensor of the state dict by name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        header = f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n"
        digest.update(header.encode("utf-8"))
        # numpy has no bfloat16: hash the raw bytes through a same-width integer view.
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.view(torch.int16)
        digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())
    return digest.hexdigest()


def _image_settings(image_processor) -> dict:
    settings = image_processor.to_dict()
    return {k: v for k, v in settings.items() if k not in _IGNORED_IMAGE_SETTINGS}


def _tokenizer_digest(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # a fast tokenizer: vocabulary, normaliser and rules in one JSON
        return hashlib.sha256(backend.to_str().encode("utf-8")).hexdigest()
    return _settings_digest({"vocab": sorted(tokenizer.get_vocab().items())})


def _settings_digest(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
