"""The three original checkpoints, read into one float32 Turkish CLIP model and its processor."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import errors as hub_errors

from conversion import checkpoints as cc
from turkish_clip import TurkishCLIPConfig, TurkishCLIPModel, TurkishCLIPProcessor


@dataclass(frozen=True)
class Sources:
    """The three sources as given on the command line, and where they sit locally."""

    text: str
    text_folder: Path
    head: str
    head_file: Path
    clip: str


@dataclass(frozen=True)
class Original:
    """The original model, converted: what the folder is written from and verified against."""

    sources: Sources
    model: TurkishCLIPModel
    processor: TurkishCLIPProcessor
    text_state: dict[str, torch.Tensor]


def read_original(text: str, head: str, clip_source: str, tmp: Path) -> Original:
    """Reads the three checkpoints (downloading a URL head into `tmp`) and builds the model."""
    with _naming("--head", head):
        head_file = _head_file(head, tmp)
        head_weights = cc.read_projection_head(head_file)
    print(f"head        {head}: Dense {head_weights[0].shape[1]} -> {head_weights[0].shape[0]}")
    with _naming("--text-model", text):
        text_folder = cc.text_folder(text)
        text_state, text_config = cc.read_text_tower(text_folder)
    print(
        f"text tower  {text}: DistilBERT, {text_config['n_layers']} layers, "
        f"dim {text_config['dim']}, {len(text_state)} tensors"
    )
    with _naming("--clip", clip_source):
        vision_state, vision_config, logit_scale = cc.read_clip_vision(clip_source)
    print(
        f"image tower {clip_source}: ViT, {vision_config['num_hidden_layers']} layers, "
        f"{vision_config['image_size']} px, patch {vision_config['patch_size']}"
    )
    state = cc.assemble_state_dict(text_state, head_weights, vision_state, logit_scale)
    config = TurkishCLIPConfig(
        text_config=text_config,
        vision_config=vision_config,
        projection_dim=int(head_weights[0].shape[0]),
        logit_scale_init_value=float(logit_scale),
    )
    model = TurkishCLIPModel(config).float().eval()
    model.load_state_dict(state, strict=True)
    processor = cc.build_processor(text_folder, vision_config["image_size"])
    sources = Sources(text, text_folder, head, head_file, clip_source)
    return Original(sources, model, processor, text_state)


@contextlib.contextmanager
def _naming(flag: str, source: str) -> Iterator[None]:
    """Make a failure while reading a source name it as typed: a network error or a file in a
    temporary folder would otherwise not say which of the three sources failed."""
    try:
        yield
    except (ValueError, OSError, RuntimeError, hub_errors.HTTPError) as error:
        message = str(error)
        if source in message:
            raise
        kind = ValueError if isinstance(error, ValueError) else OSError
        raise kind(f"{flag} {source}: {type(error).__name__}: {message}") from error


def _head_file(source: str, tmp: Path) -> Path:
    """A local file as is; a URL is downloaded once, so the verification reads the same bytes."""
    if source.startswith(("http://", "https://")):
        local = tmp / "clip_head.h5"
        cc.download_file(source, local)
        return local
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"--head {source}: no such file")
    return path
