"""Convert the original Turkish CLIP into one verified model folder, and publish that folder.

    python hub_upload.py convert --output DIR [--text-model ID_OR_DIR] [--head PATH_OR_URL]
                                 [--clip NAME_OR_PATH] [--force]
                                 [--onnx [--int8]]
    python hub_upload.py export-onnx DIR [--int8]
    python hub_upload.py push DIR --repo-id NAMESPACE/NAME [--public] [--revision BRANCH]
                              [--include PATTERN ...] [--dry-run]

`convert` reads the three original checkpoints (see conversion/checkpoints.py), writes the folder to
a hidden staging folder beside DIR, loads it back the way users will (`AutoModel` and
`AutoProcessor` with remote code) and compares it with the original libraries' own arithmetic.
Only a folder that passes is moved to DIR, so a DIR that exists is always complete and verified.
With `--onnx`, the staged folder also gets its ONNX export (see conversion/onnx_export.py).

`export-onnx` adds `onnx/text_model.onnx` and `onnx/vision_model.onnx` (and with `--int8` their
int8 versions) to a finished folder, each verified with onnxruntime against the torch model before
it is kept, and puts the figures into the folder's model card.

`push` uploads a finished folder as it is, after loading it once more: the files users download
are exactly the files that were checked. Only the files a model folder is made of go (see
conversion/publishing.py), plus those named with --include; hidden files never go, and a new
repository is private unless --public is given.

Exit status: 0 on success, 1 on a failure (with a one-line message), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from conversion import staging
from conversion.defaults import DEFAULT_HEAD_URL, DEFAULT_TEXT_SOURCE, DEFAULT_VISION_SOURCE
from conversion.errors import OnnxExportError, VerificationError
from terminal.arguments import HelpFormatter

# torch, transformers and the conversion modules that use them are imported inside the commands,
# after the arguments are checked: `--help` and a mistyped path answer at once.


def convert(
    output: Path,
    text: str,
    head: str,
    clip_source: str,
    force: bool,
    onnx: bool = False,
    int8: bool = False,
) -> None:
    """Read, build, write to staging, verify, and only then move the folder to `output`."""
    if int8 and not onnx:
        raise ValueError("--int8 quantises the ONNX export: pass it with --onnx")
    staging.check_output(output, force)
    from conversion.sources import read_original

    with tempfile.TemporaryDirectory() as tmp:
        original = read_original(text, head, clip_source, Path(tmp))
        _write_verified(original, output, onnx, int8)


def export_onnx_files(folder: Path, int8: bool) -> None:
    """Export into an existing folder and update its model card's ONNX section."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    from conversion.model_card import with_onnx_section
    from conversion.onnx_export import ONNX_DIR, export_onnx
    from turkish_clip import TurkishCLIPConfig

    checks = export_onnx(folder, int8)
    card = folder / "README.md"
    if card.is_file():
        size = TurkishCLIPConfig.from_pretrained(folder).vision_config.image_size
        staging.write_text_atomic(card, with_onnx_section(card.read_text("utf-8"), checks, size))
    print(f"wrote {', '.join(f'{ONNX_DIR}/{check.file}' for check in checks)} in {folder}")


def _write_verified(original, output: Path, onnx: bool, int8: bool) -> None:
    from conversion.model_card import model_card
    from conversion.onnx_export import export_onnx
    from conversion.publishing import plan_upload, size_text
    from conversion.verification import check_weight_files, print_checks, verify
    from turkish_clip import save_model_folder

    output.parent.mkdir(parents=True, exist_ok=True)
    staging.sweep_staging_folders(output.parent, f".{output.name}.staging-")
    folder = staging.make_staging_folder(output.parent, f".{output.name}.staging-")
    try:
        save_model_folder(original.model, original.processor, folder)
        staging.match_umask(folder)
        checks = verify(folder, original.sources, original.text_state)
        logit_scale_exp = original.model.logit_scale.exp().item()
        print_checks(checks)
        print(f"  exp(logit_scale) = {logit_scale_exp:.4f}")
        failed = [check.name for check in checks if not check.ok]
        if failed:
            raise VerificationError(f"verification failed: {'; '.join(failed)}")
        # The card carries the figures, which exist only once the staged folder was loaded.
        onnx_checks = export_onnx(folder, int8) if onnx else None
        config = original.model.config
        card = model_card(original.sources, config, checks, logit_scale_exp, onnx_checks)
        (folder / "README.md").write_text(card, encoding="utf-8")
        check_weight_files(folder)
        staging.move_into_place(folder, output)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    plan = plan_upload(output)
    print(f"wrote {output} ({len(plan.files)} files, {size_text(plan.total_size)})")


def push(
    folder: Path,
    repo_id: str,
    public: bool,
    revision: str | None,
    dry_run: bool,
    include: Sequence[str] = (),
) -> None:
    """Check the folder, load it once more, list what goes, then upload exactly that."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    from conversion.onnx_export import (
        ONNX_DIR,
        TEXT_FILE,
        TEXT_INT8_FILE,
        VISION_FILE,
        VISION_INT8_FILE,
    )
    from conversion.onnx_record import check_record
    from conversion.publishing import check_plan, plan_upload, publish, size_text
    from conversion.verification import check_weight_files, load_folder

    plan = plan_upload(folder, include)
    check_plan(plan, folder, include)
    check_weight_files(folder)
    load_folder(folder)
    tower_files = (TEXT_FILE, VISION_FILE, TEXT_INT8_FILE, VISION_INT8_FILE)
    exported = [name for name in tower_files if (folder / ONNX_DIR / name).is_file()]
    if exported:  # the ONNX backend would refuse files of other weights: so does push
        again = f"export them again with `python hub_upload.py export-onnx {folder}`"
        check_record(folder, exported, again)
    visibility = "public" if public else "private"
    where = f"{repo_id} (branch {revision or 'main'}, {visibility} if new)"
    if plan.hidden:
        print(f"left out (hidden files never go): {', '.join(plan.hidden)}")
    if dry_run:
        print(
            f"dry run: would upload {len(plan.files)} files ({size_text(plan.total_size)})"
            f" to {where}"
        )
        for name, _, size in plan.files:
            print(f"  {size:>12,}  {name}")
        return
    url = publish(plan, repo_id, not public, revision, where)
    print(f"uploaded {len(plan.files)} files to {where}: {url}")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _repo_id(value: str) -> str:
    """argparse type: NAMESPACE/NAME, checked locally so a typo is a usage error (exit 2)."""
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if value.count("/") != 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAMESPACE/NAME")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hub_upload.py", description=__doc__.split("\n")[0], formatter_class=HelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    convert_cmd = commands.add_parser("convert", help="write a verified model folder")
    convert_cmd.add_argument(
        "--output", required=True, type=Path, metavar="DIR", help="the model folder to write"
    )
    convert_cmd.add_argument(
        "--text-model",
        default=DEFAULT_TEXT_SOURCE,
        metavar="ID_OR_DIR",
        help="Hub id or local folder of the TensorFlow DistilBERT (default: %(default)s)",
    )
    convert_cmd.add_argument(
        "--head",
        default=DEFAULT_HEAD_URL,
        metavar="PATH_OR_URL",
        help="clip_head.h5, local or a URL (default: %(default)s)",
    )
    convert_cmd.add_argument(
        "--clip",
        default=DEFAULT_VISION_SOURCE,
        metavar="NAME_OR_PATH",
        help="OpenAI clip model name or archive path (default: %(default)s)",
    )
    convert_cmd.add_argument(
        "--force", action="store_true", help="replace a non-empty DIR once the new folder verified"
    )
    convert_cmd.add_argument(
        "--onnx", action="store_true", help="also export both towers to ONNX (onnx/), verified"
    )
    convert_cmd.add_argument(
        "--int8", action="store_true", help="with --onnx: also the int8 quantised ONNX files"
    )
    export_cmd = commands.add_parser(
        "export-onnx", help="add verified ONNX files of both towers to a model folder"
    )
    export_cmd.add_argument("folder", type=Path, metavar="DIR")
    export_cmd.add_argument(
        "--int8", action="store_true", help="also onnxruntime's dynamic int8 quantisation"
    )
    push_cmd = commands.add_parser("push", help="upload a model folder to the Hub")
    push_cmd.add_argument("folder", type=Path, metavar="DIR")
    push_cmd.add_argument(
        "--repo-id",
        required=True,
        type=_repo_id,
        metavar="NAMESPACE/NAME",
        help="the Hub repository to upload to",
    )
    visibility = push_cmd.add_mutually_exclusive_group()
    visibility.add_argument(
        "--public",
        action="store_true",
        help="create a new repo public (default: private; an existing repo keeps its visibility)",
    )
    visibility.add_argument(
        "--private", action="store_true", help="create a new repo private (the default)"
    )
    push_cmd.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="PATTERN",
        help="also upload files matching PATTERN (repeatable; `*` stays within one folder, "
        "`**` spans folders); hidden files never go",
    )
    push_cmd.add_argument("--revision", metavar="BRANCH", help="branch to upload to (created)")
    push_cmd.add_argument(
        "--dry-run", action="store_true", help="check and list the files; needs no token"
    )
    for command in commands.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        folder = getattr(args, "folder", None)  # export-onnx and push: checked before any import
        if folder is not None and not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder")
        with _quiet_loading_bars(), _cleanup_on_sigterm():
            _run(args)
    except (ValueError, OSError, RuntimeError, VerificationError, OnnxExportError) as error:
        # One line: readers' multi-problem listings are joined rather than cut.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        print(f"error: {'; '.join(lines)}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _quiet_loading_bars() -> Iterator[None]:
    """transformers' per-tensor "Loading weights" bars would bury the figures and the one-line
    error; download bars (huggingface_hub, clip) stay, as real downloads take minutes."""
    from transformers.utils import logging as transformers_logging

    bars_were_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars_were_on:
            transformers_logging.enable_progress_bar()


@contextlib.contextmanager
def _cleanup_on_sigterm() -> Iterator[None]:
    """`kill` (SIGTERM) ends the command through its `finally` blocks, which remove staging
    folders, instead of on the spot; SIGKILL cannot be caught, and the next export sweeps what
    it leaves (see conversion/onnx_export.py)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> None:
    if args.command == "convert":
        convert(
            args.output,
            args.text_model,
            args.head,
            args.clip,
            args.force,
            args.onnx,
            args.int8,
        )
    elif args.command == "export-onnx":
        export_onnx_files(args.folder, args.int8)
    else:
        push(
            args.folder,
            args.repo_id,
            args.public,
            args.revision,
            args.dry_run,
            args.include,
        )


if __name__ == "__main__":
    sys.exit(main())
