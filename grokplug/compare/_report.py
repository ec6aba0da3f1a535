"""Writers for ``grokplug compare``: results.json, results.csv, results.md and the plain-words summary."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._atomic import atomic_path, describe_os_error
from ._analysis_table import analysis_lines
from ._format import ci_text, fmt, ratio_parts, ratio_text

# the old private names, still imported by grokplug/demo.py
_f, _ci, _ratio_text = fmt, ci_text, ratio_text

_VERDICT = {
    "grok_faster": "θ_grok forgets in fewer steps, as the paper reports",
    "pre_faster": "θ_pre forgets in fewer steps here: the paper's efficiency claim does not reproduce",
    "inconclusive": "inconclusive (the CI includes 1)",
}
_COLLATERAL = {
    "grok_less_damage": "θ_grok forgets with less collateral damage, as the paper reports",
    "pre_less_damage": "θ_pre does less collateral damage here: the paper's claim does not reproduce",
    "inconclusive": "no clear difference in collateral damage (the CI includes 0)",
}


#: the per-start table of a results.json written before the domain chose its columns
VISION_COLUMNS = (
    ("at_target", "retain_acc", "retain acc @target"), ("at_target", "retain_drop", "retain drop @target"),
    ("at_target", "test_drop", "test drop @target"), ("final", "forget_acc", "final forget"),
    ("final", "retain_acc", "final retain"), ("final", "test_acc", "final test"),
    ("final", "mia_svc_efficacy", "MIA-SVC efficacy"), ("final", "mia_loss_lr", "MIA loss-LR"),
)


def _diff_text(steps: Mapping[str, Any]) -> str:
    """The paired steps difference (pre − grok) with the censoring bound its ratio carries.

    A seed that never reached the target counts at its budget, so a censored θ_pre makes the
    difference a lower bound (``≥``), a censored θ_grok an upper bound (``≤``); both: no direction.
    """
    diff, bound = steps.get("diff"), (steps.get("ratio") or {}).get("bound")
    if not diff or diff.get("mean") is None:
        return "—"
    if bound == "undefined":
        return f"undefined ({diff['mean']:+.1f} at budgets)"
    return {"lower": "≥ ", "upper": "≤ "}.get(str(bound), "") + ci_text(diff, "+.1f")


def collateral_text(pair: Mapping[str, Any]) -> str:
    """The damage verdict in words; a ``not comparable: ...`` verdict is already words."""
    verdict = str(pair.get("collateral_verdict"))
    return verdict if verdict.startswith("not comparable") else _COLLATERAL.get(verdict, "undefined")


def _compared_seeds(pair: Mapping[str, Any]) -> str:
    """`` (2 of 3 seeds: the others did not reach the target from both starts)`` when not every seed is compared."""
    basis = pair.get("collateral") or {}
    n, k = len(pair["seeds"]), len(basis.get("seeds_compared") or [])
    return "" if not basis or k == n else f" (over the {k} of {n} seeds where both starts reached the target)"


def _agg(results: Mapping[str, Any], method: str, start: str, rate: float) -> Mapping[str, Any]:
    return next(a for a in results["aggregates"] if (a["method"], a["start"], a["forget_rate"]) == (method, start, rate))


def _stat(agg: Mapping[str, Any], stage: str, key: str) -> Any:
    return agg["metrics"].get(stage, {}).get(key, {}).get("mean")


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """One plain-words sentence per (forget rate, method), on the primary target."""
    preset = results["run"].get("preset") or Path(results["run"]["path"]).name
    primary = results["config"]["primary"]
    desc = next(t["description"] for t in results["targets"] if t["spec"] == primary)
    lines = []
    for pair in results["pairs"]:
        method, rate, n = pair["method"], pair["forget_rate"], len(pair["seeds"])
        head = f"{preset}, {rate:.0%} forget, {method}"
        pre, grok = _agg(results, method, "pre", rate), _agg(results, method, "grok", rate)
        if n == 0:
            lines.append(f"{head}: no seed finished from both starts (diverged), nothing to compare.")
            continue
        if not pair["iterative"]:
            lines.append(_one_shot_line(results, pair, head, desc))
            continue
        s = pair["steps"][primary]
        ratio = s["ratio"]
        if ratio["value"] is None or pair["steps"][primary]["verdict"] == "undefined":
            text = f"{head}: steps ratio for '{desc}' is undefined ({ratio.get('note') or 'no data'})."
        else:
            value, ci = ratio_parts(ratio)
            text = (f"{head}: to reach {desc}, θ_pre needs {value} the steps of θ_grok "
                    f"(95% CI {ci}; {s['pre_mean']:.1f} vs {s['grok_mean']:.1f} steps, {n} seeds) → {_VERDICT[s['verdict']]}.")
            if ratio.get("note"):
                text += f" Note: {ratio['note']}."
        never = (pre["steps"][primary]["n_never"], grok["steps"][primary]["n_never"])
        met = (pre["steps"][primary]["n_met_at_start"], grok["steps"][primary]["n_met_at_start"])
        if any(met):
            text += f" Met at step 0 in θ_pre {met[0]}/{n}, θ_grok {met[1]}/{n} seeds."
        if any(never):
            text += f" Never reached within the budget in θ_pre {never[0]}/{n}, θ_grok {never[1]}/{n} seeds."
        drop = pair["metrics"]["at_target"].get("retain_drop")
        if str(pair["collateral_verdict"]).startswith("not comparable") or not drop:
            text += f" Collateral damage: {collateral_text(pair)}."
        else:
            text += (f" At that point retain acc fell by {fmt(_stat(pre, 'at_target', 'retain_drop'), '.2f')} (θ_pre) vs "
                     f"{fmt(_stat(grok, 'at_target', 'retain_drop'), '.2f')} (θ_grok), difference {ci_text(drop, '+.2f')}"
                     f"{_compared_seeds(pair)}: {collateral_text(pair)}.")
        lines.append(text)
    n_seeds = len(results["config"]["seeds"])
    lines.append(f"CIs: percentile bootstrap over {n_seeds} paired seeds ({results['config']['n_boot']} resamples)"
                 + ("; with so few seeds they are coarse." if n_seeds < 5 else "."))
    return lines


def _one_shot_line(results: Mapping[str, Any], pair: Mapping[str, Any], head: str, desc: str) -> str:
    """A one-shot pair: each start at the weakest swept strength reaching the primary target, damage there."""
    method = pair["method"]
    knob = next((c["sweep"]["strength_param"] for c in results["cells"] if c["method"] == method and c.get("sweep")), "strength")
    swept = results["config"].get("strengths", {}).get(method) or []
    found = (pair.get("collateral") or {}).get("strength_to_target") or {}
    text = f"{head} (one-shot, steps n/a)"
    if swept:
        text += (f": weakest {knob} (swept {', '.join(f'{v:g}' for v in swept)}) reaching {desc}: "
                 + "; ".join(f"θ_{start} {', '.join('never' if v is None else f'{v:g}' for v in found.get(start, []))}"
                             for start in ("pre", "grok")))
    drop = pair["metrics"]["at_target"].get("retain_drop")
    if str(pair["collateral_verdict"]).startswith("not comparable") or not drop:
        return text + f" → {collateral_text(pair)}."
    return (text + f"; retain drop there pre − grok {ci_text(drop, '+.2f')}{_compared_seeds(pair)} "
            f"→ {collateral_text(pair)}.")


def _steps_cell(st: Mapping[str, Any] | None) -> str:
    if not st or st.get("mean") is None:
        return "—"
    text = ("≥" if st["lower_bound"] else "") + f"{st['mean']:.1f}"
    if st.get("std") is not None:
        text += f" ± {st['std']:.1f}"
    return text + ("*" if st["n_met_at_start"] else "")


def _strength_cell(agg: Mapping[str, Any]) -> str:
    values = agg.get("strength_to_target")
    if not values:
        return "n/a (one-shot)"
    return "one-shot; strength " + ", ".join("never" if v is None else f"{v:g}" for v in values)


def render_markdown(results: Mapping[str, Any]) -> str:
    run, cfg = results["run"], results["config"]
    primary = cfg["primary"]
    out = io.StringIO()
    w = out.write
    w(f"# grokplug compare: {run.get('preset') or run['path']}\n\n")
    w(f"Run `{run['path']}` ({run.get('label')}): θ_pre = step {run['pre']['step']}, θ_grok = step {run['grok']['step']}"
      f" ({run['grok'].get('phase', 'grok')}). Seeds {cfg['seeds']}, forget rates {cfg['forget_rates']}, "
      f"profile `{cfg['profile']}`. Primary target `{primary}`. `forget_acc` is the paper's UA (higher = worse forgetting); "
      "drops are start − now (positive = damage).\n\n## Summary\n\n")
    for line in results["summary"]:
        w(f"- {line}\n")
    columns = [tuple(c) for c in cfg.get("columns") or VISION_COLUMNS]
    second_drop = next((m for stage, m, _ in columns if stage == "at_target" and m.endswith("_drop") and m != "retain_drop"), None)
    w(f"\n## Per start (mean ± sample std over seeds), primary target `{primary}`\n\n")
    w("| rate | method | start | steps to target | " + " | ".join(h for _, _, h in columns) + " |\n|" + "---|" * (4 + len(columns)) + "\n")
    for a in results["aggregates"]:
        st = a["steps"].get(primary) if a["iterative"] else None
        w(f"| {a['forget_rate']:g} | {a['method']} | θ_{a['start']} | {_steps_cell(st) if a['iterative'] else _strength_cell(a)} | "
          + " | ".join(fmt(_stat(a, stage, m)) for stage, m, _ in columns) + " |\n")
    w("\n`≥`: some seeds never reached the target (counted at their budget); `*`: met at step 0 in some seed. "
      "One-shot methods: the weakest swept strength reaching the target, per seed (`never`: none did); "
      "their @target columns are the result at that strength.\n")
    w("\n## θ_pre vs θ_grok (pre − grok, paired by seed, 95% bootstrap CI)\n\n")
    second = f"{second_drop.replace('_', ' ')} diff @target | " if second_drop else ""
    w(f"| rate | method | steps ratio pre ÷ grok | steps diff | retain drop diff @target | {second}"
      "final retain drop diff | verdict |\n|" + "---|" * (8 if second_drop else 7) + "\n")
    for p in results["pairs"]:
        s = p["steps"].get(primary) if p["iterative"] else None
        at = p["metrics"]["at_target"]
        w(f"| {p['forget_rate']:g} | {p['method']} | {ratio_text(s['ratio']) if s else 'n/a'} | "
          f"{_diff_text(s) if s else 'n/a'} | {ci_text(at.get('retain_drop'))} | "
          + (f"{ci_text(at.get(second_drop))} | " if second_drop else "")
          + f"{ci_text(p['metrics']['final'].get('retain_drop'))} | {s['verdict'] if s else 'n/a'} / {p['collateral_verdict']} |\n")
    w("\nThe damage verdict is read only at matched forgetting (the @target columns: both starts at the primary target, "
      "seeds where one did not reach it left out); the final retain drop is shown, never judged.\n")
    specs = cfg["targets"]
    w("\n## Steps against target level (mean over seeds)\n\n| rate | method | start | " + " | ".join(f"`{t}`" for t in specs)
      + " |\n|" + "---|" * (3 + len(specs)) + "\n")
    for a in results["aggregates"]:
        if a["iterative"]:
            w(f"| {a['forget_rate']:g} | {a['method']} | θ_{a['start']} | " + " | ".join(_steps_cell(a["steps"].get(t)) for t in specs) + " |\n")
    asym = [t["spec"] for t in results["targets"] if not t["symmetric"]]
    if asym:
        w(f"\nTargets {asym} are not the same bar for both starts (e.g. `test`: a grokked model's forget set already looks "
          "like unseen data), so they are reported, never used as the default.\n")
    w("\n## Flags\n\n")
    counts: dict[tuple[str, str], int] = {}
    for f in results["flags"]:
        counts[(f["flag"], f["target"] or "")] = counts.get((f["flag"], f["target"] or ""), 0) + 1
    for (flag, target), n in sorted(counts.items()):
        w(f"- `{flag}`{f' `{target}`' if target else ''}: {n} cell(s)\n")
    if not counts:
        w("- none\n")
    lines = analysis_lines(results["analysis"]) if results.get("analysis") else []
    if lines:
        w("\n" + "\n".join(lines) + "\n")
    w("\nEvery cell and its flags are in `results.json` (`cells`, `flags`) and `cells/<key>.json`.\n")
    return out.getvalue()


def _csv_rows(results: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    from ._aggregate import AGG_METRICS

    metrics = results["config"].get("metrics") or AGG_METRICS
    specs = results["config"]["targets"]
    fields = ["method", "start", "forget_rate", "iterative", "n_seeds", "n_ok", "n_diverged", "total_steps_mean"]
    for t in specs:
        fields += [f"steps[{t}]_{k}" for k in ("mean", "std", "median", "n_reached", "n_met_at_start", "n_never", "lower_bound")]
    for stage in ("final", "at_target"):
        fields += [f"{stage}_{m}_{k}" for m in metrics for k in ("mean", "std")]
    rows = []
    for a in results["aggregates"]:
        row = {k: a[k] for k in fields[:8]}
        for t in specs:
            st = a["steps"].get(t) or {}
            row.update({f"steps[{t}]_{k}": st.get(k) for k in ("mean", "std", "median", "n_reached", "n_met_at_start", "n_never", "lower_bound")})
        for stage in ("final", "at_target"):
            for m in metrics:
                st = a["metrics"].get(stage, {}).get(m) or {}
                row[f"{stage}_{m}_mean"], row[f"{stage}_{m}_std"] = st.get("mean"), st.get("std")
        rows.append(row)
    return fields, rows


def write_outputs(results: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """results.json, results.csv (one row per aggregate) and results.md, published as one unit.

    All three are rendered and written to temp files first; only when every one is complete are they
    renamed into place (results.json last), so an error (disk full, a rendering bug) leaves the
    previous three untouched, never a new results.json next to an old results.md.
    """
    paths = {"json": out_dir / "results.json", "csv": out_dir / "results.csv", "md": out_dir / "results.md"}
    fields, rows = _csv_rows(results)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
    payloads = {  # entered first, renamed last: results.json is what resuming and readers look for
        "json": (json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n").encode(),
        "csv": buf.getvalue().encode(),
        "md": render_markdown(results).encode(),
    }
    try:
        with contextlib.ExitStack() as stack:
            for key, data in payloads.items():  # each temp file is renamed when the stack closes without error
                tmp = stack.enter_context(atomic_path(paths[key]))
                tmp.write_bytes(data)
    except OSError as exc:
        raise describe_os_error(exc, "write the compare results to", out_dir,
                                "the previous results.json/csv/md were left as they were") from exc
    return paths
