"""Processor of Turkish CLIP: the cased Turkish tokenizer and the CLIP-exact image processor."""

import unicodedata
import warnings
from collections.abc import Iterator, Sequence

import torch
import transformers
from transformers import ProcessorMixin
from transformers.image_processing_utils import BatchFeature
from transformers.models.auto.tokenization_auto import (
    get_tokenizer_config,
    tokenizer_class_from_name,
)

# transformers 4 copies only the direct relative imports of a module from a local folder.
from .image_loading import SINGLE_IMAGE_TYPES, load_image  # noqa: F401
from .image_processing_turkish_clip import OPTIONS as IMAGE_OPTIONS
from .image_processing_turkish_clip import TurkishCLIPImageProcessor

MAX_TOKENS = 512
TEXT_OPTIONS = ("padding", "max_length", "truncation", "return_attention_mask")
_LONGEST, _MAX_LENGTH, _NO_PADDING = "longest", "max_length", "do_not_pad"
HUB_KWARGS = ("revision", "token", "cache_dir", "local_files_only", "subfolder", "force_download")


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
        hub_kwargs = {key: kwargs[key] for key in HUB_KWARGS if kwargs.get(key) is not None}
        image_processor = TurkishCLIPImageProcessor.from_pretrained(
            pretrained_model_name_or_path, **hub_kwargs
        )
        tokenizer_class = _tokenizer_class(pretrained_model_name_or_path, hub_kwargs)
        tokenizer = tokenizer_class.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return cls(image_processor=image_processor, tokenizer=tokenizer)

    def __call__(
        self, text=None, images=None, return_tensors: str | None = "pt", **kwargs
    ) -> BatchFeature:
        """`input_ids`/`attention_mask` for `text`, `pixel_values` for `images`.

        Takes `CLIPProcessor`'s options with the tokenizer's meaning: `padding` (True/"longest",
        "max_length", False), `max_length` (at most 512), `truncation` (True cuts to `max_length`;
        by default texts are cut to 512 tokens with a warning), `return_attention_mask`;
        and every option of `TurkishCLIPImageProcessor` (`do_center_crop`, `size`, ...).
        """
        if text is None and images is None:
            raise ValueError("pass text=, images= or both")
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        text_options = {key: kwargs.pop(key) for key in TEXT_OPTIONS if key in kwargs}
        image_options = {key: kwargs.pop(key) for key in IMAGE_OPTIONS if key in kwargs}
        if kwargs:
            raise TypeError(f"processor got unexpected option(s): {', '.join(kwargs)}")
        for options, given, what in (
            (text_options, text, "text="),
            (image_options, images, "images="),
        ):
            if options and given is None:
                raise ValueError(f"{', '.join(options)} apply to {what}, which was not given")
        data = {}
        if text is not None:
            data.update(self.encode_texts(text, **text_options))
        if images is not None:
            data.update(self.image_processor(images, return_tensors="pt", **image_options))
        batch = BatchFeature(data=data)
        if return_tensors is None or return_tensors == "np":
            batch = BatchFeature(data={k: v.numpy() for k, v in batch.items()})
        return batch

    def encode_texts(
        self,
        texts: str | Sequence[str],
        padding: bool | str = True,
        max_length: int | None = None,
        truncation: bool | str | None = None,
        return_attention_mask: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Token ids (and attention mask) as tensors, with the tokenizer's padding/truncation."""
        if not isinstance(return_attention_mask, bool):
            raise ValueError(
                f"return_attention_mask must be True or False, got {return_attention_mask!r}"
            )
        limit = _max_length(max_length)
        pad_mode, cut = _padding(padding), _truncation(truncation)
        texts = prepare_texts(texts)
        if cut is None:  # the default without max_length: the model's limit, with a warning
            token_ids = tokenize_texts(self.tokenizer, texts)
        else:
            token_ids = tokenize_texts(self.tokenizer, texts, limit=None)
            if cut:
                sep = self.tokenizer.sep_token_id
                token_ids = [
                    ids[: limit - 1] + [sep] if len(ids) > limit else ids for ids in token_ids
                ]
        lengths = sorted({len(ids) for ids in token_ids})
        if pad_mode == _NO_PADDING and len(lengths) > 1:
            raise ValueError(
                f"padding=False left texts of {lengths[0]} to {lengths[-1]} tokens, which cannot "
                "form one tensor: pass padding=True or 'max_length'"
            )
        if pad_mode == _MAX_LENGTH and lengths[-1] > limit:
            raise ValueError(
                f"a text has {lengths[-1]} tokens, more than max_length={limit}, so padding to "
                "max_length cannot give one length: pass truncation=True"
            )
        length = limit if pad_mode == _MAX_LENGTH else lengths[-1]
        input_ids, attention_mask = pad_token_ids(token_ids, self.tokenizer.pad_token_id, length)
        if return_attention_mask:
            return {"input_ids": input_ids, "attention_mask": attention_mask}
        return {"input_ids": input_ids}

    def tokenize(self, texts: str | Sequence[str]) -> list[list[int]]:
        """Token ids per text, with [CLS]/[SEP], truncated to 512 tokens with a warning."""
        return tokenize_texts(self.tokenizer, prepare_texts(texts))

    def pad(self, token_ids: list[list[int]]) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = pad_token_ids(token_ids, self.tokenizer.pad_token_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values"]


def _tokenizer_class(pretrained_model_name_or_path, hub_kwargs: dict) -> type:
    """The tokenizer class that `tokenizer_config.json` names (DistilBERT's, or another text
    encoder's), in its fast form. AutoTokenizer would also read config.json, find this model's
    own type there and ask for trust_remote_code a second time."""
    config = get_tokenizer_config(pretrained_model_name_or_path, **hub_kwargs)
    name = config.get("tokenizer_class") or "DistilBertTokenizer"
    fast_name = name if name.endswith("Fast") else f"{name}Fast"
    found = tokenizer_class_from_name(fast_name) or tokenizer_class_from_name(name)
    if found is None:
        raise ValueError(
            f"{pretrained_model_name_or_path}: tokenizer_config.json names {name!r}, which this "
            f"transformers {transformers.__version__} does not know"
        )
    return found


def tokenize_texts(tokenizer, texts: list[str], limit: int | None = MAX_TOKENS) -> list[list[int]]:
    """Token ids of prepared texts (see `prepare_texts`), cut to `limit` tokens with a warning.

    Tokenising without truncation first is what lets the warning say which texts were cut.
    `limit=None` cuts nothing.
    """
    ids = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    if limit is None:
        return ids
    return _truncate(ids, min(tokenizer.model_max_length, limit), tokenizer.sep_token_id, texts)


def pad_token_ids(
    token_ids: list[list[int]], pad_token_id: int, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`input_ids` padded to `length` (default: the longest sequence), and the attention mask that
    marks real tokens."""
    longest = length or max(len(ids) for ids in token_ids)
    input_ids = torch.full((len(token_ids), longest), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(token_ids), longest), dtype=torch.long)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def _max_length(max_length: int | None) -> int:
    if max_length is None:
        return MAX_TOKENS
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
        raise ValueError(f"max_length must be an integer of at least 2, got {max_length!r}")
    if max_length > MAX_TOKENS:
        raise ValueError(f"max_length {max_length} is over the text tower's {MAX_TOKENS} tokens")
    return max_length


def _padding(padding: bool | str) -> str:
    padding = getattr(padding, "value", padding)  # transformers' PaddingStrategy
    if padding is True or padding == _LONGEST:
        return _LONGEST
    if padding is False or padding == _NO_PADDING:
        return _NO_PADDING
    if padding == _MAX_LENGTH:
        return _MAX_LENGTH
    raise ValueError(
        f"padding must be True, 'longest', 'max_length', False or 'do_not_pad', got {padding!r}"
    )


def _truncation(truncation: bool | str | None) -> bool | None:
    """True: cut to max_length; False: cut nothing; None: the default (512, with a warning).

    As with the tokenizer, `max_length` without `truncation` cuts nothing.
    """
    truncation = getattr(truncation, "value", truncation)
    if truncation is None:
        return None
    if truncation is True or truncation in ("longest_first", "only_first"):
        return True
    if truncation is False or truncation == "do_not_truncate":
        return False
    raise ValueError(
        f"truncation must be True, 'longest_first', 'only_first', False or 'do_not_truncate' "
        f"(one text per sequence), got {truncation!r}"
    )


def length_sorted_batches(token_ids: list[list[int]], batch_size: int) -> Iterator[list[int]]:
    """Indices of `token_ids` in batches of similar length, so that short texts are not padded to
    the longest one in the list. Every backend batches texts with this one function."""
    check_batch_size(batch_size)
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def pixel_batches(
    images: object, batch_size: int, image_processor: TurkishCLIPImageProcessor
) -> Iterator[torch.Tensor]:
    """`pixel_values` of one image or a list of them, `batch_size` at a time: images are opened
    batch by batch, so a long list of paths never sits in memory at once. Every backend's
    `encode_image` batches with this one function."""
    if isinstance(images, SINGLE_IMAGE_TYPES):
        images = [images]
    images = list(images)
    if not images:
        raise ValueError("encode_image got an empty list of images")
    check_batch_size(batch_size)
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        yield image_processor(batch, return_tensors="pt", first_index=start)["pixel_values"]


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
