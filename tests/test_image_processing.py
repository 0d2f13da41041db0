"""Pixel parity with the `clip` package's own preprocessing, which the weights were trained with."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from turkish_clip import TurkishCLIPImageProcessor

clip = pytest.importorskip("clip", reason="the clip package is the reference for pixel parity")

# Sizes where rounding and flooring the crop offset disagree, odd ones, near-square and extreme.
SIZES = [
    (224, 224),
    (225, 224),
    (227, 300),
    (300, 227),
    (333, 501),
    (640, 480),
    (479, 479),
    (1600, 1067),
    (1, 1),
    (7, 3),
    (2000, 31),
    (31, 2000),
    (256, 255),
]


def random_image(width: int, height: int, mode: str, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed + width * 7 + height)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


def clip_pixels(image: Image.Image, n_px: int = 224) -> torch.Tensor:
    return clip.clip._transform(n_px)(image)


@pytest.fixture(scope="module")
def processor() -> TurkishCLIPImageProcessor:
    return TurkishCLIPImageProcessor()


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_pixels_equal_clip_preprocess(processor, size, mode):
    image = random_image(*size, mode)
    ours = processor(image)["pixel_values"][0]
    assert ours.shape == (3, 224, 224) and ours.dtype == torch.float32
    assert torch.max(torch.abs(ours - clip_pixels(image))) <= 1e-6


def test_stock_clip_image_processor_is_a_pixel_off_where_we_are_not(processor):
    # Why this processor exists: transformers' CLIPImageProcessor floors the crop offset.
    from transformers import CLIPImageProcessor

    image = random_image(227, 300, "RGB")
    reference = clip_pixels(image)
    stock = CLIPImageProcessor.from_dict(
        {"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}}
    )(image, return_tensors="pt")["pixel_values"][0]
    assert torch.max(torch.abs(stock - reference)) > 1e-3
    assert torch.max(torch.abs(processor(image)["pixel_values"][0] - reference)) <= 1e-6


@pytest.mark.parametrize("name", ["myspc.jpeg", "mysdk.jpeg"])
def test_original_demo_photos_match_clip(processor, shared_dir, name):
    path = shared_dir / "images" / name
    reference = clip_pixels(Image.open(path))
    ours = processor(str(path))["pixel_values"][0]
    assert torch.max(torch.abs(ours - reference)) <= 1e-6


def test_other_resolutions_match_clip():
    processor = TurkishCLIPImageProcessor(size=32, crop_size=32)
    image = random_image(50, 41, "RGB")
    ours = processor(image)["pixel_values"][0]
    assert torch.max(torch.abs(ours - clip_pixels(image, 32))) <= 1e-6


def test_batch_of_paths_and_images_keeps_order(processor, tmp_path):
    images = [random_image(300, 200, "RGB", seed=i) for i in range(3)]
    images[1].save(tmp_path / "one.png")
    batch = processor([images[0], tmp_path / "one.png", images[2]])["pixel_values"]
    for row, image in zip(batch, images):
        assert torch.max(torch.abs(row - clip_pixels(image))) <= 1e-6


def test_extreme_aspect_ratio_does_not_build_a_giant_image(processor):
    # Resizing 1x100000 to short side 224 would make 22 billion pixels; only the crop is resized.
    image = Image.new("RGB", (1, 100_000), (10, 200, 30))
    pixels = processor(image)["pixel_values"][0]
    expected = clip_pixels(Image.new("RGB", (1, 1), (10, 200, 30)))
    assert torch.max(torch.abs(pixels - expected)) <= 1e-6


def test_config_round_trip(tmp_path):
    processor = TurkishCLIPImageProcessor(size=64, crop_size=48, max_image_pixels=1000)
    processor.save_pretrained(tmp_path)
    loaded = TurkishCLIPImageProcessor.from_pretrained(tmp_path)
    assert loaded.size == {"shortest_edge": 64}
    assert loaded.crop_size == {"height": 48, "width": 48}
    assert loaded.max_image_pixels == 1000


@pytest.mark.parametrize("bad", [0, -3, "224", {"shortest_edge": 0}])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="positive integers"):
        TurkishCLIPImageProcessor(size=bad)


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 700),
    height=st.integers(1, 700),
    mode=st.sampled_from(["RGB", "L"]),
    seed=st.integers(0, 1000),
)
def test_random_rgb_and_gray_sizes_keep_clip_parity(width, height, mode, seed):
    image = random_image(width, height, mode, seed)
    ours = TurkishCLIPImageProcessor()(image)["pixel_values"][0]
    assert torch.max(torch.abs(ours - clip_pixels(image))) <= 1e-6


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    mode=st.sampled_from(["RGBA", "LA", "P", "PA", "CMYK", "1", "I", "I;16", "F", "YCbCr", "La"]),
)
def test_other_modes_never_crash(width, height, mode):
    image = Image.new(mode, (width, height))
    pixels = TurkishCLIPImageProcessor()(image)["pixel_values"]
    assert pixels.shape == (1, 3, 224, 224) and torch.isfinite(pixels).all()
