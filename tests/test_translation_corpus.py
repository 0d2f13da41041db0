"""A translation run with a tiny random Marian model: every caption once, in order, with exactly
what `generate` gives it alone; repeated captions translated once; degenerate translations in the
rejects file; COCO in, pairs out, split by image; a resumed run ends with the same files."""

import json
from pathlib import Path

import pytest
from builders import english_captions, save_tiny_marian
from transformers import MarianMTModel, MarianTokenizer

from translation.corpus import CorpusOptions, LocalEngine, translate_corpus
from translation.errors import TranslationError
from translation.readers import CaptionInput
from translation.translator import Translator, TranslatorSettings

MAX_NEW_TOKENS = 6


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def marian_dir(tmp_path_factory) -> Path:
    return save_tiny_marian(tmp_path_factory.mktemp("marian") / "model")


@pytest.fixture(scope="module")
def translator(marian_dir) -> Translator:
    return Translator(TranslatorSettings(str(marian_dir), max_new_tokens=MAX_NEW_TOKENS))


@pytest.fixture(scope="module")
def alone(marian_dir):
    """What the model generates for one caption given by itself, straight from transformers."""
    tokenizer = MarianTokenizer.from_pretrained(marian_dir)
    model = MarianMTModel.from_pretrained(marian_dir).eval()
    cache = {}

    def translate(caption: str) -> str:
        if caption not in cache:
            ids = model.generate(**tokenizer([caption], return_tensors="pt"), max_new_tokens=6)
            cache[caption] = " ".join(tokenizer.decode(ids[0], skip_special_tokens=True).split())
        return cache[caption]

    return translate


def expected_reason(english: str, turkish: str) -> str | None:
    """The rejection rules, written out independently of translation/quality.py."""
    words = turkish.split()
    if not words:
        return "empty"
    if any(len(set(words[i : i + 4])) == 1 for i in range(len(words) - 3)):
        return "repeated"
    return "too long" if len(turkish) > 3 * len(english) else None


class CountingEngine(LocalEngine):
    """The local engine, recording every caption it is asked to translate."""

    def __init__(self, translator):
        super().__init__(translator)
        self.asked: list[str] = []

    def translate(self, batches):
        for batch in batches:
            self.asked += batch
        yield from super().translate(batches)


def run(tmp_path: Path, source: Path, translator, **options):
    output = tmp_path / "pairs.tsv"
    corpus = CorpusOptions(
        input=CaptionInput(str(source)),
        output=output,
        rejects=tmp_path / "rejects.tsv",
        translator=translator.settings,
        batch_size=options.pop("batch_size", 4),
        **options,
    )
    engine = CountingEngine(translator)
    counts, _ = translate_corpus(corpus, lambda: engine)
    return counts, engine, corpus


def read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_line_once_in_order_with_what_generate_gives_it_alone(tmp_path, translator, alone):
    captions = english_captions(40, seed=3)
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(captions) + "\n", encoding="utf-8")
    counts, _, corpus = run(tmp_path, source, translator)

    pairs = read_tsv(corpus.output)
    rejects = read_tsv(corpus.rejects)
    rejected_at = {int(number) for number, *_ in rejects}
    kept = [caption for number, caption in enumerate(captions, 1) if number not in rejected_at]
    assert [english for english, _ in pairs] == kept
    for english, turkish in pairs:
        assert turkish == alone(english) and expected_reason(english, turkish) is None
    for number, reason, english, turkish in rejects:
        assert english == captions[int(number) - 1] and turkish == alone(english)
        assert reason == expected_reason(english, turkish)
    assert [int(number) for number, *_ in rejects] == sorted(rejected_at)
    assert pairs and rejects  # the random model gives both kinds
    assert (counts.read, counts.rejected) == (40, len(rejects))
    assert not corpus.output.with_name("pairs.tsv.progress").exists()


def test_repeated_captions_are_translated_once(tmp_path, translator, alone):
    distinct = english_captions(6, seed=4)
    captions = [distinct[i % 6] for i in (0, 1, 0, 2, 3, 0, 1, 4, 5, 5, 2, 0) * 3]
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(captions), encoding="utf-8")
    counts, engine, corpus = run(tmp_path, source, translator, batch_size=2)
    assert sorted(engine.asked) == sorted(distinct)
    assert (counts.read, counts.translated, counts.reused) == (36, 6, 30)
    written = read_tsv(corpus.output) + [fields[2:] for fields in read_tsv(corpus.rejects)]
    assert sorted(english for english, _ in written) == sorted(captions)
    assert all(turkish == alone(english) for english, turkish in written)


def coco_file(path: Path, images: int, per_image: int) -> tuple[Path, dict[str, int]]:
    captions = english_captions(images * per_image, seed=5)
    annotations = [
        {"image_id": 1000 + i % images, "id": i, "caption": f"  {caption}\n"}
        for i, caption in enumerate(captions)
    ]
    document = {"info": {}, "images": [], "annotations": annotations}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path, {caption: 1000 + i % images for i, caption in enumerate(captions)}


def test_coco_json_in_pairs_out_split_by_image(tmp_path, translator, alone):
    source, image_of = coco_file(tmp_path / "captions_train2017.json", images=20, per_image=4)
    evaluation = tmp_path / "eval.tsv"
    counts, _, corpus = run(tmp_path, source, translator, eval_output=evaluation, eval_fraction=0.3)
    train, held_out = read_tsv(corpus.output), read_tsv(evaluation)
    rejected = [fields[2] for fields in read_tsv(corpus.rejects)]
    assert len(train) + len(held_out) + len(rejected) == 80 == counts.read
    assert counts.eval == len(held_out)
    train_images = {image_of[english] for english, _ in train}
    eval_images = {image_of[english] for english, _ in held_out}
    assert train_images and eval_images and not train_images & eval_images
    assert all(turkish == alone(english) for english, turkish in train + held_out)
    # Whole images, not captions, were drawn: every caption of an evaluation image is there
    # (or rejected).
    for image in eval_images:
        of_image = {english for english, number in image_of.items() if number == image}
        assert of_image <= {english for english, _ in held_out} | set(rejected)


def test_a_resumed_run_gives_the_same_files(tmp_path, translator):
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(english_captions(50, seed=6)), encoding="utf-8")
    whole = tmp_path / "whole"
    whole.mkdir()
    run(whole, source, translator, batch_size=2, eval_output=whole / "eval.tsv",
        eval_fraction=0.2)  # fmt: skip

    class Interrupted(Exception):
        pass

    class StopsAfterOneWindow(CountingEngine):
        def translate(self, batches):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 2:
                raise Interrupted
            yield from super().translate(batches)

    parts = tmp_path / "parts"
    parts.mkdir()
    corpus = CorpusOptions(
        input=CaptionInput(str(source)),
        output=parts / "pairs.tsv",
        rejects=parts / "rejects.tsv",
        translator=translator.settings,
        eval_output=parts / "eval.tsv",
        eval_fraction=0.2,
        batch_size=2,
    )
    with pytest.raises(Interrupted):
        translate_corpus(corpus, lambda: StopsAfterOneWindow(translator))
    # A half-written window, as a kill in the middle of writing leaves it.
    with (parts / "pairs.tsv").open("a", encoding="utf-8") as file:
        file.write("half a line")
    engine = CountingEngine(translator)
    counts, resumed_at = translate_corpus(corpus, lambda: engine)
    assert resumed_at == 32  # one window: 16 batches of 2
    for name in ("pairs.tsv", "eval.tsv", "rejects.tsv"):
        assert (parts / name).read_bytes() == (whole / name).read_bytes()
    assert not set(engine.asked) & set(english_captions(50, seed=6)[:resumed_at])


def test_a_run_with_other_settings_does_not_continue_a_stopped_one(tmp_path, translator):
    source = tmp_path / "captions.txt"
    source.write_text("\n".join(english_captions(5)), encoding="utf-8")
    run(tmp_path, source, translator)
    (tmp_path / "pairs.tsv.progress").write_text("{}")  # as if stopped
    with pytest.raises(TranslationError, match="other settings"):
        run(tmp_path, source, translator)
    (tmp_path / "pairs.tsv.progress").unlink()
    with pytest.raises(TranslationError, match="pairs.tsv exists"):
        run(tmp_path, source, translator)
