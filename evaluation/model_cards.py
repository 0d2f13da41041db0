"""What a model card says about the model's training data, for benchmark contamination warnings.

A card declares its training data in the Hub's YAML metadata field `datasets` (a list of names).
The rule: a model was trained on COCO when any name in that list contains "coco" (any case:
`coco`, `mscoco`, `HuggingFaceM4/COCO`, ...). The converted original's card lists `coco` (the
original was trained on COCO captions machine-translated into Turkish), and a folder written by
train.py lists what its student's card listed when it keeps that text tower, plus its Hub
training data. A card that cannot be read tells nothing, and gets no warning.
"""

from __future__ import annotations

from pathlib import Path

CARD = "README.md"


def card_datasets(source: str, revision: str | None = None) -> list[str] | None:
    """The `datasets` a model folder's or Hub repository's card lists; None without a card."""
    from huggingface_hub import ModelCard

    path = Path(source) / CARD
    try:
        if Path(source).is_dir():
            card = ModelCard.load(path) if path.is_file() else None
        else:
            card = ModelCard.load(source, revision=revision)
    except Exception:  # no card, no network, a card that is not YAML: nothing is declared
        return None
    if card is None:
        return None
    datasets = card.data.to_dict().get("datasets") or []
    return [datasets] if isinstance(datasets, str) else [str(name) for name in datasets]


def trained_on_coco(datasets: list[str] | None) -> bool:
    return any("coco" in name.lower() for name in datasets or [])


def contamination_warning(benchmark: str, source: str, revision: str | None) -> str | None:
    """The warning for a benchmark whose images the model may have trained on: XTD10's are COCO
    train2014 images."""
    if benchmark == "xtd10" and trained_on_coco(card_datasets(source, revision)):
        return (
            "warning: this model's card says it was trained on COCO, and XTD10's images are COCO "
            "train2014 images: its XTD10 figures may be contaminated; XM3600 is the clean one"
        )
    return None
