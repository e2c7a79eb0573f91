"""Shared fixtures: a tiny synthetic raw dataset and its TFRecords, made once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]

# 3 locations x 1 subject x 4 actions, 10 s each (so the converter wraps around), small frames.
TINY = dict(locations=(1, 2, 3), subjects=1, actions=(0, 2, 6, 13), seconds=10.0, frame_size=(48, 64), seed=5)


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    from avdistill.synth import SynthOptions, synthesize_dataset

    root = tmp_path_factory.mktemp("raw") / "dataset"
    synthesize_dataset(root, SynthOptions(**TINY), jobs=2)
    return root


@pytest.fixture(scope="session")
def tiny_records(tiny_raw, tmp_path_factory) -> dict[str, Path]:
    """One TFRecord root per modality, as the workflow makes them."""
    from avdistill.convert import convert_dataset

    out = tmp_path_factory.mktemp("tfrecords")
    roots = {}
    for modality in ("acoustic", "audio", "video"):
        convert_dataset(tiny_raw / "matfiles", tiny_raw / "sync", out / modality, [modality], jobs=1)
        roots[modality] = out / modality
    return roots


@pytest.fixture(scope="session")
def tiny_lists(tiny_records, tmp_path_factory) -> Path:
    """The `all` split of the tiny records (written by the library)."""
    from avdistill.lists import make_lists

    out = tmp_path_factory.mktemp("lists") / "all"
    make_lists([tiny_records["acoustic"], tiny_records["audio"]], out)
    return out


@pytest.fixture
def raw_copy(tiny_raw, tmp_path) -> Path:
    """A private copy of one location of the raw dataset, to damage in a test."""
    copy = tmp_path / "dataset"
    for tree in ("matfiles", "sync"):
        shutil.copytree(tiny_raw / tree / "Location_01", copy / tree / "Location_01")
    return copy
