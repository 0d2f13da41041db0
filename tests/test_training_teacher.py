"""Teacher embeddings equal the original libraries' own: `clip`'s encode_text of the model that
was saved as an OpenAI archive, and transformers' CLIPModel.get_text_features."""

import warnings

import pytest
import torch
from builders import clip_tokenizer, save_tiny_teacher

from training.teacher import (
    OpenAIClipTeacher,
    TransformersClipTeacher,
    load_teacher,
    teacher_fingerprint,
)

TEXTS = ["a red cat on the beach", "two dogs", "an elephant, crossing the road at night!"]
CPU = torch.device("cpu")


def import_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import clip
    return clip


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A tiny ViT CLIP with OpenAI's full vocabulary, traced and saved as OpenAI's archives are."""
    clip = import_clip()
    torch.manual_seed(0)
    sizes = dict(embed_dim=16, image_resolution=32, vision_layers=1, vision_width=64)
    sizes |= dict(vision_patch_size=16, context_length=20, vocab_size=49408)
    sizes |= dict(transformer_width=64, transformer_heads=1, transformer_layers=1)
    model = clip.model.CLIP(**sizes).eval()
    clip.model.convert_weights(model)  # OpenAI's archives hold fp16 weights
    path = tmp_path_factory.mktemp("clip") / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = (torch.randn(1, 3, 32, 32).half(), clip.tokenize(["x"], context_length=20))
        torch.jit.save(torch.jit.trace(model, inputs, check_trace=False), str(path))
    return path, model.float()


def test_an_openai_archive_embeds_as_clip_encode_text(archive):
    path, model = archive
    teacher = load_teacher(str(path), CPU)
    assert isinstance(teacher, OpenAIClipTeacher) and teacher.model.context_length == 20
    with torch.no_grad():
        expected = model.encode_text(import_clip().tokenize(TEXTS, context_length=20))
    torch.testing.assert_close(teacher.embed(TEXTS), expected, atol=1e-5, rtol=0)


def test_a_transformers_folder_embeds_as_get_text_features(tmp_path):
    from transformers import CLIPModel

    folder = save_tiny_teacher(tmp_path / "teacher")
    teacher = load_teacher(str(folder), CPU)
    assert isinstance(teacher, TransformersClipTeacher)
    model = CLIPModel.from_pretrained(folder).eval()
    tokens = teacher.tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        features = model.get_text_features(**tokens)
    expected = getattr(features, "pooler_output", features)  # a tensor before transformers 5
    torch.testing.assert_close(teacher.embed(TEXTS), expected, atol=1e-6, rtol=0)


def test_the_tokenizer_of_the_stand_in_is_openai_clips(tmp_path):
    clip = import_clip()
    ids = clip_tokenizer(tmp_path)(TEXTS)["input_ids"]
    reference = clip.tokenize(TEXTS, context_length=20)
    for row, expected in zip(ids, reference):
        assert row == expected[: len(row)].tolist()


def test_the_fingerprint_follows_the_teacher_files(archive, tmp_path):
    archive = archive[0]
    copy = tmp_path / "copy.pt"
    copy.write_bytes(archive.read_bytes())
    assert teacher_fingerprint(str(copy)) == teacher_fingerprint(str(archive))
    copy.write_bytes(archive.read_bytes() + b"\0")
    assert teacher_fingerprint(str(copy)) != teacher_fingerprint(str(archive))
    assert teacher_fingerprint("ViT-B/32") != teacher_fingerprint("ViT-B/16")


def test_a_siglip_folder_embeds_as_get_text_features_on_64_padded_tokens(tmp_path):
    """SigLIP was trained on texts padded to 64 tokens: its text tower reads the last position,
    so the teacher pads so, and shorter padding would give other embeddings."""
    from builders import save_tiny_siglip_teacher
    from transformers import SiglipModel

    from training.teacher import TransformersSiglipTeacher

    folder = save_tiny_siglip_teacher(tmp_path / "teacher")
    teacher = load_teacher(str(folder), CPU)
    assert isinstance(teacher, TransformersSiglipTeacher)
    model = SiglipModel.from_pretrained(folder).eval()

    def features(**padding):
        tokens = teacher.tokenizer(TEXTS, truncation=True, return_tensors="pt", **padding)
        with torch.no_grad():
            output = model.get_text_features(**tokens)
        return getattr(output, "pooler_output", output)  # a tensor before transformers 5

    expected = features(padding="max_length", max_length=64)
    embeddings = teacher.embed(TEXTS)
    torch.testing.assert_close(embeddings, expected, atol=1e-6, rtol=0)
    assert (embeddings - features(padding=True)).abs().max() > 1e-3
