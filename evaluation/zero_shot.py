"""Zero-shot evaluation reports from embeddings: accuracy on class folders, recall@k on captions.

The command line embeds the images (with its progress bar and warnings) and prints; the reports
are made here, as plain dicts that `--json` prints as they are.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evaluation.metrics import classification_metrics, retrieval_recall


def class_images(root: Path, folders: Sequence[str], scan) -> tuple[list[Path], list[int]]:
    """Every image of each class folder (found by `scan`, relative paths), with its class."""
    paths, targets = [], []
    for target, name in enumerate(folders):
        found = sorted(scan(root / name))
        paths += [root / name / path for path in found]
        targets += [target] * len(found)
    return paths, targets


def classification_report(
    model,
    image_embeds: np.ndarray,
    targets: np.ndarray,
    folders: Sequence[str],
    labels: Sequence[str],
    ensemble: Sequence[str],
    batch_size: int,
) -> dict:
    """Top-1/top-k accuracy, per class and the commonest confusions, with the model's default
    template (`single`) and with the template ensemble (`ensemble`)."""
    k = min(5, len(folders))
    report = {"images": len(targets), "classes": len(folders), "k": k}
    for name, templates in (("single", [model.config.default_template]), ("ensemble", ensemble)):
        label_embeds = model.encode_labels(
            list(labels), templates, batch_size=batch_size, return_numpy=True
        )
        metrics = classification_metrics(image_embeds @ label_embeds.T, targets, k)
        report[name] = _name_classes(metrics, folders, labels, templates)
    return report


def caption_report(
    image_paths: Sequence[Path],
    kept: Sequence[int],
    image_embeds: np.ndarray,
    pairs: Sequence[tuple[Path, str]],
    embed_captions,
) -> dict:
    """Recall@k both ways for the captions whose image could be read; `embed_captions` turns a
    list of captions into normalised rows."""
    row_of = {image_paths[index]: row for row, index in enumerate(kept)}
    pairs = [(path, caption) for path, caption in pairs if path in row_of]
    text_embeds = embed_captions([caption for _, caption in pairs])
    caption_images = np.asarray([row_of[path] for path, _ in pairs])
    recall = retrieval_recall(text_embeds @ image_embeds.T, caption_images)
    return {"captions": len(pairs), "images": len(kept), **recall}


def _name_classes(
    metrics: dict, folders: Sequence[str], labels: Sequence[str], templates: Sequence[str]
) -> dict:
    for index, entry in enumerate(metrics["per_class"]):
        entry.update(folder=folders[index], label=labels[index])
    for entry in metrics["confusions"]:
        entry.update(true=labels[entry["true"]], predicted=labels[entry["predicted"]])
    return dict(metrics, templates=list(templates))
