"""Loads a model folder with whatever transformers is installed and prints its outputs as JSON.

Run by tests/test_transformers4.py under a second interpreter (transformers 4.57), so that the
same folder's outputs can be compared across transformers versions. Imports only what a user of
the model has.
"""

import json
import sys

import numpy as np
import torch
import transformers
from PIL import Image
from transformers import AutoModel, AutoProcessor, pipeline

TEXTS = ["bir kedi fotoğrafı", "sahilde bir insan ve bir heykel", "IŞIK", "ılık süt"]
LABELS = ["kedi", "köpek", "araba"]


def main(folder: str) -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    other = Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8))
    model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**processor(text=TEXTS, images=image)).logits_per_image
        pairs = processor(
            text=TEXTS[:2], images=[image, other], padding="max_length", max_length=12
        )
        out = model(**pairs, return_loss=True, output_hidden_states=True)
        features = model.get_text_features(pairs["input_ids"], pairs["attention_mask"])
    classifier = pipeline("zero-shot-image-classification", model=folder, trust_remote_code=True)
    result = {
        "transformers": transformers.__version__,
        "text": model.encode_text(TEXTS).tolist(),
        "image": model.encode_image([image]).tolist(),
        "logits_per_image": logits.tolist(),
        "pipeline": classifier(image, candidate_labels=LABELS),
        "pipeline_batched": classifier(
            [image, other, image], candidate_labels=LABELS, batch_size=2
        ),
        "loss": out.loss.item(),
        "pair_logits": out.logits_per_text.tolist(),
        "hidden_states": len(out.text_model_output.hidden_states),
        "text_features": getattr(features, "pooler_output", features).tolist(),
        "text_features_type": type(features).__name__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
