"""A stage-1 teacher's logits of every training and validation record, computed once.

The teacher is frozen in stage 2 and sees each 1-second record the same way whichever
sample the record falls in (the original's loader has no augmentation), so its logits
are computed once per record and reused by every student, λ and T. The teacher's own
training job computes them (`train_teacher`) while it is running anyway: the logits
depend on exactly what its training depends on (weights, lists, records, loader), so an
edit reruns them exactly when it retrains the teacher, and the workflow saves one
TensorFlow start per teacher and split. `compute_teacher_logits` alone serves the CLI's
`avdistill teacher-logits`.

The same pass caches the teacher's penultimate features of each record (the input of its
registry entry's `feature_layer`, averaged over the record's frames), which feature
distillation (stage2.alpha > 0) reads: one forward pass serves both, so no job or param
depends on alpha.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from avdistill.errors import DataError
from avdistill.fileio import atomic_path
from avdistill.networks import registry
from avdistill.train.fit import train
from avdistill.train.options import TrainingOptions

log = logging.getLogger(__name__)


def _list_entries(list_path: str | Path) -> list[str]:
    return [line.strip() for line in Path(list_path).read_text().splitlines() if line.strip()]


def compute_teacher_logits(
    teacher_options: TrainingOptions,
    pipeline_options,
    weights: str | Path,
    list_paths: list,
    roots: dict,
    out: str | Path,
) -> np.ndarray:
    """The frozen teacher's logits of every record the lists name, in an .npz.

    `records`: the list entries; `logits`: [records, F, 14], the teacher's per-frame
    logits of each 1-second record (F = 12 frames; 1 for the temporal ResNet-50, whose
    logits already average its 5 frames); `features`: [records, D], its penultimate
    features of each record (mean over the record's frames), when the network names a
    `feature_layer`. `pipeline_options` are the teacher's own, with sample_length 1: each
    record is seen on its own, as inside any sample it falls in.
    """
    from avdistill.data import records
    from avdistill.data.lists import record_paths
    from avdistill.data.pipeline import make_dataset
    from avdistill.networks.build import build_model, with_features
    from avdistill.train.evaluate import predict_outputs
    from avdistill.train.session import configure_tensorflow
    from avdistill.train.weights import load_weights

    if pipeline_options.sample_length != 1:
        raise ValueError("teacher logits are computed per 1-second record (sample_length 1)")
    configure_tensorflow(pipeline_options.seed, teacher_options.threads)
    model = build_model(teacher_options.model, 1, pipeline_options.video_crop_size, teacher_options.trainable)
    load_weights(model, weights)
    network = registry.get(teacher_options.model)
    if network.feature_layer is not None:
        model = with_features(model, network.name)
    inputs, modalities = list(network.inputs), list(network.modalities)
    entries, outputs = [], []
    for list_path in list_paths:
        paths = record_paths([list_path], roots, modalities, pipeline_options.total_length)
        with records.diagnose_errors(paths, modalities):
            list_outputs, _ = predict_outputs(
                model, make_dataset(list_path, roots, inputs, False, pipeline_options), inputs
            )
        outputs.append(list_outputs)
        entries += _list_entries(list_path)
    logits = np.concatenate([o[0] for o in outputs]).astype(np.float32)
    logits = logits if logits.ndim == 3 else logits[:, None, :]
    arrays = {"records": np.array(entries), "logits": logits, "teacher": np.array(teacher_options.model)}
    if network.feature_layer is not None:
        arrays["features"] = np.concatenate([o[1] for o in outputs]).astype(np.float32)
    if len(set(entries)) != len(entries):
        raise DataError(list_paths[0], "the lists name the same record twice")
    with atomic_path(out) as tmp, open(tmp, "wb") as file:
        np.savez(file, **arrays)
    log.info("%s: logits of %d records, %d frames each, written to %s", teacher_options.model, *logits.shape[:2], out)
    return logits


def _load(logits_file: str | Path, key: str) -> tuple[list[str], np.ndarray]:
    try:
        with np.load(logits_file, allow_pickle=False) as data:
            entries, values = list(data["records"]), (data[key] if key in data.files else None)
            data["logits"]  # noqa: B018 - a file without logits is not a teacher's
    except (OSError, ValueError, KeyError) as error:
        raise DataError(logits_file, f"is not a teacher logits file ({error})") from None
    if values is None:
        raise DataError(
            logits_file,
            "holds no teacher features (its network names no feature_layer): "
            "feature distillation (stage2.alpha > 0) needs them",
        )
    return entries, values


def _rows_of_list(logits_file, entries: list[str], values: np.ndarray, list_path) -> np.ndarray:
    index = {entry: i for i, entry in enumerate(entries)}
    wanted = _list_entries(list_path)
    missing = [entry for entry in wanted if entry not in index]
    if missing:
        raise DataError(
            logits_file, f"has no teacher logits for {len(missing)} records of {list_path}, e.g. {missing[0]}"
        )
    return values[[index[entry] for entry in wanted]]


def teacher_features_table(logits_file: str | Path, list_path: str | Path) -> np.ndarray:
    """[records of the list, D]: each record's teacher features (mean over its frames)."""
    entries, features = _load(logits_file, "features")
    if features.ndim != 2 or len(features) != len(entries):
        raise DataError(logits_file, f"teacher features of shape {features.shape} for {len(entries)} records")
    return _rows_of_list(logits_file, entries, features, list_path)


def teacher_table(logits_file: str | Path, list_path: str | Path, classes: int) -> np.ndarray:
    """[records of the list, classes]: each record's teacher logits averaged over its frames."""
    entries, logits = _load(logits_file, "logits")
    if logits.ndim != 3 or logits.shape[-1] != classes:
        raise DataError(logits_file, f"teacher logits of shape {logits.shape}: the student has {classes} classes")
    return _rows_of_list(logits_file, entries, logits, list_path).mean(axis=1)


def train_teacher(
    options: TrainingOptions,
    pipeline_options,
    training_list: str | Path,
    validation_list: str | Path,
    roots: dict,
    weights_out: str | Path,
    teacher_logits_out: str | Path,
    **train_arguments,
) -> dict:
    """`fit.train` for a teacher, then its best weights' logits of every training and
    validation record (`compute_teacher_logits`, one record at a time) in the same process."""
    state = train(
        options, pipeline_options, training_list, validation_list, roots, weights_out=weights_out, **train_arguments
    )
    one_second = replace(pipeline_options, sample_length=1)
    compute_teacher_logits(
        options, one_second, weights_out, [training_list, validation_list], roots, teacher_logits_out
    )
    return state
