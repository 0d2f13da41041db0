"""What every benchmark script shares: the scales of a run (the full-size model or a tiny smoke
test), a table row and its printing, interleaved timing, Turkish captions, labels and photo-like
JPEGs, and random-weight models. The scripts import this module; it imports none of them.
"""

import random
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import DistilBertTokenizerFast

from turkish_clip import (
    TURKISH_TEMPLATES,
    TurkishCLIPConfig,
    TurkishCLIPImageProcessor,
    TurkishCLIPModel,
    TurkishCLIPProcessor,
)

ROOT = Path(__file__).resolve().parents[1]
TOKENIZER_DIR = ROOT / "tests" / "fixtures" / "tf_distilbert"
BATCH = 32
LABELS_PER_CALL = 20
ENSEMBLE = TURKISH_TEMPLATES[:10]
# The test suite's tiny model (tests/builders.py), for the int8 check on a second model.
TINY_TEXT = dict(
    vocab_size=468, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=512
)
TINY_VISION = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=32,
    patch_size=8,
    projection_dim=16,
)
FULL_CLIP = dict(
    embed_dim=512,
    image_resolution=224,
    vision_layers=12,
    vision_width=768,
    vision_patch_size=32,
    context_length=77,
    vocab_size=49408,
    transformer_width=512,
    transformer_heads=8,
    transformer_layers=12,
)
TINY_CLIP = dict(FULL_CLIP, embed_dim=16, image_resolution=32, vision_layers=2, vision_width=64)
TINY_CLIP.update(vision_patch_size=8, transformer_width=64, transformer_heads=1)
TINY_CLIP.update(transformer_layers=1, vocab_size=50, context_length=8)


@dataclass(frozen=True)
class Scale:
    """How big the run is: the full-size model and enough work to time, or a smoke test."""

    config: dict
    clip: dict
    image_size: int
    texts: int
    photos: int
    photo_sizes: tuple[tuple[int, int], ...]
    repeats: int
    load_repeats: int


FULL = Scale(
    config={},
    clip=FULL_CLIP,
    image_size=224,
    texts=1000,
    photos=BATCH,
    # Phone, camera and web photo sizes, landscape and portrait.
    photo_sizes=((1600, 1067), (1024, 768), (640, 480), (1920, 1080), (768, 1024), (4032, 3024)),
    repeats=5,
    load_repeats=3,
)
QUICK = Scale(
    config=dict(text_config=TINY_TEXT, vision_config=TINY_VISION, projection_dim=16),
    clip=TINY_CLIP,
    image_size=32,
    texts=40,
    photos=4,
    photo_sizes=((120, 80), (64, 96)),
    repeats=1,
    load_repeats=1,
)


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, and optionally what it is compared with and the ratio."""

    name: str
    value: float
    unit: str
    reference: str = ""
    ratio: float | None = None


# Timing


def interleaved(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, after one warm-up call of each.

    Runs go A, B, A, B...: a burst of load from another process then slows both sides instead of
    deciding the ratio.
    """
    for function in functions.values():
        function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


# Inputs

SUBJECTS = (
    "bir kedi",
    "iki köpek",
    "yaşlı bir adam",
    "genç bir kadın",
    "küçük bir çocuk",
    "öğrenciler",
    "beyaz bir at",
    "kırmızı bir araba",
    "sarı bir otobüs",
    "bir grup insan",
    "iki genç kız",
    "siyah bir köpek",
    "mavi bir tekne",
    "kahverengi bir ayı",
)
PLACES = (
    "sahilde",
    "parkta",
    "bahçede",
    "yolda",
    "şehirde",
    "sokakta",
    "masada",
    "ağaçların altında",
    "istasyonda",
    "okulun önünde",
    "mutfakta",
    "köprünün üzerinde",
)
ACTIONS = (
    "oturuyor",
    "koşuyor",
    "oynuyor",
    "yürüyor",
    "duruyor",
    "denize bakıyor",
    "kahve içiyor",
    "top oynuyor",
    "gülüyor",
    "yemek yiyor",
    "kitap okuyor",
)
DETAILS = (
    "güneşli bir günde",
    "yağmurlu bir gecede",
    "yanında siyah bir çanta ile",
    "elinde kırmızı bir şemsiye tutarak",
    "gözlük ve şapka giyen",
    "yeşil çimenlerin üzerinde",
    "eski bir binanın önünde",
)
COLOURS = ("kırmızı", "mavi", "yeşil", "sarı", "beyaz", "siyah", "gri", "mor", "turuncu", "pembe")
NOUNS = ("kedi", "köpek", "araba", "otobüs", "tekne", "uçak", "bisiklet", "kuş", "at", "çanta")
NOUNS += ("şapka", "şemsiye", "kitap", "masa", "sandalye", "ev", "köprü", "ağaç", "çiçek", "top")


def make_captions(count: int, seed: int = 0) -> list[str]:
    """Caption-like Turkish sentences: mostly one clause, some two or three, as image captions go.

    With the fixture's vocabulary they come to about 8 to 40 tokens, most of them 10 to 20.
    """
    rng = random.Random(seed)
    captions = []
    for _ in range(count):
        words = [rng.choice(DETAILS)] if rng.random() < 0.3 else []
        words += [rng.choice(SUBJECTS), rng.choice(PLACES), rng.choice(ACTIONS)]
        for _ in range(min(2, int(rng.expovariate(1.6)))):
            words += ["ve", rng.choice(SUBJECTS), rng.choice(PLACES), rng.choice(ACTIONS)]
        text = " ".join(words)
        captions.append(text[0].upper() + text[1:] + ".")
    return captions


def make_labels(call: int) -> list[str]:
    """Twenty labels shared with no other call number, so that a first call encodes them all."""
    pairs = [f"{colour} {noun}" for colour in COLOURS for noun in NOUNS]
    random.Random(0).shuffle(pairs)
    labels = pairs[call * LABELS_PER_CALL : (call + 1) * LABELS_PER_CALL]
    if len(labels) < LABELS_PER_CALL:
        raise ValueError(f"only {len(pairs) // LABELS_PER_CALL} distinct label sets")
    return labels


def make_photos(directory: Path, scale: Scale) -> list[Path]:
    """JPEG files that decode like photos: smooth shapes plus sensor-like noise, quality 90."""
    rng = np.random.default_rng(0)
    paths = []
    for index in range(scale.photos):
        width, height = scale.photo_sizes[index % len(scale.photo_sizes)]
        coarse = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        noisy = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3))
        path = directory / f"photo{index:03d}.jpg"
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


# Models


def build_model(scale: Scale, seed: int = 0) -> TurkishCLIPModel:
    torch.manual_seed(seed)
    return TurkishCLIPModel(TurkishCLIPConfig(**scale.config)).eval()


def build_processor(scale: Scale) -> TurkishCLIPProcessor:
    tokenizer = DistilBertTokenizerFast.from_pretrained(TOKENIZER_DIR)
    size = scale.image_size
    image_processor = TurkishCLIPImageProcessor(size=size, crop_size=size)
    return TurkishCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def import_clip():
    """OpenAI's `clip` package, without its warning about pkg_resources."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import clip
    return clip


def build_openai_clip(scale: Scale) -> torch.nn.Module:
    clip = import_clip()

    torch.manual_seed(0)
    return clip.model.CLIP(**scale.clip).float().eval()


# Table

FORMATS = {
    "/s": "{:.1f}/s",
    "ms": "{:.0f} ms",
    "ms.": "{:.2f} ms",
    "µs": "{:.0f} µs",
    "s": "{:.3f} s",
    "MB": "{:.0f} MB",
    "%": "{:.0f}%",
    "": "{:.5f}",
}


def print_table(rows: list[Row], header: str) -> None:
    print(header)
    print()
    print("| measurement | value | compared with | ratio |")
    print("| --- | ---: | --- | ---: |")
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        value = FORMATS[row.unit].format(row.value)
        print(f"| {row.name} | {value} | {row.reference} | {ratio} |")


def header(scale: Scale) -> str:
    size = "tiny (--quick)" if scale.config else "full-size"
    return (
        f"Turkish CLIP on CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"{size} model with random weights; each figure the median of {scale.repeats} run(s) "
        "after a warm-up"
    )
