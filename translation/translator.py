"""A transformers sequence-to-sequence checkpoint as an English-to-Turkish caption translator.

Marian (`Helsinki-NLP/opus-mt-tc-big-en-tr`, the default) needs nothing but the captions. Models
that translate between many languages take language codes: NLLB-200 (`eng_Latn` -> `tur_Latn`)
and M2M100 (`en` -> `tr`; NLLB's codes are accepted too) set the source language on the tokenizer
and force the target language's token as the first generated one, as those models require.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from translation.errors import TranslationError
from translation.readers import normalised

DEFAULT_TRANSLATOR = "Helsinki-NLP/opus-mt-tc-big-en-tr"
DEFAULT_MAX_NEW_TOKENS = 128
# Default codes of the tokenizers that take them, and M2M100's names for NLLB's codes.
LANGUAGE_DEFAULTS = {"NllbTokenizer": ("eng_Latn", "tur_Latn"), "M2M100Tokenizer": ("en", "tr")}
LANGUAGE_DEFAULTS["NllbTokenizerFast"] = LANGUAGE_DEFAULTS["NllbTokenizer"]
M2M100_CODES = {"eng_Latn": "en", "tur_Latn": "tr"}


@dataclass(frozen=True)
class TranslatorSettings:
    """Everything that decides a translation's text (not its speed): resuming checks them."""

    model: str = DEFAULT_TRANSLATOR
    revision: str | None = None
    num_beams: int | None = None  # None: the checkpoint's generation config
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    source_lang: str | None = None
    target_lang: str | None = None


class Translator:
    """Loads the checkpoint once (bf16 on a GPU that has it, float32 on a CPU) and translates
    batches; `translate_batch` gives each caption what `generate` gives it alone. Without
    `load_weights` only the configuration, tokenizer and language codes are loaded and checked,
    as a driver does before handing the work to workers that load the weights."""

    def __init__(
        self, settings: TranslatorSettings, device: str | None = None, load_weights: bool = True
    ):
        import torch
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES as TRANSLATOR_TYPES,
        )

        self.settings = settings
        try:
            config = AutoConfig.from_pretrained(settings.model, revision=settings.revision)
        except (OSError, ValueError) as error:
            raise TranslationError(f"cannot load translator {settings.model!r}: {error}") from None
        if config.model_type not in TRANSLATOR_TYPES:
            raise TranslationError(
                f"{settings.model}: a {config.model_type!r} model is not a sequence-to-sequence "
                "translator (use a Marian, NLLB-200 or M2M100 checkpoint)"
            )
        with warnings.catch_warnings():
            # MarianTokenizer advises installing sacremoses for Moses punctuation normalisation,
            # but never applies that normaliser when tokenising (transformers 4.57 and 5.x):
            # the advice changes nothing, so it is not passed on.
            warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
            self.tokenizer = AutoTokenizer.from_pretrained(
                settings.model, revision=settings.revision
            )
        self.generate_options = {"max_new_tokens": settings.max_new_tokens}
        if settings.num_beams is not None:
            self.generate_options["num_beams"] = settings.num_beams
        self.prefix = ""
        self._set_languages(settings)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = None
        if load_weights:
            on_gpu = self.device.startswith("cuda")
            dtype = torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() else torch.float32
            model = AutoModelForSeq2SeqLM.from_pretrained(
                settings.model, revision=settings.revision, dtype=dtype
            )
            self.model = model.to(self.device).eval()

    def _set_languages(self, settings: TranslatorSettings) -> None:
        tokenizer = self.tokenizer
        family = type(tokenizer).__name__
        if family in LANGUAGE_DEFAULTS:
            source, target = LANGUAGE_DEFAULTS[family]
            source, target = settings.source_lang or source, settings.target_lang or target
            if family == "M2M100Tokenizer":
                source, target = M2M100_CODES.get(source, source), M2M100_CODES.get(target, target)
            forced = self._language_id(target, "--target-lang")
            self.generate_options["forced_bos_token_id"] = forced
            self._language_id(source, "--source-lang")
            tokenizer.src_lang = source
        elif getattr(tokenizer, "supported_language_codes", None) and settings.target_lang:
            code = f">>{settings.target_lang}<<"  # a Marian model with several target languages
            if code not in tokenizer.supported_language_codes:
                raise TranslationError(
                    f"{settings.model} does not translate into {settings.target_lang!r} "
                    f"(it knows {_some(tokenizer.supported_language_codes)})"
                )
            self.prefix = code + " "
        elif settings.source_lang or settings.target_lang:
            raise TranslationError(
                f"{settings.model} ({family}) translates one language pair and takes no "
                "--source-lang/--target-lang"
            )

    def _language_id(self, code: str, option: str) -> int:
        tokenizer = self.tokenizer
        if hasattr(tokenizer, "lang_code_to_id"):  # M2M100: `tr` is the token `__tr__`
            known = list(tokenizer.lang_code_to_id)
            token_id = tokenizer.lang_code_to_id.get(code)
        else:  # NLLB: the code is a token of its own
            from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

            known = FAIRSEQ_LANGUAGE_CODES
            token_id = tokenizer.convert_tokens_to_ids(code) if code in known else None
            if token_id == tokenizer.unk_token_id:
                token_id = None
        if token_id is None:
            raise TranslationError(
                f"{option} {code!r}: {self.settings.model} has no such language code "
                f"(it knows {_some(known)})"
            )
        return token_id

    def translate_batch(self, captions: Sequence[str]) -> list[str]:
        import torch

        inputs = self.tokenizer(
            [self.prefix + caption for caption in captions],
            return_tensors="pt",
            padding=True,
            truncation=True,
        ).to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, **self.generate_options)
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return [normalised(text) for text in texts]

    def length(self, caption: str) -> int:
        """What batches are sorted by: characters, which follow token counts closely."""
        return len(caption)


def _some(codes: Sequence[str], shown: int = 8) -> str:
    codes = list(codes)
    more = f", ... ({len(codes)} in all)" if len(codes) > shown else ""
    return ", ".join(codes[:shown]) + more
