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

from turkish_clip import TurkishCLIPModel, TurkishCLIPProcessor

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
        text = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
        image = model.get_image_features(inputs["pixel_values"]).pooler_output
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
        short = model.get_text_features(**alone).pooler_output
        batch = model.get_text_features(**padded).pooler_output
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


def reference_clip_loss(logits_per_text: torch.Tensor) -> torch.Tensor:
    """transformers' own CLIP loss: `clip_loss` in 4.x, `image_text_contrastive_loss` in 5.x."""
    from transformers.models.clip import modeling_clip

    loss = getattr(modeling_clip, "clip_loss", None)
    return (loss or modeling_clip.image_text_contrastive_loss)(logits_per_text)


def test_return_loss_is_clips_symmetric_contrastive_loss(model, processor):
    inputs = processor(text=TEXTS[:3], images=images(3))
    out = model(**inputs, return_loss=True)
    assert out.loss.shape == () and out.loss.requires_grad
    torch.testing.assert_close(out.loss, reference_clip_loss(out.logits_per_text))
    # Swapping two images breaks the pairing, which a symmetric loss must see from both sides.
    swapped = dict(inputs, pixel_values=inputs["pixel_values"][[1, 0, 2]])
    with torch.no_grad():
        other = model(**swapped, return_loss=True).loss
    torch.testing.assert_close(other, reference_clip_loss(model(**swapped).logits_per_text))
    assert not torch.isclose(other, out.loss)
    assert model(**inputs).loss is None


def test_return_loss_needs_pairs(model, processor):
    with pytest.raises(ValueError, match="as many texts as images"):
        model(**processor(text=TEXTS[:2], images=images(3)), return_loss=True)


def test_loss_trains_both_projections(model_dir, processor):
    trainable = TurkishCLIPModel.from_pretrained(model_dir)
    trainable(**processor(text=TEXTS[:3], images=images(3)), return_loss=True).loss.backward()
    assert trainable.text_projection.weight.grad.abs().sum() > 0
    assert trainable.visual_projection.weight.grad.abs().sum() > 0
    assert trainable.logit_scale.grad is not None


def test_hidden_states_of_both_towers_are_returned(model, processor):
    inputs = processor(text=TEXTS[:2], images=images(2))
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        plain = model(**inputs)
    text, vision = out.text_model_output, out.vision_model_output
    assert len(text.hidden_states) == model.config.text_config.n_layers + 1
    assert len(vision.hidden_states) == model.config.vision_config.num_hidden_layers + 1
    torch.testing.assert_close(text.hidden_states[-1], text.last_hidden_state)
    assert vision.hidden_states[0].shape == (2, 17, 64)  # 16 patches and the class token
    assert plain.text_model_output.hidden_states is None
    torch.testing.assert_close(out.logits_per_image, plain.logits_per_image)


def test_attentions_follow_the_attention_implementation(model_dir, model, processor):
    inputs = processor(text=TEXTS[:2], images=images(2))
    eager = AutoModel.from_pretrained(
        model_dir, trust_remote_code=True, attn_implementation="eager"
    )
    with torch.no_grad():
        out = eager(**inputs, output_attentions=True)
        sdpa = model(**inputs, output_attentions=True)
        tower = model.text_model(**processor(text=TEXTS[:2]), output_attentions=True)
    seq = inputs["input_ids"].shape[1]
    assert [a.shape for a in out.text_model_output.attentions] == [(2, 4, seq, seq)] * 2
    assert [a.shape for a in out.vision_model_output.attentions] == [(2, 2, 17, 17)] * 2
    torch.testing.assert_close(out.vision_model_output.attentions[0].sum(-1), torch.ones(2, 2, 17))
    # Under SDPA the towers return what transformers' own towers return there.
    assert sdpa.text_model_output.attentions == tower.attentions


def test_unknown_keyword_is_refused_by_name(model, processor):
    inputs = processor(text=TEXTS[:2], images=images(2))
    with pytest.raises(TypeError, match="output_hiden_states"):
        model(**inputs, output_hiden_states=True)
    with pytest.raises(TypeError, match="position_ids"):
        model.get_text_features(inputs["input_ids"], position_ids=inputs["input_ids"])
    with pytest.raises(TypeError, match="pixel_mask"):
        model.get_image_features(inputs["pixel_values"], pixel_mask=1)


def test_return_dict_false_gives_a_tuple(model, processor):
    inputs = processor(text=TEXTS[:2], images=images(2))
    with torch.no_grad():
        as_tuple = model(**inputs, return_loss=True, return_dict=False)
        as_output = model(**inputs, return_loss=True)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_output.loss)
    torch.testing.assert_close(as_tuple[1], as_output.logits_per_image)
    torch.testing.assert_close(as_tuple[-1][0], as_output.vision_model_output.last_hidden_state)


def tiny_transformers_clip():
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    text = dict(vocab_size=99, hidden_size=32, intermediate_size=37, num_hidden_layers=2)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, image_size=32)
    config = CLIPConfig(
        text_config=dict(text, num_attention_heads=4),
        vision_config=dict(vision, num_attention_heads=4, patch_size=8),
        projection_dim=16,
    )
    return CLIPModel(config).eval()


def test_get_features_follow_transformers_clip_model(model, processor):
    clip_model = tiny_transformers_clip()
    inputs = processor(text=TEXTS[:2], images=images(2))
    with torch.no_grad():
        theirs = clip_model.get_text_features(input_ids=inputs["input_ids"] % 99)
        ours = model.get_text_features(inputs["input_ids"], inputs["attention_mask"])
        ours_image = model.get_image_features(inputs["pixel_values"], output_hidden_states=True)
        theirs_tuple = clip_model.get_image_features(inputs["pixel_values"], return_dict=False)
        ours_tuple = model.get_image_features(inputs["pixel_values"], return_dict=False)
        tower = model.text_model(**processor(text=TEXTS[:2]))
    assert type(ours) is type(theirs)
    assert ours.pooler_output.shape == (2, 16) == theirs.pooler_output.shape
    torch.testing.assert_close(
        ours.pooler_output, model.encode_text(TEXTS[:2], normalize=False, processor=processor)
    )
    torch.testing.assert_close(ours.last_hidden_state, tower.last_hidden_state)
    torch.testing.assert_close(
        ours_image.pooler_output, model.embed_pixel_values(inputs["pixel_values"])
    )
    assert len(ours_image.hidden_states) == 3
    assert len(ours_tuple) == len(theirs_tuple) == 2
    torch.testing.assert_close(ours_tuple[1], ours_image.pooler_output)


def test_hub_options_reach_the_lazily_loaded_processor(model_dir, monkeypatch):
    received = {}
    real = TurkishCLIPProcessor.from_pretrained.__func__

    def recording(cls, path, **kwargs):
        received.update(kwargs)
        return real(cls, path)

    monkeypatch.setattr(TurkishCLIPProcessor, "from_pretrained", classmethod(recording))
    options = dict(revision="v1", token="hf_x", cache_dir="/tmp/hf-cache", force_download=False)
    loaded = TurkishCLIPModel.from_pretrained(model_dir, local_files_only=True, **options)
    assert loaded.encode_text(["kedi"]).shape == (1, 16)
    assert received == dict(options, local_files_only=True)


def test_a_model_in_a_subfolder_finds_its_processor(tmp_path, model):
    save_tiny_model_folder(tmp_path / "repo" / "alt")
    loaded = TurkishCLIPModel.from_pretrained(tmp_path / "repo", subfolder="alt")
    torch.testing.assert_close(loaded.encode_text(TEXTS), model.encode_text(TEXTS))


def test_bytearray_and_memoryview_are_one_image(model, processor, tmp_path):
    images(1)[0].save(tmp_path / "bir.png")
    data = (tmp_path / "bir.png").read_bytes()
    expected = model.encode_image(data)
    for same in (bytearray(data), memoryview(data)):
        torch.testing.assert_close(model.encode_image(same), expected)
        pixels = processor(images=same)["pixel_values"]
        assert pixels.shape == (1, 3, 32, 32)


def test_embed_token_ids_refuses_an_empty_list(model):
    with pytest.raises(ValueError, match="empty list of token ids"):
        model.embed_token_ids([], pad_token_id=0)


def test_encoding_from_many_threads_equals_one_thread(model_dir):
    from concurrent.futures import ThreadPoolExecutor

    fresh = AutoModel.from_pretrained(model_dir, trust_remote_code=True)  # processor not loaded
    pictures = images(3)
    jobs = [(TEXTS[i % 4 : i % 4 + 3], pictures[i % 3 :]) for i in range(16)]

    def run(job):
        texts, pics = job
        return fresh.encode_text(texts, batch_size=3), fresh.encode_image(pics, batch_size=2)

    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(run, jobs))
    for job, (text, image) in zip(jobs, threaded):
        expected_text, expected_image = run(job)
        torch.testing.assert_close(text, expected_text, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(image, expected_image, atol=1e-6, rtol=1e-5)


def test_a_model_can_be_deep_copied_after_encoding(model):
    import copy

    expected = model.encode_text(TEXTS[:2])  # the processor is loaded by now
    copied = copy.deepcopy(model)
    torch.testing.assert_close(copied.encode_text(TEXTS[:2]), expected)


# SigLIP image towers: the teacher's own outputs, loss and scores.


@pytest.fixture(scope="module")
def siglip_teacher(tmp_path_factory):
    from builders import save_tiny_siglip_teacher
    from transformers import SiglipModel

    folder = save_tiny_siglip_teacher(tmp_path_factory.mktemp("siglip") / "teacher")
    return folder, SiglipModel.from_pretrained(folder).eval()


def student_of(teacher_folder):
    """A Turkish CLIP holding the teacher's image tower, scale and bias (train.py's builder)."""
    from builders import save_tiny_bert

    from training.student import build_student

    bert = save_tiny_bert(teacher_folder.parent / "bert")
    return build_student(str(teacher_folder), str(bert))[0].eval()


def test_a_siglip_tower_gives_the_teachers_image_features_scale_and_bias(siglip_teacher):
    folder, teacher = siglip_teacher
    model = student_of(folder)
    assert isinstance(model.visual_projection, torch.nn.Identity)
    assert model.logit_bias.item() == pytest.approx(teacher.logit_bias.item())
    assert model.logit_scale.item() == pytest.approx(teacher.logit_scale.item())
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.get_image_features(pixels).pooler_output
        theirs = teacher.get_image_features(pixel_values=pixels).pooler_output
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def forward_with_teachers_text(model, teacher, input_ids, pixels):
    """Both forwards with loss, the teacher's text embeddings put in place of the student's: the
    logits and loss must then be the teacher's own."""
    with torch.no_grad():
        expected = teacher(input_ids=input_ids, pixel_values=pixels, return_loss=True)
        model._embed_text = lambda ids, mask, **options: (
            expected.text_embeds,
            expected.text_model_output,
        )
        return model(input_ids=input_ids, pixel_values=pixels, return_loss=True), expected


def test_siglip_forward_gives_siglipmodels_logits_and_sigmoid_loss(siglip_teacher):
    """The same embeddings through both forwards: the teacher's text embeddings are put in place
    of the student's, so logits and loss must be SiglipModel's own."""
    folder, teacher = siglip_teacher
    model = student_of(folder)
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randn(4, 3, 32, 32, generator=generator)
    input_ids = torch.randint(0, 49406, (4, 64), generator=generator)
    ours, expected = forward_with_teachers_text(model, teacher, input_ids, pixels)
    torch.testing.assert_close(ours.logits_per_text, expected.logits_per_text, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.logits_per_image, expected.logits_per_image, atol=1e-5, rtol=0)
    assert ours.loss.item() == pytest.approx(expected.loss.item(), abs=1e-5)
    # Not CLIP's contrastive loss on the same logits: the family decides.
    from turkish_clip.modeling_turkish_clip import contrastive_loss

    assert abs(contrastive_loss(ours.logits_per_text).item() - ours.loss.item()) > 1e-2


def test_clip_forward_gives_clipmodels_contrastive_loss(tmp_path):
    from builders import save_tiny_teacher
    from transformers import CLIPModel

    folder = save_tiny_teacher(tmp_path / "teacher")
    teacher = CLIPModel.from_pretrained(folder).eval()
    model = student_of(folder)
    assert model.logit_bias is None
    generator = torch.Generator().manual_seed(2)
    pixels = torch.randn(3, 3, 32, 32, generator=generator)
    input_ids = torch.randint(0, 49406, (3, 12), generator=generator)
    ours, expected = forward_with_teachers_text(model, teacher, input_ids, pixels)
    torch.testing.assert_close(ours.logits_per_text, expected.logits_per_text, atol=1e-5, rtol=0)
    assert ours.loss.item() == pytest.approx(expected.loss.item(), abs=1e-5)


def test_a_siglip_model_saves_its_bias_and_loads_it_back(tmp_path):
    from builders import save_tiny_siglip_model_folder

    folder = save_tiny_siglip_model_folder(tmp_path / "model")
    state = load_file(folder / "model.safetensors")
    assert state["logit_bias"].item() == pytest.approx(-1.5)
    assert not any(name.startswith("visual_projection") for name in state)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    assert model.logit_bias.item() == pytest.approx(-1.5)
    assert type(model.config.vision_config).__name__ == "SiglipVisionConfig"


def test_a_clip_model_has_no_bias_in_its_weights(model_dir):
    assert "logit_bias" not in load_file(model_dir / "model.safetensors")
    assert AutoModel.from_pretrained(model_dir, trust_remote_code=True).logit_bias is None


def test_int8_keeps_siglips_attention_pooling_head_working():
    from builders import tiny_siglip_model, tiny_siglip_processor

    model = tiny_siglip_model()
    processor = tiny_siglip_processor()
    reference = model.encode_image(images(), processor=processor)
    texts = model.encode_text(TEXTS, processor=processor)
    model.quantize_int8()
    head = model.vision_model.head.attention
    assert isinstance(head, torch.nn.MultiheadAttention)
    assert type(head.out_proj) is not type(model.vision_model.head.mlp.fc1)
    cosines = (model.encode_image(images(), processor=processor) * reference).sum(-1)
    assert cosines.min() > 0.99
    assert ((model.encode_text(TEXTS, processor=processor) * texts).sum(-1)).min() > 0.99
