"""Intervals and paired tests of the tables, against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from avdistill.networks import registry
from avdistill.report import tables, uncertainty


def two_stage_bootstrap(scores: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """The interval of the module doc, written out: resample seeds, then blocks, take the mean."""
    n_seeds, n_blocks = scores.shape
    means = np.empty(resamples)
    for i in range(resamples):
        seeds = rng.integers(0, n_seeds, n_seeds) if n_seeds > 1 else np.zeros(1, int)
        blocks = rng.integers(0, n_blocks, n_blocks)
        means[i] = scores[np.ix_(seeds, blocks)].mean()
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def test_one_seed_two_blocks_gives_the_exact_percentile_interval():
    # Resampled means of blocks (1, 0): 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    assert uncertainty.bootstrap_interval(np.array([[1.0, 0.0]])) == (0.0, 1.0)


def test_seeds_alone_spread_the_interval_when_blocks_agree():
    # Each seed scores every block alike: only the choice of seeds varies, and the mean of
    # two resampled seeds from (0.5, 0.7) is 0.5, 0.6 or 0.7 (1/4, 1/2, 1/4).
    assert uncertainty.bootstrap_interval(np.array([[0.5, 0.5, 0.5], [0.7, 0.7, 0.7]])) == pytest.approx((0.5, 0.7))


def test_a_single_block_has_no_interval():
    low, high = uncertainty.bootstrap_interval(np.array([[0.5], [0.7]]))
    assert math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_interval_matches_an_independent_two_stage_bootstrap(n_seeds):
    rng = np.random.default_rng(7)
    # 14 blocks of 2 clips: per-block accuracy 0, 0.5 or 1, each seed with its own skill.
    skill = rng.uniform(0.3, 0.8, (n_seeds, 1))
    scores = rng.binomial(2, np.broadcast_to(skill, (n_seeds, 14))) / 2
    expected = two_stage_bootstrap(scores, 20000, np.random.default_rng(1))
    low, high = uncertainty.bootstrap_interval(scores, resamples=20000)
    assert low == pytest.approx(expected[0], abs=0.012) and high == pytest.approx(expected[1], abs=0.012)
    # Seeded: the same interval every time.
    assert uncertainty.bootstrap_interval(scores) == uncertainty.bootstrap_interval(scores)


def test_the_seed_spread_widens_the_interval():
    rng = np.random.default_rng(3)
    blocks = rng.binomial(2, 0.6, 20) / 2
    agreeing = np.stack([blocks, blocks, blocks])
    disagreeing = np.stack([blocks - 0.2, blocks, blocks + 0.2])
    narrow, wide = uncertainty.bootstrap_interval(agreeing), uncertainty.bootstrap_interval(disagreeing)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p-value at 1/2 (symmetric: twice the smaller tail)."""
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1, 1, 1, 1, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1, 0, 1, 1]),  # 6 vs 1 discordant
        ([1, 0, 1, 0], [0, 1, 0, 1]),  # 2 vs 2
        ([1] * 12 + [0] * 3, [0] * 12 + [0] * 3),  # 12 vs 0
    ],
)
def test_mcnemar_matches_the_exact_binomial(a, b):
    a, b = np.array(a, bool), np.array(b, bool)
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    result = uncertainty.mcnemar_exact(a, b)
    assert (result["a_only"], result["b_only"]) == (a_only, b_only)
    assert result["p_value"] == pytest.approx(binomial_two_sided(a_only, a_only + b_only))


def test_mcnemar_without_discordant_clips_is_one():
    same = np.array([1, 0, 1], bool)
    assert uncertainty.mcnemar_exact(same, same) == {"a_only": 0, "b_only": 0, "p_value": 1.0}


def test_verdicts_read_the_interval():
    assert uncertainty.verdict(0.01, 0.3) == "supported at 95 %"
    assert uncertainty.verdict(-0.3, -0.01) == "contradicted at 95 %"
    assert uncertainty.verdict(-0.1, 0.2) == "not resolved at 95 %"
    assert uncertainty.verdict(float("nan"), float("nan")) == "not measured"


def test_blocks_must_be_whole():
    with pytest.raises(ValueError, match="5 clips do not make whole blocks of 2"):
        uncertainty.block_scores(np.ones(5, bool), 2)


def run(model: str, seed: int, correct: list[int], teacher: str = "") -> dict:
    """A tidy row as tables.table1_frame makes it, from hand-made per-clip correctness."""
    correct = np.array(correct, bool)
    return {
        "model": model,
        "modality": registry.get(model).modality,
        "teacher": teacher,
        "lambda": 0.5 if teacher else "",
        "temperature": 1.0 if teacher else "",
        "split": "all",
        "seed": seed,
        "accuracy": correct.mean(),
        "n_clips": len(correct),
        "run": f"{model}/{teacher}/{seed}",
        "correct": correct,
        "clips_per_block": 2,
    }


def test_one_seed_summary_has_the_blocks_interval_and_no_spread():
    frame = pd.DataFrame([run("hearnet", 0, [1, 1, 0, 1, 0, 0, 1, 1])])
    (cell,) = tables.summarise(frame, tables.TABLE1_CELL, chance=1 / 7).to_dict("records")
    assert cell["n_seeds"] == 1 and cell["n_blocks"] == 4 and cell["accuracy"] == 5 / 8
    assert math.isnan(cell["std"])
    blocks_only = two_stage_bootstrap(np.array([[1, 0.5, 0, 1]]), 20000, np.random.default_rng(2))
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(blocks_only, abs=0.02)


def test_comparisons_pair_runs_by_seed():
    frame = pd.DataFrame(
        [
            run("dualcamnet", 0, [1, 1, 1, 1, 1, 0]),
            run("dualcamnet", 1, [1, 1, 1, 1, 0, 1]),
            run("hearnet", 0, [0, 1, 0, 1, 0, 0]),
            run("hearnet", 1, [1, 0, 0, 0, 0, 1]),
            run("hearnet", 2, [1, 1, 1, 1, 1, 1]),  # no teacher under seed 2: not paired
            run("hearnet", 0, [1, 1, 0, 1, 0, 0], teacher="dualcamnet"),
            run("hearnet", 1, [1, 0, 0, 1, 0, 1], teacher="dualcamnet"),
        ]
    )
    result = tables.comparisons(frame, "split", None).set_index(["comparison", "a", "b"])
    teacher = result.loc[("teacher vs student", "dualcamnet", "hearnet")]
    assert teacher["n_seeds"] == 2 and teacher["difference"] == pytest.approx((5 / 6 - 2 / 6 + 5 / 6 - 2 / 6) / 2)
    # a only: clips 0, 2, 4 under seed 0 and 1, 2, 3 under seed 1; b only: none.
    assert (teacher["a_only"], teacher["b_only"]) == (6, 0)
    assert teacher["p_value"] == pytest.approx(binomial_two_sided(6, 6))
    distilled = result.loc[("distilled vs labels", "hearnet <- dualcamnet", "hearnet")]
    assert (distilled["a_only"], distilled["b_only"]) == (2, 0)
    assert distilled["difference"] == pytest.approx((1 / 6 + 1 / 6) / 2)
