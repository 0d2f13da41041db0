"""Which side of the training/evaluation split a caption goes to.

A caption's side depends only on its group (a COCO image, or the caption itself for other
inputs), through a hash: all captions of one image land on one side, a caption repeated in the
input lands with itself, and a resumed run puts every line where the first run would have.
"""

import hashlib


def in_evaluation(group: str, fraction: float) -> bool:
    """True for about `fraction` of the groups."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64
