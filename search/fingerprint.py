"""What an index's image rows depend on, as short hashes: the image side of the model.

Image rows depend on the image tower's weights, its projection, the tower settings that change
what its weights compute (activation, norms' epsilon, patching) and the image processor's pixel
settings; nothing of the text side. So an index accepts any model whose image side is the same,
wherever it lives: a moved folder, a copy with ONNX files added, a student trained with the
image tower frozen. A model's name says nothing once its folder is rewritten in place or its Hub
branch moves; these hashes do.

The image side is every tensor that is not of the text side, so that image towers of new
families (`vision_model.*`, an optional `visual_projection.*`) count without a change here.
The tensors are read from the checkpoint file where there is one, so one folder has one
fingerprint in float32, in int8 and on onnxruntime; only the image side's tensors are read.

Indexes written before this layout recorded `{"weights", "image_processor", "tokenizer"}`, the
first a SHA-256 of the whole `model.safetensors`: such a record is compared as it was made (the
whole file again) and replaced by the current layout on the index's next write.
"""

import hashlib
import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.errors import WrongModelError

# Parts of the current layout, all of which image rows depend on.
IMAGE_PARTS = ("image_tower", "image_processor")
# The older layout's parts; "weights" covered both towers, so a text-side change changed it.
LEGACY_PARTS = ("weights", "image_processor")
TEXT_SIDE_PREFIXES = ("text_model.", "text_projection.")
TEXT_SIDE_NAMES = frozenset({"logit_scale", "logit_bias"})
# Tower settings that change what the same weights compute; shapes are hashed with the tensors.
TOWER_SETTINGS = (
    "model_type",
    "hidden_act",
    "layer_norm_eps",
    "image_size",
    "patch_size",
    "num_attention_heads",
)
WEIGHTS_FILE = "model.safetensors"
SHARDS_INDEX_FILE = "model.safetensors.index.json"
# Settings that only accept or refuse an input (a pixel limit) change no embedding.
_IGNORED_IMAGE_SETTINGS = {"max_image_pixels", "_lookup", "processor_class", "auto_map"}
_PART_NAMES = {
    "image_tower": "image tower (its weights, projection or settings)",
    "image_processor": "image processor's pixel settings",
    "weights": "weights",
}


@dataclass(frozen=True)
class FingerprintDifference:
    """How a model differs from the one an index's rows were embedded with.

    `parts` are the differing parts of the recorded fingerprint (`IMAGE_PARTS`, or
    `LEGACY_PARTS` where `legacy`); `legacy` says the index recorded the older whole-file
    digest, which any change of the checkpoint (text side included) changes.
    """

    parts: tuple[str, ...]
    legacy: bool = False

    def describe(self) -> str:
        """The differing parts in words, e.g. "image tower (...) and image processor's ..."."""
        return " and ".join(_PART_NAMES.get(part, part) for part in self.parts)


class ModelMismatchError(WrongModelError):
    """The model's image side differs from the one an index's rows were embedded with."""

    def __init__(self, index: str, difference: FingerprintDifference, built_with: str = ""):
        self.index = index
        self.difference = difference
        self.built_with = built_with
        older = (
            " (the index records a digest of the whole checkpoint, as older versions did, so "
            "any change to it counts)"
            if difference.legacy
            else ""
        )
        model = f" (model {built_with!r})" if built_with else ""
        super().__init__(
            f"the model's {difference.describe()} differ from those index {index} was built "
            f"with{model}{older}; its rows and this model's embeddings cannot be mixed: embed "
            "every image again with this model, or use the model the index was built with"
        )


def model_fingerprint(model, processor) -> dict[str, str]:
    """`{"image_tower", "image_processor"}`: a SHA-256 hex digest of each."""
    return {
        "image_tower": image_tower_digest(model),
        "image_processor": _settings_digest(_image_settings(processor.image_processor)),
    }


def fingerprint_differences(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """The image-side parts that differ between two fingerprints of the current layout, in a
    fixed order. Use `compare_with_index` for a record that may be of the older layout."""
    return [part for part in IMAGE_PARTS if recorded.get(part) != current.get(part)]


def compare_with_index(
    recorded: dict[str, str], model, processor, current: dict[str, str] | None = None
) -> FingerprintDifference | None:
    """None where `model` embeds images exactly as the model `recorded` describes did.

    `current` is `model_fingerprint(model, processor)` where the caller has it already. A record
    of the older layout is compared as it was made: the whole checkpoint file's digest.
    """
    if "image_tower" in recorded:
        current = current or model_fingerprint(model, processor)
        parts = fingerprint_differences(recorded, current)
        return FingerprintDifference(tuple(parts)) if parts else None
    legacy = {
        "weights": legacy_weights_digest(model),
        "image_processor": _settings_digest(_image_settings(processor.image_processor)),
    }
    parts = [part for part in LEGACY_PARTS if recorded.get(part) != legacy[part]]
    return FingerprintDifference(tuple(parts), legacy=True) if parts else None


def check_model_for_index(
    index: str, meta: dict, model, processor, current: dict | None = None
) -> None:
    """Raises `ModelMismatchError` where `model` cannot add to or search the rows of the index
    whose meta.json is `meta`; an index without a fingerprint (version 1) has nothing to
    compare with. `current` is `model_fingerprint(model, processor)` where the caller has it."""
    recorded = meta.get("fingerprint")
    if recorded is None:
        return
    difference = compare_with_index(recorded, model, processor, current)
    if difference is not None:
        raise ModelMismatchError(index, difference, str(meta.get("model", "")))


def is_image_side(name: str) -> bool:
    """Whether a checkpoint tensor is of the image side: anything not of the text side."""
    return not name.startswith(TEXT_SIDE_PREFIXES) and name not in TEXT_SIDE_NAMES


def image_tower_digest(model) -> str:
    """The image side's tensors (by name, dtype, shape and bytes, in name order) and tower
    settings: from the checkpoint file where the model came from a folder, else from memory."""
    digest = hashlib.sha256()
    digest.update(_settings_digest(_tower_settings(model)).encode("ascii"))
    shards = _checkpoint_shards(model)
    if shards is not None:
        _hash_file_tensors(digest, shards)
        return digest.hexdigest()
    if not hasattr(model, "state_dict"):
        raise ValueError(
            f"cannot fingerprint model {getattr(model, 'name_or_path', model)!r}: it has no "
            f"{WEIGHTS_FILE} beside it and no tensors of its own (use the torch backend)"
        )
    state = model.state_dict()
    for name in sorted(filter(is_image_side, state)):
        _hash_tensor(digest, name, state[name])
    return digest.hexdigest()


def legacy_weights_digest(model) -> str:
    """The older layout's "weights": the whole `model.safetensors` file, or every tensor of the
    state dict for a model without one."""
    folder = _local_folder(model)  # as it was computed: a Hub model from its tensors
    if folder is not None and (folder / WEIGHTS_FILE).is_file():
        return _file_digest(folder / WEIGHTS_FILE)
    if not hasattr(model, "state_dict"):
        raise ValueError(f"cannot fingerprint model {getattr(model, 'name_or_path', model)!r}")
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        _hash_tensor(digest, name, state[name])
    return digest.hexdigest()


def _model_folder(model) -> Path | None:
    """The folder holding the model's checkpoint: the one it was loaded from, or, for a model
    from the Hub, the snapshot in the local Hub cache it was read from."""
    return _local_folder(model) or _hub_snapshot(model)


def _local_folder(model) -> Path | None:
    for folder in (getattr(model, "folder", None), getattr(model, "name_or_path", None)):
        if folder and Path(folder).is_dir():
            return Path(folder)
    return None


def _hub_snapshot(model) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    name = getattr(model, "name_or_path", None)
    revision = getattr(model, "_source_kwargs", {}).get("revision")
    for file in (WEIGHTS_FILE, SHARDS_INDEX_FILE):
        try:
            cached = try_to_load_from_cache(str(name), file, revision=revision)
        except ValueError:  # not a Hub id (huggingface_hub's HFValidationError)
            return None
        if isinstance(cached, str):
            return Path(cached).parent
    return None


def _checkpoint_shards(model) -> dict[str, Path] | None:
    """Image-side tensor name -> the safetensors file holding it, for a model from a folder."""
    folder = _model_folder(model)
    if folder is None:
        return None
    if (folder / WEIGHTS_FILE).is_file():
        from safetensors import safe_open

        with safe_open(str(folder / WEIGHTS_FILE), framework="pt") as file:
            names = list(file.keys())
        return {name: folder / WEIGHTS_FILE for name in names if is_image_side(name)}
    if (folder / SHARDS_INDEX_FILE).is_file():
        weight_map = json.loads((folder / SHARDS_INDEX_FILE).read_text("utf-8"))["weight_map"]
        return {
            name: folder / Path(shard).name
            for name, shard in weight_map.items()
            if is_image_side(name)
        }
    return None


def _hash_file_tensors(digest, shards: dict[str, Path]) -> None:
    from safetensors import safe_open

    with ExitStack() as stack:
        files = {
            path: stack.enter_context(safe_open(str(path), framework="pt"))
            for path in sorted(set(shards.values()))
        }
        for name in sorted(shards):
            _hash_tensor(digest, name, files[shards[name]].get_tensor(name))


def _hash_tensor(digest, name: str, tensor) -> None:
    import torch  # a tensor is at hand, so torch is loaded already

    tensor = tensor.detach().cpu().contiguous()
    digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
    # numpy has no bfloat16: hash the raw bytes through a same-width integer view.
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.view(torch.int16)
    digest.update(np.ascontiguousarray(tensor.numpy()).tobytes())


def _tower_settings(model) -> dict:
    vision = getattr(getattr(model, "config", None), "vision_config", None)
    return {key: getattr(vision, key, None) for key in TOWER_SETTINGS}


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _image_settings(image_processor) -> dict:
    settings = image_processor.to_dict()
    return {k: v for k, v in settings.items() if k not in _IGNORED_IMAGE_SETTINGS}


def _settings_digest(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
