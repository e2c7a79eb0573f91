"""Figures of the report (matplotlib, PNG): accuracy bars of each table, confusion matrices,
training curves and an acoustic image over its video frame per location."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from avdistill.constants import ACTION_NAMES
from avdistill.fileio import atomic_path
from avdistill.tables import SPLIT_ORDER, model_label


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
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        row["accuracy"] = float(row["accuracy"])
    return rows


def grouped_bars(rows: list[dict], group_key: str, groups: list[str], title: str, out: str | Path) -> None:
    """One bar per model label within each group (split or tested location)."""
    plt = _pyplot()
    labels = list(dict.fromkeys(model_label(r) for r in rows))
    values = {(model_label(r), r[group_key]): r["accuracy"] for r in rows}
    width = 0.8 / max(len(labels), 1)
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 0.25 * len(labels)), 4))
    for i, label in enumerate(labels):
        heights = [100 * values.get((label, g), np.nan) for g in groups]
        axes.bar(np.arange(len(groups)) + (i - (len(labels) - 1) / 2) * width, heights, width, label=label)
    axes.axhline(100 / len(ACTION_NAMES), color="grey", linestyle=":", linewidth=1, label="chance")
    axes.set_xticks(np.arange(len(groups)), groups)
    axes.set_ylabel("test clip accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(title)
    axes.legend(fontsize=7, ncol=2, bbox_to_anchor=(1.01, 1), loc="upper left")
    _save(figure, out)


def table1_bars(table1: str | Path, out: str | Path) -> None:
    rows = read_csv(table1)
    splits = [s for s in SPLIT_ORDER if any(r["split"] == s for r in rows)]
    grouped_bars(rows, "split", splits, "Table 1: test accuracy per split", out)


def table2_bars(table2: str | Path, out: str | Path) -> None:
    rows = read_csv(table2)
    for row in rows:
        row["pair"] = f"{row['trained_on']} -> {row['tested_on']}"
    pairs = sorted({r["pair"] for r in rows})
    grouped_bars(rows, "pair", pairs, "Table 2: trained on one location, tested on another", out)


def table3_grid(table3: str | Path, out: str | Path) -> None:
    """One panel per student and teacher: accuracy over the λ x T grid."""
    plt = _pyplot()
    rows = read_csv(table3)
    pairs = sorted({(r["model"], r["teacher"]) for r in rows})
    lambdas = sorted({float(r["lambda"]) for r in rows})
    temperatures = sorted({float(r["temperature"]) for r in rows})
    figure, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3), squeeze=False)
    for axis, (model, teacher) in zip(axes[0], pairs, strict=True):
        grid = np.full((len(lambdas), len(temperatures)), np.nan)
        for r in rows:
            if (r["model"], r["teacher"]) == (model, teacher):
                grid[lambdas.index(float(r["lambda"])), temperatures.index(float(r["temperature"]))] = r["accuracy"]
        axis.imshow(100 * grid, vmin=0, vmax=100, cmap="viridis")
        for (i, j), value in np.ndenumerate(grid):
            axis.text(j, i, f"{100 * value:.0f}", ha="center", va="center", color="white", fontsize=8)
        axis.set_xticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
        axis.set_yticks(range(len(lambdas)), [f"{v:g}" for v in lambdas])
        axis.set_xlabel("T")
        axis.set_ylabel("λ")
        axis.set_title(f"{model} <- {teacher}", fontsize=9)
    figure.suptitle(f"Table 3: accuracy (%) over λ and T on {rows[0]['split'] if rows else ''}")
    _save(figure, out)


def best_runs(table1: str | Path, split: str = "all") -> tuple[dict, dict]:
    """The best teacher trained from labels and the best student (any), on `split`."""
    rows = [r for r in read_csv(table1) if r["split"] == split] or read_csv(table1)
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
    """Validation accuracy per epoch of every run whose history.csv is given."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for path in histories:
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        epochs = [int(r["epoch"]) for r in rows]
        label = Path(path).parent.as_posix().removeprefix("results/")
        axes[0].plot(epochs, [float(r["loss"]) for r in rows], marker=".", linewidth=1, label=label)
        axes[1].plot(epochs, [100 * float(r["val_accuracy"]) for r in rows], marker=".", linewidth=1)
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

    from avdistill.records import parse_fn

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

    from avdistill.records import parse_fn

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


def write_figures(table1, table2, table3, histories, acoustic_dirs, video_dirs, outputs: dict) -> None:
    """Every figure of the report. outputs: table1, table2, table3, confusion, curves,
    overlays -> the PNG to write."""
    # The records of each location's first sequence (30 s) are the candidates.
    candidates = [sorted(Path(d).rglob("*.tfrecord"))[:30] for d in acoustic_dirs]
    table1_bars(table1, outputs["table1"])
    table2_bars(table2, outputs["table2"])
    table3_grid(table3, outputs["table3"])
    confusion_matrices(table1, outputs["confusion"])
    training_curves(histories, outputs["curves"])
    acoustic_overlays(candidates, video_dirs, acoustic_dirs, outputs["overlays"])
