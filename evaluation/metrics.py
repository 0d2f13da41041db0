"""Zero-shot evaluation metrics: accuracy on class folders, recall@k on captions."""

from collections import Counter
from collections.abc import Sequence

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
    of candidates scoring strictly higher, so ties count in its favour. A positive that is not a
    finite number (NaN embeddings) is never found: NaN compares false with everything, and would
    otherwise rank first.
    """
    positive = similarity[np.arange(len(caption_images)), caption_images]
    text_rank = (similarity > positive[:, None]).sum(axis=1)
    text_rank[~np.isfinite(positive)] = similarity.shape[1]
    best_caption = np.full(similarity.shape[1], -np.inf)
    with np.errstate(invalid="ignore"):  # a NaN positive stays NaN: a miss, below
        np.maximum.at(best_caption, caption_images, positive)
    has_caption = np.zeros(similarity.shape[1], dtype=bool)
    has_caption[caption_images] = True
    per_image = similarity.transpose()
    image_rank = (per_image > best_caption[:, None]).sum(axis=1)
    image_rank[~np.isfinite(best_caption)] = similarity.shape[0]
    image_rank = image_rank[has_caption]
    return {
        "text_to_image": {f"R@{k}": float((text_rank < k).mean()) for k in ks},
        "image_to_text": {f"R@{k}": float((image_rank < k).mean()) for k in ks},
    }
