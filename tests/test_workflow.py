"""The DAG up to stage 1, run for real with Snakemake on a tiny synthetic dataset."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import REPO

TINY_TRAINING = {"epochs": 1, "number_of_crops": 1, "batch_size": 8, "resources": {"threads": 1}}
TINY_CONFIG = {
    "seed": 3,
    # Two training seeds of every run: the tables' intervals and paired tests over seeds.
    "seeds": [0, 1],
    "splits": {"names": ["location_1", "location_2", "location_3", "all"], "seeds": {"location_2": 2}},
    "dataset": {"synthetic": {"subjects": 1, "actions": [0, 3, 7, 12], "seconds": 10, "frame_size": [48, 64]}},
    "loader": {"video_crop_size": 32},
    # Every network, on one split, one short epoch each.
    "stage1": {"splits": ["location_2"]},
    # Both students from every teacher on that split; a 2-point λ grid of one pair for table 3.
    "stage2": {
        "students": ["hearnet", "soundnet5"],
        "teachers": ["dualcamnet", "resnet50", "temporal_resnet50"],
        "splits": ["location_2"],
        "ablation": {
            "split": "location_2",
            "students": ["hearnet"],
            "teachers": ["dualcamnet"],
            "lambda": [0.5, 0.9],
            "temperature": [1.0],
        },
    },
    "models": {m: TINY_TRAINING for m in ("dualcamnet", "hearnet", "soundnet5", "resnet50", "temporal_resnet50")},
}
STAGE1_MODELS = ("dualcamnet", "hearnet", "soundnet5", "resnet50", "temporal_resnet50")


def snakemake(
    workdir: Path, *args: str, config: dict | None = None, repo: Path = REPO, env: dict | None = None
) -> subprocess.CompletedProcess:
    configfile = workdir / "config.yaml"
    configfile.write_text(yaml.safe_dump(config or TINY_CONFIG))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir)]
    # On top of the default config, as a user's --configfile would be (later files win).
    configfiles = [str(REPO / "config" / "config.yaml"), str(configfile)]
    command += ["--configfile", *configfiles, "--workflow-profile", str(repo / "profiles" / "default"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def chunks_to_lines(chunks: int) -> dict[str, int]:
    train, validation = int(chunks * 0.8), int(chunks * 0.1)
    return {"training": 10 * train, "validation": 10 * validation, "testing": 10 * (chunks - train - validation)}


@pytest.mark.workflow
def test_data_stage_outputs(finished):
    sequences_per_location = 1 * 4
    for modality in ("acoustic", "audio", "video"):
        for location in (1, 2, 3):
            records = list((finished / f"results/tfrecords/{modality}/Location_{location:02d}").rglob("*.tfrecord"))
            assert len(records) == sequences_per_location * 30
    # 10-second sequences wrap around to 30 records: 3 chunks each.
    for split, chunks in (("location_1", 12), ("location_2", 12), ("location_3", 12), ("all", 36)):
        for name, lines in chunks_to_lines(chunks).items():
            entries = (finished / f"results/lists/{split}/{name}.txt").read_text().split()
            assert len(entries) == lines
            assert all((finished / "results/tfrecords/video" / e).exists() for e in entries)
        low = np.load(finished / f"results/stats/{split}/global_min.npy")
        high = np.load(finished / f"results/stats/{split}/global_max.npy")
        assert low.shape == high.shape == (257,) and np.all(high >= low)
    for location in (1, 2, 3):
        entries = (finished / f"results/lists/location_{location}/dataset.txt").read_text().split()
        assert len(entries) == 12 * 10 and all(e.startswith(f"Location_{location:02d}/") for e in entries)
    assert "converting 4 sequences" in (finished / "results/logs/tfrecords/audio/Location_02.log").read_text()
    assert (finished / "results/benchmarks/dataset/synthesize.tsv").exists()


STUDENTS, TEACHERS = ("hearnet", "soundnet5"), ("dualcamnet", "resnet50", "temporal_resnet50")
SEEDS = tuple(TINY_CONFIG["seeds"])


def stage1_jobs(models, seeds=SEEDS, teachers=TEACHERS) -> list[str]:
    """A model's training and test job labels, one per seed, as planned_jobs writes them
    (train_teacher for the config's stage-2 teachers, which also write their logits)."""
    return [
        f"{rule} {m}~{seed}"
        for m in models
        for rule in ("train_teacher" if m in teachers else "train_stage1", "test_stage1")
        for seed in seeds
    ]


def stage2_jobs(students=STUDENTS, teachers=TEACHERS, lambdas=("0.5",), seeds=SEEDS, ablation=True) -> list[str]:
    """Distillation job labels: the default λ for every pair, and (ablation) the grid's
    λ = 0.9 of hearnet <- dualcamnet."""
    runs = [(s, t, lam) for s in students for t in teachers for lam in lambdas]
    if ablation and "hearnet" in students and "dualcamnet" in teachers:
        runs.append(("hearnet", "dualcamnet", "0.9"))
    return [
        f"{rule} {s}<-{t}@{lam}~{seed}" for rule in ("distill", "test_stage2") for s, t, lam in runs for seed in seeds
    ]


@pytest.mark.workflow
def test_nothing_reruns_and_an_edit_reruns_only_what_it_affects(finished):
    result = snakemake(finished, "-n", "--cores", "2")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr
    after = ["tables", "figures", "all"]
    # The resampler changes the audio inputs: statistics, the audio networks and their distillations.
    config = {**TINY_CONFIG, "loader": {"video_crop_size": 32, "resampler": "kaiser_best"}}
    jobs = planned_jobs(finished, config)
    expected = ["spectrogram_stats"] * 4 + stage1_jobs(STUDENTS)
    assert sorted(jobs) == sorted(expected + stage2_jobs() + after)
    # A student's learning rate: that student's jobs, its distillations and the tables.
    models = {**TINY_CONFIG["models"], "hearnet": {**TINY_TRAINING, "learning_rate": 3e-4}}
    jobs = planned_jobs(finished, {**TINY_CONFIG, "models": models})
    assert sorted(jobs) == sorted(stage1_jobs(["hearnet"]) + stage2_jobs(students=["hearnet"]) + after)
    # A teacher's learning rate: the teacher, its logits, the students distilled from it, the tables.
    models = {**TINY_CONFIG["models"], "dualcamnet": {**TINY_TRAINING, "learning_rate": 3e-4}}
    jobs = planned_jobs(finished, {**TINY_CONFIG, "models": models})
    assert sorted(jobs) == sorted(stage1_jobs(["dualcamnet"]) + stage2_jobs(teachers=["dualcamnet"]) + after)
    # λ's default: only the distillations with the new λ (the grid keeps 0.5 and 0.9), and the tables.
    stage2 = {**TINY_CONFIG["stage2"], "lambda": 0.7}
    jobs = planned_jobs(finished, {**TINY_CONFIG, "stage2": stage2})
    assert sorted(jobs) == sorted(stage2_jobs(lambdas=["0.7"], ablation=False) + after)
    # A new temperature in the ablation grid: only its jobs (and the tables).
    grid = {**TINY_CONFIG["stage2"]["ablation"], "temperature": [1.0, 3.0]}
    jobs = planned_jobs(finished, {**TINY_CONFIG, "stage2": {**TINY_CONFIG["stage2"], "ablation": grid}})
    new = stage2_jobs(students=["hearnet"], teachers=["dualcamnet"])  # the same labels, now with T = 3.0
    assert sorted(jobs) == sorted(new + after)
    # A seed added: only its runs (every model, every distillation) and the tables.
    config = {**TINY_CONFIG, "seeds": [0, 1, 2], "splits": {**TINY_CONFIG["splits"], "seeds": {"location_2": 3}}}
    jobs = planned_jobs(finished, config)
    assert sorted(jobs) == sorted(stage1_jobs(STAGE1_MODELS, seeds=[2]) + stage2_jobs(seeds=[2]) + after)
    # A seed removed: only the tables, which no longer read its runs.
    assert sorted(planned_jobs(finished, {**TINY_CONFIG, "seeds": [0]})) == sorted(after)
    # A teacher no student learns from any more: only the tables; its finished run (written
    # by train_teacher) is kept as it is, though train_stage1 would make it now.
    stage2 = {**TINY_CONFIG["stage2"], "teachers": ["dualcamnet"]}
    assert sorted(planned_jobs(finished, {**TINY_CONFIG, "stage2": stage2})) == sorted(after)
    # Resources place a job but do not change its result: nothing reruns.
    models = {**TINY_CONFIG["models"], "resnet50": {**TINY_TRAINING, "resources": {"threads": 1, "mem_mb": 9000}}}
    assert planned_jobs(finished, {**TINY_CONFIG, "models": models}) == []


@pytest.mark.workflow
def test_code_edits_rerun_the_jobs_that_run_the_code(finished, tmp_path):
    """A library module or a script edited: the jobs that run it rerun, and no other."""
    import shutil

    copy = tmp_path / "workflow-copy"
    copy.mkdir()
    for name in ("Snakefile", "rules", "workflow", "src", "config", "profiles", "envs"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, copy / name)
    assert planned_jobs(finished, TINY_CONFIG, repo=copy) == []
    with open(copy / "src/avdistill/report/tables.py", "a") as file:
        file.write("\n# an edit\n")
    # figures.py imports tables.py: both rerun; nothing that trains does.
    assert sorted(planned_jobs(finished, TINY_CONFIG, repo=copy)) == ["all", "figures", "tables"]
    shutil.copy2(REPO / "src/avdistill/report/tables.py", copy / "src/avdistill/report/tables.py")
    with open(copy / "workflow/scripts/figures.py", "a") as file:
        file.write("\n# an edit\n")
    assert sorted(planned_jobs(finished, TINY_CONFIG, repo=copy)) == ["all", "figures"]
    shutil.copy2(REPO / "workflow/scripts/figures.py", copy / "workflow/scripts/figures.py")
    # The Distiller: every distillation, none of the stage-1 training.
    with open(copy / "src/avdistill/train/distillation.py", "a") as file:
        file.write("\n# an edit\n")
    after = ["all", "figures", "tables"]
    assert sorted(planned_jobs(finished, TINY_CONFIG, repo=copy)) == sorted(stage2_jobs() + after)
    shutil.copy2(REPO / "src/avdistill/train/distillation.py", copy / "src/avdistill/train/distillation.py")
    # One network's module (the trainers build it through the registry, by name): exactly
    # the runs of the networks it defines, HearNet and SoundNet5, stage 1 and stage 2.
    with open(copy / "src/avdistill/networks/audio.py", "a") as file:
        file.write("\n# an edit\n")
    assert sorted(planned_jobs(finished, TINY_CONFIG, repo=copy)) == sorted(
        stage1_jobs(STUDENTS) + stage2_jobs() + after
    )
    shutil.copy2(REPO / "src/avdistill/networks/audio.py", copy / "src/avdistill/networks/audio.py")
    # How teacher logits are computed: the teachers' training jobs, which write them, and
    # what reads their outputs; the students' stage-1 jobs do not rerun.
    with open(copy / "src/avdistill/train/teacher_logits.py", "a") as file:
        file.write("\n# an edit\n")
    teachers = stage1_jobs(TEACHERS)
    assert sorted(planned_jobs(finished, TINY_CONFIG, repo=copy)) == sorted(teachers + stage2_jobs() + after)


def planned_jobs(workdir: Path, config: dict, repo: Path = REPO, env: dict | None = None) -> list[str]:
    """Jobs a dry run would execute: rule names, with model<-teacher@λ~seed for training jobs."""
    result = snakemake(workdir, "-n", "--cores", "2", config=config, repo=repo, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            jobs.append(line.split()[1].rstrip(":"))
        elif line.strip().startswith("wildcards:") and jobs and jobs[-1] != "all":
            wildcards = dict(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))
            name = wildcards.get("model", wildcards.get("teacher", ""))
            if jobs[-1] in ("distill", "test_stage2"):
                name += f"<-{wildcards['teacher']}@{wildcards['lambda_value']}"
            if "seed" in wildcards:
                name += f"~{wildcards['seed']}"
            if name:
                jobs[-1] += f" {name}"
    return jobs


@pytest.mark.workflow
def test_stage1_outputs(finished):
    for model in STAGE1_MODELS:
        for seed in SEEDS:
            folder = finished / "results/stage1" / model / "location_2" / f"seed~{seed}"
            metrics = json.loads((folder / "metrics.json").read_text())
            # location_2 has 12 chunks: 10 % for testing -> 12 - 9 - 1 = 2 blocks of 10 s.
            assert metrics["clips"] == len(metrics["clip_predictions"]) == 2 * 10 // 5
            assert metrics["seed"] == seed and metrics["clips_per_block"] == 10 // 5
            assert metrics["clip_accuracy"] == np.mean(np.equal(metrics["clip_predictions"], metrics["clip_labels"]))
            history = (folder / "history.csv").read_text().splitlines()
            assert len(history) == 2 and history[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy")
            assert (folder / "model.weights.npz").stat().st_size > 0
            assert (folder / "train_state/state.json").exists()
            train_log = (finished / f"results/logs/stage1/{model}/location_2/seed~{seed}/train.log").read_text()
            assert "/step - accuracy:" in train_log  # Keras progress output in the job log
            # The default config keeps the last epoch and scores no validation list.
            assert "val_accuracy" not in train_log and history[1].split(",")[3:5] == ["", ""]
            assert (finished / f"results/benchmarks/stage1/{model}/location_2/seed~{seed}/train.tsv").exists()
            # A teacher's training job also wrote its logits of every training and validation record.
            assert (folder / "teacher_logits.npz").exists() == (model in TEACHERS)
        # Different seeds, different initial weights and crops: different trained weights.
        runs = [
            np.load(finished / f"results/stage1/{model}/location_2/seed~{seed}/model.weights.npz") for seed in SEEDS
        ]
        assert any(not np.array_equal(runs[0][key], runs[1][key]) for key in runs[0].files), model
    with np.load(finished / "results/stage1/dualcamnet/location_2/seed~0/teacher_logits.npz") as data:
        lists = [finished / f"results/lists/location_2/{name}.txt" for name in ("training", "validation")]
        assert list(data["records"]) == [entry for path in lists for entry in path.read_text().split()]
        assert data["logits"].shape == (len(data["records"]), 12, 14)
    assert not (finished / "results/stage1/dualcamnet/all").exists()


@pytest.mark.workflow
def test_a_run_repeated_with_its_seed_is_bit_identical(finished, tmp_path):
    """Forced to rerun, a seed's training job writes the same weights and logits, bit for bit."""
    import shutil

    workdir = tmp_path / "copy"
    shutil.copytree(finished, workdir, symlinks=True)
    run = "results/stage1/hearnet/location_2/seed~1"
    shutil.rmtree(workdir / run / "train_state")  # no resume: train again from the start
    result = snakemake(workdir, "--cores", "1", "--forcerun", f"{run}/model.weights.npz", f"{run}/metrics.json")
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("model.weights.npz", "test_logits.npz"):
        with np.load(finished / run / name) as before, np.load(workdir / run / name) as after:
            assert before.files == after.files
            for key in before.files:
                np.testing.assert_array_equal(before[key], after[key], err_msg=f"{name}: {key}")
    assert (finished / run / "metrics.json").read_text() == (workdir / run / "metrics.json").read_text()


def test_lint_and_format_are_clean():
    lint = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--lint",
            "--cores",
            "1",
            "--directory",
            str(REPO),
            "--snakefile",
            str(REPO / "Snakefile"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    snakefmt = Path(sys.executable).with_name("snakefmt")
    fmt = subprocess.run([str(snakefmt), "--check", "Snakefile", "rules"], capture_output=True, text=True, cwd=REPO)
    assert fmt.returncode == 0, fmt.stderr


def test_bad_config_is_rejected_before_any_job(tmp_path):
    result = snakemake(tmp_path, "-n", config={"dataset": {"synthetic": {"subjects": 12}}})
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "subjects" in output and "12 is greater than the maximum of 9" in output


def test_no_validation_with_best_checkpoint_is_rejected(tmp_path):
    """The default scores no validation list; a user who asks for the best epoch on top of
    it is told, before any job, to validate every epoch."""
    models = {**TINY_CONFIG["models"], "dualcamnet": {**TINY_TRAINING, "checkpoint": "best"}}
    result = snakemake(tmp_path, "-n", config={**TINY_CONFIG, "models": models})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "models.dualcamnet: validation: never needs checkpoint: last" in output, output[-2000:]
    assert "set validation: every_epoch with it" in output
    assert not (tmp_path / "results").exists()


@pytest.fixture
def dataset_server(tiny_raw, tmp_path):
    """The tiny raw dataset zipped in a top folder, served over HTTP from 127.0.0.1."""
    import functools
    import http.server
    import shutil
    import threading

    served = tmp_path / "served"
    shutil.make_archive(str(served / "dualcam"), "zip", root_dir=tiny_raw.parent, base_dir=tiny_raw.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/dualcam.zip", served / "dualcam.zip"
    httpd.shutdown()


@pytest.mark.workflow
def test_dataset_archive_is_downloaded_checked_and_extracted(dataset_server, tiny_raw, tmp_path):
    import hashlib

    url, archive = dataset_server
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = {**TINY_CONFIG, "dataset": {"source": "url", "url": url, "sha256": digest}}
    result = snakemake(workdir, "--cores", "1", "resources/dataset", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = sorted(p.relative_to(tiny_raw) for p in tiny_raw.rglob("*.mat"))
    assert sorted(p.relative_to(workdir / "resources/dataset") for p in workdir.rglob("*.mat")) == expected
    # The whole DAG is planned without touching the network; nothing reruns.
    result = snakemake(workdir, "-n", "--cores", "1", "resources/dataset", config=config)
    assert "Nothing to be done" in result.stdout + result.stderr
    # A wrong checksum refuses the archive: the job fails, naming the URL, and leaves no file.
    config["dataset"]["sha256"] = "0" * 64
    result = snakemake(workdir, "--cores", "1", "resources/dataset", config=config)
    assert result.returncode != 0
    log = (workdir / "results/logs/downloads/dataset_archive.log").read_text()
    assert f"{url}: SHA-256 {digest} does not match the expected {'0' * 64}" in log
    assert not (workdir / "resources/downloads/dataset_archive").exists()


class CountingHandler:
    """A static file server on 127.0.0.1 that counts the GETs of each path."""

    def __init__(self, folder: Path):
        import functools
        import http.server
        import threading

        self.counts: dict[str, int] = {}
        counts = self.counts

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                counts[self.path] = counts.get(self.path, 0) + 1
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def pretrained_server(soundnet_fixture, resnet_fixture, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    for folder, name in (
        (soundnet_fixture[0], "soundnet_models_public.zip"),
        (resnet_fixture[0], "resnet_v1_50_2016_08_28.tar.gz"),
    ):
        (served / name).symlink_to(folder / name)
    server = CountingHandler(served)
    yield server
    server.httpd.shutdown()


@pytest.mark.workflow
def test_pretrained_weights_are_fetched_once_converted_and_used(finished, pretrained_server, resnet_fixture, tmp_path):
    import hashlib
    import shutil

    workdir = tmp_path / "run"
    shutil.copytree(finished, workdir, symlinks=True)
    url = pretrained_server.url
    resnet_sha = hashlib.sha256((resnet_fixture[0] / "resnet_v1_50_2016_08_28.tar.gz").read_bytes()).hexdigest()
    pretrained = {
        "soundnet": {"url": f"{url}/soundnet_models_public.zip"},
        "resnet": {"url": f"{url}/resnet_v1_50_2016_08_28.tar.gz", "sha256": resnet_sha},
    }
    models = dict(TINY_CONFIG["models"])
    models["soundnet5"] = {**TINY_TRAINING, "init": "soundnet"}
    # The original's fine-tuning (logits only; the default trains the whole backbone).
    models["resnet50"] = models["temporal_resnet50"] = {**TINY_TRAINING, "init": "imagenet", "trainable": "original"}
    # One distillation, to keep the test short.
    stage2 = {"students": ["soundnet5"], "teachers": ["resnet50"], "splits": ["location_2"]}
    stage2["ablation"] = {
        "split": "location_2",
        "students": None,
        "teachers": None,
        "lambda": [0.5],
        "temperature": [1.0],
    }
    # One seed, to keep the test short.
    config = {**TINY_CONFIG, "seeds": [0], "pretrained": pretrained, "models": models, "stage2": stage2}
    after = ["distill soundnet5<-resnet50@0.5~0", "test_stage2 soundnet5<-resnet50@0.5~0", "tables", "figures", "all"]

    # Planned without any network access: only the models whose init changed rerun. The
    # teachers no student learns from here (DualCamNet, the temporal ResNet-50) now train
    # without writing logits: DualCamNet's finished run stays as it is.
    jobs = planned_jobs(workdir, config)
    pretrained_models = ("soundnet5", "resnet50", "temporal_resnet50")
    expected = ["download", "download", "convert_soundnet", "convert_resnet", *after]
    expected += stage1_jobs(pretrained_models, seeds=[0], teachers=["resnet50"])
    assert sorted(jobs) == sorted(expected)
    assert pretrained_server.counts == {}

    result = snakemake(workdir, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-4000:]
    # Each file was fetched once, though two networks start from the ResNet-50.
    assert pretrained_server.counts == {"/soundnet_models_public.zip": 1, "/resnet_v1_50_2016_08_28.tar.gz": 1}
    # A variable the ResNet-50s do not train still holds the checkpoint's value.
    name = "resnet_v1_50/block3/unit_2/bottleneck_v1/conv2/weights"
    keras_path = "resnet_v1_50.block3.unit_2.bottleneck_v1.conv2/kernel"
    for model in ("resnet50", "temporal_resnet50"):
        trained = np.load(workdir / f"results/stage1/{model}/location_2/seed~0/model.weights.npz")
        np.testing.assert_array_equal(trained[keras_path], resnet_fixture[1][name])
    log = (workdir / "results/logs/stage1/soundnet5/location_2/seed~0/train.log").read_text()
    assert "initialised 24 of 36 variables from resources/pretrained/soundnet5.npz" in log
    # The unpinned download says which digest to pin.
    soundnet_log = (workdir / "results/logs/downloads/soundnet_models_public.zip.log").read_text()
    assert "has SHA-256" in soundnet_log

    # Nothing reruns; attempts are not a param, so editing them refetches nothing.
    assert planned_jobs(workdir, {**config, "downloads": {"retries": 7}}) == []
    # A new checksum refetches that file and reruns what depends on it, nothing else.
    digest = hashlib.sha256((pretrained_server_root(pretrained_server) / "soundnet_models_public.zip").read_bytes())
    changed = {**pretrained, "soundnet": {**pretrained["soundnet"], "sha256": digest.hexdigest()}}
    jobs = planned_jobs(workdir, {**config, "pretrained": changed})
    assert sorted(jobs) == sorted(["download", "convert_soundnet", *stage1_jobs(["soundnet5"], seeds=[0]), *after])


def pretrained_server_root(server: CountingHandler) -> Path:
    return Path(server.httpd.RequestHandlerClass.keywords["directory"])


def test_paper_configuration_plans_the_whole_dag_without_network(tmp_path):
    """`snakemake -n` with config/paper.yaml: from the three downloads to the tables."""
    command = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(tmp_path), "--configfile", str(REPO / "config/config.yaml")]
    command += [str(REPO / "config/paper.yaml"), "--workflow-profile", str(REPO / "profiles/default")]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "http_proxy": "http://127.0.0.1:9"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {}
    for line in result.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
            counts[rule] = counts.get(rule, 0) + 1
    # Splits: three of one location, all, and three leaving one location out.
    models, splits, locations, modalities, seeds = 5, 3 + 1 + 3, 3, 3, 5
    students, teachers, ensembles, grid = 2, 3, 1, 3 * 3
    # Every student from every teacher and the ensemble on every split, and the (λ, T) grid
    # of every single teacher on `all` (whose default point is one of the runs before).
    distillations = students * (teachers + ensembles) * splits * seeds + students * teachers * (grid - 1) * seeds
    assert counts == {
        "download": 3,  # the dataset archive, SoundNet, ResNet-50
        "extract_dataset": 1,
        "convert_soundnet": 1,
        "convert_resnet": 1,
        "convert_tfrecords": locations * modalities,
        "location_dataset_list": locations,
        "split_lists": splits,
        "spectrogram_stats": splits,
        "train_stage1": (models - teachers) * splits * seeds,
        "train_teacher": teachers * splits * seeds,  # each also writes its logits for stage 2
        "test_stage1": models * splits * seeds,
        "distill": distillations,
        "test_stage2": distillations,
        "tables": 1,
        "figures": 1,
        "all": 1,
    }


@pytest.mark.workflow
def test_tables_hold_every_run(finished):
    import csv

    def rows(name):
        with open(finished / "results" / name, newline="") as file:
            return list(csv.DictReader(file))

    stage1 = [(m, "") for m in STAGE1_MODELS]
    distilled = [(s, t) for s in STUDENTS for t in TEACHERS]
    table1 = rows("table1.csv")
    assert sorted((r["model"], r["teacher"], r["seed"]) for r in table1) == sorted(
        (m, t, str(seed)) for m, t in stage1 + distilled for seed in SEEDS
    )
    for row in table1:
        assert row["split"] == "location_2" and row["modality"] in ("acoustic", "audio", "video")
        metrics = json.loads((finished / row["run"] / "metrics.json").read_text())
        assert float(row["accuracy"]) == metrics["clip_accuracy"] and int(row["n_clips"]) == metrics["clips"] == 4
        assert row["run"].endswith(f"/location_2/seed~{row['seed']}") or row["teacher"]
        if row["teacher"]:
            assert (row["lambda"], row["temperature"]) == ("0.5", "1.0")
            expected = f"results/stage2/{row['model']}/from_{row['teacher']}/location_2/lambda~0.5/T~1.0"
            assert row["run"] == f"{expected}/seed~{row['seed']}"
    # Table 2: every model trained on location 2, tested on all of locations 1 and 3, per seed.
    table2 = rows("table2.csv")
    assert sorted((r["model"], r["teacher"], r["tested_on"], r["seed"]) for r in table2) == sorted(
        (m, t, other, str(seed))
        for m, t in stage1 + distilled
        for other in ("location_1", "location_3")
        for seed in SEEDS
    )
    clips_per_location = 12 * 10 // 5  # dataset.txt: 12 blocks of 10 s, in 5-s clips
    assert all(int(r["n_clips"]) == clips_per_location and r["trained_on"] == "location_2" for r in table2)
    # Table 3: every (λ, T) of the grid of hearnet <- dualcamnet, per seed.
    table3 = rows("table3.csv")
    assert sorted((r["model"], r["teacher"], r["lambda"], r["temperature"], r["seed"]) for r in table3) == sorted(
        ("hearnet", "dualcamnet", lam, "1.0", str(seed)) for lam in ("0.5", "0.9") for seed in SEEDS
    )
    markdown = (finished / "results/table1.md").read_text()
    assert "| hearnet <- dualcamnet | audio |" in markdown and "location_2 (2 seeds, 4 clips)" in markdown
    assert markdown.count("\n| ") == 1 + len(stage1 + distilled) + 1 + 1  # header, cells, chance
    assert "| chance | | 25.0 |" in markdown  # 4 actions
    for name in (
        "table1_accuracy",
        "table2_generalisation",
        "table3_ablation",
        "comparisons",
        "confusion_matrices",
        "training_curves",
        "acoustic_overlays",
    ):
        assert (finished / f"results/figures/{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.workflow
def test_summary_tables_and_comparisons_follow_from_the_runs(finished):
    """Per-cell summaries and paired comparisons, recomputed here from the runs' metrics.json."""
    import csv
    import statistics

    def rows(name):
        with open(finished / "results" / name, newline="") as file:
            return list(csv.DictReader(file))

    def clips(run, test_list="testing"):
        metrics = json.loads((finished / run / "metrics.json").read_text())
        scores = metrics if test_list == "testing" else metrics["other_lists"][test_list]
        return np.equal(scores["clip_predictions"], scores["clip_labels"])

    table1 = rows("table1.csv")
    summary = rows("table1_summary.csv")
    assert len(summary) == len(STAGE1_MODELS) + len(STUDENTS) * len(TEACHERS)
    for cell in summary:
        runs = [r for r in table1 if (r["model"], r["teacher"]) == (cell["model"], cell["teacher"])]
        accuracies = [float(r["accuracy"]) for r in runs]
        assert int(cell["n_seeds"]) == 2 and int(cell["n_clips"]) == 4 and int(cell["n_blocks"]) == 2
        assert float(cell["accuracy"]) == pytest.approx(statistics.mean(accuracies))
        assert float(cell["std"]) == pytest.approx(statistics.stdev(accuracies))
        # The interval lies within the range the resampled means can take: per-block
        # accuracies averaged over any choice of seeds and blocks.
        blocks = np.array([clips(r["run"]).reshape(2, 2).mean(axis=1) for r in runs])
        assert blocks.min() - 1e-12 <= float(cell["ci_low"]) <= float(cell["ci_high"]) <= blocks.max() + 1e-12
        assert float(cell["chance"]) == 0.25
    assert {r["n_seeds"] for r in rows("table2_summary.csv")} == {"2"}

    comparisons = rows("comparisons.csv")
    own = [c for c in comparisons if c["test_list"] == "testing"]
    expected = {("distilled vs labels", f"{s} <- {t}", s) for s in STUDENTS for t in TEACHERS}
    expected |= {("teacher vs student", t, s) for t in TEACHERS for s in STUDENTS}
    assert {(c["comparison"], c["a"], c["b"]) for c in own} == expected
    assert {c["test_list"] for c in comparisons} == {"testing", "location_1", "location_3"}
    table2 = rows("table2.csv")

    def runs_of(label, test_list):
        model, _, teacher = label.partition(" <- ")
        table = table1 if test_list == "testing" else [r for r in table2 if r["tested_on"] == test_list]
        return sorted((r for r in table if (r["model"], r["teacher"]) == (model, teacher)), key=lambda r: r["seed"])

    for c in comparisons:
        a, b = runs_of(c["a"], c["test_list"]), runs_of(c["b"], c["test_list"])
        assert [r["seed"] for r in a] == [r["seed"] for r in b] == ["0", "1"] and c["n_seeds"] == "2"
        difference = statistics.mean(float(x["accuracy"]) - float(y["accuracy"]) for x, y in zip(a, b, strict=True))
        assert float(c["difference"]) == pytest.approx(difference)
        right_a = np.concatenate([clips(r["run"], c["test_list"]) for r in a])
        right_b = np.concatenate([clips(r["run"], c["test_list"]) for r in b])
        a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
        assert (int(c["a_only"]), int(c["b_only"])) == (a_only, b_only)
        n = a_only + b_only
        p = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2**n) if n else 1.0
        assert float(c["p_value"]) == pytest.approx(p)
        assert float(c["ci_low"]) <= float(c["ci_high"])
    assert "| location_2 | testing | dualcamnet | hearnet |" in (finished / "results/comparisons.md").read_text()

    summary_md = (finished / "results/summary.md").read_text()
    for heading in (
        "## The acoustic-image teacher (DualCamNet) is more accurate than the audio students trained from labels",
        "## A student distilled from a teacher is more accurate than the same student trained from labels",
        "## The teachers trained from labels are above chance",
    ):
        assert heading in summary_md
    claims = [line for line in summary_md.splitlines() if line.startswith("| location_2 |")]
    # The paper's claims: every distillation, and the acoustic-image teacher against each student.
    assert len(claims) == sum(c["comparison"] == "distilled vs labels" or c["a"] == "dualcamnet" for c in comparisons)
    assert all(re.search(r"\| (supported|not resolved|contradicted) at 95 % \|$", line) for line in claims)


@pytest.mark.workflow
def test_a_table_row_traces_back_to_the_raw_files(finished):
    """table1 -> run folder -> provenance.json -> lists (checksummed) -> records -> raw frames."""
    import csv
    import hashlib

    import tensorflow as tf

    from avdistill.data.records import parse_fn

    with open(finished / "results/table1.csv", newline="") as file:
        row = next(r for r in csv.DictReader(file) if r["model"] == "hearnet" and r["teacher"] == "dualcamnet")
    provenance = json.loads((finished / row["run"] / "provenance.json").read_text())
    assert provenance["rule"] == "distill" and provenance["data_seed"] == TINY_CONFIG["seed"]
    assert (
        provenance["seed"] == provenance["params"]["seed"] == int(provenance["wildcards"]["seed"]) == int(row["seed"])
    )
    assert provenance["params"]["lambda_value"] == 0.5 and provenance["wildcards"]["teacher"] == "dualcamnet"
    assert provenance["git"]["commit"] and provenance["packages"]["keras"]
    assert [Path(f["path"]).name for f in provenance["config_files"]] == ["config.yaml", "config.yaml"]
    for name in ("training", "validation", "testing", "teacher_logits"):
        (entry,) = provenance["inputs"][name]
        assert hashlib.sha256((finished / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    # The first test record, and the raw files of its first second: 0-based action folders,
    # 12 frames a second, wrapping around a short sequence (reference §1.1-§1.4).
    record = (finished / provenance["inputs"]["testing"][0]["path"]).read_text().split()[0]
    location, subject, action, data = (int(part.split("_")[1].split(".")[0]) for part in record.split("/"))
    raw = finished / "resources/dataset/sync" / f"Location_{location:02d}/Subject_{subject:02d}/Action_{action - 1:03d}"
    frames = len(list((raw / "audio").glob("A_*.npy")))
    numbers = [(12 * (data - 1) + k) % frames + 1 for k in range(12)]
    expected = np.concatenate([np.load(raw / "audio" / f"A_{n:06d}.npy")[0] for n in numbers])
    path = finished / "results/tfrecords/audio" / record
    parsed = next(iter(tf.data.TFRecordDataset(str(path), compression_type="GZIP").map(parse_fn(["audio"]))))
    np.testing.assert_array_equal(parsed["audio"].numpy().reshape(-1), expected)
    assert int(parsed["action"]) == action - 1


@pytest.mark.parametrize(
    ("stage2", "message"),
    [
        ({"lambda": 1.5}, "1.5 is greater than the maximum of 1"),
        ({"temperature": 0}, "0 is less than or equal to the minimum of 0"),
        ({"ablation": {"lambda": [0.5, -0.1]}}, "-0.1 is less than the minimum of 0"),
        # Roles come from the network registry: the message lists the networks of that role.
        (
            {"teachers": ["hearnet"]},
            "stage2.teachers: 'hearnet' not registered as a teacher; registered: dualcamnet, resnet50, temporal_resnet50",
        ),
        (
            {"students": ["dualcamnet"]},
            "stage2.students: 'dualcamnet' not registered as a student; registered: hearnet, soundnet5",
        ),
        (
            {"teachers": ["resnet50"], "ablation": {"teachers": ["dualcamnet"]}},
            "stage2.ablation.teachers ['dualcamnet'] must be among stage2.teachers ['resnet50']",
        ),
        ({"ablation": {"teachers": []}}, "[] should be non-empty"),
    ],
)
def test_bad_distillation_config_is_rejected_before_any_job(tmp_path, stage2, message):
    result = snakemake(tmp_path, "-n", config={**TINY_CONFIG, "stage2": stage2})
    output = result.stdout + result.stderr
    assert result.returncode != 0 and message in output, output[-2000:]
    assert not (tmp_path / "results").exists()


def test_ablation_grid_can_be_limited_to_some_students_and_teachers(tmp_path):
    grid = {"split": "location_2", "students": ["hearnet"], "teachers": ["dualcamnet"]}
    grid |= {"lambda": [0.5, 0.9], "temperature": [1.0, 4.0]}
    result = snakemake(tmp_path, "-n", config={**TINY_CONFIG, "stage2": {**TINY_CONFIG["stage2"], "ablation": grid}})
    assert result.returncode == 0, result.stderr[-3000:]
    runs = set(re.findall(r"results/stage2/(\S+)/seed~0/model\.weights\.npz", result.stdout))
    # Default (λ, T) for 2 students x 3 teachers on location_2, plus the 2 x 2 grid of one
    # pair, whose (0.5, 1.0) point is the default run itself.
    default = {f"{s}/from_{t}/location_2/lambda~0.5/T~1.0" for s in STUDENTS for t in TEACHERS}
    grid_runs = {f"hearnet/from_dualcamnet/location_2/lambda~{v}/T~{t}" for v in (0.5, 0.9) for t in (1.0, 4.0)}
    assert runs == default | grid_runs


@pytest.mark.workflow
def test_html_report_holds_the_tables_and_figures(finished, tmp_path):
    import zipfile

    result = snakemake(finished, "--report", str(tmp_path / "report.zip"))
    assert result.returncode == 0, result.stderr[-3000:]
    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()
    for item in ("table1_summary.csv", "comparisons.csv", "summary.md", "table1_accuracy.png", "comparisons.png"):
        assert any(name.endswith(item) for name in names), (item, names[:20])


@pytest.mark.workflow
def test_a_job_that_asks_for_a_gpu_fails_in_one_line_without_one(finished, tmp_path):
    """A training job whose resources ask for a GPU, on a CPU-only TensorFlow (as here and in
    CI), stops at once with one line that says why, and leaves no output behind."""
    import shutil

    workdir = tmp_path / "copy"
    shutil.copytree(finished, workdir, symlinks=True)  # mtimes and Snakemake's records too
    run = "results/stage1/hearnet/location_2/seed~0"
    models = {**TINY_CONFIG["models"], "hearnet": {**TINY_TRAINING, "resources": {"threads": 1, "gpu": 1}}}
    result = snakemake(
        workdir, "--cores", "1", "--forcerun", f"{run}/model.weights.npz", config={**TINY_CONFIG, "models": models}
    )
    assert result.returncode != 0
    log = (workdir / "results/logs/stage1/hearnet/location_2/seed~0/train.log").read_text()
    lines = [line for line in log.splitlines() if "asks for 1 GPU(s)" in line]
    assert len(lines) == 1, log[-3000:]
    assert "TensorFlow sees 0" in lines[0] and "tensorflow-cpu" in lines[0] and "gpu resource to 0" in lines[0]
    assert "Epoch" not in log  # it failed before training
    for name in ("model.weights.npz", "history.csv", "test_logits.npz", "provenance.json"):
        assert not (workdir / run / name).exists(), name
