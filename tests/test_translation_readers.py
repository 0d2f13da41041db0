"""Captions from each input kind, in file order, and one-line errors naming file and line."""

import json

import pytest

from translation.errors import TranslationError
from translation.readers import CaptionInput, read_captions


def captions(location, **options) -> list[tuple[str, str]]:
    return [(c.text, c.group) for c in read_captions(CaptionInput(str(location), **options))]


def test_coco_captions_keep_their_image_and_lose_their_layout(tmp_path):
    path = tmp_path / "captions_val2017.json"
    annotations = [
        {"image_id": 7, "id": 1, "caption": "A cat\ton a mat.\n"},
        {"image_id": 9, "id": 2, "caption": "Two  dogs "},
        {"image_id": 7, "id": 3, "caption": "   "},
    ]
    path.write_text(json.dumps({"images": [], "annotations": annotations}), encoding="utf-8")
    assert captions(path) == [("A cat on a mat.", "image 7"), ("Two dogs", "image 9")]


def test_text_tsv_jsonl_and_datasets_folder(tmp_path):
    text = tmp_path / "captions.txt"
    text.write_text("\ufeffa red cat\n\n a blue  dog\r\n", encoding="utf-8")
    assert [t for t, _ in captions(text)] == ["a red cat", "a blue dog"]

    tsv = tmp_path / "captions.tsv"
    tsv.write_text("id\ten\n1\ta red cat\n2\ta blue dog\n", encoding="utf-8")
    assert [t for t, _ in captions(tsv, column="en")] == ["a red cat", "a blue dog"]
    with pytest.raises(TranslationError, match=r"captions.tsv, line 1: no column 'caption'"):
        captions(tsv)

    jsonl = tmp_path / "captions.jsonl"
    jsonl.write_text('{"en": "a red cat"}\n{"en": "a blue dog"}\n', encoding="utf-8")
    assert [t for t, _ in captions(jsonl, column="en")] == ["a red cat", "a blue dog"]
    with pytest.raises(TranslationError, match=r"captions.jsonl, line 1: no field 'text'"):
        captions(jsonl, column="text")

    import datasets

    folder = tmp_path / "dataset"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"caption": ["a red cat", "a blue dog"]})}
    ).save_to_disk(folder)
    assert [t for t, _ in captions(folder)] == ["a red cat", "a blue dog"]
    with pytest.raises(TranslationError, match="no split 'test'"):
        captions(folder, split="test")


def test_a_coco_file_without_annotations_is_named(tmp_path):
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps({"images": [], "categories": []}), encoding="utf-8")
    with pytest.raises(TranslationError) as error:
        captions(path)
    assert str(error.value) == (
        f"{path}: not a COCO captions file: no 'annotations' list (keys: images, categories)"
    )


@pytest.mark.parametrize("name", ["captions.txt", "captions_train2017.json"])
def test_a_line_that_is_not_utf8_is_named_with_its_number(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_bytes(b'{"annotations": [\n{"image_id": 1, "caption": "caf\xe9"}\n]}')
    else:
        path.write_bytes(b"a red cat\na blue dog\ncaf\xe9 au lait\n")
    with pytest.raises(TranslationError, match=rf"^{path}, line \d: not valid UTF-8") as error:
        captions(path)
    assert str(error.value).startswith(f"{path}, line {2 if name.endswith('.json') else 3}:")
    assert "\n" not in str(error.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TranslationError, match="nothing.txt: no such file"):
        captions(tmp_path / "nothing.txt")
