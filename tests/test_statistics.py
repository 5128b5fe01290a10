"""The statistics step (petbench.statistics) against independent recomputations: Demšar's worked
example, Holm's procedure on a textbook list, the hierarchical bootstrap against a plain numpy loop with
the same seed, pairing, the rank-biserial formula, the levels of aggregation, and CI coverage."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import friedmanchisquare, wilcoxon

from petbench.statistics import (analyse, comparisons, confidence_intervals, draw_resample, friedman_from_blocks,
                                 holm, nemenyi_critical_difference, rank_biserial, rank_distribution,
                                 replicate_means, resample_for, summarize)
from petbench.statistics.bootstrap import percentile_interval

# Demšar (2006), JMLR 7, Table 6: AUC of C4.5, C4.5+m, C4.5+cf, C4.5+m+cf on 14 data sets, as printed
DEMSAR_METHODS = ["C4.5", "C4.5+m", "C4.5+cf", "C4.5+m+cf"]
DEMSAR_AUC = [[0.763, 0.768, 0.771, 0.798], [0.599, 0.591, 0.590, 0.569], [0.954, 0.971, 0.968, 0.967],
              [0.628, 0.661, 0.654, 0.657], [0.882, 0.888, 0.886, 0.898], [0.936, 0.931, 0.916, 0.931],
              [0.661, 0.668, 0.609, 0.685], [0.583, 0.583, 0.563, 0.625], [0.775, 0.838, 0.866, 0.875],
              [1.000, 1.000, 1.000, 1.000], [0.940, 0.962, 0.965, 0.962], [0.619, 0.666, 0.614, 0.669],
              [0.972, 0.981, 0.975, 0.975], [0.957, 0.978, 0.946, 0.970]]
VOTING = 12  # the row whose printed tie (0.975, 0.975) the paper's ranks break in favour of C4.5+cf


def demsar_blocks(break_voting_tie: bool) -> pd.DataFrame:
    data = [list(row) for row in DEMSAR_AUC]
    if break_voting_tie:
        data[VOTING][2] = 0.9751  # printed rounded to 0.975; the paper ranks C4.5+cf second on voting
    return pd.DataFrame(data, columns=DEMSAR_METHODS)


def test_demsar_worked_example_is_reproduced_exactly():
    result = friedman_from_blocks(demsar_blocks(break_voting_tie=True), higher_is_better=True)
    # the paper: average ranks 3.143, 2.000, 2.893, 1.964; chi2_F = 9.28; F_F = 3.69; q_0.05 = 2.569; CD = 1.25
    assert [round(result.mean_ranks[m], 3) for m in DEMSAR_METHODS] == [3.143, 2.000, 2.893, 1.964]
    assert round(result.chi2, 2) == 9.28
    assert round(result.iman_davenport, 2) == 3.69
    assert round(result.q_alpha, 3) == 2.569
    assert round(result.critical_difference, 2) == 1.25
    # "the critical value of F(3, 39) for alpha = 0.05 is 2.85, so we reject the null hypothesis"
    assert result.p_iman_davenport < 0.05
    # at 0.05 no pair differs by more than the CD: one clique, and no Nemenyi p below 0.05
    assert result.cliques() == [["C4.5+m+cf", "C4.5+m", "C4.5+cf", "C4.5"]]
    off_diagonal = result.posthoc.to_numpy()[~np.eye(4, dtype=bool)]
    assert off_diagonal.min() > 0.05
    # at 0.10 (CD = 1.12), C4.5 is worse than C4.5+m and C4.5+m+cf (the paper's Figure 1)
    loose = friedman_from_blocks(demsar_blocks(True), True, alpha=0.10)
    assert round(loose.critical_difference, 2) == 1.12
    assert loose.posthoc.loc["C4.5", "C4.5+m+cf"] < 0.10 and loose.posthoc.loc["C4.5", "C4.5+m"] < 0.10


def test_demsar_table_as_printed_gives_the_hand_computed_ranks():
    """With the voting tie as printed, C4.5+cf and C4.5+m+cf share rank 2.5 there: rank sums 44, 28, 41, 27."""
    result = friedman_from_blocks(demsar_blocks(break_voting_tie=False), higher_is_better=True)
    sums = np.array([44, 28, 41, 27])
    assert [result.mean_ranks[m] for m in DEMSAR_METHODS] == pytest.approx(sums / 14)
    n, k = 14, 4
    chi2 = 12 * n / (k * (k + 1)) * (np.sum((sums / n) ** 2) - k * (k + 1) ** 2 / 4)
    assert result.chi2 == pytest.approx(chi2)
    scipy_result = friedmanchisquare(*np.array(DEMSAR_AUC).T)  # ties corrected
    assert result.chi2_tie_corrected == pytest.approx(scipy_result.statistic)
    assert result.p == pytest.approx(scipy_result.pvalue)


def test_nemenyi_q_alpha_matches_demsars_table_5a():
    # Table 5(a): two-tailed Nemenyi critical values q_0.05 for k = 2..10
    table = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}
    for k, q in table.items():
        assert nemenyi_critical_difference(k, 10)[0] == pytest.approx(q, abs=1e-3)


def test_holm_on_a_textbook_list():
    # four hypotheses, alpha = 0.05 (Holm 1979's procedure as in Wikipedia's worked example):
    # sorted p 0.005, 0.01, 0.03, 0.04 against 0.05/4, 0.05/3, 0.05/2, 0.05/1 -> H4 and H1 rejected
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert list(adjusted < 0.05) == [True, False, False, True]
    assert np.isnan(holm([0.01, np.nan])[1]) and holm([0.01, np.nan])[0] == pytest.approx(0.01)


def test_holm_matches_the_step_down_rule_written_out():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.2, 9)
    order = np.argsort(p)
    expected = np.empty_like(p)
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - position) * p[index]))
        expected[index] = running
    assert holm(p) == pytest.approx(expected)


def test_rank_biserial_by_hand():
    # d = 1, 2, -3, 4: ranks of |d| 1, 2, 3, 4; (R+ - R-) / (R+ + R-) = (7 - 3) / 10
    assert rank_biserial([1, 2, -3, 4], [0, 0, 0, 0]) == pytest.approx(0.4)
    assert rank_biserial([2, 3, 4], [1, 1, 1]) == 1.0 and rank_biserial([1, 1], [2, 3]) == -1.0
    assert rank_biserial([0, 1, 5], [0, 3, 4]) == pytest.approx((1 - 2) / 3)  # the zero difference is left out
    assert math.isnan(rank_biserial([1, 2], [1, 2]))


def frame_of(cube: np.ndarray, methods, metric="psnr") -> pd.DataFrame:
    """A tidy frame from a (methods, seeds, subjects) array."""
    rows = [{"method": m, "seed": s, "subject": f"case{j:02d}", "metric": metric, "value": cube[i, s, j]}
            for i, m in enumerate(methods) for s in range(cube.shape[1]) for j in range(cube.shape[2])]
    return pd.DataFrame(rows)


def loop_replicates(cube: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """The hierarchical bootstrap written out: the documented draw, then explicit loops."""
    n_methods, n_seeds, n_subjects = cube.shape
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    subject_draws = rng.integers(0, n_subjects, size=(resamples, n_subjects))
    out = np.zeros((n_methods, resamples))
    for m in range(n_methods):
        for b in range(resamples):
            total = 0.0
            for k in range(n_seeds):
                seed_total = 0.0
                for j in range(n_subjects):
                    seed_total += cube[m, seed_draws[b, k], subject_draws[b, j]]
                total += seed_total / n_subjects
            out[m, b] = total / n_seeds
    return out


def test_bootstrap_matches_a_numpy_loop_with_the_same_seed():
    rng = np.random.default_rng(11)
    methods = ["a", "b", "c"]
    cube = 20 + rng.normal(0, 1, (3, 3, 6)) + np.arange(3)[:, None, None]
    frame = frame_of(cube, methods)
    resamples, seed = 300, 42
    replicates = loop_replicates(cube, resamples, seed)
    intervals = confidence_intervals(frame, resample_for(frame, resamples, seed))
    for i, method in enumerate(methods):
        row = intervals[intervals["method"] == method].iloc[0]
        assert row["mean"] == pytest.approx(cube[i].mean(axis=1).mean())
        assert [row["ci_low"], row["ci_high"]] == pytest.approx(list(np.percentile(replicates[i], [2.5, 97.5])))
    pairs = comparisons(frame, resample_for(frame, resamples, seed), reference="c")
    for i, method in enumerate(methods[:2]):
        row = pairs[pairs["method"] == method].iloc[0]
        assert [row["ci_low"], row["ci_high"]] == pytest.approx(
            list(np.percentile(replicates[i] - replicates[2], [2.5, 97.5])))
        per_subject = cube.mean(axis=1)  # each subject's mean over seeds
        assert row["p"] == pytest.approx(wilcoxon(per_subject[i], per_subject[2]).pvalue)
    # ranks in each replicate: counted again from the loop's replicates
    distribution = rank_distribution(frame, resample_for(frame, resamples, seed), {"psnr": True})
    first = (np.argmax(replicates, axis=0) == 2).mean()
    share = distribution[(distribution.method == "c") & (distribution.metric == "psnr") & (distribution["rank"] == 1)]
    assert share["share"].iloc[0] == pytest.approx(first)
    totals = distribution.groupby(["method", "metric"])["share"].sum()
    assert totals.to_numpy() == pytest.approx(1.0)


def test_the_same_resample_serves_every_method_so_differences_stay_paired():
    """b is a plus 0.5 on every subject and seed, while subjects differ by several dB: a paired CI of the
    difference is exactly 0.5 wide 0, an unpaired one would be as wide as a's own CI."""
    rng = np.random.default_rng(5)
    a = 25 + rng.normal(0, 3, (1, 2, 12)) + rng.normal(0, 1, (1, 2, 1))
    frame = frame_of(np.concatenate([a, a + 0.5]), ["a", "b"])
    resample = resample_for(frame, 500, 0)
    row = comparisons(frame, resample, reference="a").iloc[0]
    assert row["difference"] == pytest.approx(0.5)
    assert row["ci_low"] == pytest.approx(0.5, abs=1e-9) and row["ci_high"] == pytest.approx(0.5, abs=1e-9)
    own = confidence_intervals(frame, resample)
    assert (own["ci_high"] - own["ci_low"]).min() > 1.0  # the means alone are uncertain
    assert row["rank_biserial"] == 1.0 and row["n_subjects"] == 12


def test_levels_of_aggregation_stay_apart():
    # seed 0: subjects 1, 2, 3 (mean 2); seed 1: subjects 5, 9 only (mean 7): pooled mean 4, not 4.5
    frame = pd.DataFrame([{"method": "m", "seed": s, "subject": j, "metric": "psnr", "value": v}
                          for s, j, v in [(0, "x", 1), (0, "y", 2), (0, "z", 3), (1, "x", 5), (1, "y", 9)]])
    row = summarize(frame).iloc[0]
    assert row["mean"] == pytest.approx(4.5)
    assert row["seed_std"] == pytest.approx(np.std([2, 7], ddof=1))
    assert row["subject_std"] == pytest.approx(np.mean([np.std([1, 2, 3], ddof=1), np.std([5, 9], ddof=1)]))
    assert row["n_seeds"] == 2 and row["n_subjects"] == 3 and row["seeds"] == [0, 1]


def test_consensus_rank_rule_and_reliability_warnings():
    rng = np.random.default_rng(2)
    methods = ["a", "b", "c"]
    psnr = frame_of(20 + np.arange(3)[:, None, None] + rng.normal(0, 0.1, (3, 1, 4)), methods, "psnr")
    nmse = frame_of(0.1 - 0.01 * np.array([0, 2, 1])[:, None, None] + rng.normal(0, 1e-4, (3, 1, 4)), methods, "nmse")
    result = analyse(pd.concat([psnr, nmse]), {"psnr": True, "nmse": False}, reference="c", resamples=200)
    # psnr ranks a3 b2 c1; nmse ranks a3 b1 c2; consensus scores 3, 1.5, 1.5 -> ranks 3, 1, 1 (ties share)
    assert [result.rank(m, "psnr") for m in methods] == [3, 2, 1]
    assert [result.rank(m, "nmse") for m in methods] == [3, 1, 2]
    assert [result.rank(m) for m in methods] == [3, 1, 1]
    assert any("one seed" in w for w in result.warnings) and any("fewer than 5" in w for w in result.warnings)
    assert set(result.comparisons["p_holm"]) and len(result.comparisons) == 4  # 2 methods x 2 metrics


def test_bootstrap_draw_is_fixed_by_its_seed():
    first, again, other = (draw_resample([0, 1], ["x", "y", "z"], 50, s) for s in (7, 7, 8))
    assert np.array_equal(first.subject_index, again.subject_index)
    assert not np.array_equal(first.subject_index, other.subject_index)
    assert "B=50" in first.description and "seed 7" in first.description


def coverage(truth: float = 0.3, repetitions: int = 200, seeds: int = 5, subjects: int = 20) -> int:
    """How many of ``repetitions`` synthetic experiments' 95 % CIs of a paired difference cover ``truth``."""
    rng = np.random.default_rng(2024)
    covered = 0
    for repetition in range(repetitions):
        shared = rng.normal(0, 2, (1, 1, subjects))  # how hard each subject is: cancels in the pairing
        interaction = rng.normal(0, 0.3, (2, 1, subjects))  # how each method suits each subject, every seed
        luck = rng.normal(0, 0.15, (2, seeds, 1))  # each training run's luck
        noise = rng.normal(0, 0.1, (2, seeds, subjects))
        cube = 30 + np.array([truth, 0.0])[:, None, None] + shared + interaction + luck + noise
        resample = draw_resample(range(seeds), [f"case{j:02d}" for j in range(subjects)], 400, repetition)
        replicates = replicate_means(cube, resample)  # the function comparisons() uses, without pandas
        low, high = percentile_interval(replicates[0] - replicates[1])
        covered += low <= truth <= high
    return covered


def test_ci_of_a_known_difference_covers_the_truth_about_95_percent_of_the_time():
    """200 synthetic experiments (5 seeds x 20 subjects, method x subject and method x seed effects) with a
    true difference of 0.3 dB: the 95 % CI of the paired difference covers 0.3 in 90-99 % of them."""
    covered = coverage()
    assert 0.90 * 200 <= covered <= 0.99 * 200, covered


def test_all_pairs_are_read_from_either_side():
    rng = np.random.default_rng(8)
    cube = 20 + rng.normal(0, 1, (3, 2, 6)) + np.array([0.0, 1.0, 2.0])[:, None, None]
    frame = frame_of(cube, ["a", "b", "c"])
    result = analyse(frame, {"psnr": True}, reference="a", all_pairs=True, resamples=300, tests=False)
    assert len(result.comparisons) == 3  # a-b, a-c, b-c, Holm over the 3
    forward, backward = result.comparison("a", "psnr", "b"), result.comparison("b", "psnr")
    assert backward["difference"] == pytest.approx(-forward["difference"])
    assert [backward["ci_low"], backward["ci_high"]] == pytest.approx([-forward["ci_high"], -forward["ci_low"]])
    assert backward["p_holm"] == forward["p_holm"] and backward["rank_biserial"] == -forward["rank_biserial"]
