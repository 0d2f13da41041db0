"""The translator on tiny random checkpoints: batches give what `generate` gives each caption
alone; M2M100 gets the source language on the tokenizer and the target language forced as the
first token; unknown models and language codes are refused by name."""

import warnings
from pathlib import Path

import pytest
import torch
from builders import (
    english_captions,
    save_tiny_bert,
    save_tiny_m2m100,
    save_tiny_marian,
    save_tiny_nllb,
)
from transformers import AutoTokenizer, M2M100ForConditionalGeneration, M2M100Tokenizer

from translation.errors import TranslationError
from translation.translator import Translator, TranslatorSettings


@pytest.fixture(scope="module")
def m2m100_dir(tmp_path_factory) -> Path:
    return save_tiny_m2m100(tmp_path_factory.mktemp("m2m100") / "model")


def test_m2m100_translates_with_language_codes(m2m100_dir):
    captions = english_captions(6, seed=2)
    tokenizer = M2M100Tokenizer.from_pretrained(m2m100_dir, src_lang="en")
    model = M2M100ForConditionalGeneration.from_pretrained(m2m100_dir).eval()
    expected = []
    for caption in captions:
        ids = model.generate(
            **tokenizer([caption], return_tensors="pt"),
            forced_bos_token_id=tokenizer.get_lang_id("tr"),
            num_beams=2,
            max_new_tokens=6,
        )
        assert ids[0, 1] == tokenizer.get_lang_id("tr")  # the forced target language token
        expected.append(" ".join(tokenizer.decode(ids[0], skip_special_tokens=True).split()))
    # NLLB's codes name the same languages for M2M100; its own codes work too.
    for source, target in (("eng_Latn", "tur_Latn"), ("en", "tr"), (None, None)):
        settings = TranslatorSettings(
            str(m2m100_dir), num_beams=2, max_new_tokens=6, source_lang=source, target_lang=target
        )
        translator = Translator(settings)
        assert translator.tokenizer.src_lang == "en"
        assert translator.translate_batch(captions) == expected
    # Another target language gives another first token, hence other translations.
    other = Translator(TranslatorSettings(str(m2m100_dir), max_new_tokens=6, target_lang="de"))
    assert other.generate_options["forced_bos_token_id"] == tokenizer.get_lang_id("de")


def test_nllb_translates_eng_latn_into_tur_latn_by_default(tmp_path):
    folder = save_tiny_nllb(tmp_path / "nllb")
    captions = english_captions(5, seed=3)
    tokenizer = AutoTokenizer.from_pretrained(folder, src_lang="eng_Latn")
    model = M2M100ForConditionalGeneration.from_pretrained(folder).eval()
    turkish = tokenizer.convert_tokens_to_ids("tur_Latn")
    expected = []
    for caption in captions:
        inputs = tokenizer([caption], return_tensors="pt")
        assert inputs["input_ids"][0, 0] == tokenizer.convert_tokens_to_ids("eng_Latn")
        ids = model.generate(**inputs, forced_bos_token_id=turkish, max_new_tokens=8)
        assert ids[0, 1] == turkish
        expected.append(" ".join(tokenizer.decode(ids[0], skip_special_tokens=True).split()))
    translator = Translator(TranslatorSettings(str(folder), max_new_tokens=8))
    assert translator.generate_options["forced_bos_token_id"] == turkish
    assert translator.translate_batch(captions) == expected
    explicit = TranslatorSettings(
        str(folder), max_new_tokens=8, source_lang="eng_Latn", target_lang="tur_Latn"
    )
    assert Translator(explicit).translate_batch(captions) == expected
    with pytest.raises(TranslationError, match=r"--source-lang 'en': .* no such language"):
        Translator(TranslatorSettings(str(folder), source_lang="en"))


def test_an_unknown_language_code_is_refused_by_name(m2m100_dir):
    settings = TranslatorSettings(str(m2m100_dir), target_lang="tlh")
    with pytest.raises(TranslationError, match=r"--target-lang 'tlh': .* no such language"):
        Translator(settings)


def test_marian_batches_match_captions_alone_and_take_no_language_codes(tmp_path):
    folder = save_tiny_marian(tmp_path / "marian")
    translator = Translator(TranslatorSettings(str(folder), num_beams=3, max_new_tokens=5))
    captions = english_captions(7, seed=7)
    alone = [translator.translate_batch([caption])[0] for caption in captions]
    assert translator.translate_batch(captions) == alone
    assert len(set(alone)) > 1
    with pytest.raises(TranslationError, match="takes no --source-lang/--target-lang"):
        Translator(TranslatorSettings(str(folder), target_lang="tur_Latn"))


def test_a_model_that_is_not_a_translator_is_refused_by_its_type(tmp_path):
    folder = save_tiny_bert(tmp_path / "bert")
    with pytest.raises(TranslationError, match=r"'bert' model is not a sequence-to-sequence"):
        Translator(TranslatorSettings(str(folder)))
    assert torch.get_default_dtype() == torch.float32


def test_loading_marian_gives_no_advice_that_changes_nothing(tmp_path):
    """MarianTokenizer advises installing sacremoses, whose normaliser it never applies."""
    folder = save_tiny_marian(tmp_path / "marian")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Translator(TranslatorSettings(str(folder)))
    assert not [warning for warning in caught if "sacremoses" in str(warning.message)]
