"""Uncertainty of the tables: confidence intervals over seeds and test blocks, paired tests.

A table cell is the test accuracy of one model, repeated over seeds, on one fixed test list.
Two things make it uncertain: the run (initial weights, crops and shuffles, set by the
seed) and the finite test set. The clips of a test list are not independent draws: the
split draws whole `total_length`-second blocks, each from one recording, and its clips
share the recording's subject, location and background. So the interval resamples what
was drawn: seeds and whole blocks, each with replacement and independently (a two-stage
bootstrap); the statistic is the accuracy over the resampled runs and blocks, and the
interval its 95 % percentile interval. With one seed only the blocks are resampled.
A paired comparison (two models on the same list under the same seeds: a distilled student
and the same student from labels, or a teacher and a student) resamples the per-block
difference of the paired runs the same way.

`scipy.stats.bootstrap` does the resampling: seeds and blocks are passed as two samples
of indices, which it resamples independently, and the statistic looks the indices up in
the [seed, block] matrix. The percentile method, rather than SciPy's default BCa: BCa's
jackknife is undefined for a cell whose blocks all score alike (common for 0 % and 100 %
cells on a small list) and the percentile interval is the one a reader can check by hand.

The exact McNemar test (`scipy.stats.binomtest` on the discordant clips) asks whether two
paired models err on different clips more often one way than the other. It pools the
clips of every paired seed and takes clips as independent, which they are not quite (see
above): the interval is what the verdicts rest on, the p-value is reported beside it.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 9999


def block_scores(correct: np.ndarray, clips_per_block: int) -> np.ndarray:
    """Per-block accuracy [n_blocks] of one run from its per-clip correctness in list order."""
    correct = np.asarray(correct, dtype=float)
    if clips_per_block < 1 or len(correct) % clips_per_block:
        raise ValueError(f"{len(correct)} clips do not make whole blocks of {clips_per_block}")
    return correct.reshape(-1, clips_per_block).mean(axis=1)


def bootstrap_interval(
    scores: np.ndarray, confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean of `scores` [n_seeds, n_blocks] over seeds and blocks.

    Seeds and blocks are resampled independently, each with replacement; with one seed, the
    blocks alone. A matrix with a single block has no interval: (nan, nan).
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] < 2:
        return float("nan"), float("nan")
    n_seeds, n_blocks = scores.shape

    if n_seeds == 1:
        data = (np.arange(n_blocks),)

        def statistic(blocks, axis=-1):
            return scores[0][blocks].mean(axis=axis)

    else:
        data = (np.arange(n_seeds), np.arange(n_blocks))

        def statistic(seeds, blocks, axis=-1):
            # seeds [..., n_seeds], blocks [..., n_blocks]: the mean over the resampled grid.
            return scores[seeds[..., :, None], blocks[..., None, :]].mean(axis=(-2, -1))

    result = stats.bootstrap(
        data,
        statistic,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Exact McNemar test of paired per-clip correctness: discordant counts and p-value."""
    correct_a = np.asarray(correct_a, dtype=bool)
    correct_b = np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape:
        raise ValueError(f"paired predictions differ in shape: {correct_a.shape} vs {correct_b.shape}")
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(~correct_a & correct_b))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p_value}


def verdict(low: float, high: float, confidence: float = CONFIDENCE) -> str:
    """A claimed positive difference, in words, from its interval."""
    level = f"{100 * confidence:g} %"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not measured"
    if low > 0:
        return f"supported at {level}"
    if high < 0:
        return f"contradicted at {level}"
    return f"not resolved at {level}"
