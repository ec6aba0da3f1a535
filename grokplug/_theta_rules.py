"""The θ_pre / θ_grok rules (θ_pre: early stopping from t_mem; θ_grok: first held post-t_gen eval), shared by the offline detector (``_detect.py``)
and the online one (``_online.py``, whose protected set must mirror them)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._detect import GrokReport

__all__ = ["EarlyStop", "choose_grok", "choose_pre", "pct"]


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"



class EarlyStop:
    """Patience-based early stopping on smoothed val acc fed eval by eval, plus the best *saved*
    eval up to the stop (an improvement must exceed ``min_delta``; ties keep the earliest)."""

    def __init__(self, patience: int, min_delta: float) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.best_val, self.wait = -math.inf, 0
        self.stop: int | None = None  # index at which patience ran out
        self.saved_best: int | None = None
        self.saved_best_val = -math.inf

    def push(self, i: int, value: float, saved: bool) -> None:
        if self.stop is not None:
            return
        if value > self.best_val + self.min_delta or self.best_val == -math.inf:
            self.best_val, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stop = i
        if saved and (self.saved_best is None or value > self.saved_best_val + self.min_delta):
            self.saved_best, self.saved_best_val = i, value


def choose_pre(
    steps: list[int], sm_val: list[float], saved: list[bool], i_mem: int | None, i_onset: int | None, p: Mapping[str, Any]
) -> tuple[int | None, str, str]:
    """θ_pre (§4.4) as (index or None, rule, explanation). ``protected_steps`` mirrors it."""
    start = 0 if i_mem is None else i_mem
    es = EarlyStop(p["patience"], p["min_delta"])
    for i in range(start, len(steps)):
        es.push(i, sm_val[i], saved[i])
    first_saved = next((i for i in range(start, len(steps)) if saved[i]), None)
    what = f"early stopping on smoothed val (patience {p['patience']} evals, min_delta {p['min_delta']:g})"
    stop = "never triggered" if es.stop is None else f"triggered at step {steps[es.stop]}"
    best = "; the best saved eval up to the stop"
    if i_mem is None:  # start at the first eval: there is no fitted model to prefer
        rule = "best-val (no memorization)" if es.stop is None else "early-stopping (no memorization)"
        return es.saved_best, rule, f"{what} from the first eval {stop}{best}"
    if i_onset is not None and (es.stop is None or es.stop > i_onset):
        chosen = first_saved if first_saved is not None and first_saved <= i_onset else None
        why = f"{what} from t_mem had not triggered by t_onset = {steps[i_onset]}; the first saved eval from t_mem"
        return chosen, "capped-at-memorization", why + ("" if chosen is not None else ": none is saved before t_onset")
    if es.saved_best is not None:
        rule = "early-stopping" if es.stop is not None else "best-val (early stopping never triggered)"
        return es.saved_best, rule, f"{what} from t_mem = {steps[i_mem]} {stop}{best}"
    limit = len(steps) - 1 if i_onset is None else i_onset  # θ_pre must not pass t_onset
    chosen = first_saved if first_saved is not None and first_saved <= limit else None
    why = f"{what} from t_mem {stop}, but no eval up to the stop was saved; the first saved eval after it"
    return chosen, "first-saved-after-memorization", why


def choose_grok(
    rep: GrokReport, steps: list[int], sm_val: list[float], saved: list[bool], i_gen: int, p: Mapping[str, Any], ck: str
) -> None:
    """θ_grok (§4.4): the first saved eval from t_gen whose smoothed val holds v_max - grok_margin for k evals."""
    assert rep.val_max is not None
    k, floor = p["k"], rep.val_max - p["grok_margin"]  # the same expression as the online pruning
    rep.grok_rule = f"first {ck} at or after t_gen with smoothed val >= v_max - {p['grok_margin']:g}, held {k} evals"
    grok = next((i for i in range(i_gen, len(steps) - k + 1) if saved[i] and min(sm_val[i : i + k]) >= floor), None)
    rep.grok_step = None if grok is None else steps[grok]
    found = f" -> step {rep.grok_step} (val {pct(sm_val[grok])})" if grok is not None else ": no saved eval qualifies"
    rep.reasons.append(f"θ_grok: the {rep.grok_rule} (>= {pct(floor)}){found}")
