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


def clip_pil_processor(**options):
    """transformers' PIL-backed CLIPImageProcessor, at the tiny tower's 32 px."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        **{"size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32}, **options}
    )


# 64x48 resizes to 42x32, whose crop offset (5) is whole: flooring and rounding agree there.
OPTION_CASES = [
    {"do_center_crop": False},
    {"size": {"height": 40, "width": 36}},
    {"size": 40},
    {"do_resize": False},
    {"do_resize": False, "crop_size": 80},
    {"crop_size": {"height": 20, "width": 30}},
    {"resample": Image.Resampling.BILINEAR},
    {"resample": 0},
    {"do_rescale": False},
    {"rescale_factor": 0.5, "do_normalize": False},
    {"do_normalize": False},
    {"image_mean": [0.5, 0.4, 0.3], "image_std": [0.2, 0.3, 0.4]},
]


@pytest.mark.parametrize("options", OPTION_CASES, ids=str)
def test_each_option_per_call_gives_what_clip_image_processor_gives(options):
    image = random_image(64, 48, "RGB")
    ours = TurkishCLIPImageProcessor(size=32, crop_size=32)(image, **options)["pixel_values"]
    theirs = clip_pil_processor()(image, return_tensors="pt", **options)["pixel_values"]
    assert ours.shape == theirs.shape
    assert torch.max(torch.abs(ours - theirs)) <= 1e-5


@pytest.mark.parametrize("options", OPTION_CASES, ids=str)
def test_each_option_at_construction_gives_what_clip_image_processor_gives(options, tmp_path):
    image = random_image(64, 48, "RGB")
    settings = {"size": 32, "crop_size": 32, **options}
    TurkishCLIPImageProcessor(**settings).save_pretrained(tmp_path)
    reloaded = TurkishCLIPImageProcessor.from_pretrained(tmp_path)
    theirs = clip_pil_processor(**options)(image, return_tensors="pt")["pixel_values"]
    ours = reloaded(image)["pixel_values"]
    assert ours.shape == theirs.shape
    assert torch.max(torch.abs(ours - theirs)) <= 1e-5


def test_height_and_width_size_is_kept():
    processor = TurkishCLIPImageProcessor(size={"height": 64, "width": 64})
    assert processor.size == {"height": 64, "width": 64}
    pixels = processor(random_image(90, 30, "RGB"), do_center_crop=False)["pixel_values"]
    assert pixels.shape == (1, 3, 64, 64)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"do_convert_rgb": False}, ValueError, "do_convert_rgb"),
        ({"size": {"longest_edge": 5}}, ValueError, "size must be"),
        ({"resample": 99}, ValueError, "resample"),
        ({"image_mean": [0.5, 0.5]}, ValueError, "image_mean"),
        ({"image_std": [0.5, 0.0, 0.5]}, ValueError, "image_std"),
        ({"rescale_factor": 0}, ValueError, "rescale_factor"),
        ({"do_normalize": "yes"}, ValueError, "do_normalize"),
        ({"do_pad": True}, TypeError, "do_pad"),
        ({"input_data_format": "channels_last"}, ValueError, "input_data_format"),
        ({"data_format": "channels_last"}, ValueError, "data_format"),
        ({"return_tensors": "tf"}, ValueError, "return_tensors"),
    ],
)
def test_options_it_cannot_honour_are_refused_by_name(processor, options, error, message):
    with pytest.raises(error, match=message):
        processor(random_image(40, 30, "RGB"), **options)


def test_uncropped_images_of_different_shapes_are_refused_not_stacked_wrongly(processor):
    images = [random_image(64, 48, "RGB"), random_image(48, 64, "RGB")]
    with pytest.raises(ValueError, match="different sizes after preprocessing"):
        processor(images, do_center_crop=False)
    assert processor(images, do_center_crop=False, size={"height": 30, "width": 40})[
        "pixel_values"
    ].shape == (2, 3, 30, 40)


def test_memoryview_and_bytearray_are_one_image(processor, tmp_path):
    random_image(60, 40, "RGB").save(tmp_path / "bir.png")
    data = (tmp_path / "bir.png").read_bytes()
    expected = processor(data)["pixel_values"]
    for same in (bytearray(data), memoryview(data)):
        assert torch.equal(processor(same)["pixel_values"], expected)


# Reduced decoding: an opt-in; the default stays CLIP's exact preprocessing.


def test_reduced_decode_is_off_by_default_and_opt_in(processor, tmp_path):
    from builders import photo_like

    path = tmp_path / "camera.jpg"
    photo_like(2400, 1600).save(path, quality=90)
    reference = clip_pixels(Image.open(path))
    exact = processor(str(path))["pixel_values"][0]
    reduced = processor(str(path), reduced_decode=True)["pixel_values"][0]
    assert torch.max(torch.abs(exact - reference)) <= 1e-6
    assert not torch.equal(reduced, exact)  # another decode ran
    # The same picture: normalised pixels (about 4 units per 255 levels) differ little.
    assert torch.mean(torch.abs(reduced - exact)) < 0.05


def test_reduced_decode_keeps_twice_the_resize_target(tmp_path):
    assert TurkishCLIPImageProcessor().reduced_decode_side() == 448
    assert TurkishCLIPImageProcessor(size=32, crop_size=32).reduced_decode_side() == 64
    assert (
        TurkishCLIPImageProcessor(size={"height": 100, "width": 300}).reduced_decode_side() == 600
    )
    assert TurkishCLIPImageProcessor(do_resize=False).reduced_decode_side() is None


@pytest.mark.parametrize(("size", "fmt"), [((800, 600), "JPEG"), ((2400, 1600), "PNG")])
def test_reduced_decode_leaves_small_jpegs_and_other_formats_exact(processor, tmp_path, size, fmt):
    from builders import photo_like

    path = tmp_path / f"photo.{fmt.lower()}"
    photo_like(*size).save(path, format=fmt)
    exact = processor(str(path))["pixel_values"]
    assert torch.equal(processor(str(path), reduced_decode=True)["pixel_values"], exact)


def test_reduced_decode_must_be_a_boolean(processor):
    with pytest.raises(ValueError, match="reduced_decode must be True or False"):
        processor(random_image(8, 8, "RGB"), reduced_decode="yes")


# SigLIP towers: a square resize and mean/std 0.5, as transformers' SiglipImageProcessor.


@pytest.mark.parametrize("size", [(48, 40), (100, 30), (32, 32), (20, 70), (640, 480), (1, 1)])
def test_a_siglip_students_pixels_are_siglipimageprocessors(tmp_path, size):
    """The processor a student builds from a SigLIP teacher's preprocessor_config.json gives the
    pixels of transformers' PIL SiglipImageProcessor with that teacher's settings, exactly."""
    from builders import save_tiny_siglip_teacher, siglip_image_processor

    from conversion.towers import check_teacher_model, teacher_image_processor

    folder = save_tiny_siglip_teacher(tmp_path / "teacher", image_size=32)
    ours = teacher_image_processor(check_teacher_model(str(folder)), 32)
    reference = siglip_image_processor(32)
    rng = np.random.default_rng(sum(size))
    width, height = size
    for image in (
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize(size),
    ):
        expected = reference(image, return_tensors="pt")["pixel_values"]
        pixels = ours(image, return_tensors="pt")["pixel_values"]
        assert pixels.shape == expected.shape == (1, 3, 32, 32)
        torch.testing.assert_close(pixels, expected, atol=1e-6, rtol=0)


def test_a_siglip_students_pixels_are_within_one_level_of_the_torchvision_processor(tmp_path):
    """transformers 5's default SiglipImageProcessor resizes with torchvision, whose bicubic
    rounds differently from PIL's by at most one 8-bit level (2/255 after mean/std 0.5)."""
    transformers = pytest.importorskip("transformers")
    from builders import tiny_siglip_processor

    processor = tiny_siglip_processor().image_processor
    reference = transformers.SiglipImageProcessor(size={"height": 32, "width": 32})
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), np.uint8))
    difference = (
        processor(image, return_tensors="pt")["pixel_values"]
        - reference(image, return_tensors="pt")["pixel_values"]
    )
    assert difference.abs().max() <= 2 / 255 + 1e-6
