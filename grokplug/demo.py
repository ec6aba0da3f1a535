"""``grokplug demo``: the end-to-end path on the built-in offline presets, in two suites.

``paper`` (the default) is the paper's regime (issue 12): it trains (or reuses) ``digits-noisy`` seed 0,
whose validation accuracy peaks early and then declines while the net fits its noisy labels; θ_pre is
the paper's early-stop checkpoint at that peak. The preset does not grok yet (no late rise, see
``grokplug.presets.digits_regime``), so θ_grok falls back to the final, overfitted checkpoint, and the
demo says so. It runs :func:`grokplug.compare` ({θ_pre, θ_grok} × the paper's FT, GA, SCRUB, Fisher, ∇τ
plus RL, SalUn, SSD × 5 seeds × forget rates 0.15 and 0.5, with the analysis), prints the table and one
verdict line per claim (efficiency, damage, seed variance; :mod:`grokplug._claims`).

``plateau`` is the earlier demo: ``modular`` and ``digits``, which grok from a plateau, compared with the
matched-train θ_pre (``pre-matched``) and RL, SalUn, SSD, ∇τ over 3 seeds (docs/results.md §1–5).
Both reuse finished runs and cached compare cells in ``--out``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ._claims import claim_lines
from ._plot import plot_run
from ._resolve import request_checkpoint
from ._rundir import RunDir
from ._train import train_preset
from .compare._format import ci_text, ratio_text
from .plugins import get_plugin_manager

#: the plateau suite (the demo before issue 12): presets that grok from a plateau
DEMO_PRESETS = ("modular", "digits")
#: the same methods, with their shared offline defaults, on both tasks (no per-task tuning); ∇τ is
#: the method of the paper's Fig. 2. Fisher forgetting (also the paper's) is left to `grokplug compare`:
#: its per-example, per-class Fisher cost ~1 min per cell on modular's 97 classes on 2 cores (an earlier
#: measurement, load-dependent and not re-run; time one with `grokplug compare RUN --methods fisher --seeds 1`),
#: and compare now also sweeps its strength.
DEMO_METHODS = ("rl", "salun", "ssd", "nabla-tau")
DEMO_PROFILE = "offline"
DEMO_SEEDS = 3
DEMO_RATES = (0.15, 0.5)

#: the paper suite (default): the regime of the paper's Fig. 1a, as far as a preset reaches it
PAPER_PRESET = "digits-noisy"
#: the paper's FT, GA, SCRUB, Fisher, ∇τ (compare's default), plus RL, SalUn, SSD: the matrix of docs/results.md §8
PAPER_METHODS = ("ft", "ga", "scrub", "fisher", "nabla-tau", "rl", "salun", "ssd")
PAPER_SEEDS = 5  # the minimum for paired CIs
PAPER_RATES = (0.15, 0.5)
PAPER_PRE = "pre"  # the paper's early-stop rule
SUITES = ("paper", "plateau")


def _reusable(run_dir: Path, config: dict) -> bool:
    if not RunDir.exists(run_dir):
        return False
    run = RunDir(run_dir)
    return run.status == "finished" and run.config == config


def prepare_run(preset_name: str, out_dir: Path, *, seed: int = 0, progress: bool = True) -> tuple[RunDir, bool]:
    """Train ``preset_name`` into ``out_dir/<preset>``, or reuse a finished run of the same recipe."""
    preset = get_plugin_manager().presets.get(preset_name)
    run_dir = out_dir / preset_name
    reused = _reusable(run_dir, preset.resolve_config())
    if not reused:
        train_preset(preset, run_dir, seed=seed, overwrite=RunDir.exists(run_dir), progress=progress)
    return RunDir(run_dir), reused


def print_comparison(name: str, results: dict) -> None:
    """One line per (forget rate, method): steps to the primary target (one-shot: the weakest swept
    strength reaching it, per seed) and retain damage there, pre vs grok; "not comparable" where a
    start never reached the target."""
    primary = results["config"]["primary"]
    print(f"\n{name}: θ_pre vs θ_grok, target {primary} (forget acc ≤ half the start's), {len(results['config']['seeds'])} seeds, 95% bootstrap CIs")
    print(f"{'rate':>5} {'method':<7} {'steps pre':>9} {'steps grok':>10}  {'ratio pre÷grok':<30} {'retain drop @target, pre − grok':<28} verdict")
    for pair in results["pairs"]:
        step = pair["steps"].get(primary, {}) if pair.get("iterative") else {}
        pre = f"{step['pre_mean']:.1f}" if step.get("pre_mean") is not None else "n/a"
        grok = f"{step['grok_mean']:.1f}" if step.get("grok_mean") is not None else "n/a"
        ratio = ratio_text(step["ratio"]) if step.get("ratio") else "n/a"
        if not pair.get("iterative"):  # one-shot: the weakest swept strength that reached the target, per seed
            found = (pair.get("collateral") or {}).get("strength_to_target") or {}
            pre, grok = (",".join("never" if v is None else f"{v:g}" for v in found.get(s, [])) or "n/a" for s in ("pre", "grok"))
            ratio = "n/a (one-shot: strength to target)"
        verdict = str(pair.get("collateral_verdict"))
        damage = ("not comparable" if verdict.startswith("not comparable")
                  else ci_text(pair["metrics"].get("at_target", {}).get("retain_drop"), "+.2f"))
        print(f"{pair['forget_rate']:>5} {pair['method']:<7} {pre:>9} {grok:>10}  {ratio:<30} {damage:<28} "
              f"{step.get('verdict', 'n/a')} / {verdict}")


# The plateau suite's presets grok from a plateau, where the early-stop θ_pre is a barely trained model;
# it keeps the matched-train θ_pre that docs/results.md §1–5 measured.
DEMO_PRE = "pre-matched"


def _run_plateau(out_dir: Path, progress: bool) -> int:
    rows: list[tuple[Any, ...]] = []
    for name in DEMO_PRESETS:
        started = time.perf_counter()
        run, reused = prepare_run(name, out_dir, progress=progress)
        report = run.report()
        plot = plot_run(run.history(), report, out_dir / f"{name}.png", title=name)
        pre = request_checkpoint(run.path, DEMO_PRE)
        grok = request_checkpoint(run.path, "grok", fallback="final")
        rows.append((name, report, pre, grok, len(run.checkpoint_steps()), time.perf_counter() - started, reused, plot))

    print("\npreset    label      t_mem  t_gen  ratio  θ_pre (val)     θ_grok (val)    kept  time")
    for name, report, pre, grok, kept, seconds, reused, _ in rows:
        ratio = f"{report.grok_ratio:.1f}" if report.grok_ratio else "—"
        print(
            f"{name:<9} {report.label:<10} {report.t_mem!s:>5}  {report.t_gen!s:>5}  {ratio:>5}  "
            f"{pre.step:>5} ({pre.metrics.get('val_acc', float('nan')):.2f})   "
            f"{grok.step:>5} ({grok.metrics.get('val_acc', float('nan')):.2f})   {kept:>4}  "
            f"{'reused' if reused else f'{seconds:.0f} s'}"
        )
    print()
    for name, report, pre, grok, *_rest, plot in rows:
        if report.label == "grokking":
            print(
                f"{name}: the model memorised its training set by step {report.t_mem} (validation {report.val_at_mem:.0%}) "
                f"and generalised only by step {report.t_gen}, {report.grok_ratio:.1f}× later. An unlearning method can "
                f"now start from θ_pre (step {pre.step}) or θ_grok (step {grok.step})."
            )
        else:
            print(f"{name}: no grokking this time (label: {report.label}); θ_grok falls back to the final checkpoint.")
        print(f"  plot: {plot}")

    from .compare import compare

    findings = []
    for name, *_rest in rows:
        result = compare(out_dir / name, DEMO_METHODS, seeds=DEMO_SEEDS, forget_rates=DEMO_RATES, profile=DEMO_PROFILE,
                         pre=DEMO_PRE,
                         out=out_dir / f"{name}-compare", plots=True, progress=None if progress else False)
        print_comparison(name, result.results)
        findings.append((name, result))
    print("\nWhat this found (plain words; every number is in the results.json next to it):")
    for _name, result in findings:
        for line in result.summary:
            print(f"- {line}")
        print(f"  table: {result.paths.get('md', result.out_dir / 'results.md')}; "
              f"cells: {result.n_computed} computed, {result.n_reused} reused")
        print(f"  figures: {', '.join(str(p) for p in result.plots)}")
    print(f"\nRuns are in {out_dir}/; run `grokplug inspect {out_dir}/modular` for the detector's reasons.")
    return 0


def _paper_grok_fallback(report: Any) -> str | None:
    """``"final"`` when the run has no θ_grok (the preset has not grokked yet), else no fallback."""
    return None if report is not None and report.label == "grokking" else "final"


def _run_paper(out_dir: Path, progress: bool) -> int:
    import torch

    # One thread: docs/results.md §8 was measured so (float sums, hence step counts, shift with the thread
    # count), and on 2 shared cores two threads made this tiny full-batch run ~10× slower in CPU time.
    torch.set_num_threads(1)
    started = time.perf_counter()
    run, reused = prepare_run(PAPER_PRESET, out_dir, progress=progress)
    report = run.report()
    plot = plot_run(run.history(), report, out_dir / f"{PAPER_PRESET}.png", title=PAPER_PRESET)
    fallback = _paper_grok_fallback(report)
    pre = request_checkpoint(run.path, PAPER_PRE)
    grok = request_checkpoint(run.path, "grok", fallback=fallback)
    shape = report.shape_numbers or {}
    print(f"\n{PAPER_PRESET} seed 0 ({'reused' if reused else f'trained in {time.perf_counter() - started:.0f} s'}): "
          f"label {report.label}, shape {report.shape}")
    if shape:
        print(f"  val peak {shape['peak_val']:.3f} @ {shape['peak_step']}, trough {shape['trough_val']:.3f} @ "
              f"{shape['trough_step']}, final {shape['final_val']:.3f} @ {shape['final_step']} "
              f"(train acc at the trough {shape['train_at_trough']:.2f})")
    print(f"  θ_pre (early-stop rule): step {pre.step}, val {pre.metrics.get('val_acc', float('nan')):.3f}")
    print(f"  θ_grok: step {grok.step}, val {grok.metrics.get('val_acc', float('nan')):.3f}"
          + (f" — {PAPER_PRESET} has not grokked, so this is the final, overfitted checkpoint standing in for θ_grok:"
             " the claims below are early-stopped vs overfitted, not early-stopped vs grokked" if fallback else ""))
    print(f"  plot: {plot}")

    from .compare import compare

    result = compare(run.path, PAPER_METHODS, seeds=PAPER_SEEDS, forget_rates=PAPER_RATES, pre=PAPER_PRE,
                     fallback=fallback, out=out_dir / f"{PAPER_PRESET}-compare", plots=True, analysis=True,
                     progress=None if progress else False)
    print_comparison(PAPER_PRESET, result.results)
    print("\nVerdict per claim (θ_pre vs θ_grok; counts of method × rate pairs, from results.json):")
    for line in claim_lines(result.results):
        print(f"- {line}")
    print(f"  table: {result.paths.get('md', result.out_dir / 'results.md')}; "
          f"cells: {result.n_computed} computed, {result.n_reused} reused")
    print(f"  figures: {', '.join(str(p) for p in result.plots)}")
    print("\nThe earlier demo on presets that grok from a plateau: `grokplug demo --suite plateau`. "
          "docs/results.md §8 has this regime measured with every method and both θ_pre rules.")
    return 0


def run_demo(out_dir: Path = Path("runs/demo"), *, suite: str = "paper", progress: bool = True) -> int:
    """Run the ``paper`` (default) or ``plateau`` suite into ``out_dir``, reusing runs and compare cells there."""
    if suite not in SUITES:
        raise ValueError(f"unknown demo suite {suite!r}; use one of {', '.join(SUITES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return _run_paper(out_dir, progress) if suite == "paper" else _run_plateau(out_dir, progress)
