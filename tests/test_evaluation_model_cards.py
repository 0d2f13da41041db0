"""The training data a model card declares (its YAML `datasets`), and the COCO rule."""

from pathlib import Path

from evaluation.model_cards import card_datasets, trained_on_coco


def write_card(folder: Path, header: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(f"---\n{header}---\n\n# Model\n", encoding="utf-8")
    return folder


def test_datasets_of_a_folder_card(tmp_path):
    folder = write_card(tmp_path / "a", "language: tr\ndatasets:\n- coco\n- wit\n")
    assert card_datasets(str(folder)) == ["coco", "wit"]
    assert trained_on_coco(card_datasets(str(folder)))
    single = write_card(tmp_path / "b", "datasets: HuggingFaceM4/COCO\n")
    assert card_datasets(str(single)) == ["HuggingFaceM4/COCO"]
    assert trained_on_coco(["HuggingFaceM4/COCO"]) and trained_on_coco(["mscoco"])


def test_no_card_or_no_datasets_declares_nothing(tmp_path):
    assert card_datasets(str(tmp_path)) is None
    folder = write_card(tmp_path / "c", "language: tr\n")
    assert card_datasets(str(folder)) == []
    assert not trained_on_coco(None) and not trained_on_coco(["wit", "laion"])
