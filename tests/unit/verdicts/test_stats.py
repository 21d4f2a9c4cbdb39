"""The statistics of multi-sample verdicts and the gate: interval maths (hypothesis), the verdict rule's
stability (exact and simulated), Fisher + Holm, the clustered paired difference, and the gate's error rates."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from shisa_spec.verdicts import stats

counts = st.integers(min_value=1, max_value=200).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


# ---------------------------------------------------------------- intervals


@given(counts)
def test_interval_contains_the_estimate_and_lies_in_0_1(kn):
    k, n = kn
    lo, hi = stats.interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)


@given(counts)
def test_interval_is_symmetric_under_swapping_passes_and_failures(kn):
    k, n = kn
    lo, hi = stats.interval(k, n)
    lo2, hi2 = stats.interval(n - k, n)
    assert math.isclose(lo, 1 - hi2, abs_tol=1e-9) and math.isclose(hi, 1 - lo2, abs_tol=1e-9)


@given(counts)
def test_interval_grows_with_k_and_narrows_with_n(kn):
    k, n = kn
    lo, hi = stats.interval(k, n)
    if k < n:
        lo2, hi2 = stats.interval(k + 1, n)
        assert lo2 > lo and hi2 > hi
    lo4, hi4 = stats.interval(4 * k, 4 * n)  # same rate, four times the samples
    assert hi4 - lo4 < hi - lo


@given(counts)
def test_interval_bounds_are_the_clopper_pearson_beta_quantiles(kn):
    k, n = kn
    lo, hi = stats.interval(k, n)
    if k > 0:
        assert math.isclose(lo, sst.beta.ppf(0.025, k, n - k + 1), rel_tol=1e-6)
    if k < n:
        assert math.isclose(hi, sst.beta.ppf(0.975, k + 1, n - k), rel_tol=1e-6)


@pytest.mark.parametrize("n", [8, 16, 40])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.85])
def test_interval_covers_the_true_rate_at_least_95_percent(n, p):
    """Exact coverage (sum over all outcomes), not a simulation: Clopper-Pearson never under-covers."""
    cover = sum(sst.binom.pmf(k, n, p) for k in range(n + 1) if stats.interval(k, n)[0] <= p <= stats.interval(k, n)[1])
    assert cover >= 0.95


def test_interval_rejects_impossible_counts():
    with pytest.raises(ValueError):
        stats.interval(5, 4)


# ---------------------------------------------------------------- the verdict rule


def test_one_sample_decides_by_itself_and_says_no_interval():
    assert stats.decide(1, 1, 0.5).outcome == "pass" and stats.decide(0, 1, 0.5).outcome == "fail"
    assert stats.decide(0, 1, 0.5, marked=True).outcome == "xfail" and stats.decide(1, 1, 0.5, marked=True).outcome == "xpass"
    d = stats.decide(0, 1, 0.5)
    assert d.low is None and "1 sample: no interval" in d.summary()


def test_sixteen_samples_at_the_default_requirement():
    """README's table: at N=16 and min_pass_rate 0.5 a check fails at 3/16 or fewer, a mark XPASSes at 13/16 or more."""
    outcome = {k: stats.decide(k, 16, 0.5).outcome for k in range(17)}
    assert [k for k, o in outcome.items() if o == "fail"] == [0, 1, 2, 3]
    marked = {k: stats.decide(k, 16, 0.5, marked=True).outcome for k in range(17)}
    assert [k for k, o in marked.items() if o == "xpass"] == [13, 14, 15, 16]
    assert "95% CI 0.04-0.46" in stats.decide(3, 16, 0.5).summary()


@given(counts, st.floats(0.05, 0.95), st.booleans())
def test_decision_follows_the_interval(kn, required, marked):
    k, n = kn
    d = stats.decide(k, n, required, marked)
    if n == 1:
        return
    if marked:
        assert (d.outcome == "xpass") == (d.low >= required)
    else:
        assert (d.outcome == "fail") == (d.high < required)
    if not marked and k / n >= required:
        assert d.outcome == "pass"  # never fails a check whose observed rate meets the requirement


@pytest.mark.parametrize("n", [4, 8, 16, 32])
@pytest.mark.parametrize("required", [0.3, 0.5, 0.8, 0.95])
@pytest.mark.parametrize("marked", [False, True])
def test_a_model_at_the_requirement_flips_at_most_alpha_exactly(n, required, marked):
    """Exact: two runs with different seeds of a model whose true rate is the requirement disagree with
    probability at most alpha, and no more for any true rate on the side the rule gives the benefit of doubt."""
    assert stats.flip_probability(required, n, required, marked) <= stats.ALPHA
    side = np.linspace(required, 1.0, 9) if not marked else np.linspace(0.0, required, 9)
    assert max(stats.flip_probability(p, n, required, marked) for p in side) <= stats.ALPHA


@pytest.mark.parametrize("required", [0.5, 0.8])
@pytest.mark.parametrize("marked", [False, True])
def test_a_model_at_the_requirement_flips_at_most_alpha_in_simulation(required, marked):
    """Simulated pairs of 16-sample runs (different seeds) of a model at the requirement."""
    rng = np.random.default_rng(11)
    sims, n = 20000, 16
    a, b = rng.binomial(n, required, sims), rng.binomial(n, required, sims)
    failed = {k: stats.decide(k, n, required, marked).failed for k in range(n + 1)}
    flips = np.mean([failed[int(x)] != failed[int(y)] for x, y in zip(a, b)])
    assert flips <= stats.ALPHA
    # And the rule still decides: a model far below (above) the requirement fails (XPASSes) most runs.
    # (Above 0.79 nothing XPASSes at N=16: even 16/16 has a lower bound of 0.794; README.)
    far = required - 0.4 if not marked else min(required + 0.45, 1.0)
    c = rng.binomial(n, far, 2000)
    share = np.mean([failed[int(x)] for x in c])
    if marked and required > 0.79:
        assert share == 1.0
    else:
        assert (share > 0.8) if not marked else (share < 0.2)


def test_a_single_threshold_would_flip_half_the_time():
    """Why the interval rule: judging k/N >= required alone flips about half the time at the requirement."""
    n, p = 16, 0.5
    q = sum(sst.binom.pmf(k, n, p) for k in range(n + 1) if k / n < p)
    assert 2 * q * (1 - q) > 0.45
    assert stats.flip_probability(p, n, p) <= stats.ALPHA


# ---------------------------------------------------------------- the gate's tests


def test_fisher_one_sided_matches_the_hypergeometric_tail():
    p = stats.regression_p(15, 16, 3, 16)
    # P(X >= 15) for X ~ Hypergeom(M=32, n=18 passes, N=16 drawn for the baseline)
    assert math.isclose(p, sst.hypergeom.sf(14, 32, 18, 16), rel_tol=1e-9)
    assert p < 1e-4
    assert stats.regression_p(8, 16, 7, 16) > 0.3
    assert stats.regression_p(3, 16, 15, 16) > 0.99  # an improvement is not a regression


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_holm_is_monotone_bounded_and_at_least_the_raw_p(ps):
    adj = stats.holm(ps)
    assert all(a >= p - 1e-12 and a <= 1.0 for a, p in zip(adj, ps))
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    assert all(adj[order[i]] <= adj[order[i + 1]] + 1e-12 for i in range(len(ps) - 1))
    assert math.isclose(min(adj), min(1.0, len(ps) * min(ps)))


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.floats(0.001, 0.2))
def test_holm_rejects_what_the_step_down_procedure_rejects(ps, alpha):
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    rejected = set()
    for rank, i in enumerate(order):
        if ps[i] > alpha / (m - rank):
            break
        rejected.add(i)
    assert {i for i, a in enumerate(stats.holm(ps)) if a <= alpha} == rejected


def test_paired_difference_clusters_by_case():
    rows = [("a", 1.0, 0.0), ("a", 1.0, 0.0), ("b", 0.0, 0.0), ("b", 0.0, 0.0)]
    d = stats.paired_difference(rows)
    assert d.mean == -0.5 and d.checks == 4 and d.cases == 2
    # Clusters sum the deviations: a: 2 * -0.5, b: 2 * +0.5 -> sqrt(1 + 1) / 4
    assert math.isclose(d.se, math.sqrt(2) / 4)
    independent = math.sqrt(sum((x - d.mean) ** 2 for x in [-1, -1, 0, 0])) / 4
    assert d.se > independent  # correlated checks of one case widen the interval
    assert stats.paired_difference([]) is None


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=30))
def test_paired_difference_one_check_per_case_is_the_plain_standard_error(rows):
    seen, unique = set(), []
    for r in rows:
        if r[0] not in seen:
            seen.add(r[0])
            unique.append(r)
    d = stats.paired_difference(unique)
    diffs = np.array([c - b for _, b, c in unique])
    assert math.isclose(d.se, math.sqrt(((diffs - diffs.mean()) ** 2).sum()) / len(diffs), abs_tol=1e-12)


# ---------------------------------------------------------------- the gate's error rates


SUITE_RATES = [1.0] * 30 + [0.9] * 10 + [0.7] * 8 + [0.5] * 7 + [0.3] * 5 + [0.1] * 5  # 65 checks, like the shipped suite


@pytest.mark.parametrize("rates", [SUITE_RATES, [0.5] * 65, [0.8] * 65])
def test_gate_false_alarms_stay_below_alpha(rates):
    sim = stats.simulate_gate(rates, 16, sims=4000, seed=1)
    assert sim.false_alarm <= stats.ALPHA, sim


def test_gate_detects_a_large_drop_and_figures_for_the_readme():
    sim = stats.simulate_gate(SUITE_RATES, 16, drop=(0.9, 0.2), sims=4000, seed=2)
    assert sim.detection >= 0.7, sim
    weak = stats.simulate_gate(SUITE_RATES, 16, drop=(0.5, 0.45), sims=2000, seed=3)
    assert weak.detection < 0.05  # a small change is not called


def test_power_analysis_for_the_default_n():
    """README's 'Choosing N': at N=16, one check compared alone (alpha 0.05) and under Holm's first step over 65 checks."""
    assert stats.smallest_detectable(16, 0.9, 0.05) == pytest.approx(0.45)
    assert stats.smallest_detectable(16, 0.9, 0.05 / 65) == pytest.approx(0.70)
    assert stats.power(16, 0.9, 0.2, 0.05 / 65) >= 0.8
    assert stats.smallest_detectable(4, 0.9, 0.05 / 65) is None  # N=4 cannot detect anything after correction
