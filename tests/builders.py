"""Builders of tiny Turkish CLIP models for tests: random weights, real file formats."""

import json
from pathlib import Path

import torch

from turkish_clip import (
    MODEL_FILES,
    TurkishCLIPConfig,
    TurkishCLIPImageProcessor,
    TurkishCLIPModel,
    TurkishCLIPProcessor,
    save_model_folder,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TOKENIZER_DIR = FIXTURES / "tf_distilbert"
IMAGE_SIZE = 32


def tiny_config(**overrides) -> TurkishCLIPConfig:
    """Two-layer towers, 16-dimensional embeddings, the fixture's 468-token Turkish vocabulary."""
    values = dict(
        text_config=dict(
            vocab_size=468,
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=512,
        ),
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=IMAGE_SIZE,
            patch_size=8,
            projection_dim=16,
        ),
        projection_dim=16,
    )
    values.update(overrides)
    return TurkishCLIPConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> TurkishCLIPModel:
    torch.manual_seed(seed)
    return TurkishCLIPModel(tiny_config(**overrides)).eval()


def tiny_processor() -> TurkishCLIPProcessor:
    from transformers import DistilBertTokenizerFast

    tokenizer = DistilBertTokenizerFast.from_pretrained(TOKENIZER_DIR)
    image_processor = TurkishCLIPImageProcessor(size=IMAGE_SIZE, crop_size=IMAGE_SIZE)
    return TurkishCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def save_tiny_model_folder(directory: Path, seed: int = 0, **overrides) -> Path:
    """A complete model folder, as the converter writes it, holding a tiny random model."""
    return save_model_folder(tiny_model(seed, **overrides), tiny_processor(), directory)


def replace_model_code(folder: Path, marker: Path) -> Path:
    """Replaces every code file of a model folder by code that writes `marker` and raises, as a
    shared folder or a moved Hub repository could: a loader that runs the folder's code leaves
    `marker` behind."""
    code = (
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text(__name__)\n"
        "raise RuntimeError('code from the model folder ran')\n"
    )
    for name in MODEL_FILES:
        (folder / name).write_text(code)
    return folder


def retype_model_folder(folder: Path, model_type: str, marker: Path) -> Path:
    """Makes a model folder of another type, whose own code works and writes `marker` when run:
    a model that can only be loaded with trust_remote_code."""
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = model_type
    config_path.write_text(json.dumps(config))
    code_path = folder / "configuration_turkish_clip.py"
    code = code_path.read_text().replace(
        'model_type = "turkish_clip"', f"model_type = {model_type!r}"
    )
    code_path.write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n{code}")
    return folder


def noise_image(path: Path, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """A PNG of random pixels (width, height): unlike solid colours, the random model tells such
    images clearly apart."""
    import numpy as np
    from PIL import Image

    width, height = size
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


# Training: an English CLIP teacher, a Turkish encoder to swap in, and parallel captions.

COLOURS = {"white": "beyaz", "black": "siyah", "red": "kırmızı", "blue": "mavi", "green": "yeşil"}
COLOURS |= {"yellow": "sarı", "orange": "turuncu", "purple": "mor", "grey": "gri", "pink": "pembe"}
NOUNS = {"cat": "kedi", "dog": "köpek", "horse": "at", "bird": "kuş", "cow": "inek"}
NOUNS |= {"sheep": "koyun", "elephant": "fil", "giraffe": "zürafa", "bear": "ayı", "fish": "balık"}
NOUNS |= {"car": "araba", "bus": "otobüs", "train": "tren", "plane": "uçak", "boat": "tekne"}


def parallel_captions() -> list[tuple[str, str]]:
    """150 English captions ("red cat") with their Turkish translations ("kırmızı kedi"), in a
    fixed shuffled order; every Turkish word is a whole token of the fixture vocabulary."""
    import random

    pairs = [
        (f"{colour} {noun}", f"{renk} {ad}")
        for colour, renk in COLOURS.items()
        for noun, ad in NOUNS.items()
    ]
    random.Random(0).shuffle(pairs)
    return pairs


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{en}\t{tr}\n" for en, tr in pairs), encoding="utf-8")
    return path


def clip_tokenizer(directory: Path):
    """OpenAI CLIP's tokenizer as transformers saves it, made from the BPE table that the `clip`
    package ships (the same vocabulary and merges as openai/clip-vit-base-patch32's)."""
    import json
    import warnings

    from transformers import CLIPTokenizerFast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # clip imports pkg_resources
        from clip.simple_tokenizer import SimpleTokenizer

    bpe = SimpleTokenizer()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(bpe.encoder), encoding="utf-8")
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    lines = "".join(f"{first} {second}\n" for first, second in merges)
    (directory / "merges.txt").write_text("#version: 0.2\n" + lines, encoding="utf-8")
    return CLIPTokenizerFast(str(directory / "vocab.json"), str(directory / "merges.txt"))


def save_tiny_teacher(directory: Path, seed: int = 0) -> Path:
    """A tiny random transformers CLIP with OpenAI's real tokenizer, saved as a folder."""
    from transformers import CLIPConfig, CLIPModel

    text = dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    text |= dict(num_attention_heads=2, max_position_embeddings=32)
    text |= dict(bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, image_size=32)
    vision |= dict(num_attention_heads=2, patch_size=16)
    torch.manual_seed(seed)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    # A random tower's output at the end token is mostly that token's own embedding and its
    # position, so every caption would embed nearly alike; without them, the words decide it.
    with torch.no_grad():
        model.text_model.embeddings.position_embedding.weight.zero_()
        model.text_model.embeddings.token_embedding.weight[49406:].zero_()
    model.save_pretrained(directory)
    tokenizer = clip_tokenizer(directory)
    tokenizer.model_max_length = 32
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_bert(directory: Path, seed: int = 0) -> Path:
    """A tiny random BERT encoder with the fixture's Turkish vocabulary, saved as a folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    sizes = dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)
    config = BertConfig(vocab_size=468, **sizes)
    BertModel(config).save_pretrained(directory)
    tokenizer = BertTokenizerFast(str(TOKENIZER_DIR / "vocab.txt"), do_lower_case=False)
    tokenizer.save_pretrained(directory)
    return directory


def photo_like(width: int, height: int, seed: int = 0):
    """An RGB PIL image that decodes like a photo: smooth colour fields plus fine sensor-like noise
    (a JPEG of it at quality 90 is as costly to decode per pixel as a camera's)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), np.uint8)
    smooth = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noisy = np.asarray(smooth, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8))


def sequential_rows(model, paths: list[Path], batch_size: int, reduced: bool = False):
    """The engine's result computed one stage after the other, as the index did before decoding
    and the model overlapped: each run of `batch_size` paths decoded, then its readable images
    embedded in one call."""
    import numpy as np

    from search.embedding import prepare_image

    processor = model.processor.image_processor
    rows, kept, failures, retry, warnings = [], [], {}, {}, []
    for start in range(0, len(paths), batch_size):
        arrays = []
        for position in range(start, min(start + batch_size, len(paths))):
            pixels, reason, transient = prepare_image(paths[position], processor, reduced)
            if pixels is None:
                (retry if transient else failures)[position] = reason
                warnings.append(
                    f"skipped: {reason}" + (" (tried again next run)" if transient else "")
                )
                continue
            arrays.append(pixels)
            kept.append(position)
        if arrays:
            with torch.inference_mode():
                features = model.embed_pixel_values(torch.from_numpy(np.stack(arrays)))
            rows.append(torch.nn.functional.normalize(features.float(), dim=-1).numpy())
    return np.concatenate(rows), kept, failures, retry, warnings
