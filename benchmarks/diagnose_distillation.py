"""Why HearNet distilled from DualCamNet does not beat HearNet from labels: a finished run, taken apart.

    python benchmarks/diagnose_distillation.py RUN_DIR --out benchmarks/distillation_diagnosis.json
    python benchmarks/diagnose_distillation.py RUN_DIR --controls --out ...   # + 3 x 3 stage-2 runs

RUN_DIR is the folder a default run was made in (`bench_workflow.py` leaves one in /tmp).
It reports, from that run's own files and nothing trained anew:

* `by_location`: each model's test clip accuracy per location, mean over seeds. The anechoic
  chamber has no second person; the office and the terrace have one doing another of the
  dataset's actions as loud as the subject (`avdistill.data.scenes`).
* `microphone_ceiling`: what a single-microphone student can reach at best on that test
  list, derived from how the data is made, not from any run: every clip of the chamber,
  and half of the others (it hears two actions and cannot tell which is the subject's).
* `teacher_targets`: what the student is taught. For every 5-second training sample the
  student can draw (each offset in each 10-second block, as the loader crops), the teacher's
  soft target softmax(mean of its record logits / T): how often its argmax is the label,
  and the mean probability it gives the label.

With --controls it also distils HearNet again, each seed with the run's own settings
(read from the stage-2 run's provenance.json) and the teacher's logits replaced:

* `teacher_as_is`: the teacher's logits unchanged: this rerun must give the workflow's own
  distilled runs, which shows the controls are run as the workflow runs its jobs.
* `labels_as_teacher`: logits 30 * one-hot(label), a teacher that is always right and sure.
  The loss is then CE(labels) up to e^-30: this control says whether the distillation job
  itself (data, alignment of the cached logits, the step) trains as well as stage 1 does.
* `teacher_sharpened`: the teacher's own logits times 10: its argmax on every record, at
  full confidence. It separates the teacher's errors from its softness.

Each control is paired with HearNet from labels (same seed, same test blocks) with the
intervals and McNemar test the tables use (`avdistill.report.uncertainty`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.special import softmax

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from machine import machine_info  # noqa: E402  (benchmarks/machine.py, beside this script)

from avdistill.report.tables import paired_difference, read_metrics, table1_frame  # noqa: E402

SPLIT = "all"
STUDENT_RUN = "results/stage2/hearnet/from_dualcamnet/all/lambda~0.5/T~1.0/seed~{seed}"
RUNS = {
    "DualCamNet": "results/stage1/dualcamnet/all/seed~{seed}",
    "HearNet from labels": "results/stage1/hearnet/all/seed~{seed}",
    "HearNet <- DualCamNet": STUDENT_RUN,
}
CONTROLS = {"teacher_as_is": 1.0, "labels_as_teacher": None, "teacher_sharpened": 10.0}


def location_of(entry: str) -> int:
    return int(entry.split("/")[0].removeprefix("Location_"))


def action_of(entry: str) -> int:
    return int(entry.split("/")[2].removeprefix("Action_")) - 1  # folders count from 1


def seeds_of(run_dir: Path) -> list[int]:
    return sorted(int(p.name.removeprefix("seed~")) for p in (run_dir / "results/stage1/hearnet/all").glob("seed~*"))


def clip_locations(testing_list: Path, metrics: dict) -> np.ndarray:
    """The location of each test clip: a clip is `clip_length` consecutive 1-second records."""
    entries = testing_list.read_text().split()
    per_clip = len(entries) // len(metrics["clip_labels"])
    return np.array([location_of(entries[i * per_clip]) for i in range(len(metrics["clip_labels"]))])


def by_location(run_dir: Path, seeds: list[int]) -> dict:
    out = {}
    for name, pattern in RUNS.items():
        rows = defaultdict(list)
        for seed in seeds:
            metrics = read_metrics(run_dir / pattern.format(seed=seed) / "metrics.json")
            locations = clip_locations(run_dir / f"results/lists/{SPLIT}/testing.txt", metrics)
            hits = table1_frame([metrics])["correct"].iloc[0]
            for location in sorted(set(locations)):
                rows[f"location_{location}"].append(float(hits[locations == location].mean()))
            rows["all"].append(float(hits.mean()))
        out[name] = {key: round(100 * float(np.mean(values)), 1) for key, values in rows.items()}
    return out


def microphone_ceiling(run_dir: Path, seeds: list[int]) -> dict:
    metrics = read_metrics(run_dir / RUNS["HearNet from labels"].format(seed=seeds[0]) / "metrics.json")
    locations = clip_locations(run_dir / f"results/lists/{SPLIT}/testing.txt", metrics)
    share = {location: float(np.mean(locations == location)) for location in (1, 2, 3)}
    return {
        "clips_per_location": {f"location_{k}": int(np.sum(locations == k)) for k in (1, 2, 3)},
        "ceiling_percent": round(100 * (share[1] + 0.5 * (share[2] + share[3])), 1),
    }


def training_samples(training_list: Path, sample_length: int) -> list[list[str]]:
    """Every `sample_length`-second window of consecutive records inside each 10-second block
    of the list (a block: consecutive entries of one recording, as the split draws them)."""
    entries = training_list.read_text().split()
    blocks, current = [], []
    for entry in entries:
        second = int(entry.rsplit("_", 1)[1].split(".")[0]) - 1
        key = (entry.rsplit("/", 1)[0], second // 10)
        if current and key != current[0]:
            blocks.append(current[1])
            current = []
        current = current or [key, []]
        current[1].append(entry)
    blocks.append(current[1])
    return [block[o : o + sample_length] for block in blocks for o in range(len(block) - sample_length + 1)]


def teacher_targets(run_dir: Path, seeds: list[int], sample_length: int = 5, temperature: float = 1.0) -> dict:
    samples = training_samples(run_dir / f"results/lists/{SPLIT}/training.txt", sample_length)
    out = defaultdict(lambda: defaultdict(list))
    for seed in seeds:
        with np.load(run_dir / RUNS["DualCamNet"].format(seed=seed) / "teacher_logits.npz") as data:
            index = {entry: i for i, entry in enumerate(data["records"])}
            record_logits = data["logits"].mean(axis=1)
        for location in (1, 2, 3, None):
            chosen = [s for s in samples if location is None or location_of(s[0]) == location]
            logits = np.stack([record_logits[[index[e] for e in sample]].mean(axis=0) for sample in chosen])
            labels = np.array([action_of(sample[0]) for sample in chosen])
            target = softmax(logits / temperature, axis=-1)
            key = "all" if location is None else f"location_{location}"
            out[key]["argmax_is_label"].append(float(np.mean(target.argmax(axis=1) == labels)))
            out[key]["probability_of_label"].append(float(target[np.arange(len(labels)), labels].mean()))
    return {
        key: {name: round(float(np.mean(values)), 3) for name, values in stats.items()} for key, stats in out.items()
    }


# --- the controls: HearNet distilled again from altered teacher logits ------------------


def control_logits(source: Path, out: Path, sharpen: float | None) -> None:
    with np.load(source) as data:
        arrays = {key: data[key] for key in data.files if key != "features"}
    if sharpen is None:
        labels = np.array([action_of(entry) for entry in arrays["records"]])
        onehot = np.eye(arrays["logits"].shape[-1], dtype=np.float32)[labels]
        arrays["logits"] = np.repeat(30.0 * onehot[:, None, :], arrays["logits"].shape[1], axis=1)
    else:
        arrays["logits"] = (sharpen * arrays["logits"]).astype(np.float32)
    np.savez(out, **arrays)


def distil_control(run_dir: Path, seed: int, name: str, sharpen: float | None, scratch: Path) -> Path:
    """One control run in `scratch`, with the stage-2 run's own params, scored as its test
    job scores it; the path of its metrics.json."""
    from avdistill.train.distillation import run_distillation
    from avdistill.train.evaluate import score_test_logits

    run = run_dir / STUDENT_RUN.format(seed=seed)
    provenance = json.loads((run / "provenance.json").read_text())
    params = provenance["params"]
    inputs = {key: files[0]["path"] for key, files in provenance["inputs"].items() if files}
    folder = scratch / name / f"seed~{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    logits = folder / "teacher_logits.npz"
    control_logits(run_dir / inputs["teacher_logits"], logits, sharpen)
    cwd = os.getcwd()
    os.chdir(run_dir)  # the params name files relative to the run's folder
    try:
        run_distillation(
            "hearnet",
            params["teachers"],
            params["lambda_value"],
            params["temperature"],
            params["settings"],
            params["loader"],
            params["seed"],
            1,
            stats_dir=params["stats_dir"],
            init_file=params["init_file"],
            lists=[inputs["training"], inputs["validation"], inputs["testing"]],
            roots=params["roots"],
            teacher_logits=[logits],
            work_dir=folder / "train_state",
            weights_out=folder / "model.weights.npz",
            history_out=folder / "history.csv",
            test_lists=params["test_lists"],
            test_logits_out=folder / "test_logits.npz",
        )
    finally:
        os.chdir(cwd)
    clip_length = read_metrics(run / "metrics.json")["clip_length"]
    score_test_logits(
        "hearnet",
        folder / "test_logits.npz",
        folder / "model.weights.npz",
        folder / "metrics.json",
        clip_length,
        {"split": SPLIT, "seed": seed, "teacher": name},
    )
    return folder / "metrics.json"


def paired_with_labels(run_dir: Path, seeds: list[int], control_metrics: list[Path]) -> dict:
    """The control runs against HearNet from labels, as `comparisons.csv` pairs two models."""
    control = table1_frame([read_metrics(path) for path in control_metrics])
    labels = table1_frame(
        [read_metrics(run_dir / RUNS["HearNet from labels"].format(seed=s) / "metrics.json") for s in seeds]
    )
    paired = paired_difference(control, labels)
    return {
        "accuracy_percent": round(100 * paired["accuracy_a"], 1),
        "per_seed_percent": [round(100 * a, 1) for a in control.sort_values("seed")["accuracy"]],
        "minus_hearnet_from_labels_pp": round(100 * paired["difference"], 1),
        "interval_95_pp": [round(100 * paired["ci_low"], 1), round(100 * paired["ci_high"], 1)],
        "mcnemar": {key: paired[key] for key in ("a_only", "b_only", "p_value")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--controls", action="store_true", help="distil HearNet again from the control teachers")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the control runs (default: in RUN_DIR)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("distillation_diagnosis.json"))
    args = parser.parse_args()
    run_dir = args.run_dir.resolve()
    seeds = seeds_of(run_dir)
    report = {
        "machine": machine_info(),
        "run_dir": str(run_dir),
        "seeds": seeds,
        "by_location_percent": by_location(run_dir, seeds),
        "microphone_ceiling": microphone_ceiling(run_dir, seeds),
        "teacher_targets_on_training_samples": teacher_targets(run_dir, seeds),
    }
    if args.controls:
        scratch = (args.scratch or run_dir / "diagnosis").resolve()
        report["controls"] = {}
        for name, sharpen in CONTROLS.items():
            metrics = [distil_control(run_dir, seed, name, sharpen, scratch) for seed in seeds]
            report["controls"][name] = paired_with_labels(run_dir, seeds, metrics)
            print(name, report["controls"][name], flush=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
