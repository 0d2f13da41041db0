"""Speed and memory of Turkish CLIP on this machine's CPU, with random weights.

    python benchmarks/run.py                  # full-size model: several minutes on 2 cores
    python benchmarks/run.py --quick          # tiny model, seconds: every row runs, nothing more
    python benchmarks/run.py --original-python .venv-original/bin/python   # adds the TF original

Weights are random and nothing is downloaded: speed depends on layer sizes and sequence lengths,
not on weight values. Each figure is the median of several runs after a warm-up, and the runs of
two things compared are interleaved, so that load from other processes falls on both alike.
"""

import argparse
import copy
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    # The checkout instead of this script's folder, whose onnx.py would otherwise shadow the
    # `onnx` package; benchmarks/onnx.py imports this module by its name, which it is given.
    sys.path[0] = str(ROOT)
    sys.modules["benchmarks.run"] = sys.modules[__name__]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import DistilBertTokenizerFast, pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

from benchmarks.training import training_samples_per_second  # noqa: E402
from turkish_clip import (  # noqa: E402
    TURKISH_TEMPLATES,
    TurkishCLIPConfig,
    TurkishCLIPImageProcessor,
    TurkishCLIPModel,
    TurkishCLIPProcessor,
    save_model_folder,
)

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


# Measurements


@torch.inference_mode()
def padded_loop(model: TurkishCLIPModel, tokenizer, texts: list[str]) -> torch.Tensor:
    """The original project's way: input order, each batch padded to its longest text."""
    rows = []
    for start in range(0, len(texts), BATCH):
        tokens = tokenizer(texts[start : start + BATCH], padding=True, return_tensors="pt")
        states = model.text_model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1)
        rows.append(torch.nn.functional.normalize(model.text_projection(pooled), dim=-1))
    return torch.cat(rows)


def text_rows(model, processor, texts: list[str], scale: Scale) -> list[Row]:
    seconds = interleaved(
        {
            "sorted": lambda: model.encode_text(texts, batch_size=BATCH, processor=processor),
            "padded": lambda: padded_loop(model, processor.tokenizer, texts),
        },
        scale.repeats,
    )
    ours, padded = len(texts) / seconds["sorted"], len(texts) / seconds["padded"]
    name = f"text embeddings/s, encode_text, {len(texts)} captions"
    return [Row(name, ours, "/s", f"padded input-order loop: {padded:.1f}/s", ours / padded)]


def image_model_rows(model, clip_model, scale: Scale) -> list[Row]:
    pixels = torch.randn(BATCH, 3, scale.image_size, scale.image_size)
    with torch.inference_mode():
        seconds = interleaved(
            {
                "ours": lambda: model.get_image_features(pixels),
                "clip": lambda: clip_model.encode_image(pixels),
            },
            scale.repeats,
        )
    ours, theirs = BATCH / seconds["ours"], BATCH / seconds["clip"]
    name = f"image embeddings/s, get_image_features, batch {BATCH}"
    return [Row(name, ours, "/s", f"clip encode_image: {theirs:.1f}/s", ours / theirs)]


def preprocessing_rows(processor, photos: list[Path], scale: Scale) -> list[Row]:
    clip_transform = import_clip().clip._transform(scale.image_size)
    seconds = interleaved(
        {
            "ours": lambda: processor.image_processor(photos, return_tensors="pt"),
            "clip": lambda: torch.stack([clip_transform(Image.open(path)) for path in photos]),
        },
        scale.repeats,
    )
    ours, theirs = len(photos) / seconds["ours"], len(photos) / seconds["clip"]
    name = f"image preprocessing/s, {len(photos)} JPEG photos"
    return [Row(name, ours, "/s", f"clip preprocess: {theirs:.1f}/s", ours / theirs)]


def pipeline_rows(folder: Path, photo: Path, scale: Scale) -> list[Row]:
    classify = pipeline("zero-shot-image-classification", model=str(folder), trust_remote_code=True)
    rows = []
    for templates, what in ((ENSEMBLE[0], "1 template"), (list(ENSEMBLE), "10 templates")):
        first, repeated = pipeline_latency(classify, photo, templates, scale.repeats)
        name = f"zero-shot, 1 image x {LABELS_PER_CALL} labels, {what}"
        rows.append(Row(f"{name}: first call", first * 1000, "ms"))
        rows.append(
            Row(f"{name}: same labels again", repeated * 1000, "ms", "first call", repeated / first)
        )
    return rows


def pipeline_latency(classify, photo: Path, templates, repeats: int) -> tuple[float, float]:
    """Median seconds of a call with labels not seen before, and of the same call right after."""
    classify(str(photo), candidate_labels=make_labels(0), hypothesis_template=templates)
    first, repeated = [], []
    for call in range(1, repeats + 1):
        labels = make_labels(call)
        for times in (first, repeated):
            start = time.perf_counter()
            classify(str(photo), candidate_labels=labels, hypothesis_template=templates)
            times.append(time.perf_counter() - start)
    return statistics.median(first), statistics.median(repeated)


LOAD_SCRIPT = """
import json, resource, sys, time
import torch
import transformers.modeling_utils  # transformers imports lazily: count its import with the rest
from transformers import AutoModel

def peak_mb():
    # Linux carries ru_maxrss over fork and exec, so in a child of this big benchmark process it
    # starts at the parent's size; VmHWM belongs to this process's own memory map.
    try:
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

imports = peak_mb()
start = time.perf_counter()
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
loaded = time.perf_counter()
load_peak = peak_mb()
side = model.config.vision_config.image_size
with torch.inference_mode():
    model.get_text_features(torch.tensor([[2, 100, 200, 3]]))
    model.get_image_features(torch.zeros(1, 3, side, side))
used = time.perf_counter()
print(json.dumps({"load_s": loaded - start, "first_use_s": used - loaded, "imports_mb": imports,
                  "load_peak_mb": load_peak, "use_peak_mb": peak_mb()}))
"""


def loading_rows(folder: Path, scale: Scale) -> list[Row]:
    """from_pretrained in a fresh interpreter, whose peak RSS is then the loading's own.

    transformers 5 maps the safetensors file and reads weights only when they are first used, so
    the first embedding after loading is timed and measured too: that is when memory fills.
    """
    runs = [load_once(folder) for _ in range(scale.load_repeats + 1)][1:]  # first warms caches

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    imports = f"after imports: {median('imports_mb'):.0f} MB"
    return [
        Row("from_pretrained of the saved folder, fresh process", median("load_s"), "s"),
        Row("first text + image embedding after loading", median("first_use_s"), "s"),
        Row("peak resident memory after from_pretrained", median("load_peak_mb"), "MB", imports),
        Row("peak resident memory after the first embeddings", median("use_peak_mb"), "MB"),
    ]


def load_once(folder: Path) -> dict:
    command = [sys.executable, "-c", LOAD_SCRIPT, str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def int8_rows(fp32, int8, processor, texts, photos, repeats: int, tag: str) -> list[Row]:
    """int8 against float32 on the same weights: throughput per tower, and the worst cosine."""
    pixels = processor.image_processor(photos, return_tensors="pt")["pixel_values"]

    def encode(model: TurkishCLIPModel) -> torch.Tensor:
        return model.encode_text(texts, batch_size=BATCH, processor=processor)

    @torch.inference_mode()
    def embed(model: TurkishCLIPModel) -> torch.Tensor:
        return torch.nn.functional.normalize(model.embed_pixel_values(pixels), dim=-1)

    rows = []
    for tower, run, count in (("text", encode, len(texts)), ("image", embed, len(photos))):
        seconds = interleaved(
            {"fp32": lambda r=run: r(fp32), "int8": lambda r=run: r(int8)}, repeats
        )
        cosine = float((run(fp32) * run(int8)).sum(dim=-1).min())
        speed, fp32_speed = count / seconds["int8"], count / seconds["fp32"]
        rows.append(
            Row(
                f"int8 {tower} embeddings/s{tag}",
                speed,
                "/s",
                f"float32: {fp32_speed:.1f}/s",
                speed / fp32_speed,
            )
        )
        rows.append(
            Row(f"int8 {tower}, min cosine to float32 over {count} embeddings{tag}", cosine, "")
        )
    return rows


def original_rows(python: str, texts: list[str], model, ours: float, scale: Scale) -> list[Row]:
    """The original TensorFlow encode_text, run by another interpreter on the same captions."""
    text_config = model.config.text_config
    spec = {
        "texts": texts,
        "tokenizer": str(TOKENIZER_DIR),
        "sizes": {
            key: getattr(text_config, key)
            for key in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim")
        },
        "projection_dim": model.config.projection_dim,
        "batch_size": BATCH,
        "repeats": scale.repeats,
    }
    with tempfile.TemporaryDirectory() as directory:
        spec_path = Path(directory) / "spec.json"
        spec_path.write_text(json.dumps(spec, ensure_ascii=False))
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        command = [python, str(ROOT / "benchmarks" / "original_text.py"), str(spec_path)]
        done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{python} could not run the original text path:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    theirs = result["embeddings_per_second"]
    name = f"original TF text path (TensorFlow {result['tensorflow']}): embeddings/s"
    return [Row(name, theirs, "/s", f"encode_text: {ours:.1f}/s", ours / theirs)]


def training_rows(scale: Scale) -> list[Row]:
    size = "full-size" if scale is FULL else "tiny"
    speed = training_samples_per_second(scale.config, BATCH, steps=scale.repeats)
    return [Row(f"training samples/s, {size} student, batch {BATCH}", speed, "/s")]


# Table

FORMATS = {"/s": "{:.1f}/s", "ms": "{:.0f} ms", "s": "{:.3f} s", "MB": "{:.0f} MB", "": "{:.5f}"}
FORMATS["%"] = "{:.0f}%"


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


# Main


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    scale = QUICK if args.quick else FULL
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        rows = measure(scale, Path(directory), args.original_python)
    print_table(rows, header(scale))
    load_after = os.getloadavg()[0]
    print(f"\n1-minute load average before / after: {load_before:.2f} / {load_after:.2f}")
    return rows


def measure(scale: Scale, directory: Path, original_python: str | None) -> list[Row]:
    model, processor = build_model(scale), build_processor(scale)
    texts = make_captions(scale.texts)
    photos_dir = directory / "photos"
    photos_dir.mkdir()
    photos = make_photos(photos_dir, scale)
    rows = text_rows(model, processor, texts, scale)
    if original_python:
        rows += original_rows(original_python, texts, model, rows[0].value, scale)
    rows += image_model_rows(model, build_openai_clip(scale), scale)
    rows += preprocessing_rows(processor, photos, scale)
    folder = save_model_folder(model, processor, directory / "model")
    rows += pipeline_rows(folder, photos[0], scale)
    rows += loading_rows(folder, scale)
    int8 = TurkishCLIPModel.from_pretrained(folder, int8=True).eval()
    rows += int8_rows(model, int8, processor, texts, photos, scale.repeats, "")
    from benchmarks.onnx import onnx_rows  # it imports this module, so not at the top

    rows += onnx_rows(folder, model, int8, processor, texts, scale)
    del model, int8
    tiny = build_model(QUICK)
    tiny_int8 = copy.deepcopy(tiny).quantize_int8()
    tiny_rows = int8_rows(tiny, tiny_int8, build_processor(QUICK), texts, photos, 1, ", tiny")
    rows += [row for row in tiny_rows if "cosine" in row.name]
    return rows + training_rows(scale)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, few runs: a smoke test")
    parser.add_argument(
        "--original-python",
        metavar="PATH",
        help="interpreter of an environment with transformers<5 and TensorFlow "
        "(benchmarks/make_original_env.sh makes one): adds the original TF text path",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
