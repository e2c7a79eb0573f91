"""Beyond the released code, run by the tiny workflow: a student distilled from an ensemble
of teachers at once, with the feature term (stage2.alpha), on a leave-one-location-out
split whose held-out location makes table 4; and the configs that cannot work, refused
before any job runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_user_networks import USER_NETWORKS, user_env
from tests.test_workflow import TINY_CONFIG, TINY_TRAINING, snakemake

TEACHER = "acoustic_mlp"  # a user's teacher (tests/user_networks), cheaper than a ResNet-50
ENSEMBLE = f"dualcamnet~2+{TEACHER}~1"
SPLIT, HELD_OUT = "locations_1_2", "location_3"
EXTENSIONS_CONFIG = {
    "seed": 3,
    "seeds": [0],
    # 20 s per sequence: two locations give 16 ten-second chunks, so the split has a
    # validation chunk (int(16 * 0.1) = 1).
    "dataset": {"synthetic": {"locations": [1, 2, 3], "subjects": 1, "actions": [0, 3, 7, 12], "seconds": 20}},
    "tfrecords": {"modalities": ["acoustic", "audio"]},
    "splits": {"names": [SPLIT], "seeds": {}},
    "stage1": {"models": ["dualcamnet", "hearnet"], "splits": [SPLIT]},
    "stage2": {
        "students": ["hearnet"],
        "teachers": ["dualcamnet"],
        "splits": [SPLIT],
        "ensembles": [{"teachers": ["dualcamnet", TEACHER], "weights": [2, 1]}],
        "alpha": 0.01,
        "ablation": {"split": SPLIT, "lambda": [0.5], "temperature": [1.0]},
    },
    "models": {
        "dualcamnet": TINY_TRAINING,
        "hearnet": TINY_TRAINING,
        TEACHER: {
            "builder": "user_teachers:acoustic_mlp",
            "input": "acoustic_images",
            "roles": ["teacher"],
            "feature_layer": "acoustic_mlp.fc1",
            "learning_rate": 1e-3,
            "sample_length": 1,
            **TINY_TRAINING,
        },
    },
}
RUN = "results/stage2/hearnet/from_{teacher}/locations_1_2/lambda~0.5/T~1.0/seed~0"


@pytest.fixture(scope="module")
def extended_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("extensions")
    modules = tmp_path_factory.mktemp("extension_modules")
    shutil.copy(USER_NETWORKS / "user_teachers.py", modules / "user_teachers.py")
    result = snakemake(workdir, "--cores", "2", config=EXTENSIONS_CONFIG, env=user_env(modules))
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def _list(workdir: Path, path: str) -> list[str]:
    return [line for line in (workdir / path).read_text().splitlines() if line]


@pytest.mark.workflow
def test_a_leave_one_out_split_trains_on_two_locations_and_table4_tests_the_third(extended_run):
    workdir = extended_run
    for name in ("training", "validation", "testing"):
        entries = _list(workdir, f"results/lists/{SPLIT}/{name}.txt")
        assert entries and {e.split("/")[0] for e in entries} <= {"Location_01", "Location_02"}, name
    trained_on = {
        e.split("/")[0] for n in ("training", "validation") for e in _list(workdir, f"results/lists/{SPLIT}/{n}.txt")
    }
    assert trained_on == {"Location_01", "Location_02"}
    held_out = _list(workdir, f"results/lists/{HELD_OUT}/dataset.txt")
    assert {e.split("/")[0] for e in held_out} == {"Location_03"}
    # Its own spectrogram statistics, from its training list.
    assert (workdir / f"results/stats/{SPLIT}/global_min.npy").is_file()

    table4 = pd.read_csv(workdir / "results/table4.csv", keep_default_na=False)
    runs = set(zip(table4["model"], table4["teacher"], strict=True))
    assert runs == {
        ("dualcamnet", ""),
        ("hearnet", ""),
        (TEACHER, ""),
        ("hearnet", "dualcamnet"),
        ("hearnet", TEACHER),
        ("hearnet", ENSEMBLE),
    }
    assert set(table4["trained_on"]) == {SPLIT} and set(table4["tested_on"]) == {HELD_OUT}
    # Every record of the held-out location, in 5-second clips (evaluation.clip_length).
    assert set(table4["n_clips"]) == {len(held_out) // 5}
    summary = pd.read_csv(workdir / "results/table4_summary.csv", keep_default_na=False)
    assert len(summary) == 6 and (summary["ci_low"] <= summary["accuracy"]).all()
    assert (summary["accuracy"] <= summary["ci_high"]).all()
    grid = (workdir / "results/table4.md").read_text()
    assert f"{SPLIT} -> {HELD_OUT}" in grid and f"hearnet <- {ENSEMBLE}" in grid
    # Table 2 is for one-location splits only.
    assert pd.read_csv(workdir / "results/table2.csv").empty
    # summary.md speaks to the sharper robustness claim from table 4's pairs.
    text = (workdir / "results/summary.md").read_text()
    section = text.split("Trained on two locations and tested on all of the third (table 4)")[1].split("## ")[0]
    assert f"| {SPLIT} | {HELD_OUT} | hearnet <- dualcamnet | hearnet |" in section
    assert f"| {SPLIT} | {HELD_OUT} | hearnet <- {ENSEMBLE} | hearnet |" in section


@pytest.mark.workflow
def test_an_ensemble_run_learns_from_each_teachers_cached_logits(extended_run):
    workdir = extended_run
    run = workdir / RUN.format(teacher=ENSEMBLE)
    provenance = json.loads((run / "provenance.json").read_text())
    # Each teacher's logits of the same split and seed are inputs of the run, in order.
    files = [f"results/stage1/{t}/{SPLIT}/seed~0/teacher_logits.npz" for t in ("dualcamnet", TEACHER)]
    text = json.dumps(provenance)
    assert all(f in text for f in files), text[:2000]
    assert provenance["params"]["teachers"] == ["dualcamnet", TEACHER]
    assert provenance["params"]["teacher_weights"] == [2, 1]
    assert provenance["params"]["alpha"] == 0.01
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["teacher"] == ENSEMBLE and metrics["clips"] > 0
    table1 = pd.read_csv(workdir / "results/table1.csv", keep_default_na=False)
    assert ("hearnet", ENSEMBLE) in set(zip(table1["model"], table1["teacher"], strict=True))
    # The paired comparisons put the ensemble's student against each teacher's alone.
    comparisons = pd.read_csv(workdir / "results/comparisons.csv", keep_default_na=False)
    ensemble = comparisons[comparisons["comparison"] == "ensemble vs one teacher"]
    assert set(zip(ensemble["b"], ensemble["test_list"], strict=True)) == {
        (f"hearnet <- {t}", test_list) for t in ("dualcamnet", TEACHER) for test_list in ("testing", HELD_OUT)
    }


@pytest.mark.workflow
def test_teachers_cache_their_features_and_the_projection_is_not_kept(extended_run):
    workdir = extended_run
    records = sum(len(_list(workdir, f"results/lists/{SPLIT}/{n}.txt")) for n in ("training", "validation"))
    for teacher, size in (("dualcamnet", 1024), (TEACHER, 9 * 12 * 12)):  # fc1 inputs: 1024; pooled 36x48x12 / 4
        with np.load(workdir / f"results/stage1/{teacher}/{SPLIT}/seed~0/teacher_logits.npz") as data:
            assert data["features"].shape == (records, size), teacher
            assert np.isfinite(data["features"]).all()
    # With alpha > 0 the student learnt through a projection per teacher, which stays in the
    # resumable state; its weights are HearNet's alone.
    run = workdir / RUN.format(teacher=ENSEMBLE)
    student = np.load(run / "model.weights.npz")
    stage1 = np.load(workdir / f"results/stage1/hearnet/{SPLIT}/seed~0/model.weights.npz")
    assert sorted(student.files) == sorted(stage1.files)
    projection = np.load(run / "train_state/last.trained_with.weights.npz")
    assert sorted(projection[key].shape for key in projection.files) == [(1024, 1024), (1024, 1296)]


BAD_CONFIGS = [
    (
        {
            "stage1": {"models": ["dualcamnet", "hearnet"]},
            "stage2": {"teachers": ["dualcamnet"], "ensembles": [{"teachers": ["dualcamnet", "resnet50"]}]},
        },
        "stage2.ensembles[1]: teacher 'resnet50' is not trained in stage 1",
    ),
    (
        {"stage2": {"ensembles": [{"teachers": ["dualcamnet", "hearnet"]}]}},
        "stage2.ensembles[1]: 'hearnet' not registered as a teacher; registered: dualcamnet, resnet50",
    ),
    (
        {"stage2": {"ensembles": [{"teachers": ["dualcamnet", "resnet50"], "weights": [1]}]}},
        "stage2.ensembles[1]: 1 weights for the 2 teachers ['dualcamnet', 'resnet50']",
    ),
    (
        {"stage2": {"ensembles": [{"teachers": ["dualcamnet", "resnet50"], "weights": [1, 0]}]}},
        "0 is less than or equal to the minimum of 0",
    ),
    ({"stage2": {"ensembles": [{"teachers": ["dualcamnet"]}]}}, "['dualcamnet'] is too short"),
    ({"stage2": {"alpha": -0.5}}, "-0.5 is less than the minimum of 0"),
    (
        {
            "dataset": {"synthetic": {"locations": [1, 2]}},
            "splits": {"names": ["locations_1_2"], "seeds": {}},
            "stage1": {"splits": ["locations_1_2"]},
            "stage2": {"splits": ["locations_1_2"], "ablation": {"split": "locations_1_2"}},
        },
        "split 'locations_1_2' tests on location 3, which has no data",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_CONFIGS)
def test_a_bad_extension_config_is_rejected_before_any_job(tmp_path, changes, message):
    config = dict(TINY_CONFIG)  # each section named in `changes` updated one level deep
    for key, value in changes.items():
        config[key] = {**TINY_CONFIG.get(key, {}), **value}
    result = snakemake(tmp_path, "-n", config=config)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and message in output, output[-2000:]
    assert not (tmp_path / "results").exists()
