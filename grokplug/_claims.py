"""One verdict line per paper claim, read off a ``grokplug compare`` result (``results.json``).

The paper (arXiv 2512.03437) claims that unlearning from θ_grok instead of θ_pre (1) reaches the forget
target in fewer steps, (2) does less collateral damage, (3) varies less across seeds. Each function
below counts the (forget rate, method) pairs of one compare result by the verdict compare already
computed (a paired bootstrap CI for 1 and 2), so the line says how many pairs support the claim, how
many contradict it and how many decide nothing. Claim 3 has no test in compare: it compares sample
standard deviations over seeds, pair by pair, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["claim_lines", "damage_line", "efficiency_line", "headline", "seed_variance_line"]


def headline(support: int, against: int) -> str:
    """``holds`` / ``does not hold`` / ``mixed`` / ``not shown`` from counts of pairs for and against."""
    if support and against:
        return "mixed"
    if support:
        return "holds"
    return "does not hold" if against else "not shown"


def _counts_text(counts: Mapping[str, int], labels: Mapping[str, str]) -> str:
    return ", ".join(f"{labels[k]} in {counts[k]}" for k in labels if counts.get(k))


def efficiency_line(results: Mapping[str, Any]) -> str:
    """Claim 1, over the iterative pairs: the steps-ratio verdict at the primary target."""
    primary = results["config"]["primary"]
    verdicts = [p["steps"][primary]["verdict"] for p in results["pairs"]
                if p.get("iterative") and primary in p.get("steps", {})]
    counts = {v: verdicts.count(v) for v in ("grok_faster", "pre_faster", "inconclusive", "undefined")}
    labels = {"grok_faster": "θ_grok faster", "pre_faster": "θ_pre faster", "inconclusive": "inconclusive",
              "undefined": "undefined (a start never reached the target)"}
    return (f"efficiency (θ_grok needs fewer steps to {primary}): "
            f"{headline(counts['grok_faster'], counts['pre_faster'])} — of {len(verdicts)} iterative "
            f"method × rate pairs: {_counts_text(counts, labels) or 'none'} (95% CI of the steps ratio)")


def damage_line(results: Mapping[str, Any]) -> str:
    """Claim 2, over every pair: the collateral verdict at matched forgetting (retain drop, pre − grok)."""
    verdicts = [str(p.get("collateral_verdict")) for p in results["pairs"]]
    counts = {
        "grok_less_damage": verdicts.count("grok_less_damage"),
        "pre_less_damage": verdicts.count("pre_less_damage"),
        "inconclusive": verdicts.count("inconclusive"),
        "not_comparable": sum(v.startswith("not comparable") or v == "undefined" for v in verdicts),
    }
    labels = {"grok_less_damage": "θ_grok less damage", "pre_less_damage": "θ_pre less damage",
              "inconclusive": "no clear difference", "not_comparable": "not comparable (a start never reached it)"}
    return (f"damage (θ_grok loses less retain acc at the same forgetting): "
            f"{headline(counts['grok_less_damage'], counts['pre_less_damage'])} — of {len(verdicts)} pairs: "
            f"{_counts_text(counts, labels) or 'none'} (95% CI of the paired retain drop)")


def _agg(results: Mapping[str, Any], method: str, start: str, rate: float) -> Mapping[str, Any]:
    return next(a for a in results["aggregates"] if (a["method"], a["start"], a["forget_rate"]) == (method, start, rate))


def _std_pair(results: Mapping[str, Any], pair: Mapping[str, Any]) -> tuple[float, float] | None:
    """(std θ_pre, std θ_grok) over seeds: steps to the primary target for iterative methods (a seed
    that never reached it counts at its budget, as in compare), final test accuracy for one-shot ones."""
    primary = results["config"]["primary"]
    stds = []
    for start in ("pre", "grok"):
        agg = _agg(results, pair["method"], start, pair["forget_rate"])
        if pair.get("iterative"):
            std = (agg.get("steps") or {}).get(primary, {}).get("std")
        else:
            std = agg["metrics"].get("final", {}).get("test_acc", {}).get("std")
        if std is None:
            return None
        stds.append(float(std))
    return stds[0], stds[1]


def seed_variance_line(results: Mapping[str, Any]) -> str:
    """Claim 3: per pair, is θ_grok's sample std over seeds lower (no test: a count of pairs)."""
    counts = {"grok_lower": 0, "pre_lower": 0, "equal": 0}
    for pair in results["pairs"]:
        stds = _std_pair(results, pair)
        if stds is None:
            continue
        pre, grok = stds
        counts["grok_lower" if grok < pre else "pre_lower" if pre < grok else "equal"] += 1
    n = sum(counts.values())
    labels = {"grok_lower": "θ_grok lower", "pre_lower": "θ_pre lower", "equal": "equal"}
    return (f"seed variance (θ_grok varies less across seeds): {headline(counts['grok_lower'], counts['pre_lower'])} — "
            f"of {n} pairs: {_counts_text(counts, labels) or 'none'} (sample std over seeds of steps to target, "
            f"one-shot: of final test acc; a count, no test)")


def claim_lines(results: Mapping[str, Any]) -> list[str]:
    """The three verdict lines, in the paper's order."""
    return [efficiency_line(results), damage_line(results), seed_variance_line(results)]
