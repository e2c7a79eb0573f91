"""A researcher's own networks, declared in the config only, trained and distilled by the
tiny workflow with no change to any project file (README, "Add your own network")."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.test_workflow import TINY_TRAINING, planned_jobs, snakemake

USER_NETWORKS = Path(__file__).parent / "user_networks"
STUDENT, TEACHER = "logmel_cnn", "acoustic_mlp"
USER_CONFIG = {
    "seed": 3,
    "seeds": [0],
    "dataset": {"synthetic": {"locations": [2], "subjects": 1, "actions": [0, 3, 7, 12], "seconds": 10}},
    "tfrecords": {"modalities": ["acoustic", "audio"]},
    "splits": {"names": ["location_2"], "seeds": {}},
    # The paper's networks as usual; the user's are declared under `models` only, and the
    # workflow trains them and gives them their roles in stage 2 by that alone.
    "stage1": {"models": ["dualcamnet", "hearnet"], "splits": ["location_2"]},
    "stage2": {
        "students": ["hearnet"],
        "teachers": ["dualcamnet"],
        "splits": ["location_2"],
        "ablation": {"split": "location_2", "lambda": [0.5], "temperature": [1.0]},
    },
    "models": {
        "dualcamnet": TINY_TRAINING,
        "hearnet": TINY_TRAINING,
        # The declarations: a builder, the model input it reads, its roles; the rest are the
        # training settings every network has.
        STUDENT: {
            "builder": "user_students:logmel_cnn",
            "input": "waveform",
            "roles": ["student"],
            "learning_rate": 1e-3,
            "sample_length": 5,
            **TINY_TRAINING,
        },
        TEACHER: {
            "builder": "user_teachers:acoustic_mlp",
            "input": "acoustic_images",
            "roles": ["teacher"],
            "learning_rate": 1e-3,
            "sample_length": 1,
            **TINY_TRAINING,
        },
    },
}


def user_env(modules: Path) -> dict:
    """The jobs find the user's modules as they would an installed package: on the path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(modules), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> tuple[Path, dict]:
    workdir = tmp_path_factory.mktemp("user_networks")
    modules = tmp_path_factory.mktemp("user_modules")
    for name in ("user_students.py", "user_teachers.py"):
        shutil.copy(USER_NETWORKS / name, modules / name)
    env = user_env(modules)
    result = snakemake(workdir, "--cores", "2", config=USER_CONFIG, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, env


def table1_runs(workdir: Path) -> set[tuple[str, str, str]]:
    """(model, teacher, modality) of every run in table 1 (teacher empty: from labels)."""
    table = pd.read_csv(workdir / "results/table1.csv", keep_default_na=False)
    return set(zip(table["model"], table["teacher"], table["modality"], strict=True))


@pytest.mark.workflow
def test_a_user_student_is_trained_from_labels_and_distilled_from_the_teachers(user_run):
    workdir, _ = user_run
    runs = table1_runs(workdir)
    assert (STUDENT, "", "audio") in runs  # from labels, its modality from its declared input
    assert {(STUDENT, teacher, "audio") for teacher in ("dualcamnet", TEACHER)} <= runs
    distilled = json.loads(
        (
            workdir / f"results/stage2/{STUDENT}/from_dualcamnet/location_2/lambda~0.5/T~1.0/seed~0/metrics.json"
        ).read_text()
    )
    assert distilled["model"] == STUDENT and distilled["teacher"] == "dualcamnet" and distilled["clips"] > 0


@pytest.mark.workflow
def test_a_user_teacher_is_trained_and_teaches_every_student(user_run):
    import numpy as np

    workdir, _ = user_run
    runs = table1_runs(workdir)
    assert (TEACHER, "", "acoustic") in runs
    assert {(student, TEACHER, "audio") for student in ("hearnet", STUDENT)} <= runs
    # Nothing else: the paper's networks of the config, and the four distillations.
    assert len(runs) == 4 + 4
    # It wrote its per-frame logits of every training and validation record for stage 2.
    with np.load(workdir / f"results/stage1/{TEACHER}/location_2/seed~0/teacher_logits.npz") as data:
        logits = data["logits"]
    lines = sum(
        len((workdir / f"results/lists/location_2/{n}.txt").read_text().split()) for n in ("training", "validation")
    )
    assert logits.shape == (lines, 12, 14)


@pytest.mark.workflow
def test_editing_a_user_network_reruns_exactly_its_runs(user_run, tmp_path):
    workdir, env = user_run
    modules = Path(env["PYTHONPATH"].split(os.pathsep)[0])
    assert planned_jobs(workdir, USER_CONFIG, env=env) == []
    original = (modules / "user_students.py").read_text()
    try:
        (modules / "user_students.py").write_text(original + "\n# a comment is an edit\n")
        planned = planned_jobs(workdir, USER_CONFIG, env=env)
    finally:
        (modules / "user_students.py").write_text(original)
    # The student's own run, and its distillation from each teacher; nothing else trains.
    expected = [f"train_stage1 {STUDENT}~0", f"test_stage1 {STUDENT}~0"]
    expected += [f"{rule} {STUDENT}<-{t}@0.5~0" for t in ("dualcamnet", TEACHER) for rule in ("distill", "test_stage2")]
    assert sorted(planned) == sorted([*expected, "tables", "figures", "all"])


@pytest.mark.workflow
def test_a_config_naming_an_unregistered_network_fails_before_any_job(tmp_path):
    config = {**USER_CONFIG, "stage1": {"models": ["dualcamnet", "mynet"], "splits": ["location_2"]}}
    result = snakemake(tmp_path, "-n", config=config, env=user_env(USER_NETWORKS))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "stage1.models: 'mynet' not registered; registered: dualcamnet, hearnet" in output, output[-2000:]
    assert not (tmp_path / "results").exists()
    config = {**USER_CONFIG, "stage2": {**USER_CONFIG["stage2"], "teachers": ["dualcamnet", STUDENT]}}
    result = snakemake(tmp_path, "-n", config=config, env=user_env(USER_NETWORKS))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"stage2.teachers: '{STUDENT}' not registered as a teacher" in output, output[-2000:]
