"""The paper's tables, in tidy CSV, from the metrics.json of every run.

* table 1: test accuracy of every model on the test list of each split: the teachers and
  students from labels (stage 1) and the students distilled from each teacher at the
  default λ and T (stage 2);
* table 2: generalisation across scenarios: a model trained on one location, tested on all
  the data of every other location;
* table 3: the λ × T ablation of each student and teacher on one split.

Accuracy is the clip accuracy (`evaluation.clip_length` seconds, logits averaged over the
clip), the measure every model is scored on alike; loss is the test cross-entropy. Every
row names the run folder that produced it (`run`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from avdistill.errors import DataError
from avdistill.fileio import atomic_path, write_text_atomic

MODALITY = {
    "dualcamnet": "acoustic",
    "hearnet": "audio",
    "soundnet5": "audio",
    "resnet50": "video",
    "temporal_resnet50": "video",
}
SPLIT_ORDER = ("location_1", "location_2", "location_3", "all")
TABLE1_COLUMNS = [
    "model",
    "modality",
    "teacher",
    "lambda",
    "temperature",
    "split",
    "accuracy",
    "frame_accuracy",
    "loss",
    "n_clips",
    "run",
]
TABLE2_COLUMNS = [
    "model",
    "modality",
    "teacher",
    "lambda",
    "temperature",
    "trained_on",
    "tested_on",
    "accuracy",
    "loss",
    "n_clips",
    "run",
]


def read_metrics(path: str | Path) -> dict:
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
        for key in ("model", "split", "clip_accuracy", "cross_entropy", "clips"):
            metrics[key]  # noqa: B018 - a missing key is reported below
    except (OSError, ValueError, KeyError) as error:
        raise DataError(path, f"is not a metrics file written by avdistill test ({error!r})") from None
    metrics["run"] = path.parent.as_posix()
    return metrics


def _row(metrics: dict, scores: dict) -> dict:
    return {
        "model": metrics["model"],
        "modality": MODALITY.get(metrics["model"], ""),
        "teacher": metrics.get("teacher", ""),  # empty: trained from labels only
        "lambda": metrics.get("lambda", ""),
        "temperature": metrics.get("temperature", ""),
        "accuracy": scores["clip_accuracy"],
        "frame_accuracy": scores.get("frame_accuracy", ""),
        "loss": scores["cross_entropy"],
        "n_clips": scores["clips"],
        "run": metrics["run"],
    }


def table1_rows(metrics: list[dict]) -> list[dict]:
    rows = [{**_row(m, m), "split": m["split"]} for m in metrics]
    return sorted(rows, key=_order)


def table2_rows(metrics: list[dict]) -> list[dict]:
    rows = []
    for m in metrics:
        for location, scores in sorted(m.get("other_lists", {}).items()):
            rows.append({**_row(m, scores), "trained_on": m["split"], "tested_on": location})
    return sorted(rows, key=lambda r: (*_order({**r, "split": r["trained_on"]}), r["tested_on"]))


def _order(row: dict) -> tuple:
    split = row["split"]
    return (
        row["model"],
        row["teacher"],
        str(row["lambda"]),
        str(row["temperature"]),
        SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER),
    )


def write_csv(rows: list[dict], columns: list[str], path: str | Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def model_label(row: dict) -> str:
    """`hearnet` from labels, `hearnet <- dualcamnet` distilled."""
    return f"{row['model']} <- {row['teacher']}" if row["teacher"] else row["model"]


def table1_markdown(rows: list[dict]) -> str:
    """Table 1 as a person reads it: models x splits, clip accuracy in %."""
    splits = [s for s in SPLIT_ORDER if any(r["split"] == s for r in rows)]
    labels = list(dict.fromkeys(model_label(r) for r in rows))
    cells = {(model_label(r), r["split"]): r["accuracy"] for r in rows}
    lines = [
        "| model | modality | " + " | ".join(splits) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in splits) + " |",
    ]
    modality = {model_label(r): r["modality"] for r in rows}
    for label in labels:
        values = [f"{100 * cells[label, s]:.1f}" if (label, s) in cells else "" for s in splits]
        lines.append(f"| {label} | {modality[label]} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_tables(
    stage1: list,
    stage2: list,
    ablation: list,
    table1: str | Path,
    table1_md: str | Path,
    table2: str | Path,
    table3: str | Path,
) -> dict[str, list[dict]]:
    """Tables 1-3 from the metrics files of stage 1, stage 2 at the default (λ, T), and the
    ablation grid. Returns the rows written."""
    first = [read_metrics(p) for p in stage1]
    default = [read_metrics(p) for p in stage2]
    grid = [read_metrics(p) for p in ablation]
    rows1 = table1_rows(first + default)
    rows2 = table2_rows(first + default)
    rows3 = table1_rows(grid)
    write_csv(rows1, TABLE1_COLUMNS, table1)
    header = (
        "Test clip accuracy (%) of every model on the test list of each split; "
        "`a <- b`: student a distilled from teacher b.\n\n"
    )
    write_text_atomic(table1_md, header + table1_markdown(rows1))
    write_csv(rows2, TABLE2_COLUMNS, table2)
    write_csv(rows3, TABLE1_COLUMNS, table3)
    return {"table1": rows1, "table2": rows2, "table3": rows3}
