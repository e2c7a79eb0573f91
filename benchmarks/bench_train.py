"""Training-step benchmark of every stage-1 network (issue 3).

    python benchmarks/bench_train.py [--steps 5] [--threads 0]

For each model: samples/s of the Keras training step on random inputs of the paper's
shapes (batch 32; the ResNet-50s also at the default config's 64-pixel crops, and at 224
with a smaller batch), the step's FLOPs (TensorFlow's profiler on the forward graph, x3
for the backward pass of fully trained models, x1 plus the head for the frozen ResNet
backbones), and that rate as a fraction of this machine's measured dense float32 matmul
FLOP/s. For DualCamNet and HearNet it also reports whether the input pipeline
(`bench_data.json`) delivers at least twice what training consumes. Writes
`bench_train.json` next to this file.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def matmul_flops(n: int = 2048, repeats: int = 20) -> float:
    """Dense float32 matmul FLOP/s of this machine (TensorFlow, all threads)."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    step = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    step()
    start = time.perf_counter()
    for _ in range(repeats):
        step().numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def forward_flops(model, batch_shape: dict) -> float:
    """FLOPs of one forward pass, counted by TensorFlow's profiler on the traced graph."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    specs = {name: tf.TensorSpec(shape, tf.float32) for name, shape in batch_shape.items()}
    single = len(specs) == 1
    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(next(iter(specs.values())) if single else specs)
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=frozen.graph, options=options)
    return float(profile.total_float_ops)


def step_rate(model, inputs, labels, steps: int) -> float:
    """Samples/s of model.train_on_batch (after a warm-up step that traces the graph)."""
    model.train_on_batch(inputs, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, labels)
    return steps * labels.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (default: 5)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: TensorFlow's)")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from avdistill.pipeline import PipelineOptions
    from avdistill.training import TrainingOptions, build

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    peak = matmul_flops()
    print(f"dense float32 matmul: {peak / 1e9:.1f} GFLOP/s")
    cases = [
        ("dualcamnet", 1, 224, 32),
        ("hearnet", 5, 224, 32),
        ("soundnet5", 5, 224, 32),
        ("resnet50", 1, 64, 32),
        ("temporal_resnet50", 1, 64, 32),
        ("resnet50", 1, 224, 2),
        ("temporal_resnet50", 1, 224, 8),
    ]
    pipelines_file = Path(__file__).with_name("bench_data.json")
    pipelines = json.loads(pipelines_file.read_text())["pipelines"] if pipelines_file.exists() else {}
    results = {"machine": {"cpus": os.cpu_count(), "matmul_GFLOP_per_s": round(peak / 1e9, 1)}, "models": []}
    rng = np.random.default_rng(0)
    for name, length, crop, batch in cases:
        options = TrainingOptions(name, learning_rate=1e-4, epochs=1)
        model = build(options, PipelineOptions(sample_length=length, video_crop_size=crop, batch_size=batch))
        shape = tuple(model.input.shape[1:])
        inputs = rng.normal(size=(batch, *shape)).astype(np.float32)
        output = tuple(model.output.shape[1:])
        labels = np.eye(14, dtype=np.float32)[rng.integers(0, 14, size=(batch, *output[:-1]))]
        rate = step_rate(model, inputs, labels, args.steps)
        forward = forward_flops(model, {model.input.name: (batch, *shape)}) / batch
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        # Backward costs about twice the forward for every trained layer; the frozen
        # ResNet backbones need no gradient below their logits.
        step_flops = forward * (3 if trainable == model.count_params() - _moving(model) else 1)
        fraction = rate * step_flops / peak
        row = {
            "model": name,
            "crop": crop if "resnet" in name else None,
            "batch": batch,
            "samples_per_s": round(rate, 2),
            "forward_GFLOP_per_sample": round(forward / 1e9, 3),
            "step_GFLOP_per_sample": round(step_flops / 1e9, 3),
            "fraction_of_matmul_peak": round(fraction, 3),
        }
        if name in ("dualcamnet", "hearnet") and name in pipelines:
            delivered = pipelines[name]["samples_per_s"]
            row["pipeline_samples_per_s"] = delivered
            row["pipeline_over_training"] = round(delivered / rate, 1)
        results["models"].append(row)
        print(json.dumps(row))
    out = Path(__file__).with_name("bench_train.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def _moving(model) -> int:
    """Batch-norm moving statistics: counted by Keras as parameters, never trained."""
    import numpy as np

    return sum(int(np.prod(v.shape)) for v in model.non_trainable_weights if "moving" in v.path)


if __name__ == "__main__":
    main()
