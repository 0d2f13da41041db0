"""Caption pairs from TSV, JSONL and datasets folders: read in order, refused by file and line."""

import json

import pytest

from training.data import DataError, PairSource, fingerprint, read_pairs

PAIRS = [("a red cat", "kırmızı bir kedi"), ("two dogs", "iki köpek")]


def test_tsv_lines_are_read_in_order_with_bom_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_bytes("\ufeffa red cat\tkırmızı bir kedi\r\n\r\ntwo dogs\tiki köpek\n".encode())
    assert list(read_pairs(PairSource(str(path)))) == PAIRS


def test_jsonl_fields_can_be_renamed(tmp_path):
    path = tmp_path / "pairs.jsonl"
    lines = [json.dumps({"english": en, "turkish": tr, "id": 1}) for en, tr in PAIRS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = PairSource(str(path), english_column="english", turkish_column="turkish")
    assert list(read_pairs(source)) == PAIRS
    with pytest.raises(DataError, match=r"pairs.jsonl, line 1: no field 'en'"):
        list(read_pairs(PairSource(str(path))))


def test_a_datasets_folder_and_its_splits(tmp_path):
    import datasets

    table = datasets.Dataset.from_dict({"en": [p[0] for p in PAIRS], "tr": [p[1] for p in PAIRS]})
    table.save_to_disk(tmp_path / "flat")
    assert list(read_pairs(PairSource(str(tmp_path / "flat")))) == PAIRS
    datasets.DatasetDict({"validation": table}).save_to_disk(tmp_path / "splits")
    assert list(read_pairs(PairSource(str(tmp_path / "splits"), split="validation"))) == PAIRS
    with pytest.raises(DataError, match="no split 'train'"):
        list(read_pairs(PairSource(str(tmp_path / "splits"))))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.tsv", b"a cat\tbir kedi\none\ttwo\tthree\n", r"a.tsv, line 2: expected .* 3 field"),
        ("b.tsv", b"a cat\tbir kedi\n\t\tbo\xfe\n", r"b.tsv, line 2: not valid UTF-8"),
        ("c.tsv", b"a cat\t  \n", r"c.tsv, line 1: the Turkish caption is empty"),
        ("d.jsonl", b'{"en": "a", "tr": "b"}\n{"en": "a", "tr": 3}\n', r"line 2: .*int, not text"),
        ("e.jsonl", b'{"en": "a", "tr": "b"}\n{"en": \n', r"e.jsonl, line 2: not a JSON object"),
        ("f.jsonl", b'["a", "b"]\n', r"f.jsonl, line 1: expected an object"),
    ],
)
def test_a_malformed_line_is_named(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        list(read_pairs(PairSource(str(path))))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="missing.tsv: no such file"):
        list(read_pairs(PairSource(str(tmp_path / "missing.tsv"))))


def test_the_fingerprint_follows_the_contents_and_the_columns(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a cat\tbir kedi\n", encoding="utf-8")
    first = fingerprint(PairSource(str(path)))
    assert fingerprint(PairSource(str(path))) == first
    assert fingerprint(PairSource(str(path), english_column="x")) != first
    path.write_text("a dog\tbir köpek\n", encoding="utf-8")
    assert fingerprint(PairSource(str(path))) != first
