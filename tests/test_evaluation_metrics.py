"""Metrics and dataset files, checked against hand computation."""

from pathlib import Path

import numpy as np
import pytest

from evaluation import inputs, metrics


def test_classification_metrics_match_hand_computation() -> None:
    logits = np.array(
        [
            [0.9, 0.1, 0.0],  # class 0, predicted 0
            [0.2, 0.7, 0.1],  # class 0, predicted 1; 0 is second
            [0.1, 0.8, 0.3],  # class 1, predicted 1
            [0.5, 0.1, 0.4],  # class 2, predicted 0; 2 is second
            [0.6, 0.3, 0.1],  # class 2, predicted 0; 2 is third
        ]
    )
    targets = np.array([0, 0, 1, 2, 2])
    result = metrics.classification_metrics(logits, targets, k=2)
    assert result["top1"] == pytest.approx(2 / 5)
    assert result["topk"] == pytest.approx(4 / 5)
    assert [entry["top1"] for entry in result["per_class"]] == [0.5, 1.0, 0.0]
    assert [entry["images"] for entry in result["per_class"]] == [2, 1, 2]
    assert result["confusions"] == [
        {"true": 2, "predicted": 0, "count": 2},
        {"true": 0, "predicted": 1, "count": 1},
    ]


def test_classification_metrics_leave_classes_without_images_unscored() -> None:
    result = metrics.classification_metrics(np.array([[1.0, 0.0]]), np.array([0]), k=1)
    assert [entry["top1"] for entry in result["per_class"]] == [1.0, None]


def test_retrieval_recall_matches_hand_computation() -> None:
    # 4 captions x 3 images; image 2 has two captions (rows 2 and 3).
    similarity = np.array(
        [
            [0.9, 0.1, 0.2],  # caption 0 -> image 0: rank 0
            [0.8, 0.3, 0.5],  # caption 1 -> image 1: rank 2
            [0.1, 0.6, 0.4],  # caption 2 -> image 2: rank 1
            [0.0, 0.2, 0.7],  # caption 3 -> image 2: rank 0
        ]
    )
    recall = metrics.retrieval_recall(similarity, np.array([0, 1, 2, 2]), ks=(1, 2))
    assert recall["text_to_image"] == {"R@1": 2 / 4, "R@2": 3 / 4}
    # Image 0: its caption 0 (0.9) is first. Image 1: caption 1 (0.3) is behind caption 2 (0.6)
    # and caption 3 (0.2) is below it: rank 1. Image 2: best own caption 3 (0.7) is first.
    assert recall["image_to_text"] == {"R@1": 2 / 3, "R@2": 3 / 3}


def test_retrieval_recall_counts_nan_similarities_as_misses() -> None:
    # NaN embeddings give NaN similarities, which compare false with everything: ranked naively,
    # every positive would come first and recall would read 100%.
    similarity = np.full((3, 3), np.nan)
    recall = metrics.retrieval_recall(similarity, np.arange(3), ks=(1, 3))
    assert recall["text_to_image"] == {"R@1": 0.0, "R@3": 0.0}
    assert recall["image_to_text"] == {"R@1": 0.0, "R@3": 0.0}
    similarity = np.eye(3)
    similarity[1] = np.nan  # one broken caption: only it is missed
    recall = metrics.retrieval_recall(similarity, np.arange(3), ks=(1,))
    assert recall["text_to_image"] == {"R@1": 2 / 3}
    assert recall["image_to_text"] == {"R@1": 2 / 3}


def test_class_labels_from_folder_names_txt_and_json(tmp_path: Path) -> None:
    assert inputs.read_class_labels(tmp_path, ["kedi", "köpek"]) == {
        "kedi": "kedi",
        "köpek": "köpek",
    }
    (tmp_path / "classes.txt").write_text("# folder\tlabel\ncat\tkedi\n\ndog\tköpek\n")
    assert inputs.read_class_labels(tmp_path, ["cat", "dog"]) == {"cat": "kedi", "dog": "köpek"}
    with pytest.raises(ValueError, match="no label for folder.*bird"):
        inputs.read_class_labels(tmp_path, ["bird", "cat"])
    (tmp_path / "classes.txt").unlink()
    (tmp_path / "classes.json").write_text('{"cat": "kedi", "dog": "kedi"}')
    with pytest.raises(ValueError, match="share the label.*kedi"):
        inputs.read_class_labels(tmp_path, ["cat", "dog"])


# Commands on the tiny model.
