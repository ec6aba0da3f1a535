"""The shape of a run's smoothed validation curve: does it look like the paper's Fig. 1a?

The paper's run first learns (an early peak that conventional early stopping ships as θ_pre), then
overfits with *declining* val accuracy, and only much later groks above the early peak. Today's
Omnigrok-style presets instead sit on a low plateau while they memorize and then grok. The shape
names, decided on the median-smoothed val accuracy (the detector's curve):

* ``peak-decline-grok``: after the early peak P, val falls at least ``drop_min`` below P, and the run
  is labelled grokking with its last ``k`` evals all at or above P + ``rise_min`` (the rise holds);
* ``peak-decline-recover``: the same fall and rise, but the detector did not label the run grokking;
* ``peak-decline``: the fall without that rise (classic overfitting: early stopping is the best model);
* ``plateau-grok``: a grokking run whose val never fell ``drop_min`` below its early peak;
* ``plateau``: none of these (comprehension, memorization without a fall, confusion).

The early peak is the best smoothed val that early stopping from the first eval (patience, min_delta)
held before it stopped, measured on val accuracy whatever metric the θ_pre rule watches; the trough
is the lowest smoothed val after the peak; "final" is the level the last ``k`` evals all held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SHAPES", "early_peak", "run_shape"]

SHAPES = ("peak-decline-grok", "peak-decline-recover", "peak-decline", "plateau-grok", "plateau")


def early_peak(curve: Sequence[float], patience: int, min_delta: float) -> int:
    """Index of the best value early stopping (from index 0) held before its patience ran out."""
    best, wait, at = curve[0], 0, 0
    for i in range(1, len(curve)):
        if curve[i] > best + min_delta:
            best, wait, at = curve[i], 0, i
        else:
            wait += 1
            if wait >= patience:
                break
    return at


def run_shape(
    steps: Sequence[int], sm_train: Sequence[float], sm_val: Sequence[float], grokked: bool, p: Mapping[str, Any]
) -> tuple[str, dict[str, Any], str]:
    """(shape name, the numbers that decided it, a one-line explanation) for a non-empty smoothed history."""
    n, k = len(steps), p["k"]
    i_peak = early_peak(sm_val, p["patience"], p["min_delta"])
    i_trough = min(range(i_peak, n), key=lambda i: (sm_val[i], i))
    peak, trough = sm_val[i_peak], sm_val[i_trough]
    final = min(sm_val[max(0, n - k) :])
    numbers = {
        "peak_val": peak,
        "peak_step": steps[i_peak],
        "trough_val": trough,
        "trough_step": steps[i_trough],
        "train_at_trough": sm_train[i_trough],
        "final_val": final,
        "final_step": steps[-1],
        "drop": peak - trough,
        "rise_over_peak": final - peak,
    }
    fell = peak - trough >= p["drop_min"] - 1e-9  # 1e-9: float rounding of a drop exactly at the threshold
    rose = fell and final - peak >= p["rise_min"] - 1e-9
    if rose:
        shape = "peak-decline-grok" if grokked else "peak-decline-recover"
    elif fell:
        shape = "peak-decline"
    else:
        shape = "plateau-grok" if grokked else "plateau"
    why = (
        f"shape {shape}: early peak {100 * peak:.1f}% at step {steps[i_peak]}, trough {100 * trough:.1f}% at step "
        f"{steps[i_trough]} (drop {100 * (peak - trough):.1f} pts, {'>=' if fell else '<'} drop_min "
        f"{100 * p['drop_min']:g}), final {100 * final:.1f}% held over the last {min(k, n)} evals "
        f"({100 * (final - peak):+.1f} pts over the peak; rise_min {100 * p['rise_min']:g})"
        + ("" if grokked or not rose else "; the detector did not label the run grokking")
    )
    return shape, numbers, why
