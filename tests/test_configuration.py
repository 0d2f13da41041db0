"""TurkishCLIPConfig: the released model's sizes by default, validated values, round trips."""

import math

import pytest
from builders import tiny_config
from transformers import AutoConfig

from turkish_clip import ROOT, TURKISH_TEMPLATES, TurkishCLIPConfig


def test_defaults_are_the_released_sizes():
    config = TurkishCLIPConfig()
    assert (config.text_config.dim, config.text_config.n_layers) == (768, 6)
    assert config.text_config.vocab_size == 32000
    vision = config.vision_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.patch_size) == (768, 12, 32)
    assert (vision.image_size, vision.hidden_act, vision.layer_norm_eps) == (
        224,
        "quick_gelu",
        1e-5,
    )
    assert config.projection_dim == 512
    assert config.logit_scale_init_value == pytest.approx(math.log(100))
    assert config.default_template == "bir {} fotoğrafı"


def test_model_type_never_switches_the_pipeline_to_sigmoid_scores():
    assert "siglip" not in TurkishCLIPConfig.model_type


def test_round_trip_through_json(tmp_path):
    config = tiny_config()
    config.save_pretrained(tmp_path)
    loaded = TurkishCLIPConfig.from_pretrained(tmp_path)
    assert loaded.text_config.dim == 32 and loaded.vision_config.image_size == 32
    assert loaded.projection_dim == 16
    assert loaded.to_dict()["text_config"] == config.to_dict()["text_config"]


def test_auto_config_reads_a_saved_folder(tmp_path):
    config = tiny_config()
    config.auto_map = {"AutoConfig": "configuration_turkish_clip.TurkishCLIPConfig"}
    config.save_pretrained(tmp_path)
    (tmp_path / "configuration_turkish_clip.py").write_text(
        (ROOT / "configuration_turkish_clip.py").read_text()
    )
    loaded = AutoConfig.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.model_type == "turkish_clip" and loaded.projection_dim == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"projection_dim": 0}, "projection_dim"),
        ({"projection_dim": 1.5}, "projection_dim"),
        ({"logit_scale_init_value": float("nan")}, "logit_scale_init_value"),
        ({"default_template": "şablon"}, "default_template"),
        ({"default_template": "{} ve {}"}, "default_template"),
        ({"text_config": {"dim": 30, "n_heads": 4}}, "attention heads"),
        ({"text_config": 5}, "expected a dict"),
    ],
)
def test_bad_values_are_refused_by_name(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        TurkishCLIPConfig(**kwargs)


def test_templates_put_the_label_where_suffixes_do_not_touch_it():
    assert len(TURKISH_TEMPLATES) >= 12 and len(set(TURKISH_TEMPLATES)) == len(TURKISH_TEMPLATES)
    for template in TURKISH_TEMPLATES:
        assert template.count("{}") == 1
        after = template.split("{}")[1]
        # A suffix glued to the label ("{}'ın") would have to agree with the label's vowels.
        assert after == "" or after[0] in " ,"


def test_the_image_tower_is_chosen_by_its_model_type(tmp_path):
    from builders import TINY_SIGLIP_VISION
    from transformers import CLIPVisionConfig, SiglipVisionConfig

    siglip = tiny_config(vision_config=TINY_SIGLIP_VISION, logit_bias_init_value=-3.0)
    assert isinstance(siglip.vision_config, SiglipVisionConfig) and siglip.is_siglip
    assert siglip.logit_bias_init_value == -3.0 and "sigmoid" in siglip.scoring
    siglip.save_pretrained(tmp_path)
    loaded = TurkishCLIPConfig.from_pretrained(tmp_path)
    assert isinstance(loaded.vision_config, SiglipVisionConfig)
    assert loaded.logit_bias_init_value == -3.0 and loaded.vision_config.hidden_size == 16
    # A SigLIP tower without a bias given starts from SigLIP's own -10.
    assert tiny_config(vision_config=TINY_SIGLIP_VISION).logit_bias_init_value == -10.0
    clip = tiny_config()
    assert isinstance(clip.vision_config, CLIPVisionConfig) and not clip.is_siglip
    assert clip.logit_bias_init_value is None and "softmax" in clip.scoring


def test_a_vision_dict_without_model_type_is_clip_as_older_folders_hold():
    from transformers import CLIPVisionConfig

    config = TurkishCLIPConfig(vision_config={"hidden_size": 64, "num_attention_heads": 2})
    assert isinstance(config.vision_config, CLIPVisionConfig)
    assert config.vision_config.hidden_size == 64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"vision_config": {"model_type": "siglip2_vision_model"}}, "NaFlex"),
        ({"vision_config": {"model_type": "vit"}}, "unknown model_type 'vit'"),
        ({"vision_config": 3}, "vision_config: expected a dict"),
        ({"logit_bias_init_value": -10.0}, "SigLIP image towers only"),
        (
            {"vision_config": {"model_type": "siglip_vision_model", "hidden_size": 24}},
            "must equal projection_dim",
        ),
        ({"vision_config": {"image_size": 30, "patch_size": 8}}, "not a multiple of patch_size"),
    ],
)
def test_bad_image_towers_are_refused_by_name(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        tiny_config(**kwargs)
