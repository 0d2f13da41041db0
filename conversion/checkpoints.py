"""Map the three original turkish-clip checkpoints onto one PyTorch state dict.

The original project is split over three files in three frameworks:

* the Turkish DistilBERT text encoder (`mys/distilbert-base-turkish-cased-clip`, a TensorFlow
  `tf_model.h5` made by transformers 4.x),
* the Keras projection head `clip_head.h5` (one Dense 768 -> 512 layer, with bias),
* OpenAI's CLIP ViT-B/32 TorchScript archive (image tower and `logit_scale`).

Every name mapping below is written out rule by rule and checked: each source tensor must be used
exactly once, each target parameter filled exactly once, and every shape must match. Problems are
collected and raised together in one `ValueError`, so a wrong checkpoint is refused with a message
naming the tensors rather than converted into a silently broken model.

Nothing here imports TensorFlow or Keras: the `.h5` files are read as plain HDF5 with h5py, which
never runs code stored in a file (Keras' `load_model` would, for a `Lambda` layer).
"""

from __future__ import annotations

import json
import math
import re
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import h5py
import huggingface_hub
import numpy as np
import torch
from safetensors.torch import load_file
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    DistilBertConfig,
    DistilBertModel,
    DistilBertTokenizerFast,
)

from conversion.defaults import (  # noqa: F401  (named here too: the mapping's sources)
    DEFAULT_HEAD_URL,
    DEFAULT_TEXT_SOURCE,
    DEFAULT_VISION_SOURCE,
)
from turkish_clip import TurkishCLIPImageProcessor, TurkishCLIPProcessor
from turkish_clip.processing import MAX_TOKENS

# Files fetched for a Hub id: config, tokenizer and whichever weight format the repo has.
TEXT_ALLOW_PATTERNS = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "model.safetensors",
    "pytorch_model.bin",
    "tf_model.h5",
]

# The real head is 1.6 MB; anything far bigger at that URL is not the head.
MAX_HEAD_BYTES = 64 * 1024 * 1024
HEAD_DOWNLOAD_TIMEOUT_S = 60

Shape = tuple[int, ...]


# --------------------------------------------------------------------------------------------
# Shared checking
# --------------------------------------------------------------------------------------------


class _Mapper:
    """Collects mapped tensors and every problem found, so all can be reported at once."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.tensors: dict[str, torch.Tensor] = {}
        self.origin: dict[str, str] = {}
        self.problems: list[str] = []

    def put(self, target: str, tensor: torch.Tensor, source: str) -> None:
        """Record `source` as the tensor for `target`; a second source for a target is an error."""
        if target in self.tensors:
            self.problems.append(
                f"{source} and {self.origin[target]} both map to {target} (each target once)"
            )
            return
        self.tensors[target] = tensor
        self.origin[target] = source

    def unused(self, source: str, shape: Shape) -> None:
        """Record a source tensor that no rule maps (it would otherwise be silently dropped)."""
        self.problems.append(
            f"unexpected source tensor {source} with shape {shape}: no rule maps it"
        )

    def finish(self, expected: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
        """Check the collected tensors against the target's names and shapes; raise if wrong."""
        for name, shape in expected.items():
            if name not in self.tensors:
                self.problems.append(
                    f"missing: nothing maps to {name} (expected shape {tuple(shape)})"
                )
            elif tuple(self.tensors[name].shape) != tuple(shape):
                self.problems.append(
                    f"wrong shape: {self.origin[name]} -> {name}: expected {tuple(shape)}, "
                    f"found {tuple(self.tensors[name].shape)}"
                )
        for name in sorted(self.tensors.keys() - expected.keys()):
            self.problems.append(
                f"unexpected target {name} from {self.origin[name]} "
                f"(shape {tuple(self.tensors[name].shape)}): not in the target model"
            )
        if self.problems:
            listing = "\n  ".join(self.problems)
            raise ValueError(f"{self.what}: {len(self.problems)} problem(s):\n  {listing}")
        return {name: _fp32(self.tensors[name]) for name in expected}


def _fp32(tensor: torch.Tensor) -> torch.Tensor:
    """Detached fp32 copy with its own contiguous storage (safetensors refuses shared storage)."""
    return tensor.detach().to(dtype=torch.float32).contiguous().clone()


def _target_shapes(build: Callable[[], torch.nn.Module]) -> dict[str, torch.Size]:
    """Parameter names and shapes of a model, built on the meta device so nothing is allocated."""
    with torch.device("meta"):
        model = build()
    return {name: tensor.shape for name, tensor in model.state_dict().items()}


# --------------------------------------------------------------------------------------------
# Text tower: DistilBERT
# --------------------------------------------------------------------------------------------

# TF name (relative to `distilbert/`, without `:0`) -> (torch name, transpose?).
# TF Dense kernels are (in, out); torch Linear weights are (out, in), hence the transposes.
# Keras LayerNormalization calls its scale/offset gamma/beta; torch calls them weight/bias.
_TF_EMBEDDING_RULES: dict[str, tuple[str, bool]] = {
    "embeddings/word_embeddings/weight": ("embeddings.word_embeddings.weight", False),
    "embeddings/position_embeddings/embeddings": ("embeddings.position_embeddings.weight", False),
    "embeddings/LayerNorm/gamma": ("embeddings.LayerNorm.weight", False),
    "embeddings/LayerNorm/beta": ("embeddings.LayerNorm.bias", False),
}

# Within `transformer/layer_._N/` (TF) and `transformer.layer.N.` (torch).
_TF_LAYER_RULES: dict[str, tuple[str, bool]] = {
    "attention/q_lin/kernel": ("attention.q_lin.weight", True),
    "attention/q_lin/bias": ("attention.q_lin.bias", False),
    "attention/k_lin/kernel": ("attention.k_lin.weight", True),
    "attention/k_lin/bias": ("attention.k_lin.bias", False),
    "attention/v_lin/kernel": ("attention.v_lin.weight", True),
    "attention/v_lin/bias": ("attention.v_lin.bias", False),
    "attention/out_lin/kernel": ("attention.out_lin.weight", True),
    "attention/out_lin/bias": ("attention.out_lin.bias", False),
    "sa_layer_norm/gamma": ("sa_layer_norm.weight", False),
    "sa_layer_norm/beta": ("sa_layer_norm.bias", False),
    "ffn/lin1/kernel": ("ffn.lin1.weight", True),
    "ffn/lin1/bias": ("ffn.lin1.bias", False),
    "ffn/lin2/kernel": ("ffn.lin2.weight", True),
    "ffn/lin2/bias": ("ffn.lin2.bias", False),
    "output_layer_norm/gamma": ("output_layer_norm.weight", False),
    "output_layer_norm/beta": ("output_layer_norm.bias", False),
}

_TF_LAYER_NAME = re.compile(r"transformer/layer_\._(\d+)/(.+)")

# Older PyTorch checkpoints saved this buffer; it is derived, not learned, so it is dropped.
_TORCH_DERIVED_BUFFERS = {"embeddings.position_ids"}


def read_text_tower(source: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read the DistilBERT text encoder as a `DistilBertModel` state dict plus its config.json.

    `source` is a local folder or a Hub repo id. The published fine-tuned encoder only has
    TensorFlow weights, which are read with h5py (transformers 5 has no TensorFlow support);
    safetensors and PyTorch `.bin` folders are accepted too so a re-export can be converted.
    """
    folder = text_folder(source)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{folder} has no config.json")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("model_type") != "distilbert":
        raise ValueError(
            f"{config_path}: model_type is {config.get('model_type')!r}, not distilbert"
        )
    expected = _target_shapes(lambda: DistilBertModel(DistilBertConfig(**config)))

    if (folder / "model.safetensors").is_file():
        state = _map_torch_text(
            load_file(folder / "model.safetensors"), folder / "model.safetensors"
        )
    elif (folder / "pytorch_model.bin").is_file():
        raw = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        state = _map_torch_text(raw, folder / "pytorch_model.bin")
    elif (folder / "tf_model.h5").is_file():
        state = _map_tf_text(folder / "tf_model.h5")
    else:
        raise ValueError(f"{folder} has none of model.safetensors, pytorch_model.bin, tf_model.h5")
    return state.finish(expected), config


def text_folder(source: str | Path) -> Path:
    """A local folder as is; anything else is a Hub id, fetched (config, tokenizer, weights)."""
    path = Path(source)
    if path.is_dir():
        return path
    if isinstance(source, Path) or path.exists():
        raise ValueError(f"{source} is not a folder")
    return Path(huggingface_hub.snapshot_download(str(source), allow_patterns=TEXT_ALLOW_PATTERNS))


def _map_torch_text(raw: Mapping[str, torch.Tensor], file: Path) -> _Mapper:
    """PyTorch names already match; a `distilbert.` prefix (task-model checkpoints) is dropped."""
    mapper = _Mapper(f"text tower {file}")
    for name, tensor in raw.items():
        target = name.removeprefix("distilbert.")
        if target in _TORCH_DERIVED_BUFFERS:
            continue
        mapper.put(target, tensor, name)
    return mapper


def _map_tf_text(file: Path) -> _Mapper:
    """Map every dataset of a transformers TF DistilBERT `tf_model.h5` by the explicit rules."""
    mapper = _Mapper(f"text tower {file}")
    with h5py.File(file, "r") as h5:
        for dataset_name, array in _h5_datasets(h5).items():
            rule = _tf_text_rule(dataset_name)
            if rule is None:
                mapper.unused(dataset_name, array.shape)
                continue
            target, transpose = rule
            tensor = torch.from_numpy(array.T.copy() if transpose else array)
            mapper.put(target, tensor, dataset_name)
    return mapper


def _h5_datasets(h5: h5py.File) -> dict[str, np.ndarray]:
    """Every dataset in an HDF5 file by its full path, read into memory."""
    found: dict[str, np.ndarray] = {}

    def visit(name: str, item: h5py.HLObject) -> None:
        if isinstance(item, h5py.Dataset):
            found[name] = np.asarray(item[()])

    h5.visititems(visit)
    return found


def _tf_text_rule(dataset_name: str) -> tuple[str, bool] | None:
    """The (torch name, transpose?) for one TF dataset path, or None when no rule applies.

    Only the part after the last `distilbert` path component is matched: what comes before it
    (`distilbert/tf_distil_bert_model/...`, `distilbert/...`) depends on how the model was saved.
    """
    parts = dataset_name.split("/")
    if "distilbert" not in parts:
        return None
    start = len(parts) - parts[::-1].index("distilbert")
    relative = "/".join(parts[start:]).removesuffix(":0")
    if relative in _TF_EMBEDDING_RULES:
        return _TF_EMBEDDING_RULES[relative]
    match = _TF_LAYER_NAME.fullmatch(relative)
    if match is None or match.group(2) not in _TF_LAYER_RULES:
        return None
    target, transpose = _TF_LAYER_RULES[match.group(2)]
    return f"transformer.layer.{int(match.group(1))}.{target}", transpose


# --------------------------------------------------------------------------------------------
# Projection head: Keras Dense in clip_head.h5
# --------------------------------------------------------------------------------------------

_MODEL_CLASSES = {"Sequential", "Functional", "Model"}


def read_projection_head(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the Keras projection head as a torch Linear (weight (out, in), bias (out,)).

    `path` is a local `.h5` file (`download_file` fetches a URL first). The Keras model config is
    parsed as JSON and must be exactly an input followed by one linear Dense with bias; anything
    else (a `Lambda`, a second Dense, an activation) is refused before any weight is read, because
    the converted model only has room for one affine map.
    """
    return _read_head_h5(Path(path))


def download_file(url: str, destination: Path) -> None:
    """Fetch `url` to `destination` with a timeout and a size cap."""
    with urllib.request.urlopen(url, timeout=HEAD_DOWNLOAD_TIMEOUT_S) as response:
        declared = response.headers.get("Content-Length") if response.headers else None
        if declared is not None and int(declared) > MAX_HEAD_BYTES:
            raise ValueError(f"{url} is more than the {MAX_HEAD_BYTES} bytes allowed ({declared})")
        with destination.open("wb") as out:
            copied = 0
            while chunk := response.read(1 << 20):
                copied += len(chunk)
                if copied > MAX_HEAD_BYTES:
                    raise ValueError(f"{url} is more than the {MAX_HEAD_BYTES} bytes allowed")
                out.write(chunk)


def _read_head_h5(file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    with h5py.File(file, "r") as h5:
        config = _keras_model_config(h5, file)
        dense, in_features = _single_dense(config, file)
        name, units = dense["name"], int(dense["units"])
        group = f"model_weights/{name}/{name}"
        wanted = {f"{group}/kernel:0": (in_features, units), f"{group}/bias:0": (units,)}
        weights = h5.get("model_weights")
        found = {} if weights is None else _h5_datasets(weights)
        found = {f"model_weights/{k}": v for k, v in found.items()}
    problems = []
    for tensor_name, shape in wanted.items():
        if tensor_name not in found:
            problems.append(f"missing tensor {tensor_name} (expected shape {shape})")
        elif found[tensor_name].shape != shape:
            problems.append(
                f"wrong shape for {tensor_name}: expected {shape}, found {found[tensor_name].shape}"
            )
    for extra in sorted(found.keys() - wanted.keys()):
        problems.append(f"unexpected tensor {extra} with shape {found[extra].shape}")
    if problems:
        listing = "\n  ".join(problems)
        raise ValueError(f"projection head {file}: {len(problems)} problem(s):\n  {listing}")
    kernel = torch.from_numpy(found[f"{group}/kernel:0"])
    bias = torch.from_numpy(found[f"{group}/bias:0"])
    return _fp32(kernel.T), _fp32(bias)


def _keras_model_config(h5: h5py.File, file: Path) -> dict:
    """The `model_config` attribute as plain JSON data (never handed to Keras)."""
    raw = h5.attrs.get("model_config")
    if raw is None:
        raise ValueError(f"{file} has no model_config attribute: not a Keras model file")
    text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    config = json.loads(text)
    if config.get("class_name") not in _MODEL_CLASSES:
        raise ValueError(f"{file}: model class {config.get('class_name')!r} is not supported")
    return config


def _single_dense(config: dict, file: Path) -> tuple[dict, int]:
    """Return (Dense config, input width); refuse any layer list but [InputLayer,] Dense."""
    layers = config.get("config", {}).get("layers", [])
    if layers and layers[0].get("class_name") == "InputLayer":
        input_layer, rest = layers[0], layers[1:]
    else:
        input_layer, rest = None, layers
    if not rest:
        raise ValueError(f"{file}: the model has no Dense layer")
    for layer in rest:
        if layer.get("class_name") != "Dense":
            raise ValueError(
                f"{file}: refusing layer {_describe(layer)}: only one Dense is allowed"
            )
    if len(rest) > 1:
        raise ValueError(f"{file}: refusing layer {_describe(rest[1])}: only one Dense is allowed")
    dense = rest[0]["config"]
    if dense.get("activation") != "linear" or dense.get("use_bias") is not True:
        raise ValueError(
            f"{file}: refusing layer {_describe(rest[0])}: need activation 'linear' and "
            f"use_bias true, found activation {dense.get('activation')!r}, "
            f"use_bias {dense.get('use_bias')!r}"
        )
    shape = _input_shape(input_layer, dense, config.get("config", {}))
    if shape is None or len(shape) != 2 or not isinstance(shape[-1], int):
        raise ValueError(f"{file}: cannot tell the input width of layer {_describe(rest[0])}")
    return dense, shape[-1]


def _describe(layer: dict) -> str:
    return f"{layer.get('class_name')} {layer.get('config', {}).get('name')!r}"


def _input_shape(input_layer: dict | None, dense: dict, model: dict) -> list | None:
    """Batch input shape from wherever this Keras version put it."""
    candidates = [dense.get("batch_input_shape"), model.get("build_input_shape")]
    if input_layer is not None:
        layer = input_layer.get("config", {})
        candidates = [layer.get("batch_input_shape"), layer.get("batch_shape"), *candidates]
    return next((shape for shape in candidates if shape is not None), None)


# --------------------------------------------------------------------------------------------
# Image tower: OpenAI CLIP ViT
# --------------------------------------------------------------------------------------------

# OpenAI `visual.*` name -> transformers CLIPVisionModelWithProjection name.
_CLIP_VISION_RULES: dict[str, str] = {
    "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "class_embedding": "vision_model.embeddings.class_embedding",
    "positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "ln_pre.weight": "vision_model.pre_layrnorm.weight",  # sic: transformers' spelling
    "ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "ln_post.weight": "vision_model.post_layernorm.weight",
    "ln_post.bias": "vision_model.post_layernorm.bias",
}

# Within `transformer.resblocks.N.` (OpenAI) and `vision_model.encoder.layers.N.` (transformers).
_CLIP_BLOCK_RULES: dict[str, str] = {
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
}

# nn.MultiheadAttention packs q, k, v (in that order) into one in_proj along dim 0.
_CLIP_IN_PROJ_RULES: dict[str, tuple[str, str, str]] = {
    "attn.in_proj_weight": (
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
    ),
    "attn.in_proj_bias": (
        "self_attn.q_proj.bias",
        "self_attn.k_proj.bias",
        "self_attn.v_proj.bias",
    ),
}

_CLIP_BLOCK_NAME = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)")


def read_clip_vision(name_or_path: str) -> tuple[dict[str, torch.Tensor], dict, torch.Tensor]:
    """Read OpenAI CLIP's image tower as a `CLIPVisionModelWithProjection` state dict.

    Returns (state dict fp32, `CLIPVisionConfig` kwargs derived from the checkpoint's shapes,
    0-dim `logit_scale`). Loading goes through OpenAI's own `clip` package so the archive is
    interpreted exactly as the original project did; a model name downloads to clip's cache.
    """
    import clip  # slow import (torchvision), only needed here

    model, _ = clip.load(name_or_path, device="cpu", jit=False)
    visual = {name: tensor.detach() for name, tensor in model.visual.state_dict().items()}
    if "proj" not in visual or "conv1.weight" not in visual:
        raise ValueError(f"{name_or_path}: not a CLIP ViT checkpoint (no visual.proj/conv1)")
    config = _clip_vision_config(visual)
    expected = _target_shapes(lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(**config)))
    state = _map_clip_vision(visual, f"image tower {name_or_path}").finish(expected)
    logit_scale = _fp32(model.logit_scale).reshape(())
    return state, config, logit_scale


def _clip_vision_config(visual: Mapping[str, torch.Tensor]) -> dict:
    """CLIPVisionConfig kwargs, every size read off the checkpoint's tensors."""
    width, _, patch, _ = visual["conv1.weight"].shape
    grid = math.isqrt(visual["positional_embedding"].shape[0] - 1)
    layers = {int(m.group(1)) for k in visual if (m := _CLIP_BLOCK_NAME.fullmatch(k))}
    return {
        "hidden_size": int(width),
        "intermediate_size": int(visual["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
        "num_hidden_layers": len(layers),
        "num_attention_heads": int(width) // 64,  # as clip.model.CLIP derives it
        "image_size": int(patch) * grid,
        "patch_size": int(patch),
        "projection_dim": int(visual["proj"].shape[1]),
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }


def _map_clip_vision(visual: Mapping[str, torch.Tensor], what: str) -> _Mapper:
    """Map every `visual.*` tensor by the explicit rules above."""
    mapper = _Mapper(what)
    for name, tensor in visual.items():
        source = f"visual.{name}"
        if name == "proj":  # (width, out) used as x @ proj; a Linear weight is (out, width)
            mapper.put("visual_projection.weight", tensor.T, source)
        elif name in _CLIP_VISION_RULES:
            mapper.put(_CLIP_VISION_RULES[name], tensor, source)
        elif (match := _CLIP_BLOCK_NAME.fullmatch(name)) is not None:
            _map_clip_block(mapper, int(match.group(1)), match.group(2), tensor, source)
        else:
            mapper.unused(source, tuple(tensor.shape))
    return mapper


def _map_clip_block(
    mapper: _Mapper, index: int, rest: str, tensor: torch.Tensor, source: str
) -> None:
    prefix = f"vision_model.encoder.layers.{index}."
    if rest in _CLIP_BLOCK_RULES:
        mapper.put(prefix + _CLIP_BLOCK_RULES[rest], tensor, source)
    elif rest in _CLIP_IN_PROJ_RULES:
        if tensor.shape[0] % 3:
            mapper.problems.append(f"{source} with shape {tuple(tensor.shape)}: not 3 equal parts")
            return
        for target, chunk in zip(_CLIP_IN_PROJ_RULES[rest], tensor.chunk(3, dim=0), strict=True):
            mapper.put(prefix + target, chunk, source)
    else:
        mapper.unused(source, tuple(tensor.shape))


# --------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------


def assemble_state_dict(
    text: Mapping[str, torch.Tensor],
    head: tuple[torch.Tensor, torch.Tensor],
    vision: Mapping[str, torch.Tensor],
    logit_scale: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Put the three parts under `TurkishCLIPModel`'s names (CLIPModel-style), fp32, unshared.

    The head must join the towers: its input is the text width, its output the image
    projection width, or the two embeddings could not be compared.
    """
    weight, bias = head
    text_dim = text["embeddings.word_embeddings.weight"].shape[1]
    image_dim = vision["visual_projection.weight"].shape[0]
    if weight.shape != (image_dim, text_dim) or bias.shape != (image_dim,):
        raise ValueError(
            f"projection head weight {tuple(weight.shape)} / bias {tuple(bias.shape)} does not "
            f"join text width {text_dim} to image projection width {image_dim}: expected "
            f"{(image_dim, text_dim)} / {(image_dim,)}"
        )
    if logit_scale.numel() != 1:
        raise ValueError(f"logit_scale must be one number, found shape {tuple(logit_scale.shape)}")
    state = {f"text_model.{name}": _fp32(tensor) for name, tensor in text.items()}
    state["text_projection.weight"] = _fp32(weight)
    state["text_projection.bias"] = _fp32(bias)
    state.update({name: _fp32(tensor) for name, tensor in vision.items()})
    state["logit_scale"] = _fp32(logit_scale).reshape(())
    return state


# --------------------------------------------------------------------------------------------
# Processor: the source's tokenizer beside CLIP's image preprocessing
# --------------------------------------------------------------------------------------------


def build_processor(text_folder: Path, image_size: int) -> TurkishCLIPProcessor:
    """The source's own tokenizer and CLIP's image preprocessing at the tower's size."""
    image_processor = TurkishCLIPImageProcessor(size=image_size, crop_size=image_size)
    return TurkishCLIPProcessor(
        image_processor=image_processor, tokenizer=source_tokenizer(text_folder)
    )


def source_tokenizer(text_folder: Path) -> DistilBertTokenizerFast:
    """Cased (Turkish I/ı and İ/i differ), and fast, so that tokenizer.json is written."""
    # from_pretrained, never the constructor: in transformers 5 `DistilBertTokenizer(vocab_file=)`
    # silently maps every word to [UNK].
    return DistilBertTokenizerFast.from_pretrained(
        text_folder, do_lower_case=False, model_max_length=MAX_TOKENS
    )
