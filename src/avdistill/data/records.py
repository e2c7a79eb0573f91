"""The TFRecord schema of the original converter: one GZIP `tf.train.SequenceExample` per file.

Context (Int64, one value each): `action`, `location`, `subject` (0-based labels) and, per
modality it holds, its dimensions. Feature lists: one bytes feature per frame (12 per
record) under `audio/image` (float32), `audio/data` (int32) or `video/image` (uint8 BGR).
A file may hold several modalities, as the original's `--modalities 0 1 2` wrote them;
`parse_fn` reads only the ones asked for.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from avdistill.constants import CONTEXT_KEYS, CONTEXT_LABEL_KEYS, SEQUENCE_KEYS
from avdistill.data import tfrecord_writer
from avdistill.errors import DataError
from avdistill.fileio import atomic_path


def sequence_example(labels: dict, frames: dict) -> bytes:
    """Serialize one record (without TensorFlow, see `avdistill.data.tfrecord_writer`).

    Args:
      labels: `action`, `location`, `subject` as stored (0-based).
      frames: modality -> array of frames: acoustic [F, 36, 48, 12] float32,
        audio [F, mics, 1024] int32, video [F, H, W, 3] uint8.
    """
    context = {key: tfrecord_writer.int64_feature(labels[key]) for key in CONTEXT_LABEL_KEYS}
    feature_lists = {}
    dtypes = {"acoustic": "<f4", "audio": "<i4", "video": np.uint8}
    for modality, array in frames.items():
        array = np.ascontiguousarray(array, dtype=dtypes[modality])
        for key, size in zip(CONTEXT_KEYS[modality], array.shape[1:], strict=True):
            context[key] = tfrecord_writer.int64_feature(size)
        feature_lists[SEQUENCE_KEYS[modality]] = [tfrecord_writer.bytes_feature(frame.tobytes()) for frame in array]
    return tfrecord_writer.sequence_example(context, feature_lists)


# zlib level 1: a quarter of the default level's time for files ~35 % larger; any GZIP
# reader (the original's loader included) reads them the same.
GZIP_LEVEL = 1


def write_record(path: str | Path, serialized: bytes) -> None:
    """Write one serialized example as a GZIP TFRecord file, atomically."""
    with atomic_path(path) as tmp:
        tfrecord_writer.write_gzip_tfrecord(tmp, [serialized], GZIP_LEVEL)


def parse_fn(modalities: list[str]):
    """A tf.data map function: serialized record -> dict of labels and decoded frames.

    Returns `action`, `location`, `subject` (int32 scalars) and, per modality asked for,
    `acoustic_images` [F, 36, 48, 12] float32, `audio` [F, 1024] int32 (microphone 0) or
    `video` [F, H, W, 3] uint8 (BGR), F being the frames in the record (12).
    """
    import tensorflow as tf

    context_spec = {key: tf.io.FixedLenFeature([], tf.int64) for key in CONTEXT_LABEL_KEYS}
    sequence_spec = {}
    for modality in modalities:
        context_spec.update({key: tf.io.FixedLenFeature([], tf.int64) for key in CONTEXT_KEYS[modality]})
        sequence_spec[SEQUENCE_KEYS[modality]] = tf.io.FixedLenSequenceFeature([], tf.string)

    def dims(context, modality):
        return [tf.cast(context[key], tf.int32) for key in CONTEXT_KEYS[modality]]

    def parse(serialized):
        context, sequences = tf.io.parse_single_sequence_example(
            serialized, context_features=context_spec, sequence_features=sequence_spec
        )
        out = {key: tf.cast(context[key], tf.int32) for key in CONTEXT_LABEL_KEYS}
        if "acoustic" in modalities:
            decoded = tf.io.decode_raw(sequences[SEQUENCE_KEYS["acoustic"]], tf.float32)
            images = tf.reshape(decoded, [-1, *dims(context, "acoustic")])
            out["acoustic_images"] = tf.ensure_shape(images, [None, 36, 48, 12])
        if "audio" in modalities:
            decoded = tf.io.decode_raw(sequences[SEQUENCE_KEYS["audio"]], tf.int32)
            tracks = tf.reshape(decoded, [-1, *dims(context, "audio")])
            # Microphone 0 only. The original reshaped to [-1, 1, 1024], which would have
            # interleaved the microphones of a multi-track record; its records had one track.
            out["audio"] = tf.ensure_shape(tracks[:, 0, :], [None, 1024])
        if "video" in modalities:
            decoded = tf.io.decode_raw(sequences[SEQUENCE_KEYS["video"]], tf.uint8)
            frames = tf.reshape(decoded, [-1, *dims(context, "video")])
            out["video"] = tf.ensure_shape(frames, [None, None, None, 3])
        return out

    return parse


def read_record(path: str | Path, modalities: list[str]) -> dict:
    """Read and decode one record file eagerly (for tests, tools and diagnostics)."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset(str(path), compression_type="GZIP").map(parse_fn(modalities))
    (record,) = list(dataset.take(2))
    return {key: value.numpy() for key, value in record.items()}


@contextlib.contextmanager
def diagnose_errors(paths: list[str], modalities: list[str]):
    """Turn TensorFlow's anonymous read errors into a DataError naming the bad record.

    tf.data reports a truncated GZIP stream or a record without the expected features
    without saying which file it was; when that happens, each record is read in turn
    until the culprit is found.
    """
    import tensorflow as tf

    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as error:
        culprit = find_bad_record(paths, modalities)
        if culprit is None:
            raise
        path, problem = culprit
        raise DataError(path, problem) from error


def find_bad_record(paths: list[str], modalities: list[str]):
    """(path, problem) of the first record that cannot be read as `modalities`, or None."""
    import tensorflow as tf

    parse = parse_fn(modalities)
    for path in dict.fromkeys(paths):
        try:
            count = 0
            for serialized in tf.data.TFRecordDataset(path, compression_type="GZIP"):
                parse(serialized)
                count += 1
            if count != 1:
                return path, f"holds {count} records, expected exactly one"
        except tf.errors.DataLossError as error:
            return path, f"corrupt or truncated TFRecord ({error.message.splitlines()[0]})"
        except tf.errors.InvalidArgumentError as error:
            keys = ", ".join(f"{m} ({SEQUENCE_KEYS[m]})" for m in modalities)
            return path, f"is not a record holding {keys}: {error.message.splitlines()[0]}"
    return None
