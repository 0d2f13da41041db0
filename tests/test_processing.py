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


PAIR = ["kedi", "sahilde bir insan ve bir heykel " * 3]


@pytest.fixture(scope="module")
def clip_processor(processor):
    """transformers' CLIPProcessor around the same tokenizer: the reference for every option."""
    from transformers import CLIPProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size=32)
    return CLIPProcessor(image_processor=image_processor, tokenizer=processor.tokenizer)


@pytest.mark.parametrize(
    "options",
    [
        {"padding": "max_length", "max_length": 40},
        {"padding": "max_length", "max_length": 16, "truncation": True},
        {"padding": True, "truncation": True, "max_length": 5},
        {"padding": "longest", "truncation": "longest_first", "max_length": 9},
        {"padding": "longest"},
        {"padding": True, "return_attention_mask": False},
    ],
    ids=str,
)
def test_text_options_give_what_clip_processor_gives(processor, clip_processor, options):
    ours = processor(text=PAIR, **options)
    theirs = clip_processor(text=PAIR, return_tensors="pt", **options)
    assert set(ours) == set(theirs)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key


def test_no_padding_works_for_equal_lengths_and_is_named_otherwise(processor, clip_processor):
    same = processor(text=["kedi", "kedi"], padding=False)
    assert torch.equal(
        same["input_ids"],
        clip_processor(text=["kedi"] * 2, padding=False, return_tensors="pt")["input_ids"],
    )
    with pytest.raises(ValueError, match="padding=False"):
        processor(text=PAIR, padding=False)


def test_truncation_false_keeps_long_texts_whole(processor):
    long_text = " ".join(["kedi"] * 700)
    ids = processor(text=[long_text], truncation=False)["input_ids"]
    assert ids.shape[1] == len(processor.tokenizer(long_text)["input_ids"]) > MAX_TOKENS


def test_image_options_pass_through_the_processor(processor):
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    pixels = processor(images=image, do_center_crop=False)["pixel_values"]
    assert pixels.shape == (1, 3, 32, 42)
    assert torch.equal(
        pixels, processor.image_processor(image, do_center_crop=False)["pixel_values"]
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"text": PAIR, "padding": "most"}, ValueError, "padding must be"),
        ({"text": PAIR, "max_length": 600, "truncation": True}, ValueError, "max_length 600"),
        ({"text": PAIR, "max_length": 0}, ValueError, "max_length"),
        ({"text": PAIR, "truncation": "only_second"}, ValueError, "truncation must be"),
        ({"text": PAIR, "padding": "max_length", "max_length": 8}, ValueError, "truncation=True"),
        ({"text": PAIR, "return_attention_mask": "no"}, ValueError, "return_attention_mask"),
        ({"text": PAIR, "pad_to_multiple_of": 8}, TypeError, "pad_to_multiple_of"),
        ({"text": PAIR, "do_center_crop": False}, ValueError, "do_center_crop apply to images="),
        ({"images": b"", "max_length": 8}, ValueError, "max_length apply to text="),
    ],
)
def test_options_it_cannot_honour_are_refused_by_name(processor, kwargs, error, message):
    with pytest.raises(error, match=message):
        processor(**kwargs)
