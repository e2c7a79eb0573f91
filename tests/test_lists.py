"""Split lists: the same files in the same order as the original generate_lists.py."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from avdistill.data import lists
from avdistill.errors import DataError


def original_generate_lists(root_dir, num_samples, split_mode, location=None):
    """utils/generate_lists.py transcribed to Python 3, independently of the library."""
    files = []
    locations = None if location is None else [location]
    for data_dir in sorted(glob.glob(f"{root_dir}/*/*/*/")):
        parts = data_dir.split("/")
        loc = int(next(filter(re.compile("Location_.*").match, parts)).split("_")[1])
        num_files = len([n for n in os.listdir(data_dir) if n.endswith(".tfrecord")])
        if locations is not None and loc not in locations:
            continue
        for index in range(num_samples * int(num_files / num_samples)):
            files.append(f"{data_dir}/Data_{index + 1:0>3d}.tfrecord")
    size = len(files)
    train = int(size * 0.8 / num_samples)
    val = int(size * 0.1 / num_samples)
    test = size - train - val
    if split_mode == 1:
        train, val, test = train + val, test, 0
    elif split_mode == 2:
        train, val, test = train + val + test, 0, 0
    indices = list(range(0, size, num_samples))
    np.random.seed(42)
    np.random.shuffle(indices)
    pick = lambda idx: [files[j] for i in idx for j in range(i, i + num_samples)]  # noqa: E731
    out = {}
    for name, chosen in (
        ("dataset" if split_mode == 2 else "training", indices[:train]),
        ("validation", indices[train : train + val]),
        ("testing", indices[train + val :]),
    ):
        if chosen:
            out[name] = [os.path.relpath(os.path.normpath(f), root_dir) for f in pick(chosen)]
    return out


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    """3 locations x 3 subjects x 14 actions of empty record files: listing never opens them."""
    root = tmp_path_factory.mktemp("records")
    for loc in (1, 2, 3):
        for sub in (1, 2, 3):
            for act in range(1, 15):
                folder = root / f"Location_{loc:02d}/Subject_{sub:02d}/Action_{act:03d}"
                folder.mkdir(parents=True)
                for i in range(1, 31 if act != 5 else 26):  # one short sequence: 25 records
                    (folder / f"Data_{i:03d}.tfrecord").touch()
    return root


@pytest.mark.parametrize("split_mode", [0, 1, 2])
@pytest.mark.parametrize("location", [None, 1, 2, 3])
def test_split_equals_the_original(fake_root, split_mode, location):
    expected = original_generate_lists(str(fake_root), 10, split_mode, location)
    folders = lists.sequence_folders(fake_root, None if location is None else [location])
    assert lists.split_records(folders, 10, split_mode) == expected


def test_split_sizes_follow_the_80_10_10_rule(fake_root):
    splits = lists.split_records(lists.sequence_folders(fake_root, [1]), 10, 0)
    chunks = 3 * (13 * 3 + 2)  # 13 actions x 3 chunks + the short one's 2, per subject
    assert len(splits["training"]) == 10 * int(chunks * 0.8)
    assert len(splits["validation"]) == 10 * int(chunks * 0.1)
    assert len(splits["training"]) + len(splits["validation"]) + len(splits["testing"]) == 10 * chunks
    # Each 10-line block is one contiguous chunk of one sequence.
    block = splits["testing"][:10]
    assert len({os.path.dirname(p) for p in block}) == 1
    numbers = [int(p[-12:-9]) for p in block]
    assert numbers == list(range(numbers[0], numbers[0] + 10)) and numbers[0] % 10 == 1


def test_cli_writes_the_original_folder(fake_root, tmp_path):
    root = tmp_path / "records"
    root.symlink_to(fake_root)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "avdistill.cli",
            "lists",
            str(root),
            "--num-samples",
            "10",
            "--split-mode",
            "2",
            "--location",
            "2",
        ],
        check=True,
    )
    written = (root / "10_seconds_location_2" / "lists" / "dataset.txt").read_text().splitlines()
    assert written == original_generate_lists(str(fake_root), 10, 2, 2)["dataset"]


def test_lists_must_agree_across_modalities(tmp_path):
    for modality, count in (("acoustic", 30), ("audio", 20)):
        folder = tmp_path / modality / "Location_01/Subject_01/Action_001"
        folder.mkdir(parents=True)
        for i in range(1, count + 1):
            (folder / f"Data_{i:03d}.tfrecord").touch()
    with pytest.raises(DataError, match=r"audio/Location_01/Subject_01/Action_001: has 20 records but .* has 30"):
        lists.check_same_records([tmp_path / "acoustic", tmp_path / "audio"])


def test_read_list_accepts_absolute_paths_of_the_original_tool(fake_root, tmp_path):
    entries = lists.split_records(lists.sequence_folders(fake_root, [3]), 10, 0)["testing"]
    absolute = tmp_path / "testing.txt"
    absolute.write_text("".join(f"{fake_root}//{e}\n" for e in entries))  # the original's double slash
    relative = tmp_path / "relative.txt"
    relative.write_text("".join(f"{e}\n" for e in entries))
    assert [os.path.normpath(p) for p in lists.read_list(absolute)] == lists.read_list(relative, fake_root)
