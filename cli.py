"""Turkish CLIP from the command line: zero-shot classification, an on-disk image index searched
by Turkish text or by image, and zero-shot evaluation on image folders and caption files.

    python cli.py classify kedi.jpg --labels kedi köpek kuş
    python cli.py index photos/ --index photos.index
    python cli.py search "sahilde koşan bir köpek" --index photos.index
    python cli.py evaluate --images dataset/

torch and transformers are imported only inside the commands, so `--help` answers at once.
"""

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

import numpy as np

# The folder that `python hub_upload.py convert --output turkish-clip` writes.
DEFAULT_MODEL = "turkish-clip"
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
INDEX_FORMAT = "turkish-clip-index"
INDEX_VERSION = 1
# Data files and the temporary files _write_atomically makes; meta.json says which are current.
INDEX_DATA_PATTERNS = (
    "embeddings.*.npy",
    "files.*.jsonl",
    ".embeddings.*.tmp",
    ".files.*.tmp",
    ".meta.json.*.tmp",
)
RECALL_KS = (1, 5, 10)
TOP_CONFUSIONS = 10


class CLIError(Exception):
    """Bad input, reported as one line on stderr without a traceback."""


# Pure computations: no model, no files.


@dataclass
class UpdatePlan:
    """What an index update does; `keep` maps each unchanged path to its row in the old index."""

    keep: dict[str, int] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    still_unreadable: list[dict] = field(default_factory=list)

    @property
    def to_embed(self) -> list[str]:
        return sorted(self.added + self.changed)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def plan_update(
    indexed: Sequence[dict],
    found: dict[str, tuple[int, int]],
    unreadable: Sequence[dict] = (),
) -> UpdatePlan:
    """Compares the index's entries with the files on disk (`path -> (size, mtime_ns)`).

    Size and modification time are what a file system gives for free; hashing every image on
    each run would cost about as much as embedding it again. Files that failed to open last time
    (`unreadable`) are tried again only once they change, so one broken file does not make every
    run reload the model and rewrite the index.
    """
    plan = UpdatePlan()
    rows = {entry["path"]: row for row, entry in enumerate(indexed)}
    failed = {entry["path"]: entry for entry in unreadable}
    for path in sorted(found):
        known = indexed[rows[path]] if path in rows else failed.get(path)
        if known is None:
            plan.added.append(path)
        elif (known["size"], known["mtime_ns"]) != found[path]:
            plan.changed.append(path)
        elif path in rows:
            plan.keep[path] = rows[path]
        else:
            plan.still_unreadable.append(known)
    plan.removed = sorted(path for path in rows if path not in found)
    return plan


def classification_metrics(logits: np.ndarray, targets: np.ndarray, k: int) -> dict:
    """Top-1 and top-k accuracy, per-class top-1 accuracy and the commonest top-1 confusions.

    `logits` is (images, classes); `targets` holds each image's class index. Classes without
    images get `None` accuracy rather than 0, so they do not read as failures.
    """
    ranked = np.argsort(-logits, axis=1, kind="stable")
    predicted = ranked[:, 0]
    correct = predicted == targets
    in_top_k = (ranked[:, :k] == targets[:, None]).any(axis=1)
    per_class = []
    for index in range(logits.shape[1]):
        mask = targets == index
        count = int(mask.sum())
        per_class.append({"images": count, "top1": float(correct[mask].mean()) if count else None})
    wrong = Counter(zip(targets[~correct].tolist(), predicted[~correct].tolist()))
    confusions = [
        {"true": int(true), "predicted": int(pred), "count": count}
        for (true, pred), count in sorted(wrong.items(), key=lambda item: (-item[1], item[0]))
    ]
    return {
        "top1": float(correct.mean()),
        "topk": float(in_top_k.mean()),
        "per_class": per_class,
        "confusions": confusions[:TOP_CONFUSIONS],
    }


def retrieval_recall(
    similarity: np.ndarray, caption_images: np.ndarray, ks: Sequence[int] = RECALL_KS
) -> dict:
    """Recall@k both ways from a (captions, images) similarity matrix.

    Caption i's positive is image `caption_images[i]`; an image's positives are all its captions,
    and it counts as found when the best of them is in the top k. A positive's rank is the number
    of candidates scoring strictly higher, so ties count in its favour.
    """
    positive = similarity[np.arange(len(caption_images)), caption_images]
    text_rank = (similarity > positive[:, None]).sum(axis=1)
    best_caption = np.full(similarity.shape[1], -np.inf)
    np.maximum.at(best_caption, caption_images, positive)
    has_caption = np.isfinite(best_caption)
    per_image = similarity.transpose()
    image_rank = (per_image > best_caption[:, None]).sum(axis=1)[has_caption]
    return {
        "text_to_image": {f"R@{k}": float((text_rank < k).mean()) for k in ks},
        "image_to_text": {f"R@{k}": float((image_rank < k).mean()) for k in ks},
    }


def top_matches(embeddings: np.ndarray, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Rows with the highest cosine similarity to `query`; both sides are L2-normalised."""
    scores = embeddings @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(row), float(scores[row])) for row in order]


def ensemble_embeddings(prompt_embeds: np.ndarray, n_labels: int) -> np.ndarray:
    """Per-label mean of normalised prompt embeddings, renormalised: the pipeline's ensembling.

    `prompt_embeds` rows are ordered label by label, each label's templates together.
    """
    mean = prompt_embeds.reshape(n_labels, -1, prompt_embeds.shape[-1]).mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


# Files: image folders, class mappings, caption files, the index.


def existing_dir(path: str, what: str) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise CLIError(
            f"{what} {path!r} is not a folder" if folder.exists() else f"{what} {path!r} not found"
        )
    return folder


def scan_images(root: Path) -> dict[str, tuple[int, int]]:
    """Image files under `root`, recursively: relative POSIX path -> (size, mtime in ns)."""
    found = {}
    for path in root.rglob("*"):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        try:
            stat = path.stat()
        except OSError:  # removed while scanning, or a dangling link
            continue
        if path.is_file():
            found[path.relative_to(root).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return found


def read_class_labels(root: Path, folders: list[str]) -> dict[str, str]:
    """Turkish label per class folder: from classes.json or classes.txt where present, else the
    folder's own name."""
    json_path, txt_path = root / "classes.json", root / "classes.txt"
    if json_path.exists() and txt_path.exists():
        raise CLIError(f"{root} has both classes.json and classes.txt; keep one")
    if json_path.exists():
        mapping = _read_json_mapping(json_path)
    elif txt_path.exists():
        mapping = _read_tsv_mapping(txt_path)
    else:
        return {folder: folder for folder in folders}
    missing = [folder for folder in folders if folder not in mapping]
    if missing:
        source = json_path if json_path.exists() else txt_path
        raise CLIError(f"{source} gives no label for folder(s): {', '.join(missing)}")
    labels = {folder: mapping[folder] for folder in folders}
    repeated = [label for label, n in Counter(labels.values()).items() if n > 1]
    if repeated:
        raise CLIError(f"several class folders share the label(s) {', '.join(repeated)}")
    return labels


def _read_json_mapping(path: Path) -> dict[str, str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CLIError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(v, str) and v.strip() for v in mapping.values()
    ):
        raise CLIError(f"{path} must be a JSON object mapping folder names to Turkish labels")
    return mapping


def _read_tsv_mapping(path: Path) -> dict[str, str]:
    mapping = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        folder, _, label = line.partition("\t")
        if not label.strip():
            raise CLIError(f"{path} line {number}: expected 'folder<TAB>label', got {line!r}")
        mapping[folder.strip()] = label.strip()
    return mapping


def read_captions(path: Path) -> list[tuple[Path, str]]:
    """(image path, caption) pairs; relative image paths are taken from the file's folder."""
    if not path.is_file():
        raise CLIError(f"caption file {str(path)!r} not found")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        image, _, caption = line.partition("\t")
        if not image.strip() or not caption.strip():
            raise CLIError(f"{path} line {number}: expected 'image<TAB>caption', got {line!r}")
        pairs.append((path.parent / image.strip(), caption.strip()))
    if not pairs:
        raise CLIError(f"{path} holds no captions")
    return pairs


@dataclass
class Index:
    meta: dict
    files: list[dict]  # one {"path", "size", "mtime_ns"} per row of `embeddings`
    embeddings: np.ndarray


def load_index(folder: Path) -> Index | None:
    """The index in `folder`, or None where there is none yet."""
    meta_path = folder / "meta.json"
    if not meta_path.exists():
        # Data files without meta.json are what a crash during the first write leaves.
        if folder.exists() and set(folder.iterdir()) - set(_data_files(folder)):
            raise CLIError(f"{folder} is not empty and holds no index (no meta.json)")
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if (meta.get("format"), meta.get("version")) != (INDEX_FORMAT, INDEX_VERSION):
            raise CLIError(f"{meta_path} is not a version {INDEX_VERSION} {INDEX_FORMAT} file")
        embeddings = np.load(folder / meta["embeddings"])
        lines = (folder / meta["files"]).read_text(encoding="utf-8").splitlines()
        files = [json.loads(line) for line in lines if line]
        consistent = embeddings.shape == (len(files), meta["dim"]) == (meta["count"], meta["dim"])
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise CLIError(f"index {folder} is damaged: {_one_line(error)}") from None
    if not consistent:
        raise CLIError(f"index {folder} is damaged: embeddings, files and meta.json disagree")
    return Index(meta=meta, files=files, embeddings=embeddings)


def save_index(folder: Path, meta: dict, files: list[dict], embeddings: np.ndarray) -> None:
    """Writes a new generation of data files, then switches meta.json to them in one rename.

    meta.json names the data files it belongs to, so a crash at any point leaves the previous
    index intact and readable; data files no meta.json names are removed afterwards.
    """
    folder.mkdir(parents=True, exist_ok=True)
    generation = meta.get("generation", 0) + 1
    meta = dict(
        meta,
        generation=generation,
        count=len(files),
        embeddings=f"embeddings.{generation}.npy",
        files=f"files.{generation}.jsonl",
    )
    lines = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in files)
    _write_atomically(folder / meta["embeddings"], lambda f: np.save(f, embeddings))
    _write_atomically(folder / meta["files"], lambda f: f.write(lines.encode("utf-8")))
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    _write_atomically(folder / "meta.json", lambda f: f.write(text.encode("utf-8")))
    for path in _data_files(folder):
        if path.name not in (meta["embeddings"], meta["files"]):
            path.unlink(missing_ok=True)


def _data_files(folder: Path) -> list[Path]:
    """Data files of any generation, and temporary files of interrupted writes."""
    return [
        path
        for path in folder.iterdir()
        if any(fnmatchcase(path.name, pattern) for pattern in INDEX_DATA_PATTERNS)
    ]


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            os.fchmod(file.fileno(), 0o644)  # mkstemp makes files private; an index is shared data
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# The model.


def model_source(name: str) -> str:
    """Local folders by absolute path, so an index stays tied to one model from any directory."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def load_model(name: str, revision: str | None):
    if name == DEFAULT_MODEL and not Path(name).exists():
        raise CLIError(
            f"model folder {DEFAULT_MODEL!r} not found: write it with `python hub_upload.py "
            f"convert --output {DEFAULT_MODEL}` or pass --model (a folder or a Hub id)"
        )
    from transformers import AutoModel

    model = AutoModel.from_pretrained(name, revision=revision, trust_remote_code=True)
    return model.to(_device()).eval()


def load_pipeline(name: str, revision: str | None):
    if name == DEFAULT_MODEL and not Path(name).exists():
        load_model(name, revision)  # raises the same helpful error
    from transformers import pipeline

    return pipeline(
        "zero-shot-image-classification",
        model=name,
        revision=revision,
        trust_remote_code=True,
        device=_device(),
    )


def choose_model(
    name: str | None, revision: str | None, meta: dict | None
) -> tuple[str, str | None]:
    """The model for an index: the one it was built with unless another is named, which is an
    error, because embeddings from two models do not share a space."""
    if meta is None:
        return model_source(name or DEFAULT_MODEL), revision
    source = model_source(name) if name is not None else meta["model"]
    if name is None and revision is None:
        revision = meta["revision"]
    if (source, revision) != (meta["model"], meta["revision"]):
        raise CLIError(
            f"the index was built with model {_model_name(meta['model'], meta['revision'])}, not "
            f"{_model_name(source, revision)}; embeddings of two models cannot be mixed "
            "(use another --index folder)"
        )
    return source, revision


def _model_name(source: str, revision: str | None) -> str:
    return f"{source}@{revision}" if revision else source


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def embed_image_files(
    model, paths: Sequence[Path], batch_size: int, quiet: bool
) -> tuple[np.ndarray, list[int], dict[int, str]]:
    """Embeddings of the readable images, the indices of those images, and the reason for each
    index that failed.

    Images are opened one by one before each batch is embedded, so one corrupt file costs only
    itself: in a large folder some files are always truncated or mislabelled.
    """
    from turkish_clip.image_loading import load_image

    max_pixels = model.processor.image_processor.max_image_pixels
    rows, kept, failures = [], [], {}
    with _progress(len(paths), "images", quiet) as bar:
        for start in range(0, len(paths), batch_size):
            images = []
            for index in range(start, min(start + batch_size, len(paths))):
                try:
                    images.append(load_image(paths[index], max_pixels=max_pixels))
                    kept.append(index)
                except Exception as error:  # Pillow's decoders raise many kinds on bad input
                    failures[index] = _failure(paths[index], error)
                    _warn(f"skipped: {failures[index]}")
            if images:
                embeds = model.encode_image(images, batch_size=len(images), return_numpy=True)
                rows.append(embeds.astype(np.float32))
            bar.update(min(batch_size, len(paths) - start))
    if not rows:
        return np.zeros((0, model.config.projection_dim), np.float32), kept, failures
    return np.concatenate(rows), kept, failures


def embed_texts(model, texts: list[str], batch_size: int, quiet: bool) -> np.ndarray:
    chunk = batch_size * 8  # large chunks keep encode_text's length bucketing useful
    rows = []
    with _progress(len(texts), "texts", quiet) as bar:
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            rows.append(model.encode_text(part, batch_size=batch_size, return_numpy=True))
            bar.update(len(part))
    return np.concatenate(rows).astype(np.float32)


def label_embeddings(
    model, labels: list[str], templates: Sequence[str], batch_size: int, quiet: bool
) -> np.ndarray:
    prompts = [template.format(label) for label in labels for template in templates]
    return ensemble_embeddings(embed_texts(model, prompts, batch_size, quiet), len(labels))


# Commands.


def run_classify(args: argparse.Namespace) -> int:
    labels = list(dict.fromkeys(label.strip() for label in args.labels))
    if not labels or not all(labels):
        raise CLIError("--labels needs at least one non-empty label")
    templates = _check_templates(args.template)
    from turkish_clip.image_loading import load_image

    pipe = load_pipeline(args.model or DEFAULT_MODEL, args.revision)
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
        lines = [json.dumps({"image": source, "labels": labels}, ensure_ascii=False)]
    else:
        lines = [source] + [f"  {item['score']:7.2%}  {item['label']}" for item in ranked]
    tqdm.write("\n".join(lines), file=sys.stdout)  # above the progress bar, not through it
    sys.stdout.flush()  # results stream to a pipe as they come


def run_index(args: argparse.Namespace) -> int:
    root = existing_dir(args.folder, "image folder").resolve()
    folder = Path(args.index).expanduser()
    old = load_index(folder)
    source, revision = choose_model(args.model, args.revision, old.meta if old else None)
    if old and old.meta["root"] != str(root):
        raise CLIError(
            f"index {folder} holds images of {old.meta['root']}, not {root} "
            "(use another --index folder)"
        )
    found = scan_images(root)
    known_unreadable = old.meta.get("unreadable", []) if old else []
    plan = plan_update(old.files if old else [], found, known_unreadable)
    for entry in plan.still_unreadable:
        _warn(f"skipped: {entry['reason']} (unchanged since the last run)")
    if old and not plan.has_changes:
        print(f"{folder}: {len(old.files)} images, up to date")  # nothing to load or write
        return 0
    model = load_model(source, revision)
    dim = model.config.projection_dim
    if old and old.meta["dim"] != dim:
        raise CLIError(f"index {folder} holds {old.meta['dim']}-dim embeddings, the model {dim}")
    new_paths = plan.to_embed
    embeds, kept, failures = embed_image_files(
        model, [root / path for path in new_paths], args.batch_size, args.quiet
    )
    files, embeddings = _merge(old, plan, [new_paths[i] for i in kept], embeds, found, dim)
    unreadable = plan.still_unreadable + [
        dict(_entry(new_paths[i], found), reason=reason) for i, reason in failures.items()
    ]
    meta = dict(old.meta) if old else {"format": INDEX_FORMAT, "version": INDEX_VERSION}
    meta.update(model=source, revision=revision, dim=dim, root=str(root))
    meta["unreadable"] = sorted(unreadable, key=lambda entry: entry["path"])
    save_index(folder, meta, files, embeddings)
    added = len(set(plan.added) & {new_paths[i] for i in kept})
    print(
        f"{folder}: {len(files)} images ({added} added, {len(kept) - added} updated, "
        f"{len(plan.removed)} removed, {len(plan.keep)} unchanged, {len(unreadable)} unreadable)"
    )
    return 0


def _merge(
    old: Index | None,
    plan: UpdatePlan,
    new_paths: list[str],
    new: np.ndarray,
    found: dict[str, tuple[int, int]],
    dim: int,
) -> tuple[list[dict], np.ndarray]:
    """Kept rows plus newly embedded ones, sorted by path so the index is deterministic.

    New entries record the size and time seen before reading, so a file rewritten while it was
    being embedded looks changed on the next run.
    """
    rows = {path: old.embeddings[row] for path, row in plan.keep.items()} if old else {}
    entries = {path: old.files[row] for path, row in plan.keep.items()} if old else {}
    for path, embedding in zip(new_paths, new):
        rows[path] = embedding
        entries[path] = _entry(path, found)
    order = sorted(entries)
    matrix = np.stack([rows[path] for path in order]) if order else np.zeros((0, dim))
    return [entries[path] for path in order], matrix.astype(np.float32)


def _entry(path: str, found: dict[str, tuple[int, int]]) -> dict:
    size, mtime_ns = found[path]
    return {"path": path, "size": size, "mtime_ns": mtime_ns}


def run_search(args: argparse.Namespace) -> int:
    if (args.query is None) == (args.image is None):
        raise CLIError("give either a text query or --image PATH")
    folder = Path(args.index).expanduser()
    index = load_index(folder) if folder.is_dir() else None
    if index is None:
        raise CLIError(f"no index in {str(folder)!r}: build one with `cli.py index FOLDER --index`")
    if not index.files:
        raise CLIError(f"index {folder} is empty")
    model = load_model(*choose_model(args.model, args.revision, index.meta))
    if args.image is None:
        query = model.encode_text([args.query], return_numpy=True)[0]
    else:
        from turkish_clip.image_loading import load_image

        query = model.encode_image([load_image(args.image)], return_numpy=True)[0]
    root = Path(index.meta["root"])
    for rank, (row, score) in enumerate(top_matches(index.embeddings, query, args.top_k), 1):
        path = str(root / index.files[row]["path"])
        if args.json:
            print(json.dumps({"rank": rank, "path": path, "score": score}, ensure_ascii=False))
        else:
            print(f"{rank:3d}  {score:.4f}  {path}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    if args.images is not None:
        return _evaluate_folder(args)
    return _evaluate_captions(args)


def _evaluate_folder(args: argparse.Namespace) -> int:
    from turkish_clip import TURKISH_TEMPLATES

    root = existing_dir(args.images, "dataset folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(folders) < 2:
        raise CLIError(f"{root} needs at least two class subfolders, found {len(folders)}")
    labels = read_class_labels(root, folders)
    ensemble = _check_templates(args.template) or list(TURKISH_TEMPLATES)
    paths, targets = [], []
    for target, name in enumerate(folders):
        found = sorted(scan_images(root / name))
        paths += [root / name / path for path in found]
        targets += [target] * len(found)
    if not paths:
        raise CLIError(f"no images in the class folders of {root}")
    model = load_model(model_source(args.model or DEFAULT_MODEL), args.revision)
    image_embeds, kept, failures = embed_image_files(model, paths, args.batch_size, args.quiet)
    if not kept:
        raise CLIError(f"none of the {len(paths)} images in {root} could be read")
    targets = np.asarray(targets)[kept]
    label_list = [labels[name] for name in folders]
    k = min(5, len(folders))
    report = {"dataset": str(root), "images": len(kept), "classes": len(folders), "k": k}
    report["unreadable"] = list(failures.values())
    for name, templates in (("single", [model.config.default_template]), ("ensemble", ensemble)):
        label_embeds = label_embeddings(model, label_list, templates, args.batch_size, args.quiet)
        metrics = classification_metrics(image_embeds @ label_embeds.T, targets, k)
        report[name] = _name_classes(metrics, folders, label_list, templates)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_accuracy(report)
    return 0


def _name_classes(metrics: dict, folders: list[str], labels: list[str], templates: list) -> dict:
    for index, entry in enumerate(metrics["per_class"]):
        entry.update(folder=folders[index], label=labels[index])
    for entry in metrics["confusions"]:
        entry.update(true=labels[entry["true"]], predicted=labels[entry["predicted"]])
    return dict(metrics, templates=list(templates))


def _print_accuracy(report: dict) -> None:
    single, ensemble, k = report["single"], report["ensemble"], report["k"]
    print(f"{report['dataset']}: {report['images']} images, {report['classes']} classes")
    rows = [("1 template", single), (f"{len(ensemble['templates'])} templates", ensemble)]
    print(f"{'':14s} {'top-1':>7s} {f'top-{k}':>7s}")
    for name, result in rows:
        print(f"{name:14s} {result['top1']:7.1%} {result['topk']:7.1%}")
    print("\nper class (top-1: 1 template / ensemble)")
    width = max(len(entry["label"]) for entry in single["per_class"])
    for one, many in zip(single["per_class"], ensemble["per_class"]):
        print(
            f"  {one['label']:{width}s} {one['images']:5d} images  {_percent(one['top1'])} / "
            f"{_percent(many['top1'])}"
        )
    if ensemble["confusions"]:
        print("\nmost frequent confusions (ensemble: true -> predicted)")
        for entry in ensemble["confusions"]:
            print(f"  {entry['count']:5d}  {entry['true']} -> {entry['predicted']}")


def _percent(value: float | None) -> str:
    return "    -" if value is None else f"{value:6.1%}"


def _evaluate_captions(args: argparse.Namespace) -> int:
    pairs = read_captions(Path(args.captions).expanduser())
    images = list(dict.fromkeys(path for path, _ in pairs))
    model = load_model(model_source(args.model or DEFAULT_MODEL), args.revision)
    image_embeds, kept, failures = embed_image_files(model, images, args.batch_size, args.quiet)
    if not kept:
        raise CLIError(f"none of the {len(images)} images in {args.captions} could be read")
    row_of = {images[index]: row for row, index in enumerate(kept)}
    pairs = [(path, caption) for path, caption in pairs if path in row_of]
    text_embeds = embed_texts(model, [caption for _, caption in pairs], args.batch_size, args.quiet)
    caption_images = np.asarray([row_of[path] for path, _ in pairs])
    recall = retrieval_recall(text_embeds @ image_embeds.T, caption_images)
    report = {"captions": len(pairs), "images": len(kept), **recall}
    report["unreadable"] = list(failures.values())
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"{args.captions}: {len(pairs)} captions, {len(kept)} images")
    print(f"{'':14s}" + "".join(f"{f'R@{k}':>8s}" for k in RECALL_KS))
    for name, key in (("text -> image", "text_to_image"), ("image -> text", "image_to_text")):
        print(f"{name:14s}" + "".join(f"{value:8.1%}" for value in recall[key].values()))
    return 0


def _check_templates(templates: list[str] | None) -> list[str]:
    for template in templates or []:
        if template.count("{}") != 1:
            raise CLIError(f"template {template!r} needs exactly one '{{}}' for the label")
    return list(dict.fromkeys(templates or []))


# Output helpers.


def _progress(total: int, unit: str, quiet: bool):
    from tqdm import tqdm

    disable = quiet or total < 2 or not sys.stderr.isatty()
    return tqdm(total=total, unit=unit, disable=disable, file=sys.stderr, leave=False)


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)  # prints above a running progress bar, not through it


def _failure(path: object, error: Exception) -> str:
    message = _one_line(error)
    return message if str(path) in message else f"{path}: {message}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _quiet_libraries(quiet: bool) -> None:
    """Library warnings go; their progress bars stay for interactive runs (model downloads)."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging

    logging.set_verbosity_error()
    if quiet or not sys.stderr.isatty():
        logging.disable_progress_bar()
        disable_progress_bars()


# Arguments.


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        help=f"model folder or Hub id (default {DEFAULT_MODEL!r}, or an existing index's model)",
    )
    common.add_argument("--revision", help="Hub branch, tag or commit of --model")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    templates = argparse.ArgumentParser(add_help=False)
    templates.add_argument(
        "--template",
        action="extend",
        nargs="+",
        metavar="T",
        help="prompt template(s) with one {} for the label; several are ensembled",
    )
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument("--batch-size", type=_positive_int, default=32, metavar="N")

    parser = argparse.ArgumentParser(prog="cli.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    classify = commands.add_parser(
        "classify", parents=[common, templates], help="zero-shot labels for images"
    )
    classify.add_argument("images", nargs="+", metavar="IMAGE", help="image files or URLs")
    classify.add_argument("--labels", nargs="+", required=True, help="Turkish candidate labels")
    classify.add_argument("--top-k", type=_positive_int, metavar="K", help="labels shown per image")
    classify.add_argument("--json", action="store_true", help="one JSON object per image")
    classify.set_defaults(run=run_classify)

    index = commands.add_parser(
        "index", parents=[common, batch], help="embed a folder of images, or update its index"
    )
    index.add_argument("folder", metavar="FOLDER")
    index.add_argument("--index", required=True, metavar="DIR", help="index folder")
    index.set_defaults(run=run_index)

    search = commands.add_parser(
        "search", parents=[common], help="images of an index most similar to a text or an image"
    )
    search.add_argument("query", nargs="?", help="Turkish text")
    search.add_argument("--image", metavar="PATH", help="search by this image instead")
    search.add_argument("--index", required=True, metavar="DIR")
    search.add_argument("--top-k", type=_positive_int, default=10, metavar="K")
    search.add_argument("--json", action="store_true", help="one JSON object per result")
    search.set_defaults(run=run_search)

    evaluate = commands.add_parser(
        "evaluate", parents=[common, templates, batch], help="zero-shot accuracy or recall@k"
    )
    data = evaluate.add_mutually_exclusive_group(required=True)
    data.add_argument("--images", metavar="ROOT", help="one subfolder of images per class")
    data.add_argument("--captions", metavar="FILE", help="TSV lines: image path<TAB>caption")
    evaluate.add_argument("--json", action="store_true", help="one JSON object")
    evaluate.set_defaults(run=run_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or argparse's own one-line usage error
        return int(stop.code or 0)
    try:
        _quiet_libraries(args.quiet)
        return args.run(args)
    except CLIError as error:
        print(f"error: {error}", file=sys.stderr)
    except (OSError, ValueError, TypeError) as error:  # from loading models and reading files
        print(f"error: {_one_line(error)}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
