"""Processor of Turkish CLIP: the cased Turkish tokenizer and the CLIP-exact image processor."""

import unicodedata
import warnings
from collections.abc import Iterator, Sequence

import torch
import transformers
from transformers import DistilBertTokenizerFast, ProcessorMixin
from transformers.image_processing_utils import BatchFeature

# transformers 4 copies only the direct relative imports of a module from a local folder.
from .image_loading import load_image  # noqa: F401
from .image_processing_turkish_clip import TurkishCLIPImageProcessor

MAX_TOKENS = 512
_HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only", "subfolder", "force_download")


def prepare_texts(texts: str | Sequence[str], what: str = "text") -> list[str]:
    """Validates texts and puts them in Unicode NFC form.

    NFC makes "ş" typed as "s" + combining cedilla tokenise like the precomposed "ş". Case is kept:
    Turkish İ/i and I/ı are different letters, and the tokenizer is cased.
    """
    if isinstance(texts, str):
        texts = [texts]
    elif not isinstance(texts, Sequence):
        raise TypeError(f"expected a string or a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError(f"got an empty list of {what}s")
    prepared = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what} {index} is a {type(text).__name__}, not a string: {text!r}")
        if not text.strip():
            raise ValueError(f"{what} {index} is empty or only whitespace: {text!r}")
        prepared.append(unicodedata.normalize("NFC", text))
    return prepared


class TurkishCLIPProcessor(ProcessorMixin):
    r"""
    Pairs the cased Turkish DistilBERT tokenizer with [`TurkishCLIPImageProcessor`].

    Calling it with `text=` and/or `images=` returns `input_ids`, `attention_mask` and
    `pixel_values` ready for [`TurkishCLIPModel`]. Texts are NFC-normalised, never lower-cased, and
    truncated to 512 tokens with a warning.
    """

    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor=None, tokenizer=None, **kwargs):
        super().__init__(image_processor, tokenizer, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "TurkishCLIPProcessor":
        # Both parts are known, so they load directly: auto classes would read config.json and ask
        # for trust_remote_code a second time, and they resolve sub-processors differently in
        # transformers 4 and 5.
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if kwargs.get(key) is not None}
        image_processor = TurkishCLIPImageProcessor.from_pretrained(
            pretrained_model_name_or_path, **hub_kwargs
        )
        tokenizer = DistilBertTokenizerFast.from_pretrained(
            pretrained_model_name_or_path, **hub_kwargs
        )
        return cls(image_processor=image_processor, tokenizer=tokenizer)

    def __call__(
        self, text=None, images=None, return_tensors: str | None = "pt", **kwargs
    ) -> BatchFeature:
        if text is None and images is None:
            raise ValueError("pass text=, images= or both")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        data = {}
        if text is not None:
            data.update(self.pad(self.tokenize(text)))
        if images is not None:
            data.update(self.image_processor(images, return_tensors="pt"))
        batch = BatchFeature(data=data)
        if return_tensors is None or return_tensors == "np":
            batch = BatchFeature(data={k: v.numpy() for k, v in batch.items()})
        return batch

    def tokenize(self, texts: str | Sequence[str]) -> list[list[int]]:
        """Token ids per text, with [CLS]/[SEP], truncated to 512 tokens with a warning."""
        return tokenize_texts(self.tokenizer, prepare_texts(texts))

    def pad(self, token_ids: list[list[int]]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_token_ids(token_ids, self.tokenizer.pad_token_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values"]


def tokenize_texts(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of prepared texts (see `prepare_texts`), cut to 512 tokens with a warning.

    Tokenising without truncation first is what lets the warning say which texts were cut.
    """
    limit = min(tokenizer.model_max_length, MAX_TOKENS)
    ids = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    return _truncate(ids, limit, tokenizer.sep_token_id, texts)


def pad_token_ids(
    token_ids: list[list[int]], pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`input_ids` padded to the longest sequence, and the attention mask that marks real tokens."""
    longest = max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), longest), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def length_sorted_batches(token_ids: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of `token_ids` in batches of similar length, so that short texts are not padded to
    the longest one in the list. Every backend batches texts with this one function."""
    check_batch_size(batch_size)
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _truncate(
    token_ids: list[list[int]], limit: int, sep_token_id: int, texts: list[str]
) -> list[list[int]]:
    """Cuts sequences longer than `limit` the way the tokenizer's truncation does, keeping [SEP]."""
    too_long = [i for i, ids in enumerate(token_ids) if len(ids) > limit]
    if not too_long:
        return token_ids
    shown = ", ".join(f"{i} ({texts[i][:30]!r}...)" for i in too_long[:3])
    warnings.warn(
        f"{len(too_long)} text(s) longer than {limit} tokens were truncated: {shown}",
        stacklevel=3,
    )
    return [ids[: limit - 1] + [sep_token_id] if len(ids) > limit else ids for ids in token_ids]


if int(transformers.__version__.split(".")[0]) < 5:
    # transformers 4 finds the sub-processors through these names; 5 reads the __init__ signature.
    TurkishCLIPProcessor.image_processor_class = "AutoImageProcessor"
    TurkishCLIPProcessor.tokenizer_class = "AutoTokenizer"
