"""A trained folder's card lists the data its text tower learnt from: the student's own
(when its text tower is kept) and the Hub datasets trained on."""

from pathlib import Path

from training.data import PairSource
from training.model_card import training_datasets
from training.options import TrainingOptions


def options(tmp_path: Path, train: str, text_encoder: str | None = None) -> TrainingOptions:
    student = tmp_path / "student"
    student.mkdir(exist_ok=True)
    (student / "README.md").write_text("---\ndatasets:\n- coco\n---\n# Student\n")
    local = tmp_path / "eval.tsv"
    local.write_text("a cat\tbir kedi\n")
    return TrainingOptions(
        student=str(student),
        teacher="ViT-B/32",
        train=PairSource(train),
        eval=PairSource(str(local)),
        output=tmp_path / "out",
        text_encoder=text_encoder,
    )


def test_the_students_datasets_and_hub_datasets_are_listed(tmp_path):
    assert training_datasets(options(tmp_path, "someone/turkish-pairs")) == [
        "coco",
        "someone/turkish-pairs",
    ]
    assert training_datasets(options(tmp_path, str(tmp_path / "eval.tsv"))) == ["coco"]
    replaced = options(tmp_path, "someone/turkish-pairs", text_encoder="dbmdz/bert-base-turkish")
    assert training_datasets(replaced) == ["someone/turkish-pairs"]


def test_names_given_for_local_pairs_are_listed(tmp_path):
    fresh = options(tmp_path, str(tmp_path / "eval.tsv"), text_encoder="dbmdz/bert-base-turkish")
    assert training_datasets(fresh) == []
    fresh.dataset_names = ("coco",)
    assert training_datasets(fresh) == ["coco"]
