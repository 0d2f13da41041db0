"""Zero-shot evaluation: accuracy on class folders, recall@k on captions, and their inputs."""

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RECALL_KS = (1, 5, 10)
TOP_CONFUSIONS = 10


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


def ensemble_embeddings(prompt_embeds: np.ndarray, n_labels: int) -> np.ndarray:
    """Per-label mean of normalised prompt embeddings, renormalised: the pipeline's ensembling.

    `prompt_embeds` rows are ordered label by label, each label's templates together.
    """
    mean = prompt_embeds.reshape(n_labels, -1, prompt_embeds.shape[-1]).mean(axis=1)
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def read_class_labels(root: Path, folders: list[str]) -> dict[str, str]:
    """Turkish label per class folder: from classes.json or classes.txt where present, else the
    folder's own name."""
    json_path, txt_path = root / "classes.json", root / "classes.txt"
    if json_path.exists() and txt_path.exists():
        raise ValueError(f"{root} has both classes.json and classes.txt; keep one")
    if json_path.exists():
        mapping = _read_json_mapping(json_path)
    elif txt_path.exists():
        mapping = _read_tsv_mapping(txt_path)
    else:
        return {folder: folder for folder in folders}
    missing = [folder for folder in folders if folder not in mapping]
    if missing:
        source = json_path if json_path.exists() else txt_path
        raise ValueError(f"{source} gives no label for folder(s): {', '.join(missing)}")
    labels = {folder: mapping[folder] for folder in folders}
    repeated = [label for label, n in Counter(labels.values()).items() if n > 1]
    if repeated:
        raise ValueError(f"several class folders share the label(s) {', '.join(repeated)}")
    return labels


def _read_json_mapping(path: Path) -> dict[str, str]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(v, str) and v.strip() for v in mapping.values()
    ):
        raise ValueError(f"{path} must be a JSON object mapping folder names to Turkish labels")
    return mapping


def _read_tsv_mapping(path: Path) -> dict[str, str]:
    mapping = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        folder, _, label = line.partition("\t")
        if not label.strip():
            raise ValueError(f"{path} line {number}: expected 'folder<TAB>label', got {line!r}")
        mapping[folder.strip()] = label.strip()
    return mapping


def read_captions(path: Path) -> list[tuple[Path, str]]:
    """(image path, caption) pairs; relative image paths are taken from the file's folder."""
    if not path.is_file():
        raise ValueError(f"caption file {str(path)!r} not found")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        image, _, caption = line.partition("\t")
        if not image.strip() or not caption.strip():
            raise ValueError(f"{path} line {number}: expected 'image<TAB>caption', got {line!r}")
        pairs.append((path.parent / image.strip(), caption.strip()))
    if not pairs:
        raise ValueError(f"{path} holds no captions")
    return pairs
