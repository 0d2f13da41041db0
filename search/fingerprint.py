"""What an index's embeddings depend on, as short hashes: the weights, and the processor settings
that change pixels (image rows and image queries) or tokens (text queries).

A model's name says nothing once its folder is rewritten in place or its Hub branch moves; these
hashes do.
"""

import hashlib
import json

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


def _weights_digest(model: torch.nn.Module) -> str:
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
