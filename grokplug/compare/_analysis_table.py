"""results.md's analysis section: θ_pre vs θ_grok gradient alignment, CKA and curvature (``compare --analysis``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._format import fmt

__all__ = ["analysis_lines"]

#: (label, path into one start's analysis, format)
_ROWS = (
    ("train loss", ("train_loss",), ".3g"),
    ("forget acc", ("forget_acc",), ".3f"),
    ("retain acc", ("retain_acc",), ".3f"),
    ("cos(ḡ_F, ḡ_R)", ("grad_alignment", "cos"), "+.3f"),
    ("per-example: ascent harms retain (cos > 0)", ("grad_alignment", "per_example", "frac_ascent_harms_retain"), ".2f"),
    ("per-example: ascent helps retain (cos < 0)", ("grad_alignment", "per_example", "frac_ascent_helps_retain"), ".2f"),
    ("λ_max (Hessian, train)", ("curvature", "lambda_max"), ".4g"),
    ("tr(H) (train)", ("curvature", "trace"), ".4g"),
    ("λ_max / tr(H)", ("scale_free", "lambda_over_trace"), ".3g"),
    ("λ_max / train loss", ("scale_free", "lambda_over_train_loss"), ".4g"),
)


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, Mapping) else None
    return d


def analysis_lines(analysis: Mapping[str, Any]) -> list[str]:
    """Markdown lines: one row per measure, one column per start, then CKA(θ_pre, θ_grok) per input set."""
    starts = analysis.get("starts") or {}
    if not {"pre", "grok"} <= set(starts):  # not an analyse_run result (e.g. a plugin's own analysis)
        return []
    pre, grok = starts["pre"], starts["grok"]
    lines = [
        "## θ_pre vs θ_grok analysis (`--analysis`)", "",
        f"Forget rate {analysis.get('forget_rate')}, seed {analysis.get('seed')}, loss `{analysis.get('loss')}`; "
        f"θ_pre = step {pre['step']} ({pre['phase']}), θ_grok = step {grok['step']} ({grok['phase']}). "
        "cos > 0 is the damaging sign for ascent-style methods (an ascent step on the forget set raises the retain loss).",
        "", "| measure | θ_pre | θ_grok |", "|---|---|---|",
    ]
    lines += [f"| {label} | {fmt(_get(pre, path), spec)} | {fmt(_get(grok, path), spec)} |" for label, path, spec in _ROWS]
    cka = analysis.get("cka_pre_vs_grok") or {}
    sets = [s for s in ("forget", "retain", "test") if s in cka]
    lines += ["", f"Linear CKA(θ_pre, θ_grok) at {analysis.get('cka_layer')} (1 = the same representation up to rotation "
              "and scale; unbiased estimator in brackets): "
              + ", ".join(f"{s} {fmt(cka[s])} ({fmt(cka.get(f'{s}_unbiased'))})" for s in sets) + "."]
    if analysis.get("test_set"):
        lines.append(f"`test` is {analysis['test_set']}.")
    return lines
