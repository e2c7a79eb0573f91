"""TFRecord schema: our records read by the original's parser and the other way round."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from avdistill.data import records
from avdistill.data.convert import convert_dataset
from avdistill.errors import DataError


def original_writer(path, action, location, subject, acoustic=None, audio=None, video=None):
    """The original convert_data.py's example, written here independently (TF2 spelling)."""

    def int64(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

    context = {"action": int64(action), "location": int64(location), "subject": int64(subject)}
    lists = {}
    if acoustic is not None:
        context.update(
            {"audio_image/height": int64(36), "audio_image/width": int64(48), "audio_image/depth": int64(12)}
        )
        lists["audio/image"] = [a.astype("<f4").tobytes() for a in acoustic]
    if audio is not None:
        context.update({"audio_data/mics": int64(audio.shape[1]), "audio_data/samples": int64(audio.shape[2])})
        lists["audio/data"] = [a.tobytes() for a in audio]
    if video is not None:
        context.update(
            {"video/height": int64(video.shape[1]), "video/width": int64(video.shape[2]), "video/depth": int64(3)}
        )
        lists["video/image"] = [v.tobytes() for v in video]
    feature_lists = {
        key: tf.train.FeatureList(feature=[tf.train.Feature(bytes_list=tf.train.BytesList(value=[b])) for b in values])
        for key, values in lists.items()
    }
    example = tf.train.SequenceExample(
        context=tf.train.Features(feature=context), feature_lists=tf.train.FeatureLists(feature_list=feature_lists)
    )
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        writer.write(example.SerializeToString())


def original_reader(path, modality):
    """The original loader's parse (_map_func_parse_sequences), written here independently."""
    keys = {
        "acoustic": (("audio_image/height", "audio_image/width", "audio_image/depth"), "audio/image", tf.float32),
        "audio": (("audio_data/mics", "audio_data/samples"), "audio/data", tf.int32),
        "video": (("video/height", "video/width", "video/depth"), "video/image", tf.uint8),
    }[modality]
    context_spec = {k: tf.io.FixedLenFeature([], tf.int64) for k in ("action", "location", "subject", *keys[0])}
    sequence_spec = {keys[1]: tf.io.FixedLenSequenceFeature([], dtype=tf.string)}
    serialized = next(iter(tf.data.TFRecordDataset(str(path), compression_type="GZIP")))
    context, sequence = tf.io.parse_single_sequence_example(serialized, context_spec, sequence_spec)
    shape = [-1] + [int(context[k]) for k in keys[0]]
    data = tf.reshape(tf.io.decode_raw(sequence[keys[1]], keys[2]), shape).numpy()
    return {k: int(context[k]) for k in ("action", "location", "subject")}, data


def test_converted_records_match_raw_files_with_original_offsets_and_wraparound(tiny_raw, tiny_records):
    # Raw Location_02/Subject_01/Action_006 (typing, 0-based) -> Action_007, labels 6, 1, 0.
    raw = "Location_02/Subject_01/Action_006"
    # Record 11 of a 10-second (120-frame) sequence holds frames 121..132 -> 1..12 again.
    path = "Location_02/Subject_01/Action_007/Data_011.tfrecord"
    labels, acoustic = original_reader(tiny_records["acoustic"] / path, "acoustic")
    assert labels == {"action": 6, "location": 1, "subject": 0}
    expected = np.stack(
        [scipy.io.loadmat(tiny_raw / "matfiles" / raw / "MFCC_Image" / f"Data_{i}.mat")["MFCC"] for i in range(1, 13)]
    )
    np.testing.assert_array_equal(acoustic, expected)
    _, audio = original_reader(tiny_records["audio"] / path, "audio")
    expected = np.stack([np.load(tiny_raw / "sync" / raw / "audio" / f"A_{i:06d}.npy") for i in range(1, 13)])
    np.testing.assert_array_equal(audio, expected)
    _, video = original_reader(tiny_records["video"] / path, "video")
    expected = np.stack([cv2.imread(str(tiny_raw / "sync" / raw / "video" / f"I_{i:06d}.jpeg")) for i in range(1, 13)])
    np.testing.assert_array_equal(video, expected)
    # 30 records per sequence, whatever its length.
    assert len(list((tiny_records["audio"] / "Location_02/Subject_01/Action_007").glob("*.tfrecord"))) == 30


def test_records_of_the_original_writer_are_read_by_ours(tmp_path):
    rng = np.random.default_rng(0)
    acoustic = rng.standard_normal((12, 36, 48, 12)).astype(np.float32)
    audio = rng.integers(-(2**30), 2**30, (12, 1, 1024), dtype=np.int32)
    video = rng.integers(0, 255, (12, 20, 30, 3), dtype=np.uint8)
    path = tmp_path / "Data_001.tfrecord"
    original_writer(path, 13, 2, 8, acoustic, audio, video)
    # One multi-modal file serves each modality on its own, and all of them together.
    for modalities in (["acoustic"], ["audio"], ["video"], ["acoustic", "audio", "video"]):
        record = records.read_record(path, modalities)
        assert (record["action"], record["location"], record["subject"]) == (13, 2, 8)
        if "acoustic" in modalities:
            np.testing.assert_array_equal(record["acoustic_images"], acoustic)
        if "audio" in modalities:
            np.testing.assert_array_equal(record["audio"], audio[:, 0])
        if "video" in modalities:
            np.testing.assert_array_equal(record["video"], video)


def test_multimodal_conversion_matches_single_modality_conversion(tiny_raw, tiny_records, tmp_path):
    convert_dataset(tiny_raw / "matfiles", tiny_raw / "sync", tmp_path, ["acoustic", "audio", "video"], locations=[3])
    path = "Location_03/Subject_01/Action_014/Data_030.tfrecord"
    both = records.read_record(tmp_path / path, ["acoustic", "audio", "video"])
    for modality, key in (("acoustic", "acoustic_images"), ("audio", "audio"), ("video", "video")):
        single = records.read_record(tiny_records[modality] / path, [modality])
        np.testing.assert_array_equal(both[key], single[key])
    assert sorted(p.parts[-4] for p in tmp_path.glob("*/*/*/*.tfrecord"))[0] == "Location_03"


def test_multitrack_audio_keeps_microphone_zero(tmp_path):
    audio = np.arange(12 * 3 * 1024, dtype=np.int32).reshape(12, 3, 1024)
    original_writer(tmp_path / "r.tfrecord", 0, 0, 0, audio=audio)
    np.testing.assert_array_equal(records.read_record(tmp_path / "r.tfrecord", ["audio"])["audio"], audio[:, 0])


def test_tensorflow_free_writer_matches_tensorflow_serialisation_and_framing(tmp_path):
    """Workers write records without TensorFlow; TF must see exactly what its own writer makes."""
    import gzip

    rng = np.random.default_rng(3)
    acoustic = rng.normal(size=(12, 36, 48, 12)).astype(np.float32)
    audio = rng.integers(-(2**31), 2**31 - 1, size=(12, 1, 1024), dtype=np.int32)
    video = rng.integers(0, 256, size=(12, 8, 10, 3), dtype=np.uint8)
    ours = records.sequence_example(
        {"action": 13, "location": 2, "subject": 8}, {"acoustic": acoustic, "audio": audio, "video": video}
    )
    # The same example built with TensorFlow's protobuf classes by the original's recipe.
    original_writer(tmp_path / "tf.tfrecord", 13, 2, 8, acoustic=acoustic, audio=audio, video=video)
    tf_serialized = next(iter(tf.data.TFRecordDataset(str(tmp_path / "tf.tfrecord"), compression_type="GZIP")))
    expected = tf.train.SequenceExample.FromString(tf_serialized.numpy())
    assert tf.train.SequenceExample.FromString(ours) == expected

    # Framing (lengths, masked CRC32Cs) and GZIP: the decompressed files are byte-identical
    # when both writers are given the same serialised bytes.
    records.write_record(tmp_path / "ours.tfrecord", ours)
    with tf.io.TFRecordWriter(str(tmp_path / "tf2.tfrecord"), tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        w.write(ours)
    assert gzip.decompress((tmp_path / "ours.tfrecord").read_bytes()) == gzip.decompress(
        (tmp_path / "tf2.tfrecord").read_bytes()
    )
    # TensorFlow's reader verifies both CRCs; the loader decodes what was written.
    decoded = records.read_record(tmp_path / "ours.tfrecord", ["acoustic", "audio", "video"])
    np.testing.assert_array_equal(decoded["acoustic_images"], acoustic)
    np.testing.assert_array_equal(decoded["audio"], audio[:, 0])
    np.testing.assert_array_equal(decoded["video"], video)
    assert (decoded["action"], decoded["location"], decoded["subject"]) == (13, 2, 8)


def test_conversion_does_not_load_tensorflow(tiny_raw, tmp_path):
    """Each conversion worker would otherwise hold ~300 MB of TensorFlow libraries for nothing."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from avdistill.data.convert import convert_dataset\n"
        f"convert_dataset({str(tiny_raw / 'matfiles')!r}, {str(tiny_raw / 'sync')!r}, {str(tmp_path)!r},"
        " ['acoustic', 'audio', 'video'], locations=[1])\n"
        "assert 'tensorflow' not in sys.modules, 'conversion imported tensorflow'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    # And what it wrote is a record holding the three modalities.
    record = records.read_record(
        tmp_path / "Location_01/Subject_01/Action_001/Data_001.tfrecord", ["acoustic", "audio", "video"]
    )
    assert record["acoustic_images"].shape == (12, 36, 48, 12) and record["location"] == 0


def test_a_location_is_converted_all_or_nothing(tiny_raw, tiny_records, tmp_path):
    """The workflow's unit (one modality, one location) appears only when complete, with
    the same records as a whole-dataset conversion; a failure leaves no folder behind."""
    from avdistill.data.convert import convert_location

    out = tmp_path / "audio" / "Location_02"
    convert_location(tiny_raw, out, "audio", 2)
    expected = sorted(
        p.relative_to(tiny_records["audio"] / "Location_02")
        for p in (tiny_records["audio"] / "Location_02").rglob("*.tfrecord")
    )
    assert sorted(p.relative_to(out) for p in out.rglob("*.tfrecord")) == expected and expected
    for path in expected:
        assert (out / path).read_bytes() == (tiny_records["audio"] / "Location_02" / path).read_bytes()
    assert [p.name for p in out.parent.iterdir()] == ["Location_02"]  # no staging left
    broken = tmp_path / "broken"
    shutil.copytree(tiny_raw, broken)
    next((broken / "sync" / "Location_02").rglob("A_000003.npy")).write_bytes(b"not numpy")
    with pytest.raises(DataError):
        convert_location(broken, tmp_path / "bad" / "Location_02", "audio", 2)
    assert not (tmp_path / "bad" / "Location_02").exists()
    assert list((tmp_path / "bad").iterdir()) == []
