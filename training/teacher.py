"""The teacher: an English CLIP or SigLIP text tower whose embeddings the Turkish student learns
to match.

`--teacher` takes what `hub_upload.py convert --clip` takes (an OpenAI `clip` archive path or
model name, read by OpenAI's own `clip` package), or a transformers `CLIPModel` or `SiglipModel`
folder or Hub id. Each embeds with its own tokenizer, the way it was trained, so the targets are
exactly the teacher's embeddings.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from conversion.towers import OPENAI, SIGLIP, check_teacher_model

# SigLIP's text tower was trained on texts padded to 64 tokens (transformers' SigLIP pipeline
# pads so too).
SIGLIP_TEXT_LENGTH = 64


class OpenAIClipTeacher:
    """`clip`'s `encode_text` on `clip.tokenize`'s tokens, context length from the archive."""

    def __init__(self, name_or_path: str, device: torch.device):
        clip = _import_clip()
        model, _ = clip.load(name_or_path, device="cpu", jit=False)
        self.model = model.float().eval().to(device)
        self.tokenize = clip.tokenize
        self.device = device

    @torch.no_grad()
    def embed(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenize(texts, context_length=self.model.context_length, truncate=True)
        return self.model.encode_text(tokens.to(self.device)).float().cpu()


class TransformersClipTeacher:
    """A transformers `CLIPModel`'s projected text embedding, with the folder's tokenizer.

    The projection is applied to the text tower's pooled output directly, which is what
    `get_text_features` computes in every transformers version, whatever it returns.
    """

    def __init__(self, name_or_path: str, device: torch.device, revision: str | None = None):
        from transformers import AutoTokenizer, CLIPModel

        self.model = CLIPModel.from_pretrained(name_or_path, revision=revision).float().eval()
        self.model.to(device)
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision)
        self.max_length = self.model.config.text_config.max_position_embeddings
        self.device = device

    @torch.no_grad()
    def embed(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        pooled = self.model.text_model(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).pooler_output
        return self.model.text_projection(pooled).float().cpu()


class TransformersSiglipTeacher:
    """A transformers `SiglipModel`'s text embedding (`get_text_features`: the text tower's pooled
    head output), on texts padded to 64 tokens as SigLIP was trained: its text tower reads the
    last position, so the embeddings of shorter padding differ."""

    def __init__(self, name_or_path: str, device: torch.device, revision: str | None = None):
        from transformers import AutoTokenizer, SiglipModel

        self.model = SiglipModel.from_pretrained(name_or_path, revision=revision).float().eval()
        self.model.to(device)
        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, revision=revision)
        self.device = device

    @torch.no_grad()
    def embed(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            texts,
            padding="max_length",
            max_length=SIGLIP_TEXT_LENGTH,
            truncation=True,
            return_tensors="pt",
        ).to(self.device)
        inputs = {key: tokens[key] for key in ("input_ids", "attention_mask") if key in tokens}
        features = self.model.get_text_features(**inputs)
        # transformers 5 returns the tower's output, 4 the tensor
        return getattr(features, "pooler_output", features).float().cpu()


Teacher = OpenAIClipTeacher | TransformersClipTeacher | TransformersSiglipTeacher


def load_teacher(name_or_path: str, device: torch.device, revision: str | None = None) -> Teacher:
    """By the teacher's kind (`conversion.towers.check_teacher_model`): a file or a `clip` model
    name is OpenAI's, a folder or Hub id a transformers CLIP or SigLIP."""
    kind = check_teacher_model(name_or_path, revision).kind
    if kind == OPENAI:
        return OpenAIClipTeacher(name_or_path, device)
    if kind == SIGLIP:
        return TransformersSiglipTeacher(name_or_path, device, revision)
    return TransformersClipTeacher(name_or_path, device, revision)


def check_teacher(name_or_path: str) -> None:
    """Refuses a path that does not exist, rather than asking the Hub for a repository named so.

    Hub ids and clip names hold at most one slash (`openai/clip-vit-base-patch32`, `ViT-B/32`).
    """
    looks_local = name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1
    if looks_local and not Path(name_or_path).expanduser().exists():
        raise FileNotFoundError(f"--teacher {name_or_path}: no such file or folder")


def teacher_fingerprint(name_or_path: str, revision: str | None = None) -> str:
    """A digest of the teacher's files where they are local, else of its name and revision."""
    digest = hashlib.sha256()
    path = Path(name_or_path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if path.exists():
        for file in files:
            if path.is_dir():
                digest.update(str(file.relative_to(path)).encode())
            with file.open("rb") as handle:
                for block in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(block)
    else:
        digest.update(json.dumps([name_or_path, revision]).encode())
    return digest.hexdigest()


def _import_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # clip imports the deprecated pkg_resources
        import clip
    return clip
