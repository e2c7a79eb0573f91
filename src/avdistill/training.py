"""Stage 1: train a network from labels and test it (the original `main_s1.py`, §6.1-§6.2).

Training follows the original trainer: Adam (epsilon 1e-8 as TF1), softmax cross-entropy
plus the L2 terms, per-frame labels for frame models, a fresh crop draw and shuffle each
epoch (seeded by the epoch), validation after every epoch and the weights of the best
validation accuracy kept (ties go to the later epoch, as the original's `>=`).

Everything a rerun needs lives in `work_dir`: the last finished epoch's weights and
optimizer state, the best weights and the history. An interrupted job started again with
the same settings resumes after its last finished epoch and ends with the same weights as
an uninterrupted one; changed settings (a different fingerprint) start afresh. The best
weights are replaced only after a successful validation, so a failing run never spoils
them. Weights are `.npz` files keyed by variable path (`DualCamNet.conv1/kernel`), so they
load by name and a wrong file is reported variable by variable.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from avdistill.errors import DataError
from avdistill.fileio import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

# Variables a model does not take from one of its own checkpoints (§3.7): its fresh head.
INIT_EXCLUDE = {
    "dualcamnet": ("DualCamNet.fc2/",),
    "hearnet": ("hear_net.fc2/",),
    "soundnet5": ("SoundNet.conv5", "SoundNet.conv6", "SoundNet.fc1/", "SoundNet.fc2/"),
    "resnet50": ("resnet_v1_50.logits/",),
    "temporal_resnet50": ("resnet_v1_50.logits/",),
    "av_model": ("AVNet.",),
}

# Public pretrained weights (avdistill.pretrained): the models each one initialises and the
# variables it sets, (include prefixes, exclude substrings). SoundNet gives conv1-conv4 and
# their batch norms; conv5, conv6 and the head stay fresh, as the original's
# soundnet5_model_params. ImageNet gives the whole ResNet-50 but its logits; the temporal
# convolutions (new in the temporal ResNet-50) and the audio-visual model's DualCamNet and
# AVNet head stay fresh.
PRETRAINED_INIT = {
    "soundnet": {
        "models": ("soundnet5",),
        "variables": (tuple(f"SoundNet.conv{i}" for i in range(1, 5)), ()),
    },
    "imagenet": {
        "models": ("resnet50", "temporal_resnet50", "av_model"),
        "variables": (("resnet_v1_50.",), ("resnet_v1_50.logits/", "conv_temp")),
    },
}


class TrainingError(RuntimeError):
    """Training cannot go on (a NaN loss, an unusable setting); the message says why."""


@dataclass(frozen=True)
class TrainingOptions:
    """Optimisation settings of one stage-1 job (the original's flags)."""

    model: str
    learning_rate: float = 1e-4
    epochs: int = 100
    init: str | None = None  # None: from scratch; else a .weights.npz (the original's init_checkpoint)
    init_from: str = "checkpoint"  # what `init` is: a checkpoint of this model, or PRETRAINED_INIT's
    trainable: str = "original"  # "all" trains the variables the original kept frozen
    batch_norm_decay: float | None = None  # None: the original's decay of each batch norm
    distribute: str = "none"  # "mirrored": tf.distribute.MirroredStrategy over the job's GPUs
    threads: int = 0  # intra-op threads; 0: TensorFlow's default
    # The weights a run keeps: "best" validation accuracy (the original) or the "last" epoch's.
    checkpoint: str = "best"

    def fingerprint(self, pipeline_options, training_list: str | Path) -> str:
        """What decides the result of a run: a saved state resumes only under the same one."""
        settings = {**asdict(self), "pipeline": repr(pipeline_options), "list": Path(training_list).read_text()}
        settings.pop("threads")
        settings.pop("epochs")  # more epochs continue a finished run rather than restart it
        settings.pop("checkpoint")  # which epoch is kept: the same training either way
        if self.init:  # other weights under the same name must not resume the old run
            from avdistill.download import sha256sum

            settings["init_sha256"] = sha256sum(self.init)
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- weights by name -------------------------------------------------------------------


def save_weights(model, path: str | Path) -> None:
    """Every variable of `model` (trainable or not) in an .npz keyed by variable path."""
    arrays = {variable.path: np.asarray(variable.numpy()) for variable in model.weights}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as file:
            np.savez(file, **arrays)


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "weights file does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise DataError(path, f"is not a weights file written by avdistill ({error})") from None


def load_weights(
    model, path: str | Path, exclude: tuple[str, ...] = (), include: tuple[str, ...] | None = None
) -> list[str]:
    """Assign `model`'s variables from `path` by name: those starting with one of `include`
    (all when None) and containing none of `exclude`.

    Raises DataError naming the file when it holds another model's weights, lacks a
    variable or has one of another shape; nothing is assigned then. Returns the names set.
    """
    stored = read_weights(path)
    wanted = [
        v
        for v in model.weights
        if (include is None or v.path.startswith(include)) and not any(part in v.path for part in exclude)
    ]
    if wanted and not any(v.path in stored for v in wanted):
        scopes = sorted({key.split(".")[0].split("/")[0] for key in stored})
        raise DataError(path, f"holds weights of another model ({', '.join(scopes)}), not {model.name}")
    problems = []
    for variable in wanted:
        if variable.path not in stored:
            problems.append(f"no {variable.path}")
        elif tuple(stored[variable.path].shape) != tuple(variable.shape):
            problems.append(f"{variable.path} has shape {stored[variable.path].shape}, model needs {variable.shape}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError(path, f"incompatible with {model.name}: {'; '.join(problems[:3])}{more}")
    for variable in wanted:
        variable.assign(stored[variable.path])
    return [variable.path for variable in wanted]


# --- determinism and set-up ------------------------------------------------------------


def configure_tensorflow(seed: int, threads: int = 0) -> None:
    """Seed Python, NumPy and TensorFlow, make ops deterministic, and size the thread pools.

    On a GPU TensorFlow picks it up with no change here; determinism then costs some speed.
    """
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))
        except RuntimeError:  # already initialised in this process (tests): keep its pools
            pass
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    # No device is chosen here: TensorFlow takes the GPUs it sees, which under SLURM are
    # the ones allocated to the job (CUDA_VISIBLE_DEVICES).
    gpus = tf.config.list_physical_devices("GPU")
    log.info("devices: %s", ", ".join(d.name for d in gpus) if gpus else "CPU only")


def require_gpus(count: int) -> None:
    """Fail at once, in one line, when a job asks for GPUs that TensorFlow does not see.

    A job sent to a GPU node (resources `gpu: N`, as profiles/slurm asks for training) with
    a CPU-only TensorFlow would otherwise train on the CPU for days without a word.
    """
    if not count:
        return
    from importlib.metadata import PackageNotFoundError, version

    import tensorflow as tf

    seen = len(tf.config.list_physical_devices("GPU"))
    if seen >= count:
        return
    try:
        why = f"tensorflow-cpu {version('tensorflow-cpu')} is installed, which has no CUDA support"
        fix = "install the GPU build: pip install -e '.[gpu]' in an environment without tensorflow-cpu"
    except PackageNotFoundError:
        why = f"TensorFlow {tf.__version__} found no usable CUDA device (driver, CUDA libraries, CUDA_VISIBLE_DEVICES)"
        fix = "check `nvidia-smi` on the node and install with pip install -e '.[gpu]'"
    raise TrainingError(
        f"this job asks for {count} GPU(s) (resources gpu={count}) but TensorFlow sees {seen}: {why}; "
        f"{fix}, or set the job's gpu resource to 0 to run on the CPU"
    )


DISTRIBUTE = ("none", "mirrored")


def distribution_strategy(name: str):
    """The tf.distribute strategy a job trains under: the default one (a single device), or
    MirroredStrategy over every visible GPU; without GPUs, over every logical CPU device (one,
    unless a test configured more)."""
    import tensorflow as tf

    if name not in DISTRIBUTE:
        raise ValueError(f"distribute must be one of {DISTRIBUTE}, got {name!r}")
    if name == "none":
        return tf.distribute.get_strategy()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    log.info("MirroredStrategy over %d replicas: %s", strategy.num_replicas_in_sync, [d.name for d in devices])
    return strategy


def model_inputs(model_name: str) -> list[str]:
    from avdistill.pipeline import MODEL_INPUTS

    if model_name == "av_model":
        return ["video_frames", "acoustic_images"]
    return [MODEL_INPUTS[model_name]]


def model_modalities(model_name: str) -> list[str]:
    """The TFRecord modalities a network reads."""
    from avdistill.pipeline import INPUT_MODALITIES

    return sorted({INPUT_MODALITIES[name] for name in model_inputs(model_name)})


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
    from avdistill.models import is_frame_model

    return int(model.output.shape[1]) if is_frame_model(model) else None


def init_variables(model: str, init_from: str) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """(include, exclude) of the variables `model` takes from an init file of kind `init_from`."""
    if init_from == "checkpoint":
        return None, INIT_EXCLUDE[model]
    if init_from not in PRETRAINED_INIT:
        raise TrainingError(f"unknown init {init_from!r}: use scratch, {', '.join(PRETRAINED_INIT)} or a weights file")
    if model not in PRETRAINED_INIT[init_from]["models"]:
        users = ", ".join(PRETRAINED_INIT[init_from]["models"])
        raise TrainingError(f"init {init_from!r} is for {users}, not {model}")
    return PRETRAINED_INIT[init_from]["variables"]


def build(options: TrainingOptions, pipeline_options):
    """The compiled network of a job, with its init weights when `options.init` is set."""
    import keras

    from avdistill.models import build_model

    model = build_model(
        options.model,
        pipeline_options.sample_length,
        pipeline_options.video_crop_size,
        options.trainable,
        options.batch_norm_decay,
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


CHECKPOINTS = ("best", "last")


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
      pipeline_options: `avdistill.pipeline.PipelineOptions` (sample length, crops, batch, seed...).
      roots: modality -> TFRecord root.
      work_dir: resumable state, TensorBoard logs; kept between runs.
      weights_out: the best validation accuracy's weights (.npz), written at the end.
      history_out: per-epoch loss, accuracy, validation loss and accuracy, learning rate (CSV).
      testing_list: checked before training starts, so a split that cannot be tested fails first.
      test_lists, test_logits_out: name -> list; the best weights' window logits of each
        (`write_test_logits`), predicted here while the network is in memory.
    Returns the final state as a dict (best epoch, accuracy, history).
    """
    from avdistill.pipeline import make_dataset

    check_lists(
        [training_list, validation_list, testing_list, *(test_lists or {}).values()],
        roots,
        pipeline_options.total_length,
    )
    configure_tensorflow(pipeline_options.seed, options.threads)
    with distribution_strategy(options.distribute).scope():
        model = build(options, pipeline_options)
        inputs = model_inputs(options.model)
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
                [training_list, validation_list], roots, model_modalities(options.model), pipeline_options.total_length
            ),
            modalities=model_modalities(options.model),
            work_dir=work_dir,
            weights_out=weights_out,
            history_out=history_out,
            checkpoint=options.checkpoint,
        )
        if test_logits_out is not None:
            predict_test_lists(model, options.model, pipeline_options, weights_out, roots, test_lists, test_logits_out)
        return state


def predict_test_lists(model, model_name: str, pipeline_options, weights, roots, lists: dict, out) -> None:
    """Load the best `weights` into the trained `model` and write its test logits to `out`."""
    load_weights(model, weights)
    results = list_logits(model, model_name, pipeline_options, roots, lists)
    write_test_logits(out, results, pipeline_options.sample_length, pipeline_options.total_length)


def check_lists(list_paths, roots: dict, total_length: int) -> None:
    """Every given list holds whole blocks of existing records (DataError naming it if not)."""
    from avdistill.lists import read_list

    root = next(iter(roots.values()))
    for list_path in list_paths:
        if list_path is not None:
            read_list(list_path, root, total_length)


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
) -> dict:
    """The epoch loop shared by stage 1 and distillation: fit, validate, keep the best, resume.

    model: the compiled Keras model that `fit` trains (the network, or a Distiller around
    it); weights_model: the network whose weights are saved; epoch_data(list, training,
    epoch): the (inputs, targets) batches of a list. checkpoint: `best` writes the epoch of
    best validation accuracy to `weights_out` (the original), `last` the last epoch's.
    """
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    import keras

    from avdistill import records
    from avdistill.pipeline import num_samples

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    training_list, validation_list = lists
    state = TrainingState.load(work_dir, fingerprint)
    model.optimizer.build(weights_model.trainable_variables)
    if state.epochs_done:
        load_weights(weights_model, work_dir / "last.weights.npz")
        _load_optimizer(model.optimizer, work_dir / "last.optimizer.npz")
        log.info(
            "resuming after epoch %d of %d (best so far: epoch %d)", state.epochs_done, epochs, state.best_epoch + 1
        )
    validation = epoch_data(validation_list, False)
    batch = pipeline_options.batch_size
    steps = math.ceil(num_samples(training_list, True, pipeline_options) / batch)
    validation_steps = math.ceil(num_samples(validation_list, False, pipeline_options) / batch)
    callbacks = [_stop_on_nan(), keras.callbacks.TensorBoard(log_dir=str(work_dir / "tensorboard"))]
    for epoch in range(state.epochs_done, epochs):
        training = epoch_data(training_list, True, epoch)
        # Named in the error when a record turns out to be unreadable.
        with records.diagnose_errors(paths, modalities):
            fit = model.fit(
                training,
                validation_data=validation,
                initial_epoch=epoch,
                epochs=epoch + 1,
                steps_per_epoch=steps,
                validation_steps=validation_steps,
                callbacks=callbacks,
                shuffle=False,  # the pipeline shuffles, seeded by the epoch
                verbose=2,
            )
        row = {"epoch": epoch + 1, **{k: float(v[-1]) for k, v in fit.history.items()}}
        row["learning_rate"] = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        if not all(math.isfinite(row[k]) for k in ("loss", "val_loss")):
            raise TrainingError(f"loss became non-finite in epoch {epoch + 1}: {row}")
        state.history.append(row)
        if row["val_accuracy"] >= state.best_accuracy:  # '>=': ties go to the later epoch
            save_weights(weights_model, work_dir / "best.weights.npz")
            state.best_accuracy, state.best_epoch = row["val_accuracy"], epoch
        save_weights(weights_model, work_dir / "last.weights.npz")
        _save_optimizer(model.optimizer, work_dir / "last.optimizer.npz")
        state.epochs_done = epoch + 1
        state.save(work_dir)
    if state.best_epoch < 0:
        raise TrainingError(f"no epoch was trained (epochs = {epochs})")
    log.info("best epoch %d: validation accuracy %.4f", state.best_epoch + 1, state.best_accuracy)
    if checkpoint == "last":
        log.info("keeping the last epoch (%d), as checkpoint: last asks", state.epochs_done)
    _write_history(state.history, history_out)
    with atomic_path(weights_out) as tmp:
        shutil.copyfile(work_dir / f"{checkpoint}.weights.npz", tmp)
    return asdict(state)


def record_paths(list_paths, roots: dict, modalities: list[str], total_length: int) -> list[str]:
    """Every record the lists name, per modality, for naming a bad record when reading fails."""
    from avdistill.lists import read_list

    return [p for m in modalities for list_path in list_paths for p in read_list(list_path, roots[m], total_length)]


def _write_history(history: list[dict], path: str | Path) -> None:
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)


# --- test ------------------------------------------------------------------------------


def predict_logits(model, dataset, inputs: list[str]):
    """Logits and one-hot action labels of a whole inference dataset, in list order."""
    logits, labels = [], []
    for batch in dataset:
        features = {name: batch[name] for name in inputs}
        # predict_on_batch runs the compiled inference graph, not eager ops.
        logits.append(np.asarray(model.predict_on_batch(features[inputs[0]] if len(inputs) == 1 else features)))
        labels.append(np.asarray(batch["action"]))
    return np.concatenate(logits), np.concatenate(labels)


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


def list_logits(model, model_name: str, pipeline_options, roots: dict, lists: dict) -> dict:
    """name -> (list path, window logits, one-hot labels) of each list, in list order."""
    from avdistill import records
    from avdistill.pipeline import make_dataset

    inputs, modalities = model_inputs(model_name), model_modalities(model_name)
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
    from avdistill.models import build_model

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


# --- from the workflow's configuration -------------------------------------------------


def job_options(
    model: str,
    settings: dict,
    loader: dict,
    seed: int,
    threads: int = 0,
    stats_dir: str | Path | None = None,
    init_file: str | Path | None = None,
):
    """(TrainingOptions, PipelineOptions) of a stage-1 job from its config entries.

    settings: `models.<model>` of the config (learning_rate, epochs, batch_size,
    sample_length, number_of_crops, normalize, init, trainable); loader: `loader`.
    `init` is scratch, a weights file, or the name of pretrained weights (soundnet,
    imagenet) whose converted file the workflow passes as `init_file`.
    """
    from avdistill.pipeline import PipelineOptions, load_stats

    normalize = bool(settings.get("normalize", False))
    init = settings.get("init", "scratch")
    init_from = init if init in PRETRAINED_INIT else "checkpoint"
    if init_from != "checkpoint":
        init_variables(model, init_from)  # the model must be one that these weights fit
        if not init_file:
            raise TrainingError(f"init {init!r} needs the converted weights file (resources/pretrained/)")
        init = str(init_file)
    options = TrainingOptions(
        model=model,
        learning_rate=float(settings["learning_rate"]),
        epochs=int(settings["epochs"]),
        init=None if init == "scratch" else init,
        init_from=init_from,
        trainable=settings.get("trainable", "original"),
        batch_norm_decay=settings.get("batch_norm_decay"),
        distribute=settings.get("distribute", "none"),
        threads=threads,
        checkpoint=settings.get("checkpoint", "best"),
    )
    pipeline_options = PipelineOptions(
        sample_length=int(settings["sample_length"]),
        number_of_crops=int(settings["number_of_crops"]),
        batch_size=int(settings["batch_size"]),
        seed=int(seed),
        normalize=normalize,
        stats=tuple(load_stats(stats_dir)) if normalize else None,
        resampler=loader.get("resampler", "fft"),
        video_channel_order=loader.get("video_channel_order", "bgr"),
        video_resize=loader.get("video_resize", "legacy"),
        video_crop_size=int(loader.get("video_crop_size", 224)),
    )
    return options, pipeline_options
