"""Stage 1: train a network from labels (the original `main_s1.py`, §6.1).

Training follows the original trainer: Adam (epsilon 1e-8 as TF1), softmax cross-entropy
plus the L2 terms, per-frame labels for frame models, a fresh crop draw and shuffle each
epoch (seeded by the epoch), validation after every epoch and the weights of the best
validation accuracy kept (ties go to the later epoch, as the original's `>=`).

Everything a rerun needs lives in `work_dir`: the last finished epoch's weights and
optimizer state, the best weights and the history. An interrupted job started again with
the same settings resumes after its last finished epoch and ends with the same weights as
an uninterrupted one; changed settings (a different fingerprint) start afresh. The best
weights are replaced only after a successful validation, so a failing run never spoils
them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avdistill.data.lists import check_lists, record_paths
from avdistill.errors import DataError
from avdistill.fileio import atomic_path, write_text_atomic
from avdistill.networks import registry
from avdistill.train.evaluate import predict_test_lists
from avdistill.train.options import TrainingError, TrainingOptions, check_checkpoint, init_variables
from avdistill.train.session import configure_tensorflow, distribution_strategy
from avdistill.train.weights import load_weights, save_weights

log = logging.getLogger(__name__)


def _examples(dataset, inputs: list[str], frames: int | None):
    """Pipeline batches -> (inputs, action labels); frame models get the label of every frame."""
    import tensorflow as tf

    def to_xy(batch):
        labels = batch["action"]
        if frames:
            labels = tf.tile(labels[:, None, :], [1, frames, 1])
        features = {name: batch[name] for name in inputs}
        return (features[inputs[0]] if len(inputs) == 1 else features), labels

    return dataset.map(to_xy)


def _frames_per_sample(model) -> int | None:
    from avdistill.networks.build import is_frame_model

    return int(model.output.shape[1]) if is_frame_model(model) else None


def build(options: TrainingOptions, pipeline_options):
    """The compiled network of a job, with its init weights when `options.init` is set."""
    import keras

    from avdistill.networks.build import build_model

    model = build_model(
        options.model,
        pipeline_options.sample_length,
        pipeline_options.video_crop_size,
        options.trainable,
        options.batch_norm_decay,
        options.head_init,
    )
    if options.init:
        include, exclude = init_variables(options.model, options.init_from)
        names = load_weights(model, options.init, exclude=exclude, include=include)
        log.info("initialised %d of %d variables from %s", len(names), len(model.weights), options.init)
    model.compile(
        # TF1's Adam epsilon (Keras' default is 1e-7).
        optimizer=keras.optimizers.Adam(learning_rate=options.learning_rate, epsilon=1e-8),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=False,
    )
    return model


# --- resumable state -------------------------------------------------------------------


@dataclass
class TrainingState:
    fingerprint: str
    epochs_done: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = -1
    history: list[dict] = field(default_factory=list)

    @classmethod
    def load(cls, work_dir: Path, fingerprint: str) -> TrainingState:
        path = work_dir / "state.json"
        if path.exists():
            state = cls(**json.loads(path.read_text()))
            if state.fingerprint == fingerprint:
                return state
            log.info("settings changed since the saved state in %s: starting afresh", work_dir)
        return cls(fingerprint)

    def save(self, work_dir: Path) -> None:
        write_text_atomic(work_dir / "state.json", json.dumps(asdict(self), indent=1) + "\n")


def _save_optimizer(optimizer, path: Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as file:
            np.savez(file, *[np.asarray(v.numpy()) for v in optimizer.variables])


def _load_optimizer(optimizer, path: Path) -> None:
    with np.load(path, allow_pickle=False) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(arrays) != len(optimizer.variables):
        raise DataError(path, f"holds {len(arrays)} optimizer variables, the model has {len(optimizer.variables)}")
    for variable, array in zip(optimizer.variables, arrays, strict=True):
        variable.assign(array)


def _stop_on_nan():
    """A Keras callback: a non-finite batch loss stops training with an error that says where."""
    import keras

    class StopOnNaN(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise TrainingError(
                    f"loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}; "
                    "check the inputs and the learning rate (the best weights so far are kept)"
                )

    return StopOnNaN()


def train(
    options: TrainingOptions,
    pipeline_options,
    training_list: str | Path,
    validation_list: str | Path,
    roots: dict,
    work_dir: str | Path,
    weights_out: str | Path,
    history_out: str | Path,
    testing_list: str | Path | None = None,
    test_lists: dict | None = None,
    test_logits_out: str | Path | None = None,
) -> dict:
    """Train `options.model` with validation every epoch; writes the best weights and the history.

    Args:
      pipeline_options: `avdistill.data.pipeline.PipelineOptions` (sample length, crops, batch, seed...).
      roots: modality -> TFRecord root.
      work_dir: resumable state, TensorBoard logs; kept between runs.
      weights_out: the best validation accuracy's weights (.npz), written at the end.
      history_out: per-epoch loss, accuracy, validation loss and accuracy, learning rate (CSV).
      testing_list: checked before training starts, so a split that cannot be tested fails first.
      test_lists, test_logits_out: name -> list; the best weights' window logits of each
        (`write_test_logits`), predicted here while the network is in memory.
    Returns the final state as a dict (best epoch, accuracy, history).
    """
    from avdistill.data.pipeline import make_dataset

    check_lists(
        [training_list, validation_list, testing_list, *(test_lists or {}).values()],
        roots,
        pipeline_options.total_length,
    )
    configure_tensorflow(pipeline_options.seed, options.threads)
    with distribution_strategy(options.distribute).scope():
        model = build(options, pipeline_options)
        network = registry.get(options.model)
        inputs = list(network.inputs)
        frames = _frames_per_sample(model)

        def epoch_data(list_path, training: bool, epoch: int = 0):
            dataset = make_dataset(list_path, roots, inputs, training, pipeline_options, epoch)
            return _examples(dataset, inputs, frames)

        state = fit_epochs(
            model,
            model,
            fingerprint=options.fingerprint(pipeline_options, training_list),
            epoch_data=epoch_data,
            epochs=options.epochs,
            pipeline_options=pipeline_options,
            lists=(training_list, validation_list),
            paths=record_paths(
                [training_list, validation_list], roots, list(network.modalities), pipeline_options.total_length
            ),
            modalities=list(network.modalities),
            work_dir=work_dir,
            weights_out=weights_out,
            history_out=history_out,
            checkpoint=options.checkpoint,
            validation=options.validation,
            learning_rate_schedule=options.learning_rate_schedule,
        )
        if test_logits_out is not None:
            predict_test_lists(model, options.model, pipeline_options, weights_out, roots, test_lists, test_logits_out)
        return state


def fit_epochs(
    model,
    weights_model,
    fingerprint: str,
    epoch_data,
    epochs: int,
    pipeline_options,
    lists: tuple,
    paths: list[str],
    modalities: list[str],
    work_dir: str | Path,
    weights_out: str | Path,
    history_out: str | Path,
    checkpoint: str = "best",
    trained_with=None,
    validation: str = "every_epoch",
    learning_rate_schedule: str = "constant",
) -> dict:
    """The epoch loop shared by stage 1 and distillation: fit, validate, keep the best, resume.

    model: the compiled Keras model that `fit` trains (the network, or a Distiller around
    it); weights_model: the network whose weights are saved; epoch_data(list, training,
    epoch): the (inputs, targets) batches of a list. checkpoint: `best` writes the epoch of
    best validation accuracy to `weights_out` (the original), `last` the last epoch's.
    trained_with: a layer trained alongside (the feature projections of distillation), kept
    in the resumable state only: `weights_out` holds the network's weights alone.
    validation: `every_epoch` scores the validation list after each epoch (the original);
    `last_epoch` only after the last one (the other rows of the history then have no
    validation columns), `never` not at all; only `checkpoint: last` allows either: `best`
    chooses among the scores. learning_rate_schedule: `constant` keeps the compiled rate;
    `cosine` decays it to zero over the `epochs` x steps of the run (Keras' CosineDecay of the
    optimizer's step count, which the resumable state saves, so a resumed run continues it).
    """
    check_checkpoint(checkpoint, validation)
    import keras

    from avdistill.data import records
    from avdistill.data.pipeline import num_samples

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    training_list, validation_list = lists
    state = TrainingState.load(work_dir, fingerprint)
    batch = pipeline_options.batch_size
    steps = math.ceil(num_samples(training_list, True, pipeline_options) / batch)
    if learning_rate_schedule == "cosine":
        initial = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        model.optimizer.learning_rate = keras.optimizers.schedules.CosineDecay(initial, decay_steps=epochs * steps)
    extra = [] if trained_with is None else trained_with.trainable_variables
    model.optimizer.build([*weights_model.trainable_variables, *extra])
    if state.epochs_done:
        load_weights(weights_model, work_dir / "last.weights.npz")
        if trained_with is not None:
            load_weights(trained_with, work_dir / "last.trained_with.weights.npz")
        _load_optimizer(model.optimizer, work_dir / "last.optimizer.npz")
        log.info(
            "resuming after epoch %d of %d (best so far: epoch %d)", state.epochs_done, epochs, state.best_epoch + 1
        )
    validation_data = None if validation == "never" else epoch_data(validation_list, False)
    validation_steps = math.ceil(num_samples(validation_list, False, pipeline_options) / batch)
    callbacks = [_stop_on_nan(), keras.callbacks.TensorBoard(log_dir=str(work_dir / "tensorboard"))]
    for epoch in range(state.epochs_done, epochs):
        training = epoch_data(training_list, True, epoch)
        validated = validation == "every_epoch" or (validation == "last_epoch" and epoch == epochs - 1)
        # Named in the error when a record turns out to be unreadable.
        with records.diagnose_errors(paths, modalities):
            fit = model.fit(
                training,
                validation_data=validation_data if validated else None,
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=steps,
                validation_steps=validation_steps if validated else None,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles, seeded by the epoch
                verbose=2,
            )
        row = {"epoch": epoch + 1, **{k: float(v[-1]) for k, v in fit.history.items()}}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        if not all(math.isfinite(row[k]) for k in ("loss", "val_loss") if k in row):
            raise TrainingError(f"loss became non-finite in epoch {epoch + 1}: {row}")
        state.history.append(row)
        if validated and row["val_accuracy"] >= state.best_accuracy:  # '>=': ties go to the later epoch
            save_weights(weights_model, work_dir / "best.weights.npz")
            state.best_accuracy, state.best_epoch = row["val_accuracy"], epoch
        save_weights(weights_model, work_dir / "last.weights.npz")
        if trained_with is not None:
            save_weights(trained_with, work_dir / "last.trained_with.weights.npz")
        _save_optimizer(model.optimizer, work_dir / "last.optimizer.npz")
        state.epochs_done = epoch + 1
        state.save(work_dir)
    if state.epochs_done == 0:
        raise TrainingError(f"no epoch was trained (epochs = {epochs})")
    if state.best_epoch >= 0:
        log.info("best epoch %d: validation accuracy %.4f", state.best_epoch + 1, state.best_accuracy)
    if checkpoint == "last":
        log.info("keeping the last epoch (%d), as checkpoint: last asks", state.epochs_done)
    _write_history(state.history, history_out)
    with atomic_path(weights_out) as tmp:
        shutil.copyfile(work_dir / f"{checkpoint}.weights.npz", tmp)
    return asdict(state)


def _write_history(history: list[dict], path: str | Path) -> None:
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)
