"""Early stopping, and the paper's θ_pre rule built on it (``early-stop``).

The paper ships as θ_pre what conventional early stopping ships: patience-based early stopping on the
smoothed val accuracy (or val loss) counted from the first eval, whether or not the model fits the
training set yet. θ_pre must also precede the grokking onset: if early stopping has not triggered by
then, θ_pre is the best saved eval before t_onset - smooth_w // 2 (the trailing median lags a jump by
that many evals, so the raw model just before t_onset may already have grokked). The other rule, ``matched-train`` (searched
from t_mem on), is :func:`grokplug._online.choose_pre`.

It imports only ``_theta_rules`` (EarlyStop), so the offline detector (``_detect.py``) and the
online one (``_online.py``) can both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._theta_rules import EarlyStop

__all__ = ["PRE_RULES", "EarlyStop", "EarlyStopCandidates", "choose_pre_early_stop"]

PRE_RULES = ("early-stop", "matched-train")
"""θ_pre rules: the first serves ``phase="pre"``, the second ``phase="pre-matched"``."""


def choose_pre_early_stop(
    steps: Sequence[int], curve: Sequence[float], saved: Sequence[bool], i_onset: int | None, p: Mapping[str, Any], metric: str
) -> tuple[int | None, str, str]:
    """θ_pre by the ``early-stop`` rule: (index or None, rule, explanation).

    ``curve`` is the smoothed metric, higher is better (val loss enters negated). The run is cut
    before t_onset when there is one: the best saved eval up to the stop, or up to the cut if that
    comes first.
    """
    limit = len(steps) if i_onset is None else max(0, i_onset - p["smooth_w"] // 2)
    es = EarlyStop(p["patience"], p["min_delta"])
    for i in range(limit):
        es.push(i, curve[i], saved[i])
    what = f"early stopping on smoothed {metric} from the first eval (patience {p['patience']} evals, min_delta {p['min_delta']:g})"
    if es.stop is not None:
        rule, how = "early-stopping", f"triggered at step {steps[es.stop]}"
    elif i_onset is not None:
        cut = f"{p['smooth_w'] // 2} eval(s) before t_onset = {steps[i_onset]} (the smoother's lag)"
        rule, how = "capped-before-onset", f"had not triggered by {cut}, which θ_pre must precede"
    else:
        rule, how = "best-val (early stopping never triggered)", "never triggered"
    found = "the best saved eval up to then" if es.saved_best is not None else "no saved eval up to then"
    return es.saved_best, rule, f"{what} {how}; {found}"


class EarlyStopCandidates:
    """Online mirror of :func:`choose_pre_early_stop`: the saved steps that may still become θ_pre.

    The final θ_pre is the last "saved record" (an eval where :class:`EarlyStop`'s ``saved_best``
    changed) before min(stop, t_onset). t_onset is not known during training, but it is bounded: it
    is a held crossing of the onset level v(t_mem) + onset_frac · G from t_mem, that level only grows
    with the held max, and it cannot exceed the level for a held max of 1.0. So with ``lo`` the first
    window holding today's onset level and ``hi`` the first holding that ceiling, the candidates are
    the last record before ``lo``, every record in [lo, hi), and the latest record (the answer when
    the run never shows an onset); both bounds move back by ``lag`` = smooth_w // 2 evals, as the cut
    does. Before any window (or any t_mem streak) ``lo`` is the earliest index t_onset can still take. Records before ``lo`` are forgotten as ``lo`` advances.
    """

    def __init__(self, patience: int, min_delta: float, lag: int) -> None:
        self.es = EarlyStop(patience, min_delta)
        self.records: list[int] = []
        self.lag = lag

    def push(self, i: int, value: float, saved: bool) -> None:
        self.es.push(i, value, saved)
        if self.es.saved_best is not None and (not self.records or self.records[-1] != self.es.saved_best):
            self.records.append(self.es.saved_best)

    def candidates(
        self, onset_window: Callable[[float], int | None] | None, onset_now: float, onset_ceiling: float, earliest_onset: int
    ) -> list[int]:
        """``onset_window(level)``: the first window from t_mem holding ``level`` (None: not yet; the
        argument is None while no t_mem streak is open); ``earliest_onset``: the lowest index t_onset
        can still take when no window tells more (the open streak's start, else the next eval)."""
        if not self.records:
            return []
        lo = onset_window(onset_now) if onset_window is not None else None
        hi = onset_window(onset_ceiling) if onset_window is not None else None
        lo = (earliest_onset if lo is None else lo) - self.lag
        hi = None if hi is None else hi - self.lag
        before = [r for r in self.records if r < lo]
        self.records = before[-1:] + [r for r in self.records if r >= lo]  # older records can never win
        keep = {self.records[-1]}
        keep.update(r for r in self.records if hi is None or r < hi)
        return sorted(keep)
