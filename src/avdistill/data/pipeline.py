"""tf.data input pipelines of every model, with the original loader's semantics (§2.3-§2.4).

A list names 1-second records; consecutive groups of `total_length` (10) form a block.
Training draws `number_of_crops` windows of `sample_length` seconds from each block,
uniformly and with replacement, and shuffles them; inference cuts each block into
consecutive non-overlapping windows. A window's labels are those of its first second.

Order of work (TF Model Garden style): crops of paths -> shuffle -> parallel GZIP reads
-> parse -> window of `sample_length` records -> batch -> batched transforms (waveform,
spectrogram, frames) -> prefetch. Transforms run on whole batches in TensorFlow ops; no
Python runs per sample. tf.data's autotuner is off (see `_WITHOUT_AUTOTUNE`).

Randomness is seeded: crops by `(seed, epoch)` through stateless ops, the shuffle by
`seed + epoch`, so an epoch is the same on every run and differs between epochs (the
original reseeded its shuffle with the epoch number; its crops used a fixed op seed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from avdistill.constants import FRAMES_PER_SECOND, NUM_ACTIONS, NUM_LOCATIONS, NUM_SUBJECTS
from avdistill.data import audio, lists, records, video
from avdistill.errors import DataError
from avdistill.networks.registry import INPUT_MODALITIES


@dataclass(frozen=True)
class PipelineOptions:
    """Loader settings; the defaults are the original loader's where it had one."""

    sample_length: int = 5  # seconds per sample (L)
    total_length: int = 10  # seconds per block in a list
    number_of_crops: int = 6  # training windows per block
    batch_size: int = 32
    seed: int = 0
    normalize: bool = False  # spectrogram min-max normalisation (HearNet)
    stats: tuple | None = None  # (global_min, global_max) 257-vectors when normalize
    resampler: str = "fft"  # or "kaiser_best" (librosa, the original's, slow)
    video_channel_order: str = "bgr"  # the original's; "rgb" is the corrected one
    video_resize: str = "legacy"  # the original's; "half_pixel" is TF2's
    video_crop_size: int = 224  # the original's; smaller crops make ResNet-50 affordable on CPU
    parallel_reads: int = 8

    def __post_init__(self):
        if self.sample_length < 1 or self.total_length % self.sample_length:
            raise ValueError(f"sample_length ({self.sample_length}) must divide total_length ({self.total_length})")
        if self.normalize and self.stats is None:
            raise ValueError("normalize=True needs stats=(global_min, global_max)")


def load_stats(stats_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin spectrogram min and max written by `compute_spectrogram_stats`."""
    stats_dir = Path(stats_dir)
    out = []
    for name in ("global_min.npy", "global_max.npy"):
        path = stats_dir / name
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(path, f"cannot read spectrogram statistics ({error})") from None
        if array.shape != (257,):
            raise DataError(path, f"expected 257 per-bin values, found shape {array.shape}")
        out.append(array.astype(np.float32))
    return out[0], out[1]


def _crops(num_records: int, training: bool, options: PipelineOptions, epoch) -> tf.Tensor:
    """[num_samples, L] indices into a list: random windows (training) or consecutive ones."""
    length, total = options.sample_length, options.total_length
    blocks = tf.reshape(tf.range(num_records), [-1, total])
    if not training:
        return tf.reshape(blocks, [-1, length])
    num_blocks = blocks.shape[0]
    seed = tf.stack([tf.constant(options.seed, tf.int64), tf.cast(epoch, tf.int64)])
    starts = tf.random.stateless_uniform(
        [num_blocks, options.number_of_crops], seed=seed, minval=0, maxval=total - length + 1, dtype=tf.int32
    )
    windows = starts[..., None] + tf.range(length)[None, None, :]  # [blocks, crops, L]
    return tf.reshape(tf.gather(blocks, windows, batch_dims=1), [-1, length])


def _group_by_root(modalities: list[str], roots: dict) -> dict[str, list[str]]:
    """Modalities that share a TFRecord root are read from the same files."""
    groups: dict[str, list[str]] = {}
    for modality in modalities:
        if modality not in roots:
            raise ValueError(f"no TFRecord root given for modality {modality!r}")
        groups.setdefault(os.fspath(roots[modality]), []).append(modality)
    return groups


def _window(element: dict, inputs: list[str], options: PipelineOptions) -> dict:
    """L consecutive records -> one sample; labels of its first second, one-hot."""
    out = {
        "action": tf.one_hot(element["action"][0], NUM_ACTIONS),
        "location": tf.one_hot(element["location"][0], NUM_LOCATIONS),
        "subject": tf.one_hot(element["subject"][0], NUM_SUBJECTS),
    }
    frames = options.sample_length * FRAMES_PER_SECOND
    if "acoustic_images" in inputs:
        out["acoustic_images"] = tf.reshape(element["acoustic_images"], [frames, 36, 48, 12])
    if "waveform" in inputs or "spectrogram" in inputs:
        out["audio"] = tf.reshape(element["audio"], [frames, 1024])
    if "video_frames" in inputs or "video_clip" in inputs:
        shape = tf.shape(element["video"])
        clip = tf.reshape(element["video"], [frames, shape[2], shape[3], 3])
        if "video_clip" in inputs:
            out["video_clip"] = tf.gather(clip, video.temporal_frame_indices(frames))
        if "video_frames" in inputs:
            out["video_frames"] = clip
    return out


def _transform_batch(batch: dict, inputs: list[str], options: PipelineOptions) -> dict:
    """The heavy per-sample work, on a whole batch at once."""
    kept = ("action", "location", "subject", "teacher_logits", "teacher_features")
    out = {key: batch[key] for key in kept if key in batch}
    if "acoustic_images" in inputs:
        out["acoustic_images"] = batch["acoustic_images"]
    if "waveform" in inputs or "spectrogram" in inputs:
        wave = audio.waveform(batch["audio"], options.resampler)
        if "waveform" in inputs:
            out["waveform"] = wave
        if "spectrogram" in inputs:
            spec = audio.spectrogram(wave)
            if options.normalize:
                spec = audio.normalize_spectrogram(spec, *options.stats)
            out["spectrogram"] = spec
    for name in ("video_frames", "video_clip"):
        if name in inputs:
            clips = batch[name]
            shape = tf.shape(clips)
            flat = tf.reshape(clips, tf.concat([[-1], shape[2:]], axis=0))
            frames = video.preprocess_frames(
                flat, options.video_channel_order, options.video_resize, options.video_crop_size
            )
            size = options.video_crop_size
            out[name] = tf.reshape(frames, [shape[0], shape[1], size, size, 3])
    return out


def make_dataset(
    list_path: str | Path,
    roots: dict,
    inputs: list[str],
    training: bool,
    options: PipelineOptions,
    epoch=0,
    teacher_logits: np.ndarray | None = None,
    teacher_features: np.ndarray | None = None,
) -> tf.data.Dataset:
    """The batches of one epoch, as dicts of model inputs and one-hot labels.

    Args:
      list_path: a split list (`training.txt`, ...), relative or absolute record paths.
      roots: modality -> TFRecord root, e.g. `{"acoustic": "results/tfrecords/acoustic"}`.
        Modalities with the same root are read from the same (multi-modal) files.
      inputs: names from `INPUT_MODALITIES`.
      training: random crops and shuffling when True; consecutive windows otherwise.
      epoch: seeds the crops and the shuffle (a Python int or a scalar tensor).
      teacher_logits: [records of the list, 14], a frozen teacher's logits of each record
        (mean over its frames) in list order; each sample then gets `teacher_logits`, their
        mean over the sample's records, i.e. over its 12·L frames (§6.3). [records, K, 14]
        for an ensemble of K teachers: each sample gets [K, 14].
      teacher_features: [records, D], the teachers' penultimate features of each record
        (each teacher's, concatenated), averaged into each sample's `teacher_features` alike.
    """
    unknown = [name for name in inputs if name not in INPUT_MODALITIES]
    if unknown or not inputs:
        raise ValueError(f"inputs must be names from {sorted(INPUT_MODALITIES)}, got {inputs}")
    modalities = sorted({INPUT_MODALITIES[name] for name in inputs})
    groups = _group_by_root(modalities, roots)
    root_names = list(groups)
    resolved = {root: np.array(lists.read_list(list_path, root, options.total_length)) for root in root_names}
    # Crops are drawn on list indices, so every root's copy of the list is cut alike.
    crops = _crops(len(resolved[root_names[0]]), training, options, epoch)
    num_samples = crops.shape[0]
    samples = tf.data.Dataset.from_tensor_slices(crops)
    if training:
        samples = samples.shuffle(
            num_samples, seed=tf.cast(options.seed, tf.int64) + tf.cast(epoch, tf.int64), reshuffle_each_iteration=False
        )
    record_indices = samples.unbatch()
    # The same seeded, non-reshuffling crop order as the records below.
    teacher = {}
    for key, values in (("teacher_logits", teacher_logits), ("teacher_features", teacher_features)):
        if values is not None:
            if len(values) != len(resolved[root_names[0]]):
                raise ValueError(f"{len(values)} rows of {key} for {len(resolved[root_names[0]])} records")
            rows = tf.constant(values, tf.float32)
            teacher[key] = samples.map(lambda crop, rows=rows: tf.reduce_mean(tf.gather(rows, crop), axis=0))

    parts = []
    for root in root_names:
        table = tf.constant(resolved[root])
        files = record_indices.map(lambda i, table=table: tf.gather(table, i))
        part = tf.data.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=options.parallel_reads)
        parts.append(part.map(records.parse_fn(groups[root]), num_parallel_calls=tf.data.AUTOTUNE))
    parsed = parts[0] if len(parts) == 1 else tf.data.Dataset.zip(tuple(parts)).map(_merge)

    windows = parsed.batch(options.sample_length, drop_remainder=True)
    samples = windows.map(lambda e: _window(e, inputs, options), num_parallel_calls=tf.data.AUTOTUNE)
    if teacher:
        samples = tf.data.Dataset.zip((samples, teacher)).map(lambda s, t: {**s, **t})
    batches = samples.batch(options.batch_size)
    batches = batches.map(lambda b: _transform_batch(b, inputs, options), num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(_WITHOUT_AUTOTUNE)


# tf.data's autotuner off: AUTOTUNE then means min(16, schedulable cores) parallel calls. With
# it on, releasing an iterator that was not read to its end (Keras stops an epoch after
# `steps_per_epoch` batches, and every fit() call leaves one behind) waited for the autotuner's
# thread, which sometimes slept through its wake-up: two ResNet-50 jobs sharing 2 cores both
# sat at 0 % CPU for 33 s at the end of fit(), in TensorFlow's iterator destructor
# (`UnboundedThreadPool::LogicalThreadWrapper`), and took 162-171 s instead of 120 s.
# The batches are the same either way: the pipeline's order does not depend on its parallelism.
_WITHOUT_AUTOTUNE = tf.data.Options()
_WITHOUT_AUTOTUNE.autotune.enabled = False


def _merge(*parts):
    merged = {}
    for part in parts:
        merged.update(part)
    return merged


def num_samples(list_path: str | Path, training: bool, options: PipelineOptions) -> int:
    """Samples in one epoch: blocks x crops (training) or blocks x windows per block."""
    entries = [line for line in Path(list_path).read_text().splitlines() if line.strip()]
    blocks = len(entries) // options.total_length
    per_block = options.number_of_crops if training else options.total_length // options.sample_length
    return blocks * per_block
