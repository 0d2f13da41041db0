"""Every kind of image input gets a correct RGB image or an error naming the input."""

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from turkish_clip import TurkishCLIPImageProcessor
from turkish_clip.image_loading import ImageLoadError, load_image, to_rgb


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat_data = zlib.compress(b"\x00" * 16)
    idat = b"IDAT" + idat_data
    idat_chunk = struct.pack(">I", len(idat_data)) + idat + struct.pack(">I", zlib.crc32(idat))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat_chunk + iend


PHOTO = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8))


@pytest.fixture
def corrupt_files(tmp_path):
    """The corrupted-file corpus, generated here."""
    files = {
        "truncated.jpg": jpeg_bytes(PHOTO)[:200],
        "truncated.png": png_bytes(PHOTO)[:100],
        "empty.jpg": b"",
        "random.png": np.random.default_rng(1).bytes(4096),
        "text.jpg": "bu bir resim değil".encode(),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("truncated.jpg", "truncated or corrupt"),
        ("truncated.png", "truncated or corrupt|not an image"),
        ("empty.jpg", "not an image"),
        ("random.png", "not an image"),
        ("text.jpg", "not an image"),
    ],
)
def test_broken_files_name_the_file_and_the_problem(corrupt_files, name, reason):
    with pytest.raises(ImageLoadError, match=reason) as error:
        load_image(corrupt_files / name)
    assert name in str(error.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        load_image(tmp_path / "nope.jpg")


def test_truncated_images_are_not_allowed_globally(corrupt_files):
    with pytest.raises(ImageLoadError):
        load_image(corrupt_files / "truncated.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_batch_error_says_which_item_failed(corrupt_files):
    processor = TurkishCLIPImageProcessor()
    with pytest.raises(ImageLoadError, match=r"image 1 \(.*text.jpg"):
        processor([PHOTO, corrupt_files / "text.jpg", PHOTO])


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(100_000, 100_000))
    assert path.stat().st_size < 200
    with pytest.raises(ImageLoadError, match="bomb.png.*too large|bomb.png.*over the limit"):
        load_image(path)


def test_pixel_limit_can_be_set_by_the_caller(tmp_path):
    big = Image.new("RGB", (300, 200), (1, 2, 3))
    with pytest.raises(ImageLoadError, match="60,000 pixels, over the limit of 50,000"):
        load_image(png_bytes(big), max_pixels=50_000)
    assert load_image(png_bytes(big), max_pixels=60_000).size == (300, 200)
    processor = TurkishCLIPImageProcessor(max_image_pixels=50_000)
    with pytest.raises(ImageLoadError, match="over the limit"):
        processor(png_bytes(big))


def test_transparent_pixels_become_white_whatever_colour_is_under_them():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgb = to_rgb(rgba)
    assert rgb.mode == "RGB"
    assert rgb.getpixel((1, 1)) == (255, 255, 255)
    assert rgb.getpixel((0, 0)) == (0, 0, 255)


def test_half_transparent_black_is_grey():
    assert to_rgb(Image.new("LA", (1, 1), (0, 128))).getpixel((0, 0)) == (127, 127, 127)


def test_palette_with_transparency_is_composited():
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 0
    rgb = load_image(png_bytes(palette))
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((1, 0)) == (0, 255, 0)


def test_sixteen_bit_images_are_scaled_not_clamped_to_white():
    pixels = np.array([[0, 32768, 65535]], dtype=np.uint16)
    image = Image.fromarray(pixels)
    assert image.convert("RGB").getpixel((1, 0)) == (255, 255, 255)  # what Pillow alone does
    rgb = to_rgb(image)
    assert [rgb.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_sixteen_bit_png_file_is_scaled(tmp_path):
    pixels = np.full((2, 2), 16384, dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    assert load_image(path).getpixel((0, 0)) == (64, 64, 64)


def test_float_images_are_scaled():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert [to_rgb(unit).getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]
    wide = Image.fromarray(np.array([[-10.0, 0.0, 10.0]], dtype=np.float32))
    assert [to_rgb(wide).getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_cmyk_and_bilevel_convert():
    assert to_rgb(Image.new("CMYK", (1, 1), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("1", (1, 1), 1)).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied_to_files():
    wide = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = jpeg_bytes(wide, exif=exif.tobytes())
    assert load_image(data).size == (20, 40)


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    pixel = load_image(path).getpixel((4, 4))
    assert pixel[0] > 200 and pixel[2] < 50


@pytest.mark.parametrize("layout", ["hwc", "chw"])
def test_arrays_and_tensors(layout):
    pixels = np.asarray(PHOTO)
    array = pixels if layout == "hwc" else pixels.transpose(2, 0, 1)
    assert np.array_equal(np.asarray(load_image(array)), pixels)
    assert np.array_equal(np.asarray(load_image(torch.from_numpy(array.copy()))), pixels)


def test_unknown_input_type_is_named():
    with pytest.raises(TypeError, match="dict"):
        load_image({"not": "an image"})


def serve_bytes(data: bytes, content_type: str = "image/png"):
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return route


def test_url_is_downloaded_and_decoded(http_server):
    http_server.routes["/kedi.png"] = serve_bytes(png_bytes(PHOTO))
    image = load_image(http_server.url("/kedi.png"))
    assert np.array_equal(np.asarray(image), np.asarray(PHOTO))


def test_url_redirect_is_followed(http_server):
    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", "/kedi.png")
        handler.end_headers()

    http_server.routes["/eski.png"] = redirect
    http_server.routes["/kedi.png"] = serve_bytes(png_bytes(PHOTO))
    assert load_image(http_server.url("/eski.png")).size == PHOTO.size


def test_url_http_error_names_the_url(http_server):
    url = http_server.url("/yok.jpg")
    with pytest.raises(ImageLoadError, match=f"{url}.*404"):
        load_image(url)


def test_url_that_is_not_an_image_names_the_url(http_server):
    http_server.routes["/sayfa.html"] = serve_bytes(b"<html></html>", "text/html")
    with pytest.raises(ImageLoadError, match="sayfa.html.*not an image"):
        load_image(http_server.url("/sayfa.html"))


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), "10", True])
def test_url_timeout_must_be_a_positive_number(timeout):
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        load_image("http://127.0.0.1:9/kedi.png", timeout=timeout)


# --------------------------------------------------------------------------------------------
# arrays and tensors: the documented scaling rules
# --------------------------------------------------------------------------------------------


def grey_levels(image: Image.Image) -> list[int]:
    return np.asarray(image)[..., 0].ravel().tolist()


def test_uint16_arrays_scale_as_sixteen_bit_files_do():
    pixels = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16)
    from_array = load_image(pixels)
    from_file = load_image(png_bytes(Image.fromarray(pixels)))
    assert grey_levels(from_array) == grey_levels(from_file) == [0, 64, 128, 255]


def test_sixteen_bit_data_in_wider_integers_is_scaled():
    pixels = np.array([[0, 300, 32768, 65535]], dtype=np.int32)
    assert grey_levels(load_image(pixels)) == [0, 1, 128, 255]
    assert grey_levels(load_image(torch.from_numpy(pixels.astype(np.int64)))) == [0, 1, 128, 255]


def test_wide_integers_within_0_255_are_eight_bit():
    # What np.array(list_of_ints) and torch.tensor(list_of_ints) give: int64 with 8-bit values.
    pixels = np.asarray(PHOTO).astype(np.int64)
    assert np.array_equal(np.asarray(load_image(pixels)), np.asarray(PHOTO))
    assert np.array_equal(np.asarray(load_image(torch.tensor(pixels.tolist()))), np.asarray(PHOTO))


def test_floats_just_outside_0_1_are_clipped():
    pixels = np.array([[-1e-6, 0.5, 1.0001, 1.2]], dtype=np.float32)
    assert grey_levels(load_image(pixels)) == [0, 128, 255, 255]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_and_double_tensors(dtype):
    pixels = torch.tensor([[0.0, 0.25, 0.5, 1.0]], dtype=dtype)
    assert grey_levels(load_image(pixels)) == [0, 64, 128, 255]


def test_tensor_on_the_autograd_graph_is_accepted():
    pixels = torch.full((3, 4, 5), 0.5, requires_grad=True) * 1.0
    assert grey_levels(load_image(pixels)) == [128] * 20


# Reduced decoding of large JPEGs (draft_min_side).


def _mean_difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


@pytest.mark.parametrize(
    ("size", "min_side", "decoded"),
    [
        ((2000, 1000), 224, (500, 250)),  # 1000 // 224 = 4: a quarter keeps 250 >= 224
        ((1000, 2000), 448, (500, 1000)),  # 1000 // 448 = 2: half
        ((4000, 3000), 224, (500, 375)),  # 3000 // 224 = 13: an eighth, the smallest there is
        ((1001, 897), 448, (501, 449)),  # just over twice: half, rounded up
    ],
)
def test_large_jpeg_is_decoded_at_the_smallest_scale_keeping_the_side(size, min_side, decoded):
    from builders import photo_like

    image = photo_like(*size)
    data = jpeg_bytes(image, quality=90)
    reduced = load_image(data, draft_min_side=min_side)
    assert reduced.size == decoded and reduced.mode == "RGB"
    assert min(reduced.size) >= min_side
    # The same picture: close to the full decode shrunk to that size by area averaging.
    full = load_image(data).resize(decoded, Image.Resampling.BOX)
    assert _mean_difference(reduced, full) < 3.0


@pytest.mark.parametrize(
    ("size", "fmt"),
    [
        ((895, 1200), "JPEG"),  # shorter side under twice the bound: no reduction possible
        ((447, 300), "JPEG"),
        ((2000, 1000), "PNG"),
        ((2000, 1000), "WEBP"),
        ((2000, 1000), "TIFF"),
    ],
)
def test_small_jpegs_and_other_formats_decode_exactly_as_without_it(size, fmt):
    from builders import photo_like

    buffer = io.BytesIO()
    photo_like(*size).save(buffer, format=fmt)
    exact = np.asarray(load_image(buffer.getvalue()))
    reduced = np.asarray(load_image(buffer.getvalue(), draft_min_side=448))
    assert reduced.shape == exact.shape and np.array_equal(reduced, exact)


def test_exif_orientation_is_applied_after_a_reduced_decode(tmp_path):
    from builders import photo_like

    wide = photo_like(2000, 1000, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    wide.save(path, quality=90, exif=exif.tobytes())
    exact = load_image(path)
    reduced = load_image(path, draft_min_side=224)
    assert exact.size == (1000, 2000) and reduced.size == (250, 500)
    assert _mean_difference(reduced, exact.resize((250, 500), Image.Resampling.BOX)) < 3.0
    # Rotated the other way it would not match: the orientation really was applied.
    wrong = exact.transpose(Image.Transpose.ROTATE_180).resize((250, 500), Image.Resampling.BOX)
    assert _mean_difference(reduced, wrong) > 10.0


def test_reduced_decode_reads_grey_and_cmyk_jpegs_as_rgb():
    from builders import photo_like

    photo = photo_like(1200, 1000)
    for mode in ("L", "CMYK"):
        data = jpeg_bytes(photo.convert(mode), quality=90)
        reduced = load_image(data, draft_min_side=448)
        assert reduced.mode == "RGB" and reduced.size == (600, 500)
        full = load_image(data).resize((600, 500), Image.Resampling.BOX)
        assert _mean_difference(reduced, full) < 3.0


def test_multi_picture_jpegs_from_phones_are_reduced_too():
    from builders import photo_like

    buffer = io.BytesIO()
    first, second = photo_like(1200, 1000), photo_like(1200, 1000, seed=1)
    first.save(buffer, format="MPO", save_all=True, append_images=[second], quality=90)
    reduced = load_image(buffer.getvalue(), draft_min_side=448)
    assert reduced.size == (600, 500)
    full = load_image(buffer.getvalue()).resize((600, 500), Image.Resampling.BOX)
    assert _mean_difference(reduced, full) < 3.0


def test_images_already_decoded_are_never_reduced():
    from builders import photo_like

    photo = photo_like(2000, 1000)
    assert load_image(photo, draft_min_side=224).size == (2000, 1000)


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "448"])
def test_draft_min_side_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="draft_min_side must be a positive integer"):
        load_image(jpeg_bytes(PHOTO), draft_min_side=bad)
