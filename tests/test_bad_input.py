"""Bad input stops with one clear error naming the file, and leaves nothing half-written."""

from __future__ import annotations

import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import scipy.io

from avdistill.data.convert import convert_dataset
from avdistill.data.pipeline import PipelineOptions, make_dataset
from avdistill.errors import DataError

SEQ = "Location_01/Subject_01/Action_002"


def convert(raw, out, modalities=("acoustic", "audio", "video")):
    return convert_dataset(raw / "matfiles", raw / "sync", out, list(modalities), jobs=1)


def assert_nothing_written(out):
    assert not list(out.rglob("*.tfrecord")) and not list(out.rglob("*.part"))


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda r: (r / "matfiles" / SEQ / "MFCC_Image/Data_50.mat").unlink(),
            r"MFCC_Image: frames are not numbered 1..n: Data_50.mat is missing",
        ),
        (
            lambda r: truncate(r / "matfiles" / SEQ / "MFCC_Image/Data_100.mat"),
            r"Data_100.mat: cannot read MATLAB file",
        ),
        (
            lambda r: scipy.io.savemat(
                r / "matfiles" / SEQ / "MFCC_Image/Data_7.mat", {"MFCC": np.zeros((40, 48, 12))}
            ),
            r"Data_7.mat: MFCC has shape \(40, 48, 12\), larger than",
        ),
        (
            lambda r: scipy.io.savemat(
                r / "matfiles" / SEQ / "MFCC_Image/Data_7.mat", {"Beam": np.zeros((36, 48, 12))}
            ),
            r"Data_7.mat: has no 'MFCC' variable",
        ),
        (
            lambda r: np.save(r / "sync" / SEQ / "audio/A_000009.npy", np.zeros((1, 1024), np.float64)),
            r"A_000009.npy: audio must be int32, found float64",
        ),
        (
            lambda r: np.save(r / "sync" / SEQ / "audio/A_000009.npy", np.zeros((1, 512), np.int32)),
            r"A_000009.npy: audio must have shape \(mics, 1024\), found \(1, 512\)",
        ),
        (lambda r: truncate(r / "sync" / SEQ / "audio/A_000010.npy"), r"A_000010.npy: cannot read NumPy file"),
        (lambda r: truncate(r / "sync" / SEQ / "video/I_000011.jpeg", 0.6), r"I_000011.jpeg: truncated or not a JPEG"),
        (
            lambda r: cv2.imwrite(str(r / "sync" / SEQ / "video/I_000005.jpeg"), np.zeros((32, 64, 3), np.uint8)),
            r"I_000005.jpeg: frame shape \(32, 64, 3\) differs from \(48, 64, 3\) in the same sequence",
        ),
        (
            lambda r: (r / "sync" / SEQ / "video/I_000120.jpeg").unlink(),
            r"Action_002: modalities have different numbers of frames \(acoustic: 120, audio: 120, video: 119\)",
        ),
    ],
    ids=[
        "missing-mat",
        "truncated-mat",
        "mat-too-large",
        "mat-wrong-key",
        "npy-dtype",
        "npy-shape",
        "truncated-npy",
        "truncated-jpeg",
        "jpeg-size",
        "count-mismatch",
    ],
)
def test_bad_raw_file_is_named_and_nothing_is_left(raw_copy, tmp_path, damage, message):
    damage(raw_copy)
    out = tmp_path / "out"
    with pytest.raises(DataError, match=message):
        convert(raw_copy, out)
    assert_nothing_written(out)


def test_failure_after_some_sequences_removes_their_records(raw_copy, tmp_path):
    # The last sequence fails on its last frame, after three sequences were written.
    truncate(raw_copy / "matfiles/Location_01/Subject_01/Action_013/MFCC_Image/Data_120.mat")
    out = tmp_path / "out"
    with pytest.raises(DataError, match="Data_120.mat"):
        convert_dataset(raw_copy / "matfiles", raw_copy / "sync", out, ["acoustic"], jobs=2)
    assert_nothing_written(out)


def test_smaller_acoustic_image_is_padded_at_the_front_as_the_original(raw_copy, tmp_path):
    from avdistill.data.raw import read_acoustic_image

    path = raw_copy / "matfiles" / SEQ / "MFCC_Image/Data_1.mat"
    scipy.io.savemat(path, {"MFCC": np.ones((30, 48, 10))})
    image = read_acoustic_image(path)
    assert image.shape == (36, 48, 12) and image.dtype == np.float32
    assert image[:6].sum() == 0 and image[:, :, :2].sum() == 0 and image[6:, :, 2:].min() == 1


@pytest.fixture
def records_copy(tiny_records, tiny_lists, tmp_path):
    root = tmp_path / "audio"
    shutil.copytree(tiny_records["audio"], root)
    return root, tiny_lists / "training.txt"


def test_truncated_record_is_named(records_copy):
    root, training = records_copy
    victim = training.read_text().split()[13]
    truncate(root / victim, 0.7)
    from avdistill.data.stats import compute_spectrogram_stats

    with pytest.raises(DataError, match=rf"{victim}: corrupt or truncated TFRecord"):
        compute_spectrogram_stats(training, root)


def test_record_of_another_modality_is_named(tiny_records, tiny_lists):
    from avdistill.data.stats import compute_spectrogram_stats

    first = tiny_lists.joinpath("training.txt").read_text().split()[0]
    with pytest.raises(DataError, match=rf"{first}: is not a record holding audio \(audio/data\)"):
        compute_spectrogram_stats(tiny_lists / "training.txt", tiny_records["video"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", r"list is empty"),
        (
            "Location_01/Subject_01/Action_001/Data_001.tfrecord\n",
            r"has 1 records, not a whole number of 10-record blocks",
        ),
        (
            "".join(f"Location_09/Subject_01/Action_001/Data_{i:03d}.tfrecord\n" for i in range(1, 11)),
            r"line 1 names a record that does not exist: .*Location_09",
        ),
    ],
    ids=["empty", "partial-block", "missing-record"],
)
def test_bad_list_is_named(tiny_records, tmp_path, content, message):
    path = tmp_path / "training.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=rf"training.txt: {message}"):
        make_dataset(path, {"audio": tiny_records["audio"]}, ["waveform"], True, PipelineOptions())


def test_cli_prints_one_line_and_exits_2(raw_copy, tmp_path):
    (raw_copy / "sync" / SEQ / "audio/A_000003.npy").unlink()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "avdistill.cli",
            "convert",
            str(raw_copy / "matfiles"),
            str(raw_copy / "sync"),
            str(tmp_path / "o"),
            "--jobs",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "avdistill convert: error:" in result.stderr and "A_000003.npy is missing" in result.stderr
    assert "Traceback" not in result.stderr
