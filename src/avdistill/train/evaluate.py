"""Stage 1's test (the original `main_s1.py` in test mode, §6.2): logits of the test lists,
clip accuracy over `evaluation.clip_length` seconds, and the metrics.json the tables read."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from avdistill.data.lists import record_paths
from avdistill.errors import DataError
from avdistill.fileio import atomic_path, write_text_atomic
from avdistill.networks import registry
from avdistill.train.options import TrainingOptions
from avdistill.train.session import configure_tensorflow
from avdistill.train.weights import load_weights

log = logging.getLogger(__name__)


def predict_outputs(model, dataset, inputs: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """Every output of the model (one, or several: a teacher's logits and features) over a
    whole inference dataset, in list order, and the one-hot action labels."""
    outputs, labels = [], []
    for batch in dataset:
        features = {name: batch[name] for name in inputs}
        # predict_on_batch runs the compiled inference graph, not eager ops.
        predicted = model.predict_on_batch(features[inputs[0]] if len(inputs) == 1 else features)
        outputs.append([np.asarray(p) for p in (predicted if isinstance(predicted, (list, tuple)) else [predicted])])
        labels.append(np.asarray(batch["action"]))
    return [np.concatenate(column) for column in zip(*outputs, strict=True)], np.concatenate(labels)


def predict_logits(model, dataset, inputs: list[str]):
    """Logits and one-hot action labels of a whole inference dataset, in list order."""
    (logits, *_), labels = predict_outputs(model, dataset, inputs)
    return logits, labels


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-(labels * log_softmax).sum(axis=-1).mean())


def clip_metrics(logits: np.ndarray, labels: np.ndarray, windows_per_clip: int) -> dict:
    """Frame/sample and clip accuracy from per-sample (or per-frame) logits in list order.

    logits: [N, 14] or [N, F, 14] (frame models); labels: [N, 14] one-hot. Consecutive
    groups of `windows_per_clip` samples form a clip (they come from the same 10-second
    block); a clip's logits are the mean over its samples and frames, the averaging the
    distillation teacher uses.
    """
    from avdistill.constants import NUM_ACTIONS

    if len(logits) % windows_per_clip:
        raise ValueError(f"{len(logits)} samples do not make whole clips of {windows_per_clip}")
    per_row = logits if logits.ndim == 3 else logits[:, None, :]
    row_labels = np.broadcast_to(labels[:, None, :], per_row.shape)
    row_accuracy = float((per_row.argmax(-1) == row_labels.argmax(-1)).mean())
    clips = per_row.reshape(-1, windows_per_clip * per_row.shape[1], NUM_ACTIONS).mean(axis=1)
    clip_labels = labels[::windows_per_clip].argmax(-1)
    predictions = clips.argmax(-1)
    confusion = np.zeros((NUM_ACTIONS, NUM_ACTIONS), dtype=int)
    np.add.at(confusion, (clip_labels, predictions), 1)
    return {
        "samples": int(len(logits)),
        "frames_per_sample": int(per_row.shape[1]),
        # Per frame for frame models, as the original's validation accuracy.
        "frame_accuracy": row_accuracy,
        "cross_entropy": _cross_entropy(per_row, row_labels),
        "clips": int(len(clips)),
        "clip_accuracy": float((predictions == clip_labels).mean()),
        "confusion_matrix": confusion.tolist(),  # rows: true action, columns: predicted (clips)
        # Per clip, in list order: what the paired tests and the block bootstrap read.
        "clip_labels": clip_labels.tolist(),
        "clip_predictions": predictions.tolist(),
    }


def predict_test_lists(model, model_name: str, pipeline_options, weights, roots, lists: dict, out) -> None:
    """Load the best `weights` into the trained `model` and write its test logits to `out`."""
    load_weights(model, weights)
    results = list_logits(model, model_name, pipeline_options, roots, lists)
    write_test_logits(out, results, pipeline_options.sample_length, pipeline_options.total_length)


def list_logits(model, model_name: str, pipeline_options, roots: dict, lists: dict) -> dict:
    """name -> (list path, window logits, one-hot labels) of each list, in list order."""
    from avdistill.data import records
    from avdistill.data.pipeline import make_dataset

    network = registry.get(model_name)
    inputs, modalities = list(network.inputs), list(network.modalities)
    results = {}
    for name, path in lists.items():
        dataset = make_dataset(path, roots, inputs, False, pipeline_options)
        with records.diagnose_errors(
            record_paths([path], roots, modalities, pipeline_options.total_length), modalities
        ):
            logits, labels = predict_logits(model, dataset, inputs)
        results[name] = (os.fspath(path), logits, labels)
    return results


def write_test_logits(path: str | Path, results: dict, sample_length: int, total_length: int) -> None:
    """The test job's input: every test list's window logits, scored later without TensorFlow.

    Predicting is the costly half of testing and needs the trained network in memory, so the
    training job does it; the clip length (`evaluation.clip_length`) is applied by the test
    job, so editing it re-scores every model without retraining any.
    """
    arrays = {
        "names": np.array(list(results)),
        "sample_length": np.array(sample_length),
        "total_length": np.array(total_length),
    }
    for i, (list_path, logits, labels) in enumerate(results.values()):
        arrays[f"list_{i}"] = np.array(list_path)
        arrays[f"logits_{i}"] = logits
        arrays[f"labels_{i}"] = labels
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        np.savez(file, **arrays)


def read_test_logits(path: str | Path) -> tuple[int, int, dict]:
    """(sample_length, total_length, name -> (list path, logits, labels)) from `write_test_logits`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(name) for name in data["names"]]
            results = {
                name: (str(data[f"list_{i}"]), data[f"logits_{i}"], data[f"labels_{i}"]) for i, name in enumerate(names)
            }
            return int(data["sample_length"]), int(data["total_length"]), results
    except (OSError, ValueError, KeyError) as error:
        raise DataError(path, f"is not a test logits file ({error})") from None


def check_clip_length(clip_length: int, sample_length: int, total_length: int) -> None:
    if clip_length % sample_length or total_length % clip_length:
        raise ValueError(
            f"clip_length {clip_length} s must be a multiple of sample_length {sample_length} s "
            f"and divide the {total_length}-s blocks"
        )


def clip_scores(
    model_name: str,
    results: dict,
    sample_length: int,
    clip_length: int,
    total_length: int,
    weights,
    run: dict | None = None,
) -> dict:
    """The metrics.json of a model: its first list (the testing list) and `other_lists`.

    `clips_per_block`: consecutive clips of one `total_length`-second block of the list (one
    recording, the unit the split draws), which the tables resample as a whole.
    """
    scores = {}
    for name, (list_path, logits, labels) in results.items():
        scores[name] = {"list": list_path, **clip_metrics(logits, labels, clip_length // sample_length)}
        log.info(
            "%s on %s: frame accuracy %.4f, clip accuracy %.4f over %d clips",
            model_name,
            list_path,
            scores[name]["frame_accuracy"],
            scores[name]["clip_accuracy"],
            scores[name]["clips"],
        )
    first, *others = scores
    return {
        "model": model_name,
        **(run or {}),
        "weights": os.fspath(weights),
        "sample_length": sample_length,
        "clip_length": clip_length,
        "clips_per_block": total_length // clip_length,
        **scores[first],
        "other_lists": {name: scores[name] for name in others},
    }


def evaluate(
    options: TrainingOptions,
    pipeline_options,
    weights: str | Path,
    list_path: str | Path,
    roots: dict,
    metrics_out: str | Path,
    clip_length: int = 5,
    other_lists: dict | None = None,
    run: dict | None = None,
) -> dict:
    """Accuracy and loss of trained `weights` on a list, written to `metrics_out` (JSON).

    The model sees inference windows of its own `sample_length`; `clip_length` seconds of
    consecutive windows form the clips every model is compared on. `other_lists` (name ->
    list) are scored too, under `other_lists` in the JSON (the paper's generalisation to
    other locations); `run` (split, teacher, lambda...) is copied in so that the file says
    what it measures.
    """
    from avdistill.networks.build import build_model

    length = pipeline_options.sample_length
    check_clip_length(clip_length, length, pipeline_options.total_length)  # fails before any work
    configure_tensorflow(pipeline_options.seed, options.threads)
    model = build_model(options.model, length, pipeline_options.video_crop_size, options.trainable)
    # No batch_norm_decay: inference reads the moving averages, whatever their decay was.
    load_weights(model, weights)
    lists = {"testing": list_path, **(other_lists or {})}
    results = list_logits(model, options.model, pipeline_options, roots, lists)
    metrics = clip_scores(options.model, results, length, clip_length, pipeline_options.total_length, weights, run)
    write_text_atomic(metrics_out, json.dumps(metrics, indent=1) + "\n")
    return metrics


def score_test_logits(
    model_name: str, test_logits: str | Path, weights, metrics_out: str | Path, clip_length: int, run: dict | None
) -> dict:
    """The test job: metrics.json from the window logits its training job wrote."""
    sample_length, total_length, results = read_test_logits(test_logits)
    check_clip_length(clip_length, sample_length, total_length)
    metrics = clip_scores(model_name, results, sample_length, clip_length, total_length, weights, run)
    write_text_atomic(metrics_out, json.dumps(metrics, indent=1) + "\n")
    return metrics
