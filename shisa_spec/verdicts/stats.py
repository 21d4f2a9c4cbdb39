"""The statistics behind multi-sample verdicts and the upgrade gate (scipy; no pytest).

- ``interval``: Clopper-Pearson (exact) 95% interval for k passes out of n samples. Exact intervals
  never cover less than their level, which the verdict rule's stability guarantee relies on.
- ``decide``: the pass/fail rule for a check with a required pass rate, with and without a
  known-failure mark (see ``decide``'s docstring and the README).
- ``regression_p``: one-sided Fisher exact test that the candidate's rate is below the baseline's.
- ``holm``: Holm's step-down adjustment (family-wise error over all compared checks).
- ``paired_difference``: the suite-level mean difference of pass rates over checks, with a
  standard error clustered by case (Miller 2024, "Adding Error Bars to Evals").
- ``simulate_gate``: false-alarm and detection rates of the gate by simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np


def _scipy_stats():  # imported on first use: scipy.stats takes seconds to import, and most runs need it only at the end
    from scipy import stats

    return stats

ALPHA = 0.05  # the gate's family-wise false-alarm rate and 1 - the intervals' level
LEVEL = 0.95


@lru_cache(maxsize=4096)
def interval(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Clopper-Pearson interval for a binomial rate; (0, 1) for n == 0."""
    if not 0 <= k <= n:
        raise ValueError(f"k={k} must lie in 0..n={n}")
    if n == 0:
        return (0.0, 1.0)
    ci = _scipy_stats().binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return (float(ci.low), float(ci.high))


PASS, FAIL, XFAIL, XPASS = "pass", "fail", "xfail", "xpass"


@dataclass(frozen=True)
class Decision:
    """A check's verdict over its samples: ``outcome`` is pass, fail, xfail or xpass."""

    k: int
    n: int
    required: float
    marked: bool
    outcome: str
    low: float | None  # None for one sample: no interval
    high: float | None
    why: str

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def failed(self) -> bool:
        """True when the test body must raise (FAIL unmarked, XFAIL marked)."""
        return self.outcome in (FAIL, XFAIL)

    def summary(self) -> str:
        if self.n == 1:
            return f"{self.k}/1 passed (1 sample: no interval), requires {self.required:g}"
        return (f"{self.k}/{self.n} passed (95% CI {self.low:.2f}-{self.high:.2f}), "
                f"requires {self.required:g}: {self.why}")


def decide(k: int, n: int, required: float, marked: bool = False, level: float = LEVEL) -> Decision:
    """The verdict of a check that passed on k of n samples and requires the pass rate ``required``.

    With one sample there is no interval: the sample's own verdict is the check's (pass iff it passed).
    With two or more samples the verdict changes only on clear evidence, judged by the exact interval:

    - unmarked: FAIL when the interval lies wholly below the requirement (upper bound < required);
      otherwise PASS (including "not clearly below").
    - marked as a known failure: XPASS when the interval lies wholly at or above the requirement
      (lower bound >= required); otherwise XFAIL.

    Why: for a model whose true rate p is at or above the requirement, P(FAIL) <= (1 - level) / 2, so two
    runs with different seeds disagree with probability 2 P(FAIL) (1 - P(FAIL)) <= 1 - level = alpha;
    symmetrically for a marked check and p at or below the requirement. A rate strictly between
    "clearly below" and "clearly above" keeps the status quo: an unmarked check passes, a mark stays.
    """
    if not 0.0 <= required <= 1.0:
        raise ValueError(f"required pass rate {required} must lie in [0, 1]")
    if n < 1:
        raise ValueError("a verdict needs at least one sample")
    if n == 1:
        ok = k >= required
        outcome = (XPASS if ok else XFAIL) if marked else (PASS if ok else FAIL)
        return Decision(k, n, required, marked, outcome, None, None, "1 sample: no interval")
    low, high = interval(k, n, level)
    if marked:
        if low >= required:
            return Decision(k, n, required, marked, XPASS, low, high, "clearly meets the requirement now")
        return Decision(k, n, required, marked, XFAIL, low, high,
                        "not clearly meeting the requirement (known failure)")
    if high < required:
        return Decision(k, n, required, marked, FAIL, low, high, "clearly below the requirement")
    if k / n >= required:
        return Decision(k, n, required, marked, PASS, low, high, "meets the requirement")
    return Decision(k, n, required, marked, PASS, low, high, "below the requirement, but not clearly")


def flip_probability(p: float, n: int, required: float, marked: bool = False, level: float = LEVEL) -> float:
    """Exact probability that two independent n-sample runs of a model with true rate p get different verdicts."""
    ks = np.arange(n + 1)
    pmf = _scipy_stats().binom.pmf(ks, n, p)
    failed = np.array([decide(int(k), n, required, marked, level).failed for k in ks])
    q = float(pmf[failed].sum())
    return 2 * q * (1 - q)


@lru_cache(maxsize=256)
def _fisher_table(n0: int, n1: int) -> np.ndarray:
    """One-sided Fisher p-values for every (k0, k1): H1 = the candidate's rate is below the baseline's."""
    out = np.ones((n0 + 1, n1 + 1))
    for k0 in range(n0 + 1):
        for k1 in range(n1 + 1):
            out[k0, k1] = regression_p(k0, n0, k1, n1)
    return out


def regression_p(k0: int, n0: int, k1: int, n1: int) -> float:
    """One-sided Fisher exact p-value that the candidate (k1 of n1) passes less often than the baseline (k0 of n0)."""
    table = [[k0, n0 - k0], [k1, n1 - k1]]
    return float(_scipy_stats().fisher_exact(table, alternative="greater").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class SuiteDifference:
    """Mean over checks of (candidate rate - baseline rate), with a case-clustered standard error."""

    mean: float
    se: float
    checks: int
    cases: int

    @property
    def low(self) -> float:
        return self.mean - 1.96 * self.se

    @property
    def high(self) -> float:
        return self.mean + 1.96 * self.se

    @property
    def p_two_sided(self) -> float | None:
        if self.se == 0:
            return None
        return float(2 * _scipy_stats().norm.sf(abs(self.mean) / self.se))

    def summary(self) -> str:
        return (f"suite: mean change in pass rate {self.mean:+.3f} (95% CI {self.low:+.3f} to {self.high:+.3f}, "
                f"SE {self.se:.3f} clustered by case; {self.checks} checks in {self.cases} cases)")


def paired_difference(rows: Iterable[tuple[str, float, float]]) -> SuiteDifference | None:
    """Suite-level paired difference from (case, baseline rate, candidate rate) per check.

    The per-check differences d_i are paired by check; their mean's standard error is clustered by
    case (checks of one case share an output, so they are not independent):
    SE = sqrt(sum over cases of (sum of (d_i - mean) in the case)^2) / number of checks.
    """
    rows = list(rows)
    if not rows:
        return None
    d = np.array([c - b for _, b, c in rows], dtype=float)
    mean = float(d.mean())
    clusters: dict[str, float] = {}
    for (case, _, _), di in zip(rows, d):
        clusters[case] = clusters.get(case, 0.0) + (di - mean)
    se = math.sqrt(sum(v * v for v in clusters.values())) / len(rows)
    return SuiteDifference(mean, se, len(rows), len(clusters))


@dataclass(frozen=True)
class GateSimulation:
    n: int
    sims: int
    checks: int
    alpha: float
    false_alarm: float  # share of simulated suites with at least one regression called, no true change
    detection: float  # share of simulated suites where the one dropped check was called a regression
    drop: tuple[float, float]


def gate_calls(k0: np.ndarray, k1: np.ndarray, n: int, alpha: float = ALPHA) -> np.ndarray:
    """Regressions the gate calls for count arrays of shape (sims, checks): Fisher one-sided + Holm."""
    table = _fisher_table(n, n)
    p = table[k0, k1]
    m = p.shape[1]
    order = np.argsort(p, axis=1)
    ps = np.take_along_axis(p, order, axis=1)
    adj = np.maximum.accumulate(np.minimum(1.0, ps * (m - np.arange(m))), axis=1)
    called_sorted = adj <= alpha
    called = np.zeros_like(called_sorted)
    np.put_along_axis(called, order, called_sorted, axis=1)
    return called


def simulate_gate(rates: Sequence[float], n: int, drop: tuple[float, float] = (0.9, 0.3), sims: int = 2000,
                  alpha: float = ALPHA, seed: int = 0) -> GateSimulation:
    """Baseline and candidate drawn from the same per-check ``rates`` (false alarms), and again with
    one extra check whose rate falls from drop[0] to drop[1] (detection)."""
    rng = np.random.default_rng(seed)
    r = np.asarray(rates, dtype=float)
    k0 = rng.binomial(n, r, size=(sims, r.size))
    k1 = rng.binomial(n, r, size=(sims, r.size))
    false_alarm = float(gate_calls(k0, k1, n, alpha).any(axis=1).mean())
    b = np.concatenate([r, [drop[0]]])
    c = np.concatenate([r, [drop[1]]])
    k0 = rng.binomial(n, b, size=(sims, b.size))
    k1 = rng.binomial(n, c, size=(sims, c.size))
    detection = float(gate_calls(k0, k1, n, alpha)[:, -1].mean())
    return GateSimulation(n, sims, r.size, alpha, false_alarm, detection, drop)


def power(n: int, p0: float, p1: float, alpha: float) -> float:
    """Exact power of the one-sided Fisher test at level alpha, n samples per side, rates p0 -> p1."""
    table = _fisher_table(n, n)
    ks = np.arange(n + 1)
    binom = _scipy_stats().binom
    w = np.outer(binom.pmf(ks, n, p0), binom.pmf(ks, n, p1))
    return float(w[table <= alpha].sum())


def smallest_detectable(n: int, p0: float, alpha: float, target: float = 0.8, step: float = 0.01) -> float | None:
    """The smallest drop from p0 the test detects with at least ``target`` power (None: not even to 0)."""
    p1 = p0
    while p1 >= -1e-9:
        if power(n, p0, max(p1, 0.0), alpha) >= target:
            return round(p0 - max(p1, 0.0), 4)
        p1 -= step
    return None
