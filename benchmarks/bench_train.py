"""Training-step benchmark of every stage-1 network, with a per-layer breakdown (issues 3, 13).

    python benchmarks/bench_train.py [--threads 1 2] [--steps 5] [--models dualcamnet ...]

For each thread count (a fresh process each: TensorFlow sizes its pools once), and each
model: samples/s of the Keras training step on random inputs of the paper's shapes (batch
32; the ResNet-50s also at the default config's small crops, and at 224 with a smaller
batch), the step's FLOPs (TensorFlow's profiler on the graph of the forward pass and the
gradients the step computes: no input gradient below the first trained layer, none in a
frozen ResNet backbone), and that rate as a fraction of this machine's dense float32 matmul
FLOP/s measured in the same process with the same threads, alternated with the step
timings (`--rounds`). Ops are deterministic, as in the workflow's jobs.

The per-layer breakdown times each layer alone on its real input (captured from a forward
pass), forward and backward as the step needs it (gradients of its weights, and of its
input above the first trained layer; forward only below the frozen ResNet backbones'
logits), and lists the slowest (`top_layers`) with their share of the summed layer time. A layer far from the matmul rate shows there first.

The JSON (`bench_train.json` next to this file) starts with the machine: CPU model, vector
extensions and TensorFlow's oneDNN setting. To see what an AVX2 laptop sees on a CPU with
AVX-512 or AMX, run with `ONEDNN_MAX_CPU_ISA=AVX2`; `TF_ENABLE_ONEDNN_OPTS=0` measures
TensorFlow's own (Eigen) kernels. `--out` names another JSON for such runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from machine import machine_info  # noqa: E402

# (model, sample_length, crop, batch, trainable). The ResNet-50s train as the paper's
# configuration does (ImageNet backbone frozen: `original`) and, at the default config's
# small crop, as the default does (backbone from scratch: `all`, three times the FLOPs).
CASES = [
    ("dualcamnet", 1, None, 32, "original"),
    ("hearnet", 5, None, 32, "original"),
    ("soundnet5", 5, None, 32, "original"),
    ("resnet50", 1, 32, 16, "original"),
    ("temporal_resnet50", 1, 32, 16, "original"),
    ("resnet50", 1, 32, 16, "all"),
    ("temporal_resnet50", 1, 32, 16, "all"),
    ("resnet50", 1, 224, 2, "original"),
    ("temporal_resnet50", 1, 224, 4, "original"),
]


def matmul_flops(n: int = 2048, repeats: int = 10) -> float:
    """Dense float32 matmul FLOP/s of this process's thread pools (TensorFlow): the better of
    one matmul and two independent ones, which the inter-op pool (2 threads in a job, see
    `configure_tensorflow`) runs side by side as it does a step's independent gradients."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    best = 0.0
    for count in (1, 2):
        step = tf.function(lambda count=count: tf.add_n([tf.reduce_sum(tf.matmul(a + i, b)) for i in range(count)]))
        step()
        start = time.perf_counter()
        for _ in range(repeats):
            step().numpy()
        best = max(best, 2 * n**3 * count * repeats / (time.perf_counter() - start))
    return best


def _profiled_flops(function, batch_shape: tuple) -> float:
    """FLOPs of one call of `function(x)`, counted by TensorFlow's profiler on its traced graph,
    over the ops that call runs: those its outputs depend on. Tracing a gradient builds ops
    the step never runs (a convolution's input gradient below the first trained layer, every
    gradient of a frozen layer); TensorFlow prunes them before running, and so does this
    count. Ops with no registered count (elementwise gradients among them) count zero, so
    convolutions and matmuls are what it counts."""
    import tensorflow as tf

    graph = tf.function(function).get_concrete_function(tf.TensorSpec(batch_shape, tf.float32)).graph
    runs, stack = set(), [t.op for t in graph.outputs] + list(graph.control_outputs)
    while stack:
        op = stack.pop()
        if op.name not in runs:
            runs.add(op.name)
            stack += [t.op for t in op.inputs] + list(op.control_inputs)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    nodes = [tf.compat.v1.profiler.profile(graph=graph, options=options)]
    total = 0
    while nodes:
        node = nodes.pop()
        total += node.float_ops if node.name in runs else 0
        nodes += node.children
    return float(total)


def forward_flops(model, batch_shape: tuple) -> float:
    """FLOPs of one forward pass."""
    return _profiled_flops(lambda x: model(x, training=False), batch_shape)


def step_flops(model, batch_shape: tuple) -> float:
    """FLOPs of the forward pass and of every gradient the step computes, counted on the
    step's own graph.

    Earlier versions took three forward passes for a trained network (the backward pass
    costing two), which holds for a layer in the middle but not for the first trained one:
    the step needs its weight gradient only, not the gradient of the network's input. In
    HearNet the first layer, conv1, is 88 % of the forward FLOPs, so three forward passes
    credited its step with 1.23 GFLOP per sample where it computes 0.87, and its fraction of
    the matmul rate read 1.42 times too high (`benchmarks/README.md`, issue 13). Frozen
    layers (the ResNet backbones of `original`) get no gradient here either, as in the step.
    """
    import tensorflow as tf

    def forward_backward(x):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_sum(logits)
        return loss, tape.gradient(loss, model.trainable_weights)

    return _profiled_flops(forward_backward, batch_shape)


def step_rate(model, inputs, labels, steps: int) -> float:
    """Samples/s of model.train_on_batch (after a warm-up step that traces the graph)."""
    model.train_on_batch(inputs, labels)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(inputs, labels)
    return steps * labels.shape[0] / (time.perf_counter() - start)


def layer_times(model, inputs, fully_trained: bool, repeats: int = 3) -> list[tuple[str, str, float]]:
    """(layer, class, seconds) of each layer's forward + backward on its real input."""
    import keras
    import tensorflow as tf

    timed = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    structure = [layer.input for layer in timed]
    flat = keras.tree.flatten(structure)
    probe = keras.Model(model.inputs, flat)
    values = keras.tree.pack_sequence_as(structure, [tf.convert_to_tensor(v) for v in probe(inputs)])
    rows = []
    trained_below = False  # the step needs a layer's input gradient only above a trained layer
    for layer, value in zip(timed, values, strict=True):
        weights = list(layer.trainable_weights)
        input_gradient = fully_trained and trained_below
        trained_below = trained_below or bool(weights)

        forward_backward = _forward_backward(layer, weights, input_gradient)
        forward_backward(value)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = forward_backward(value)
            keras.tree.map_structure(lambda t: t.numpy() if t is not None else None, out)
            times.append(time.perf_counter() - start)
        rows.append((layer.name, type(layer).__name__, sorted(times)[len(times) // 2]))
    return rows


def _forward_backward(layer, weights: list, input_gradient: bool):
    """One layer's forward pass and the gradients the step needs of it, as one tf.function.

    The weights are closed over, not passed as arguments: a tf.function converts a list of
    variables given as an argument to tensors, the tape then sees no variable, every weight
    gradient is None and TensorFlow prunes the work away (the breakdown of earlier versions
    timed no weight gradient at all: HearNet's conv1 read 3 ms instead of 0.7 s). The loss
    is returned too, so the forward pass runs even where no gradient needs it.
    """
    import tensorflow as tf

    @tf.function
    def forward_backward(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32))
        sources = ([x] if input_gradient else []) + weights
        gradients = tape.gradient(loss, sources) if sources else []
        if any(gradient is None for gradient in gradients):
            raise RuntimeError(f"{layer.name}: a gradient the step needs is None")
        return loss, gradients

    return forward_backward


def _moving(model) -> int:
    """Batch-norm moving statistics: counted by Keras as parameters, never trained."""
    import numpy as np

    return sum(int(np.prod(v.shape)) for v in model.non_trainable_weights if "moving" in v.path)


def run_one(threads: int, steps: int, models: list[str], top: int, baseline: bool = False, rounds: int = 3) -> dict:
    """Every case in this process, with `threads` intra-op threads; with `baseline`, the
    networks in their plain convolution form (`avdistill.networks.layers.as_convolutions`).

    A shared virtual machine's speed drifts within minutes (on the 2-vCPU Zen 5 of
    2026-12-07 the one-thread matmul read 214 GFLOP/s in one run and 123 in the next), so
    one matmul rate measured at the start made a network's fraction depend on when it ran.
    Each case instead alternates `rounds` matmul measurements with `rounds` step timings and
    reports the median of the fractions, each over its adjacent matmul rate."""
    import keras
    import numpy as np

    from avdistill.data.pipeline import PipelineOptions
    from avdistill.networks.layers import as_convolutions
    from avdistill.train.fit import build
    from avdistill.train.options import TrainingOptions
    from avdistill.train.session import configure_tensorflow

    configure_tensorflow(seed=0, threads=threads)
    rows = []
    rng = np.random.default_rng(0)
    for name, length, crop, batch, trainable in CASES:
        if name not in models:
            continue
        options = TrainingOptions(name, learning_rate=1e-4, epochs=1, trainable=trainable)
        pipeline = PipelineOptions(sample_length=length, video_crop_size=crop or 32, batch_size=batch)
        model = build(options, pipeline)
        if baseline:
            model = as_convolutions(model)
            model.compile(optimizer=model_optimizer(), loss=model_loss(), jit_compile=False)
        shape = tuple(model.input.shape[1:])
        inputs = rng.normal(size=(batch, *shape)).astype(np.float32)
        output = tuple(model.output.shape[1:])
        labels = np.eye(14, dtype=np.float32)[rng.integers(0, 14, size=(batch, *output[:-1]))]
        forward = forward_flops(model, (batch, *shape)) / batch
        step = step_flops(model, (batch, *shape)) / batch
        trained = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        fully_trained = trained == model.count_params() - _moving(model)
        three_forward = forward * (3 if fully_trained else 1)
        peaks, rates = [], []
        for _ in range(rounds):
            peaks.append(matmul_flops())
            rates.append(step_rate(model, inputs, labels, steps))
        fractions = [r * step / p for r, p in zip(rates, peaks, strict=True)]
        rate = float(np.median(rates))
        layers = layer_times(model, inputs, fully_trained)
        total = sum(seconds for _, _, seconds in layers)
        row = {
            "model": name,
            "crop": crop,
            "batch": batch,
            "trainable": trainable,
            "samples_per_s": round(rate, 2),
            "step_s": round(batch / rate, 4),
            "forward_GFLOP_per_sample": round(forward / 1e9, 3),
            "step_GFLOP_per_sample": round(step / 1e9, 3),
            "fraction_of_matmul_peak": round(float(np.median(fractions)), 3),
            "matmul_GFLOP_per_s": [round(p / 1e9, 1) for p in peaks],
            "samples_per_s_rounds": [round(r, 2) for r in rates],
            # The convention of earlier JSONs (three forward passes for a trained network,
            # one for a frozen backbone), to compare with them; it overstates HearNet's.
            "fraction_of_matmul_peak_3x_forward": round(
                float(np.median([r * three_forward / p for r, p in zip(rates, peaks, strict=True)])), 3
            ),
            "layers_summed_s": round(total, 4),
            "top_layers": [
                {"layer": layer, "class": kind, "s": round(seconds, 4), "share": round(seconds / total, 3)}
                for layer, kind, seconds in sorted(layers, key=lambda r: -r[2])[:top]
            ],
        }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "top_layers"}), file=sys.stderr)
        keras.backend.clear_session()
    form = "convolutions (baseline)" if baseline else "as built"
    return {"threads": threads, "form": form, "models": rows}


def model_optimizer():
    import keras

    return keras.optimizers.Adam(learning_rate=1e-4, epsilon=1e-8)


def model_loss():
    import keras

    return keras.losses.CategoricalCrossentropy(from_logits=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model and round (default: 5)")
    parser.add_argument("--rounds", type=int, default=3, help="matmul and step timings alternated (default: 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts (default: 1 2)")
    parser.add_argument("--models", nargs="+", default=sorted({case[0] for case in CASES}))
    parser.add_argument("--top", type=int, default=5, help="slowest layers listed per model (default: 5)")
    parser.add_argument("--out", type=Path, default=HERE / "bench_train.json")
    parser.add_argument("--baseline", action="store_true", help="measure the plain convolution form of each network")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one thread count, JSON on stdout
        print(json.dumps(run_one(args.threads[0], args.steps, args.models, args.top, args.baseline, args.rounds)))
        return
    runs = []
    for threads in args.threads:
        command = [sys.executable, __file__, "--worker", "--threads", str(threads), "--steps", str(args.steps)]
        command += ["--rounds", str(args.rounds)]
        command += ["--top", str(args.top), "--models", *args.models] + (["--baseline"] if args.baseline else [])
        runs.append(json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout))
    results = {"machine": machine_info(), "runs": runs}
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
