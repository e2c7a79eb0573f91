"""The whole default workflow: wall time, job seconds by rule, and TensorFlow's start-up share.

    python benchmarks/bench_workflow.py                   # runs `snakemake --cores 2` in a fresh folder
    python benchmarks/bench_workflow.py --summarise DIR --wall 905   # a run made already

Runs the default configuration from nothing (synthetic data to summary.md) in a temporary
folder, or summarises the `results/benchmarks/` of a finished run. TensorFlow's start-up
share is the measured time of `import tensorflow, keras` in a fresh interpreter times the
number of TensorFlow jobs, over the summed job seconds. `phases` splits each network's
training and distillation jobs by their logs: the epochs as Keras timed them, of which the
first epoch's excess over the median of the others (tracing the step), the teacher's logits
of every training and validation record (from the log lines that open and close them), and
the rest (interpreter and TensorFlow start-up, building the model and its datasets,
predicting the test lists, saving). Writes `bench_workflow.json` next to this file (or
--out).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

from machine import machine_info  # noqa: E402  (benchmarks/machine.py, beside this script)

# Folders under results/benchmarks/ whose jobs start TensorFlow: training, distillation, statistics.
TENSORFLOW_STAGES = ("stage1", "stage2", "stats")


def job_seconds(workdir: Path, depth: int = 1) -> dict[str, list[float]]:
    """Seconds of every benchmarked job, by the first `depth` folders under results/benchmarks/
    (1: the stage; 2: the stage and, for training, the network)."""
    seconds: dict[str, list[float]] = {}
    for path in sorted((workdir / "results/benchmarks").rglob("*.tsv")):
        parts = path.relative_to(workdir / "results/benchmarks").parts
        key = "/".join(parts[:depth]) if parts[0] in ("stage1", "stage2") else parts[0]
        seconds.setdefault(key, []).append(benchmarked_seconds(path))
    return seconds


def benchmarked_seconds(path: Path) -> float:
    """The wall seconds in a job's Snakemake `benchmark:` file."""
    with open(path, newline="") as file:
        return float(next(csv.DictReader(file, delimiter="\t"))["s"])


# Keras' per-epoch line at verbose=2 ("19/19 - 17s - 888ms/step - ...") and our log lines'
# timestamps (avdistill.logs: "2026-12-07 18:34:27,571 INFO ...").
KERAS_EPOCH = re.compile(r"^\d+/\d+ - (\d+(?:\.\d+)?)s - ")
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_phases(log_text: str, total_s: float) -> dict[str, float]:
    """Seconds of one training or distillation job by phase, from its log and its benchmarked
    total: `epochs` (Keras' per-epoch times), `first_epoch_excess` (the first epoch less the
    median of the others: tracing and first-call costs; 0 with one epoch), `teacher_logits`
    (from the second "devices:" line, when the teacher job starts TensorFlow again for its
    logits, to the "logits of" line) and `other`, the rest of the total."""
    epochs, devices, logits_written = [], [], None
    for line in log_text.splitlines():
        if match := KERAS_EPOCH.match(line):
            epochs.append(float(match.group(1)))
        elif match := LOG_TIME.match(line):
            when = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            if " devices: " in line:
                devices.append(when)
            elif " logits of " in line:
                logits_written = when
    teacher = (logits_written - devices[1]).total_seconds() if logits_written and len(devices) > 1 else 0.0
    excess = epochs[0] - statistics.median(epochs[1:]) if len(epochs) > 1 else 0.0
    return {
        "epochs": sum(epochs),
        "first_epoch_excess": excess,
        "teacher_logits": teacher,
        "other": total_s - sum(epochs) - teacher,
    }


def job_phases(workdir: Path) -> dict[str, dict[str, float]]:
    """`log_phases` summed over the jobs of each stage and network (stage1/dualcamnet, ...)."""
    phases: dict[str, dict[str, float]] = {}
    benchmarks, logs = workdir / "results/benchmarks", workdir / "results/logs"
    for path in sorted(benchmarks.rglob("*.tsv")):
        parts = path.relative_to(benchmarks).parts
        log = logs.joinpath(*parts).with_suffix(".log")
        if parts[0] not in ("stage1", "stage2") or not log.is_file():
            continue
        total = benchmarked_seconds(path)
        summed = phases.setdefault("/".join(parts[:2]), {"jobs": 0, "s": 0.0})
        summed["jobs"] += 1
        summed["s"] += total
        for phase, seconds in log_phases(log.read_text(), total).items():
            summed[phase] = summed.get(phase, 0.0) + seconds
    return {key: {k: round(v, 1) for k, v in value.items()} for key, value in phases.items()}


def tensorflow_import_seconds(repeats: int = 3) -> float:
    code = "import time; t = time.perf_counter(); import tensorflow, keras; print(time.perf_counter() - t)"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env) for _ in range(repeats)
    ]
    return min(float(run.stdout) for run in runs)


def summarise(workdir: Path, wall: float, cores: int) -> dict:
    seconds = job_seconds(workdir)
    total = sum(sum(v) for v in seconds.values())
    tensorflow_jobs = sum(len(seconds.get(stage, [])) for stage in TENSORFLOW_STAGES)
    start_up = tensorflow_import_seconds()
    return {
        "machine": machine_info(),
        "cores": cores,
        "wall_s": round(wall, 1),
        "summed_job_s": round(total, 1),
        "by_stage": {stage: {"jobs": len(v), "s": round(sum(v), 1)} for stage, v in seconds.items()},
        "by_network": {key: {"jobs": len(v), "s": round(sum(v), 1)} for key, v in job_seconds(workdir, 2).items()},
        "phases": job_phases(workdir),
        "tensorflow_jobs": tensorflow_jobs,
        "tensorflow_import_s": round(start_up, 2),
        "tensorflow_start_up_share": round(tensorflow_jobs * start_up / total, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--summarise", type=Path, help="a finished run's folder (not rerun)")
    parser.add_argument("--wall", type=float, help="with --summarise: the run's wall seconds")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("bench_workflow.json"))
    args = parser.parse_args()
    if args.summarise:
        workdir, wall = args.summarise, args.wall or float("nan")
    else:
        workdir = Path(tempfile.mkdtemp(prefix="avdistill-bench-"))
        command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
        command += ["--directory", str(workdir), "--configfile", str(REPO / "config/config.yaml")]
        command += ["--workflow-profile", str(REPO / "profiles/default"), "--cores", str(args.cores)]
        started = time.perf_counter()
        subprocess.run(command, check=True)
        wall = time.perf_counter() - started
    result = summarise(workdir, wall, args.cores)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
