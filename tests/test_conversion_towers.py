"""Teachers' image towers: OpenAI archives of every ViT size, transformers CLIP and SigLIP, and the
teachers refused by name."""

import json
import warnings

import pytest
import torch
from builders import save_tiny_bert, save_tiny_siglip_teacher, save_tiny_teacher

from conversion import checkpoints as cc
from conversion.towers import (
    CLIP,
    OPENAI,
    SIGLIP,
    TeacherError,
    check_teacher_model,
    read_image_tower,
)
from turkish_clip import TurkishCLIPConfig, TurkishCLIPModel

# OpenAI's four ViTs, as clip.model.build_model reads them off the archives.
OPENAI_VITS = {
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_width=768, vision_patch_size=32),
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_width=768, vision_patch_size=16),
    "ViT-L/14": dict(embed_dim=768, image_resolution=224, vision_width=1024, vision_patch_size=14),
    "ViT-L/14@336px": dict(
        embed_dim=768, image_resolution=336, vision_width=1024, vision_patch_size=14
    ),
}


def import_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import clip
    return clip


@pytest.mark.parametrize("name", OPENAI_VITS)
def test_every_openai_vit_maps_completely_onto_a_student_tower(name):
    """Each of OpenAI's ViTs (built on the meta device: shapes only) maps tensor for tensor onto
    the student's image side, with its sizes read off the shapes."""
    clip = import_clip()
    sizes = OPENAI_VITS[name]
    layers = 24 if sizes["vision_width"] == 1024 else 12
    text = dict(context_length=77, vocab_size=49408, transformer_width=512)
    text |= dict(transformer_heads=8, transformer_layers=12)
    with torch.device("meta"):
        visual = clip.model.CLIP(**sizes, **text, vision_layers=layers).visual.state_dict()
    config = cc._clip_vision_config(visual)
    assert config["image_size"] == sizes["image_resolution"]
    assert config["patch_size"] == sizes["vision_patch_size"]
    assert config["num_attention_heads"] == sizes["vision_width"] // 64
    assert (config["num_hidden_layers"], config["projection_dim"]) == (layers, sizes["embed_dim"])
    student = TurkishCLIPConfig(vision_config=config, projection_dim=config["projection_dim"])
    with torch.device("meta"):
        model = TurkishCLIPModel(student)
    expected = {
        name: tensor.shape
        for name, tensor in model.state_dict().items()
        if name.startswith(("vision_model.", "visual_projection."))
    }
    state = cc._map_clip_vision(visual, name).finish(expected)
    assert state.keys() == expected.keys()


@pytest.fixture(scope="module")
def wide_archive(tmp_path_factory):
    """A tiny OpenAI archive with another patch size, width and resolution than ViT-B/32's
    stand-in: patch 4, width 192 (3 heads), 24 px."""
    clip = import_clip()
    torch.manual_seed(1)
    sizes = dict(embed_dim=24, image_resolution=24, vision_layers=2, vision_width=192)
    sizes |= dict(vision_patch_size=4, context_length=8, vocab_size=50)
    sizes |= dict(transformer_width=64, transformer_heads=1, transformer_layers=1)
    model = clip.model.CLIP(**sizes).eval()
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
        for param in model.visual.parameters():
            param.add_(0.05 * torch.randn(param.shape))
    path = tmp_path_factory.mktemp("clip") / "wide.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inputs = (torch.randn(1, 3, 24, 24), torch.zeros(1, 8, dtype=torch.long))
        torch.jit.save(torch.jit.trace(model, inputs, check_trace=False), str(path))
    return path


def test_an_openai_archive_of_another_size_gives_clips_own_image_embeddings(wide_archive):
    path = wide_archive
    original = import_clip().load(str(path), device="cpu", jit=False)[0].eval()
    assert check_teacher_model(str(path)).kind == OPENAI
    tower = read_image_tower(str(path))
    assert (tower.vision_config.patch_size, tower.vision_config.hidden_size) == (4, 192)
    assert tower.projection_dim == 24 and tower.logit_bias is None
    assert tower.logit_scale == pytest.approx(3.0)
    processor = tower.image_processor
    assert processor.size == {"shortest_edge": 24} and processor.crop_size["height"] == 24
    config = TurkishCLIPConfig(vision_config=tower.vision_config.to_dict(), projection_dim=24)
    model = TurkishCLIPModel(config).eval()
    model.load_state_dict(tower.state, strict=False)
    pixels = torch.randn(3, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = original.encode_image(pixels)
        found = model.embed_pixel_values(pixels)
    torch.testing.assert_close(found, expected, atol=1e-5, rtol=0)


def test_transformers_teachers_are_told_apart_by_their_config(tmp_path):
    clip_info = check_teacher_model(str(save_tiny_teacher(tmp_path / "clip")))
    siglip_info = check_teacher_model(str(save_tiny_siglip_teacher(tmp_path / "siglip")))
    assert (clip_info.kind, siglip_info.kind) == (CLIP, SIGLIP)
    tower = read_image_tower(siglip_info.source)
    assert tower.logit_bias == pytest.approx(-1.5) and tower.projection_dim == 24
    assert "SigLIP" in tower.describe() and "patch 8" in tower.describe()
    assert not any(name.startswith("visual_projection") for name in tower.state)


def siglip2_folder(folder):
    from transformers import Siglip2Config, Siglip2Model

    text = dict(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1)
    text |= dict(num_attention_heads=2)
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1)
    vision |= dict(num_attention_heads=2, patch_size=8)
    Siglip2Model(Siglip2Config(text_config=text, vision_config=vision)).save_pretrained(folder)
    return folder


def vision_only_folder(folder):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    sizes = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    config = CLIPVisionConfig(**sizes)
    CLIPVisionModel(config).save_pretrained(folder)
    return folder


def unknown_folder(folder):
    """An image-text model of another family (ALIGN): only its config.json is read."""
    folder.mkdir()
    config = {"model_type": "align", "text_config": {}, "vision_config": {"image_size": 32}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def vit_folder(folder):
    from transformers import ViTConfig, ViTModel

    sizes = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    ViTModel(ViTConfig(**sizes)).save_pretrained(folder)
    return folder


def mismatched_folder(folder):
    """A SigLIP teacher whose image processor makes 48x48 images for a 32 px tower."""
    save_tiny_siglip_teacher(folder)
    path = folder / "preprocessor_config.json"
    settings = json.loads(path.read_text())
    settings["size"] = {"height": 48, "width": 48}
    path.write_text(json.dumps(settings))
    return folder


UNSUPPORTED = {
    "text-only": (save_tiny_bert, "a text-only model (model_type 'bert')"),
    "naflex": (siglip2_folder, "NaFlex SigLIP 2"),
    "image-only": (vision_only_folder, "an image-only model (clip_vision_model)"),
    "image classifier": (vit_folder, "an image-only model (vit)"),
    "unknown": (unknown_folder, "not a CLIP or SigLIP (model_type 'align')"),
    "mismatched": (mismatched_folder, "mismatched image size: its image processor makes 48x48"),
}


@pytest.mark.parametrize("kind", UNSUPPORTED)
def test_unsupported_teachers_are_refused_by_name(tmp_path, kind):
    make, message = UNSUPPORTED[kind]
    folder = make(tmp_path / f"teacher-{kind}")
    with pytest.raises(TeacherError) as refused:
        check_teacher_model(str(folder))
    assert str(refused.value).startswith(f"--teacher {folder}: ")
    assert message in str(refused.value)


def test_a_hub_teacher_that_cannot_be_reached_is_named_not_taken_for_a_text_model(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(
        TeacherError, match="google/siglip2-base-patch16-224: config.json is not in"
    ):
        check_teacher_model("google/siglip2-base-patch16-224")
