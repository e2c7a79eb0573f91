"""Shared fixtures: a tiny synthetic raw dataset and its TFRecords, made once per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    """The script benchmarks/<name>.py as a module (the benchmarks are scripts, not a
    package; they import their neighbour machine.py, so their folder goes on the path)."""
    import importlib.util
    import sys

    folder = REPO / "benchmarks"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# 3 locations x 1 subject x 4 actions, 10 s each (so the converter wraps around), small frames.
TINY = dict(locations=(1, 2, 3), subjects=1, actions=(0, 2, 6, 13), seconds=10.0, frame_size=(48, 64), seed=5)


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    from avdistill.data.synth import SynthOptions, synthesize_dataset

    root = tmp_path_factory.mktemp("raw") / "dataset"
    synthesize_dataset(root, SynthOptions(**TINY), jobs=2)
    return root


@pytest.fixture(scope="session")
def tiny_records(tiny_raw, tmp_path_factory) -> dict[str, Path]:
    """One TFRecord root per modality, as the workflow makes them."""
    from avdistill.data.convert import convert_dataset

    out = tmp_path_factory.mktemp("tfrecords")
    roots = {}
    for modality in ("acoustic", "audio", "video"):
        convert_dataset(tiny_raw / "matfiles", tiny_raw / "sync", out / modality, [modality], jobs=1)
        roots[modality] = out / modality
    return roots


@pytest.fixture(scope="session")
def tiny_lists(tiny_records, tmp_path_factory) -> Path:
    """The `all` split of the tiny records (written by the library)."""
    from avdistill.data.lists import make_lists

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


def pack_zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def pack_tar(path: Path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def soundnet_fixture(tmp_path_factory):
    """(folder, network): a SoundNet5 soundnet5_final.t7 with random weights, written by the
    test-only Torch7 writer, and soundnet_models_public.zip packed like the original."""
    import numpy as np

    from tests import torch7

    folder = tmp_path_factory.mktemp("soundnet")
    network = torch7.soundnet5_network(np.random.default_rng(1))
    torch7.save(folder / "soundnet5_final.t7", network)
    members = {
        "soundnet_models_public/soundnet8_final.t7": b"another model",
        "soundnet_models_public/soundnet5_final.t7": (folder / "soundnet5_final.t7").read_bytes(),
    }
    pack_zip(folder / "soundnet_models_public.zip", members)
    return folder, network


@pytest.fixture(scope="session")
def resnet_fixture(tmp_path_factory):
    """(folder, arrays): resnet_v1_50.ckpt (a V1 checkpoint with slim's names and random
    values) and resnet_v1_50_2016_08_28.tar.gz holding it, as TF-slim shipped it."""
    import numpy as np

    from tests.slim_resnet import resnet_v1_50_variables, write_v1_checkpoint

    folder = tmp_path_factory.mktemp("resnet")
    arrays = resnet_v1_50_variables(np.random.default_rng(4))
    write_v1_checkpoint(folder / "resnet_v1_50.ckpt", arrays)
    pack_tar(
        folder / "resnet_v1_50_2016_08_28.tar.gz", {"resnet_v1_50.ckpt": (folder / "resnet_v1_50.ckpt").read_bytes()}
    )
    return folder, arrays
