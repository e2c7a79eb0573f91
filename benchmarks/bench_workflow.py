"""The whole default workflow: wall time, job seconds by rule, and TensorFlow's start-up share.

    python benchmarks/bench_workflow.py                   # runs `snakemake --cores 2` in a fresh folder
    python benchmarks/bench_workflow.py --summarise DIR --wall 905   # a run made already

Runs the default configuration from nothing (synthetic data to summary.md) in a temporary
folder, or summarises the `results/benchmarks/` of a finished run. TensorFlow's start-up
share is the measured time of `import tensorflow, keras` in a fresh interpreter times the
number of TensorFlow jobs, over the summed job seconds. Writes `bench_workflow.json` next
to this file (or --out).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
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
        with open(path, newline="") as file:
            row = next(csv.DictReader(file, delimiter="\t"))
        parts = path.relative_to(workdir / "results/benchmarks").parts
        key = "/".join(parts[:depth]) if parts[0] in ("stage1", "stage2") else parts[0]
        seconds.setdefault(key, []).append(float(row["s"]))
    return seconds


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
