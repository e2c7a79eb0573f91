"""Stage 2 beyond the released code: what an ensemble of teachers and the feature term
(stage2.alpha) cost per training step, and what caching a teacher's features costs.

Measures, on random inputs of the real shapes, HearNet's Distiller training step (5-s
samples, batch 16) from cached logits: one teacher (the baseline), an ensemble of the
three paper teachers, one teacher with alpha > 0 (a 1024 -> 1024 projection, DualCamNet's
features), and the three-teacher ensemble with alpha > 0 (projections to 1024, 2048 and
2048); and the teacher job's inference on 1-s records with and without the features
output. Ratios are to the baseline measured in the same run. Writes
`bench_extensions.json` next to this file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from bench_distill import BATCH, timed_steps  # noqa: E402  (the same step timing, batch 16)
from machine import machine_info  # noqa: E402  (benchmarks/machine.py, beside this script)

FEATURES = {"dualcamnet": 1024, "resnet50": 2048, "temporal_resnet50": 2048}


def main() -> None:
    import tensorflow as tf

    from avdistill.networks.build import build_model, with_features
    from avdistill.train.distillation import make_distiller
    from avdistill.train.session import configure_tensorflow

    configure_tensorflow(0, int(os.environ.get("THREADS", "1")))
    rng = np.random.default_rng(0)
    spectrogram = tf.constant(rng.normal(0, 1, (BATCH, 500, 1, 257)), tf.float32)
    labels = tf.one_hot(rng.integers(0, 14, BATCH), 14)

    def logits(k):
        shape = (BATCH, 14) if k == 1 else (BATCH, k, 14)
        return tf.constant(rng.normal(0, 1, shape), tf.float32)

    def features(teachers):
        return tf.constant(rng.normal(0, 1, (BATCH, sum(FEATURES[t] for t in teachers))), tf.float32)

    three = tuple(FEATURES)
    cases = {
        "one_teacher": ((1.0,), 0.0, ("dualcamnet",)),
        "ensemble_of_3": ((1 / 3,) * 3, 0.0, three),
        "one_teacher_alpha": ((1.0,), 0.1, ("dualcamnet",)),
        "ensemble_of_3_alpha": ((1 / 3,) * 3, 0.1, three),
    }
    results = {}
    for name, (weights, alpha, teachers) in cases.items():
        student = build_model("hearnet", 5)
        extra = {}
        if alpha:
            extra = {
                "alpha": alpha,
                "student_with_features": with_features(student, "hearnet"),
                "teacher_feature_sizes": tuple(FEATURES[t] for t in teachers),
            }
        distiller = make_distiller(student, 0.5, 1.0, 1e-4, teacher_weights=weights, **extra)
        distiller.optimizer.build(distiller.trained_variables)
        targets = (labels, logits(len(teachers))) + ((features(teachers),) if alpha else ())
        results[name] = timed_steps(tf.function(distiller.train_step), (spectrogram, targets))
    # The teacher job's pass over its records: logits alone, and logits with features.
    records = tf.constant(rng.normal(0, 1, (BATCH, 12, 36, 48, 12)), tf.float32)
    teacher = build_model("dualcamnet", 1)
    both = with_features(teacher, "dualcamnet")
    results["teacher_logits_only"] = timed_steps(tf.function(lambda x: teacher(x, training=False)), records)
    results["teacher_logits_and_features"] = timed_steps(tf.function(lambda x: both(x, training=False)), records)
    rows = {key: round(value, 1) for key, value in results.items()}
    ratios = {f"{key}_vs_one_teacher": round(results[key] / results["one_teacher"], 3) for key in cases}
    ratios["features_vs_logits_only"] = round(
        results["teacher_logits_and_features"] / results["teacher_logits_only"], 3
    )
    print(json.dumps({"samples_per_s": rows, "throughput_ratio": ratios}, indent=1))
    out = {"machine": machine_info(), "threads": int(os.environ.get("THREADS", "1")), "samples_per_s": rows}
    out["throughput_ratio"] = ratios
    Path(__file__).with_name("bench_extensions.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
