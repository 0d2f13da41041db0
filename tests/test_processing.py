"""The processor's text side: Turkish casing, Unicode forms, truncation and bad labels."""

import unicodedata

import pytest
import torch
from builders import save_tiny_model_folder, tiny_model, tiny_processor
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoProcessor

from turkish_clip.processing import MAX_TOKENS, prepare_texts


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def embed(model, processor, texts):
    return model.encode_text(texts, processor=processor)


def test_turkish_dotted_and_dotless_i_stay_distinct(processor):
    ids = [processor.tokenize(letter)[0] for letter in ["İ", "I", "ı", "i"]]
    assert len({tuple(x) for x in ids}) == 4
    assert processor.tokenizer.do_lower_case is False
    assert processor.tokenizer.model_max_length == MAX_TOKENS


def test_nfd_label_embeds_like_nfc(model, processor):
    nfc = "Güneşli bir günde çalışan İzmirli"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert processor.tokenize(nfd) == processor.tokenize(nfc)
    torch.testing.assert_close(embed(model, processor, [nfd]), embed(model, processor, [nfc]))


def test_zero_width_and_control_characters_are_dropped(processor):
    assert processor.tokenize("bir\u200b kedi\u0007") == processor.tokenize("bir kedi")


def test_long_text_is_truncated_with_a_warning_not_an_index_error(model, processor):
    long_text = " ".join(["kedi"] * 700)
    with pytest.warns(UserWarning, match="longer than 512 tokens were truncated"):
        ids = processor.tokenize([long_text, "kedi"])
    assert len(ids[0]) == MAX_TOKENS and ids[0][-1] == processor.tokenizer.sep_token_id
    assert ids[0] == processor.tokenizer(long_text, truncation=True, max_length=512)["input_ids"]
    with pytest.warns(UserWarning, match="truncated"):
        assert embed(model, processor, [long_text]).shape == (1, 16)


def test_processor_pads_and_masks(processor):
    batch = processor(text=["kedi", "sahilde bir insan ve bir heykel"])
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()
    assert (batch["input_ids"][0][batch["attention_mask"][0] == 0] == 0).all()


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        ([], ValueError, "empty list"),
        (["kedi", ""], ValueError, "text 1 is empty"),
        (["kedi", "  \t"], ValueError, "text 1 is empty or only whitespace"),
        (["kedi", 3], TypeError, "text 1 is a int"),
        (["kedi", None], TypeError, "text 1 is a NoneType"),
        (42, TypeError, "int"),
    ],
)
def test_bad_texts_get_errors_naming_them(processor, texts, error, message):
    with pytest.raises(error, match=message):
        processor.tokenize(texts)


def test_processor_needs_an_input(processor):
    with pytest.raises(ValueError, match="text=, images="):
        processor()
    with pytest.raises(ValueError, match="return_tensors"):
        processor(text="kedi", return_tensors="tf")
    assert processor(text="kedi", return_tensors="np")["input_ids"].dtype.kind == "i"


def test_saved_processor_reloads_with_the_same_settings(tmp_path):
    folder = save_tiny_model_folder(tmp_path / "model")
    loaded = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    assert loaded.tokenizer.do_lower_case is False
    assert loaded.tokenizer.model_max_length == MAX_TOKENS
    assert loaded.image_processor.crop_size == {"height": 32, "width": 32}
    assert loaded.tokenize("İzmir'de ılık bir gün") == tiny_processor().tokenize(
        "İzmir'de ılık bir gün"
    )


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda t: t.strip()))
def test_random_unicode_labels_never_crash_and_nfd_equals_nfc(text):
    processor = tiny_processor()
    nfc = processor.tokenize(unicodedata.normalize("NFC", text))
    nfd = processor.tokenize(unicodedata.normalize("NFD", text))
    assert nfc == nfd
    assert 2 <= len(nfc[0]) <= MAX_TOKENS


def test_prepare_texts_keeps_case_and_normalises():
    assert prepare_texts("I\u0307") == ["İ"]
    assert prepare_texts(["Işık", "ışık"]) == ["Işık", "ışık"]
