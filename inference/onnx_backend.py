"""The exported ONNX towers in onnxruntime, behind the torch model's `encode_*` methods.

Texts go through the same processor, tokenising and length-sorted batching as
`TurkishCLIPModel.encode_text`, images through the same image processor, and label embeddings
through the same prompt ensembling, so the results match the torch model's (within 1e-4 for
float32, which `hub_upload.py export-onnx` checks before it keeps a file). onnxruntime is imported
only here, and only when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from conversion.onnx_export import (
    LOGIT_BIAS_KEY,
    LOGIT_SCALE_KEY,
    ONNX_DIR,
    TEXT_FILE,
    TEXT_INT8_FILE,
    VISION_FILE,
    VISION_INT8_FILE,
)
from turkish_clip import TurkishCLIPConfig, TurkishCLIPProcessor
from turkish_clip.configuration_turkish_clip import check_templates
from turkish_clip.modeling_turkish_clip import TurkishCLIPEncoding, zero_shot_scores
from turkish_clip.processing import (
    length_sorted_batches,
    pad_token_ids,
    prepare_texts,
)

# What a Hub repository must provide for this backend: no torch weights are downloaded.
HUB_PATTERNS = ("*.json", "*.txt")
TEXT_INPUTS = ("input_ids", "attention_mask")
VISION_INPUTS = ("pixel_values",)


class OnnxTurkishCLIP(TurkishCLIPEncoding):
    """Turkish CLIP on onnxruntime's CPU provider; each tower's session starts on first use."""

    def __init__(
        self,
        folder: Path,
        config: TurkishCLIPConfig,
        processor: TurkishCLIPProcessor,
        int8: bool = False,
        name_or_path: str | None = None,
    ):
        self.folder = Path(folder)
        self.config = config
        self.processor = processor
        self.int8 = int8
        self.name_or_path = name_or_path or str(folder)
        self.device = torch.device("cpu")
        names = (TEXT_INT8_FILE, VISION_INT8_FILE) if int8 else (TEXT_FILE, VISION_FILE)
        self.text_path, self.vision_path = (self.folder / ONNX_DIR / name for name in names)
        for path in (self.text_path, self.vision_path):
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} not found: export it with `python hub_upload.py export-onnx "
                    f"{self.name_or_path}{' --int8' if int8 else ''}`, or use the torch backend"
                )
        self._sessions: dict[Path, object] = {}

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, revision: str | None = None, int8: bool = False
    ) -> OnnxTurkishCLIP:
        """From a model folder, or a Hub id (only the ONNX, config and processor files are
        fetched, with `huggingface_hub.snapshot_download`)."""
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            folder = _download(str(name_or_path), revision, int8)
        config = TurkishCLIPConfig.from_pretrained(folder)
        processor = TurkishCLIPProcessor.from_pretrained(folder)
        return cls(folder, config, processor, int8=int8, name_or_path=str(name_or_path))

    @property
    def logit_scale(self) -> torch.Tensor:
        """The learnt temperature (its logarithm, as the torch model's parameter holds it)."""
        return torch.tensor(float(self._score_metadata(LOGIT_SCALE_KEY)))

    @property
    def logit_bias(self) -> torch.Tensor | None:
        """SigLIP's learnt bias, as the torch model's `logit_bias`; None for CLIP models."""
        if not self.config.is_siglip:
            return None
        return torch.tensor(float(self._score_metadata(LOGIT_BIAS_KEY)))

    def _score_metadata(self, key: str) -> str:
        metadata = self._session(self.vision_path).get_modelmeta().custom_metadata_map
        if key not in metadata:
            raise ValueError(f"{self.vision_path} has no {key!r}: export it again")
        return metadata[key]

    def embed_token_ids(
        self, token_ids: list[list[int]], pad_token_id: int, batch_size: int = 32
    ) -> torch.Tensor:
        """Projected text embeddings for already tokenised texts, batched by length."""
        out = np.empty((len(token_ids), self.config.projection_dim), dtype=np.float32)
        for index in length_sorted_batches(token_ids, batch_size):
            input_ids, attention_mask = pad_token_ids([token_ids[i] for i in index], pad_token_id)
            out[index] = self._run(
                self.text_path, input_ids=input_ids.numpy(), attention_mask=attention_mask.numpy()
            )
        return torch.from_numpy(out)

    def embed_pixel_values(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """As `TurkishCLIPModel.embed_pixel_values`: projected embeddings, a plain tensor."""
        return torch.from_numpy(self.embed_pixels(pixel_values.cpu().numpy()))

    def embed_pixels(self, pixel_values: np.ndarray) -> np.ndarray:
        """Projected image embeddings of the image processor's float32 `pixel_values`."""
        return self._run(self.vision_path, pixel_values=pixel_values)

    def _run(self, path: Path, **inputs: np.ndarray) -> np.ndarray:
        return self._session(path).run(None, inputs)[0]

    def _session(self, path: Path):
        if path not in self._sessions:
            expected = TEXT_INPUTS if path == self.text_path else VISION_INPUTS
            self._sessions[path] = open_session(path, expected)
        return self._sessions[path]


def open_session(path: Path, expected_inputs: Sequence[str], threads: int = 0):
    """An onnxruntime CPU session of `path`, refusing a file that is not the expected tower.

    Idle onnxruntime threads spin by default, taking CPU from everything else in the process
    (image decoding runs on threads) and on the machine; they are told to sleep instead.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own exception types for bad files
        message = " ".join(str(error).split())
        raise ValueError(f"{path} is not a readable ONNX model ({message})") from None
    names = tuple(node.name for node in session.get_inputs())
    if names != tuple(expected_inputs):
        raise ValueError(f"{path} takes inputs {names}, not {tuple(expected_inputs)}")
    return session


def _download(repo_id: str, revision: str | None, int8: bool) -> Path:
    from huggingface_hub import snapshot_download

    names = (TEXT_INT8_FILE, VISION_INT8_FILE) if int8 else (TEXT_FILE, VISION_FILE)
    patterns = [*HUB_PATTERNS, *(f"{ONNX_DIR}/{name}" for name in names)]
    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))


class OnnxZeroShotClassifier:
    """What `cli.py classify` needs of the zero-shot pipeline, on the ONNX backend: scores come
    from the pipeline's own `zero_shot_scores`, and the label embeddings
    of the last label set are kept, as a folder of photos is classified against the same labels."""

    def __init__(self, model: OnnxTurkishCLIP):
        self.model = model
        self.image_processor = model.processor.image_processor
        self._labels: tuple | None = None
        self._label_embeds: torch.Tensor | None = None

    def __call__(
        self,
        image,
        candidate_labels: Sequence[str],
        hypothesis_template: str | Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> list[dict]:
        labels = prepare_texts(candidate_labels, what="label")
        templates = tuple(
            check_templates(hypothesis_template or self.model.config.default_template)
        )
        if self._labels != (tuple(labels), templates):
            self._label_embeds = self.model.encode_labels(labels, templates)
            self._labels = (tuple(labels), templates)
        image_embeds = self.model.encode_image([image])
        bias = getattr(self.model, "logit_bias", None)
        scores = zero_shot_scores(image_embeds, self._label_embeds, self.model.logit_scale, bias)
        scores = scores[0].tolist()
        ranked = sorted(zip(scores, labels), key=lambda pair: -pair[0])
        return [{"score": score, "label": label} for score, label in ranked[:top_k]]
