"""One translation run: captions in, `english<TAB>turkish` pairs out, in input order.

Captions are taken in windows of `WINDOW_BATCHES` batches. The distinct captions of a window
that were not translated before are sorted by length into batches (little padding, so fewer
wasted steps), translated by the engine, and then the window's lines are written in input order:
accepted pairs to the training or evaluation file, rejected ones to the rejects file. After each
window the outputs record their progress (translation/outputs.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from translation.errors import TranslationError
from translation.outputs import Counts, ResumableOutputs
from translation.quality import rejection
from translation.readers import Caption, CaptionInput, read_captions
from translation.split import in_evaluation
from translation.translator import TranslatorSettings

WINDOW_BATCHES = 16


class Engine(Protocol):
    """Translates batches in order. A `whole_plan` engine (Ray) is given every remaining batch
    at once, to keep all its workers busy; the local one a window at a time."""

    whole_plan: bool

    def translate(self, batches: list[list[str]]) -> Iterator[list[str]]: ...


@dataclass(frozen=True)
class CorpusOptions:
    input: CaptionInput
    output: Path
    rejects: Path
    translator: TranslatorSettings
    eval_output: Path | None = None
    eval_fraction: float = 0.0
    batch_size: int = 32

    def settings(self) -> dict:
        """What decides the files' content, recorded for resuming (not the batch size)."""
        return {
            "input": self.input.fingerprint(),
            "column": self.input.column,
            "split": self.input.split,
            "translator": asdict(self.translator),
            "eval_fraction": self.eval_fraction if self.eval_output else None,
        }


@dataclass
class Window:
    start: int  # position of the first caption in the input
    captions: list[Caption]
    batches: list[list[str]]


def translate_corpus(
    options: CorpusOptions,
    make_engine: Callable[[], Engine],
    advance: Callable[[int], object] = lambda captions: None,
    total: Callable[[int], object] = lambda captions: None,
) -> tuple[Counts, int]:
    """Runs (or continues) the translation; the final counts and the caption it resumed at.
    The input is read and the engine made (its model loaded) before any file is written, so that
    bad input or a bad model leaves nothing behind. `total` is told the number of captions once
    known, `advance` each window's count."""
    outputs = ResumableOutputs(
        options.output, options.rejects, options.eval_output, options.settings()
    )
    captions = list(read_captions(options.input))
    if not captions:
        raise TranslationError(f"{options.input.location}: no captions")
    outputs.check_can_open()
    engine = make_engine()
    total(len(captions))
    counts = outputs.open()
    finished = False
    try:
        resumed_at = counts.read
        known = outputs.written_translations() if resumed_at else {}
        advance(resumed_at)
        windows = _windows(captions, resumed_at, options.batch_size, known)
        for window, translations in _translated(windows, engine):
            for batch, texts in zip(window.batches, translations):
                known.update(zip(batch, texts))
                counts.translated += len(batch)
            _write(window, known, options, outputs, counts)
            outputs.commit(counts)
            advance(len(window.captions))
        finished = True
    finally:
        outputs.close(finished)
    return counts, resumed_at


def _windows(
    captions: Sequence[Caption], start: int, batch_size: int, known: dict[str, str]
) -> Iterator[Window]:
    planned = set(known)
    size = batch_size * WINDOW_BATCHES
    for first in range(start, len(captions), size):
        window = list(captions[first : first + size])
        new = [text for text in dict.fromkeys(c.text for c in window) if text not in planned]
        planned.update(new)
        new.sort(key=len)
        batches = [new[i : i + batch_size] for i in range(0, len(new), batch_size)]
        yield Window(first, window, batches)


def _translated(windows: Iterator[Window], engine: Engine):
    """Each window with its batches' translations."""
    if engine.whole_plan:
        windows = list(windows)
        results = engine.translate([batch for window in windows for batch in window.batches])
    for window in windows:
        if not engine.whole_plan:
            results = engine.translate(window.batches)
        yield window, [next(results) for _ in window.batches]


def _write(
    window: Window,
    known: dict[str, str],
    options: CorpusOptions,
    outputs: ResumableOutputs,
    counts: Counts,
) -> None:
    new = {text for batch in window.batches for text in batch}
    for number, caption in enumerate(window.captions, start=window.start + 1):
        counts.read += 1
        if caption.text in new:
            new.discard(caption.text)  # its first line; later ones reuse the translation
        else:
            counts.reused += 1
        translation = known[caption.text]
        reason = rejection(caption.text, translation)
        if reason is not None:
            counts.rejected += 1
            counts.reasons[reason] = counts.reasons.get(reason, 0) + 1
            outputs.write("rejects", [str(number), reason, caption.text, translation])
        elif options.eval_output and in_evaluation(caption.group, options.eval_fraction):
            counts.eval += 1
            outputs.write("eval", [caption.text, translation])
        else:
            outputs.write("output", [caption.text, translation])


class LocalEngine:
    """Batches translated one after another in this process."""

    whole_plan = False

    def __init__(self, translator):
        self.translator = translator

    def translate(self, batches: list[list[str]]) -> Iterator[list[str]]:
        for batch in batches:
            yield self.translator.translate_batch(batch)
