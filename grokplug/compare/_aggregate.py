"""From cells to the per-cell-group aggregates and the θ_pre − θ_grok pairs of ``results.json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import GrokplugError
from ._stats import mean_std, paired_diff, steps_ratio, verdict

STAGES = ("start", "final", "at_target")
_STAGE_FIELD = {"start": "start_metrics", "final": "final", "at_target": "at_target"}  # stage -> cell field
AGG_METRICS = ("forget_acc", "retain_acc", "test_acc", "retain_drop", "test_drop", "mia_svc_efficacy", "mia_loss_lr")


def describe_target(spec: str, primary: str) -> dict[str, Any]:
    """The ``targets`` entry of results.json: kind, level, and whether both starts face the same bar."""
    entry: dict[str, Any] = {"spec": spec, "primary": spec == primary, "symmetric": True, "level": None}
    if spec == "test":
        entry.update(kind="test", symmetric=False,
                     description="forget_acc ≤ the start's own test_acc (θ_grok may meet it at step 0; θ_pre must go far lower)")
    elif spec == "retrain":
        entry.update(kind="retrain", description="forget_acc ≤ that of a model retrained on the retain set only")
    elif spec.startswith("frac:"):
        level = float(spec[5:])
        entry.update(kind="fraction", level=level, description=f"forget_acc ≤ {level:g} × the start's forget_acc")
    else:
        level = float(spec)
        entry.update(kind="absolute", level=level, description=f"forget_acc ≤ {level:g}")
    return entry


def _stage_stats(cells: Sequence[Mapping[str, Any]], stage: str, keys: Sequence[str] = AGG_METRICS) -> dict[str, Any]:
    rows = [c[_STAGE_FIELD[stage]] for c in cells if c.get(_STAGE_FIELD[stage])]
    return {k: mean_std([r[k] for r in rows if r.get(k) is not None]) for k in keys
            if any(r.get(k) is not None for r in rows)}


def _steps_values(cells: Sequence[Mapping[str, Any]], spec: str) -> tuple[list[float], list[bool]]:
    """Steps per seed; a never-reached run counts as its budget (censored)."""
    values, censored = [], []
    for c in cells:
        row = c["targets"][spec]
        values.append(float(row["steps"]) if row["reached"] else float(c["total_steps"] or 0))
        censored.append(not row["reached"])
    return values, censored


def _steps_stats(cells: Sequence[Mapping[str, Any]], spec: str) -> dict[str, Any]:
    import numpy as np

    values, censored = _steps_values(cells, spec)
    rows = [c["targets"][spec] for c in cells]
    reached = [r for r in rows if r["reached"]]
    out = mean_std(values)
    out.update(
        median=float(np.median(values)) if values else None, censored=censored,
        n_reached=len(reached), n_met_at_start=sum(bool(r["met_at_start"]) for r in rows), n_never=sum(censored),
        lower_bound=any(censored),
        threshold_mean=mean_std([r["threshold"] for r in rows])["mean"],
        retain_acc_mean=mean_std([r["retain_acc"] for r in reached])["mean"] if reached else None,
    )
    return out


def _ok(cells: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in cells if c["status"] == "ok"]


def build_aggregates(cells: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rate in config["forget_rates"]:
        for method in config["methods"]:
            for start in ("pre", "grok"):
                group = sorted((c for c in cells if (c["method"], c["start"], c["forget_rate"]) == (method, start, rate)),
                               key=lambda c: c["seed"])
                ok = _ok(group)
                iterative = bool(group and group[0]["iterative"])
                out.append({
                    "method": method, "start": start, "forget_rate": rate, "iterative": iterative,
                    "n_seeds": len(group), "n_ok": len(ok), "n_diverged": len(group) - len(ok),
                    "seeds": [c["seed"] for c in group],
                    "total_steps_mean": mean_std([c["total_steps"] for c in ok])["mean"] if ok else None,
                    "metrics": {stage: _stage_stats(ok, stage, config.get("metrics") or AGG_METRICS) for stage in STAGES},
                    "steps": {spec: _steps_stats(ok, spec) for spec in config["targets"]} if iterative and ok else {},
                    "n_reached_primary": sum(c.get("at_target") is not None for c in ok),
                    "strength_to_target": None if iterative else [(c.get("sweep") or {}).get("strength_to_target") for c in ok],
                })
    return out


def collateral_verdict(pre: Sequence[Mapping[str, Any]], grok: Sequence[Mapping[str, Any]],
                       diff: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The damage verdict, only at matched forgetting, and what it rests on.

    ``pre``/``grok``: the paired cells (same seeds). Damage is compared only on seeds where *both*
    starts reached the primary target (``at_target``: the first step for iterative methods, the
    weakest swept strength for one-shot ones). A start that reached it in no seed makes the pair
    ``"not comparable: θ_X did not reach the target"``: a start that did not forget has no damage to
    compare, and the damage after the full budget is never used instead.
    """
    iterative = bool(pre and pre[0]["iterative"])
    reached = {start: [c["seed"] for c in cells if c.get("at_target")] for start, cells in (("pre", pre), ("grok", grok))}
    info: dict[str, Any] = {
        "basis": "at_target" if iterative else "strength_sweep",
        "seeds_reached": reached, "seeds_compared": [s for s in reached["pre"] if s in reached["grok"]],
    }
    if not iterative:
        info["strength_to_target"] = {start: [(c.get("sweep") or {}).get("strength_to_target") for c in cells]
                                      for start, cells in (("pre", pre), ("grok", grok))}
    if not pre:
        return "undefined", info
    if not iterative and not any(c.get("sweep") for c in (*pre, *grok)):
        return "not comparable: no strength sweep for this one-shot method", info
    missing = [f"θ_{start}" for start in ("pre", "grok") if not reached[start]]
    if missing:
        return f"not comparable: {' and '.join(missing)} did not reach the target", info
    if not info["seeds_compared"]:
        return "not comparable: θ_pre and θ_grok never reached the target in the same seed", info
    return _collateral(diff), info


def _collateral(diff: Mapping[str, Any] | None) -> str:
    if not diff or diff.get("ci_low") is None or diff.get("ci_high") is None:
        return "undefined"
    if diff["ci_low"] > 0:
        return "grok_less_damage"
    if diff["ci_high"] < 0:
        return "pre_less_damage"
    return "inconclusive"


def _metric_pairs(pre: Sequence[Mapping[str, Any]], grok: Sequence[Mapping[str, Any]], stage: str,
                  boot: Mapping[str, Any], keys: Sequence[str] = AGG_METRICS) -> dict[str, Any]:
    both = [(a[stage], b[stage]) for a, b in zip(pre, grok, strict=True) if a.get(stage) and b.get(stage)]
    out = {}
    for key in keys:
        rows = [(a[key], b[key]) for a, b in both if a.get(key) is not None and b.get(key) is not None]
        if rows:
            out[key] = paired_diff([a for a, _ in rows], [b for _, b in rows], **boot)
    return out


def build_pairs(cells: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """θ_pre − θ_grok per (method, forget rate), paired by seed; refuses pairs whose forget sets differ."""
    boot = {"n_boot": config["n_boot"], "seed": config["bootstrap_seed"], "level": config["ci_level"]}
    index = {(c["method"], c["start"], c["seed"], c["forget_rate"]): c for c in cells}
    out = []
    for rate in config["forget_rates"]:
        for method in config["methods"]:
            pre, grok, hashes = [], [], {}
            for seed in config["seeds"]:
                a, b = index.get((method, "pre", seed, rate)), index.get((method, "grok", seed, rate))
                if a is None or b is None:
                    continue
                if (a["split"]["forget_sha256"], a["split"]["retain_sha256"]) != (b["split"]["forget_sha256"], b["split"]["retain_sha256"]):
                    raise GrokplugError(f"{method}, seed {seed}, rate {rate:g}: θ_pre and θ_grok got different forget sets")
                hashes[str(seed)] = a["split"]["forget_sha256"]
                if a["status"] == "ok" and b["status"] == "ok":
                    pre.append(a)
                    grok.append(b)
            iterative = bool(pre and pre[0]["iterative"])
            steps = {}
            for spec in config["targets"] if iterative else ():
                pv, pc = _steps_values(pre, spec)
                gv, gc = _steps_values(grok, spec)
                ratio = steps_ratio(pv, gv, pre_censored=pc, grok_censored=gc, **boot)
                steps[spec] = {"pre_mean": mean_std(pv)["mean"], "grok_mean": mean_std(gv)["mean"],
                               "diff": paired_diff(pv, gv, **boot), "ratio": ratio, "verdict": verdict(ratio)}
            keys = config.get("metrics") or AGG_METRICS
            metrics = {stage: _metric_pairs(pre, grok, stage, boot, keys) for stage in ("final", "at_target")}
            collateral, basis = collateral_verdict(pre, grok, metrics["at_target"].get("retain_drop"))
            out.append({
                "method": method, "forget_rate": rate, "seeds": [c["seed"] for c in pre], "same_split": True,
                "split_sha256": hashes, "iterative": iterative, "steps": steps, "metrics": metrics,
                "collateral_verdict": collateral, "collateral": basis,
            })
    return out


def build_flags(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in cells:
        for flag in c["flags"]:
            kind, _, target = flag.partition(":")
            out.append({"cell": c["key"], "target": target or None, "flag": kind})
    return out
