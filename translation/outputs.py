"""The output files of a translation run, written as it goes and resumable.

After each window of captions the files are flushed to disk and then a progress file
(`OUTPUT.progress`, replaced atomically) records how many captions are done and how long each
file was at that point. A run that is killed and started again cuts every file back to the
recorded length (dropping a half-written window) and continues with the next caption: no line is
lost and none is written twice. The progress file also records the run's settings, so a run
with other settings does not continue one that it would not have written; it is removed when the
run finishes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from translation.errors import TranslationError

PROGRESS_SUFFIX = ".progress"


@dataclass
class Counts:
    """Caption lines done, by what happened to them."""

    read: int = 0
    translated: int = 0  # distinct captions the model translated
    reused: int = 0  # lines whose caption was translated before, earlier in the input
    rejected: int = 0
    eval: int = 0  # pairs written to the evaluation file
    reasons: dict[str, int] = field(default_factory=dict)


class ResumableOutputs:
    """The pairs file, the evaluation file (optional) and the rejects file of one run."""

    def __init__(self, output: Path, rejects: Path, eval_output: Path | None, settings: dict):
        self.paths = {"output": output, "rejects": rejects}
        if eval_output is not None:
            self.paths["eval"] = eval_output
        names = [path.resolve() for path in self.paths.values()]
        if len(set(names)) < len(names):
            raise TranslationError("--output, --eval-output and --rejects must be different files")
        self.progress = output.with_name(output.name + PROGRESS_SUFFIX)
        self.settings = settings
        self.files = {}

    def check_can_open(self) -> None:
        """Raises `TranslationError` where `open` would: settings or files that do not fit."""
        if self.progress.is_file():
            self._read_state()
        else:
            self._check_no_outputs()

    def _check_no_outputs(self) -> None:
        existing = [str(path) for path in self.paths.values() if path.exists()]
        if existing:
            raise TranslationError(
                f"{existing[0]} exists and is not an unfinished run's output (no "
                f"{self.progress.name}): remove it or choose another file"
            )

    def open(self) -> Counts:
        """Opens the files, cut back to the last recorded window; the counts done so far."""
        if self.progress.is_file():
            state = self._read_state()
            counts = Counts(**state["counts"])
            for name, path in self.paths.items():
                size = state["sizes"][name]
                if not path.is_file() or path.stat().st_size < size:
                    raise TranslationError(
                        f"{path} is shorter than {self.progress} records: it was changed since; "
                        "remove both to start again"
                    )
                os.truncate(path, size)
        else:
            self._check_no_outputs()
            counts = Counts()
            for path in self.paths.values():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
        self.files = {name: path.open("ab") for name, path in self.paths.items()}
        self.commit(counts)
        return counts

    def write(self, name: str, fields: list[str]) -> None:
        self.files[name].write(("\t".join(fields) + "\n").encode("utf-8"))

    def commit(self, counts: Counts) -> None:
        """Makes the lines written so far durable, then records them as done."""
        sizes = {}
        for name, file in self.files.items():
            file.flush()
            os.fsync(file.fileno())
            sizes[name] = file.tell()
        state = {"settings": self.settings, "sizes": sizes, "counts": counts.__dict__}
        handle, temporary = tempfile.mkstemp(dir=self.progress.parent, prefix=".progress.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(state, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.progress)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def close(self, finished: bool) -> None:
        for file in self.files.values():
            file.close()
        if finished:
            self.progress.unlink(missing_ok=True)

    def written_translations(self) -> dict[str, str]:
        """English caption -> translation, from the lines already written (pairs and rejects),
        so that a resumed run translates no caption twice either."""
        known = {}
        for name, path in self.paths.items():
            with path.open(encoding="utf-8") as file:
                for line in file:
                    fields = line.rstrip("\n").split("\t")
                    english, turkish = fields[-2:] if name == "rejects" else fields
                    known[english] = turkish
        return known

    def _read_state(self) -> dict:
        try:
            state = json.loads(self.progress.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TranslationError(f"{self.progress}: unreadable ({error})") from None
        if state.get("settings") != self.settings:
            recorded = state.get("settings", {})
            changed = sorted(
                k for k in {**recorded, **self.settings} if recorded.get(k) != self.settings.get(k)
            )
            raise TranslationError(
                f"{self.progress} records a run with other settings ({', '.join(changed)} "
                "differ): run it with the same ones, or remove the outputs to start again"
            )
        return state
