"""Convert the original Turkish CLIP into one verified model folder, and publish that folder.

    python hub_upload.py convert --output DIR [--text-model ID_OR_DIR] [--head PATH_OR_URL]
                                 [--clip NAME_OR_PATH] [--force]
    python hub_upload.py push DIR --repo-id NAMESPACE/NAME [--private] [--revision BRANCH]
                              [--dry-run]

`convert` reads the three original checkpoints (see convert_checkpoints.py), writes the folder to
a hidden staging folder beside DIR, loads it back the way users will (`AutoModel` and
`AutoProcessor` with remote code) and compares it with the original libraries' own arithmetic.
Only a folder that passes is moved to DIR, so a DIR that exists is always complete and verified.

`push` uploads a finished folder as it is, after loading it once more: the files users download
are exactly the files that were checked.

Exit status: 0 on success, 1 on a failure (with a one-line message), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import huggingface_hub
import numpy as np
import torch
from huggingface_hub import errors as hub_errors
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects
from PIL import Image
from safetensors import safe_open
from turkish_clip.processing import MAX_TOKENS

import convert_checkpoints as cc
from model_card import model_card
from turkish_clip import (
    TurkishCLIPConfig,
    TurkishCLIPImageProcessor,
    TurkishCLIPModel,
    TurkishCLIPProcessor,
    save_model_folder,
)

TOLERANCE = 1e-5
# Copies involve no arithmetic, so anything but exact equality is a bug.
EXACT = 0.0
# Anything that could carry weights besides safetensors; pickle formats run code when loaded.
REFUSED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".h5", ".keras", ".pyc")
# Turkish-specific letters in both cases: a lower-casing or all-[UNK] tokenizer shows on these.
SAMPLE_TEXTS = (
    "bir kedi fotoğrafı",
    "İstanbul'da yağmurlu bir gün",
    "Işıklı, ılık bir akşamda çiçek satan çocuk",
    "sahilde bir insan ve bir heykel",
)
# Non-square sizes on both sides of the crop exercise the resize rounding and the crop offset.
IMAGE_SIZES = ((320, 240), (240, 320), (224, 224), (97, 61))
HEAD_SAMPLES = 8


class VerificationError(Exception):
    """The written folder does not reproduce the original checkpoints."""


@dataclass(frozen=True)
class Check:
    """One comparison between the written folder and an original, with its largest deviation."""

    name: str
    difference: float
    tolerance: float

    @property
    def ok(self) -> bool:
        # Written so that NaN fails.
        return self.difference <= self.tolerance


@dataclass(frozen=True)
class Sources:
    """The three sources as given on the command line, and where they sit locally."""

    text: str
    text_folder: Path
    head: str
    head_file: Path
    clip: str


# --------------------------------------------------------------------------------------------
# convert
# --------------------------------------------------------------------------------------------


def convert(output: Path, text: str, head: str, clip_source: str, force: bool) -> None:
    """Read, build, write to staging, verify, and only then move the folder to `output`."""
    _check_output(output, force)
    with tempfile.TemporaryDirectory() as tmp:
        with _naming("--head", head):
            head_file = _head_file(head, Path(tmp))
            head_weights = cc.read_projection_head(head_file)
        print(f"head        {head}: Dense {head_weights[0].shape[1]} -> {head_weights[0].shape[0]}")
        with _naming("--text-model", text):
            text_folder = _text_folder(text)
            text_state, text_config = cc.read_text_tower(text_folder)
        print(
            f"text tower  {text}: DistilBERT, {text_config['n_layers']} layers, "
            f"dim {text_config['dim']}, {len(text_state)} tensors"
        )
        with _naming("--clip", clip_source):
            vision_state, vision_config, logit_scale = cc.read_clip_vision(clip_source)
        print(
            f"image tower {clip_source}: ViT, {vision_config['num_hidden_layers']} layers, "
            f"{vision_config['image_size']} px, patch {vision_config['patch_size']}"
        )
        state = cc.assemble_state_dict(text_state, head_weights, vision_state, logit_scale)
        config = TurkishCLIPConfig(
            text_config=text_config,
            vision_config=vision_config,
            projection_dim=int(head_weights[0].shape[0]),
            logit_scale_init_value=float(logit_scale),
        )
        model = TurkishCLIPModel(config).float().eval()
        model.load_state_dict(state, strict=True)
        sources = Sources(text, text_folder, head, head_file, clip_source)
        processor = build_processor(sources.text_folder, vision_config["image_size"])
        _write_verified(model, processor, output, sources, text_state)


@contextlib.contextmanager
def _naming(flag: str, source: str) -> Iterator[None]:
    """Make a failure while reading a source name it as typed: a network error or a file in a
    temporary folder would otherwise not say which of the three sources failed."""
    try:
        yield
    except (ValueError, OSError, RuntimeError, hub_errors.HTTPError) as error:
        message = str(error)
        if source in message:
            raise
        kind = ValueError if isinstance(error, ValueError) else OSError
        raise kind(f"{flag} {source}: {type(error).__name__}: {message}") from error


def _write_verified(
    model: TurkishCLIPModel,
    processor: TurkishCLIPProcessor,
    output: Path,
    sources: Sources,
    text_state: dict[str, torch.Tensor],
) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.staging-", dir=output.parent))
    try:
        save_model_folder(model, processor, staging)
        _match_umask(staging)
        checks = verify(staging, sources, text_state)
        logit_scale_exp = model.logit_scale.exp().item()
        print_checks(checks)
        print(f"  exp(logit_scale) = {logit_scale_exp:.4f}")
        failed = [check.name for check in checks if not check.ok]
        if failed:
            raise VerificationError(f"verification failed: {'; '.join(failed)}")
        # The card carries the figures, which exist only once the staged folder was loaded.
        (staging / "README.md").write_text(
            model_card(sources, model.config, checks, logit_scale_exp), encoding="utf-8"
        )
        check_weight_files(staging)
        _move_into_place(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = upload_listing(output)
    print(f"wrote {output} ({len(files)} files, {_size(sum(size for _, size in files))})")


def _check_output(output: Path, force: bool) -> None:
    """Refuse early what would be refused at the end, before minutes of reading checkpoints."""
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{output} exists and is not a folder")
    if not output.is_dir() or not any(output.iterdir()):
        return
    if not force:
        raise FileExistsError(f"{output} exists and is not empty; pass --force to replace it")
    # --force deletes the folder: a mistyped --output (the checkout, a home folder) must not be.
    if not (output / "config.json").is_file() or (output / ".git").exists():
        raise FileExistsError(
            f"refusing to replace {output}: it does not look like a model folder (no config.json, "
            "or a .git inside); remove it yourself if it should go"
        )


def _match_umask(folder: Path) -> None:
    """mkdtemp makes owner-only folders; the finished one should read like any other."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.glob("**/*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _move_into_place(staging: Path, output: Path) -> None:
    """Two renames, so `output` is at every moment either the old folder or the new one."""
    if not output.exists():
        staging.rename(output)
        return
    old = staging.with_name(staging.name.replace(".staging-", ".old-"))
    output.rename(old)
    try:
        staging.rename(output)
    except BaseException:
        old.rename(output)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _text_folder(source: str) -> Path:
    """A local folder as is; a Hub id is fetched once and used for both weights and tokenizer."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"--text-model {source}: not a folder")
    return Path(huggingface_hub.snapshot_download(source, allow_patterns=cc.TEXT_ALLOW_PATTERNS))


def _head_file(source: str, tmp: Path) -> Path:
    """A local file as is; a URL is downloaded once, so the verification reads the same bytes."""
    if source.startswith(("http://", "https://")):
        local = tmp / "clip_head.h5"
        cc.download_file(source, local)
        return local
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"--head {source}: no such file")
    return path


def build_processor(text_folder: Path, image_size: int) -> TurkishCLIPProcessor:
    """The source's own tokenizer and CLIP's image preprocessing at the tower's size."""
    image_processor = TurkishCLIPImageProcessor(size=image_size, crop_size=image_size)
    return TurkishCLIPProcessor(
        image_processor=image_processor, tokenizer=source_tokenizer(text_folder)
    )


def source_tokenizer(text_folder: Path):
    """Cased (Turkish I/ı and İ/i differ), and fast, so that tokenizer.json is written."""
    from transformers import DistilBertTokenizerFast

    # from_pretrained, never the constructor: in transformers 5 `DistilBertTokenizer(vocab_file=)`
    # silently maps every word to [UNK].
    return DistilBertTokenizerFast.from_pretrained(
        text_folder, do_lower_case=False, model_max_length=MAX_TOKENS
    )


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def verify(folder: Path, sources: Sources, text_state: dict[str, torch.Tensor]) -> list[Check]:
    """Load `folder` as users will and compare each part with its original.

    The references are independent of the conversion code where an independent one exists: the
    image tower against OpenAI's `clip` itself, the head against the h5 file read afresh. The text
    tower has no PyTorch original, so its tensors must equal what the reader produced (its mapping
    is tested against TensorFlow's outputs in tests/test_convert_checkpoints.py).
    """
    import clip  # slow import (torchvision), needed only here

    model, processor = load_folder(folder)
    clip_model, preprocess = clip.load(sources.clip, device="cpu", jit=False)
    clip_model = clip_model.float().eval()
    return [
        _check_images(model, processor, clip_model, preprocess),
        _check_head(model, sources.head_file),
        _check_text_tower(model, text_state),
        _check_tokenizer(processor, sources.text_folder),
        Check(
            "logit_scale vs clip's",
            abs(model.logit_scale.item() - clip_model.logit_scale.item()),
            EXACT,
        ),
    ]


def load_folder(folder: Path) -> tuple[torch.nn.Module, TurkishCLIPProcessor]:
    """Load with the auto classes and run one tiny forward; any failure means "does not load"."""
    from transformers import AutoModel, AutoProcessor

    try:
        model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True)
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        inputs = processor(text=[SAMPLE_TEXTS[0]], images=[_sample_images()[0]])
        with torch.inference_mode():
            logits = model(**inputs).logits_per_image
        with safe_open(folder / "model.safetensors", framework="pt") as weights:
            saved = set(weights.keys())
    # Whatever a broken folder makes transformers raise, the answer is the same: it does not load.
    except Exception as error:
        raise VerificationError(
            f"{folder} does not load: {type(error).__name__}: {error}"
        ) from None
    # A parameter missing from the file would load as random initial values, with a mere warning.
    expected = set(model.state_dict())
    if saved != expected:
        raise VerificationError(
            f"{folder}: model.safetensors lacks {sorted(expected - saved)} "
            f"and has unused {sorted(saved - expected)}"
        )
    if not torch.isfinite(logits).all():
        raise VerificationError(f"{folder} loads but its forward gives non-finite logits")
    return model, processor


def _sample_images() -> list[Image.Image]:
    """Fixed noisy gradients: every pixel differs, so a shifted crop changes the embedding."""
    rng = np.random.default_rng(0)
    images = []
    for width, height in IMAGE_SIZES:
        ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
        noisy = ramp * 0.5 + rng.integers(0, 128, (height, width, 3))
        images.append(Image.fromarray(noisy.clip(0, 255).astype(np.uint8), "RGB"))
    return images


def _check_images(model, processor, clip_model, preprocess) -> Check:
    images = _sample_images()
    ours = model.encode_image(images, processor=processor, normalize=True)
    with torch.inference_mode():
        theirs = clip_model.encode_image(torch.stack([preprocess(image) for image in images]))
    theirs = torch.nn.functional.normalize(theirs.float(), dim=-1)
    return Check(
        f"image embeddings vs clip's encode_image ({len(images)} images)",
        _max_abs(ours, theirs),
        TOLERANCE,
    )


def _check_head(model, head_file: Path) -> Check:
    """The model's text projection against `x @ kernel + bias`, as Keras' Dense computes it."""
    kernel, bias = _h5_dense(head_file)
    x = np.random.default_rng(1).standard_normal((HEAD_SAMPLES, kernel.shape[0]))
    expected = x @ kernel.astype(np.float64) + bias.astype(np.float64)
    with torch.inference_mode():
        found = model.text_projection(torch.from_numpy(x).float())
    return Check(
        f"head vs h5 x @ kernel + bias ({HEAD_SAMPLES} inputs)",
        _max_abs(found.double(), torch.from_numpy(expected)),
        TOLERANCE,
    )


def _h5_dense(head_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """The one kernel and one bias in the file, found by name alone (no Keras config parsing)."""
    found: dict[str, list[np.ndarray]] = {"kernel:0": [], "bias:0": []}

    def visit(name: str, item: h5py.HLObject) -> None:
        leaf = name.rsplit("/", 1)[-1]
        if isinstance(item, h5py.Dataset) and leaf in found:
            found[leaf].append(np.asarray(item[()]))

    with h5py.File(head_file, "r") as h5:
        h5["model_weights"].visititems(visit)
    if len(found["kernel:0"]) != 1 or len(found["bias:0"]) != 1:
        raise ValueError(f"{head_file}: expected one kernel and one bias")
    return found["kernel:0"][0], found["bias:0"][0]


def _check_text_tower(model, text_state: dict[str, torch.Tensor]) -> Check:
    loaded = model.text_model.state_dict()
    name = f"text tower tensors vs source ({len(text_state)} tensors)"
    if loaded.keys() != text_state.keys():
        return Check(
            name + f": names differ {sorted(loaded.keys() ^ text_state.keys())}", math.inf, EXACT
        )
    difference = max(_max_abs(loaded[key], text_state[key]) for key in text_state)
    return Check(name, difference, EXACT)


def _check_tokenizer(processor: TurkishCLIPProcessor, text_folder: Path) -> Check:
    """Token ids of the saved tokenizer against the source folder's; the figure is the count of
    texts whose ids differ."""
    source, saved = source_tokenizer(text_folder), processor.tokenizer
    differing = sum(saved(text)["input_ids"] != source(text)["input_ids"] for text in SAMPLE_TEXTS)
    return Check(f"tokenizer: texts whose ids differ (of {len(SAMPLE_TEXTS)})", differing, EXACT)


def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def print_checks(checks: list[Check]) -> None:
    print(f"verification (tolerance {TOLERANCE:g}; copies exact)     max |difference|")
    for check in checks:
        print(f"  {check.name:<56} {check.difference:<10.3g} {_verdict(check)}")


def _verdict(check: Check) -> str:
    return "ok" if check.ok else f"FAILED (tolerance {check.tolerance:g})"


def check_weight_files(folder: Path) -> None:
    """Weights only as model.safetensors: refuse anything that could be unpickled or executed."""
    refused = sorted(
        path.relative_to(folder).as_posix()
        for path in folder.glob("**/*")
        if path.is_file() and path.suffix.lower() in REFUSED_SUFFIXES
    )
    if refused:
        raise ValueError(
            f"{folder} holds {', '.join(refused)}: only model.safetensors may carry weights"
        )
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder} has no model.safetensors")


# --------------------------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------------------------


def upload_listing(folder: Path) -> list[tuple[str, int]]:
    """(path in repo, size) of each file `upload_folder` would send, with its own ignore rules."""
    files = {
        path.relative_to(folder).as_posix(): path
        for path in sorted(folder.glob("**/*"))
        if path.is_file()
    }
    kept = filter_repo_objects(files, ignore_patterns=DEFAULT_IGNORE_PATTERNS)
    return [(name, files[name].stat().st_size) for name in kept]


def push(folder: Path, repo_id: str, private: bool, revision: str | None, dry_run: bool) -> None:
    """Upload a finished folder: one HfApi, create_repo(exist_ok=True), upload_folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    check_weight_files(folder)
    load_folder(folder)
    files = upload_listing(folder)
    where = f"{repo_id} (branch {revision or 'main'}{', private if new' if private else ''})"
    if dry_run:
        total = _size(sum(size for _, size in files))
        print(f"dry run: would upload {len(files)} files ({total}) to {where}")
        for name, size in files:
            print(f"  {size:>12,}  {name}")
        return
    token = huggingface_hub.get_token()
    if not token:
        raise PermissionError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = huggingface_hub.HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
        commit = api.upload_folder(
            folder_path=folder,
            repo_id=repo_id,
            repo_type="model",
            revision=revision,
            commit_message="Upload Turkish CLIP converted by hub_upload.py",
        )
    except (hub_errors.HTTPError, OSError, ValueError) as error:
        message = str(error).replace(token, "***")
        raise OSError(
            f"upload to {where} failed: {type(error).__name__}: {message}. Check that the token "
            f"has write access to {repo_id.split('/')[0]}, that the repo id is right and that "
            "huggingface.co is reachable, then run push again (it uploads only what changed)"
        ) from None
    print(f"uploaded {len(files)} files to {where}: {getattr(commit, 'commit_url', commit)}")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _repo_id(value: str) -> str:
    """argparse type: NAMESPACE/NAME, checked locally so a typo is a usage error (exit 2)."""
    try:
        huggingface_hub.utils.validate_repo_id(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if value.count("/") != 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAMESPACE/NAME")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub_upload.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    convert_cmd = commands.add_parser("convert", help="write a verified model folder")
    convert_cmd.add_argument("--output", required=True, type=Path, metavar="DIR")
    convert_cmd.add_argument(
        "--text-model",
        default=cc.DEFAULT_TEXT_SOURCE,
        metavar="ID_OR_DIR",
        help="Hub id or local folder of the TensorFlow DistilBERT (default: %(default)s)",
    )
    convert_cmd.add_argument(
        "--head",
        default=cc.DEFAULT_HEAD_URL,
        metavar="PATH_OR_URL",
        help="clip_head.h5, local or a URL (default: %(default)s)",
    )
    convert_cmd.add_argument(
        "--clip",
        default=cc.DEFAULT_VISION_SOURCE,
        metavar="NAME_OR_PATH",
        help="OpenAI clip model name or archive path (default: %(default)s)",
    )
    convert_cmd.add_argument(
        "--force", action="store_true", help="replace a non-empty DIR once the new folder verified"
    )
    push_cmd = commands.add_parser("push", help="upload a model folder to the Hub")
    push_cmd.add_argument("folder", type=Path, metavar="DIR")
    push_cmd.add_argument("--repo-id", required=True, type=_repo_id, metavar="NAMESPACE/NAME")
    push_cmd.add_argument(
        "--private",
        action="store_true",
        help="create the repo private (an existing repo keeps its visibility)",
    )
    push_cmd.add_argument("--revision", metavar="BRANCH", help="branch to upload to (created)")
    push_cmd.add_argument(
        "--dry-run", action="store_true", help="check and list the files; needs no token"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from transformers.utils import logging as transformers_logging

    args = _parser().parse_args(argv)
    # transformers' per-tensor "Loading weights" bars would bury the figures and the one-line
    # error; download bars (huggingface_hub, clip) stay, as real downloads take minutes.
    bars_were_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        if args.command == "convert":
            convert(args.output, args.text_model, args.head, args.clip, args.force)
        else:
            push(args.folder, args.repo_id, args.private, args.revision, args.dry_run)
    except (ValueError, OSError, RuntimeError, VerificationError) as error:
        # One line: readers' multi-problem listings are joined rather than cut.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        print(f"error: {'; '.join(lines)}", file=sys.stderr)
        return 1
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()
    return 0


if __name__ == "__main__":
    sys.exit(main())
