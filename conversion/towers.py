"""Image towers of teachers: what a student built from a teacher copies unchanged.

A teacher is an OpenAI `clip` archive or model name (ViT-B/32, ViT-B/16, ViT-L/14,
ViT-L/14@336px), or a transformers `CLIPModel` or `SiglipModel` folder or Hub id (fixed-resolution
SigLIP 2 checkpoints are `SiglipModel`s). Its image tower, `logit_scale` and (SigLIP) `logit_bias`
become the student's, and its image processor settings the student's preprocessing, so that the
student's image embeddings are the teacher's own `get_image_features`.

`check_teacher_model` reads only configuration files, so a teacher that cannot serve (a
text-only model, SigLIP 2's NaFlex variant, an image processor whose size is not the tower's) is
refused by name before anything is downloaded in bulk or trained.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    PretrainedConfig,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from conversion.checkpoints import _Mapper, read_clip_vision
from turkish_clip import TurkishCLIPImageProcessor

OPENAI = "openai"  # a `clip` archive or model name
CLIP = "clip"  # transformers CLIPModel
SIGLIP = "siglip"  # transformers SiglipModel
STUDENT = "student"  # a Turkish CLIP's own tower, when its text encoder is replaced
VISION_ONLY = ("clip_vision_model", "siglip_vision_model", "siglip2_vision_model")
SIGLIP_MEAN_STD = (0.5, 0.5, 0.5)
# The image processor settings a student takes over from its teacher's preprocessor_config.json.
PROCESSOR_KEYS = ("resample", "do_rescale", "rescale_factor", "do_normalize", "image_mean")
PROCESSOR_KEYS += ("image_std", "size", "crop_size", "do_center_crop", "do_resize")


class TeacherError(ValueError):
    """The teacher named cannot give a student its image tower and text targets."""


@dataclass(frozen=True)
class TeacherInfo:
    """What the teacher's configuration files say, before any weights are read."""

    source: str
    kind: str  # OPENAI, CLIP or SIGLIP
    config: dict  # config.json (empty for OpenAI archives)
    preprocessor: dict  # preprocessor_config.json (empty where there is none)


@dataclass(frozen=True)
class ImageTower:
    """A teacher's image side, under `TurkishCLIPModel`'s names, ready to copy into a student."""

    source: str
    kind: str  # OPENAI, CLIP or SIGLIP; STUDENT when taken from a Turkish CLIP
    vision_config: PretrainedConfig  # CLIPVisionConfig or SiglipVisionConfig
    state: dict[str, torch.Tensor]  # vision_model.* and, for CLIP, visual_projection.weight
    projection_dim: int
    logit_scale: float
    logit_bias: float | None  # SigLIP only
    image_processor: TurkishCLIPImageProcessor

    def describe(self) -> str:
        """One line naming the tower, for logs and model cards."""
        vision = self.vision_config
        family = "SigLIP" if self.logit_bias is not None else "CLIP"
        return (
            f"{family} ViT, {vision.num_hidden_layers} layers, width {vision.hidden_size}, "
            f"{vision.image_size} px, patch {vision.patch_size}, {self.projection_dim}-dimensional "
            "embeddings"
        )


def check_teacher_model(name_or_path: str, revision: str | None = None) -> TeacherInfo:
    """The teacher's kind and configuration; refuses, naming it, a teacher that cannot serve."""
    if _is_openai(name_or_path):
        return TeacherInfo(name_or_path, OPENAI, {}, {})
    config = _config_file(name_or_path, revision, "config.json")
    if config is None:
        raise TeacherError(f"--teacher {name_or_path}: no config.json, so not a transformers model")
    preprocessor = _config_file(name_or_path, revision, "preprocessor_config.json") or {}
    model_type = config.get("model_type")
    if model_type == "siglip2":
        raise TeacherError(
            f"--teacher {name_or_path}: a NaFlex SigLIP 2 model (model_type 'siglip2', variable "
            "resolution) is not supported; use a fixed-resolution SigLIP 2 checkpoint "
            "(google/siglip2-base-patch16-224 and the like, model_type 'siglip')"
        )
    if model_type in VISION_ONLY or ("image_size" in config and "text_config" not in config):
        raise TeacherError(
            f"--teacher {name_or_path}: an image-only model ({model_type}); the teacher needs a "
            "text tower too, to embed the English captions"
        )
    if model_type not in (CLIP, SIGLIP):
        what = "a text-only model" if "vision_config" not in config else "not a CLIP or SigLIP"
        raise TeacherError(
            f"--teacher {name_or_path}: {what} (model_type {model_type!r}); a teacher is an "
            "OpenAI clip archive or name, or a transformers CLIPModel or SiglipModel"
        )
    info = TeacherInfo(name_or_path, model_type, config, preprocessor)
    _check_image_size(info)
    return info


def read_image_tower(name_or_path: str, revision: str | None = None) -> ImageTower:
    """The teacher's image tower, scale, bias and image processor; see the module's docstring."""
    info = check_teacher_model(name_or_path, revision)
    if info.kind == OPENAI:
        return _openai_tower(name_or_path)
    return _transformers_tower(info, revision)


def _openai_tower(name: str) -> ImageTower:
    """Through the asserted mapping of `conversion.checkpoints.read_clip_vision`, whose config is
    read off the archive's shapes, so every ViT size converts."""
    state, config, logit_scale = read_clip_vision(name)
    vision_config = CLIPVisionConfig(**config)
    size = vision_config.image_size
    processor = TurkishCLIPImageProcessor(size=size, crop_size=size)  # clip's own preprocess
    return ImageTower(
        source=name,
        kind=OPENAI,
        vision_config=vision_config,
        state=state,
        projection_dim=int(config["projection_dim"]),
        logit_scale=float(logit_scale),
        logit_bias=None,
        image_processor=processor,
    )


def _transformers_tower(info: TeacherInfo, revision: str | None) -> ImageTower:
    from transformers import CLIPModel, SiglipModel

    model_class = SiglipModel if info.kind == SIGLIP else CLIPModel
    model = model_class.from_pretrained(info.source, revision=revision).float().eval()
    vision_config = model.config.vision_config
    if info.kind == SIGLIP:
        projection_dim = vision_config.hidden_size
        bias = float(model.logit_bias.detach().reshape(()))
    else:
        projection_dim, bias = model.config.projection_dim, None
    mapper = _Mapper(f"image tower of --teacher {info.source}")
    for name, tensor in model.vision_model.state_dict().items():
        # a tower kept wrapped in its *VisionModel would name its weights `vision_model.*`
        mapper.put(f"vision_model.{name.removeprefix('vision_model.')}", tensor, name)
    if info.kind == CLIP:
        mapper.put("visual_projection.weight", model.visual_projection.weight, "visual_projection")
    state = mapper.finish(tower_shapes(vision_config, projection_dim))
    return ImageTower(
        source=info.source,
        kind=info.kind,
        vision_config=vision_config,
        state=state,
        projection_dim=int(projection_dim),
        logit_scale=float(model.logit_scale.detach().reshape(())),
        logit_bias=bias,
        image_processor=teacher_image_processor(info, vision_config.image_size),
    )


def tower_shapes(vision_config: PretrainedConfig, projection_dim: int) -> dict[str, torch.Size]:
    """Names and shapes of a student's image side (`vision_model.*`, CLIP's projection)."""
    siglip = isinstance(vision_config, SiglipVisionConfig)
    tower_class = SiglipVisionModel if siglip else CLIPVisionModel
    with torch.device("meta"):
        tower = tower_class(vision_config)
    tower = getattr(tower, "vision_model", tower)
    shapes = {f"vision_model.{name}": t.shape for name, t in tower.state_dict().items()}
    if not siglip:
        shapes["visual_projection.weight"] = torch.Size((projection_dim, vision_config.hidden_size))
    return shapes


def teacher_image_processor(info: TeacherInfo, image_size: int) -> TurkishCLIPImageProcessor:
    """The teacher's preprocessing: its own settings where its folder has them, else its family's
    (CLIP: resize the short side and centre-crop; SigLIP: square resize, mean and std 0.5)."""
    settings = {key: info.preprocessor[key] for key in PROCESSOR_KEYS if key in info.preprocessor}
    if info.kind == SIGLIP:
        defaults = dict(size={"height": image_size, "width": image_size}, do_center_crop=False)
        defaults |= dict(image_mean=SIGLIP_MEAN_STD, image_std=SIGLIP_MEAN_STD)
    else:
        defaults = dict(size=image_size, crop_size=image_size)
    return TurkishCLIPImageProcessor(**(defaults | settings))


def _check_image_size(info: TeacherInfo) -> None:
    """The image processor must make images of the size the tower was built for."""
    vision = info.config.get("vision_config") or {}
    default = SiglipVisionConfig() if info.kind == SIGLIP else CLIPVisionConfig()
    tower = vision.get("image_size", default.image_size)
    try:
        processor = teacher_image_processor(info, tower)
    except (TypeError, ValueError) as error:
        raise TeacherError(f"--teacher {info.source}: preprocessor_config.json: {error}") from None
    if processor.do_center_crop:
        made = (processor.crop_size["height"], processor.crop_size["width"])
    elif "height" in processor.size:
        made = (processor.size["height"], processor.size["width"])
    else:
        made = None  # no crop and a short-side resize: the size varies with the image
    if made != (tower, tower):
        shown = "images of varying size" if made is None else f"{made[0]}x{made[1]} images"
        raise TeacherError(
            f"--teacher {info.source}: mismatched image size: its image processor makes {shown}, "
            f"but its image tower takes {tower}x{tower} (vision_config.image_size)"
        )


def _is_openai(name_or_path: str) -> bool:
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return False
    if path.is_file():
        return True
    return name_or_path in import_clip().available_models()


def _config_file(name_or_path: str, revision: str | None, file: str) -> dict | None:
    """A JSON file of a local folder or Hub repository, or None where it has none."""
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        path = folder / file
        if not path.is_file():
            return None
    else:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )

        try:
            path = Path(hf_hub_download(name_or_path, file, revision=revision))
        except LocalEntryNotFoundError:  # offline, and not in the cache: not proof of absence
            raise TeacherError(
                f"--teacher {name_or_path}: {file} is not in the Hub cache and the Hub cannot be "
                "reached"
            ) from None
        except EntryNotFoundError:
            return None
        except RepositoryNotFoundError:
            raise TeacherError(
                f"--teacher {name_or_path}: no such folder, clip model name or Hub repository"
            ) from None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TeacherError(f"--teacher {name_or_path}: {file} cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise TeacherError(f"--teacher {name_or_path}: {file} does not hold a JSON object")
    return data


def import_clip():
    """OpenAI's `clip` package, without the deprecation notice it triggers on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # clip imports the deprecated pkg_resources
        import clip
    return clip
