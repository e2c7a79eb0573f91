"""results/summary.md: each claim of the paper that the tables can speak to, with the
measured difference, its interval, its p-value and a verdict in plain words.

Generated from the frames of `tables.write_tables`, never written by hand. A verdict reads
the interval of the paired difference (`uncertainty.verdict`): supported when it excludes
zero on the side the paper claims, contradicted when it excludes zero on the other side,
not resolved otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from avdistill.report.tables import DISTILLED, TEACHER, _split_rank, is_leave_one_out
from avdistill.report.uncertainty import verdict

CLAIMS = (
    (
        "The acoustic-image teacher (DualCamNet) is more accurate than the audio students trained from labels",
        lambda c: (c["comparison"] == TEACHER) & (c["a"] == "dualcamnet") & (c["test_list"] == "testing"),
    ),
    (
        "A student distilled from a teacher is more accurate than the same student trained from labels",
        lambda c: (c["comparison"] == DISTILLED) & (c["test_list"] == "testing"),
    ),
    (
        "Trained on one location and tested on another (table 2), the distilled student is more "
        "accurate than the same student from labels",
        lambda c: (c["comparison"] == DISTILLED) & (c["test_list"] != "testing") & ~_leave_one_out(c),
    ),
    (
        "Trained on one location and tested on another (table 2), the acoustic-image teacher is "
        "more accurate than the audio students from labels",
        lambda c: (
            (c["comparison"] == TEACHER) & (c["a"] == "dualcamnet") & (c["test_list"] != "testing") & ~_leave_one_out(c)
        ),
    ),
    (
        "Trained on two locations and tested on all of the third (table 4), the distilled student "
        "is more accurate than the same student from labels (better generalization)",
        lambda c: (c["comparison"] == DISTILLED) & (c["test_list"] != "testing") & _leave_one_out(c),
    ),
)


def _leave_one_out(comparisons: pd.DataFrame) -> pd.Series:
    return comparisons["split"].map(is_leave_one_out).astype(bool)


def _pp(value: float) -> str:
    return f"{100 * value:+.1f}" if np.isfinite(value) else "n/a"


def _claim_table(rows: pd.DataFrame, confidence: float) -> list[str]:
    lines = [
        "| split | test list | a | b | seeds | a - b (pp) | 95 % interval | McNemar p | verdict |",
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: | --- |",
    ]
    order = rows.assign(_rank=rows["split"].map(_split_rank)).sort_values(["_rank", "test_list", "a", "b"])
    for _, r in order.iterrows():
        lines.append(
            f"| {r['split']} | {r['test_list']} | {r['a']} | {r['b']} | {r['n_seeds']} | {_pp(r['difference'])} | "
            f"[{_pp(r['ci_low'])}, {_pp(r['ci_high'])}] | {r['p_value']:.3g} | "
            f"{verdict(r['ci_low'], r['ci_high'], confidence)} |"
        )
    return lines


def _chance_table(summary: pd.DataFrame, chance: float, confidence: float) -> list[str]:
    """Teachers from labels against chance: the difference from 1/actions and its interval."""
    teachers = summary[(summary["modality"] != "audio") & (summary["teacher"] == "")]
    lines = [
        "| teacher | split | seeds | accuracy (%) | 95 % interval | verdict |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    order = teachers.assign(_rank=teachers["split"].map(_split_rank)).sort_values(["model", "_rank"])
    for _, r in order.iterrows():
        lines.append(
            f"| {r['model']} | {r['split']} | {r['n_seeds']} | {100 * r['accuracy']:.1f} | "
            f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}] | "
            f"{verdict(r['ci_low'] - chance, r['ci_high'] - chance, confidence)} |"
        )
    return lines


def summary_markdown(frames: dict[str, pd.DataFrame], chance: float, confidence: float) -> str:
    comparisons, summary = frames["comparisons"], frames["table1_summary"]
    level = f"{100 * confidence:g} %"
    seeds = summary.groupby("split")["n_seeds"].max()
    clips = summary.groupby("split")["n_clips"].max()
    runs = ", ".join(
        f"{split}: {seeds[split]} seed(s), {clips[split]} test clips" for split in sorted(seeds.index, key=_split_rank)
    )
    lines = [
        "# What the tables show",
        "",
        f"Generated from `results/comparisons.csv` and `results/table1_summary.csv` ({runs}). "
        f"Each difference is a mean over the seeds both models ran, paired by seed and test clip; "
        f"its {level} interval is a bootstrap over seeds and whole test blocks; the p-value is "
        f"McNemar's exact test on the paired clips. Verdicts read the interval: **supported** "
        f"(it excludes zero on the paper's side), **contradicted** (on the other side), "
        f"**not resolved** (it contains zero). Chance is {100 * chance:.1f} %.",
        "",
    ]
    tally = {"supported": 0, "contradicted": 0, "not resolved": 0}
    for title, select in CLAIMS:
        rows = comparisons[select(comparisons)] if not comparisons.empty else comparisons
        lines += [f"## {title}", ""]
        if rows.empty:
            lines += ["Not measured by this configuration (no such pair of runs).", ""]
            continue
        for _, r in rows.iterrows():
            word = verdict(r["ci_low"], r["ci_high"], confidence).split(" at ")[0]
            tally[word] = tally.get(word, 0) + 1
        lines += [*_claim_table(rows, confidence), ""]
    lines += [
        "## The teachers trained from labels are above chance",
        "",
        "Without it, the rows distilled from a teacher say nothing about distillation.",
        "",
        *_chance_table(summary, chance, confidence),
        "",
        f"Of the {sum(tally.values())} paired comparisons above: {tally['supported']} supported, "
        f"{tally['not resolved']} not resolved, {tally['contradicted']} contradicted at {level}.",
    ]
    return "\n".join(lines) + "\n"
