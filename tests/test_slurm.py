"""The cluster path for real: the tiny workflow through profiles/slurm on a one-node SLURM
cluster (.ci/run starts one), and the sbatch lines the profile makes for training jobs."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_workflow import TINY_CONFIG, snakemake

PROFILE = REPO / "profiles" / "slurm"

# Two networks and one distillation keep the number of sbatch jobs small: each costs a
# submission, a Snakemake start on the node and a status-check round.
SLURM_CONFIG = {
    **TINY_CONFIG,
    "seeds": [0],  # one run of each model: the jobs sbatch places, not the statistics
    "tfrecords": {"modalities": ["acoustic", "audio"]},
    "stage1": {"models": ["dualcamnet", "hearnet"], "splits": ["location_2"]},
    "stage2": {
        "students": ["hearnet"],
        "teachers": ["dualcamnet"],
        "splits": ["location_2"],
        "ablation": {
            "split": "location_2",
            "students": ["hearnet"],
            "teachers": ["dualcamnet"],
            "lambda": [0.5],
            "temperature": [1.0],
        },
    },
}

# The CI node has no GPU and one partition, "debug": these replace the profile's whole
# default-resources and set-resources (the GPU requests; the sbatch test below checks them).
CI_RESOURCES = [
    "--default-resources",
    "slurm_partition=debug",
    "mem_mb=2000",
    "runtime=30",
    "--set-resources",
    "convert_tfrecords:mem_mb=2000",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--jobs",
    "2",
]


def slurm_running() -> str | None:
    """Why the SLURM tests cannot run here, or None when they can."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')"
    if shutil.which("sinfo") is None:
        return "SLURM is not installed"
    states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    if states.returncode != 0 or "idle" not in states.stdout:
        return f"no idle SLURM node ({(states.stderr or states.stdout).strip() or 'sinfo failed'})"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = slurm_running()
    if reason:
        message = f"{reason}. As root, `bash .ci/run` starts a one-node cluster and runs these tests."
        if os.environ.get("AVDISTILL_REQUIRE_SLURM"):
            pytest.fail(f"AVDISTILL_REQUIRE_SLURM is set but {message}")
        pytest.skip(message)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("local")
    result = snakemake(workdir, "--cores", "2", config=SLURM_CONFIG)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm")
    result = snakemake(
        workdir,
        "--workflow-profile",
        str(PROFILE),
        *CI_RESOURCES,
        "--slurm-keep-successful-logs",
        config=SLURM_CONFIG,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir, result.stdout + result.stderr


def submitted(output: str) -> dict[str, list[str]]:
    """rule -> SLURM job ids, from Snakemake's log of a SLURM run.

    The rule is read from the SLURM log path of the same line (slurm_logs/rule_<name>/...):
    Snakemake's output interleaves jobs, so the last `rule ...:` header may be another's.
    """
    jobs: dict[str, list[str]] = {}
    for match in re.finditer(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", output):
        jobs.setdefault(match.group(2), []).append(match.group(1))
    return jobs


@pytest.mark.workflow
def test_workflow_through_slurm_gives_the_local_tables(slurm_run, local_run):
    workdir, output = slurm_run
    jobs = submitted(output)
    # The TensorFlow jobs went through sbatch; quick ones ran in Snakemake itself (localrules).
    assert len(jobs.get("train_stage1", [])) == 1 and len(jobs.get("train_teacher", [])) == 1, output[-4000:]
    assert len(jobs.get("distill", [])) == 1 and "teacher_logits" not in jobs  # the teacher's job writes them
    assert "tables" not in jobs and "test_stage1" not in jobs
    # Each SLURM job left its log under the id sbatch gave it.
    for job_id in jobs["train_stage1"] + jobs["train_teacher"]:
        assert list((workdir / ".snakemake" / "slurm_logs").rglob(f"{job_id}.log")), job_id
    for table in ("table1.csv", "table2.csv", "table3.csv"):
        assert (workdir / "results" / table).read_text() == (local_run / "results" / table).read_text()
    # The same weights, bit for bit: the seed makes a CPU run repeatable on any node.
    for weights in (
        "stage1/dualcamnet/location_2/seed~0/model.weights.npz",
        "stage1/hearnet/location_2/seed~0/model.weights.npz",
    ):
        assert (workdir / "results" / weights).read_bytes() == (local_run / "results" / weights).read_bytes()


def fake_slurm(directory: Path) -> Path:
    """sbatch, squeue and scancel that record their arguments and submit nothing."""
    directory.mkdir()
    for name in ("sbatch", "squeue", "scancel", "sacct", "sinfo", "sacctmgr"):
        script = directory / name
        script.write_text(
            f'#!/bin/sh\necho "$@" >> "{directory}/{name}.calls"\n'
            + ('echo "sbatch: error: fake, nothing submitted" >&2\nexit 1\n' if name == "sbatch" else "exit 0\n")
        )
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory


@pytest.mark.workflow
def test_slurm_profile_asks_a_gpu_memory_and_time_for_training(local_run, tmp_path):
    """The sbatch line of a training job under profiles/slurm, on a machine without GPU or
    SLURM: a fake sbatch records it."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    workdir = tmp_path / "work"
    shutil.copytree(local_run, workdir, ignore=shutil.ignore_patterns(".snakemake"))
    fake = fake_slurm(tmp_path / "bin")
    target = "results/stage1/dualcamnet/location_2/seed~0/model.weights.npz"
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    configfile = workdir / "config.yaml"
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(REPO / "config" / "config.yaml"), str(configfile)]
    command += ["--workflow-profile", str(PROFILE), "--forcerun", "train_teacher", "--retries", "0", target]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode != 0  # the fake sbatch refuses
    calls = (fake / "sbatch.calls").read_text()
    profile = yaml.safe_load((PROFILE / "profile.yaml").read_text())
    wanted = profile["set-resources"]["train_teacher"]
    assert f"--gpus={wanted['gpu']}" in calls or f"--gres=gpu:{wanted['gpu']}" in calls, calls
    assert re.search(rf"--mem {wanted['mem_mb']}\b", calls), calls
    assert re.search(rf"-t {wanted['runtime']}\b", calls), calls
    assert re.search(rf"-p {wanted['slurm_partition']}\b", calls), calls
    threads = SLURM_CONFIG["models"]["dualcamnet"]["resources"]["threads"]
    assert re.search(rf"--cpus-per-task[= ]{threads}\b", calls), calls
    assert "--account" not in calls and " -A " not in calls  # slurm-no-account


def _state(workdir: Path, model: str) -> dict:
    path = workdir / f"results/stage1/{model}/location_2/seed~0/train_state/state.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.mark.workflow
def test_a_training_job_cancelled_by_slurm_resumes_on_retry(slurm_run):
    """scancel mid-training: the profile's retries submit the job again, and it goes on after
    its last finished epoch instead of starting over."""
    workdir, _ = slurm_run
    epochs = 12
    config = json.loads(json.dumps(SLURM_CONFIG))
    config["models"]["dualcamnet"] = {**config["models"]["dualcamnet"], "epochs": epochs, "number_of_crops": 4}
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(REPO / "config" / "config.yaml"), str(configfile)]
    command += ["--workflow-profile", str(PROFILE), *CI_RESOURCES]
    command += ["results/stage1/dualcamnet/location_2/seed~0/model.weights.npz"]
    before = _state(workdir, "dualcamnet").get("fingerprint")  # the first run's finished state
    log = workdir / "cancel-test.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 600
        while (state := _state(workdir, "dualcamnet")).get("fingerprint") == before or state.get("epochs_done", 0) < 2:
            assert process.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "training never finished two epochs"
            time.sleep(0.5)
        done_before = state["epochs_done"]
        jobs = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, check=True).stdout
        assert done_before < epochs, "training finished before it could be cancelled"
        job_ids = [line.split()[0] for line in jobs.splitlines() if line.strip()]
        assert len(job_ids) == 1, jobs
        subprocess.run(["scancel", job_ids[0]], check=True)
        assert process.wait(timeout=900) == 0, log.read_text()[-6000:]
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert len(submitted(output).get("train_teacher", [])) == 2, output[-4000:]
    training_log = (workdir / "results/logs/stage1/dualcamnet/location_2/seed~0/train.log").read_text()
    resumed = [int(n) for n in re.findall(r"resuming after epoch (\d+) of", training_log)]
    assert resumed and resumed[-1] >= done_before, training_log[-3000:]
    history = (workdir / "results/stage1/dualcamnet/location_2/seed~0/history.csv").read_text().splitlines()
    assert [int(row.split(",")[0]) for row in history[1:]] == list(range(1, epochs + 1))
