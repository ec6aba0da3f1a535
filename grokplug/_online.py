"""OnlineDetector: the §4.3 detector as a state machine fed one eval at a time during training.

States (``state``): ``warmup`` (smoother not yet full) → ``fitting`` (train not memorized) →
``memorized`` (t_mem confirmed) → ``plateau`` (early stopping from t_mem has triggered) →
``transition`` (val held a provisional onset level and is still making new highs) → ``grokked``
(val held a rise of at least ``gain_min`` over v(t_mem), or ``tau_gen_abs`` if that is higher,
after a delay that meets ``ratio_min`` and ``gap_min_evals``; a rise without that delay stays in
``transition``) → ``settled`` (the held max has not improved by more than ``min_delta`` for
``patience`` evals; a new surge of more than ``grok_margin`` reopens ``grokked``). ``regressed``:
after the rise, all of the last ``k`` smoothed vals lie more than ``2*grok_margin + gain_min/2``
below the held max (12 pts with the defaults: far outside the θ_grok band, well short of losing
the gain); it lasts until val holds above that line again for ``k`` evals. Regressions never
move θ_grok (it is the *first* qualifying checkpoint), they are reported as state changes.

The states are provisional (v_max is only known at the end); :meth:`OnlineDetector.report` runs
the offline detector on everything seen, and :meth:`OnlineDetector.protected_steps` names every
saved step that may still become θ_pre or θ_grok so a retention policy can delete the rest. The
θ_pre/θ_grok selection rules themselves (:func:`choose_pre`, :func:`choose_grok`) live here too.
"""

from __future__ import annotations

import math
import warnings
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._curve_rules import median, parse_record, resolve_params, thresholds
from ._detect import GrokReport, PhaseChange, detect_phases_builtin
from ._early_stop import EarlyStopCandidates
from ._theta_rules import EarlyStop, choose_grok, choose_pre
from .errors import GrokplugWarning

__all__ = ["STATES", "EarlyStop", "OnlineDetector", "choose_grok", "choose_pre"]  # EarlyStop: re-exported

STATES = ("warmup", "fitting", "memorized", "plateau", "transition", "grokked", "settled", "regressed")


class _GrokCandidates:
    """Saved evals that may still become θ_grok if t_mem is at index ``start``.

    Final θ_grok = first saved j >= i_gen with h(j) >= V - m, where h(j) is the min of the k
    smoothed vals from j, V the final held max and m = grok_margin. V only grows, so j with
    h(j) < V_now - m is out for good. An earlier saved j' (>= start) with h(j') >= h(j) and
    h(j') >= thr(h(j) + m) blocks j for good: whenever j qualifies (so V <= h(j) + m), j' also
    qualifies and is a held crossing of the final t_gen level (thr is monotone in V), hence
    i_gen <= j' < j. θ_grok also needs G >= gain_min, so h(j) >= V - m >= v(t_mem) + gain_min - m:
    on a flat memorization plateau nothing is kept. What survives are the saved "prefix-max
    records" within m of the running max, plus saved evals of the last k-1 whose window is open.
    """

    def __init__(self, start: int, v_mem: float, p: Mapping[str, Any]) -> None:
        self.start, self.v_mem, self.p = start, v_mem, p
        self.v_max = -math.inf  # held max over complete windows from start
        self.best_saved = -math.inf  # highest h over complete saved windows from start
        self.records: list[tuple[int, float]] = []  # surviving (index, h)
        rise_to = v_mem + p["gain_min"]
        self.rise_level = rise_to if p["tau_gen_abs"] is None else max(rise_to, p["tau_gen_abs"])
        self.rose_at: int | None = None  # first window holding rise_level
        self.level_prefix_max: list[float] = []  # running max of window levels from start: held crossings

    def _blocked(self, level: float) -> bool:
        gen_level = thresholds(self.v_mem, level + self.p["grok_margin"], self.p)[1]
        return self.best_saved >= max(level, gen_level + 1e-9)  # 1e-9: float rounding of V <= h + m

    def add_window(self, j: int, level: float, saved: bool) -> None:
        """Window ``j`` (its k smoothed vals) is complete, with held level ``level``."""
        self.v_max = max(self.v_max, level)
        self.level_prefix_max.append(self.v_max)
        if self.rose_at is None and level >= self.rise_level:
            self.rose_at = j
        if saved:
            if level >= self.floor() and not self._blocked(level):
                self.records.append((j, level))
            self.best_saved = max(self.best_saved, level)
        floor = self.floor()
        self.records = [(i, h) for i, h in self.records if h >= floor]

    def first_held(self, level: float) -> int | None:
        """First window index from ``start`` that held ``level`` (as ``_first_held`` offline), in O(log n)."""
        at = bisect_left(self.level_prefix_max, level)
        return None if at == len(self.level_prefix_max) else self.start + at

    def floor(self) -> float:
        """Below this held level a saved eval can never become θ_grok (V only grows)."""
        need_gain = self.v_mem + self.p["gain_min"] - self.p["grok_margin"] - 1e-9  # 1e-9: float rounding
        return max(self.v_max - self.p["grok_margin"], need_gain)  # the first term as in choose_grok

    def candidates(self, sm_val: Sequence[float], saved: Sequence[bool]) -> list[int]:
        n, k, floor = len(sm_val), self.p["k"], self.floor()
        out = [i for i, _ in self.records]
        for j in range(max(self.start, n - k + 1), n):  # windows still open: their level can only fall
            level = min(sm_val[j:])
            if saved[j] and level >= floor and not self._blocked(level):
                out.append(j)
        return out


class OnlineDetector:
    """Follow a run eval by eval (see the module docstring for the states).

    :param params: detector parameters, as for :func:`grokplug._detect.detect_phases_builtin`.
    """

    def __init__(self, **params: Any) -> None:
        self.params = resolve_params(params)
        p = self.params
        self._records: list[dict[str, Any]] = []
        self.checkpoint_steps: set[int] = set()
        self._state = "warmup"
        self._steps: list[int] = []
        self._train: list[float] = []
        self._val: list[float] = []
        self._sm_train: list[float] = []
        self._sm_val: list[float] = []
        self._saved: list[bool] = []
        self._i_mem: int | None = None  # confirmed t_mem index
        self._streak: int | None = None  # start of the current run of smoothed train >= tau_mem
        # early-stop θ_pre candidates on smoothed val acc and val loss (negated); the acc one is also
        # matched-train's θ_pre if the run ends in confusion
        self._pre_acc = EarlyStopCandidates(p["patience"], p["min_delta"], p["smooth_w"] // 2)
        self._pre_loss = EarlyStopCandidates(p["patience"], p["min_delta"], p["smooth_w"] // 2)
        self._val_loss: list[float] = []  # raw val losses while every record has one
        self._loss_ok = True
        self._es_mem: EarlyStop | None = None  # θ_pre early stopping counted from the streak start
        self._first_saved: int | None = None  # first saved eval from the streak start
        self._grok: _GrokCandidates | None = None
        self._v_ref, self._stale, self._settled_level = -math.inf, 0, -math.inf

    @property
    def state(self) -> str:
        """The current state (one of :data:`STATES`)."""
        return self._state

    @property
    def history(self) -> list[dict[str, Any]]:
        """The records accepted so far (copies), in order."""
        return list(self._records)

    def update(self, record: Mapping[str, Any], saved: bool = False) -> PhaseChange | None:
        """Take one eval record; ``saved``: a checkpoint was written at this step.

        Returns a :class:`PhaseChange` when the state changes. A record whose step does not exceed
        the last eval's step is ignored with a :class:`GrokplugWarning` (the offline detector
        likewise keeps the first record of a step); a record without both accuracies only counts
        as a save.
        """
        parsed = parse_record(record)
        step = parsed[0] if parsed is not None else record.get("step")
        if parsed is not None and self._steps and parsed[0] <= self._steps[-1]:
            warnings.warn(
                f"eval at step {parsed[0]} ignored: steps must increase (last was {self._steps[-1]})",
                GrokplugWarning,
                stacklevel=2,
            )
            return None
        self._records.append(dict(record))
        if saved and isinstance(step, int) and not isinstance(step, bool):
            self.checkpoint_steps.add(step)
        if parsed is None:
            return None
        w = self.params["smooth_w"]
        self._steps.append(parsed[0])
        self._train.append(parsed[1])
        self._val.append(parsed[2])
        self._sm_train.append(median(self._train[-w:]))
        self._sm_val.append(median(self._val[-w:]))
        self._saved.append(bool(saved))
        loss = record.get("val_loss")
        if self._loss_ok and isinstance(loss, (int, float)) and not isinstance(loss, bool) and math.isfinite(loss):
            self._val_loss.append(float(loss))
        else:  # the offline rule then falls back to val acc: stop following the loss
            self._loss_ok = False
        self._track(len(self._steps) - 1)
        new = self._next_state()
        if new == self._state:
            return None
        change = PhaseChange(step=parsed[0], previous=self._state, current=new)
        self._state = new
        return change

    def _track(self, i: int) -> None:
        p, k, sm_val, saved = self.params, self.params["k"], self._sm_val, self._saved[i]
        self._pre_acc.push(i, sm_val[i], saved)
        if self._loss_ok:
            self._pre_loss.push(i, -median(self._val_loss[-p["smooth_w"] :]), saved)
        if self._i_mem is None:
            if self._sm_train[i] < p["tau_mem"]:  # streak broken: its start can no longer be t_mem
                self._streak = self._es_mem = self._first_saved = self._grok = None
            elif self._streak is None:
                self._streak, self._v_ref, self._stale = i, -math.inf, 0
                self._es_mem = EarlyStop(p["patience"], p["min_delta"])
                self._grok = _GrokCandidates(i, sm_val[i], p)
        if self._streak is None or self._es_mem is None or self._grok is None:
            return
        if self._i_mem is None and i - self._streak + 1 >= k:
            self._i_mem = self._streak
        self._es_mem.push(i, sm_val[i], saved)
        if saved and self._first_saved is None:
            self._first_saved = i
        j = i - k + 1
        if j >= self._streak:
            self._grok.add_window(j, min(sm_val[j : i + 1]), self._saved[j])
        if self._grok.v_max > self._v_ref + p["min_delta"]:
            self._v_ref, self._stale = self._grok.v_max, 0
        else:
            self._stale += 1

    def _next_state(self) -> str:
        p, grok = self.params, self._grok
        if self._i_mem is None or grok is None or self._es_mem is None:
            return "warmup" if len(self._steps) < p["smooth_w"] else "fitting"
        last = self._sm_val[-p["k"] :]
        held, v_max = min(last), grok.v_max
        if grok.rose_at is None:
            onset = grok.v_mem + p["onset_frac"] * (grok.rise_level - grok.v_mem)
            if held >= onset and self._stale < p["patience"]:
                return "transition"
            return "plateau" if self._es_mem.stop is not None else "memorized"
        line = v_max - (2 * p["grok_margin"] + p["gain_min"] / 2)
        if max(last) < line or (self._state == "regressed" and held < line):
            return "regressed"
        if self._state == "settled" and v_max <= self._settled_level + p["grok_margin"]:
            return "settled"
        if self._stale >= p["patience"]:
            self._settled_level = v_max
            return "settled"
        # provisional t_gen from the current v_max: it only moves later as v_max grows, so once
        # delayed enough the run stays so
        i_gen = grok.first_held(thresholds(grok.v_mem, v_max, p)[1])
        assert i_gen is not None  # the gen level lies below v_max
        t_mem, t_gen = self._steps[self._i_mem], self._steps[i_gen]
        ratio_ok = t_gen >= p["ratio_min"] * t_mem if t_mem > 0 else t_gen > t_mem
        delayed = ratio_ok and i_gen - self._i_mem >= p["gap_min_evals"]
        return "grokked" if delayed else "transition"

    def report(self) -> GrokReport:
        """The offline detector's report on everything seen, choosing among saved steps only."""
        return detect_phases_builtin(self._records, checkpoint_steps=self.checkpoint_steps, **self.params)

    def protected_steps(self) -> set[int]:
        """Saved steps that may still become θ_pre or θ_grok, whatever evals come next.

        Guarantee: the steps the final :meth:`report` picks were in this set at every update since
        they were saved, so a retention policy may delete any other saved step. θ_pre (see
        :func:`choose_pre`, the ``matched-train`` rule) is either the first saved eval from t_mem (capped rule and fallbacks), or
        the best saved eval of early stopping counted from t_mem: once stopped that is fixed, and
        before the stop every later improvement supersedes it for good. Before t_mem is confirmed,
        t_mem can only be the start of the current train-acc streak (any later t_mem has no saved
        step yet), and the run may still end in confusion (early stopping from the first eval).
        θ_grok candidates are explained in ``_GrokCandidates``, the early-stop θ_pre candidates in
        ``EarlyStopCandidates``. The set holds at most 3 matched-train θ_pre candidates, the early-stop
        records between the provisional onset and the onset ceiling (often none or one), the saved
        prefix-max records within ``grok_margin`` of the running held max and up to k-1 recent saves.
        """
        indices: list[int | None] = []
        if self._i_mem is None:
            indices.append(self._pre_acc.es.saved_best)
        indices += self._early_stop_candidates()
        if self._grok is not None and self._es_mem is not None:
            indices += [self._first_saved, self._es_mem.saved_best]
            indices += self._grok.candidates(self._sm_val, self._saved)
        return {self._steps[i] for i in indices if i is not None}

    def _early_stop_candidates(self) -> list[int]:
        """Saved evals that may still become θ_pre by the early-stop rule (see ``EarlyStopCandidates``)."""
        p, grok = self.params, self._grok
        if grok is None:
            window, now, ceiling = None, -math.inf, 1.0
        else:
            window = grok.first_held
            now = thresholds(grok.v_mem, grok.v_max, p)[0] if grok.v_max > -math.inf else -math.inf
            ceiling = thresholds(grok.v_mem, 1.0, p)[0]
        earliest = len(self._steps) if grok is None else grok.start  # t_onset >= t_mem >= this
        out = self._pre_acc.candidates(window, now, ceiling, earliest)
        if p["pre_metric"] == "val_loss" and self._loss_ok:
            out += self._pre_loss.candidates(window, now, ceiling, earliest)
        return out

    @classmethod
    def replay(
        cls, records: Iterable[Mapping[str, Any]], checkpoint_steps: Iterable[int] = (), **params: Any
    ) -> OnlineDetector:
        """Rebuild a detector from a saved history (on resume): the same state as feeding it live."""
        detector = cls(**params)
        saved = {int(s) for s in checkpoint_steps}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GrokplugWarning)
            for record in records:
                parsed = parse_record(record)
                step = parsed[0] if parsed is not None else record.get("step")
                detector.update(record, saved=step in saved)
        return detector
