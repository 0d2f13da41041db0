"""Turkish CLIP from the command line: zero-shot classification, an on-disk image index searched
by Turkish text or by image, and zero-shot evaluation on image folders and caption files.

    python cli.py classify kedi.jpg --labels kedi köpek kuş
    python cli.py index photos/ --index photos.index
    python cli.py search "sahilde koşan bir köpek" --index photos.index
    python cli.py duplicates --index photos.index --threshold 0.95
    python cli.py evaluate --images dataset/
    python cli.py evaluate --benchmark xm3600 --data xm3600/ --language tr

torch and transformers are imported only inside the commands, so `--help` answers at once.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evaluation.benchmarks import BENCHMARKS, benchmark_result, read_benchmark, retrieval_metrics
from evaluation.inputs import read_captions, read_class_labels
from evaluation.metrics import RECALL_KS
from evaluation.zero_shot import caption_report, class_images, classification_report
from inference.loading import (
    BACKENDS,
    DEFAULT_MODEL,
    IndexModelGoneError,
    ModelChoiceError,
    ModelSpec,
    NoDefaultModelError,
    RevisionOfFolderError,
    UnpinnedCodeError,
    UntrustedCodeError,
    load_model,
    load_pipeline,
)
from parallel.ray_pool import RayResourcesError
from search.ann import (
    DEFAULT_ANN_THRESHOLD,
    PROMISED_RECALL,
    ANNError,
    NoFaissError,
    nprobe_for_recall,
    rebuild_ann,
)
from search.calibration import caption_queries_or_rows
from search.embedding import embed_images
from search.errors import (
    BadQueryError,
    EmptyIndexError,
    IndexLockedError,
    NoIndexError,
    SearchError,
    WrongFolderError,
    WrongModelError,
)
from search.file_names import name_fields
from search.filters import PhotoFilter, parse_filter
from search.fingerprint import ModelMismatchError, check_model_for_index
from search.library import PhotoLibrary
from search.ray_engine import RayRunError  # Ray itself is imported only when it runs
from search.scanning import scan_images
from search.updating import update_index
from terminal.arguments import HelpFormatter, non_negative_float, number_in, positive_int
from terminal.escaping import json_line, printable


class CLIError(Exception):
    """Bad input, reported as one line on stderr without a traceback."""


# What to do about each of the core's errors, in this command line's terms.
HINTS = {
    ModelMismatchError: "to embed every image again: `cli.py index FOLDER --index INDEX --reembed`",
    IndexModelGoneError: "name the model (moved, or any copy of it) with --model",
    RevisionOfFolderError: "drop --revision",
    UntrustedCodeError: "if you trust that code, pass --trust-remote-code with --model naming "
    "it, and --revision COMMIT_SHA for a Hub model",
    UnpinnedCodeError: "pass --revision COMMIT_SHA",
    NoDefaultModelError: "pass --model FOLDER_OR_HUB_ID",
    NoIndexError: "build one with `cli.py index FOLDER --index INDEX`",
    WrongModelError: "re-embed everything with `cli.py index FOLDER --index INDEX --reembed "
    "--model MODEL`, or use another --index folder",
    WrongFolderError: "use another --index folder",
    IndexLockedError: "try again later, or pass a longer --wait",
    NoFaissError: "or search with --exact",
    ANNError: "rebuild it with `cli.py ann --index INDEX`, or search with --exact",
    RayRunError: "finished batches are kept: run the same command again to resume",
    RayResourcesError: "lower --gpus-per-worker, or leave it out to use what the cluster has",
}


def worded(error: Exception, index: str | None = None) -> str:
    """The core's message with this command line's hint, naming the --index given."""
    for kind, hint in HINTS.items():
        if isinstance(error, kind):
            return f"{_one_line(error)} ({hint.replace('INDEX', index or 'INDEX')})"
    return _one_line(error)


# Files.


def existing_dir(path: str, what: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CLIError(
            f"{what} {path!r} is not a folder" if folder.exists() else f"{what} {path!r} not found"
        )
    return folder


def embed_image_files(
    model, paths: Sequence[Path], batch_size: int, quiet: bool, reduced_decode: bool = False
):
    """The local embedding engine (search/embedding.py) with a progress bar and warnings."""
    with _progress(len(paths), "images", quiet) as bar:
        return embed_images(
            model,
            paths,
            batch_size,
            progress=bar.update,
            warn=_warn,
            reduced_decode=reduced_decode,
        )


def embed_texts(model, texts: list[str], batch_size: int, quiet: bool) -> np.ndarray:
    chunk = batch_size * 8  # large chunks keep encode_text's length bucketing useful
    rows = []
    with _progress(len(texts), "texts", quiet) as bar:
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            rows.append(model.encode_text(part, batch_size=batch_size, return_numpy=True))
            bar.update(len(part))
    return np.concatenate(rows).astype(np.float32)


# Commands.


def run_classify(args: argparse.Namespace) -> int:
    labels = list(dict.fromkeys(label.strip() for label in args.labels))
    if not labels or not all(labels):
        raise CLIError("--labels needs at least one non-empty label")
    templates = _templates(args.template)
    pipe = load_pipeline(_spec(args))  # a model that cannot be had is refused before torch loads
    _say_backend(pipe.model)
    from turkish_clip.image_loading import load_image

    max_pixels = pipe.image_processor.max_image_pixels
    options = {"candidate_labels": labels, "top_k": args.top_k}
    if templates:
        options["hypothesis_template"] = templates
    failed = 0
    with _progress(len(args.images), "images", args.quiet) as bar:
        for source in args.images:
            try:
                image = load_image(source, max_pixels=max_pixels)
            except Exception as error:  # Pillow's decoders raise many kinds on bad input
                _warn(f"error: {_failure(source, error)}")
                failed += 1
            else:
                _print_classification(source, pipe(image, **options), args.json)
            bar.update(1)
    return 1 if failed else 0


def _print_classification(source: str, ranked: list[dict], as_json: bool) -> None:
    from tqdm import tqdm

    if as_json:
        labels = [{"label": item["label"], "score": item["score"]} for item in ranked]
        lines = [json_line({"image": source, "labels": labels})]
    else:
        lines = [printable(source)]
        lines += [f"  {item['score']:7.2%}  {printable(item['label'])}" for item in ranked]
    tqdm.write("\n".join(lines), file=sys.stdout)  # above the progress bar, not through it
    sys.stdout.flush()  # results stream to a pipe as they come


def run_index(args: argparse.Namespace) -> int:
    if args.engine != "ray" and (args.ray_address or args.gpus_per_worker is not None):
        raise CLIError("--ray-address and --gpus-per-worker need --engine ray")
    root = existing_dir(args.folder, "image folder").resolve()
    folder = Path(args.index).expanduser()
    engine = _engine(args)
    with _progress(None, "images", args.quiet) as bar:
        summary = update_index(
            folder,
            root,
            _spec(args),
            engine,
            reembed=args.reembed,
            wait=args.wait,
            warn=_warn,
            progress=lambda images: _advance(bar, images),
            ann_threshold=args.ann_threshold,
        )
    if summary.up_to_date:
        print(f"{printable(folder)}: {summary.images} images, up to date")
        return 0
    retry = f", {summary.retry} to retry" if summary.retry else ""
    described = f", dates and cameras read for {summary.described}" if summary.described else ""
    print(
        f"{printable(folder)}: {summary.images} images ({summary.added} added, "
        f"{summary.updated} updated, {summary.removed} removed, {summary.unchanged} unchanged, "
        f"{summary.unreadable} unreadable{retry}{described})"
    )
    return 0


def _engine(args: argparse.Namespace):
    from search.engines import LocalEngine, RayEngine

    if args.engine == "local":
        fast = not args.exact_decode
        return LocalEngine(args.batch_size, {"reduced_decode": fast}, fastest_path=fast)
    try:
        import ray.data  # noqa: F401
    except ImportError as error:
        raise CLIError(f"--engine ray needs Ray Data ({error}): pip install 'ray[data]'") from None
    return RayEngine(args.batch_size, args.ray_address, args.gpus_per_worker, not args.exact_decode)


def _advance(bar, images: int) -> None:
    # A count without a total: the update decides what to embed only once it holds the lock.
    bar.update(images)


def run_search(args: argparse.Namespace) -> int:
    if sum(given is not None for given in (args.query, args.image, args.queries)) != 1:
        raise CLIError("give one of: a text query, --image PATH, --queries FILE")
    queries = _read_queries(args.queries) if args.queries is not None else None
    photo_filter = _photo_filter(args)
    library = _open_library(args, use_ann=not args.exact)
    exact, nprobe = _breadth(args, library)
    if queries is not None:
        vectors = embed_texts(library.model, queries, 32, args.quiet)
    elif args.image is None:
        vectors = library.query(text=args.query)[None]
    else:
        from turkish_clip.image_loading import load_image

        vectors = library.query(image=load_image(args.image, max_pixels=library.max_pixels))[None]
    found = library.photos().search_many(
        vectors, args.top_k, photo_filter, args.min_score, exact, nprobe
    )
    for number, hits in enumerate(found):
        ranked = [{"rank": rank, **library.result_fields(hit)} for rank, hit in enumerate(hits, 1)]
        _print_results(queries[number] if queries is not None else None, ranked, args.json)
    return 0


def _breadth(args: argparse.Namespace, library: PhotoLibrary) -> tuple[bool, int | None]:
    """(exact, nprobe) from --exact, --recall and --nprobe and the index's structure."""
    meta = library.photos().meta
    has_ann = "ann" in meta
    if args.nprobe is not None and not has_ann:
        _warn(f"warning: index {args.index} has no approximate structure: --nprobe is not used")
    nprobe = args.nprobe
    if has_ann and args.recall is not None:  # None: calibration never reached it; exact search
        nprobe = nprobe_for_recall(meta["ann"], args.recall)
    exact = args.exact or not has_ann or (args.recall is not None and nprobe is None)
    return exact, nprobe


def _open_library(args: argparse.Namespace, use_ann: bool = True) -> PhotoLibrary:
    folder = Path(args.index).expanduser()
    library = PhotoLibrary.load(_spec(args), folder, use_ann=use_ann)
    _say_backend(library.model)
    if not library.photos().files:
        raise EmptyIndexError(f"index {folder} is empty")
    return library


def _photo_filter(args: argparse.Namespace) -> PhotoFilter:
    values = {name: getattr(args, name) for name in ("taken_after", "taken_before", "camera")}
    values |= {"folder": args.folder, "type": args.type}
    try:
        return parse_filter(values)
    except BadQueryError as error:
        raise CLIError(f"--{_one_line(error).replace('_', '-', 1)}") from None


def _print_results(query: str | None, ranked: list[dict], as_json: bool) -> None:
    """One JSON line per query (--queries), one per result (--json), or aligned text."""
    if query is not None:
        print(json_line({"query": query, "results": ranked}))
    elif as_json:
        for result in ranked:
            print(json_line(result))
    else:
        for result in ranked:
            print(f"{result['rank']:3d}  {result['score']:.4f}  {printable(result['path'])}")


def _read_queries(name: str) -> list[str]:
    """One Turkish query per line; blank lines are skipped."""
    path = Path(name).expanduser()
    try:
        # Only newlines end a query: a U+2028 inside one is part of it. A BOM is not.
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except FileNotFoundError:
        raise CLIError(f"queries file {name!r} not found") from None
    except UnicodeDecodeError:
        raise CLIError(f"queries file {name!r} is not UTF-8 text") from None
    queries = [line.strip() for line in lines if line.strip()]
    if not queries:
        raise CLIError(f"queries file {name!r} holds no query")
    return queries


def run_ann(args: argparse.Namespace) -> int:
    folder = Path(args.index).expanduser()

    def queries(meta: dict) -> np.ndarray | None:
        """Text embeddings of the built-in captions, from the index's model (or --model)."""
        from inference.loading import spec_for_index

        try:
            model = load_model(spec_for_index(_spec(args), meta))
        except (OSError, ValueError) as error:
            if args.model is not None:
                raise
            _warn(
                f"warning: the index's model cannot be loaded ({_one_line(error)}): the structure "
                "is calibrated on the index's own rows, not on text queries; name the model with "
                "--model to calibrate on text"
            )
            return None
        check_model_for_index(str(folder), meta, model, model.processor)
        return caption_queries_or_rows(model, _warn)

    entry = rebuild_ann(folder, args.wait, _warn, queries)
    calibrated = (
        f"{entry['queries']} Turkish captions"
        if entry.get("calibration") == "captions"
        else "its own rows"
    )
    print(
        f"{printable(folder)}: {entry['kind']} over {entry['rows']} rows, {entry['lists']} lists, "
        f"{entry['nprobe']} searched per query (recall@10 {entry['recall']:.3f} on {calibrated})"
    )
    return 0


def run_duplicates(args: argparse.Namespace) -> int:
    """Groups of near-copies, each photo with its size and date so a person can choose which to
    keep; nothing is deleted. Needs no model: the index's own rows are compared."""
    from search.photo_index import PhotoIndex

    folder = Path(args.index).expanduser()
    index = PhotoIndex.open(folder, use_ann=not args.exact)
    groups = index.duplicates(args.threshold, exact=args.exact)
    root = index.root
    for number, group in enumerate(groups, 1):
        photos = [
            {**name_fields(str(root / photo.path)), "size": photo.size, "taken": photo.taken}
            | {"score": photo.score}
            for photo in group.photos
        ]
        if args.json:
            print(json_line({"group": number, "photos": photos}))
            continue
        print(f"group {number}: {len(photos)} photos")
        for photo in photos:
            taken = photo["taken"] or "-"
            print(
                f"  {photo['score']:.4f}  {photo['size']:>12,} bytes  {taken:19s}  "
                f"{printable(photo['path'])}"
            )
    if not args.json:
        print(f"{len(groups)} groups of near-duplicates at threshold {args.threshold:g}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if args.benchmark is None and (args.data is not None or args.language is not None):
        raise CLIError("--data and --language go with --benchmark")
    if args.benchmark is not None:
        return _evaluate_benchmark(args)
    if args.images is not None:
        return _evaluate_folder(args)
    return _evaluate_captions(args)


def _evaluate_benchmark(args: argparse.Namespace) -> int:
    """Recall@k both ways on XM3600 or XTD10, in CLIP_benchmark's result layout."""
    from evaluation.model_cards import contamination_warning

    if args.data is None:
        raise CLIError(f"--benchmark {args.benchmark} needs --data DIR, the benchmark's folder")
    if args.template:
        raise CLIError("--template applies to --images (class labels), not to --benchmark")
    root = existing_dir(args.data, "benchmark folder")
    language = args.language or "tr"
    found = read_benchmark(args.benchmark, root, language)
    if found.missing:
        total = len(found.missing) + len(found.images)
        _warn(
            f"warning: {len(found.missing)} of {total} images are missing from {root / 'images'} "
            f"and are skipped with their captions (first: {found.missing[0]})"
        )
    if not found.images:
        raise CLIError(f"none of the images of {root} are there")
    spec = _spec(args).resolved()
    warning = contamination_warning(args.benchmark, spec.source, args.revision)
    if warning:
        _warn(warning)
    model = load_model(spec)
    _say_backend(model)
    embedded = embed_image_files(model, found.images, args.batch_size, args.quiet)
    unreadable = len(found.images) - len(embedded.kept)
    if unreadable:
        _warn(f"warning: {unreadable} images could not be read and are skipped")
    if not embedded.kept:
        raise CLIError(f"none of the images of {root} could be read")
    captions = [found.captions[index] for index in embedded.kept]
    text_embeds = embed_texts(model, captions, args.batch_size, args.quiet)
    metrics = retrieval_metrics(text_embeds, embedded.embeddings)
    result = benchmark_result(args.benchmark, args.model or DEFAULT_MODEL, language, metrics)
    if args.json:
        print(json_line(result))
        return 0
    print(f"{args.benchmark} ({language}): {len(captions)} images, one caption each")
    print(f"{'':14s}" + "".join(f"{f'R@{k}':>8s}" for k in RECALL_KS))
    for name, key in (("text -> image", "image_retrieval"), ("image -> text", "text_retrieval")):
        cells = "".join(f"{metrics[f'{key}_recall@{k}']:8.1%}" for k in RECALL_KS)
        print(f"{name:14s}{cells}")
    return 0


def _evaluate_folder(args: argparse.Namespace) -> int:
    from turkish_clip import TURKISH_TEMPLATES

    root = existing_dir(args.images, "dataset folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise CLIError(f"{root} needs at least two class subfolders, found {len(folders)}")
    labels = read_class_labels(root, folders)
    ensemble = _templates(args.template) or TURKISH_TEMPLATES
    paths, targets = class_images(root, folders, scan_images)
    if not paths:
        raise CLIError(f"no images in the class folders of {root}")
    model = _load_named_model(args)
    embedded = embed_image_files(model, paths, args.batch_size, args.quiet)
    if not embedded.kept:
        raise CLIError(f"none of the {len(paths)} images in {root} could be read")
    report = {"dataset": str(root)} | classification_report(
        model,
        embedded.embeddings,
        np.asarray(targets)[embedded.kept],
        folders,
        [labels[name] for name in folders],
        ensemble,
        args.batch_size,
    )
    report["unreadable"] = list({**embedded.failures, **embedded.retry}.values())
    if args.json:
        print(json_line(report))
    else:
        _print_accuracy(report)
    return 0


def _print_accuracy(report: dict) -> None:
    single, ensemble, k = report["single"], report["ensemble"], report["k"]
    shown = f"{printable(report['dataset'])}: {report['images']} images"
    print(f"{shown}, {report['classes']} classes")
    rows = [("1 template", single), (f"{len(ensemble['templates'])} templates", ensemble)]
    print(f"{'':14s} {'top-1':>7s} {f'top-{k}':>7s}")
    for name, result in rows:
        print(f"{name:14s} {result['top1']:7.1%} {result['topk']:7.1%}")
    print("\nper class (top-1: 1 template / ensemble)")
    labels = [printable(entry["label"]) for entry in single["per_class"]]
    width = max(len(label) for label in labels)
    for label, one, many in zip(labels, single["per_class"], ensemble["per_class"]):
        print(
            f"  {label:{width}s} {one['images']:5d} images  {_percent(one['top1'])} / "
            f"{_percent(many['top1'])}"
        )
    if ensemble["confusions"]:
        print("\nmost frequent confusions (ensemble: true -> predicted)")
        for entry in ensemble["confusions"]:
            pair = f"{printable(entry['true'])} -> {printable(entry['predicted'])}"
            print(f"  {entry['count']:5d}  {pair}")


def _percent(value: float | None) -> str:
    return "    -" if value is None else f"{value:6.1%}"


def _evaluate_captions(args: argparse.Namespace) -> int:
    pairs = read_captions(Path(args.captions).expanduser())
    images = list(dict.fromkeys(path for path, _ in pairs))
    model = _load_named_model(args)
    embedded = embed_image_files(model, images, args.batch_size, args.quiet)
    if not embedded.kept:
        raise CLIError(f"none of the {len(images)} images in {args.captions} could be read")
    report = caption_report(
        images,
        embedded.kept,
        embedded.embeddings,
        pairs,
        lambda captions: embed_texts(model, captions, args.batch_size, args.quiet),
    )
    report["unreadable"] = list({**embedded.failures, **embedded.retry}.values())
    if args.json:
        print(json_line(report))
        return 0
    print(f"{printable(args.captions)}: {report['captions']} captions, {report['images']} images")
    print(f"{'':14s}" + "".join(f"{f'R@{k}':>8s}" for k in RECALL_KS))
    for name, key in (("text -> image", "text_to_image"), ("image -> text", "image_to_text")):
        print(f"{name:14s}" + "".join(f"{value:8.1%}" for value in report[key].values()))
    return 0


def _load_named_model(args: argparse.Namespace):
    model = load_model(_spec(args).resolved())
    _say_backend(model)
    return model


def _say_backend(model) -> None:
    """Once per run, before any result: which backend computes (onnxruntime or torch, int8)."""
    from inference.embedding_model import backend_name

    _warn(f"model {getattr(model, 'name_or_path', '')}: {backend_name(model)}")


def _spec(args: argparse.Namespace) -> ModelSpec:
    """The model the command line names: --model (None: an index's own, else the default),
    --revision, --backend, --int8 and --trust-remote-code."""
    return ModelSpec(args.model, args.revision, args.backend, args.int8, args.trust_remote_code)


def _templates(templates: list[str] | None) -> tuple[str, ...]:
    if not templates:
        return ()
    from turkish_clip.configuration_turkish_clip import check_templates

    return check_templates(templates)


# Output helpers.


def _progress(total: int | None, unit: str, quiet: bool):
    from tqdm import tqdm

    disable = quiet or (total is not None and total < 2) or not sys.stderr.isatty()
    return tqdm(total=total, unit=unit, disable=disable, file=sys.stderr, leave=False)


def _warn(message: str) -> None:
    from tqdm import tqdm

    # Above a running progress bar, not through it; messages name files, so escaped.
    tqdm.write(printable(message), file=sys.stderr)


def _failure(path: object, error: Exception) -> str:
    message = _one_line(error)
    return message if str(path) in message else f"{path}: {message}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _quiet_libraries(quiet: bool) -> None:
    """Library warnings go; their progress bars stay for interactive runs (model downloads)."""
    from huggingface_hub.utils import disable_progress_bars
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging

    logging.set_verbosity_error()
    hub_logging.set_verbosity_error()  # its retry notices would bury the one-line error
    if quiet or not sys.stderr.isatty():
        logging.disable_progress_bar()
        disable_progress_bars()


# Arguments.


def _check_trust(args: argparse.Namespace) -> None:
    """Code is trusted only for a model the user names: an index's meta.json must not choose it."""
    if getattr(args, "trust_remote_code", False) and args.model is None:
        raise CLIError(
            "--trust-remote-code needs --model naming the folder or Hub id whose code you trust "
            "(the default model and an index's model never get it by default)"
        )


def _seconds(text: str) -> float:
    return non_negative_float(text, "a number of seconds")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        help=f"model folder or Hub id (default {DEFAULT_MODEL!r}, or an existing index's model)",
    )
    common.add_argument("--revision", help="Hub branch, tag or commit of --model")
    common.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the code of a model that is not of type turkish_clip (from the Hub, only at a "
        "--revision commit sha); Turkish CLIP models never need it",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument(
        "--backend",
        choices=BACKENDS,
        help="onnx: onnxruntime on the model's onnx/ files (`hub_upload.py export-onnx`); "
        "default: onnx on a CPU where the model folder has them, else torch",
    )
    common.add_argument(
        "--int8",
        action="store_true",
        help="int8 CPU inference (torch's int8 layers, or onnx/*_quantized.onnx)",
    )
    templates = argparse.ArgumentParser(add_help=False)
    templates.add_argument(
        "--template",
        action="extend",
        nargs="+",
        metavar="T",
        help="prompt template(s) with one {} for the label; several are ensembled",
    )
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument(
        "--batch-size", type=positive_int, default=32, metavar="N", help="images per model call"
    )

    parser = argparse.ArgumentParser(
        prog="cli.py", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser(
        "classify", parents=[common, templates], help="zero-shot labels for images"
    )
    classify.add_argument("images", nargs="+", metavar="IMAGE", help="image files or URLs")
    classify.add_argument("--labels", nargs="+", required=True, help="Turkish candidate labels")
    classify.add_argument("--top-k", type=positive_int, metavar="K", help="labels shown per image")
    classify.add_argument("--json", action="store_true", help="one JSON object per image")
    classify.set_defaults(run=run_classify)

    index = commands.add_parser(
        "index", parents=[common, batch], help="embed a folder of images, or update its index"
    )
    index.add_argument("folder", metavar="FOLDER")
    index.add_argument("--index", required=True, metavar="DIR", help="index folder")
    index.add_argument(
        "--reembed",
        action="store_true",
        help="embed every image again, with this --model (after the model changed)",
    )
    index.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for another update of the same index to finish",
    )
    index.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="embed in this process or with Ray Data, locally or on a cluster",
    )
    index.add_argument(
        "--ray-address", metavar="ADDRESS", help="join this Ray cluster (default: a local Ray)"
    )
    index.add_argument(
        "--gpus-per-worker",
        type=non_negative_float,
        metavar="G",
        help="GPUs per embedding worker (default: 1 where the cluster has GPUs, else 0)",
    )
    index.add_argument(
        "--ann-threshold",
        type=positive_int,
        default=DEFAULT_ANN_THRESHOLD,
        metavar="ROWS",
        help="build an approximate search structure from this many rows on",
    )
    index.add_argument(
        "--exact-decode",
        action="store_true",
        help="decode every pixel of large JPEGs and embed in float32 (on --backend, where given), "
        "as indexes were made before these speed-ups, bit for bit (default: a reduced DCT scale "
        "that keeps the shorter side at least twice the model's input, and the fastest image "
        "path that stays exact enough: docs/indexing-speed.md)",
    )
    index.set_defaults(run=run_index)

    search = commands.add_parser(
        "search", parents=[common], help="images of an index most similar to a text or an image"
    )
    search.add_argument("query", nargs="?", help="Turkish text")
    search.add_argument("--image", metavar="PATH", help="search by this image instead")
    search.add_argument("--index", required=True, metavar="DIR", help="index folder")
    search.add_argument(
        "--top-k", type=positive_int, default=10, metavar="K", help="results per query"
    )
    search.add_argument("--json", action="store_true", help="one JSON object per result")
    search.add_argument(
        "--queries", metavar="FILE", help="one Turkish query per line; prints JSON lines"
    )
    breadth = search.add_mutually_exclusive_group()
    breadth.add_argument(
        "--exact", action="store_true", help="exact search even where the index has a structure"
    )
    breadth.add_argument(
        "--recall",
        type=number_in(0, 1, low_open=True, what="a recall"),
        metavar="R",
        help=f"approximate search wide enough for this recall@10 (the structure's default aims "
        f"at {PROMISED_RECALL} with a margin; 1 searches exactly)",
    )
    breadth.add_argument(
        "--nprobe",
        type=positive_int,
        metavar="N",
        help="approximate search through N inverted lists per query (more: slower, more recall)",
    )
    search.add_argument(
        "--min-score",
        type=number_in(-1, 1, what="a cosine similarity"),
        metavar="S",
        help="only results at least this similar (cosine similarity, -1..1)",
    )
    filters = search.add_argument_group("filters (from what the index recorded of each photo)")
    filters.add_argument(
        "--taken-after", metavar="DATE", help="taken on or after this ISO date (EXIF, else file)"
    )
    filters.add_argument("--taken-before", metavar="DATE", help="taken before this ISO date")
    filters.add_argument(
        "--camera", metavar="TEXT", help="camera make and model contain TEXT (any case)"
    )
    filters.add_argument("--folder", metavar="SUB", help="in this folder of the indexed one")
    filters.add_argument("--type", metavar="EXT", help="file extension, e.g. jpg")
    search.set_defaults(run=run_search)

    duplicates = commands.add_parser(
        "duplicates", help="groups of near-duplicate photos in an index (nothing is deleted)"
    )
    duplicates.add_argument("--index", required=True, metavar="DIR", help="index folder")
    duplicates.add_argument(
        "--threshold",
        type=number_in(-1, 1, what="a cosine similarity"),
        default=0.95,
        metavar="T",
        help="cosine similarity from which two photos are near-copies",
    )
    duplicates.add_argument("--json", action="store_true", help="one JSON object per group")
    duplicates.add_argument(
        "--exact", action="store_true", help="compare every pair even where there is a structure"
    )
    duplicates.set_defaults(run=run_duplicates)

    ann = commands.add_parser(
        "ann", parents=[common], help="build the approximate search structure of an index"
    )
    ann.add_argument("--index", required=True, metavar="DIR", help="index folder")
    ann.add_argument(
        "--wait",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for an update of the same index to finish",
    )
    ann.set_defaults(run=run_ann)

    evaluate = commands.add_parser(
        "evaluate", parents=[common, templates, batch], help="zero-shot accuracy or recall@k"
    )
    data = evaluate.add_mutually_exclusive_group(required=True)
    data.add_argument("--images", metavar="ROOT", help="one subfolder of images per class")
    data.add_argument("--captions", metavar="FILE", help="TSV lines: image path<TAB>caption")
    data.add_argument(
        "--benchmark",
        choices=BENCHMARKS,
        help="a standard retrieval benchmark in its publisher's layout (needs --data)",
    )
    evaluate.add_argument("--data", metavar="DIR", help="the --benchmark's folder")
    evaluate.add_argument("--language", metavar="L", help="--benchmark caption language (tr)")
    evaluate.add_argument("--json", action="store_true", help="one JSON object")
    evaluate.set_defaults(run=run_evaluate)
    for command in commands.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or argparse's own one-line usage error
        return int(stop.code or 0)
    try:
        _check_trust(args)
        _quiet_libraries(getattr(args, "quiet", False))
        return args.run(args)
    except CLIError as error:
        print(f"error: {printable(error)}", file=sys.stderr)
    except (SearchError, ModelChoiceError, RayRunError, RayResourcesError) as error:
        index = getattr(args, "index", None)
        print(f"error: {printable(worded(error, index))}", file=sys.stderr)
    except (OSError, ValueError, TypeError) as error:  # from loading models and reading files
        print(f"error: {printable(_one_line(error))}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
