"""Where the original model's three checkpoints are published: what `hub_upload.py convert`
reads when no local copy is named. Light to import, so the command's `--help` answers at once."""

DEFAULT_TEXT_SOURCE = "mys/distilbert-base-turkish-cased-clip"
DEFAULT_HEAD_URL = "https://github.com/monatis/turkish-clip/raw/main/clip_head.h5"
DEFAULT_VISION_SOURCE = "ViT-B/32"
