"""Figures of the report (matplotlib, PNG): accuracy bars of each table with their intervals,
the paired comparisons, confusion matrices, training curves and an acoustic image over its
video frame per location."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from avdistill.constants import ACTION_NAMES
from avdistill.fileio import atomic_path
from avdistill.report.tables import SPLIT_ORDER, model_label


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _save(figure, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(figure)


def read_csv(path: str | Path) -> list[dict]:
    import pandas as pd

    frame = pd.read_csv(path, keep_default_na=False, dtype={"teacher": str, "lambda": str, "temperature": str})
    return frame.to_dict("records")


def grouped_bars(rows: list[dict], group_key: str, groups: list[str], title: str, out: str | Path) -> None:
    """One bar per model label within each group (split or tested location): the mean over
    seeds, whiskers its interval, and the chance line of the summary's `chance`."""
    plt = _pyplot()
    labels = list(dict.fromkeys(model_label(r) for r in rows))
    cells = {(model_label(r), r[group_key]): r for r in rows}
    width = 0.8 / max(len(labels), 1)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 0.25 * len(labels)), 4))
    for i, label in enumerate(labels):
        found = [cells.get((label, g)) for g in groups]
        heights = np.array([100 * float(c["accuracy"]) if c else np.nan for c in found])
        low = np.array([100 * float(c["ci_low"]) if c and c["ci_low"] != "" else np.nan for c in found])
        high = np.array([100 * float(c["ci_high"]) if c and c["ci_high"] != "" else np.nan for c in found])
        errors = np.nan_to_num(np.stack([heights - low, high - heights]))
        x = np.arange(len(groups)) + (i - (len(labels) - 1) / 2) * width
        axes.bar(x, heights, width, yerr=errors, capsize=2, error_kw={"linewidth": 0.8}, label=label)
    if rows:
        axes.axhline(100 * float(rows[0]["chance"]), color="grey", linestyle=":", linewidth=1, label="chance")
    axes.set_xticks(np.arange(len(groups)), groups)
    axes.set_ylabel("test clip accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title)
    axes.legend(fontsize=7, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    _save(figure, out)


def table1_bars(table1_summary: str | Path, out: str | Path) -> None:
    rows = read_csv(table1_summary)
    splits = [s for s in SPLIT_ORDER if any(r["split"] == s for r in rows)]
    grouped_bars(rows, "split", splits, "Table 1: test accuracy per split (mean over seeds, 95 % interval)", out)


def table2_bars(table2_summary: str | Path, out: str | Path) -> None:
    rows = read_csv(table2_summary)
    for row in rows:
        row["pair"] = f"{row['trained_on']} -> {row['tested_on']}"
    pairs = sorted({r["pair"] for r in rows})
    grouped_bars(rows, "pair", pairs, "Table 2: trained on one location, tested on another", out)


def table3_grid(table3_summary: str | Path, out: str | Path) -> None:
    """One panel per student and teacher: mean accuracy over the λ x T grid."""
    plt = _pyplot()
    rows = read_csv(table3_summary)
    pairs = sorted({(r["model"], r["teacher"]) for r in rows})
    lambdas = sorted({float(r["lambda"]) for r in rows})
    temperatures = sorted({float(r["temperature"]) for r in rows})
    figure, axes = plt.subplots(1, max(len(pairs), 1), figsize=(3.2 * max(len(pairs), 1), 3), squeeze=False)
    for axis, (model, teacher) in zip(axes[0], pairs, strict=False):
        grid = np.full((len(lambdas), len(temperatures)), np.nan)
        for r in rows:
            if (r["model"], r["teacher"]) == (model, teacher):
                i, j = lambdas.index(float(r["lambda"])), temperatures.index(float(r["temperature"]))
                grid[i, j] = float(r["accuracy"])
        axis.imshow(100 * grid, vmin=0, vmax=100, cmap="viridis")
        for (i, j), value in np.ndenumerate(grid):
            axis.text(j, i, f"{100 * value:.0f}", ha="center", va="center", color="white", fontsize=8)
        axis.set_xticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
        axis.set_yticks(range(len(lambdas)), [f"{v:g}" for v in lambdas])
        axis.set_xlabel("T")
        axis.set_ylabel("λ")
        axis.set_title(f"{model} <- {teacher}", fontsize=9)
    figure.suptitle(f"Table 3: mean accuracy (%) over λ and T on {rows[0]['split'] if rows else ''}")
    _save(figure, out)


def comparison_intervals(comparisons: str | Path, out: str | Path) -> None:
    """Each paired difference on its split's own test list, with its interval and zero."""
    plt = _pyplot()
    rows = [r for r in read_csv(comparisons) if r["test_list"] == "testing"]
    rows.sort(key=lambda r: (SPLIT_ORDER.index(r["split"]) if r["split"] in SPLIT_ORDER else 9, r["comparison"]))
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows, strict=True):
        diff = 100 * float(r["difference"])
        low = 100 * float(r["ci_low"]) if r["ci_low"] != "" else diff
        high = 100 * float(r["ci_high"]) if r["ci_high"] != "" else diff
        colour = "tab:green" if low > 0 else "tab:red" if high < 0 else "tab:grey"
        axes.errorbar(diff, yi, xerr=[[diff - low], [high - diff]], fmt="o", color=colour, capsize=2, markersize=3)
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_yticks(y, [f"{r['split']}: {r['a']} - {r['b']}" for r in rows], fontsize=7)
    axes.set_xlabel("accuracy difference a - b (percentage points), 95 % interval")
    axes.set_title("Paired comparisons (green: above zero, red: below, grey: not resolved)", fontsize=9)
    _save(figure, out)


def best_runs(table1: str | Path, split: str = "all") -> tuple[dict, dict]:
    """The best teacher trained from labels and the best student (any), on `split`."""
    rows = [r for r in read_csv(table1) if r["split"] == split] or read_csv(table1)
    for row in rows:
        row["accuracy"] = float(row["accuracy"])
    teachers = [r for r in rows if r["modality"] != "audio" and not r["teacher"]]
    students = [r for r in rows if r["modality"] == "audio"]
    return max(teachers, key=lambda r: r["accuracy"]), max(students, key=lambda r: r["accuracy"])


def confusion_matrices(table1: str | Path, out: str | Path) -> None:
    plt = _pyplot()
    runs = best_runs(table1)
    figure, axes = plt.subplots(1, 2, figsize=(11, 5))
    for axis, row in zip(axes, runs, strict=True):
        metrics = json.loads((Path(row["run"]) / "metrics.json").read_text())
        matrix = np.array(metrics["confusion_matrix"])
        axis.imshow(matrix, cmap="Blues")
        axis.set_xticks(range(len(ACTION_NAMES)), ACTION_NAMES, rotation=90, fontsize=6)
        axis.set_yticks(range(len(ACTION_NAMES)), ACTION_NAMES, fontsize=6)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{model_label(row)} on {row['split']}: {100 * row['accuracy']:.1f} %", fontsize=9)
    _save(figure, out)


def training_curves(histories: list, out: str | Path) -> None:
    """Training loss and validation accuracy per epoch of every run whose history.csv is given
    (the epochs that were validated: every one, or only the last)."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for path in histories:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        epochs = [int(r["epoch"]) for r in rows]
        label = Path(path).parent.as_posix().removeprefix("results/")
        axes[0].plot(epochs, [float(r["loss"]) for r in rows], marker=".", linewidth=1, label=label)
        # validation: last_epoch leaves the other epochs' validation columns empty.
        validated = [(int(r["epoch"]), 100 * float(r["val_accuracy"])) for r in rows if r["val_accuracy"]]
        axes[1].plot(*zip(*validated, strict=True), marker=".", linewidth=1)
    axes[0].set_title("training loss")
    axes[1].set_title("validation accuracy (%)")
    for axis in axes:
        axis.set_xlabel("epoch")
    figure.legend(fontsize=5, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.35))
    _save(figure, out)


def loudest_frame(acoustic_paths: list) -> tuple[Path, int, dict]:
    """(record, frame, parsed record) whose acoustic image has the most spatial contrast.

    Contrast is the range over the 36 x 48 grid of the first MFCC coefficient (the log
    energy); a silent frame shows only the uniform diffuse floor.
    """
    import tensorflow as tf

    from avdistill.data.records import parse_fn

    best = (-1.0, None, 0, None)
    for path in acoustic_paths:
        record = _first(tf, path, parse_fn(["acoustic"]))
        energy = record["acoustic_images"][..., 0]  # [F, 36, 48]
        contrast = np.ptp(energy.reshape(len(energy), -1), axis=1)
        frame = int(contrast.argmax())
        if contrast[frame] > best[0]:
            best = (float(contrast[frame]), Path(path), frame, record)
    return best[1], best[2], best[3]


def acoustic_overlays(acoustic_records: list[list], video_roots: list, acoustic_roots: list, out: str | Path) -> None:
    """Per location, an acoustic image over the video frame of the same instant.

    acoustic_records: per location, candidate records (the frame of most acoustic contrast
    among them is shown); the video record is the one at the same relative path under
    the location's video root. The heat map is the first MFCC coefficient (log energy) on
    the 36 x 48 grid, stretched to the frame: the paper's Figure 1 idea.
    """
    import cv2
    import tensorflow as tf

    from avdistill.data.records import parse_fn

    plt = _pyplot()
    figure, axes = plt.subplots(1, len(acoustic_records), figsize=(4 * len(acoustic_records), 3.3), squeeze=False)
    for axis, candidates, video_root, acoustic_root in zip(
        axes[0], acoustic_records, video_roots, acoustic_roots, strict=True
    ):
        path, frame, acoustic = loudest_frame(candidates)
        video = _first(tf, Path(video_root) / path.relative_to(acoustic_root), parse_fn(["video"]))
        image = video["video"][frame][..., ::-1]  # BGR -> RGB
        energy = acoustic["acoustic_images"][frame, ..., 0]
        energy = (energy - energy.min()) / max(float(np.ptp(energy)), 1e-12)
        heat = cv2.resize(energy.astype(np.float32), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
        axis.imshow(image)
        axis.imshow(heat, cmap="jet", alpha=0.4)
        action = ACTION_NAMES[int(acoustic["action"])]
        axis.set_title(f"location {int(acoustic['location']) + 1}: {action}, frame {frame + 1}", fontsize=9)
        axis.axis("off")
    _save(figure, out)


def _first(tf, path, parse) -> dict:
    dataset = tf.data.TFRecordDataset(str(path), compression_type="GZIP").map(parse).take(1)
    return {key: value.numpy() for key, value in next(iter(dataset)).items()}


def write_figures(summaries: dict, table1, histories, acoustic_dirs, video_dirs, outputs: dict) -> None:
    """Every figure of the report. summaries: table1, table2, table3 (the *_summary.csv)
    and comparisons; table1: the per-run table (for the confusion matrices); outputs:
    table1, table2, table3, comparisons, confusion, curves, overlays -> the PNG to write."""
    # The records of each location's first sequence (30 s) are the candidates.
    candidates = [sorted(Path(d).rglob("*.tfrecord"))[:30] for d in acoustic_dirs]
    table1_bars(summaries["table1"], outputs["table1"])
    table2_bars(summaries["table2"], outputs["table2"])
    table3_grid(summaries["table3"], outputs["table3"])
    comparison_intervals(summaries["comparisons"], outputs["comparisons"])
    confusion_matrices(table1, outputs["confusion"])
    training_curves(histories, outputs["curves"])
    acoustic_overlays(candidates, video_dirs, acoustic_dirs, outputs["overlays"])
