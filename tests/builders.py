"""Builders of tiny Turkish CLIP models for tests: random weights, real file formats."""

import json
import re
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


def tiny_student(seed: int = 0, **overrides) -> TurkishCLIPModel:
    """`tiny_model(seed)` with every text-side tensor changed and the image side untouched, as
    distillation with a frozen image tower leaves a student."""
    from search.fingerprint import is_image_side

    model = tiny_model(seed, **overrides)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not is_image_side(name) and tensor.is_floating_point():
                tensor.add_(0.01)
    return model


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
        # As in save_tiny_teacher: the words, not the positions and end tokens, decide. Large
        # word embeddings also keep the 60-odd pads the text tower reads from drowning the words.
        model.text_model.embeddings.position_embedding.weight.zero_()
        model.text_model.embeddings.token_embedding.weight.mul_(20)[49406:].zero_()
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


# Photo libraries: EXIF written by Pillow, and smooth pictures whose near-copies stay near.

EXIF_IFD, MAKE, MODEL, DATE_TIME_ORIGINAL = 0x8769, 0x010F, 0x0110, 0x9003


def smooth_image(seed: int, size: tuple[int, int] = (320, 240)):
    """A picture of smooth colour gradients (6x8 random colours, upscaled): unlike noise, it
    stays itself when resized, re-encoded or lightly cropped."""
    import numpy as np
    from PIL import Image

    small = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.BICUBIC)


def exif_photo(
    path: Path,
    seed: int,
    taken: str | None = None,
    make: str | None = None,
    model: str | None = None,
) -> Path:
    """A JPEG (or PNG, by suffix) with EXIF DateTimeOriginal ("2021:06:01 12:00:00"), Make and
    Model where given."""
    from PIL import Image

    exif = Image.Exif()
    if make is not None:
        exif[MAKE] = make
    if model is not None:
        exif[MODEL] = model
    if taken is not None:
        exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = taken
    path.parent.mkdir(parents=True, exist_ok=True)
    smooth_image(seed).save(path, exif=exif)
    return path


SIGLIP_LOGIT_SCALE = 2.3  # ln 10, about SigLIP's trained temperature
SIGLIP_LOGIT_BIAS = -1.5  # not SigLIP's -10: the random tiny model's scores then spread out


def save_tiny_siglip_teacher(directory: Path, seed: int = 0, image_size: int = IMAGE_SIZE) -> Path:
    """A tiny random transformers SiglipModel (24-wide image tower, patch 8) with OpenAI CLIP's
    tokenizer standing in for SigLIP's, and its image processor settings, saved as a folder."""
    from transformers import SiglipConfig, SiglipModel

    text = dict(vocab_size=49408, hidden_size=32, intermediate_size=64, num_hidden_layers=1)
    text |= dict(num_attention_heads=2, max_position_embeddings=64, projection_size=24)
    text |= dict(bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
    vision = dict(hidden_size=24, intermediate_size=48, num_hidden_layers=2, image_size=32)
    vision |= dict(num_attention_heads=2, patch_size=8)
    torch.manual_seed(seed)
    model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
    with torch.no_grad():
        for param in model.parameters():  # away from initial zeros and ones
            param.add_(0.02 * torch.randn(param.shape))
        model.logit_scale.fill_(SIGLIP_LOGIT_SCALE)
        model.logit_bias.fill_(SIGLIP_LOGIT_BIAS)
        # As in save_tiny_teacher: the words, not the positions and end tokens, decide. Large
        # word embeddings also keep the 60-odd pads the text tower reads from drowning the words.
        model.text_model.embeddings.position_embedding.weight.zero_()
        model.text_model.embeddings.token_embedding.weight.mul_(20)[49406:].zero_()
    model.save_pretrained(directory)
    tokenizer = clip_tokenizer(directory)
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(directory)
    # As SigLIP's tokenizer: no attention mask, so the text tower reads the pads too.
    settings_path = directory / "tokenizer_config.json"
    settings = json.loads(settings_path.read_text())
    settings["model_input_names"] = ["input_ids"]
    settings_path.write_text(json.dumps(settings))
    _siglip_image_processor(image_size).save_pretrained(directory)
    return directory


def _siglip_image_processor(size: int):
    """transformers' SigLIP image processor: the PIL one (transformers 5 names it ...Pil)."""
    try:
        from transformers.models.siglip.image_processing_pil_siglip import (
            SiglipImageProcessorPil as SiglipImageProcessor,
        )
    except ImportError:  # transformers 4: SiglipImageProcessor is the PIL one
        from transformers import SiglipImageProcessor
    return SiglipImageProcessor(size={"height": size, "width": size})


def siglip_image_processor(size: int = IMAGE_SIZE):
    """transformers' own SigLIP image processor (PIL), for parity tests."""
    return _siglip_image_processor(size)


# A Turkish CLIP with a SigLIP image tower (16 wide: no projection, so projection_dim is 16).
TINY_SIGLIP_VISION = dict(
    model_type="siglip_vision_model",
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=IMAGE_SIZE,
    patch_size=8,
)


def tiny_siglip_model(seed: int = 0, **overrides) -> TurkishCLIPModel:
    """`tiny_model` with a SigLIP tower, `logit_scale` ln 10 and `logit_bias` SIGLIP_LOGIT_BIAS."""
    values = dict(vision_config=TINY_SIGLIP_VISION, logit_scale_init_value=SIGLIP_LOGIT_SCALE)
    values |= dict(logit_bias_init_value=SIGLIP_LOGIT_BIAS)
    return tiny_model(seed, **(values | overrides))


def tiny_siglip_processor(image_size: int = IMAGE_SIZE) -> TurkishCLIPProcessor:
    """The fixture's tokenizer beside SigLIP's preprocessing: square resize, mean and std 0.5."""
    from transformers import DistilBertTokenizerFast

    tokenizer = DistilBertTokenizerFast.from_pretrained(TOKENIZER_DIR)
    image_processor = TurkishCLIPImageProcessor(
        size={"height": image_size, "width": image_size},
        do_center_crop=False,
        image_mean=0.5,
        image_std=0.5,
    )
    return TurkishCLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def save_tiny_siglip_model_folder(directory: Path, seed: int = 0, image_size: int = 32) -> Path:
    """A complete model folder holding `tiny_siglip_model` for `image_size` pixels."""
    model = tiny_siglip_model(seed, vision_config=TINY_SIGLIP_VISION | {"image_size": image_size})
    return save_model_folder(model, tiny_siglip_processor(image_size), directory)


# Translation: a tiny random Marian model with sentencepiece vocabularies trained on the spot.

ENGLISH_WORDS = [*COLOURS, *NOUNS, "a", "the", "on", "in", "with", "two", "small", "big", "runs"]
TURKISH_WORDS = [*COLOURS.values(), *NOUNS.values(), "bir", "iki", "küçük", "büyük", "koşuyor"]


def english_captions(count: int, seed: int = 0) -> list[str]:
    """`count` English captions of 3 to 8 words from the vocabulary above."""
    import random

    generator = random.Random(seed)
    return [
        " ".join(generator.choice(ENGLISH_WORDS) for _ in range(generator.randint(3, 8)))
        for _ in range(count)
    ]


def _train_sentencepiece(prefix: Path, sentences: list[str], vocab_size: int) -> Path:
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


# The sizes every tiny translator shares; init_std larger than Marian's 0.02, so that each caption
# gets a translation of its own.
TINY_TRANSLATOR = {
    "d_model": 16,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "max_position_embeddings": 64,
    "init_std": 0.3,
}


def turkish_phrases() -> list[str]:
    """One five-word Turkish phrase starting at each word of the vocabulary."""
    words = len(TURKISH_WORDS)
    return [" ".join(TURKISH_WORDS[i % words] for i in range(k, k + 5)) for k in range(words)]


def save_tiny_marian(directory: Path, seed: int = 0) -> Path:
    """A tiny random MarianMTModel with its MarianTokenizer (source.spm, target.spm, vocab.json),
    saved as a folder. Like a real model early in training, it often loops on one word."""
    import json as json_module

    import sentencepiece
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    english = english_captions(300, seed=1)
    turkish = turkish_phrases()
    source = _train_sentencepiece(directory / "src", english, 60)
    target = _train_sentencepiece(directory / "tgt", turkish * 5, 60)
    pieces = ["</s>", "<unk>"]
    for model_file in (source, target):
        processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        pieces += [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    pieces = list(dict.fromkeys(p for p in pieces if p not in ("<s>", "<pad>")))
    pieces.append("<pad>")
    vocab = {piece: index for index, piece in enumerate(pieces)}
    (directory / "vocab.json").write_text(json_module.dumps(vocab), encoding="utf-8")
    source.rename(directory / "source.spm")
    target.rename(directory / "target.spm")
    tokenizer = MarianTokenizer(
        str(directory / "source.spm"), str(directory / "target.spm"), str(directory / "vocab.json")
    )
    config = MarianConfig(
        vocab_size=len(vocab),
        **TINY_TRANSLATOR,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["<pad>"],
        forced_eos_token_id=vocab["</s>"],
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    for leftover in ("src.vocab", "tgt.vocab"):
        (directory / leftover).unlink(missing_ok=True)
    return directory


def save_tiny_m2m100(directory: Path, seed: int = 0) -> Path:
    """A tiny random M2M100ForConditionalGeneration with its M2M100Tokenizer (a sentencepiece
    model and vocab.json, the language tokens `__en__`, `__tr__`, ... after them)."""
    import json as json_module

    import sentencepiece
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    turkish = turkish_phrases()
    spm = _train_sentencepiece(directory / "spm", english_captions(300, seed=1) + turkish, 80)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm))
    pieces = ["<s>", "<pad>", "</s>", "<unk>"]
    pieces += [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    vocab = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    (directory / "vocab.json").write_text(json_module.dumps(vocab), encoding="utf-8")
    spm.rename(directory / "sentencepiece.bpe.model")
    (directory / "spm.vocab").unlink(missing_ok=True)
    tokenizer = M2M100Tokenizer(
        str(directory / "vocab.json"), str(directory / "sentencepiece.bpe.model")
    )
    languages = len(tokenizer.lang_code_to_id) + tokenizer.num_madeup_words
    config = M2M100Config(
        vocab_size=tokenizer.encoder_size + languages,  # the language tokens come after
        **TINY_TRANSLATOR,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        decoder_start_token_id=vocab["</s>"],
    )
    torch.manual_seed(seed)
    M2M100ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_nllb(directory: Path, seed: int = 0) -> Path:
    """A tiny random NLLB-200 (M2M100ForConditionalGeneration) with an NllbTokenizer of single
    characters and NLLB's 202 language codes (`eng_Latn`, `tur_Latn`, ...)."""
    import string

    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for character in "▁" + string.ascii_lowercase + "çğıöşü":
        vocab[character] = len(vocab)
    tokenizer = NllbTokenizer(vocab=vocab, merges=[], src_lang="eng_Latn")
    config = M2M100Config(
        vocab_size=len(tokenizer),
        **TINY_TRANSLATOR | {"max_position_embeddings": 128},
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(seed)
    M2M100ForConditionalGeneration(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# Photos for the indexing engine.


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


def without_backend_note(err: str) -> str:
    """A command's stderr without the line that says which backend computes."""
    notes = re.compile(r"model .*: (torch|onnxruntime) .*|embedding with (torch|onnxruntime) .*")
    return "".join(line for line in err.splitlines(True) if not notes.fullmatch(line.rstrip("\n")))


# Benchmarks' smoke runs.

CHECKOUT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str, timeout: int = 300) -> str:
    """The standard output of `python benchmarks/<script> <args>` run from the checkout; a failed
    run fails the test with both outputs."""
    import subprocess
    import sys

    command = [sys.executable, str(CHECKOUT / "benchmarks" / script), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=CHECKOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def table_rows(output: str) -> list[list[str]]:
    """The cells of each Markdown table line ("| a | b |") of a benchmark's output, stripped."""
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in output.splitlines()
        if line.startswith("| ")
    ]
