"""Stage 2: what caching the teacher's logits saves.

Measures, on random inputs of the real shapes, the Distiller's training step for HearNet
(5-s samples, batch 16) with the teacher's logits read from the cache, and with the
teacher run inside the step as the original did (DualCamNet on 60 acoustic frames, and
ResNet-50 on 60 video frames at the default 32-pixel crop); and the one-off cost of the
teacher_logits job per record. Writes `bench_distill.json` next to this file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from machine import machine_info  # noqa: E402  (benchmarks/machine.py, beside this script)

BATCH = 16
CROP = 32


def timed_steps(step, batch, warmup: int = 2, steps: int = 6) -> float:
    """Samples per second of `step(batch)` after `warmup` calls."""
    for _ in range(warmup):
        step(batch)
    start = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return BATCH * steps / (time.perf_counter() - start)


def main() -> None:
    import tensorflow as tf

    from avdistill.networks.build import build_model
    from avdistill.train.distillation import make_distiller

    rng = np.random.default_rng(0)
    spectrogram = tf.constant(rng.normal(0, 1, (BATCH, 500, 1, 257)), tf.float32)
    labels = tf.one_hot(rng.integers(0, 14, BATCH), 14)
    teacher_logits = tf.constant(rng.normal(0, 1, (BATCH, 14)), tf.float32)
    teacher_inputs = {
        "dualcamnet": tf.constant(rng.normal(0, 1, (BATCH, 60, 36, 48, 12)), tf.float32),
        "resnet50": tf.constant(rng.normal(0, 1, (BATCH, 60, CROP, CROP, 3)), tf.float32),
    }
    results = {}
    student = build_model("hearnet", 5)
    cached = make_distiller(student, 0.5, 1.0, 1e-4)
    step = tf.function(cached.train_step)
    results["cached_logits"] = timed_steps(step, (spectrogram, (labels, teacher_logits)))
    for name, inputs in teacher_inputs.items():
        teacher = build_model(name, 5, crop_size=CROP)
        inside = make_distiller(student, 0.5, 1.0, 1e-4, teacher=teacher)
        step = tf.function(inside.train_step)
        results[f"{name}_in_step"] = timed_steps(step, ({"student": spectrogram, "teacher": inputs}, labels))
        # The teacher_logits job: one 1-s record at a time, inference only.
        one_second = build_model(name, 1, crop_size=CROP)
        records = inputs[:, :12]
        predict = tf.function(lambda x, model=one_second: model(x, training=False))
        results[f"{name}_logits_per_record"] = timed_steps(predict, records)
    rows = {key: round(value, 1) for key, value in results.items()}
    for name in teacher_inputs:
        rows[f"{name}_speedup"] = round(results["cached_logits"] / results[f"{name}_in_step"], 1)
    print(json.dumps(rows, indent=1))
    out = {"machine": machine_info(), "samples_per_s": rows}
    Path(__file__).with_name("bench_distill.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
