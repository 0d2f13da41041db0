"""Build the Turkish caption corpus: English captions machine-translated into Turkish pairs.

    python dataset.py translate --input captions_train2017.json --output pairs.tsv \\
        --eval-output eval.tsv --eval-fraction 0.05

The pairs (`english<TAB>turkish`) are what `train.py --train` reads. A run that is stopped
continues where it stopped when started again with the same command. The work happens in
`translation/`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parallel.ray_pool import RayResourcesError, RayRunError
from terminal.arguments import HelpFormatter, non_negative_float, number_in, positive_int
from translation.errors import TranslationError
from translation.readers import DEFAULT_COLUMN
from translation.translator import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TRANSLATOR


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as stop:  # --help, or argparse's one-line usage error
        return int(stop.code or 0)
    try:
        return run_translate(args)
    except RayRunError as error:
        print(f"error: {_one_line(error)}; run the same command again to resume", file=sys.stderr)
    except RayResourcesError as error:
        print(f"error: {_one_line(error)} (lower --gpus-per-worker)", file=sys.stderr)
    except (ValueError, OSError, ImportError) as error:  # TranslationError is a ValueError
        print(f"error: {_one_line(error)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    return 1


def run_translate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from translation.corpus import CorpusOptions, LocalEngine, translate_corpus
    from translation.readers import CaptionInput
    from translation.translator import Translator, TranslatorSettings

    if (args.eval_output is None) != (args.eval_fraction is None):
        raise TranslationError("--eval-output and --eval-fraction go together")
    if args.engine != "ray" and (args.ray_address or args.gpus_per_worker is not None):
        raise TranslationError("--ray-address and --gpus-per-worker need --engine ray")
    output = Path(args.output)
    settings = TranslatorSettings(
        model=args.model,
        revision=args.revision,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens,
        source_lang=args.source_lang,
        target_lang=args.target_lang,
    )
    options = CorpusOptions(
        input=CaptionInput(args.input, args.column, args.split),
        output=output,
        rejects=Path(args.rejects) if args.rejects else output.with_suffix(".rejects.tsv"),
        translator=settings,
        eval_output=Path(args.eval_output) if args.eval_output else None,
        eval_fraction=args.eval_fraction or 0.0,
        batch_size=args.batch_size,
    )

    def make_engine():
        if args.engine == "ray":
            try:
                from translation.ray_engine import RayEngine
            except ImportError as error:
                raise TranslationError(
                    f"--engine ray needs Ray Data ({error}): pip install 'ray[data]'"
                ) from None
            return RayEngine(settings, args.ray_address, args.gpus_per_worker)
        return LocalEngine(Translator(settings))

    _quiet_libraries(args.quiet)
    bar = tqdm(
        unit="captions",
        disable=args.quiet or not sys.stderr.isatty(),
        file=sys.stderr,
        dynamic_ncols=True,
    )
    with bar:

        def set_total(count: int) -> None:
            bar.total = count
            bar.refresh()

        counts, resumed_at = translate_corpus(options, make_engine, bar.update, set_total)
    if resumed_at:
        print(f"resumed after {resumed_at} captions written by an earlier run", file=sys.stderr)
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.reasons.items()))
    print(
        f"{counts.read} lines read, {counts.translated} translated, {counts.reused} reused, "
        f"{counts.rejected} rejected" + (f" ({reasons}; see {options.rejects})" if reasons else "")
    )
    kept = counts.read - counts.rejected
    where = f"{kept - counts.eval} pairs in {output}"
    if options.eval_output:
        where += f", {counts.eval} in {options.eval_output}"
    print(where)
    return 0


def _quiet_libraries(quiet: bool) -> None:
    """Library warnings go; their progress bars (model downloads) stay for interactive runs."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging

    logging.set_verbosity_error()
    if quiet or not sys.stderr.isatty():
        logging.disable_progress_bar()
        disable_progress_bars()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataset.py",
        description=__doc__.splitlines()[0],
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    translate = commands.add_parser(
        "translate",
        help="translate English captions into english<TAB>turkish pairs",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    data = translate.add_argument_group("data")
    data.add_argument(
        "--input",
        required=True,
        help="COCO captions json, text file (a caption a line), TSV with a header or JSONL "
        "(--column), datasets folder or Hub dataset id",
    )
    data.add_argument("--output", required=True, help="pairs file to write (english<TAB>turkish)")
    data.add_argument(
        "--column",
        default=DEFAULT_COLUMN,
        help="caption column of a TSV, JSONL or dataset",
    )
    data.add_argument("--split", default="train", help="split of a dataset")
    data.add_argument("--eval-output", metavar="FILE", help="evaluation pairs file")
    data.add_argument(
        "--eval-fraction",
        type=number_in(0, 1, low_open=True, high_open=True, what="a fraction"),
        metavar="F",
        help="about this fraction of the images (COCO) or captions goes to --eval-output",
    )
    data.add_argument(
        "--rejects",
        metavar="FILE",
        help="rejected translations (default: OUTPUT with suffix .rejects.tsv)",
    )
    model = translate.add_argument_group("translator")
    model.add_argument(
        "--model",
        default=DEFAULT_TRANSLATOR,
        help=f"transformers seq2seq checkpoint: Marian, NLLB-200, M2M100 ({DEFAULT_TRANSLATOR})",
    )
    model.add_argument("--revision", help="Hub branch, tag or commit of --model")
    model.add_argument(
        "--num-beams", type=positive_int, metavar="N", help="default: the checkpoint's own"
    )
    model.add_argument(
        "--max-new-tokens",
        type=positive_int,
        default=DEFAULT_MAX_NEW_TOKENS,
        metavar="N",
        help="longest translation, in tokens",
    )
    model.add_argument(
        "--batch-size", type=positive_int, default=32, metavar="N", help="captions per batch"
    )
    model.add_argument("--source-lang", metavar="L", help="NLLB/M2M100 source code (eng_Latn / en)")
    model.add_argument("--target-lang", metavar="L", help="NLLB/M2M100 target code (tur_Latn / tr)")
    engine = translate.add_argument_group("engine")
    engine.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="translate in this process or with Ray Data on several GPUs or a cluster",
    )
    engine.add_argument("--ray-address", metavar="ADDRESS", help="join this Ray cluster")
    engine.add_argument(
        "--gpus-per-worker",
        type=non_negative_float,
        metavar="G",
        help="GPUs per translating worker (default: 1 where the cluster has GPUs, else 0)",
    )
    translate.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    for command in commands.choices.values():
        command.formatter_class = HelpFormatter
    return parser


if __name__ == "__main__":
    sys.exit(main())
