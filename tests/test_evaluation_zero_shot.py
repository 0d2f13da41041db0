"""Zero-shot reports from embeddings: the right rows are paired, both template settings scored."""

from pathlib import Path

import numpy as np
from builders import tiny_model, tiny_processor

from evaluation.zero_shot import caption_report, class_images, classification_report


def test_captions_of_unreadable_images_are_left_out_and_rows_stay_paired() -> None:
    images = [Path("a.jpg"), Path("broken.jpg"), Path("b.jpg")]
    kept = [0, 2]  # broken.jpg could not be read
    image_embeds = np.eye(2, dtype=np.float32)
    pairs = [(images[2], "b"), (images[1], "kırık"), (images[0], "a")]
    rows = {"a": [1.0, 0.0], "b": [0.0, 1.0]}
    report = caption_report(
        images, kept, image_embeds, pairs, lambda captions: np.array([rows[c] for c in captions])
    )
    assert (report["captions"], report["images"]) == (2, 2)
    assert report["text_to_image"]["R@1"] == 1.0 and report["image_to_text"]["R@1"] == 1.0
    swapped = caption_report(
        images, kept, image_embeds, pairs, lambda captions: np.array([rows["a"]] * len(captions))
    )
    assert swapped["text_to_image"]["R@1"] == 0.5


def test_both_template_settings_score_the_label_embeddings_of_the_model(tmp_path) -> None:
    model = tiny_model()
    model.processor = tiny_processor()
    labels = ["kedi", "köpek", "kuş"]
    ensemble = ["bir {} fotoğrafı", "{} içeren bir resim"]
    label_rows = model.encode_labels(labels, ensemble, return_numpy=True)
    # Each image is its class's ensemble embedding: the ensemble scores every image right.
    report = classification_report(
        model, label_rows, np.arange(3), ["cat", "dog", "bird"], labels, ensemble, 8
    )
    assert report["ensemble"]["top1"] == 1.0 and report["k"] == 3
    assert report["ensemble"]["templates"] == ensemble
    assert report["single"]["templates"] == [model.config.default_template]
    assert [entry["label"] for entry in report["single"]["per_class"]] == labels


def test_class_images_pairs_each_file_with_its_folder(tmp_path) -> None:
    found = {"kedi": ["2.jpg", "1.jpg"], "köpek": ["x.png"]}
    paths, targets = class_images(tmp_path, ["kedi", "köpek"], lambda folder: found[folder.name])
    assert paths == [tmp_path / "kedi/1.jpg", tmp_path / "kedi/2.jpg", tmp_path / "köpek/x.png"]
    assert targets == [0, 0, 1]
