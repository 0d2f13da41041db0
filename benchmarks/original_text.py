"""The original project's TensorFlow text path, timed on captions given by benchmarks/run.py.

Run by another interpreter, one with transformers<5, TensorFlow and tf-keras (see
make_original_env.sh): `python original_text.py SPEC.json`. SPEC holds the captions, the tokenizer
folder, the DistilBERT sizes and the batch size. The model is a TFDistilBertModel with random
weights and a Keras Dense head, as in the original, and `encode_text` below is the original's
(monatis/turkish-clip, inference.py), run over the captions in input order, batch after batch.
Prints one JSON line: embeddings per second (median of the runs after a warm-up) and versions.
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # transformers' TF classes need Keras 2

import tensorflow as tf  # noqa: E402
import transformers  # noqa: E402
from tensorflow import keras  # noqa: E402
from transformers import DistilBertConfig, DistilBertTokenizerFast, TFDistilBertModel  # noqa: E402


def encode_text(base_model, tokenizer, head_model, texts):
    """The original, unchanged: one padded batch, mean over the mask, Dense head, L2 norm."""
    tokens = tokenizer(texts, padding=True, return_tensors="tf")
    embs = base_model(**tokens)[0]

    attention_masks = tf.cast(tokens["attention_mask"], tf.float32)
    sample_length = tf.reduce_sum(attention_masks, axis=-1, keepdims=True)
    masked_embs = embs * tf.expand_dims(attention_masks, axis=-1)
    base_embs = tf.reduce_sum(masked_embs, axis=1) / tf.cast(sample_length, tf.float32)
    clip_embs = head_model(base_embs)
    clip_embs /= tf.norm(clip_embs, axis=-1, keepdims=True)
    return clip_embs


def build(spec: dict):
    tf.random.set_seed(0)
    base_model = TFDistilBertModel(DistilBertConfig(**spec["sizes"]))
    head_model = keras.Sequential(
        [
            keras.layers.InputLayer((spec["sizes"]["dim"],)),
            keras.layers.Dense(spec["projection_dim"]),
        ]
    )
    tokenizer = DistilBertTokenizerFast.from_pretrained(spec["tokenizer"])
    return base_model, tokenizer, head_model


def encode_all(models, texts: list[str], batch_size: int) -> None:
    for start in range(0, len(texts), batch_size):
        encode_text(*models, texts[start : start + batch_size]).numpy()


def main(spec_path: str) -> None:
    with open(spec_path, encoding="utf-8") as file:
        spec = json.load(file)
    models, texts = build(spec), spec["texts"]
    encode_all(models, texts, spec["batch_size"])  # warm-up
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        encode_all(models, texts, spec["batch_size"])
        times.append(time.perf_counter() - start)
    result = {
        "embeddings_per_second": len(texts) / statistics.median(times),
        "tensorflow": tf.__version__,
        "transformers": transformers.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
