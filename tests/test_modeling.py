"""TurkishCLIPModel on tiny random configs: outputs, reloading, batching, attention, dtypes."""

import json
import random

import numpy as np
import pytest
import torch
from builders import save_tiny_model_folder, tiny_model, tiny_processor
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoProcessor

from turkish_clip import TurkishCLIPModel

TEXTS = [
    "kedi",
    "sahilde bir insan ve bir heykel",
    "bilgisayarda çalışan bir insan",
    "İstanbul'da bir kedi",
    "ılık süt içen çocuklar",
    "Öğretmen ve öğrenciler bahçede ağaçların altında oturuyor.",
    "IŞIK",
    "bir köpek",
]


def images(count: int = 3) -> list[Image.Image]:
    rng = np.random.default_rng(3)
    sizes = [(50, 40), (32, 32), (90, 33), (41, 77)]
    return [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes[:count]
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model_folder(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def model(model_dir):
    return AutoModel.from_pretrained(model_dir, trust_remote_code=True).eval()


@pytest.fixture(scope="module")
def processor(model_dir):
    return AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)


def test_reloaded_model_and_processor_give_identical_outputs(model, processor):
    original, original_processor = tiny_model(), tiny_processor()
    inputs = processor(text=TEXTS, images=images())
    reference = original_processor(text=TEXTS, images=images())
    for key in reference:
        assert torch.equal(inputs[key], reference[key])
    with torch.no_grad():
        ours, theirs = model(**inputs), original(**reference)
    assert torch.equal(ours.logits_per_image, theirs.logits_per_image)
    assert torch.equal(ours.text_embeds, theirs.text_embeds)


def test_forward_is_scaled_cosine_of_the_features(model, processor):
    inputs = processor(text=TEXTS[:4], images=images())
    with torch.no_grad():
        out = model(**inputs)
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        image = model.get_image_features(inputs["pixel_values"])
    text, image = text / text.norm(dim=-1, keepdim=True), image / image.norm(dim=-1, keepdim=True)
    expected = image @ text.t() * model.logit_scale.exp()
    assert out.logits_per_image.shape == (3, 4)
    torch.testing.assert_close(out.logits_per_image, expected)
    torch.testing.assert_close(out.logits_per_text, expected.t())
    torch.testing.assert_close(out.image_embeds.norm(dim=-1), torch.ones(3))
    assert torch.isclose(model.logit_scale.exp(), torch.tensor(100.0))


def test_padding_does_not_change_a_text_embedding(model, processor):
    alone = processor(text=["kedi"])
    padded = processor(text=["kedi", TEXTS[5]])
    with torch.no_grad():
        short = model.get_text_features(**alone)
        batch = model.get_text_features(**padded)
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]
    torch.testing.assert_close(batch[0], short[0], atol=1e-6, rtol=1e-5)


def test_encode_text_on_a_shuffled_mixed_list_equals_one_by_one(model):
    texts = TEXTS * 3
    random.Random(0).shuffle(texts)
    batched = model.encode_text(texts, batch_size=4)
    single = torch.cat([model.encode_text(text) for text in texts])
    assert batched.shape == (len(texts), 16)
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(batched.norm(dim=-1), torch.ones(len(texts)))


def test_encode_text_options(model):
    raw = model.encode_text(TEXTS, normalize=False)
    as_numpy = model.encode_text(TEXTS, return_numpy=True)
    assert isinstance(as_numpy, np.ndarray) and as_numpy.dtype == np.float32
    np.testing.assert_allclose(as_numpy, (raw / raw.norm(dim=-1, keepdim=True)).numpy(), atol=1e-6)


def test_encode_image_batches_equal_single_images(model, model_dir, tmp_path):
    pictures = images(4)
    pictures[2].save(tmp_path / "iki.png")
    mixed = [pictures[0], pictures[1], tmp_path / "iki.png", str(tmp_path / "iki.png")]
    batched = model.encode_image(mixed, batch_size=3)
    single = torch.cat([model.encode_image(picture) for picture in pictures[:3]])
    torch.testing.assert_close(batched[:3], single, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(batched[3], batched[2])


def test_encode_without_a_source_folder_asks_for_a_processor():
    with pytest.raises(ValueError, match="processor="):
        tiny_model().encode_text(["kedi"])
    embeds = tiny_model().encode_text(["kedi"], processor=tiny_processor())
    assert embeds.shape == (1, 16)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_bad_batch_size_is_refused(model, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        model.encode_text(TEXTS, batch_size=batch_size)


def test_forward_needs_both_sides(model, processor):
    with pytest.raises(ValueError, match="get_text_features"):
        model(**processor(text=TEXTS))


def test_sdpa_and_eager_attention_agree(model_dir, processor):
    inputs = processor(text=TEXTS, images=images())
    outputs = {}
    for implementation in ("sdpa", "eager"):
        loaded = AutoModel.from_pretrained(
            model_dir, trust_remote_code=True, attn_implementation=implementation
        )
        assert loaded.text_model.config._attn_implementation == implementation
        assert loaded.config.vision_config._attn_implementation == implementation
        with torch.no_grad():
            outputs[implementation] = loaded(**inputs).logits_per_image
    torch.testing.assert_close(outputs["sdpa"], outputs["eager"], atol=1e-5, rtol=1e-5)


def test_bfloat16_loads_and_runs(model_dir, model, processor):
    half = AutoModel.from_pretrained(model_dir, trust_remote_code=True, dtype=torch.bfloat16)
    assert half.text_projection.weight.dtype == torch.bfloat16
    assert half.logit_scale.dtype == torch.bfloat16
    inputs = processor(text=TEXTS, images=images())
    with torch.no_grad():
        low = half(**inputs).text_embeds.float()
        full = model(**inputs).text_embeds
    cosine = torch.nn.functional.cosine_similarity(low, full, dim=-1)
    assert cosine.min() > 0.99
    assert half.encode_text(TEXTS).dtype == torch.float32


def test_missing_logit_scale_is_initialised_not_garbage(model_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    weights = load_file(copy / "model.safetensors")
    weights.pop("logit_scale")
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((copy / "config.json").read_text())
    config["logit_scale_init_value"] = 2.0
    (copy / "config.json").write_text(json.dumps(config))
    loaded = AutoModel.from_pretrained(copy, trust_remote_code=True)
    assert loaded.logit_scale.item() == pytest.approx(2.0)


def test_loading_info_can_be_requested(model_dir):
    model, info = AutoModel.from_pretrained(
        model_dir, trust_remote_code=True, output_loading_info=True
    )
    assert info["missing_keys"] == set() or info["missing_keys"] == []
    assert model.encode_text(["kedi"]).shape == (1, 16)


def test_weights_are_named_like_clip_and_the_original_parts():
    keys = set(tiny_model().state_dict())
    assert {"logit_scale", "text_projection.weight", "text_projection.bias"} <= keys
    assert "visual_projection.weight" in keys and "visual_projection.bias" not in keys
    assert "text_model.embeddings.word_embeddings.weight" in keys
    assert "vision_model.embeddings.patch_embedding.weight" in keys
    assert "vision_model.pre_layrnorm.weight" in keys


def test_model_class_is_registered_for_zero_shot(model_dir):
    auto_map = json.loads((model_dir / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForZeroShotImageClassification"].endswith("TurkishCLIPModel")
    assert isinstance(tiny_model(), TurkishCLIPModel)


def test_int8_swaps_both_towers_and_stays_close(model_dir, model):
    # The model loaded with remote code has its own copy of the classes: compare by name.
    quantised = AutoModel.from_pretrained(model_dir, trust_remote_code=True, int8=True)
    assert quantised.is_int8 and not model.is_int8
    int8_names = {name for name, m in quantised.named_modules() if type(m).__name__ == "Int8Linear"}
    assert any(name.startswith("text_model.") for name in int8_names)
    assert any(name.startswith("vision_model.") for name in int8_names)
    assert isinstance(quantised.text_projection, torch.nn.Linear)
    texts, pictures = TEXTS * 2, images(4)
    for ours, full in (
        (quantised.encode_text(texts), model.encode_text(texts)),
        (quantised.encode_image(pictures), model.encode_image(pictures)),
    ):
        assert torch.nn.functional.cosine_similarity(ours, full).min() > 0.999


def test_int8_linear_approximates_the_float_layer():
    from turkish_clip.modeling_turkish_clip import Int8Linear

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    inputs = torch.randn(5, 7, 64)
    expected = linear(inputs)
    got = Int8Linear(linear)(inputs)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    relative = (got - expected).norm() / expected.norm()
    assert relative < 0.02


def test_int8_model_refuses_to_be_saved(model_dir, tmp_path):
    quantised = AutoModel.from_pretrained(model_dir, trust_remote_code=True, int8=True)
    with pytest.raises(ValueError, match="int8"):
        quantised.save_pretrained(tmp_path / "int8")
    assert not (tmp_path / "int8").exists()


def test_too_many_tokens_get_a_clear_error(model):
    input_ids = torch.full((1, 600), 5)
    with pytest.raises(ValueError, match="600 tokens, more than the text tower's 512"):
        model.get_text_features(input_ids)
