"""``grokplug.compare``: θ_pre vs θ_grok × methods × seeds × forget rates, with paired statistics.

For every (method, forget rate, seed) both starts unlearn **the same forget set** (the split is seeded
by ``seed`` and its sha256 is checked equal in the pair). Each run spends the method's full budget
while the step monitor records forget/retain accuracy after every update, so one run gives the
steps-to-target for every target level (a curve of steps against level).

Both domains are compared the same way: the run's preset names its domain (vision or LLM), and the
domain supplies the data for each forget rate, the probe, the evaluation and the reference
(:mod:`grokplug._domain`). TOFU-style runs take forget rates 0.01, 0.05 and 0.1 (forget01/05/10; the
forget set is fixed by the split, so seeds vary only the method's randomness) and report the TOFU
metrics (forget quality, model utility, forget probability/ROUGE, privleak) beside the accuracies.

Targets (``forget_acc ≤ threshold``; see :func:`grokplug._targets.resolve_target`):

* default ``frac:0.9, frac:0.75, frac:0.5, frac:0.25`` (+ ``test`` for vision); **primary** ``frac:0.5``;
* why ``frac:0.5`` is the default: both starts fit their training data, so each starts with forget
  accuracy ≈ 1 and must *actively* halve it; the bar is the same relative distance for θ_pre and
  θ_grok and is essentially never met at step 0. The paper-style ``test`` target (forget acc ≤ the
  start's test acc) is not: θ_grok's test acc is ≈ its forget acc, so it is met at step 0 or 1, while
  θ_pre (test acc near chance) must go almost to chance. It is reported and flagged, never the default.
* every (cell, target) where the target held at step 0 (``met_at_start``) or never held within the
  budget (``never_reached``, *censored*) is flagged; censored steps count as the budget and make the
  mean a lower bound (``≥``) and the ratio a one-sided bound, never an imputed value.

Collateral damage is reported twice: ``at_target`` (full metrics where the primary target first held:
damage at matched forgetting) and ``final`` (after the method's full budget). Only ``at_target`` gives
a damage verdict. One-shot methods (SSD, Fisher; ``iterative = False``) have no steps: each cell also
sweeps the method's strength (``strength_sweep``, weakest first, via :func:`grokplug.sweep_strength`),
and ``at_target`` is the result at the weakest strength reaching the primary target. Where a start
never reaches the target (no seed), the pair's ``collateral_verdict`` is ``"not comparable: θ_X did not
reach the target"``; a damage verdict uses only the seeds where both starts reached it.

Outputs: ``results.json`` (schema ``grokplug.compare/1``, documented in ``grokplug/compare/README.md``), ``results.csv``
(one row per aggregate), ``results.md``, and ``cells/<key>.json`` (the resumable cache).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import _setup
from ._stats import bootstrap_ci, mean_std, paired_diff, steps_ratio, verdict

__all__ = ["DEFAULT_PRIMARY", "DEFAULT_TARGETS", "CompareResult", "bootstrap_ci", "compare", "mean_std",
           "paired_diff", "steps_ratio", "verdict"]

DEFAULT_TARGETS: tuple[str, ...] = ("frac:0.9", "frac:0.75", "frac:0.5", "frac:0.25", "test")
DEFAULT_PRIMARY = "frac:0.5"
SCHEMA = "grokplug.compare/1"
# compare()'s short names for its argument helpers (grokplug/compare/_setup.py), so that its body reads as before
_methods, _targets, _strengths = _setup.resolve_methods, _setup.resolve_targets, _setup.resolve_strengths
_run_info, _optional, _version = _setup.run_info, _setup.import_optional, _setup.grokplug_version


@dataclass
class CompareResult:
    """What :func:`compare` returns: the results.json dict and where things were written."""

    results: dict[str, Any]
    out_dir: Path
    paths: dict[str, Path]
    n_computed: int
    n_reused: int
    plots: list[Path] = field(default_factory=list)

    @property
    def summary(self) -> list[str]:
        return list(self.results["summary"])

    def __str__(self) -> str:
        return "\n".join(self.summary)


#: the unlearning methods the grokking paper compares (GA, FT, SCRUB, Fisher forgetting, ∇τ): compare's default
PAPER_METHODS = ("ft", "ga", "scrub", "fisher", "nabla-tau")


def compare(
    run: str | os.PathLike[str],
    methods: Sequence[str] | str = PAPER_METHODS,
    *,
    seeds: int | Sequence[int] = 3,
    forget_rates: Sequence[float] | None = None,
    out: str | os.PathLike[str] | None = None,
    targets: Sequence[str | float] | None = None,
    primary: str | float = DEFAULT_PRIMARY,
    hparams: Mapping[str, Mapping[str, Any]] | None = None,
    profile: str = "auto",
    fallback: str | None = None,
    pre: str = "pre",
    n_boot: int = 10_000,
    bootstrap_seed: int = 0,
    ci_level: float = 0.95,
    progress: bool | None = None,
    plots: bool = False,
    analysis: bool = False,
    recompute: bool = False,
    strengths: Mapping[str, Sequence[float]] | None = None,
) -> CompareResult:
    """Run the matrix {θ_pre, θ_grok} × ``methods`` × ``seeds`` × ``forget_rates`` on a preset run (vision or LLM).

    ``forget_rates`` defaults to the domain's (vision ``0.15, 0.5``; LLM ``0.1`` = forget10) and
    ``targets`` to :data:`DEFAULT_TARGETS` (vision) or its ``frac:`` levels (LLM, which has no test set).

    ``seeds``: a count N (seeds 0..N-1) or explicit seeds. ``profile="auto"``: each method's profile
    for the run's preset where it has one, else ``"offline"``. ``hparams``: per-method overrides, e.g.
    ``{"ga": {"epochs": 40}}``. ``out`` defaults to ``<run>-compare`` next to the run; cells already
    there are reused when their inputs' hashes match (``recompute=True`` ignores them). The run's
    checkpoints are only read. ``plots``/``analysis`` add figures and θ_pre/θ_grok analysis metrics.
    ``pre`` is the phase that serves θ_pre: ``pre`` (the paper's early-stop rule) or ``pre-matched``
    (the matched-train rule).
    ``strengths``: per one-shot method, the strengths to sweep (weakest first) instead of its
    ``strength_sweep``, e.g. ``{"ssd": [20, 5, 1]}``.

    Under ``accelerate launch`` / ``torchrun`` (``WORLD_SIZE`` > 1) every rank runs its share of the
    cells (:mod:`grokplug.compare._shard`) and rank 0 aggregates and writes; on the other ranks the
    returned result holds every cell and a one-line ``summary``, and no ``run``/``aggregates``.
    """
    from .._paths import check_output_dir
    from .._resolve import request_checkpoint
    from .._rundir import RunDir
    from .._unlearning_method import resolve_profile
    from .._validate import check_positive_int, check_seed, method_hparams
    from ._aggregate import build_aggregates, build_flags, build_pairs, describe_target
    from ._matrix import STARTS, CellSpec, MatrixContext
    from ._report import summary_lines, write_outputs
    from ._shard import Shard, check_shardable, run_matrix

    run_path = Path(run)
    if not RunDir.exists(run_path):
        raise UsageError(f"no grokplug run directory at {run_path} (train one with `grokplug train PRESET --run-dir DIR`)")
    rundir = RunDir(run_path)
    base = run_path.resolve()  # `compare .` has no name of its own to extend
    out_dir = Path(out) if out is not None else base.parent / f"{base.name or 'run'}-compare"
    check_output_dir(out_dir, sources=[run_path], what="out")  # before any work; cells are reused from it
    if not rundir.config.get("preset"):
        raise UsageError(f"run {run_path} was not made by a preset; compare needs the preset's data to build forget sets")
    from .._unlearn import run_domain

    domain = run_domain(run_path)
    method_objs = _methods(methods, domain.name)
    forget_rates = domain.default_forget_rates if forget_rates is None else forget_rates
    if targets is None:
        targets = DEFAULT_TARGETS if domain.has_test_set else tuple(t for t in DEFAULT_TARGETS if t != "test")
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seed_list = list(range(check_positive_int(seeds, "seeds (a count)")))
        check_seed(seed_list[-1], "seeds (a count)")
    elif isinstance(seeds, bool):
        raise UsageError(f"seeds must be a positive count or a non-empty list, got {seeds!r}")
    else:
        seed_list = [check_seed(s, "each of seeds") for s in dict.fromkeys(seeds)]
    if not seed_list:
        raise UsageError(f"seeds must be a positive count or a non-empty list, got {seeds!r}")
    check_seed(bootstrap_seed, "bootstrap_seed")
    rates = [float(r) for r in dict.fromkeys(forget_rates)]
    if not rates or any(not 0.0 < r < 1.0 for r in rates):
        raise UsageError(f"forget rates must lie strictly between 0 and 1, got {list(forget_rates)}")
    check_positive_int(n_boot, "n_boot")
    if not 0.0 < ci_level < 1.0:
        raise UsageError(f"need n_boot >= 1 and 0 < ci_level < 1, got {n_boot}, {ci_level}")
    target_list, primary = _targets(targets, primary)
    overrides: dict[str, dict[str, Any]] = {}
    for name, values in (hparams or {}).items():
        canonical = next((m for m in _methods([name], domain.name)), name)
        if canonical not in method_objs:
            raise UsageError(f"hyperparameters given for {name!r}, which is not among the compared methods {list(method_objs)}")
        overrides[canonical] = dict(values)
    preset = str(rundir.config.get("preset") or "")
    resolved = {name: method_hparams(obj, resolve_profile(obj, profile, preset or None), overrides.get(name),
                                     what=f"hparams[{name!r}]")
                for name, obj in method_objs.items()}
    sweeps = _strengths(method_objs, strengths or {}, domain.name)
    if pre not in ("pre", "pre-matched"):
        raise UsageError(f"pre must be 'pre' (early-stop rule) or 'pre-matched' (matched-train rule), not {pre!r}")
    refs = {"pre": request_checkpoint(run_path, pre), "grok": request_checkpoint(run_path, "grok", fallback=fallback)}
    config = {
        "methods": list(method_objs), "seeds": seed_list, "forget_rates": rates, "targets": target_list,
        "primary": primary, "profile": profile, "hparams": resolved, "n_boot": int(n_boot), "ci_level": ci_level,
        "bootstrap_seed": int(bootstrap_seed), "eval_every": 1, "fallback": fallback,
        "domain": domain.name, "metrics": list(domain.damage_metrics), "columns": [list(c) for c in domain.compare_columns],
        "pre_phase": pre,
        "strengths": {name: list(values) for name, values in sweeps.items()},
    }
    ctx = MatrixContext(
        run_path=run_path, run_config=rundir.config, domain=domain, refs=refs, methods=method_objs, overrides=overrides,
        hparams=resolved, targets=target_list, primary=primary, profile=profile, fallback=fallback,
        cells_dir=out_dir / "cells", recompute=recompute, strengths=sweeps,
    )
    specs = [CellSpec(m, s, seed, r) for r in rates for seed in seed_list for m in method_objs for s in STARTS]
    show = sys.stderr.isatty() if progress is None else progress
    shard = Shard.from_env()  # under accelerate launch / torchrun: this rank's share of the cells
    if shard.sharded:
        check_shardable()
    cells = run_matrix(ctx, specs, shard, show=show)
    if not shard.is_main:  # every rank has every cell now; rank 0 aggregates and writes
        n_reused = sum(bool(c.get("reused")) for c in cells)
        return CompareResult(results={"schema": SCHEMA, "cells": cells, "summary": [
            f"{shard.label()}: the matrix's {len(cells)} cells are in {ctx.cells_dir}; rank 0 writes the results"]},
            out_dir=out_dir, paths={}, n_computed=len(cells) - n_reused, n_reused=n_reused)
    results: dict[str, Any] = {
        "schema": SCHEMA, "grokplug_version": _version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": _run_info(rundir, refs), "config": config,
        "targets": [describe_target(t, primary) for t in target_list],
        "cells": cells,
    }
    results["aggregates"] = build_aggregates(cells, config)
    results["pairs"] = build_pairs(cells, config)
    results["flags"] = build_flags(cells)
    results["summary"] = summary_lines(results)
    results["plots"], results["analysis"] = [], None
    if analysis:
        analyse_run = _optional("grokplug.analysis", "analyse_run", "analysis")
        results["analysis"] = analyse_run(run_path, forget_rate=rates[0], seed=seed_list[0], fallback=fallback)
    plot_paths: list[Path] = []
    if plots:
        plot_compare = _optional("grokplug.compare._plots", "plot_compare", "plots")
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_paths = [Path(p) for p in plot_compare(results, run_path, out_dir)]
        results["plots"] = [os.path.relpath(p, out_dir) for p in plot_paths]
    from ._matrix import json_safe

    results = json_safe(results)
    paths = write_outputs(results, out_dir)
    n_reused = sum(bool(c.get("reused")) for c in cells)
    return CompareResult(results=results, out_dir=out_dir, paths=paths, n_computed=len(cells) - n_reused,
                         n_reused=n_reused, plots=plot_paths)


class _CallableModule(types.ModuleType):
    """``grokplug.compare`` is both this package and the function: importing a submodule
    (``grokplug.compare._matrix``) makes Python bind the *package* to ``grokplug.compare``, so the
    package is made callable and forwards to :func:`compare`."""

    def __call__(self, *args: Any, **kwargs: Any) -> CompareResult:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
