"""The paper's tables from the metrics.json of every run: tidy per-run CSVs, per-cell
summaries with 95 % intervals, paired comparisons, and the person-readable views.

* table 1: test accuracy of every model on the test list of each split: the teachers and
  students from labels (stage 1) and the students distilled from each teacher at the
  default λ and T (stage 2);
* table 2: generalisation across scenarios: a model trained on one location, tested on all
  the data of every other location;
* table 3: the λ × T ablation of each student and teacher on one split;
* table 4: leave one location out: a model trained on two locations (locations_L_M),
  tested on all the data of the third.

`tableN.csv` has one row per run (its `seed` and run folder); `tableN_summary.csv` one row
per cell: seeds, clips, mean and standard deviation over seeds, and the interval of
`uncertainty.bootstrap_interval` (seeds and test blocks). `comparisons.csv` pairs, on each
split and test list, every distilled student with the same student from labels and every
teacher with every student from labels, and every student distilled from an ensemble with the
same student distilled from each of its teachers alone, by seed and test clip. Accuracy is the clip
accuracy (`evaluation.clip_length` seconds, logits averaged over the clip); loss is the
test cross-entropy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from avdistill.errors import DataError
from avdistill.fileio import atomic_path, write_text_atomic
from avdistill.networks import registry
from avdistill.report import uncertainty

SPLIT_ORDER = ("location_1", "location_2", "location_3", "all", "locations_1_2", "locations_1_3", "locations_2_3")
RUN_KEYS = ["model", "modality", "teacher", "lambda", "temperature"]
TABLE1_CELL = [*RUN_KEYS, "split"]
TABLE2_CELL = [*RUN_KEYS, "trained_on", "tested_on"]
RUN_COLUMNS = ["seed", "accuracy", "frame_accuracy", "loss", "n_clips", "run"]
SUMMARY_COLUMNS = ["n_seeds", "n_clips", "n_blocks", "accuracy", "std", "ci_low", "ci_high", "chance"]
COMPARISON_COLUMNS = [
    "split",
    "test_list",
    "comparison",
    "a",
    "b",
    "n_seeds",
    "n_clips",
    "accuracy_a",
    "accuracy_b",
    "difference",
    "ci_low",
    "ci_high",
    "a_only",
    "b_only",
    "p_value",
]
DISTILLED = "distilled vs labels"
TEACHER = "teacher vs student"
ENSEMBLE = "ensemble vs one teacher"
METRIC_KEYS = ("model", "split", "seed", "clip_accuracy", "cross_entropy", "clips", "clip_labels", "clip_predictions")


def read_metrics(path: str | Path) -> dict:
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
        for key in METRIC_KEYS:
            metrics[key]  # noqa: B018 - a missing key is reported below
    except (OSError, ValueError, KeyError) as error:
        raise DataError(path, f"is not a metrics file written by avdistill test ({error!r})") from None
    metrics["run"] = path.parent.as_posix()
    return metrics


def _modality(model: str) -> str:
    """The modality column: what the network reads (registry), empty for an unregistered one."""
    try:
        return registry.get(model).modality
    except registry.RegistryError:
        return ""


def model_label(row) -> str:
    """`hearnet` from labels, `hearnet <- dualcamnet` distilled."""
    return f"{row['model']} <- {row['teacher']}" if row["teacher"] else row["model"]


def _row(metrics: dict, scores: dict) -> dict:
    labels, predictions = np.array(scores["clip_labels"]), np.array(scores["clip_predictions"])
    return {
        "model": metrics["model"],
        "modality": metrics.get("modality") or _modality(metrics["model"]),
        "teacher": metrics.get("teacher", ""),  # empty: trained from labels only
        "lambda": metrics.get("lambda", ""),
        "temperature": metrics.get("temperature", ""),
        "seed": int(metrics["seed"]),
        "accuracy": scores["clip_accuracy"],
        "frame_accuracy": scores.get("frame_accuracy", ""),
        "loss": scores["cross_entropy"],
        "n_clips": scores["clips"],
        "run": metrics["run"],
        # Not written: what the intervals and the paired tests read.
        "correct": predictions == labels,
        "clips_per_block": int(metrics.get("clips_per_block", 1)),
    }


def _split_rank(split: str) -> int:
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)


def _sorted(frame: pd.DataFrame, split_column: str, extra: tuple = ()) -> pd.DataFrame:
    order = frame.assign(_rank=frame[split_column].map(_split_rank), _lambda=frame["lambda"].astype(str))
    order = order.assign(_temperature=frame["temperature"].astype(str))
    keys = ["model", "teacher", "_lambda", "_temperature", "_rank", *extra]
    return frame.loc[order.sort_values(keys, kind="stable").index].reset_index(drop=True)


def table1_frame(metrics: list[dict]) -> pd.DataFrame:
    """One row per run, scored on its split's testing list."""
    frame = pd.DataFrame([{**_row(m, m), "split": m["split"]} for m in metrics])
    if frame.empty:
        return pd.DataFrame(columns=[*TABLE1_CELL, *RUN_COLUMNS, "correct", "clips_per_block"])
    return _sorted(frame, "split", ("seed",))


def is_leave_one_out(split: str) -> bool:
    """locations_L_M: trained on two locations, tested on the third (table 4)."""
    return split.startswith("locations_")


def table2_frame(metrics: list[dict], leave_one_out: bool = False) -> pd.DataFrame:
    """One row per run and other location it was tested on: the runs of a location split
    (table 2), or with `leave_one_out` of a locations_L_M split on its held-out location (table 4)."""
    rows = [
        {**_row(m, scores), "trained_on": m["split"], "tested_on": location}
        for m in metrics
        if is_leave_one_out(m["split"]) == leave_one_out
        for location, scores in sorted(m.get("other_lists", {}).items())
    ]
    if not rows:
        return pd.DataFrame(columns=[*TABLE2_CELL, *RUN_COLUMNS, "correct", "clips_per_block"])
    return _sorted(pd.DataFrame(rows), "trained_on", ("tested_on", "seed"))


def _block_matrix(runs: pd.DataFrame, where: str) -> np.ndarray:
    """[seed, block] accuracies of the runs of one cell (one test list, in seed order)."""
    sizes = {len(c) for c in runs["correct"]}
    if len(sizes) != 1:
        raise DataError(where, f"runs of one cell were scored on different numbers of clips {sorted(sizes)}")
    return np.stack(
        [uncertainty.block_scores(c, k) for c, k in zip(runs["correct"], runs["clips_per_block"], strict=True)]
    )


def summarise(frame: pd.DataFrame, cell: list[str], chance: float, **bootstrap) -> pd.DataFrame:
    """Per cell: seeds, clips, blocks, mean and std over seeds, its 95 % interval, chance."""

    def one_cell(runs: pd.DataFrame) -> pd.Series:
        runs = runs.sort_values("seed")
        scores = _block_matrix(runs, runs["run"].iloc[0])
        low, high = uncertainty.bootstrap_interval(scores, **bootstrap)
        return pd.Series(
            {
                "n_seeds": len(runs),
                "n_clips": int(runs["n_clips"].iloc[0]),
                "n_blocks": scores.shape[1],
                "accuracy": runs["accuracy"].mean(),
                "std": runs["accuracy"].std(ddof=1) if len(runs) > 1 else float("nan"),
                "ci_low": low,
                "ci_high": high,
                "chance": chance,
            }
        )

    if frame.empty:
        return pd.DataFrame(columns=[*cell, *SUMMARY_COLUMNS])
    grouped = frame.groupby(cell, sort=False, dropna=False)[frame.columns.tolist()]
    summary = grouped.apply(one_cell).reset_index()[[*cell, *SUMMARY_COLUMNS]]
    return summary.astype({"n_seeds": int, "n_clips": int, "n_blocks": int})


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, **bootstrap) -> dict | None:
    """Difference a - b over the seeds both ran, paired by seed and test clip: two table1_frame
    selections (one model each); their 95 % interval and McNemar test."""
    common = sorted(set(a["seed"]) & set(b["seed"]))
    if not common:
        return None
    a = a.set_index("seed").loc[common].reset_index()
    b = b.set_index("seed").loc[common].reset_index()
    scores_a, scores_b = _block_matrix(a, a["run"].iloc[0]), _block_matrix(b, b["run"].iloc[0])
    if scores_a.shape != scores_b.shape:
        raise DataError(a["run"].iloc[0], f"is scored on other clips than {b['run'].iloc[0]}; cannot pair them")
    low, high = uncertainty.bootstrap_interval(scores_a - scores_b, **bootstrap)
    test = uncertainty.mcnemar_exact(np.concatenate(list(a["correct"])), np.concatenate(list(b["correct"])))
    return {
        "n_seeds": len(common),
        "n_clips": int(a["n_clips"].iloc[0]),
        "accuracy_a": a["accuracy"].mean(),
        "accuracy_b": b["accuracy"].mean(),
        "difference": a["accuracy"].mean() - b["accuracy"].mean(),
        "ci_low": low,
        "ci_high": high,
        **test,
    }


def comparisons(frame: pd.DataFrame, split_column: str, test_list_column: str | None, **bootstrap) -> pd.DataFrame:
    """Every distilled student against the same student from labels, every teacher against
    every student from labels, and every student of an ensemble against the same student
    distilled from each of its teachers alone, on each split (and test list)."""
    rows = []
    groups = [split_column] + ([test_list_column] if test_list_column else [])
    for key, runs in frame.groupby(groups, sort=False):
        split, test_list = (key[0], key[1]) if test_list_column else (key[0], "testing")
        labels = runs[runs["teacher"] == ""]
        students = labels[labels["modality"] == "audio"]
        teachers = labels[labels["modality"] != "audio"]
        pairs = [
            (DISTILLED, distilled, students[students["model"] == model])
            for (model, _), distilled in runs[runs["teacher"] != ""].groupby(["model", "teacher"], sort=False)
        ]
        pairs += [
            (TEACHER, teachers[teachers["model"] == teacher], students[students["model"] == student])
            for teacher in teachers["model"].unique()
            for student in students["model"].unique()
        ]
        distilled = runs[runs["teacher"] != ""]
        pairs += [
            (ENSEMBLE, ensemble, distilled[(distilled["model"] == model) & (distilled["teacher"] == member)])
            for (model, teacher), ensemble in distilled.groupby(["model", "teacher"], sort=False)
            for member in registry.ensemble_members(teacher)
        ]
        for comparison, a, b in pairs:
            result = None if a.empty or b.empty else paired_difference(a, b, **bootstrap)
            if result:
                names = {"a": model_label(a.iloc[0]), "b": model_label(b.iloc[0])}
                rows.append({"split": split, "test_list": test_list, "comparison": comparison, **names, **result})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


# --- what a person reads ---------------------------------------------------------------


def _percent(value: float) -> str:
    return f"{100 * value:.1f}" if np.isfinite(value) else ""


def _cell_text(row) -> str:
    if not np.isfinite(row["ci_low"]):
        return _percent(row["accuracy"])
    return f"{_percent(row['accuracy'])} ± {_percent((row['ci_high'] - row['ci_low']) / 2)}"


def table1_markdown(summary: pd.DataFrame, chance: float) -> str:
    """Table 1 as a person reads it: models x splits, mean ± half-width of the 95 % interval."""
    view = summary.assign(label=summary.apply(model_label, axis=1), text=summary.apply(_cell_text, axis=1))
    splits = sorted(view["split"].unique(), key=_split_rank)
    table = view.pivot_table(index=["label", "modality"], columns="split", values="text", aggfunc="first", sort=False)
    table = table.reindex(columns=splits).fillna("")
    header = {
        s: f"{s} ({int(view.loc[view['split'] == s, 'n_seeds'].max())} seeds, "
        f"{int(view.loc[view['split'] == s, 'n_clips'].max())} clips)"
        for s in splits
    }
    lines = [
        "| model | modality | " + " | ".join(header[s] for s in splits) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in splits) + " |",
    ]
    for (label, modality), cells in table.iterrows():
        lines.append(f"| {label} | {modality} | " + " | ".join(cells[s] for s in splits) + " |")
    lines.append("| chance | | " + " | ".join(_percent(chance) for _ in splits) + " |")
    return "\n".join(lines) + "\n"


def table4_markdown(summary: pd.DataFrame, chance: float) -> str:
    """Table 4 as a person reads it: models x (trained on -> tested on), mean ± half-width."""
    if summary.empty:
        return "No leave-one-location-out split in this configuration (splits.names: locations_L_M).\n"
    view = summary.assign(
        label=summary.apply(model_label, axis=1),
        text=summary.apply(_cell_text, axis=1),
        column=summary["trained_on"] + " -> " + summary["tested_on"],
    )
    columns = sorted(view["column"].unique(), key=lambda c: _split_rank(c.split(" -> ")[0]))
    table = view.pivot_table(index=["label", "modality"], columns="column", values="text", aggfunc="first", sort=False)
    table = table.reindex(columns=columns).fillna("")
    lines = [
        "| model | modality | " + " | ".join(columns) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in columns) + " |",
    ]
    for (label, modality), cells in table.iterrows():
        lines.append(f"| {label} | {modality} | " + " | ".join(cells[c] for c in columns) + " |")
    lines.append("| chance | | " + " | ".join(_percent(chance) for _ in columns) + " |")
    return "\n".join(lines) + "\n"


def comparisons_markdown(frame: pd.DataFrame) -> str:
    lines = [
        "| split | test list | a | b | seeds | clips | a - b (pp) | 95 % interval | a only | b only | McNemar p |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for _, r in frame.iterrows():
        lines.append(
            f"| {r['split']} | {r['test_list']} | {r['a']} | {r['b']} | {r['n_seeds']} | {r['n_clips']} | "
            f"{100 * r['difference']:+.1f} | {_interval(r)} | {r['a_only']} | {r['b_only']} | {r['p_value']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def _interval(row) -> str:
    if not np.isfinite(row["ci_low"]):
        return "none (one block)"
    return f"[{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]"


def write_csv(frame: pd.DataFrame, columns: list[str], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.reindex(columns=columns).to_csv(tmp, index=False, lineterminator="\n")


def write_tables(
    stage1: list,
    stage2: list,
    ablation: list,
    outputs: dict,
    chance: float,
    confidence: float = uncertainty.CONFIDENCE,
    resamples: int = uncertainty.RESAMPLES,
) -> dict[str, pd.DataFrame]:
    """Tables 1-3, their summaries, the comparisons and summary.md from the metrics files of
    stage 1, stage 2 at the default (λ, T), and the ablation grid. `outputs`: name -> path
    for table1, table1_summary, table1_md, table2, table2_summary, table3, table3_summary,
    comparisons, comparisons_md, summary. Returns the frames written."""
    from avdistill.report.claims import summary_markdown

    bootstrap = {"confidence": confidence, "resamples": resamples}
    first = [read_metrics(p) for p in stage1]
    default = [read_metrics(p) for p in stage2]
    grid = [read_metrics(p) for p in ablation]
    frames = {"table1": table1_frame(first + default), "table2": table2_frame(first + default)}
    frames["table3"] = table1_frame(grid)
    frames["table4"] = table2_frame(first + default, leave_one_out=True)
    frames["table1_summary"] = summarise(frames["table1"], TABLE1_CELL, chance, **bootstrap)
    frames["table2_summary"] = summarise(frames["table2"], TABLE2_CELL, chance, **bootstrap)
    frames["table3_summary"] = summarise(frames["table3"], TABLE1_CELL, chance, **bootstrap)
    frames["table4_summary"] = summarise(frames["table4"], TABLE2_CELL, chance, **bootstrap)
    frames["comparisons"] = pd.concat(
        [
            comparisons(frames["table1"], "split", None, **bootstrap),
            comparisons(frames["table2"], "trained_on", "tested_on", **bootstrap),
            comparisons(frames["table4"], "trained_on", "tested_on", **bootstrap),
        ],
        ignore_index=True,
    )
    write_csv(frames["table1"], [*TABLE1_CELL, *RUN_COLUMNS], outputs["table1"])
    write_csv(frames["table2"], [*TABLE2_CELL, *RUN_COLUMNS], outputs["table2"])
    write_csv(frames["table3"], [*TABLE1_CELL, *RUN_COLUMNS], outputs["table3"])
    write_csv(frames["table1_summary"], [*TABLE1_CELL, *SUMMARY_COLUMNS], outputs["table1_summary"])
    write_csv(frames["table2_summary"], [*TABLE2_CELL, *SUMMARY_COLUMNS], outputs["table2_summary"])
    write_csv(frames["table3_summary"], [*TABLE1_CELL, *SUMMARY_COLUMNS], outputs["table3_summary"])
    write_csv(frames["table4"], [*TABLE2_CELL, *RUN_COLUMNS], outputs["table4"])
    write_csv(frames["table4_summary"], [*TABLE2_CELL, *SUMMARY_COLUMNS], outputs["table4_summary"])
    write_csv(frames["comparisons"], COMPARISON_COLUMNS, outputs["comparisons"])
    header = (
        "Test clip accuracy (%) of every model on the test list of each split: mean over seeds ± "
        f"half-width of its {100 * confidence:g} % interval (bootstrap over seeds and test blocks); "
        "`a <- b`: student a distilled from teacher b.\n\n"
    )
    write_text_atomic(outputs["table1_md"], header + table1_markdown(frames["table1_summary"], chance))
    table4_header = (
        "Leave one location out: test clip accuracy (%) of every model trained on two locations, on all "
        f"the data of the third: mean over seeds ± half-width of its {100 * confidence:g} % interval.\n\n"
    )
    write_text_atomic(outputs["table4_md"], table4_header + table4_markdown(frames["table4_summary"], chance))
    comparisons_header = (
        "Paired comparisons: a - b in percentage points, mean over the seeds both ran; the "
        f"{100 * confidence:g} % interval resamples seeds and test blocks of the paired runs; "
        "McNemar's exact test on their per-clip predictions (a only: clips a gets right and b wrong).\n\n"
    )
    write_text_atomic(outputs["comparisons_md"], comparisons_header + comparisons_markdown(frames["comparisons"]))
    write_text_atomic(outputs["summary"], summary_markdown(frames, chance, confidence))
    return frames
