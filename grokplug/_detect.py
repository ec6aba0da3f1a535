"""Grokking phase detection on an eval history (smoothing, hysteresis, gain, grok ratio; θ rules in ``_theta_rules.py``).

:func:`detect_phases_builtin` labels a run (grokking, comprehension, memorization or confusion)
and picks θ_pre (what early stopping would ship) and θ_grok (the first checkpoint that holds the
run's best validation accuracy). :class:`OnlineDetector` (``_online.py``) runs the same rules
during training. Conventions shared by both:

* curves are smoothed with a trailing median over ``smooth_w`` evals, so one-eval spikes vanish;
* a threshold is crossed only when the smoothed curve stays at or above it for ``k`` consecutive
  evals (hysteresis); the crossing step is the first of those ``k``;
* ``v_max`` is the highest level the smoothed val accuracy *held* for ``k`` evals from t_mem on
  (the max over k-eval windows of the window minimum): a short excursion cannot set the gain G,
  and every threshold below ``v_max`` is guaranteed a held crossing;
* with G < gain_min a run is comprehension when v_max reaches the generalization level
  (``tau_gen_abs``, else ``gen_frac`` x train acc at t_mem, Liu et al.'s 0.9), else memorization;
  a run still climbing steeply at its last eval, having first reached its top during that climb,
  is "memorization, in progress" (v_max and t_gen are not known yet);
* θ_pre has two rules, both reported: ``early-stop`` (the paper's, served as ``phase="pre"``):
  conventional early stopping on smoothed val acc (or val loss, ``pre_metric``) from the first eval,
  before the grokking onset (``_early_stop.py``); and ``matched-train`` (``phase="pre-matched"``):
  searched from t_mem on, so that both checkpoints fit the training set (§4.4). The matched-train
  and θ_grok rules live in ``_online.py`` beside the protected-steps logic that must mirror them;
* the run's shape (``peak-decline-grok``, ``plateau-grok``, ...) is named by ``_shape.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ._curve_rules import (
    DEFAULT_PARAMS,
    first_held,
    fitted_rise,
    median,
    parse_record,
    resolve_params,
    thresholds,
    trend_start,
)
from ._theta_rules import choose_grok, choose_pre, pct

__all__ = ["DEFAULT_PARAMS", "LABELS", "GrokReport", "PhaseChange", "detect_phases_builtin"]

LABELS = ("grokking", "comprehension", "memorization", "confusion")


@dataclass
class GrokReport:
    """What the detector concluded about one run, and why. Steps are training steps.

    ``label`` is ``grokking``, ``comprehension`` (val generalized without a delayed surge),
    ``memorization`` (train fitted, val did not generalize; ``in_progress`` when val is still
    rising at the end) or ``confusion`` (train never fitted). ``pre_step``/``grok_step`` are θ_pre
    (by the paper's ``early-stop`` rule) and θ_grok (only for grokking); ``pre_matched_step`` is θ_pre
    by the ``matched-train`` rule; ``pre_val``/``pre_matched_val``/``grok_val`` are their raw val
    accuracies. ``*_rule`` say which case of each rule chose them and ``reasons`` explain every
    decision in plain English. ``shape`` names the val curve's shape and ``shape_numbers`` hold the
    numbers that decided it (``_shape.py``). ``train_loss_ratio`` is train loss at θ_pre / at θ_grok:
    it confounds curvature and gradient comparisons (§6.4).
    """

    label: str
    t_mem: int | None = None
    t_onset: int | None = None
    t_gen: int | None = None
    grok_ratio: float | None = None
    gain: float | None = None
    val_at_mem: float | None = None
    val_max: float | None = None
    pre_step: int | None = None
    grok_step: int | None = None
    pre_rule: str = ""
    grok_rule: str | None = None
    pre_matched_step: int | None = None
    pre_matched_rule: str = ""
    pre_val: float | None = None
    pre_matched_val: float | None = None
    grok_val: float | None = None
    shape: str = ""
    shape_numbers: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    in_progress: bool = False
    n_evals: int = 0
    last_step: int = 0
    train_loss_ratio: float | None = None

    @property
    def grokked(self) -> bool:
        """Whether the run was labelled ``grokking``."""
        return self.label == "grokking"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GrokReport:
        """Rebuild a report from :meth:`to_dict` output; unknown keys (newer versions) are ignored."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a GrokReport is read from a mapping, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs = {key: value for key, value in data.items() if key in known}
        kwargs["reasons"] = list(kwargs.get("reasons") or [])
        kwargs["params"] = dict(kwargs.get("params") or {})
        kwargs["shape_numbers"] = dict(kwargs.get("shape_numbers") or {})
        return cls(**kwargs)


@dataclass(frozen=True)
class PhaseChange:
    """The online detector moved to a new state at ``step`` (``run_dir`` is filled in by the tracker)."""

    step: int
    previous: str
    current: str
    run_dir: Path | None = None


def detect_phases_builtin(
    history: Iterable[Mapping[str, Any]], *, checkpoint_steps: Iterable[int] | None = None, **params: Any
) -> GrokReport:
    """Classify an eval history and choose θ_pre / θ_grok (the rules in this module's docstring).

    :param history: eval records sorted by step with ``step``, ``train_acc``, ``val_acc``
        (fractions) and optionally ``train_loss``/``val_loss``; records lacking an accuracy are
        skipped, extra keys ignored, and a repeated step keeps its first record.
    :param checkpoint_steps: steps that have a checkpoint (``None``: every eval step); θ_pre and
        θ_grok are chosen among them only.
    :param params: overrides of :data:`DEFAULT_PARAMS`; an unknown name raises ``UsageError``.
    """
    p = resolve_params(params)
    firsts: dict[int, tuple[int, float, float, Mapping[str, Any]]] = {}
    for record in history:
        parsed = parse_record(record)
        if parsed is not None and parsed[0] not in firsts:
            firsts[parsed[0]] = (*parsed, record)
    evals = [firsts[s] for s in sorted(firsts)]
    n, w = len(evals), p["smooth_w"]
    rep = GrokReport(label="confusion", params=p, n_evals=n, last_step=evals[-1][0] if evals else 0)
    if n == 0:
        rep.pre_rule = "none (no data)"
        rep.reasons.append("no eval records with step, train_acc and val_acc: there is no data to classify")
        return rep
    steps = [e[0] for e in evals]
    sm_train = [median([e[1] for e in evals[max(0, i - w + 1) : i + 1]]) for i in range(n)]
    sm_val = [median([e[2] for e in evals[max(0, i - w + 1) : i + 1]]) for i in range(n)]
    wanted = None if checkpoint_steps is None else {int(s) for s in checkpoint_steps}
    saved = [wanted is None or s in wanted for s in steps]
    i_mem, i_onset, i_gen = _classify(rep, steps, sm_train, sm_val, p)
    from ._early_stop import choose_pre_early_stop

    metric, curve = _early_stop_curve(rep, evals, sm_val, p)
    pre, rep.pre_rule, why = choose_pre_early_stop(steps, curve, saved, i_onset, p, metric)
    rep.pre_step = None if pre is None else steps[pre]
    rep.reasons.append(f"θ_pre (early-stop: {rep.pre_rule}): {why}" + ("" if pre is None else f" -> step {rep.pre_step}"))
    matched, rep.pre_matched_rule, why = choose_pre(steps, sm_val, saved, i_mem, i_onset, p)
    rep.pre_matched_step = None if matched is None else steps[matched]
    rep.reasons.append(
        f"θ_pre (matched-train: {rep.pre_matched_rule}): {why}" + ("" if matched is None else f" -> step {rep.pre_matched_step}")
    )
    if rep.label == "grokking" and i_gen is not None:
        choose_grok(rep, steps, sm_val, saved, i_gen, p, "eval" if wanted is None else "checkpointed eval")
    val_at = {e[0]: e[2] for e in evals}
    rep.pre_val, rep.pre_matched_val, rep.grok_val = (val_at.get(s) for s in (rep.pre_step, rep.pre_matched_step, rep.grok_step))  # type: ignore[arg-type]
    from ._shape import run_shape

    rep.shape, rep.shape_numbers, why = run_shape(steps, sm_train, sm_val, rep.label == "grokking", p)
    rep.reasons.append(why)
    loss_at: dict[int | None, Any] = {e[0]: e[3].get("train_loss") for e in evals}
    loss_pre, loss_grok = loss_at.get(rep.pre_step), loss_at.get(rep.grok_step)
    if isinstance(loss_pre, (int, float)) and isinstance(loss_grok, (int, float)) and loss_grok > 0:
        ratio = float(loss_pre) / float(loss_grok)
        rep.train_loss_ratio = ratio if math.isfinite(ratio) else None
    return rep


def _early_stop_curve(
    rep: GrokReport, evals: Sequence[tuple[int, float, float, Mapping[str, Any]]], sm_val: list[float], p: Mapping[str, Any]
) -> tuple[str, list[float]]:
    """The curve early-stop θ_pre watches (higher is better): smoothed val acc, or negated smoothed val loss."""
    if p["pre_metric"] == "val_acc":
        return "val acc", sm_val
    losses = [e[3].get("val_loss") for e in evals]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in losses):
        rep.reasons.append("pre_metric is val_loss but some evals have no finite val_loss: early stopping watches val acc")
        return "val acc", sm_val
    w = p["smooth_w"]
    return "val loss", [-median(losses[max(0, i - w + 1) : i + 1]) for i in range(len(losses))]  # type: ignore[arg-type]


def _classify(
    rep: GrokReport, steps: list[int], sm_train: list[float], sm_val: list[float], p: Mapping[str, Any]
) -> tuple[int | None, int | None, int | None]:
    """Set the label, phase steps and reasons; return the (t_mem, t_onset, t_gen) indices."""
    n, k, lift = len(steps), p["k"], p["onset_frac"] * p["gain_min"]  # lift: "still rising" at the end
    held = f"median-smoothed over {p['smooth_w']} evals, held {k} evals"
    i_mem = first_held(sm_train, p["tau_mem"], 0, k)
    if i_mem is None:
        rep.val_max = max(sm_val)
        tail = slice(trend_start(0, n, p), n)
        rep.in_progress = max(fitted_rise(sm_train[tail]), fitted_rise(sm_val[tail])) >= lift
        rep.reasons.append(
            f"train acc ({held}) never reached {pct(p['tau_mem'])} (best {pct(max(sm_train))}): "
            "no memorization point -> confusion" + (" (still rising at the end)" if rep.in_progress else "")
        )
        return None, None, None
    rep.t_mem = steps[i_mem]
    v_mem = rep.val_at_mem = sm_val[i_mem]
    v_max = rep.val_max = max(min(sm_val[i : i + k]) for i in range(i_mem, n - k + 1))
    gain = rep.gain = v_max - v_mem
    rep.reasons.append(
        f"train acc ({held}) reached {pct(p['tau_mem'])} at step {rep.t_mem} = t_mem, where val acc was "
        f"{pct(v_mem)}; the best val level held afterwards is v_max = {pct(v_max)}: gain G = {100 * gain:.1f} pts"
    )
    if gain < p["gain_min"]:
        level = p["tau_gen_abs"] if p["tau_gen_abs"] is not None else p["gen_frac"] * sm_train[i_mem]
        what = f"G < gain_min ({100 * p['gain_min']:.0f} pts) and v_max"
        if v_max >= level:
            rep.label = "comprehension"
            rep.reasons.append(f"{what} >= the generalization level {pct(level)}: val generalized with train -> comprehension")
            return i_mem, None, None
        rep.label = "memorization"
        rise = fitted_rise(sm_val[trend_start(i_mem, n, p) :])
        rep.in_progress = rise >= lift
        rep.reasons.append(
            f"{what} < the generalization level {pct(level)}: train fitted, val did not generalize -> memorization"
            + (f"; val is still rising (+{100 * rise:.1f} pts over the later evals): it may grok later" if rep.in_progress else "")
        )
        return i_mem, None, None
    onset_level, gen_level = thresholds(v_mem, v_max, p)
    i_onset, i_gen = first_held(sm_val, onset_level, i_mem, k), first_held(sm_val, gen_level, i_mem, k)
    assert i_onset is not None and i_gen is not None  # both levels lie below the held max v_max
    rep.t_onset = steps[i_onset]
    rep.reasons.append(f"val first held {pct(onset_level)} (v(t_mem) + {p['onset_frac']:g} G) at step {rep.t_onset} = t_onset")
    # Unfinished: val is still climbing steeply at the last eval and first held its top level during
    # that climb (a run that grokked, dipped and is recovering is not unfinished).
    span = max(k, 2)
    last_rise = sm_val[-1] - sm_val[max(i_mem, n - span)]
    i_top = first_held(sm_val, v_max - p["grok_margin"], i_mem, k)
    first_top_at_end = i_top is not None and i_top + k - 1 >= n - span
    reached_abs = p["tau_gen_abs"] is not None and v_max >= p["tau_gen_abs"]
    if first_top_at_end and last_rise >= p["onset_frac"] * gain and not reached_abs:
        rep.label, rep.in_progress = "memorization", True
        rep.reasons.append(
            f"val is still climbing at the last eval (+{100 * last_rise:.1f} pts over the last {span} evals): the "
            "transition is unfinished, so v_max and t_gen are not known yet -> memorization, in progress"
        )
        return i_mem, i_onset, None
    rep.t_gen = steps[i_gen]
    rep.grok_ratio = rep.t_gen / rep.t_mem if rep.t_mem > 0 else None  # t_mem = 0: judged by the gap alone
    ratio_ok = rep.grok_ratio >= p["ratio_min"] if rep.grok_ratio is not None else rep.t_gen > rep.t_mem
    gap_ok = i_gen - i_mem >= p["gap_min_evals"]
    rep.label = "grokking" if ratio_ok and gap_ok else "comprehension"
    ratio = "undefined (t_mem = 0)" if rep.grok_ratio is None else f"{rep.grok_ratio:.2f}"
    gen_rule = f"v(t_mem) + {p['gen_frac']:g} G" + ("" if p["tau_gen_abs"] is None else f", at most tau_gen_abs {p['tau_gen_abs']:g}")
    rep.reasons.append(
        f"val first held {pct(gen_level)} ({gen_rule}) at step {rep.t_gen} = t_gen; grok ratio "
        f"t_gen/t_mem = {ratio} ({'>=' if ratio_ok else '<'} ratio_min {p['ratio_min']:g}), {i_gen - i_mem} evals "
        f"after t_mem ({'>=' if gap_ok else '<'} gap_min_evals {p['gap_min_evals']}) -> {rep.label}"
    )
    return i_mem, i_onset, i_gen
